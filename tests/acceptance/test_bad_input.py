"""Hostile webhook requests get a clear RFC 9457 problem, store nothing; the server keeps serving.

One `seamflow serve` subprocess serves the whole module. Every row of `HOSTILE` is one
request with the status, error `code` and a fragment of the `detail` it must be answered
with; the numbers of events and runs in the store are read before and after.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import hmac
import json
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from seamflow import codec
from seamflow.ids import Json
from tests.acceptance.flows import FORWARD, sink_connection
from tests.support.db import Database, new_database
from tests.support.server import Server, make_project, serve
from tests.support.sink import Sink
from tests.support.wait import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

LIMIT = 10 * 1024 * 1024  # the default webhook body limit (WebhookLimits.max_body_bytes)
SECRET = "whsec-bad-input-3f9a"  # passed to the server as SEAMFLOW_SECRET_HOOK
BOMB_INFLATED = 256 * 1024 * 1024  # the gzip bomb inflates to this; the limit is 10 MiB

ANY_BODY = """
id: any-body
trigger:
  webhook:
    path: any
steps:
  - id: keep
    transform:
      body: "{{ event.body }}"
"""

SIGNED = """
id: signed-hook
trigger:
  webhook:
    path: signed
    signature: {secret: "{{ secrets.hook }}", header: X-Signature, prefix: "sha256="}
steps:
  - id: keep
    transform:
      body: "{{ event.body }}"
"""

JSON = {"Content-Type": "application/json"}
GZIP_JSON = {**JSON, "Content-Encoding": "gzip"}
ORDER = b'{"order_no": "SO-1", "amount": "19.90", "customer": "\xe5\xbc\xa0\xe4\xbc\x9f"}'

Body = bytes | Callable[[], object]  # bytes, or a factory (big bodies are built only when sent)


def _sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


@functools.cache
def _gzip_bomb() -> bytes:
    """256 MiB of zeros as about 250 KB of gzip: fine on the wire, fatal if inflated whole."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1024 * 1024)
    parts = [packer.compress(zeros) for _ in range(BOMB_INFLATED // len(zeros))]
    return b"".join([*parts, packer.flush()])


def _over_limit() -> bytes:
    return b" " * (LIMIT + 1)


def _over_limit_chunked() -> object:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: httpx sends it chunked
        for _ in range(11):
            yield b" " * (1024 * 1024)

    return chunks()


@dataclass(frozen=True)
class Hostile:
    """One hostile request and the problem it must be answered with."""

    body: Body
    status: int
    code: str
    detail: str  # a fragment of the problem's `detail` that says what was wrong
    path: str = "orders"
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))

    def content(self) -> object:
        return self.body() if callable(self.body) else self.body


_SIGNED_COMPACT = b'{"order_no":"SO-1"}'
_SIGNED_PRETTY = b'{\n  "order_no": "SO-1"\n}'

