"""Fuzzing the webhook endpoint and the REST API of a real `seamflow serve`: never a 5xx.

Hypothesis sends random bytes, JSON documents with hostile values in them or hostile
fragments spliced in anywhere, random headers (content type and encoding, idempotency
key, signature, token) and random paths and queries. Every answer must be below 500,
every 4xx an `application/problem+json` problem, a refused webhook must store no event,
and no traceback may reach the server log. When schemathesis is installed, it adds
requests generated from `/openapi.json`. About 300 requests in all, a few seconds.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import hmac
import json
import zlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st

from tests.support.db import new_database
from tests.support.server import TOKEN, Server, make_project, serve
from tests.support.wait import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET = "whsec-fuzz-7c21"  # passed to the server as SEAMFLOW_SECRET_FUZZ
BEARER = f"Bearer {TOKEN}"

FLOWS = {
    "any": """
id: fuzz-any
trigger: {webhook: {path: fuzz/any}}
steps:
  - id: keep
    transform: {body: "{{ event.body }}"}
""",
    "keyed": """
id: fuzz-keyed
trigger: {webhook: {path: fuzz/keyed, dedupe_key: "{{ event.body.id }}:{{ event.body.version }}"}}
when: "{{ event.body.kind == 'go' }}"
steps:
  - id: keep
    transform: {id: "{{ event.body.id }}", total: "{{ event.body.amount | cents }}"}
""",
    "signed": """
id: fuzz-signed
trigger:
  webhook:
    path: fuzz/signed
    signature: {secret: "{{ secrets.fuzz }}", header: X-Hub-Signature-256, prefix: "sha256="}
steps:
  - id: keep
    transform: {body: "{{ event.body }}"}
""",
    "manual": """
id: fuzz-manual
trigger: {manual: {}}
steps:
  - id: keep
    transform: {input: "{{ event.body }}"}
