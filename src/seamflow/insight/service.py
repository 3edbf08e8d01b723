"""Insight over a store: the process index kept up to date from the store's event log.

Every question (a map, a KPI, an export) first reads the log rows appended since the last one
(`after_seq`), so a growing log is indexed once, in small batches, and never re-read whole.
DuckDB work runs in a thread (`asyncio.to_thread`), one question at a time per index.

A kept index (a DuckDB file) is written by one process at a time: a second process that finds it
open keeps its own index in memory. A kept index that is not of this log (its last event is not
the log's) is cleared and built again; an empty index starts from the archive, if there is one.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from seamflow import clock, errors, store
from seamflow.insight import exchange
from seamflow.insight.activities import LevelNames, StepSystems, to_event
from seamflow.insight.alerts import AlertMemory
from seamflow.insight.conformance import Conformance, check_conformance
from seamflow.insight.diagnosis import Diagnosis, diagnose
from seamflow.insight.index import ProcessIndex
from seamflow.insight.kpi import Kpi, KpiResult, compute_kpi
from seamflow.insight.model import Event
from seamflow.insight.process_map import CaseFilter, ProcessMap, discover_map
from seamflow.insight.recent import Recent
from seamflow.insight.value import WorkSaved, work_saved

__all__ = ["Insight"]

log = logging.getLogger(__name__)
_PAGE = 2_000
"""Log rows read and indexed at a time by a catch-up. Its high water stays with the serving process
(glibc keeps the freed heap): with 20,000, indexing 15,000 parked approval runs raised the first
process's RSS by 131 MB, with 2,000 by 57 MB (benchmarks/parked_approvals.py, 30,000 runs)."""
_PRUNE_BATCH = 5_000


