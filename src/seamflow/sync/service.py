"""The sync as a built-in connection: the `sync.apply` step, resolving conflicts, status.

A sync is flows plus a crosswalk: for each side whose changes are read, a generated flow
(`sync.<id>.<side>`, see `sync.flows`) takes each changed record and calls `sync.apply`, a step
like any other — journaled, retried with the same idempotency key, dead-lettered when the record
is bad. `apply` merges the change into the canonical record in one store transaction
(`sync.merge`), then writes the other side through that side's connection, with an idempotency
key derived from the content it writes, and remembers what it wrote (echo detection).
Reconciliation lives in `sync.check`, the initial bulk load in `sync.bulk_load`; both apply
records through this service.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from seamflow import clock, connectors, engine, errors, flows, store
from seamflow.ids import Json
from seamflow.sync import merge
from seamflow.sync.bulk_load import BulkLoad, LoadOptions, LoadProgress
from seamflow.sync.check import CheckReport, check_sync
from seamflow.sync.model import Model
from seamflow.sync.reading import SideReader
from seamflow.sync.spec import Side, Sync, Write

__all__ = ["SyncService"]


class ApplyInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sync: str
    side: str
    record: dict[str, Any]
    deleted: bool = False


class _NoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
        db: store.SyncStore,
        pool: engine.Pool,
        syncs: Mapping[str, Sync],
        models: Mapping[str, Model],
        context: Mapping[str, Any],
    ) -> None:
        self.db = db
        """Where the sync's canonical records, crosswalk, conflicts and loads are kept."""
        self._pool = pool
        self.syncs = dict(syncs)
        self.models = dict(models)
        self._context = dict(context)
        self._locks: dict[str, asyncio.Lock] = {}
        self._templates: dict[tuple[str, str, str], flows.Template] = {}
        self._reader = SideReader(pool, context)

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
        sync = self.sync_spec(sync_id)
        change = self._change(sync, side_name, record, deleted)
        match_key = self._match_key(sync, change.values)
        async with self._lock(f"{sync.id}:{match_key or side_name + ':' + change.key}"):
            outcome = await self.db.sync_transact(
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
        await self.db.sync_transact(
            sync.id,
            write.side,
            new_key,
            None,
            lambda state: (merge.written(state, write, new_key, done_at), None),
            canonical_id=canonical_id,
        )

    def _template(self, sync: Sync, write: merge.Write, spec: Write, part: str) -> flows.Template:
        cache_key = (sync.id, f"{write.side}.{write.op}", part)
        template = self._templates.get(cache_key)
        if template is None:
            value = spec.with_ if part == "with" else spec.key
            names = frozenset({"record", "canonical", "key", "canonical_id", "result"})
            template = flows.Template.compile(
                value, where=f"syncs/{sync.id}.sides.{write.side}.{write.op}.{part}", extra_names=names
            )
            self._templates[cache_key] = template
        return template

    # -- conflicts -----------------------------------------------------------------------------
    async def resolve(self, conflict_id: str, value: Json) -> merge.Outcome:
        """Settle a queued conflict with `value`: the canonical record takes it, both sides are written."""
        conflict = await self.db.get_sync_conflict(conflict_id)
        sync = self.sync_spec(conflict.sync_id)
        if conflict.field != "_deleted":
            model_field = self._model(sync).fields.get(conflict.field)
            if model_field is not None:
                values, problems = self._model(sync).validate_record({conflict.field: value})
                if problems:
                    raise errors.InvalidInput("; ".join(problems), code="sync.record_invalid")
                value = values[conflict.field]
        await self.db.close_sync_conflict(conflict_id, {"value": value})
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

        outcome = await self.db.sync_transact(sync.id, "", None, None, decide, canonical_id=conflict.canonical_id)
        for write in outcome.writes:
            await self._write(sync, outcome.canonical_id, write)
        return outcome

    # -- reconciliation and initial load ---------------------------------------------------------
    async def check(self, sync_id: str, *, repair: bool = False) -> CheckReport:
        """Compare both sides record by record; with `repair`, converge them (see `sync.check`)."""
        return await check_sync(self, self._reader, self.sync_spec(sync_id), repair=repair)

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
        """Bring every record of `side_name` through the sync: a resumable bulk load (see `sync.bulk_load`)."""
        sync = self.sync_spec(sync_id)
        self._side(sync, side_name)
        options = LoadOptions(chunk=chunk, parallel=parallel, restart=restart, on_progress=on_progress)
        return await BulkLoad(self, self._reader, sync, side_name).run(options)

    def canonical_values(self, sync: Sync, side_name: str, record: Mapping[str, Any]) -> dict[str, Json]:
        """A side's record in canonical fields, as far as they fit the model (for comparing sides)."""
        side = sync.sides[side_name]
        raw = {canonical: record.get(field_) for canonical, field_ in side.fields.items()}
        values, _ = self._model(sync).validate_record(raw)
        return values

    # -- status --------------------------------------------------------------------------------
    async def status(self, sync_id: str) -> dict[str, Json]:
        """Records, links, deletes and open conflicts of a sync (feeds and runs are added by the API)."""
        sync = self.sync_spec(sync_id)
        counts = await self.db.sync_counts(sync.id)
        return {"sync": sync.id, "mode": sync.mode.value, "sides": list(sync.sides), **counts}

    # -- helpers -------------------------------------------------------------------------------
    def sync_spec(self, sync_id: str) -> Sync:
        """The definition of sync `sync_id`.

        Raises:
            errors.NotFound: the project defines no such sync (the defined ones are named).
        """
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