""",
}
HOOK_PATHS = ["fuzz/any", "fuzz/keyed", "fuzz/signed"]

FUZZ = settings(  # bounded; no per-example deadline, a real server answers
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# --- strategies ---------------------------------------------------------------------------

_VISIBLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)  # what a header value may hold
header_text = st.text(_VISIBLE, max_size=40).map(str.strip)  # h11 refuses edge whitespace
any_text = st.text(max_size=30)  # any code point but surrogates: for paths and query strings

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)

# Values that Python's json module or a lax parser takes and strict JSON refuses (or barely takes).
HOSTILE_VALUES = [
    b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1e999999999", b"9" * 120, b"0." + b"3" * 120,
    b'"\\ud800"', b'"x\\udfff\\ud800"', b'{"\\udc00": 1}', b'"\\ud83d\\ude00"', b'"\\u0000"', b'{"\\u0000": 1}',
    b'{"a": 1, "a": 2}', b"[" * 70 + b"]" * 70, b'{"x":' * 70 + b"1" + b"}" * 70, b"[" * 3000 + b"]" * 3000,
    b"-0", b"1E+2", b'"\\u00e9"', b'"\xc3\xa9"', b'"\xff"', b'"\xed\xa0\x80"',
]  # fmt: skip
# Bytes that break a document wherever they land.
HOSTILE_BYTES = [*HOSTILE_VALUES, b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"\x00", b"\xff", b"\xef\xbb\xbf"]


@st.composite
def spliced(draw: st.DrawFn) -> bytes:
    """A JSON document with up to three hostile fragments spliced in anywhere."""
    text = json.dumps(draw(json_values), ensure_ascii=draw(st.booleans())).encode()
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(HOSTILE_BYTES)) + text[at:]
    return text


def holding(*templates: bytes) -> st.SearchStrategy[bytes]:
    """Documents built from `templates`, `@@` replaced by a hostile or an ordinary JSON value."""
    values = st.sampled_from(HOSTILE_VALUES) | json_values.map(lambda v: json.dumps(v).encode())
    return st.builds(lambda template, value: template.replace(b"@@", value), st.sampled_from(templates), values)


orders = holding(
    b'{"id": "o-1", "version": 1, "kind": "go", "amount": @@}',
    b'{"id": @@, "version": 2, "kind": "go"}',
    b'{"id": "o-2", "version": @@, "kind": "stop", "extra": [@@]}',
    b"[@@]",
    b"@@",
)
webhook_bodies = st.one_of(st.binary(max_size=300), spliced(), orders, st.just(b""))
content_types = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "application/vnd.x+json", "application/problem+json",
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "",
]) | header_text  # fmt: skip
content_encodings = st.sampled_from(["gzip", "deflate", "identity", "br", "gzip, gzip", "GZIP"]) | header_text


def _encode(body: bytes, encoding: str | None, how: str) -> bytes:
    packed = {"gzip": gzip.compress, "deflate": zlib.compress}.get((encoding or "").lower())
    if packed is None or how == "raw":
        return body
    return packed(body) if how == "as_declared" else packed(body)[:-3]  # or truncated


@st.composite
def webhook_requests(draw: st.DrawFn) -> dict[str, Any]:
    """One webhook request: path, query, headers and body, each plausible or hostile."""
    path = draw(st.sampled_from(HOOK_PATHS) | any_text.map(lambda t: quote(t, safe="/")))
    headers: dict[str, str] = {}
    encoding = draw(st.none() | content_encodings)
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    body = _encode(draw(webhook_bodies), encoding, draw(st.sampled_from(["as_declared", "truncated", "raw"])))
    content_type = draw(st.just("application/json") | st.none() | content_types)
    if content_type is not None:
        headers["Content-Type"] = content_type
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(header_text)
    signature = draw(st.sampled_from(["right", "none", "random"]))
    if signature == "right":
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    elif signature == "random":
        headers["X-Hub-Signature-256"] = draw(header_text)
    for _ in range(draw(st.integers(0, 2))):
        headers[draw(st.from_regex(r"\AX-[A-Za-z0-9-]{1,20}\Z"))] = draw(header_text)
    query = draw(st.dictionaries(any_text, any_text, max_size=3))
    return {"path": "/hooks/" + path, "params": query, "headers": headers, "content": body}


authorizations = (
    st.sampled_from(
        [BEARER, None, "Bearer wrong-token", "Basic dXNlcjpwYXNz", "Bearer", "bearer  " + TOKEN, BEARER + "x"]
    )
    | header_text
)
api_paths = st.one_of(
    st.sampled_from([
        "/api/v1/flows", "/api/v1/flows/fuzz-manual", "/api/v1/flows/fuzz-manual/runs", "/api/v1/flows/fuzz-any/runs",
        "/api/v1/signals", "/api/v1/runs", "/api/v1/runs/run_0", "/api/v1/runs/run_0/replay",
        "/api/v1/dead-letters", "/api/v1/events", "/health", "/metrics", "/openapi.json", "/docs", "/hooks/fuzz/any",
    ]),
    st.lists(any_text, min_size=1, max_size=4).map(lambda ps: "/api/v1/" + "/".join(quote(p, safe="") for p in ps)),
    any_text.map(lambda t: "/" + quote(t, safe="/")),
)  # fmt: skip
query_values = any_text | st.integers(-(2**63), 2**63 - 1).map(str) | st.sampled_from([
    "-1", "0", "1e3", "1.5", "true", "queued", "dead_letter", "2024-02-30T25:00:00", "2024-01-01T00:00:00Z",
    "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "0001-01-01", "run_0", "\x00",
])  # fmt: skip
api_queries = st.dictionaries(
    st.sampled_from(["flow", "status", "since", "until", "limit", "before", "after", "run"]) | any_text,
    query_values,
    max_size=4,
)
api_targets = st.sampled_from([
    ("/api/v1/signals", holding(
        b'{"name": "approved", "key": "o-1", "payload": @@}', b'{"name": @@, "key": "k"}',
        b'{"name": "n", "key": @@}', b"@@",
    )),
    ("/api/v1/flows/fuzz-manual/runs", holding(
        b'{"input": @@}', b'{"input": {"order": @@}, "idempotency_key": "k-1"}', b'{"idempotency_key": @@}', b"@@",
    )),
    ("/api/v1/flows/fuzz-any/runs", holding(b'{"input": @@}')),
    ("/api/v1/flows/no-such-flow/runs", holding(b'{"input": @@}')),
])  # fmt: skip

# --- the server ---------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> AsyncIterator[Server]:
    project = make_project(tmp_path_factory.mktemp("fuzz") / "project", FLOWS)
    database = new_database(backend, project)
    async with serve(project, env={"SEAMFLOW_SECRET_FUZZ": SECRET}, database=database) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as running:  # each request sets its token
        yield running


class Watch:
    """What the server stored and logged since the last look."""

    def __init__(self, server: Server) -> None:
        self.db = server.database
        self.log = server.log_path
        self.offset = self.log.stat().st_size

    def events(self) -> int:
        [(count,)] = self.db.query("SELECT count(*) FROM events")
        return int(count)

    async def settle(self) -> None:
        """After a 5xx: wait until its traceback reaches the log (uvicorn logs it after answering)."""
        with contextlib.suppress(AssertionError):
            await eventually(self._traceback_logged, timeout=2)

    async def _traceback_logged(self) -> None:
        assert (
            self.log.stat().st_size > self.offset and "Traceback" in self.log.read_text(errors="replace")[self.offset :]
        )

    def new_log(self) -> str:
        with self.log.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        return data.decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def watch(server: Server) -> Watch:
    return Watch(server)


async def check_answer(answer: httpx.Response, watch: Watch) -> None:
    """Never a 5xx; a 4xx is a problem that says what; no traceback reaches the log."""
    if answer.status_code >= 500:
        await watch.settle()  # so that this request's traceback is not blamed on the next one
    log = watch.new_log()  # read before asserting, so a failure here leaves nothing for the next check
    where = f"{answer.request.method} {answer.request.url} {answer.request.content[:300]!r}"
    assert answer.status_code < 500, f"{where} -> {answer.status_code}: {answer.text[:500]}"
    if answer.status_code >= 400:
        assert answer.headers.get("content-type") == "application/problem+json", f"{where}: {answer.headers}"
        problem = answer.json()
        assert problem["status"] == answer.status_code, problem
        assert isinstance(problem["code"], str) and problem["code"], problem
        assert problem["type"] == f"https://seamflow.dev/errors/{problem['code']}", problem
        assert isinstance(problem["detail"], str) and problem["detail"], problem
        assert SECRET not in answer.text and TOKEN not in answer.text
    assert "Traceback" not in log, f"{where}\n{log[-3000:]}"


def _hook(body: bytes, path: str = "/hooks/fuzz/any") -> dict[str, Any]:
    return {"path": path, "params": {}, "headers": {"Content-Type": "application/json"}, "content": body}


# --- the fuzz -----------------------------------------------------------------------------


@settings(FUZZ, max_examples=120)
@given(request=webhook_requests())
@example(request=_hook(b'{"id": "\\ud800"}'))  # lone surrogate: was a 500 (UnicodeEncodeError in the store)
@example(request=_hook(b'{"\\udfff": 1}', "/hooks/fuzz/keyed"))
@example(
    request={
        **_hook(gzip.compress(b"[1]") + b"junk"),
        "headers": {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    }
)
@example(request=_hook(b'{"id": "o-9", "version": 1, "kind": "go", "amount": 1e999999999}', "/hooks/fuzz/keyed"))
async def test_fuzzed_webhooks_never_answer_5xx_and_refusals_store_nothing(
    client: httpx.AsyncClient, watch: Watch, request: dict[str, Any]
) -> None:
    before = watch.events()
    answer = await client.post(
        request["path"], params=request["params"], headers=request["headers"], content=request["content"]
    )
    await check_answer(answer, watch)
    if answer.status_code >= 400:
        assert watch.events() == before, f"a refused webhook stored an event: {answer.text}"
    elif answer.status_code == 202:
        assert answer.json()["run_id"].startswith("run_")


@settings(FUZZ, max_examples=50)
@given(
    target=api_targets.flatmap(lambda t: st.tuples(st.just(t[0]), t[1])),
    authorization=st.just(BEARER) | authorizations,
    content_type=st.just("application/json") | st.none() | content_types,
)
@example(
    target=("/api/v1/signals", b'{"name": "n", "key": "k", "payload": NaN}'),
    authorization=BEARER,
    content_type="application/json",
)
@example(
    target=("/api/v1/signals", b'{"name": "n", "key": "k", "payload": 1e400}'),
    authorization=BEARER,
    content_type="application/json",
)
@example(
    target=("/api/v1/signals", b'{"name": "n", "key": "k", "payload": "\\ud800"}'),
    authorization=BEARER,
    content_type="application/json",
)
@example(
    target=("/api/v1/flows/fuzz-manual/runs", b'{"input": -Infinity}'),
    authorization=BEARER,
    content_type="application/json",
)
@example(
    target=("/api/v1/flows/fuzz-manual/runs", b'{"input": {"\\udc00": 1}}'),
    authorization=BEARER,
    content_type="application/json",
)
async def test_fuzzed_api_bodies_never_answer_5xx(
    client: httpx.AsyncClient,
    watch: Watch,
    target: tuple[str, bytes],
    authorization: str | None,
    content_type: str | None,
) -> None:
    path, body = target
    headers = {"Authorization": authorization} if authorization is not None else {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    await check_answer(await client.post(path, headers=headers, content=body), watch)


@settings(FUZZ, max_examples=40)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    path=api_paths,
    query=api_queries,
    authorization=st.just(BEARER) | authorizations,
    content_type=st.none() | content_types,
    body=st.none() | spliced(),
)
async def test_fuzzed_api_requests_never_answer_5xx(
    client: httpx.AsyncClient,
    watch: Watch,
    method: str,
    path: str,
    query: dict[str, str],
    authorization: str | None,
    content_type: str | None,
    body: bytes | None,
) -> None:
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization
    if content_type is not None:
        headers["Content-Type"] = content_type
    answer = await client.request(method, path, params=query, headers=headers, content=body)
    if method == "HEAD":  # no body to check, but still never a 5xx
        assert answer.status_code < 500, f"HEAD {answer.request.url} -> {answer.status_code}"
        return
    await check_answer(answer, watch)


int_texts = st.integers().map(str) | st.sampled_from(
    ["-1", "0", "1e3", "1.5", "0x10", " 7", "", str(2**63 - 1), str(2**63), str(-(2**63) - 1), "9" * 40]
)
datetime_texts = st.one_of(
    st.datetimes().map(datetime.isoformat),  # naive, years 1 to 9999
    st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
    st.dates().map(str),
    st.sampled_from(["0001-01-01T00:00:00", "0001-01-01", "9999-12-31T23:59:59", "9999-12-31T23:59:59-14:00"]),
    st.sampled_from(["2024-02-30T25:00:00", "2024-01-01T00:00:00Z", "1700000000", "-1", "now", "", "T"]),
    any_text,
)
list_queries = st.fixed_dictionaries(
    {},
    optional={
        "flow": st.sampled_from(["fuzz-any", "fuzz-manual", "no-such-flow"]) | any_text,
        "status": st.lists(st.sampled_from(["queued", "completed", "dead_letter"]) | any_text, max_size=3),
        "since": datetime_texts,
        "until": datetime_texts,
        "limit": int_texts,
        "before": st.just("run_0") | any_text,
        "after": int_texts,
        "run": st.just("run_0") | any_text,
    },
)


@settings(FUZZ, max_examples=50)
@given(path=st.sampled_from(["/api/v1/runs", "/api/v1/dead-letters", "/api/v1/events"]), query=list_queries)
async def test_fuzzed_list_queries_never_answer_5xx(
    client: httpx.AsyncClient, watch: Watch, path: str, query: dict[str, Any]
) -> None:
    answer = await client.get(path, params=query, headers={"Authorization": BEARER})
    await check_answer(answer, watch)


async def test_event_log_after_beyond_64_bits_is_a_problem_not_a_500(server: Server, watch: Watch) -> None:
    async with server.client() as own:  # a 500 closes the connection; keep it off the shared client
        answer = await own.get("/api/v1/events", params={"after": str(2**63)})
    await check_answer(answer, watch)
    assert answer.status_code == 400


@pytest.mark.parametrize("query", [{"since": "0001-01-01T00:00:00"}, {"until": "0001-01-01"}], ids=["since", "until"])
async def test_runs_since_year_one_without_offset_is_a_problem_not_a_500(
    server: Server, watch: Watch, query: dict[str, str]
) -> None:
    async with server.client() as own:
        answer = await own.get("/api/v1/runs", params=query)
    await check_answer(answer, watch)
    assert answer.status_code in (200, 400)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def openapi_cases(client: httpx.AsyncClient) -> st.SearchStrategy[Any]:
    schemathesis = pytest.importorskip("schemathesis", reason="not installed; the hypothesis fuzz above ran without it")
    from schemathesis.generation import GenerationMode

    spec = (await client.get("/openapi.json")).json()
    operations = [result.ok() for result in schemathesis.openapi.from_dict(spec).get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    return st.one_of([op.as_strategy(generation_mode=mode) for op in operations for mode in modes])


@settings(FUZZ, max_examples=50)
@given(data=st.data(), authorization=st.just(BEARER) | authorizations)
async def test_openapi_generated_requests_never_answer_5xx(
    client: httpx.AsyncClient,
    watch: Watch,
    openapi_cases: st.SearchStrategy[Any],
    data: st.DataObject,
    authorization: str | None,
) -> None:
    case = data.draw(openapi_cases, label="case")
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url))
    headers = {k: v for k, v in kwargs.get("headers", {}).items() if k.lower() != "authorization"}
    if authorization is not None:
        headers["Authorization"] = authorization
    content = kwargs.get("data")
    if "json" in kwargs:
        content = json.dumps(kwargs["json"]).encode()
        headers.setdefault("Content-Type", "application/json")
    try:
        request = client.build_request(
            kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=headers, content=content
        )
        answer = await client.send(request)
    except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError):
        reject()  # schemathesis made a request that httpx will not put on the wire
    await check_answer(answer, watch)