class Insight:
    """Process maps, KPIs and exports of a store's event log.

    Args:
        log_reads: the store's event log.
        index_path: a DuckDB file to keep the index in across restarts (None: in memory). If
            another process has it open, this one keeps its index in memory.
        archive: the folder of the archive (`archive`): an empty index starts from it.
        systems: the connection each action step calls (`step_systems`): the system of step rows.
    """

    def __init__(
        self,
        log_reads: store.EventLogReads,
        index_path: Path | None = None,
        *,
        archive: Path | None = None,
        systems: StepSystems | None = None,
    ) -> None:
        self._log = log_reads
        self.index = _open_index(index_path)
        self.archive_folder = archive
        """Where `keep_archived` writes the archive, and where an empty index starts from."""
        self._systems = systems
        self._is_checked = False
        self._archived_seq: int | None = None  # the archive's last seq, read from it at the first use
        self._archived_at: datetime | None = None
        self._read_seq = self.index.last_seq
        self._catching_up = asyncio.Lock()
        self._levels: LevelNames = {}
        self.alerts = AlertMemory()
        """The alerts notified so far, so that one which keeps firing is not notified at every check."""
        self.skipped = 0
        """Rows of the log that could not be read as events (their objects were malformed)."""
        self.recent = Recent(log_reads, self.catch_up, lambda: self._read_seq)
        """The Insight page's last answers (KPIs, diagnosis), given while the log grows (`Recent`)."""

    @property
    def log(self) -> store.EventLogReads:
        """The event log this insight reads."""
        return self._log

    async def catch_up(self) -> int:
        """Index the log rows appended since the last call; returns how many events were added."""
        added = 0
        async with self._catching_up:
            if not self._is_checked:
                await self._check_index()
                self._is_checked = True
            while True:
                rows = await self._log.list_event_log(after_seq=self._read_seq, limit=_PAGE)
                if not rows:
                    return added
                events = [e for e in map(self._event, rows) if e is not None]
                added += await asyncio.to_thread(self.index.append, events)
                self._read_seq = rows[-1].seq
                if len(rows) < _PAGE:
                    return added

    async def _check_index(self) -> None:
        """A kept index must be of this log; an empty one starts from the archive.

        The log's row at the index's last seq must have the time of the index's last event. A log
        without that row (pruned, or an imported file's empty log) leaves the index as it is.
        """
        last = self.index.last_seq
        if last:
            rows = await self._log.list_event_log(after_seq=last - 1, limit=1)
            if rows and rows[0].seq == last and round(rows[0].at.timestamp() * 1000) != self.index.time_of(last):
                log.warning("insight: the kept index %s is not of this event log; building it again", self.index.path)
                await asyncio.to_thread(self.index.clear)
                self._read_seq = 0
        folder = self.archive_folder
        if folder is not None and not folder.exists() and folder.with_name(folder.name + ".old").exists():
            folder.with_name(folder.name + ".old").rename(folder)  # a crash between the two renames of an archive
        if not self.index.last_seq and folder is not None and (folder / "watermark.parquet").is_file():
            await asyncio.to_thread(self.index.load_archive, folder)
            self._read_seq = self.index.last_seq

    def load_archive(self, folder: Path) -> None:
        """Start from an archive (`ProcessIndex.archive`): the log rows after it are read from the store.

        This is how KPIs and maps still cover a log whose older rows were pruned from the store.
        """
        self.index.load_archive(folder)
        self._read_seq = self.index.last_seq
        self._is_checked = True  # chosen by the caller: the archive's last rows may be pruned from the log

    async def archive(self, folder: Path) -> int:
        """Write the index, with the log read up to now, as Parquet into `folder`; returns its last seq.

        The folder is replaced whole once the new archive is written: a crash while writing leaves
        the previous archive as it was.
        """
        await self.catch_up()
        await asyncio.to_thread(_replace_archive, self.index, folder)
        return self.index.last_seq

    async def prune_archived(self, pruning: store.EventLogPruning, through_seq: int, before: datetime) -> int:
        """Delete the archived rows (seq ≤ `through_seq`) older than `before` from the store's log, in batches."""
        total = 0
        while (pruned := await pruning.prune_event_log(through_seq, before, _PRUNE_BATCH)) > 0:
            total += pruned
        return total

    async def keep_archived(
        self, pruning: store.EventLogPruning, before: datetime, archive_every: timedelta = timedelta(hours=1)
    ) -> int:
        """Archive, then prune, the log's rows older than `before` (the runs' retention); returns the rows pruned.

        The archive (`archive_folder`) is written again when the index holds an event older than
        `before` that the archive lacks, at most once per `archive_every` (each write is the whole
        index); only archived rows are pruned, so the KPIs still read every row through it.
        """
        folder = self.archive_folder
        if folder is None:
            return 0
        await self.catch_up()
        if self._archived_seq is None:
            self._archived_seq = await asyncio.to_thread(_archived_seq, folder)
        rows = self.index.query("SELECT max(seq) FROM events WHERE ts_ms < ?", [_ms(before)])
        due = rows[0][0] if rows and rows[0][0] is not None else 0
        now = clock.now()
        is_time = self._archived_at is None or now - self._archived_at >= archive_every
        if due > self._archived_seq and is_time:
            self._archived_seq = await self.archive(folder)
            self._archived_at = now
        if not self._archived_seq:
            return 0
        return await self.prune_archived(pruning, self._archived_seq, before)

    def _event(self, row: store.LogEntry) -> Event | None:
        try:
            return to_event(row, self._levels, self._systems)
        except errors.InvalidInput as exc:
            self.skipped += 1
            log.warning("insight: event_log row left out of the index: %s", exc)
            return None

    async def process_map(self, where: CaseFilter) -> ProcessMap:
        """The process map of the cases `where` selects, with the log read up to now."""
        await self.catch_up()
        return await asyncio.to_thread(discover_map, self.index, where)

    async def conformance(self, where: CaseFilter, designed: list[str]) -> Conformance:
        """The cases' deviations from the designed path, with the log read up to now."""
        await self.catch_up()
        return await asyncio.to_thread(check_conformance, self.index, where, designed)

    async def diagnosis(self, where: CaseFilter, top: int = 5, people: store.DirectoryStore | None = None) -> Diagnosis:
        """Bottlenecks, hand-offs (between people, systems and, given the directory, departments), rework
        and data entered twice, with their cases, with the log read up to now."""
        await self.catch_up()
        departments = await _departments(people) if people is not None else None
        return await asyncio.to_thread(diagnose, self.index, where, top, departments)

    async def work_saved(
        self, manual_minutes: dict[str, float], start: datetime | None = None, end: datetime | None = None
    ) -> list[WorkSaved]:
        """Minutes of manual work the flows saved in [start, end), with the log read up to now."""
        await self.catch_up()
        return await asyncio.to_thread(work_saved, self.index, manual_minutes, start, end)

    async def kpi(self, kpi: Kpi, offset: timedelta = timedelta(0), cases: CaseFilter | None = None) -> KpiResult:
        """One KPI's rows (over the cases `cases` selects, if given), with the log read up to now."""
        await self.catch_up()
        return await asyncio.to_thread(compute_kpi, self.index, kpi, offset, cases)

    async def export(self, form: str, path: Path, object_type: str | None = None) -> int:
        """Write the log as `ocel-json`, `ocel-sqlite` or `xes` (flattened on `object_type`).

        Raises:
            errors.InvalidInput: an unknown form, or `xes` without an object type (`insight.export_invalid`).
        """
        await self.catch_up()
        if form == "ocel-json":
            return await asyncio.to_thread(exchange.export_ocel_json, self.index, path)
        if form == "ocel-sqlite":
            return await asyncio.to_thread(exchange.export_ocel_sqlite, self.index, path)
        if form == "xes" and object_type:
            return await asyncio.to_thread(exchange.export_xes, self.index, object_type, path)
        raise errors.InvalidInput(
            f"cannot export {errors.redact(form)}{' without an object type' if form == 'xes' else ''}; expected"
            " ocel-json, ocel-sqlite, or xes with an object type",
            code="insight.export_invalid",
        )

    def close(self) -> None:
        """Close the index (and stop the recomputes running in the background)."""
        self.recent.close()
        self.index.close()


async def _departments(people: store.DirectoryStore) -> dict[str, str]:
    """Each user's department name, by login and by display name (a resource is either)."""
    names = {d.id: d.name for d in await people.list_departments()}
    found: dict[str, str] = {}
    for user in await people.list_users():
        if user.department_id in names:
            found.setdefault(user.display_name, names[user.department_id])
            found[user.login] = names[user.department_id]
    return found


def _ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def _archived_seq(folder: Path) -> int:
    """The last seq of the archive in `folder` (0: none)."""
    watermark = folder / "watermark.parquet"
    if not watermark.is_file():
        return 0
    probe = ProcessIndex()
    try:
        probe.load_archive(folder)
        return probe.last_seq
    finally:
        probe.close()


def _replace_archive(index: ProcessIndex, folder: Path) -> None:
    """Write the archive beside `folder`, then put it in its place (the old one is removed after)."""
    writing = folder.with_name(folder.name + ".writing")
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(writing, ignore_errors=True)
    index.archive(writing)
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    writing.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _open_index(path: Path | None) -> ProcessIndex:
    """The index kept in `path`, or one in memory while another process has the file open."""
    if path is None:
        return ProcessIndex()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return ProcessIndex(path)
    except errors.Conflict:
        log.info("insight: %s is open in another process; this one keeps its index in memory", path)
        return ProcessIndex()
