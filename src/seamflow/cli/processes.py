"""The long-running processes: `serve` (API, webhooks and workers), `api` (accept only), `worker` (execute only).

Any number of each may run against one PostgreSQL database, on any machines; a SQLite file is
for the processes of one `serve` (`--processes`). They differ only in the engine's roles; see
docs/postgresql.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from seamflow import api, console, engine, errors, insight, store
from seamflow.cli import reload, supervisor
from seamflow.cli.project import ProjectPaths, build_engine, open_insight, open_store

__all__ = ["Group", "Role", "install_uvloop", "run_process", "tune_gc", "tune_memory"]

Role = str
"""`serve`, `api` or `worker`."""


@dataclass(frozen=True, slots=True)
class Group:
    """Where a process stands in a `serve --processes N` group."""

    processes: int = 1
    """How many processes serve together."""
    member: int = 0
    """0 for the first process, 1 … N-1 for the others."""
    first_pid: int | None = None
    """The first process, which the others die with."""


def options_for(
    role: Role, workers: int, lease: timedelta, retention: timedelta | None, member: int = 0
) -> engine.EngineOptions:
    """The engine's roles for a kind of process (only a group's first process fires timers and runs feeds)."""
    executes = role in ("serve", "worker")
    return engine.EngineOptions(
        workers=workers,
        execute=executes,
        claim=executes,
        timers=executes and member == 0,
        lease=lease,
        retention=retention if executes and member == 0 else None,
        records_deployments=member == 0,
    )


def run_process(
    role: Role,
    paths: ProjectPaths,
    database: str | None,
    *,
    host: str,
    port: int | None,
    workers: int,
    lease: timedelta,
    retention: timedelta | None,
    group: Group = Group(),
    watch: bool = True,
    header_timeout: timedelta | None = None,
    body_timeout: timedelta | None = None,
    metrics_listen: tuple[str, int] | None = None,
) -> None:
    """Run one process until SIGINT/SIGTERM, then drain and release its leases.

    A `serve` with `group.processes` > 1 binds the port and starts the group's other processes
    (see `supervisor.py`); they stop with it. Flows reload on SIGHUP, on `POST /api/v1/flows/reload`
    and, with `watch`, when files in `flows/` change (see `reload.py`). Requests are read within
    the timeouts; with `metrics_listen` the first process also serves `/metrics` there.

    Raises:
        errors.SeamflowError: the project or the database is not usable (the caller prints it).
    """
    default = api.ReadTimeouts()
    timeouts = api.ReadTimeouts(header_timeout or default.header_timeout, body_timeout or default.body_timeout)
    _prepare_signals(group)
    db = open_store(paths, database, shared=group.processes > 1)
    eng, context = build_engine(paths, db, options_for(role, workers, lease, retention, group.member))
    _refuse_sqlite_beside_others(role, db)
    leader = _lead_group(role, group, host, port or 8080)
    sockets = _listen(role, group, leader, host, port)
    metrics_socket = supervisor.bind_port(*metrics_listen) if metrics_listen and group.member == 0 else None

    async def main_task() -> None:
        await db.open()  # the first process migrates before the others start
        tune_gc()
        tune_memory()
        if leader is not None:
            leader.start_others()
        is_first, tell = group.member == 0, _tell_group(leader, group)
        try:
            reloading = reload.reloading(eng, paths.flows, watch=watch, is_first=is_first, tell_group=tell)
            async with _background_tasks(role, paths, db, eng, is_first=is_first), reloading:
                if role == "worker" and port is None:
                    await _run_headless(eng)
                    return
                app = _http_app(role, eng, context, metrics_socket, root=paths.root)
                await _serve_http(app, eng, timeouts, [*(sockets or []), *([metrics_socket] if metrics_socket else [])])
        finally:
            if leader is not None:
                await asyncio.to_thread(leader.stop_others, eng.options.drain_timeout.total_seconds() + 5)
            await db.close()

    install_uvloop()
    asyncio.run(main_task())


@contextlib.asynccontextmanager
async def _background_tasks(
    role: Role, paths: ProjectPaths, db: store.Store, eng: engine.Engine, *, is_first: bool
) -> AsyncIterator[None]:
    """While inside: keep the insight index current, and mirror live shadows, in the background.

    The first process of a group that answers questions (`serve`, `api`) or evaluates alerts keeps
    its index current, so the first question after a restart reads only the rows appended since; the
    process that prunes runs (`--retention`) also archives and prunes the event log. The group's other
    processes index only when asked (their index is in memory: the first holds the file), instead of
    indexing every event a second time beside the first. Live shadows are mirrored by the process that
    fires timers (one per group), off the hot path.
    """
    from seamflow import lifecycle

    upkeep = None
    uses_insight = role != "worker" or eng.services.get(insight.Insight) is not None
    if is_first and (uses_insight or eng.options.retention is not None):
        found = open_insight(paths, db, eng)
        policy = insight.Upkeep(retention=eng.options.retention)
        upkeep = asyncio.create_task(insight.keep_current(found, db, policy), name="insight")
    mirror = eng.services.get(lifecycle.LiveMirror)
    mirroring = mirror.running() if mirror is not None and eng.options.timers else contextlib.nullcontext()
    try:
        async with mirroring:
            yield
    finally:
        if upkeep is not None:
            upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upkeep
        opened = eng.services.get(insight.Insight)
        if opened is not None:
            await asyncio.to_thread(opened.close)


def _prepare_signals(group: Group) -> None:
    """A group's other process dies with the first; SIGHUP is ignored until the loop reloads on it."""
    if group.first_pid is not None:
        supervisor.die_with_parent(group.first_pid)
    if hasattr(signal, "SIGHUP"):  # not on Windows
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the group's others inherit it


