"""The connector plugin interface: a connector is code for a kind of system, a connection its configured instance.

A connector declares its config model, its actions (with typed inputs) and is found through
the `seamflow.connectors` entry-point group. See docs/howto/write-a-connector.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import ClassVar, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from seamflow import errors
from seamflow.connectors.guard import Outbound
from seamflow.connectors.tokens import TokenCache
from seamflow.ids import Json

__all__ = [
    "Action",
    "Batch",
    "Checks",
    "Chunk",
    "Connection",
    "Connector",
    "Consumes",
    "Feed",
    "Item",
    "Polls",
    "Streams",
    "add_declared",
    "add_declared_later",
    "available_connectors",
    "feeds_of",
    "field_problems",
    "is_declared",
    "parse_config",
]

M = TypeVar("M", bound=BaseModel)

ENTRY_POINT_GROUP = "seamflow.connectors"


@dataclass(frozen=True, slots=True)
class Action:
    """An operation a connector offers, called from a step as `connection.action`."""

    name: str
    input: type[BaseModel]
    """Validates the step's `with` inputs; its required fields are checked by `flow validate`."""
    description: str = ""
    is_idempotent: bool = False
    """True if calling twice with the same idempotency key yields one effect at the target."""


@dataclass(frozen=True, slots=True)
class Connection:
    """A configured instance of a connector, as declared in `connections.yaml`.

    `config` holds the connector-specific settings with secrets already resolved; never
    log it or put it in an error message.
    """

    name: str
    connector: str
    config: Mapping[str, Json] = field(default_factory=dict)
    concurrency: int | None = None
    """At most this many calls in flight on this connection at once (None: no limit)."""
    timeout: timedelta = timedelta(seconds=30)
    """Bound on every network await of a call."""
    state_dir: Path | None = None
    """A folder the connector may keep files in between starts (the project's
    `.seamflow/connections/<name>/`, e.g. the last OpenAPI document fetched); None: keep none."""
    tokens: TokenCache | None = field(default=None, compare=False, repr=False)
    """Where a connector that signs in keeps its tokens: the engine's cache in the store, shared by
    the cluster. None: the connector keeps them in its own process (`connectors.LocalTokens`)."""
    outbound: Outbound = field(default_factory=Outbound.from_environment, compare=False, repr=False)
    """Where the connection's network calls may go (the outbound guard): public addresses plus what
    the project and the connection allow. By default, the process's `SEAMFLOW_OUTBOUND_ALLOW`."""


@runtime_checkable
class Connector(Protocol):
    """Code for a kind of system. One instance serves one connection."""

    kind: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    actions: ClassVar[Mapping[str, Action]]
    # Optional: `feeds: ClassVar[Mapping[str, Feed]]` with `Polls` / `Consumes`, `Streams`, `Checks`.

    async def open(self, connection: Connection) -> None:
        """Validate `connection.config` against `Config` and open pools/clients."""

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Perform `action`; pass `idempotency_key` to the target.

        Raises:
            errors.Transient: worth retrying with the same key.
            errors.Permanent: retrying will not help.
        """

    async def close(self) -> None:
        """Release pools and clients."""


@runtime_checkable
class Checks(Protocol):
    """A connector that can prove a connection works (`seamflow connections test NAME`)."""

    async def check(self) -> str:
        """Reach the system with the connection's credentials; return what was checked.

        Called after `open`. The answer is one line for a person, e.g. "connected to
        PostgreSQL 15.4 as erp_reader, database erp".

        Raises:
            errors.Permanent: what is wrong, in words a person can act on — the name does not
                resolve (DNS), the connection was refused, the TLS certificate is not trusted,
                the credentials were refused (401/403, bad password), the database does not
                exist. Never a secret, never a URL with a password in it.
            errors.Transient: the system did not answer in time.
        """
        ...


@dataclass(frozen=True, slots=True)
class Feed:
    """A source of events a connector offers to a flow's `poll` or `consume` trigger.

    A `poll` feed is asked for what is new since a cursor (`Polls.poll`), on an interval the
    flow sets; a `consume` feed pushes batches as they arrive (`Consumes.consume`). Either way
    the engine accepts every item of a batch as an event *before* it stores the batch's
    cursor or acknowledges it, so a crash re-delivers rather than loses; each item's `key`
    is its dedupe key, so a re-delivered item starts no second run.
    """

    name: str
    input: type[BaseModel]
    """Validates the trigger's `with` settings."""
    mode: Literal["poll", "consume"]
    description: str = ""


@dataclass(frozen=True, slots=True)
class Item:
    """One thing a feed found: becomes the event `{"body": body, "trigger": "poll"|"consume", ...}`."""

    body: Json
    key: str
    """Stable identity of this item *version* (e.g. `orders:42:2026-11-25T10:00:00`): the dedupe key."""
    at: datetime | None = None
    """When the item happened at the source, if known; the feed's lag is measured from it."""


@dataclass(slots=True)
class Batch:
    """What one poll found (or one delivery of a consumer), with the cursor after it."""

    items: list[Item]
    cursor: Json = None
    """Where the next poll starts; stored durably only after every item is accepted."""
    more: bool = False
    """True if the source holds more right now: poll again at once instead of waiting."""
    ack: Callable[[], Awaitable[None]] | None = None
    """Acknowledge the batch at the source (a broker); called after its events are committed."""
    nack: Callable[[], Awaitable[None]] | None = None
    """Give the batch back to the source (a broker) when accepting failed; it will come again."""


