"""`seamflow demo`: lead to cash between a real CRM and a real ERP, with Seamflow in the middle.

In a temporary folder it starts the example CRM and ERP (`examples/crm`, `examples/erp`) as their
own processes with their own seeded SQLite files, the ERP's simulated back office, a local SMTP
server that writes each mail it receives into a folder, and Seamflow serving a copy of
`examples/lead-to-cash` on SQLite. Then it plays a sales team: new customers, contracts signed,
edits on both sides, a few cancellations and a few bad records, printing live figures. When the
traffic stops it waits until every feed has caught up, compares the CRM's and the ERP's customers,
and prints a summary for the business (in English and Chinese) and for the engineer. Ctrl-C prints
the summary of what happened so far. This module is the driver; `demo_systems` starts the
processes, `demo_traffic` plays the sales team, `demo_watch` prints the live figures and waits for
the catch-up, `demo_facts`, `demo_problems`, `demo_report` and `demo_insight` make the summary."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import shlex
import shutil
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from seamflow import engine, errors, store
from seamflow.cli.demo_dingtalk import Pace
from seamflow.cli.demo_facts import read_facts
from seamflow.cli.demo_insight import print_insight, read_insight
from seamflow.cli.demo_oa import OaDemo
from seamflow.cli.demo_problems import Explained, explain
from seamflow.cli.demo_report import LANGUAGES, check_agreement, print_summary
from seamflow.cli.demo_systems import EXAMPLES, Mailbox, System, read_mail, serve_smtp, start_system, stop_system
from seamflow.cli.demo_traffic import Traffic, uscc
from seamflow.cli.demo_watch import CatchUp, Watch
from seamflow.cli.project import ProjectPaths, build_engine, open_store
from seamflow.cli.supervisor import bind_port
from seamflow.ids import Json

if TYPE_CHECKING:
    import uvicorn

__all__ = ["DemoOptions", "read_mail", "run_demo", "uscc"]


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
    listener: socket.socket
    crm_token: str = field(default_factory=lambda: "crm-" + secrets.token_hex(12))
    erp_token: str = field(default_factory=lambda: "erp-" + secrets.token_hex(12))
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(24))
    api_token: str = field(default_factory=lambda: "sf_demo_" + secrets.token_hex(20))
    console_password: str = field(default_factory=lambda: "demo-" + secrets.token_urlsafe(9))
    """The password of the console user `demo` (an admin) for this demo's lifetime."""


def _write_project(setup: _Setup, approvals: OaDemo) -> None:
    shutil.copytree(EXAMPLES / "lead-to-cash", setup.project, ignore=shutil.ignore_patterns("README.md"))
    env = approvals.add_to_project(setup.project) | {
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


async def _serve(app: Any, listener: socket.socket) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    import uvicorn  # only the demo needs it; `seamflow --help` should not pay for it

    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, loop="none")
    )
    task = asyncio.create_task(server.serve(sockets=[listener]))
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


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """How `seamflow demo` plays."""

    rate: float = 5.0
    """Sales-team actions per second."""
    duration_s: float = 30.0
    """Seconds of traffic."""
    port: int = 8080
    """Seamflow's port (the CRM, the ERP and the mail server take free ones)."""
    keep: bool = False
    """Leave the temporary folder (project, databases, logs, mails) instead of removing it."""
    languages: tuple[str, ...] = LANGUAGES
    """The languages of the business summary (`en`, `zh`)."""
    operator_delay: str = "1:4"
    """Seconds the ERP's back office waits between an order's steps (min:max)."""
    catch_up_s: float = 60.0
    """How long the end waits for every feed to catch up."""
    approver_pace: str = "1:4"
    """Seconds a simulated approver takes to decide (min:max), in DingTalk and in the inbox."""


@dataclass(slots=True)
class _Outcome:
    """What the summary found, for the commands printed at the very end."""

    problems: list[Explained] = field(default_factory=list)
    is_summarized: bool = False