def _refuse_sqlite_beside_others(role: Role, db: store.Store) -> None:
    if isinstance(db, store.SqliteStore) and role != "serve":
        raise errors.InvalidInput(
            f"`seamflow {role}` shares work through PostgreSQL; with SQLite run one `seamflow serve`"
            " (set SEAMFLOW_DATABASE_URL=postgresql://… to run several processes)",
            code="cli.needs_postgres",
        )


def _http_app(role: Role, eng: engine.Engine, context: Any, metrics_socket: socket.socket | None, *, root: Path) -> Any:
    """What a process answers over HTTP: a worker its health; the others the API with the console beside it."""
    if role == "worker":
        app: Any = api.create_health_app(eng)
    else:
        app = full = api.create_app(eng, context=context, kpi_file=root / "kpis.yaml", project_root=root)
        console.mount(full)
    if metrics_socket is not None:  # /metrics (and detailed health) without a token, on their own address
        app = _by_address(app, api.create_metrics_app(eng), metrics_socket.getsockname()[:2])
    return app


def _by_address(main: Any, metrics: Any, address: tuple[str, int]) -> Any:
    """One ASGI app for one uvicorn server: requests to the metrics address go to `metrics`."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        server = scope.get("server")
        is_metrics = server is not None and (str(server[0]), int(server[1] or 0)) == address
        await (metrics if is_metrics else main)(scope, receive, send)

    return app


def _listen(
    role: Role, group: Group, leader: supervisor.ServeGroup | None, host: str, port: int | None
) -> list[socket.socket] | None:
    """The process's listening sockets, bound before anything starts (None: a worker without a port)."""
    if leader is not None:
        return [leader.socket]
    if group.member > 0:
        return [supervisor.reuse_port_socket(host, port or 8080)]
    if role == "worker" and port is None:
        return None
    return [supervisor.bind_port(host, port or 8080)]


def _tell_group(leader: supervisor.ServeGroup | None, group: Group) -> Callable[[], None] | None:
    """After a reload of its own: the first process signals the others, any other signals the first."""
    if leader is not None:
        return leader.signal_others
    if group.first_pid is not None:
        return reload.signal_first(group.first_pid)
    return None


def _lead_group(role: Role, group: Group, host: str, port: int) -> supervisor.ServeGroup | None:
    """The first process of a `serve --processes N` group binds the port; None for any other process."""
    if role != "serve" or group.processes < 2 or group.member != 0:
        return None
    return supervisor.ServeGroup(host, port, group.processes, sys.argv[1:], on_exit=engine.metrics.forget_process)


async def _serve_http(
    app: Any, eng: engine.Engine, timeouts: api.ReadTimeouts, sockets: list[socket.socket] | None
) -> None:
    """Serve `app` with uvicorn on `sockets` until SIGINT/SIGTERM, reading requests within `timeouts`."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        loop="none",
        http=api.guarded_http_protocol(timeouts),
        timeout_graceful_shutdown=int(eng.options.drain_timeout.total_seconds()),
    )
    await uvicorn.Server(config).serve(sockets=sockets)


async def _run_headless(eng: engine.Engine) -> None:
    """A worker without an HTTP port: run until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await eng.start()
    click.echo(f"worker {eng.worker_id} started", err=True)
    try:
        await stop.wait()
    finally:
        await eng.stop()


def tune_gc() -> None:
    """Keep garbage-collection pauses out of the request path.

    With CPython's default thresholds a full collection walks every object of a busy server
    every few seconds and stalls the event loop for tens of milliseconds: at 16 concurrent
    webhooks p99 latency was 48 ms with them, 18.5 ms with these settings, and throughput
    rose 10% (benchmarks/throughput.py, same run). Objects that exist after start-up (flows,
    compiled templates, modules) are frozen out of collection; young objects are collected
    every 50,000 allocations instead of 700. Memory stays flat (see the benchmark's RSS).
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_MMAP_THRESHOLD_BYTES = 128 * 1024


def tune_memory() -> None:
    """Give large buffers back to the system once freed (glibc only; elsewhere nothing happens).

    glibc raises its mmap threshold after the first large buffer is freed, so later ones
    (1 MiB webhook bodies and their copies) come from the heap and stay with the process:
    300 such bodies left `serve` 100 MB larger for good. A fixed threshold of 128 KiB keeps
    them in their own mappings, returned on free (benchmarks/README.md, memory).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        return


def install_uvloop() -> None:
    """Use uvloop's event loop where it is installed (not on Windows)."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