HOSTILE = {
    # --- not JSON, or not UTF-8 --------------------------------------------------------------
    "malformed_json": Hostile(
        b'{"order_no": "SO-1",}', 400, "payload.json", "line 1 column 20: Illegal trailing comma"
    ),
    "truncated_json": Hostile(b'{"order_no": "SO-1", "amount": 19', 400, "payload.json", "malformed JSON at line 1"),
    "two_documents": Hostile(b'{"order_no": "SO-1"} {}', 400, "payload.json", "Extra data"),
    "invalid_utf8": Hostile(b'{"order_no": "SO-\xff\xfe"}', 400, "payload.encoding", "not valid UTF-8: byte 17"),
    "utf16_with_bom": Hostile(
        json.dumps({"order_no": "SO-1"}).encode("utf-16"),
        400,
        "payload.encoding",
        "not valid UTF-8",
    ),
    "utf16le_without_bom": Hostile(
        json.dumps({"order_no": "SO-1"}).encode("utf-16-le"), 400, "payload.json", "malformed JSON"
    ),
    "empty_body": Hostile(b"", 400, "payload.json", "body is empty; expected a JSON document"),
    "whitespace_body": Hostile(b" \r\n\t ", 400, "payload.json", "body is empty; expected a JSON document"),
    # --- JSON that is not acceptable ---------------------------------------------------------
    "nan": Hostile(b'{"order_no": "SO-1", "amount": NaN}', 400, "payload.json", "NaN is not a JSON number"),
    "infinity": Hostile(
        b'{"order_no": "SO-1", "amount": Infinity}',
        400,
        "payload.json",
        "Infinity is not a JSON number",
    ),
    "minus_infinity": Hostile(
        b'{"order_no": "SO-1", "amount": -Infinity}',
        400,
        "payload.json",
        "-Infinity is not a JSON number",
    ),
    "duplicate_key_top_level": Hostile(
        b'{"order_no": "SO-1", "order_no": "SO-2"}', 400, "payload.json", "duplicate key 'order_no'"
    ),
    "duplicate_key_nested": Hostile(
        b'{"order_no": "SO-1", "customer": {"id": 1, "name": "x", "id": 2}}',
        400,
        "payload.json",
        "duplicate key 'id'",
    ),
    "arrays_1000_deep": Hostile(b"[" * 1000 + b"]" * 1000, 400, "payload.depth", "nested deeper than 64 levels"),
    "objects_1000_deep": Hostile(
        b'{"a":' * 1000 + b"1" + b"}" * 1000, 400, "payload.depth", "nested deeper than 64 levels"
    ),
    "arrays_100000_deep": Hostile(
        b"[" * 100_000 + b"]" * 100_000, 400, "payload.depth", "nested deeper than 64 levels"
    ),
    "integer_5000_digits": Hostile(
        b'{"order_no": "SO-1", "amount": ' + b"9" * 5000 + b"}",
        400,
        "payload.json",
        "number with 5000 digits exceeds 100",
    ),
    "float_1000_digits": Hostile(
        b'{"order_no": "SO-1", "amount": 0.' + b"3" * 1000 + b"}",
        400,
        "payload.json",
        "number with 1002 chars exceeds 100",
    ),
    "nul_in_string": Hostile(b'{"order_no": "SO-1\\u0000"}', 400, "payload.nul", "NUL character in a string value"),
    "nul_in_key": Hostile(
        b'{"order_no": "SO-1", "a\\u0000b": 1}',
        400,
        "payload.nul",
        "NUL character in an object key",
    ),
    "lone_surrogate_in_string": Hostile(
        b'{"order_no": "SO-\\ud800"}',
        400,
        "payload.json",
        "lone surrogate \\ud800 in a string value",
    ),
    "lone_surrogate_in_key": Hostile(
        b'{"order_no": "SO-1", "\\udfff": 1}',
        400,
        "payload.json",
        "lone surrogate \\udfff in an object key",
    ),
    # --- compression ------------------------------------------------------------------------
    "gzip_bomb": Hostile(
        _gzip_bomb,
        413,
        "payload.too_large",
        "decompressed body exceeds the limit of 10485760 bytes",
        headers=GZIP_JSON,
    ),
    "truncated_gzip": Hostile(
        gzip.compress(ORDER)[:-8],
        400,
        "payload.encoding",
        "body is truncated gzip data",
        headers=GZIP_JSON,
    ),
    "not_gzip_at_all": Hostile(ORDER, 400, "payload.encoding", "body is not valid gzip data", headers=GZIP_JSON),
    "gzip_then_garbage": Hostile(
        gzip.compress(ORDER) + b"{}",
        400,
        "payload.encoding",
        "2 bytes follow the end of the gzip data",
        headers=GZIP_JSON,
    ),
    "two_gzip_members": Hostile(
        gzip.compress(ORDER) + gzip.compress(b"{}"),
        400,
        "payload.encoding",
        "follow the end of the gzip data",
        headers=GZIP_JSON,
    ),
    "deflate_without_zlib_header": Hostile(
        zlib.compress(ORDER)[2:-4],
        400,
        "payload.encoding",
        "not valid deflate data",
        headers={**JSON, "Content-Encoding": "deflate"},
    ),
    "unknown_content_encoding": Hostile(
        ORDER,
        415,
        "payload.encoding",
        "content encoding 'br' is not supported",
        headers={**JSON, "Content-Encoding": "br"},
    ),
    "stacked_content_encodings": Hostile(
        gzip.compress(gzip.compress(ORDER)),
        415,
        "payload.encoding",
        "'gzip, gzip' is not supported",
        headers={**JSON, "Content-Encoding": "gzip, gzip"},
    ),
    # --- content type -----------------------------------------------------------------------
    "text_plain": Hostile(
        ORDER,
        415,
        "payload.content_type",
        "content type 'text/plain' is not supported",
        headers={"Content-Type": "text/plain"},
    ),
    "form_urlencoded": Hostile(
        b"order_no=SO-1",
        415,
        "payload.content_type",
        "'application/x-www-form-urlencoded' is not supported",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    "missing_content_type_with_body": Hostile(
        ORDER, 415, "payload.content_type", "content type 'none' is not supported", headers={}
    ),
    # --- size -------------------------------------------------------------------------------
    "over_limit_with_content_length": Hostile(
        _over_limit,
        413,
        "payload.too_large",
        "body of 10485761 bytes exceeds the limit of 10485760",
    ),
    "over_limit_chunked": Hostile(
        _over_limit_chunked, 413, "payload.too_large", "body exceeds the limit of 10485760 bytes"
    ),
    # --- where and who ----------------------------------------------------------------------
    "unknown_hook_path": Hostile(
        ORDER,
        404,
        "webhook.unknown_path",
        "no flow has the webhook path 'nope/orders'; known paths: any, orders, signed (POST /hooks/<path>)",
        path="nope/orders",
    ),
    "missing_signature": Hostile(
        _SIGNED_COMPACT,
        401,
        "webhook.signature_missing",
        "missing signature header X-Signature",
        path="signed",
    ),
    "bad_signature": Hostile(
        _SIGNED_COMPACT,
        401,
        "webhook.signature_invalid",
        "does not match HMAC-SHA256 of the body",
        path="signed",
        headers={**JSON, "X-Signature": "sha256=" + "0" * 64},
    ),
    "signature_without_prefix": Hostile(
        _SIGNED_COMPACT,
        401,
        "webhook.signature_invalid",
        "expected sha256=<hex digest>",
        path="signed",
        headers={
            **JSON,
            "X-Signature": _sign(_SIGNED_COMPACT)["X-Signature"].removeprefix("sha256="),
        },
    ),
    "signature_with_wrong_secret": Hostile(
        _SIGNED_COMPACT,
        401,
        "webhook.signature_invalid",
        "does not match",
        path="signed",
        headers={**JSON, **_sign(_SIGNED_COMPACT, "not-the-secret")},
    ),
    "signature_over_other_bytes": Hostile(  # signed the pretty-printed JSON, sent the compact one
        _SIGNED_COMPACT,
        401,
        "webhook.signature_invalid",
        "does not match",
        path="signed",
        headers={**JSON, **_sign(_SIGNED_PRETTY)},
    ),
    "signature_over_uncompressed_body": Hostile(  # the signature covers the bytes on the wire
        gzip.compress(_SIGNED_COMPACT),
        401,
        "webhook.signature_invalid",
        "does not match",
        path="signed",
        headers={**GZIP_JSON, **_sign(_SIGNED_COMPACT)},
    ),
    # --- valid JSON, but the flow's dedupe key reads event.body.order_no --------------------
    "array_body_where_dedupe_key_reads_a_field": Hostile(
        b'[{"order_no": "SO-1"}]', 400, "expression.undefined", "trigger.webhook.dedupe_key"
    ),
    "scalar_body_where_dedupe_key_reads_a_field": Hostile(
        b"42", 400, "expression.undefined", "trigger.webhook.dedupe_key"
    ),
    "no_body_no_type_where_dedupe_key_reads_a_field": Hostile(
        b"", 400, "expression.undefined", "trigger.webhook.dedupe_key", headers={}
    ),
}


def _stored(db: Database) -> tuple[int, int]:
    """(events, runs) in the store, read over a separate connection."""
    [(events, runs)] = db.query("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM runs)")
    return int(events), int(runs)


def _reset_peak_rss(server: Server) -> int:
    """Reset the server's peak resident memory (VmHWM) to its current size and return that."""
    assert server.process is not None
    Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")
    return _peak_rss_bytes(server)


def _peak_rss_bytes(server: Server) -> int:
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


async def _send(client: httpx.AsyncClient, case: Hostile) -> httpx.Response:
    return await client.post(f"/hooks/{case.path}", content=case.content(), headers=case.headers)  # type: ignore[arg-type]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sink() -> AsyncIterator[Sink]:
    async with Sink.start() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory, sink: Sink, backend: str) -> AsyncIterator[Server]:
    project = make_project(
        tmp_path_factory.mktemp("bad-input") / "project",
        {"forward": FORWARD, "any": ANY_BODY, "signed": SIGNED},
        sink_connection(sink.url),
    )
    database = new_database(backend, project)
    async with serve(project, env={"SEAMFLOW_SECRET_HOOK": SECRET}, database=database) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as running:
        yield running