async def run_demo(options: DemoOptions) -> None:
    """Run the demo; see the module docstring. Ctrl-C prints the summary so far, then cancels."""
    missing = [m for m in ("aiosmtpd", "httpx") if not _importable(m)]
    if missing:
        raise click.ClickException(
            f"the demo needs {', '.join(missing)} (the mail server and the example CRM use them): "
            "pip install -e '.[dev]'"
        )
    # bound first: a taken --port is one clear line (serve.port_in_use), before anything starts
    listener = bind_port("127.0.0.1", options.port)
    root = Path(tempfile.mkdtemp(prefix="seamflow-demo-"))
    ports = {_free_port() for _ in range(4)}
    while len(ports) < 4 or options.port in ports:
        ports = {_free_port() for _ in range(4)}
    crm_port, erp_port, smtp_port, finance_port = sorted(ports)
    setup = _Setup(root, root / "lead-to-cash", root / "mail", options.port, crm_port, erp_port, smtp_port, listener)
    setup.mail.mkdir()
    approvals = OaDemo(
        root, f"http://127.0.0.1:{options.port}", finance_port, Pace.parse(options.approver_pace), random.Random()
    )
    await approvals.dingtalk.start()
    _write_project(setup, approvals)
    mailbox = Mailbox(setup.mail)
    smtp = await serve_smtp(mailbox, smtp_port)
    outcome = _Outcome()
    try:
        approvals.start_finance()
        async with _systems(setup, options.operator_delay) as (crm, erp):
            await approvals.finance_ready()
            await _run_seamflow(setup, crm, erp, mailbox, options, outcome, approvals)
    except asyncio.CancelledError:
        if not outcome.is_summarized:
            click.echo("\nStopped (Ctrl-C) before there was a summary to print.")
        raise
    finally:
        await approvals.stop()
        smtp.close()
        await smtp.wait_closed()
        listener.close()
        _leave(setup, outcome, keep=options.keep)


def _leave(setup: _Setup, outcome: _Outcome, *, keep: bool) -> None:
    """Remove the folder, or keep it and print commands that work on it now (every system has stopped)."""
    seamflow = _seamflow_command()
    if not keep:
        shutil.rmtree(setup.root, ignore_errors=True)
        click.echo(f"\nRemoved {setup.root}. To look closer afterwards, run `{seamflow} demo --keep`:")
        click.echo("its project, databases, logs, mails and the process maps above stay, with ways to inspect them.")
        return
    root, project, mail = (shlex.quote(str(path)) for path in (setup.root, setup.project, setup.mail))
    click.echo(f"\nKept {root}: the project, crm.db, erp.db, crm.log, erp.log and mail/*.eml.")
    click.echo("Look closer (Seamflow, the CRM and the ERP have stopped; these read the kept files):")
    click.echo(f"  {seamflow} runs list --project {project}")
    click.echo(f"  {seamflow} runs dead-letters --project {project}")
    if outcome.problems:
        click.echo(f"  {seamflow} runs show {outcome.problems[0].run_id} --project {project}")
    click.echo(f"  ls {mail}")
    click.echo(f"  {seamflow} kpi --project {project}")
    click.echo(f"  {seamflow} insight map --object-type order --project {project}")
    click.echo(f"  ls {shlex.quote(str(setup.root / 'insight'))}    # the process maps, .html and .json")
    click.echo(f"  rm -r {root}    # when done")


def _seamflow_command() -> str:
    """How to call this Seamflow from a shell: `seamflow` if that is it on the PATH, else its full path."""
    beside = Path(sys.executable).parent / "seamflow"
    on_path = shutil.which("seamflow")
    if on_path and beside.exists() and Path(on_path).resolve() == beside.resolve():
        return "seamflow"
    if beside.exists():
        return shlex.quote(str(beside))
    return f"{shlex.quote(sys.executable)} -m seamflow"


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


async def _run_seamflow(
    setup: _Setup,
    crm: System,
    erp: System,
    mailbox: Mailbox,
    options: DemoOptions,
    outcome: _Outcome,
    approvals: OaDemo,
) -> None:
    from seamflow import api, console, directory  # FastAPI: only the demo needs it here

    paths = ProjectPaths(setup.project)
    db = open_store(paths)
    await db.open()
    try:
        await db.add_api_token("demo", api.hash_token(setup.api_token))
        people = directory.Directory(db)
        demo_admin = {"login": "demo", "name": "演示管理员 Demo admin", "roles": ["admin"]}
        await people.save(users=[directory.UserEntry.model_validate(demo_admin)])
        await people.set_password("demo", setup.console_password)
        eng, context = build_engine(paths, db, engine.EngineOptions())
        await eng.start()
        try:
            app = api.create_app(
                eng, context=context, manage_engine=False, kpi_file=paths.root / "kpis.yaml", project_root=paths.root
            )
            console.mount(app)
            app_server, app_task = await _serve(app, setup.listener)
            try:
                await approvals.import_people(db)
                _where(setup, crm, erp, keep=options.keep)
                for line in approvals.describe():
                    click.echo(line)
                watch = Watch(eng, setup.root, setup.project, mailbox)
                await _play(watch, Traffic(crm, erp, random.Random()), options, outcome, approvals)
            finally:
                app_server.should_exit = True
                await app_task
        finally:
            await eng.stop()
    finally:
        await db.close()


async def _play(watch: Watch, driver: Traffic, options: DemoOptions, outcome: _Outcome, approvals: OaDemo) -> None:
    """The traffic, the catch-up and the summary; Ctrl-C skips to the summary of what happened so far."""
    approvers = asyncio.create_task(approvals.approve())
    try:
        await _play_and_wait(watch, driver, options, outcome, approvals)
    finally:
        approvers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await approvers