@runtime_checkable
class Polls(Protocol):
    """A connector with `poll` feeds."""

    async def poll(self, feed: str, params: Json, cursor: Json, *, limit: int) -> Batch:
        """Return at most `limit` items newer than `cursor` (None: from the start the feed defines).

        Raises:
            errors.Transient: the source could not be read now; the engine retries with backoff
                and reports the feed as failing until it succeeds.
            errors.Permanent: the settings are wrong; the feed is reported failing.
        """
        ...


@runtime_checkable
class Consumes(Protocol):
    """A connector with `consume` feeds (brokers): batches are pushed as they arrive."""

    def consume(self, feed: str, params: Json) -> AsyncIterator[Batch]:
        """Yield batches until cancelled; each with `ack` (and `nack`) set.

        A message is acknowledged only through `Batch.ack`, which the engine calls after its
        event is committed; an unacknowledged message must come again after a crash.
        """
        ...


@dataclass(slots=True)
class Chunk:
    """A slice of a large result read piece by piece (a file's rows, a big query)."""

    rows: list[Json]
    position: Json
    """Where reading resumes after this chunk (e.g. a byte offset and row number)."""


@runtime_checkable
class Streams(Protocol):
    """A connector whose actions can also be read as a stream of chunks, without loading it whole."""

    def stream(self, action: str, params: Json, *, start: Json, chunk_rows: int) -> AsyncIterator[Chunk]:
        """Yield the result of `action` in chunks of about `chunk_rows`, from `start` (None: the beginning)."""
        ...


def feeds_of(connector: type[Connector] | Connector) -> Mapping[str, Feed]:
    """The feeds a connector offers (none if it declares no `feeds`)."""
    feeds: Mapping[str, Feed] = getattr(connector, "feeds", {})
    return feeds


class _Installed(Mapping[str, type[Connector]]):
    """The installed connectors by kind; each one's module is imported the first time it is looked up.

    The keys are the entry points' names, which must be the connectors' kinds: naming the
    kinds costs no import, so a command that uses two connectors imports two, not eleven.
    """

    def __init__(self, points: Mapping[str, EntryPoint]) -> None:
        self._points = points
        self._loaded: dict[str, type[Connector]] = {}
        self.declared: dict[str, type[Connector]] = {}
        """Connectors described in files (`connectors.declared`), added by `add_declared`."""
        self.later: dict[str, Callable[[], type[Connector]]] = {}
        """Files known by kind and read on first look-up (the pack that ships with Seamflow)."""

    def __getitem__(self, kind: str) -> type[Connector]:
        cls = self.declared.get(kind) or self._loaded.get(kind)
        if cls is None and kind in self.later:
            cls = self.declared[kind] = self.later[kind]()
        if cls is None:
            cls = self._loaded[kind] = _load(self._points[kind])
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter({**self._points, **self.later, **self.declared})

    def __len__(self) -> int:
        return len({**self._points, **self.later, **self.declared})


def _load(point: EntryPoint) -> type[Connector]:
    try:
        cls: type[Connector] = point.load()
    except Exception as exc:  # a broken plugin must say which one it is
        raise errors.SeamflowError(
            f"connector plugin {point.name!r} ({point.value}) failed to load: {exc}",
            code="connector.plugin",
        ) from exc
    kind = getattr(cls, "kind", None)
    if kind != point.name:
        raise errors.SeamflowError(
            f"connector plugin {point.name!r} ({point.value}) declares kind {kind!r};"
            f" expected its entry point in {ENTRY_POINT_GROUP!r} to be named after its kind",
            code="connector.plugin",
        )
    return cls


@cache
def _installed() -> _Installed:
    return _Installed({point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)})


def available_connectors() -> Mapping[str, type[Connector]]:
    """Return every installed connector class by kind, from the entry-point group.

    A connector's module is imported only when its kind is looked up (`[kind]`, `.get(kind)`,
    iterating the values), so listing the kinds is cheap. The entry points are read once per
    process.

    Raises:
        errors.SeamflowError: `connector.plugin` on looking up a plugin that failed to import or
            whose entry point is not named after its kind (its name and the reason are given).
    """
    return _installed()


def add_declared(cls: type[Connector]) -> None:
    """Make a connector described in a file available under its kind (replacing an earlier file's)."""
    _installed().declared[cls.kind] = cls


def add_declared_later(kind: str, load: Callable[[], type[Connector]]) -> None:
    """Make `kind` available, described in a file that `load` reads when the kind is first looked up.

    A connector already described under `kind` (`add_declared`, a project's file) stays in use.
    """
    _installed().later[kind] = load


def is_declared(kind: str) -> bool:
    """Whether `kind` is a connector described in a file (`add_declared`), not an installed plugin."""
    installed = _installed()
    return kind in installed.declared or kind in installed.later


def field_problems(exc: ValidationError, root: str, file: str | None = None) -> list[errors.Problem]:
    """Name each bad field and what is wrong, without echoing the values (they may be secret)."""
    return [
        errors.Problem(errors.Location(file, path=".".join([root, *map(str, error["loc"])])), error["msg"])
        for error in exc.errors(include_url=False, include_input=False)
    ]


def parse_config(model: type[M], connection: Connection) -> M:
    """Validate a connection's settings against its connector's `Config` model.

    Raises:
        errors.InvalidInput: `connection.invalid`, naming the connection and every bad field of
            `connections.yaml` — never a value. It is raised outside the handler, so the
            Pydantic error (whose text may hold a URL with a token) is not even its context.
    """
    problems: list[errors.Problem] = []
    try:
        return model.model_validate(dict(connection.config))
    except ValidationError as exc:
        problems = field_problems(exc, connection.name, file="connections.yaml")
    failure = errors.InvalidInput(
        f"connection {connection.name!r} has an invalid {connection.connector} config: "
        + "; ".join(map(str, problems)),
        code="connection.invalid",
    )
    failure.problems = problems
    raise failure
