"""`seamflow data profile` and `seamflow migrate`: data quality from the command line."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from seamflow.cli.options import database_option, open_project, project_option, run
from seamflow.cli.signals import stop_on_ctrl_c
from seamflow.cli.table import json_option, print_json

if TYPE_CHECKING:
    from seamflow import engine, quality
    from seamflow.cli.project import ProjectPaths

__all__ = ["data_group", "migrate"]


@click.group("data")
def data_group() -> None:
    """Data quality: profile files and tables against rules."""


@data_group.command("profile")
@click.argument("source")
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="check the values against this rule file",
)
@click.option(
    "--mapping",
    "mapping_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="a migration file: its rules, with its fields mapped to the source's columns",
)
@click.option(
    "--encoding", default="auto", show_default=True, help="the CSV's encoding (auto: UTF-8, else GBK/GB18030)"
)
@click.option("--sheet", default=None, help="the XLSX sheet (default: the first)")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), help="also write an HTML report")
@json_option
@project_option
def data_profile(
    source: str,
    rules_file: Path | None,
    mapping_file: Path | None,
    encoding: str,
    sheet: str | None,
    html_file: Path | None,
    as_json: bool,
    project: Path,
) -> None:
    """Profile FILE (CSV in any encoding, XLSX) or CONNECTION.TABLE: per column type, nulls,
    distinct values, top values, patterns and the rules broken.
    """
    from seamflow import errors, quality
    from seamflow.cli.options import fail
    from seamflow.cli.progress import Progress

    stop_on_ctrl_c()
    try:
        rules, fields = _profile_rules(rules_file, mapping_file)
        if rules is not None and rules.rules.references:
            run(_read_references(rules, project))
        table = _open_profiled(source, encoding, sheet, project)
        if as_json:
            found = quality.profile_table(table, rules=rules, fields=fields)
        else:
            with Progress(f"profiling {table.name}", "rows") as shown:
                found = quality.profile_table(
                    table, rules=rules, fields=fields, on_progress=lambda done: shown.update(done, table.total_rows)
                )
    except errors.SeamflowError as exc:
        fail(exc)
    if html_file is not None:
        html_file.write_text(quality.profile_html(found), encoding="utf-8")
    if as_json:
        print_json(found.as_json())
        return
    click.echo(quality.profile_text(found))
    if html_file is not None:
        click.echo(f"\nHTML report: {html_file}")


async def _read_references(rules: quality.RuleSet, project: Path) -> None:
    from seamflow import quality

    pool = _pool(open_project(project))
    try:
        await quality.load_references(rules, pool)
    finally:
        await pool.close()


def _profile_rules(
    rules_file: Path | None, mapping_file: Path | None
) -> tuple[quality.RuleSet | None, dict[str, str] | None]:
    from seamflow import quality

    if mapping_file is not None:
        mapping, _ = quality.load_mapping(mapping_file)
        rules_path = mapping.rules and mapping_file.parent / mapping.rules
        return (quality.load_rules(rules_path, mapping.rules) if rules_path else None), dict(mapping.fields)
    return (quality.load_rules(rules_file) if rules_file is not None else None), None


def _open_profiled(source: str, encoding: str, sheet: str | None, project: Path) -> quality.Table:
    import re

    from seamflow import errors, quality

    path = Path(source)
    is_file = path.suffix.lower() in (".csv", ".tsv", ".txt", ".xlsx", ".xlsm")
    if is_file or path.exists() or not re.fullmatch(r"[A-Za-z_][\w-]*\.[A-Za-z_]\w*(\.[A-Za-z_]\w*)?", source):
        return quality.open_file(path, encoding=encoding, sheet=sheet)
    name, _, table = source.partition(".")
    paths = open_project(project)
    config = _pool(paths).resolve(name)
    url = config.config.get("url")
    if config.connector != "sql" or not isinstance(url, str):
        raise errors.InvalidInput(
            f"{source}: connection {name!r} is a {config.connector} connection;"
            " expected a file or a sql CONNECTION.TABLE",
            code="quality.source",
        )
    import sqlalchemy

    quoted = ".".join(sqlalchemy.create_engine(url).dialect.identifier_preparer.quote(p) for p in table.split("."))
    return quality.open_query(url, f"SELECT * FROM {quoted}", name=source)  # noqa: S608 - an identifier, quoted


def _pool(paths: ProjectPaths) -> engine.Pool:
    from seamflow import engine
    from seamflow.flows import load

    configs = load.load_connections_file(paths.connections)[0] if paths.connections else {}
    return engine.Pool(
        configs,
        secrets=engine.load_secrets(root=paths.root),
        env=engine.load_env(),
        outbound=engine.project_outbound(paths.root),
    )


@click.command("migrate")
@click.argument("mapping_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="read and check every row; write and store nothing")
@click.option(
    "--restart", is_flag=True, help="start from the first row again (drops the checkpoint and open quarantine)"
)
@click.option(
    "--export-quarantine",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the open quarantined rows with their reasons to a CSV (UTF-8 with BOM, opens in Excel)",
)
@click.option(
    "--resubmit",
    type=click.Path(dir_okay=False, path_type=Path, exists=True),
    help="check the quarantined rows again with the fixes in this CSV (as exported) and load the good ones",
)
@json_option
@project_option
@database_option
def migrate(
    mapping_file: Path,
    dry_run: bool,
    restart: bool,
    export_quarantine: Path | None,
    resubmit: Path | None,
    as_json: bool,
    project: Path,
    database: str | None,
) -> None:
    """Move rows from a file or query into a table or connector action, in batches, through the rules.

    A checkpoint is stored after each batch: after Ctrl-C or a crash the same command continues
    where it stopped, without doubles. Rows that break a rule are quarantined with the rule.
    """
    from seamflow import quality
    from seamflow.cli.progress import Progress
    from seamflow.cli.project import open_store

    paths = open_project(project)
    stop_on_ctrl_c()

    async def work(shown: Progress | None) -> Any:
        db = open_store(paths, database)
        await db.open()
        pool = _pool(paths)
        migration, mapping = await quality.open_migration(mapping_file, db, pool)
        try:
            if export_quarantine is not None:
                return await _export(db, mapping, export_quarantine)
            if resubmit is not None:
                return await migration.resubmit(_read_fixes(resubmit, mapping))

            def progress(report: quality.MigrationReport) -> None:
                if shown is not None:
                    shown.update(report.read, report.total)

            options = quality.MigrationOptions(is_dry_run=dry_run, restart=restart, on_progress=progress)
            return await migration.run(options)
        finally:
            await migration.close()
            await pool.close()
            await db.close()

    if export_quarantine is not None or resubmit is not None:
        result = run(work(None))
        _print_other(result, export_quarantine, as_json)
        return
    label = f"migrating {mapping_file.stem}" + (" (dry run)" if dry_run else "")
    try:
        if as_json:  # stdout is the JSON report alone
            report = run(work(None))
        else:
            with Progress(label, "rows") as shown:
                report = run(work(shown))
    except KeyboardInterrupt:
        click.echo("\nstopped; run the same command to continue", err=True)
        sys.exit(130)
    _print_report(report, as_json)


def _print_report(report: quality.MigrationReport, as_json: bool) -> None:
    if as_json:
        print_json(report.as_json())
        return
    if report.already_finished:
        click.echo(f"migration {report.migration_id} had finished; --restart runs it again")
    resumed = f" (resumed at row {report.resumed_at:,})" if report.resumed_at else ""
    verb = "would load" if report.is_dry_run else "loaded"
    click.echo(
        f"migration {report.migration_id}{resumed}: read {report.read:,}, {verb} {report.loaded:,}"
        f" (fixed {report.fixed:,}), quarantined {report.quarantined:,}"
    )
    for rule, count in sorted(report.by_rule.items(), key=lambda item: -item[1]):
        click.echo(f"  {rule:<32} {count:>10,}")


def _print_other(result: Any, exported: Path | None, as_json: bool) -> None:
    if exported is not None:
        click.echo(f"wrote {result} quarantined rows to {exported}")
        return
    if as_json:
        print_json({"loaded": result.loaded, "still_quarantined": result.still_quarantined, "by_rule": result.by_rule})
        return
    click.echo(f"re-submitted: loaded {result.loaded:,}, still quarantined {result.still_quarantined:,}")
    for rule, count in sorted(result.by_rule.items(), key=lambda item: -item[1]):
        click.echo(f"  {rule:<32} {count:>10,}")


async def _export(db: Any, mapping: quality.Mapping, target: Path) -> int:
    rows = await db.list_quarantine(mapping.id)
    fields = list(mapping.fields)
    with target.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["_row", *fields, "_reasons"])
        for item in rows:
            data = item.row if isinstance(item.row, dict) else {}
            reasons = "; ".join(f"{v['rule']}: {v['message']}" for v in item.violations)
            writer.writerow([item.row_number, *(data.get(name) or "" for name in fields), reasons])
    return len(rows)


def _read_fixes(path: Path, mapping: quality.Mapping) -> dict[int, dict[str, Any]]:
    from seamflow import errors, quality

    table = quality.open_file(path)
    if "_row" not in table.columns:
        table.close()
        raise errors.InvalidInput(f"{path.name} has no _row column; expected a file from --export-quarantine")
    at = table.columns.index("_row")
    fields = [(name, table.columns.index(name)) for name in mapping.fields if name in table.columns]
    fixes = {}
    for row in table.rows:
        fixes[int(row[at])] = {name: (row[i] or None) for name, i in fields}
    return fixes
