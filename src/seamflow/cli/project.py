"""A Seamflow project on disk (`flows/`, `connections.yaml`, `.env`, `.seamflow/`) and the engine built from it."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seamflow import directory, engine, insight, store, sync
    from seamflow.flows import validate

__all__ = [
    "PROJECT_MARKERS",
    "ProjectPaths",
    "build_engine",
    "check_secrets_set",
    "find_project",
    "next_steps",
    "open_insight",
    "open_store",
    "require_project",
]

ENVIRONMENTS = "environments"
"""The folder of a project's environments: `environments/<name>/connections.yaml` and `.env`."""
PROJECT_MARKERS = ("seamflow.toml", "flows", "connections.yaml")
"""What makes a folder a Seamflow project: any one of these in it (not `.seamflow/`: commands create it)."""


@dataclass(frozen=True, slots=True)
class ProjectPaths:
    """Where a project keeps its files."""

    root: Path

    @property
    def flows(self) -> Path:
        return self.root / "flows"

    @property
    def environment(self) -> str | None:
        """The environment selected by `SEAMFLOW_ENV` (the real environment's, else the project `.env`'s)."""
        name = os.environ.get("SEAMFLOW_ENV")
        if name is None and (self.root / ".env").exists():
            from dotenv import dotenv_values

            name = dotenv_values(self.root / ".env").get("SEAMFLOW_ENV")
        return name or None

    @property
    def connections(self) -> Path | None:
        """`environments/<env>/connections.yaml` if the environment has one, else `connections.yaml`."""
        name = self.environment
        if name is not None and (own := self.root / ENVIRONMENTS / name / "connections.yaml").exists():
            return own
        path = self.root / "connections.yaml"
        return path if path.exists() else None

    @property
    def state(self) -> Path:
        """The project's `.seamflow/` folder: its SQLite store and what connections keep between starts."""
        return self.root / ".seamflow"

    @property
    def database(self) -> Path:
        configured = os.environ.get("SEAMFLOW_DATABASE")
        return Path(configured) if configured else self.root / ".seamflow" / "seamflow.db"

    def load_dotenv(self) -> None:
        """Put `.env` settings into the environment: real environment variables win, then the selected
        environment's `environments/<env>/.env` (its secrets and settings), then the project's `.env`."""
        name = self.environment
        files = [self.root / ENVIRONMENTS / name / ".env"] if name is not None else []
        for env_file in [*files, self.root / ".env"]:
            if env_file.exists():
                from dotenv import dotenv_values

                for key, value in dotenv_values(env_file).items():
                    if value is not None:
                        os.environ.setdefault(key, value)


def is_project(folder: Path) -> bool:
    """Return whether `folder` holds any of `PROJECT_MARKERS`."""
    return any((folder / marker).exists() for marker in PROJECT_MARKERS)