async def _play_and_wait(
    watch: Watch, driver: Traffic, options: DemoOptions, outcome: _Outcome, approvals: OaDemo
) -> None:
    employees = asyncio.create_task(approvals.play(options.rate, options.duration_s))
    try:
        click.echo(
            f"Playing the sales team at ~{options.rate:g} actions/s for {options.duration_s:g} s, and employees"
            f" asking for approvals (approvers take {options.approver_pace} s) (Ctrl-C stops) …"
        )
        await driver.run(options.rate, options.duration_s, watch)
        await employees
        click.echo(
            f"The sales team stopped; waiting until every feed has caught up (at most {options.catch_up_s:g} s) …"
        )
        started = asyncio.get_running_loop().time()
        caught_up = await watch.catch_up(options.catch_up_s)
        is_settled = await approvals.settle(watch.eng.db, options.catch_up_s)
        waited_s = asyncio.get_running_loop().time() - started
    except asyncio.CancelledError:
        employees.cancel()
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # the summary still needs the store; the cancellation is raised again below
        click.echo("\nStopped (Ctrl-C). What happened so far:")
        outcome.problems = await _summarize(watch, driver, None, options.languages, approvals)
        outcome.is_summarized = True
        raise
    if not is_settled:
        click.echo(f"Some approvals were still open after {options.catch_up_s:g} s; the figures below count them open.")
    if caught_up.is_done:
        click.echo(f"Every feed has caught up ({waited_s:.0f} s after the traffic stopped).")
    else:
        click.echo(
            f"The feeds had not caught up after {options.catch_up_s:g} s ({caught_up.describe()}): "
            "the comparison below may show changes that were still on their way."
        )
    outcome.problems = await _summarize(watch, driver, caught_up, options.languages, approvals)
    outcome.is_summarized = True


async def _summarize(
    watch: Watch, driver: Traffic, caught_up: CatchUp | None, languages: tuple[str, ...], approvals: OaDemo
) -> list[Explained]:
    """Print the engineer's figures, then the business summary; compare CRM and ERP after a catch-up.

    Returns:
        The dead letters, explained.
    """
    click.echo("\nFor the engineer (runs by status, sync, ERP orders, mails):")
    await watch.report(None)
    click.echo("\nThe sales team did: " + ", ".join(f"{k} {v}" for k, v in sorted(driver.done.items())))
    dead = await watch.eng.db.list_runs(store.RunFilter(statuses=(store.RunStatus.DEAD_LETTER,), limit=1000))
    problems = [explain(run, await _event_body(watch.eng, run)) for run in reversed(dead)]
    agreement = None
    if caught_up is not None:
        try:
            agreement = await check_agreement(watch.eng, "customers", problems)
        except errors.SeamflowError as exc:
            click.echo(f"Comparing the CRM's and the ERP's customers failed: {exc.message}")
    facts = await asyncio.to_thread(read_facts, watch.root)
    print_summary(facts, problems, agreement, languages)
    approvals.report(languages)
    await _insight_summary(watch, languages)
    return problems


async def _insight_summary(watch: Watch, languages: tuple[str, ...]) -> None:
    """Order to cash, approval waiting time per approver and the process maps, from the event log."""
    names = {user.login: user.display_name for user in await watch.eng.db.list_users()}
    try:
        found = await read_insight(watch.eng.db, names, watch.project, watch.root / "insight")
    except errors.SeamflowError as exc:
        click.echo(f"\nProcess insight failed: {exc.message}")
        return
    print_insight(found, languages)


async def _event_body(eng: engine.Engine, run: store.RunSummary) -> Json:
    """The event of a contract's dead letter (it names the contract and the customer); None for others."""
    if not str(run.flow_id).startswith("contract-"):
        return None
    try:
        return (await eng.db.load_run(run.run_id)).event_body
    except errors.SeamflowError:
        return None


def _where(setup: _Setup, crm: System, erp: System, *, keep: bool) -> None:
    base = f"http://127.0.0.1:{setup.port}"
    fate = "kept at the end (--keep)" if keep else "removed at the end unless --keep"
    click.echo(f"Folder:      {setup.root}  ({fate})")
    click.echo(f"Project:     {setup.project}  (flows/, syncs/, models/, connections.yaml, .env)")
    click.echo(f"Console:     {base}/console/   sign in as demo / {setup.console_password}")
    click.echo(f"Seamflow:    {base}/docs   token: {setup.api_token}")
    click.echo(f"             curl -H 'Authorization: Bearer {setup.api_token}' {base}/api/v1/runs")
    click.echo(f"CRM:         {crm.url}/docs   token: {crm.token}")
    click.echo(f"ERP:         {erp.url}/docs   token: {erp.token}")
    click.echo(f"Mails:       {setup.mail}/*.eml  (SMTP 127.0.0.1:{setup.smtp_port})")
    click.echo(f"Logs:        {setup.root}/crm.log, erp.log")
