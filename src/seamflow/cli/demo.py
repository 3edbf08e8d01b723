"""`seamflow demo`: lead to cash between a real CRM and a real ERP, with Seamflow in the middle.

In a temporary folder it starts the example CRM and ERP (`examples/crm`, `examples/erp`) as their
own processes with their own seeded SQLite files, the ERP's simulated back office, a local SMTP
server that writes each mail it receives into a folder, and Seamflow serving a copy of
`examples/lead-to-cash` on SQLite. Then it plays a sales team: new customers, contracts signed,
edits on both sides, a few cancellations and a few bad records, printing a live summary.
Ctrl-C, or the end of `--duration`, stops every process it started. This module is the
driver; `demo_systems` starts the processes, `demo_traffic` plays the sales team and
`demo_watch` prints the summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from seamflow import engine
from seamflow.cli.demo_systems import EXAMPLES, Mailbox, System, read_mail, serve_smtp, start_system, stop_system
from seamflow.cli.demo_traffic import Traffic, uscc
from seamflow.cli.demo_watch import Watch
from seamflow.cli.project import ProjectPaths, build_engine, open_store

if TYPE_CHECKING:
    import uvicorn

__all__ = ["read_mail", "run_demo", "uscc"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the project ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Setup:
    root: Path
    project: Path
    mail: Path
    port: int
    crm_port: int
    erp_port: int
    smtp_port: int
    crm_token: str = field(default_factory=lambda: "crm-" + secrets.token_hex(12))
    erp_token: str = field(default_factory=lambda: "erp-" + secrets.token_hex(12))
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(24))
    api_token: str = field(default_factory=lambda: "sf_demo_" + secrets.token_hex(20))


def _write_project(setup: _Setup) -> None:
    shutil.copytree(EXAMPLES / "lead-to-cash", setup.project, ignore=shutil.ignore_patterns("README.md"))
    env = {
        "SEAMFLOW_VAR_CRM_URL": f"http://127.0.0.1:{setup.crm_port}",
        "SEAMFLOW_VAR_ERP_URL": f"http://127.0.0.1:{setup.erp_port}",
        "SEAMFLOW_VAR_SMTP_HOST": "127.0.0.1",
        "SEAMFLOW_VAR_SMTP_PORT": str(setup.smtp_port),
        "SEAMFLOW_VAR_SALES_OPS_EMAIL": "销售运营 <sales-ops@example.cn>",
        "SEAMFLOW_SECRET_CRM_TOKEN": setup.crm_token,
        "SEAMFLOW_SECRET_ERP_TOKEN": setup.erp_token,
        "SEAMFLOW_SECRET_CRM_WEBHOOK": setup.webhook_secret,
    }
    (setup.project / ".env").write_text("".join(f"{k}='{v}'\n" for k, v in env.items()), encoding="utf-8")
    os.environ.update(env)


async def _serve(app: Any, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    import uvicorn  # only the demo needs it; `seamflow --help` should not pay for it

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, loop="none")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise click.ClickException(f"Seamflow could not listen on port {port}")
        await asyncio.sleep(0.02)
    return server, task


@contextlib.asynccontextmanager
async def _systems(setup: _Setup, operator_delay: str) -> AsyncIterator[tuple[System, System]]:
    started: list[System] = []
    try:
        erp = await start_system(
            "erp",
            ["--db", str(setup.root / "erp.db"), "--seed", "--operator", "--operator-delay-s", operator_delay],
            {"ERP_API_TOKEN": setup.erp_token},
            setup.root,
            setup.erp_port,
        )
        started.append(erp)
        hooks = f"http://127.0.0.1:{setup.port}/hooks/crm"
        crm = await start_system(
            "crm",
            ["--db", str(setup.root / "crm.db"), "--seed", "--retry-initial-s", "0.5", "--retry-max-s", "3"],
            {
                "CRM_API_TOKEN": setup.crm_token,
                "CRM_WEBHOOK_SECRET": setup.webhook_secret,
                "CRM_WEBHOOK_URL": f"{hooks}/contract-signed,{hooks}/contract-cancelled",
            },
            setup.root,
            setup.crm_port,
        )
        started.append(crm)
        erp.token, crm.token = setup.erp_token, setup.crm_token
        yield crm, erp
    finally:
        await asyncio.gather(*(stop_system(s) for s in reversed(started)))


async def run_demo(rate: float, duration_s: float, port: int, keep: bool, operator_delay: str = "1:4") -> None:
    """Run the demo; see the module docstring."""
    missing = [m for m in ("aiosmtpd", "httpx") if not _importable(m)]
    if missing:
        raise click.ClickException(
            f"the demo needs {', '.join(missing)} (the mail server and the example CRM use them): "
            "pip install -e '.[dev]'"
        )
    root = Path(tempfile.mkdtemp(prefix="seamflow-demo-"))
    ports = {_free_port() for _ in range(3)}
    while len(ports) < 3 or port in ports:
        ports = {_free_port() for _ in range(3)}
    crm_port, erp_port, smtp_port = sorted(ports)
    setup = _Setup(root, root / "lead-to-cash", root / "mail", port, crm_port, erp_port, smtp_port)
    setup.mail.mkdir()
    _write_project(setup)
    mailbox = Mailbox(setup.mail)
    smtp = await serve_smtp(mailbox, smtp_port)
    try:
        async with _systems(setup, operator_delay) as (crm, erp):
            await _run_seamflow(setup, crm, erp, mailbox, rate, duration_s)
    finally:
        smtp.close()
        await smtp.wait_closed()
        if keep:
            click.echo(f"\nKept {root} (the project, crm.db, erp.db, the logs and the mails).")
        else:
            shutil.rmtree(root, ignore_errors=True)
            click.echo(f"\nRemoved {root} (use --keep to leave it).")


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


async def _run_seamflow(
    setup: _Setup, crm: System, erp: System, mailbox: Mailbox, rate: float, duration_s: float
) -> None:
    from seamflow import api  # FastAPI: only the demo needs it here

    paths = ProjectPaths(setup.project)
    db = open_store(paths)
    await db.open()
    try:
        await db.add_api_token("demo", api.hash_token(setup.api_token))
        eng, context = build_engine(paths, db, engine.EngineOptions())
        await eng.start()
        try:
            app_server, app_task = await _serve(api.create_app(eng, context=context, manage_engine=False), setup.port)
            try:
                _where(setup, crm, erp)
                watch = Watch(eng, setup.root, setup.project, mailbox)
                driver = Traffic(crm, erp, random.Random())
                click.echo(f"Playing the sales team at ~{rate:g} actions/s for {duration_s:g} s (Ctrl-C stops) …")
                await driver.run(rate, duration_s, watch)
                click.echo("Letting the last runs finish …")
                await watch.settle(timeout_s=8)
                await watch.final(driver)
            finally:
                app_server.should_exit = True
                await app_task
        finally:
            await eng.stop()
    finally:
        await db.close()


def _where(setup: _Setup, crm: System, erp: System) -> None:
    base = f"http://127.0.0.1:{setup.port}"
    click.echo(f"Folder:      {setup.root}")
    click.echo(f"Project:     {setup.project}  (flows/, syncs/, models/, connections.yaml, .env)")
    click.echo(f"Seamflow:    {base}/docs   token: {setup.api_token}")
    click.echo(f"             curl -H 'Authorization: Bearer {setup.api_token}' {base}/api/v1/runs")
    click.echo(f"CRM:         {crm.url}/docs   token: {crm.token}")
    click.echo(f"ERP:         {erp.url}/docs   token: {erp.token}")
    click.echo(f"Mails:       {setup.mail}/*.eml  (SMTP 127.0.0.1:{setup.smtp_port})")
    click.echo(f"Logs:        {setup.root}/crm.log, erp.log")