@pytest.fixture(scope="module")
def db(server: Server) -> Database:
    return server.database


@pytest.mark.parametrize("case", list(HOSTILE.values()), ids=list(HOSTILE))
async def test_hostile_webhook_is_refused_with_a_problem_and_nothing_is_stored(
    client: httpx.AsyncClient, db: Database, case: Hostile
) -> None:
    before = _stored(db)
    answer = await _send(client, case)
    assert answer.status_code == case.status, answer.text[:500]
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == case.status
    assert problem["code"] == case.code
    assert problem["type"] == f"https://seamflow.dev/errors/{case.code}"
    assert problem["title"]
    assert case.detail in problem["detail"], problem["detail"]
    assert SECRET not in answer.text
    assert _stored(db) == before, "a refused request stored an event or a run"


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads peak memory from Linux /proc")
async def test_gzip_bomb_is_refused_without_inflating_it_whole(
    client: httpx.AsyncClient, server: Server, db: Database
) -> None:
    bomb = _gzip_bomb()
    before = _stored(db)
    peak_before = _reset_peak_rss(server)  # earlier tests sent 10 MiB bodies
    answer = await client.post("/hooks/orders", content=bomb, headers=GZIP_JSON)
    assert (answer.status_code, answer.json()["code"]) == (413, "payload.too_large")
    grown = _peak_rss_bytes(server) - peak_before
    assert grown < BOMB_INFLATED // 2, f"peak memory grew by {grown} bytes for a {len(bomb)} byte bomb"
    assert _stored(db) == before