def find_project(start: Path) -> Path | None:
    """The nearest folder from `start` upwards that is a project, or None."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if is_project(folder):
            return folder
    return None


def require_project(paths: ProjectPaths) -> None:
    """Refuse to go on outside a project, with one line that says how to get into one.

    Raises:
        errors.NotFound: `paths.root` is not a project (`cli.no_project`).
    """
    from seamflow import errors

    if is_project(paths.root):
        name = paths.environment
        if name is not None and not (paths.root / ENVIRONMENTS / name).is_dir():
            folder = paths.root / ENVIRONMENTS
            known = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
            raise errors.InvalidInput(
                f"SEAMFLOW_ENV is {name!r} but {folder / name} does not exist;"
                f" expected one of: {', '.join(known) or 'no environments (create environments/<name>/)'}",
                code="cli.unknown_environment",
            )
        return
    where = paths.root.resolve()
    raise errors.NotFound(
        f"not in a Seamflow project (no seamflow.toml, flows/ or connections.yaml in {where} or its parents);"
        " cd into one, pass --project DIR, or create one with `seamflow init DIR`",
        code="cli.no_project",
    )


def open_store(paths: ProjectPaths, database: str | None = None, *, shared: bool = False) -> store.Store:
    """The project's store (not yet opened).

    `database` (the `--database` option), else `SEAMFLOW_DATABASE_URL`, may be a
    `postgresql://` URL; anything else is a SQLite file, by default `.seamflow/seamflow.db`.
    `shared`: several processes of one `serve` use a SQLite file at once.
    """
    from seamflow import store

    target = database or os.environ.get("SEAMFLOW_DATABASE_URL")
    if target and store.is_postgres_url(target):
        return store.PostgresStore(target)
    if target and "://" in target:
        from seamflow import errors

        scheme = target.partition("://")[0]
        source = "--database" if database else "SEAMFLOW_DATABASE_URL"
        raise errors.InvalidInput(
            f"{source}: a {scheme}:// URL is not a database Seamflow can use;"
            " expected a postgresql:// URL or the path of a SQLite file",
            code="cli.bad_database",
        )
    durability = os.environ.get("SEAMFLOW_DURABILITY", "full")
    return store.SqliteStore(Path(target) if target else paths.database, durability=durability, shared=shared)


def check_secrets_set(paths: ProjectPaths, project: validate.Project) -> None:
    """Refuse a project whose connections or flows read a secret nobody set (`flow validate`, `serve`).

    Args:
        paths: the project's folders.
        project: the project just validated (`validate.validate_project`).

    Raises:
        errors.FlowInvalid: one problem per unset secret, naming the command and the variable that set it.
    """
    from seamflow import engine, errors

    problems = engine.unset_secret_problems(paths.root, project)
    if problems:
        raise errors.FlowInvalid(problems)


def build_engine(
    paths: ProjectPaths, db: store.Store, options: engine.EngineOptions
) -> tuple[engine.Engine, dict[str, Any]]:
    """Validate the project and assemble its engine; returns the engine and the template context.

    The engine's services hold an `engine.Reloader` that reads the flow files again (the flows
    of the project's syncs, generated at start, stay as they are).

    Raises:
        errors.FlowInvalid: a flow or connection is invalid, or reads a secret nobody set (every problem listed).
    """
    from seamflow import directory, engine, lifecycle, sync
    from seamflow.flows import expressions, validate

    project = validate.validate_project(paths.flows, paths.connections)
    check_secrets_set(paths, project)
    secrets = engine.load_secrets(root=paths.root)
    env = engine.load_env()
    context: dict[str, Any] = {"secrets": expressions.Secrets(secrets), "env": env}
    syncs = sync.load_project(paths.root, project.connections)
    generated = {**_sync_flow_sources(syncs), **_lifecycle_flow_sources()}
    sources = {**_flow_sources(project), **generated}
    served = {
        name
        for name, config in project.connections.items()
        if config.get("connector") in ("directory", "insight", "identity")
    }
    configs = {name: config for name, config in project.connections.items() if name not in served}
    tokens = engine.StoredTokens(db, lambda: engine.secrets.read_key(paths.root))
    outbound = engine.project_outbound(paths.root)
    pool = engine.Pool(
        configs, secrets=secrets, env=env, state_root=paths.state / "connections", tokens=tokens, outbound=outbound
    )
    eng = engine.Engine(db, engine.Catalog(sources), pool, context=context, options=options)
    eng.services.add(engine.Reloader(eng, _flow_reader(paths, project.connections, generated)))
    bench = lifecycle.Workbench(paths.connections, context=context, flow_ids=lambda: eng.catalog.current.keys())
    eng.services.add(bench)
    eng.services.add(lifecycle.LiveMirror(db, context))
    eng.services.add(
        engine.DecisionLinks(lambda: engine.secrets.read_key(paths.root), os.environ.get("SEAMFLOW_PUBLIC_URL"))
    )
    sign_in = directory.SignInSettings.from_env(os.environ)
    # the API's sign-in and any `connector: directory` connection share it
    people = directory.Directory(db, lockout=sign_in.lockout, session_ttl=sign_in.session_ttl, flows_root=paths.flows)
    eng.services.add(people)
    oidc_file = paths.root / "oidc.yaml"
    if oidc_file.exists():  # sign-in with the company's identity provider, beside passwords
        eng.services.add(directory.OidcSignIn(directory.read_oidc_settings(oidc_file, secrets), db))
    _add_builtin_connections(paths, eng, project.connections, people, syncs)
    return eng, context


def _add_builtin_connections(
    paths: ProjectPaths,
    eng: engine.Engine,
    connections: Mapping[str, Mapping[str, Any]],
    people: directory.Directory,
    syncs: sync.SyncProject,
) -> None:
    """Serve the connections Seamflow answers itself: `directory` (the engine's `Directory`),
    `identity`, `insight` (DuckDB, loaded only by a project that asks for it) and the syncs' `sync`."""
    from seamflow import sync

    for name, config in connections.items():
        kind = config.get("connector")
        if kind == "directory":
            eng.pool.add_builtin(name, people)
        elif kind == "identity":
            from seamflow import identity

            folder = paths.root / str(config.get("resolutions") or "identity")
            eng.pool.add_builtin(name, identity.IdentityConnector(eng.db, folder))
        elif kind == "insight":
            from seamflow import insight

            eng.pool.add_builtin(name, insight.InsightConnector(open_insight(paths, eng.db, eng), root=paths.root))
    if syncs.syncs:
        service = sync.SyncService(eng.db, eng.pool, syncs.syncs, syncs.models, eng.context)
        eng.pool.add_builtin("sync", service)
        eng.services.add(service)


def open_insight(paths: ProjectPaths, db: store.Store, eng: engine.Engine) -> insight.Insight:
    """The engine's insight, opened once: its index kept in `.seamflow/insight/index.duckdb` across
    restarts (in memory while another process has that file open), its archive beside it.

    Step rows get their system from the flows served now (the connection each action calls).
    """
    from seamflow import insight

    found = eng.services.get(insight.Insight)
    if found is None:
        folder = paths.state / "insight"
        systems = insight.step_systems(eng.catalog.current.values())
        found = insight.Insight(db, folder / "index.duckdb", archive=folder / "archive", systems=systems)
        eng.services.add(found)
    return found


def _flow_sources(project: validate.Project) -> dict[str, engine.FlowSource]:
    from seamflow import engine

    return {
        flow_id: engine.FlowSource(
            spec=loaded.spec,
            version=loaded.version,
            source=loaded.path.read_text(encoding="utf-8"),
            path=str(loaded.path),
        )
        for flow_id, loaded in project.flows.items()
    }


def _sync_flow_sources(syncs: sync.SyncProject) -> dict[str, engine.FlowSource]:
    from seamflow import engine, sync
    from seamflow.flows import load

    return {
        flow_id: engine.FlowSource(
            spec=flow_spec, version=load.flow_version(text.encode()), source=text, path=f"syncs/{flow_id}"
        )
        for flow_id, (flow_spec, text) in sync.generated_flows(syncs).items()
    }


def _lifecycle_flow_sources() -> dict[str, engine.FlowSource]:
    """The built-in flow of promotion requests (an approval by the flow's owner)."""
    from seamflow import engine, lifecycle
    from seamflow.flows import load

    text = lifecycle.PROMOTION_FLOW_SOURCE
    parsed, _ = load.load_flow_text(text, f"<{lifecycle.PROMOTION_FLOW_ID}>")
    version = load.flow_version(text.encode())
    return {parsed.id: engine.FlowSource(spec=parsed, version=version, source=text, path=f"<{parsed.id}>")}


def _flow_reader(
    paths: ProjectPaths, connections: Mapping[str, Any], generated: Mapping[str, engine.FlowSource]
) -> engine.FlowReader:
    """Reads the flow files again for a reload, checked against the connections the process opened.

    A flow that reads a secret nobody set is not loaded, as at start (`check_secrets_set`).
    """
    import dataclasses

    from seamflow import engine, errors
    from seamflow.flows import validate

    def read() -> tuple[dict[str, engine.FlowSource], list[errors.Problem]]:
        project, problems = validate.check_project(paths.flows, paths.connections)
        unset = engine.unset_secret_problems(paths.root, project)
        unset_files = {p.where.file for p in unset}
        flows = {i: f for i, f in project.flows.items() if str(f.path) not in unset_files}
        problems += unset
        if project.connections != connections:
            where = errors.Location(str(paths.connections or paths.root / "connections.yaml"))
            problems.append(
                errors.Problem(
                    where,
                    "connections.yaml changed since `seamflow serve` started; the connections it opened stay",
                    "a restart of `seamflow serve` to open the changed connections",
                )
            )
        return {**_flow_sources(dataclasses.replace(project, flows=flows)), **generated}, problems

    return read


def next_steps(directory: Path) -> str:
    """What to do after `init`, with the command spelled so that it works from inside `directory`."""
    here = Path(sys.argv[0])
    if here.name != "seamflow":  # python -m seamflow: the script beside the interpreter, if installed
        here = Path(sys.executable).parent / "seamflow"
    here = here.absolute()
    found = shutil.which("seamflow")
    if found and Path(found).resolve() == here.resolve():
        cmd = "seamflow"
    else:
        relative = os.path.relpath(here, directory.absolute())
        cmd = min(relative, str(here), key=len)
    width = len(cmd) + 26
    return "\n".join(
        [
            "Next:",
            f"  cd {directory}",
            f"  {cmd + ' secrets set orders_token':{width}} # the orders system's API token (any text for now)",
            f"  {cmd + ' flow validate':{width}} # every problem with file:line:column",
            f"  {cmd + ' dev receiver':{width}} # in a 2nd terminal, in {directory}: the orders system's stand-in",
            f"  {cmd + ' serve':{width}} # in a 3rd terminal, in {directory}: API and webhooks on :8080",
            "Tutorial: docs/tutorial/first-flow.md",
        ]
    )
