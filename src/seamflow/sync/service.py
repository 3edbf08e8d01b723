"""The sync as a built-in connection (`sync.apply`), and reconciliation (`seamflow sync check`).

A sync is flows plus a crosswalk: for each side whose changes are read, a generated flow
(`sync.<id>.<side>`, see `sync.flows`) takes each changed record and calls `sync.apply`, a step
like any other — journaled, retried with the same idempotency key, dead-lettered when the record
is bad. `apply` merges the change into the canonical record in one store transaction
(`sync.merge`), then writes the other side through that side's connection, with an idempotency
key derived from the content it writes, and remembers what it wrote (echo detection).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from seamflow import clock, connectors, errors, store
from seamflow.engine import Pool
from seamflow.flows.expressions import Template
from seamflow.ids import Json
from seamflow.sync import merge
from seamflow.sync.model import Model
from seamflow.sync.spec import Side, Sync, Write

__all__ = ["CheckReport", "LoadProgress", "SyncService"]


class ApplyInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sync: str
    side: str
    record: dict[str, Any]
    deleted: bool = False


class _NoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(slots=True)
class LoadProgress:
    """How far a `sync load` is."""

    done: int = 0
    """Records through the sync in all, across resumed runs."""
    total: int | None = None
    loaded_now: int = 0
    """Records through the sync by this run."""
    already_finished: bool = False
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    finished: bool = False


@dataclass(slots=True)
class CheckReport:
    """What `sync check` found: records missing on a side, and fields that differ."""

    sync: str
    compared: int = 0
    missing: list[Json] = field(default_factory=list)
    unlinked: list[Json] = field(default_factory=list)
    differing: list[Json] = field(default_factory=list)
    repaired: int = 0

    def as_json(self) -> Json:
        return {
            "sync": self.sync,
            "compared": self.compared,
            "missing": self.missing,
            "unlinked": self.unlinked,
            "differing": self.differing,
            "repaired": self.repaired,
            "in_sync": not (self.missing or self.unlinked or self.differing),
        }


class SyncService:
    """The `sync` connection: merges changes, writes the other side, reconciles."""

    kind: ClassVar[str] = "sync"
    Config: ClassVar[type[BaseModel]] = _NoConfig
    actions: ClassVar[Mapping[str, connectors.Action]] = {
        "apply": connectors.Action(
            "apply", ApplyInput, "Merge a changed record into its canonical record and write the other side.", True
        )
    }

    def __init__(
        self,
        db: store.SqlStore,
        pool: Pool,
        syncs: Mapping[str, Sync],
        models: Mapping[str, Model],
        context: Mapping[str, Any],
    ) -> None:
        self._db = db
        self._pool = pool
        self.syncs = dict(syncs)
        self.models = dict(models)
        self._context = dict(context)
        self._locks: dict[str, asyncio.Lock] = {}
        self._templates: dict[tuple[str, str, str], Template] = {}

    async def open(self, connection: connectors.Connection) -> None:
        """Nothing to open: the sync's state lives in the store."""

    async def close(self) -> None:
        """Nothing to release."""

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """`apply`: see the module docstring."""
        if action != "apply":
            raise errors.Permanent(f"unknown action {action!r}; expected apply", where="sync")
        inputs = ApplyInput.model_validate(params)
        return (await self.apply(inputs.sync, inputs.side, inputs.record, deleted=inputs.deleted)).as_json()

    # -- applying one change -----------------------------------------------------------------
    async def apply(
        self, sync_id: str, side_name: str, record: Mapping[str, Any], *, deleted: bool = False
    ) -> merge.Outcome:
        """Merge one system's record into the canonical record and converge the other side.

        Raises:
            errors.Permanent: `sync.record_invalid` — the record lacks its key or a field does not
                fit the canonical model (named); nothing is stored.
            errors.Transient: writing the other side failed for now (the step retries).
        """
        sync = self._sync(sync_id)
        change = self._change(sync, side_name, record, deleted)
        match_key = self._match_key(sync, change.values)
        async with self._lock(f"{sync.id}:{match_key or side_name + ':' + change.key}"):
            outcome = await self._db.sync_transact(
                sync.id, side_name, change.key, match_key, lambda state: merge.merge(sync, state, change)
            )
            for write in outcome.writes:
                await self._write(sync, outcome.canonical_id, write)
        return outcome

    def _change(self, sync: Sync, side_name: str, record: Mapping[str, Any], deleted: bool) -> merge.Change:
        side = self._side(sync, side_name)
        where = f"sync {sync.id}, {side_name} record"
        key = record.get(side.key)
        if key in (None, ""):
            raise errors.Permanent(
                f"{where}: the key field {side.key!r} is missing; expected the record's id", code="sync.record_invalid"
            )
        raw = {canonical: record[field_] for canonical, field_ in side.fields.items() if field_ in record}
        values, problems = self._model(sync).validate_record(raw)
        if problems:
            raise errors.Permanent(f"{where} {key}: " + "; ".join(problems), code="sync.record_invalid")
        is_deleted = deleted or bool(side.deleted and record.get(side.deleted) in (True, 1, "1", "true", "yes"))
        return merge.Change(
            side_name, str(key), values, _instant(record.get(side.updated) if side.updated else None), is_deleted
        )

    def _match_key(self, sync: Sync, values: Mapping[str, Json]) -> str | None:
        if not sync.match or any(values.get(f) in (None, "") for f in sync.match):
            return None
        return "|".join(f"{f}={values[f]}" for f in sync.match)

    async def _write(self, sync: Sync, canonical_id: str, write: merge.Write) -> None:
        side = sync.sides[write.side]
        spec = {"create": side.create, "update": side.update, "delete": side.delete}[write.op]
        if spec is None:
            return
        record = {field_: write.record.get(canonical) for canonical, field_ in side.fields.items()}
        scope = {
            **self._context,
            "record": record,
            "canonical": write.record,
            "key": write.key,
            "canonical_id": canonical_id,
        }
        params = self._template(sync, write, spec, "with").render(scope)
        opened = self._pool.get(side.connection)
        key = f"sync:{sync.id}:{write.side}:{canonical_id}:{write.op}:{write.hash}:{write.cause}"
        limit = opened.limit if opened.limit is not None else contextlib.nullcontext()
        async with limit:
            result = await opened.connector.call(spec.action, params, idempotency_key=key)
        new_key: str | None = None
        if write.op == "create":
            if spec.key is None:
                raise errors.Permanent(f"sync {sync.id}: sides.{write.side}.create needs `key`", code="sync.invalid")
            rendered = self._template(sync, write, spec, "key").render({**scope, "result": result})
            if rendered in (None, ""):
                raise errors.Permanent(
                    f"sync {sync.id}: sides.{write.side}.create.key gave nothing from the result",
                    code="sync.record_invalid",
                )
            new_key = str(rendered)
        done_at = clock.now()
        await self._db.sync_transact(
            sync.id,
            write.side,
            new_key,
            None,
            lambda state: (merge.written(state, write, new_key, done_at), None),
            canonical_id=canonical_id,
        )

    def _template(self, sync: Sync, write: merge.Write, spec: Write, part: str) -> Template:
        cache_key = (sync.id, f"{write.side}.{write.op}", part)
        template = self._templates.get(cache_key)
        if template is None:
            value = spec.with_ if part == "with" else spec.key
            names = frozenset({"record", "canonical", "key", "canonical_id", "result"})
            template = Template.compile(
                value, where=f"syncs/{sync.id}.sides.{write.side}.{write.op}.{part}", extra_names=names
            )
            self._templates[cache_key] = template
        return template

    # -- conflicts -----------------------------------------------------------------------------
    async def resolve(self, conflict_id: str, value: Json) -> merge.Outcome:
        """Settle a queued conflict with `value`: the canonical record takes it, both sides are written."""
        conflict = await self._db.get_sync_conflict(conflict_id)
        sync = self._sync(conflict.sync_id)
        if conflict.field != "_deleted":
            model_field = self._model(sync).fields.get(conflict.field)
            if model_field is not None:
                values, problems = self._model(sync).validate_record({conflict.field: value})
                if problems:
                    raise errors.InvalidInput("; ".join(problems), code="sync.record_invalid")
                value = values[conflict.field]
        await self._db.close_sync_conflict(conflict_id, {"value": value})
        now = clock.now()

        def decide(state: store.SyncState) -> tuple[store.SyncState, merge.Outcome]:
            data, meta = dict(state.data), dict(state.meta)
            if conflict.field != "_deleted":
                data[conflict.field] = value
                meta[conflict.field] = {"side": "resolution", "at": now.isoformat()}
            new = dataclasses.replace(state, data=data, meta=meta, links=dict(state.links), new_conflicts=())
            outcome = merge.Outcome(state.canonical_id, "changed")
            for side in sync.sides:
                link = new.links.get(side)
                wanted = merge.projection(sync, side, data)
                wanted_hash = merge.projection_hash(wanted)
                # a person decided: write every linked side, whatever we last saw or wrote there — the
                # side may hold a losing value written back while the conflict waited
                if link is not None and link.key is not None:
                    outcome.writes.append(
                        merge.Write(side, "update", link.key, wanted, wanted_hash, f"resolve-{conflict_id}")
                    )
            return new, outcome

        outcome = await self._db.sync_transact(sync.id, "", None, None, decide, canonical_id=conflict.canonical_id)
        for write in outcome.writes:
            await self._write(sync, outcome.canonical_id, write)
        return outcome

    # -- reconciliation ------------------------------------------------------------------------
    async def check(self, sync_id: str, *, repair: bool = False) -> CheckReport:
        """Compare both sides record by record; with `repair`, converge them by the sync's rules.

        Repair feeds each side's current record through `apply` — the owner's side first — so
        ownership and the conflict policy decide, exactly as for a change noticed live; a linked
        record missing on a side is handled by the delete policy.
        """
        sync = self._sync(sync_id)
        report = CheckReport(sync.id)
        listed = {name: await self._list(sync, name) for name in sync.sides}
        states = {s.canonical_id: s for s in await self._db.list_sync_records(sync.id)}
        linked: dict[str, set[str]] = {name: set() for name in sync.sides}
        for state in states.values():
            if state.deleted:
                continue
            report.compared += 1
            per_side: dict[str, dict[str, Json]] = {}
            for name in sync.sides:
                link = state.links.get(name)
                if link is None or link.key is None:
                    report.missing.append({"canonical_id": state.canonical_id, "side": name, "reason": "never written"})
                    continue
                linked[name].add(link.key)
                record = listed[name].get(link.key)
                if record is None:
                    report.missing.append({"canonical_id": state.canonical_id, "side": name, "key": link.key})
                    continue
                per_side[name] = self._canonical(sync, name, record)
            if len(per_side) == 2:
                first, second = sync.sides
                shared = set(sync.sides[first].fields) & set(sync.sides[second].fields)
                for name in sorted(shared):
                    if per_side[first].get(name) != per_side[second].get(name):
                        report.differing.append(
                            {
                                "canonical_id": state.canonical_id,
                                "field": name,
                                first: per_side[first].get(name),
                                second: per_side[second].get(name),
                            }
                        )
        for name in sync.sides:
            for key in sorted(set(listed[name]) - linked[name]):
                report.unlinked.append({"side": name, "key": key})
        if repair:
            report.repaired = await self._repair(sync, report, listed, states)
        return report

    async def _repair(
        self,
        sync: Sync,
        report: CheckReport,
        listed: dict[str, dict[str, dict[str, Any]]],
        states: dict[str, store.SyncState],
    ) -> int:
        repaired = 0
        touched = {str(d["canonical_id"]) for d in report.differing if isinstance(d, dict)}
        order = sorted(sync.sides, key=lambda n: -sum(1 for o in sync.ownership.values() if o == n))
        for canonical_id in sorted(touched):
            state = states[canonical_id]
            for name in order:
                link = state.links.get(name)
                record = listed[name].get(link.key) if link and link.key else None
                if record is not None:
                    await self._forget_written(sync, canonical_id, name)
                    await self.apply(sync.id, name, record)
            repaired += 1
        for item in report.missing:
            if isinstance(item, dict) and "key" in item:
                side, key = str(item["side"]), str(item["key"])
                await self.apply(sync.id, side, {sync.sides[side].key: key}, deleted=True)
                repaired += 1
        for item in report.unlinked:
            if isinstance(item, dict):
                side = str(item["side"])
                if sync.targets(side):
                    await self.apply(sync.id, side, listed[side][str(item["key"])])
                    repaired += 1
        return repaired

    async def _forget_written(self, sync: Sync, canonical_id: str, side: str) -> None:
        """A record changed behind Seamflow's back: what it holds now is not our echo any more."""

        def decide(state: store.SyncState) -> tuple[store.SyncState, None]:
            link = state.links.get(side)
            if link is None:
                return state, None
            links = {**state.links, side: store.SyncLink(side, link.key, None, None, None)}
            return dataclasses.replace(state, links=links, new_conflicts=()), None

        await self._db.sync_transact(sync.id, side, None, None, decide, canonical_id=canonical_id)

    async def _list(self, sync: Sync, name: str) -> dict[str, dict[str, Any]]:
        side = sync.sides[name]
        if side.list is None:
            raise errors.InvalidInput(
                f"sync {sync.id}: sides.{name} has no `list`; `sync check` needs it to read every record",
                code="sync.invalid",
            )
        params = Template.compile(side.list.with_, where=f"syncs/{sync.id}.sides.{name}.list").render(self._context)
        result: Any = await self._pool.get(side.connection).connector.call(side.list.action, params, idempotency_key="")
        for part in side.list.items.split("."):
            result = result.get(part) if isinstance(result, dict) else None
        if not isinstance(result, list):
            raise errors.Permanent(
                f"sync {sync.id}: sides.{name}.list.items {side.list.items!r} is not a list in the result",
                code="sync.invalid",
            )
        return {str(r[side.key]): r for r in result if isinstance(r, dict) and r.get(side.key) not in (None, "")}

    def _canonical(self, sync: Sync, name: str, record: Mapping[str, Any]) -> dict[str, Json]:
        side = sync.sides[name]
        raw = {canonical: record.get(field_) for canonical, field_ in side.fields.items()}
        values, _ = self._model(sync).validate_record(raw)
        return values

    # -- initial load ----------------------------------------------------------------------------
    async def load(
        self,
        sync_id: str,
        side_name: str,
        *,
        chunk: int = 500,
        parallel: int = 16,
        restart: bool = False,
        on_progress: Callable[[LoadProgress], None] | None = None,
    ) -> LoadProgress:
        """Bring every record of `side_name` through the sync: a resumable bulk load.

        The side is read in chunks (a stream where the connector offers one); each chunk's records
        are applied `parallel` at a time, then the position after the chunk is stored. After a
        Ctrl-C or a crash the load continues from the last stored position; records of the chunk
        that was in flight are applied again, which changes nothing (their writes carry the same
        idempotency keys and already-known records are unchanged).
        """
        sync = self._sync(sync_id)
        side = self._side(sync, side_name)
        if side.list is None:
            raise errors.InvalidInput(
                f"sync {sync.id}: sides.{side_name} has no `list`; a load reads the side through it",
                code="sync.invalid",
            )
        flow_id, worker = f"load.{sync.id}.{side_name}", f"load:{socket.gethostname()}:{os.getpid()}"
        now = clock.now()
        until = now + timedelta(minutes=5)
        state = await self._db.claim_feed(flow_id, "load", worker, now, until, start_over=restart)
        if state is None:
            holder = next((f.owner for f in await self._db.list_feeds() if f.flow_id == flow_id), None)
            if holder and _is_dead_local(holder):  # a load that crashed on this machine: continue it
                await self._db.release_worker(holder, now)
                state = await self._db.claim_feed(flow_id, "load", worker, now, until, start_over=restart)
        if state is None:
            raise errors.Conflict(f"a load of {sync.id} from {side_name} is already running in another process")
        position: Json = state.cursor
        progress = LoadProgress(done=state.items, total=await self._count(sync, side_name))
        if isinstance(position, dict) and position.get("after") == "done":
            progress.already_finished = progress.finished = True
            await self._db.release_worker(worker, clock.now())
            return progress
        gate = asyncio.Semaphore(parallel)

        async def one(record: Mapping[str, Any]) -> None:
            async with gate:
                for attempt in range(1, 4):
                    try:
                        await self.apply(sync.id, side_name, record)
                        return
                    except errors.Transient:  # the target is away: a few tries, then the load stops (rerun resumes)
                        if attempt == 3:
                            raise
                        await asyncio.sleep(attempt)
                    except errors.StoreError:
                        raise
                    except errors.SeamflowError as exc:  # a bad record is counted and named, the load goes on
                        progress.failed += 1
                        if len(progress.errors) < 20:
                            progress.errors.append(exc.message)
                        return

        async for rows, after in self._chunks(sync, side_name, position, chunk):
            async with asyncio.TaskGroup() as group:
                for record in rows:
                    if isinstance(record, dict):
                        group.create_task(one(record))
            progress.done += len(rows)
            progress.loaded_now += len(rows)
            now = clock.now()
            await self._db.save_feed_progress(flow_id, worker, {"after": after}, len(rows), None, now)
            await self._db.heartbeat(worker, now, now + timedelta(minutes=5))
            if on_progress is not None:
                on_progress(progress)
        await self._db.save_feed_progress(flow_id, worker, {"after": "done"}, 0, None, clock.now())
        await self._db.release_worker(worker, clock.now())
        progress.finished = True
        return progress

    async def _chunks(
        self, sync: Sync, side_name: str, position: Json, chunk: int
    ) -> AsyncIterator[tuple[list[Json], Json]]:
        side = sync.sides[side_name]
        assert side.list is not None
        start = position.get("after") if isinstance(position, dict) else None
        if start == "done":
            return
        params = Template.compile(side.list.with_, where=f"syncs/{sync.id}.sides.{side_name}.list").render(
            self._context
        )
        connector = self._pool.get(side.connection).connector
        if isinstance(connector, connectors.Streams):
            async for piece in connector.stream(side.list.action, params, start=start, chunk_rows=chunk):
                yield list(piece.rows), piece.position
            return
        records = list((await self._list(sync, side_name)).values())  # no stream: one read, then chunks
        first = int(start) if isinstance(start, int) else 0
        for offset in range(first, len(records), chunk):
            yield list(records[offset : offset + chunk]), offset + chunk

    async def _count(self, sync: Sync, side_name: str) -> int | None:
        side = sync.sides[side_name]
        if side.list is None or side.list.count is None:
            return None
        spec = side.list.count
        params = Template.compile(spec.with_, where=f"syncs/{sync.id}.sides.{side_name}.list.count").render(
            self._context
        )
        result: Any = await self._pool.get(side.connection).connector.call(spec.action, params, idempotency_key="")
        for part in spec.value.split("."):
            if isinstance(result, list) and part.isdigit() and int(part) < len(result):
                result = result[int(part)]
            else:
                result = result.get(part) if isinstance(result, dict) else None
        return int(result) if isinstance(result, int | str) and str(result).isdigit() else None

    # -- status --------------------------------------------------------------------------------
    async def status(self, sync_id: str) -> dict[str, Json]:
        """Records, links, deletes and open conflicts of a sync (feeds and runs are added by the API)."""
        sync = self._sync(sync_id)
        counts = await self._db.sync_counts(sync.id)
        return {"sync": sync.id, "mode": sync.mode.value, "sides": list(sync.sides), **counts}

    # -- helpers -------------------------------------------------------------------------------
    def _sync(self, sync_id: str) -> Sync:
        try:
            return self.syncs[sync_id]
        except KeyError:
            known = ", ".join(sorted(self.syncs)) or "none"
            raise errors.NotFound(f"sync {sync_id!r} is not defined; defined syncs: {known}") from None

    def _side(self, sync: Sync, name: str) -> Side:
        try:
            return sync.sides[name]
        except KeyError:
            raise errors.Permanent(
                f"sync {sync.id} has no side {name!r}; expected one of {', '.join(sync.sides)}", code="sync.invalid"
            ) from None

    def _model(self, sync: Sync) -> Model:
        return self.models[sync.model]

    @contextlib.asynccontextmanager
    async def _lock(self, name: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            yield
        if not lock.locked() and not lock._waiters:
            self._locks.pop(name, None)


def _is_dead_local(holder: str) -> bool:
    """Whether a `load:<host>:<pid>` holder ran on this host and its process is gone."""
    _, host, pid = [*holder.split(":"), "", ""][:3]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _instant(value: Any) -> datetime:
    """A change time from a record's `updated` field (ISO text or a datetime); now if absent."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return clock.now()
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return clock.now()