async def test_correctly_signed_request_is_accepted(client: httpx.AsyncClient, db: Database) -> None:
    before = _stored(db)
    answer = await client.post("/hooks/signed", content=_SIGNED_COMPACT, headers={**JSON, **_sign(_SIGNED_COMPACT)})
    assert answer.status_code == 202, answer.text
    assert _stored(db) == (before[0] + 1, before[1] + 1)


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        pytest.param(b'[1, 2.50, "3"]', JSON, [1, Decimal("2.50"), "3"], id="array"),
        pytest.param(b"42", JSON, 42, id="integer"),
        pytest.param(b'"SO-1"', JSON, "SO-1", id="string"),
        pytest.param(b"null", JSON, None, id="null"),
        pytest.param(b"", {}, None, id="no_body_and_no_content_type"),
        pytest.param(
            b'{"order_no": "SO-\\ud83d\\ude00"}',
            {"Content-Type": "application/vnd.shop+json; charset=utf-8"},
            {"order_no": "SO-😀"},
            id="vendor_json_with_surrogate_pair",
        ),
    ],
)
async def test_any_json_document_is_an_event_body_when_the_flow_reads_no_field(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str], expected: Json
) -> None:
    answer = await client.post("/hooks/any", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    run = await client.get(f"/api/v1/runs/{answer.json()['run_id']}")
    stored = codec.loads(run.content)["event"]["body"]  # type: ignore[index, call-overload]
    assert codec.dumps(stored) == codec.dumps(expected)  # same values, same number text ("2.50")


async def test_server_keeps_serving_after_every_hostile_request(
    client: httpx.AsyncClient, server: Server, sink: Sink, db: Database
) -> None:
    for name, case in HOSTILE.items():  # again, so this test does not depend on the order of tests
        answer = await _send(client, case)
        assert answer.status_code == case.status, name
    answer = await client.post(
        "/hooks/orders",
        content=b'{"order_no": "SO-AFTER", "amount": "19.90", "customer": "x"}',
        headers=JSON,
    )
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]

    async def completed() -> None:
        run = (await client.get(f"/api/v1/runs/{run_id}")).json()
        assert run["status"] == "completed", run

    await eventually(completed)
    assert [r.idempotency_key for r in sink.requests if r.path == "/orders"].count(f"{run_id}:post") == 1
    health = await client.get("/health")
    assert health.json()["ready"] is True
    log = server.log_path.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert '"level":"error"' not in log.replace(" ", ""), log[-3000:]
    assert SECRET not in log
