"""Reloading flows in running processes: `serve` watches `flows/`, SIGHUP reloads, `seamflow flow reload` asks.

Every long-running process (`serve`, `api`, `worker`) reloads on SIGHUP and, unless started with
`--no-watch`, watches its project's `flows/` folder itself. In a `serve --processes N` group
only the first process watches; it reloads and then sends SIGHUP to the others. Any member
that reloads because it was asked (`POST /api/v1/flows/reload` reaches one member) sends
SIGHUP to the first, which reloads and passes it on, so every member serves the same files.

Like every module of the CLI, this one imports only click and the leaves at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from seamflow import errors, redact
from seamflow.cli.table import print_json

if TYPE_CHECKING:
    from seamflow import engine

__all__ = ["flow_reload", "reloading", "signal_first"]

log = logging.getLogger("seamflow.reload")

_DEBOUNCE_MS = 200
"""An editor's save (write, rename, chmod) arrives as one change."""
_LOOK_AGAIN_S = 1.0
"""While the flows folder is missing, how often to look for it."""


@contextlib.asynccontextmanager
async def reloading(
    eng: engine.Engine, flows_dir: Path, *, watch: bool, is_first: bool, tell_group: Callable[[], None] | None
) -> AsyncIterator[None]:
    """While inside: reload on SIGHUP, and on changes of `flows_dir` if `watch` and `is_first`.

    Args:
        eng: the engine whose flows are reloaded (its `engine.Reloader` service).
        flows_dir: the project's `flows/` folder.
        watch: watch the folder (False: `--no-watch`).
        is_first: a process alone, or the first of a serve group (the one that watches and
            passes SIGHUP on).
        tell_group: tells the rest of the group after a reload (None: no group).
    """
    from seamflow import engine

    reloader = eng.services.get(engine.Reloader)
    if reloader is None:
        yield
        return
    if tell_group is not None:
        reloader.tell_group_with(tell_group)
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[Any]] = set()

    def on_hangup() -> None:  # the first passes the signal on; the others only reload
        task = loop.create_task(_reload_logged(eng, reloader, "signal", tell_group=is_first))
        pending.add(task)
        task.add_done_callback(pending.discard)

    has_hangup = hasattr(signal, "SIGHUP")  # not on Windows: the API and the watcher still reload
    if has_hangup:
        loop.add_signal_handler(signal.SIGHUP, on_hangup)
    if not is_first:  # a change between reading the files at start and now sent a SIGHUP this process ignored
        on_hangup()
    stop = asyncio.Event()
    watcher = loop.create_task(_watch(eng, reloader, flows_dir, stop)) if watch and is_first else None
    try:
        yield
    finally:
        if has_hangup:
            loop.remove_signal_handler(signal.SIGHUP)
        stop.set()
        tasks = [*pending, *([watcher] if watcher else [])]
        for task in tasks:
            task.cancel()
        if tasks:
            # asyncio.wait, not `suppress(CancelledError): await task`: that also swallowed the
            # cancellation of this task itself, which is how asyncio.run delivers a Ctrl-C
            # (uvicorn re-raises it), so serve ended as if nothing had been asked
            await asyncio.wait(tasks)


async def _reload_logged(eng: engine.Engine, reloader: engine.Reloader, cause: str, *, tell_group: bool) -> None:
    try:
        done = await reloader.reload(cause=cause, tell_group=tell_group)
        if tell_group:  # the process that was asked (a group's others reload what it did)
            await _record_deploys(eng, done, cause)
    except errors.SeamflowError as exc:  # e.g. the store is away: the flows served stay as they are
        log.error("reloading flows failed: %s", redact.mask_text(exc.message), extra={"cause": cause})
    except Exception:  # a boundary: the watcher and the process outlive any failed reload
        log.exception("reloading flows failed", extra={"cause": cause})


async def _record_deploys(eng: engine.Engine, done: engine.Reload, cause: str) -> None:
    """Audit each flow a file change or SIGHUP added or changed: `flow.deployed` by `@files` or `@signal`."""
    from seamflow import audit

    changed = [*done.change.added, *done.change.changed]
    if not changed:
        return
    trail = eng.services.get(audit.AuditTrail) or audit.AuditTrail(eng.db)
    actor = audit.Actor("@files" if cause == "watch" else "@signal", cause)
    origin = audit.Origin(f"local:{socket.gethostname()}", "seamflow-serve")
    for flow_id in changed:
        flow = eng.catalog.current.get(flow_id)
        version = flow.version if flow is not None else None
        await trail.record(
            audit.Action.FLOW_DEPLOYED, f"flow:{flow_id}", actor=actor, origin=origin, detail={"version": version}
        )


async def _watch(eng: engine.Engine, reloader: engine.Reloader, flows_dir: Path, stop: asyncio.Event) -> None:
    """Reload after each change of a `*.yaml`/`*.yml` file under `flows_dir` (added, changed, removed).

    A folder removed and made again (a branch switch, a deploy that replaces it) is watched
    again once it is back: it is looked for every second meanwhile, and read when it returns.
    """
    import watchfiles

    def is_flow_file(_: watchfiles.Change, path: str) -> bool:
        return path.endswith((".yaml", ".yml"))

    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # our own line says what changed
    log.info("watching %s for flow changes", flows_dir)
    while not stop.is_set():
        if not await asyncio.to_thread(flows_dir.is_dir):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=_LOOK_AGAIN_S)
            if await asyncio.to_thread(flows_dir.is_dir):
                await _reload_logged(eng, reloader, "watch", tell_group=True)
            continue
        try:
            changes = watchfiles.awatch(flows_dir, watch_filter=is_flow_file, stop_event=stop, debounce=_DEBOUNCE_MS)
            async for _ in changes:
                await _reload_logged(eng, reloader, "watch", tell_group=True)
                if not await asyncio.to_thread(flows_dir.is_dir):  # the watch went with the folder
                    break
        except (OSError, RuntimeError) as exc:  # the folder went away while the watch started
            log.warning("watching %s: %s; looking for it again", flows_dir, exc)


def signal_first(first_pid: int) -> Callable[[], None]:
    """For a serve group's other processes: ask the first to reload (and pass it on to all)."""

    def tell() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(first_pid, signal.SIGHUP)

    return tell


@click.command("reload")
@click.option(
    "--url",
    envvar="SEAMFLOW_URL",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="the running `seamflow serve` [$SEAMFLOW_URL]",
)
@click.option("--token", envvar="SEAMFLOW_TOKEN", help="an API token, as `seamflow init` printed it [$SEAMFLOW_TOKEN]")
@click.option("--json", "as_json", is_flag=True, help="print the answer as JSON")
def flow_reload(url: str, token: str | None, as_json: bool) -> None:
    """Ask the running `seamflow serve` to reload the flow files now (for `serve --no-watch`).

    Prints the flows added, changed and removed, and every problem of a file that was not
    loaded (its flows keep serving their earlier version); exits 2 if a file was not loaded.
    """
    if not token:
        _fail("no API token; expected --token or $SEAMFLOW_TOKEN set to the token `seamflow init` printed", 2)
    answer = _post_reload(url.rstrip("/"), token or "")
    if as_json:
        print_json(answer)
    else:
        _print_reload(answer)
    if answer.get("invalid"):
        sys.exit(2)


def _post_reload(url: str, token: str) -> dict[str, Any]:
    import httpx

    redact.register(token)
    try:
        response = httpx.post(f"{url}/api/v1/flows/reload", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    except httpx.HTTPError as exc:
        _fail(
            f"cannot reach seamflow serve at {url}: {redact.mask_text(str(exc)) or type(exc).__name__}; "
            "expected a running `seamflow serve` (--url, $SEAMFLOW_URL)",
            1,
        )
    if response.status_code in (401, 403):
        _fail(_refusal(url, response), 2)
    if response.status_code != 200:
        _fail(f"{url} answered {response.status_code}: {redact.mask_text(response.text[:500])}", 1)
    answer: dict[str, Any] = response.json()
    return answer


def _refusal(url: str, response: Any) -> str:
    """A 401 or 403 of the server in plain words, with what the server said (its `detail`)."""
    try:
        detail = str(response.json().get("detail", ""))
    except ValueError:
        detail = ""
    said = f" ({redact.mask_text(detail)})" if detail else ""
    if response.status_code == 401:
        return (
            f"{url} refused the API token{said}; expected a valid token: the one `seamflow init` printed or a"
            " personal token (`seamflow users token create`), in --token or $SEAMFLOW_TOKEN"
        )
    return (
        f"{url} does not allow this token to reload flows{said}; expected a token with the build scope on every"
        " flow (a builder or admin role, not limited to some flows)"
    )


def _print_reload(answer: dict[str, Any]) -> None:
    parts = [f"{what} {', '.join(answer[what])}" for what in ("added", "changed", "removed") if answer.get(what)]
    click.echo("reloaded: " + ("; ".join(parts) if parts else "no flow changed"))
    for problem in answer.get("invalid", []):
        click.echo(f"not loaded: {problem['message']}", err=True)
    if answer.get("kept"):
        click.echo(f"kept at their earlier version: {', '.join(answer['kept'])}", err=True)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
