"""The example CRM of the lead-to-cash demo, run as `python -m seamflow_crm` against a real SQLite file.

Covers its REST API (CRUD, validation problems, the contract state machine, idempotency,
pagination by updated_at) and its webhooks (signature, origin, retries from the outbox).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import socket
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.examples.crm_process import SECRET, RunningCrm, run_crm
from tests.support.sink import Sink
from tests.support.wait import eventually

PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCrm]:
    """One CRM process for the module; each test makes its own records."""
    with run_crm(tmp_path_factory.mktemp("crm")) as running:
        yield running


def _uscc(body15: str) -> str:
    from seamflow_crm import uscc

    return "91" + body15 + uscc.calc_check_character("91" + body15)


def _customer(**fields: object) -> dict[str, object]:
    tag = uuid.uuid4().hex[:6]
    return {"name": f"上海浦东发展有限公司-{tag}", "phone": "13812345678", "credit_limit": "500000", **fields}


def _lines() -> list[dict[str, object]]:
    return [
        {"sku": "SF-ROUTER-AX3000", "name": "企业级无线路由器", "qty": 3, "unit_price": "199.00"},
        {"sku": "SF-SVC-INSTALL", "name": "安装服务", "qty": 1, "unit_price": "0.10"},
        {"sku": "SF-CAM-4K", "name": "网络摄像机", "qty": 7, "unit_price": "0.20"},
    ]


async def _create_customer(client: httpx.AsyncClient, **fields: object) -> dict[str, object]:
    response = await client.post("/customers", json=_customer(**fields))
    assert response.status_code == 201, response.text
    return response.json()


async def _create_contract(client: httpx.AsyncClient) -> dict[str, object]:
    customer = await _create_customer(client)
    response = await client.post("/contracts", json={"customer_id": customer["id"], "lines": _lines()})
    assert response.status_code == 201, response.text
    return response.json()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fields(problem: dict[str, object]) -> set[str]:
    return {error["field"] for error in problem["errors"]}  # type: ignore[index, union-attr]


# --- REST API -------------------------------------------------------------------------------


async def test_customer_crud_with_optimistic_concurrency(crm: RunningCrm) -> None:
    async with crm.client() as client:
        tax_id = _uscc(f"310115MA{uuid.uuid4().hex[:7].upper().translate(str.maketrans('IOSVZ', '12345'))}")
        created = await client.post("/customers", json=_customer(tax_id=tax_id, email="caigou@pudong.cn"))
        assert created.status_code == 201
        customer = created.json()
        assert created.headers["location"] == f"/customers/{customer['id']}"
        assert customer["credit_limit"] == "500000.00" and customer["version"] == 1
        assert customer["status"] == "active" and customer["tax_id"] == tax_id

        got = await client.get(f"/customers/{customer['id']}")
        assert got.json() == customer and got.headers["etag"] == '"1"'

        patched = await client.patch(
            f"/customers/{customer['id']}", json={"address": "上海市浦东新区世纪大道100号"}, headers={"If-Match": '"1"'}
        )
        assert patched.status_code == 200 and patched.json()["version"] == 2
        assert patched.json()["address"] == "上海市浦东新区世纪大道100号"

        stale = await client.patch(f"/customers/{customer['id']}", json={"name": "x", "version": 1})
        assert stale.status_code == 412 and stale.headers["content-type"] == PROBLEM_JSON

        duplicate = await client.post("/customers", json=_customer(tax_id=tax_id))
        assert duplicate.status_code == 409 and _fields(duplicate.json()) == {"tax_id"}
        linked = await client.post(
            "/customers", params={"if_tax_id_exists": "return"}, json=_customer(tax_id=tax_id, name="另一家公司")
        )
        assert linked.status_code == 200 and linked.json() == patched.json(), "the existing one, unchanged"

        deactivated = await client.post(f"/customers/{customer['id']}/deactivate")
        assert deactivated.json()["status"] == "inactive" and deactivated.json()["version"] == 3

        contact = await client.post(
            f"/customers/{customer['id']}/contacts", json={"name": "张伟", "phone": "13900001111", "is_primary": True}
        )
        assert contact.status_code == 201
        contacts = (await client.get(f"/customers/{customer['id']}/contacts")).json()["items"]
        assert [c["name"] for c in contacts] == ["张伟"]

        assert (await client.delete(f"/customers/{customer['id']}")).status_code == 204
        missing = await client.get(f"/customers/{customer['id']}")
        assert missing.status_code == 404 and missing.json()["status"] == 404
        assert (await client.get(f"/contacts/{contact.json()['id']}")).status_code == 404


async def test_invalid_input_is_a_problem_naming_each_field(crm: RunningCrm) -> None:
    async with crm.client() as client:
        response = await client.post(
            "/customers",
            json={"name": " ", "phone": "12812345678", "tax_id": "91310115MA1K3YJ270", "credit_limit": 19.9, "x": 1},
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM_JSON
        problem = response.json()
        assert problem["title"] == "Invalid input" and problem["instance"] == "/customers"
        assert _fields(problem) == {"name", "phone", "tax_id", "credit_limit", "x"}
        phone = next(error for error in problem["errors"] if error["field"] == "phone")
        assert "mainland China mobile number" in phone["detail"] and phone["pointer"] == "#/phone"

        customer = await _create_customer(client)
        bad_line = {"sku": "A", "name": "B", "qty": 0, "unit_price": "1.999"}
        contract = await client.post("/contracts", json={"customer_id": customer["id"], "lines": [bad_line]})
        assert _fields(contract.json()) == {"lines[0].qty", "lines[0].unit_price"}

        unknown_customer = await client.post("/contracts", json={"customer_id": 10**9, "lines": _lines()})
        assert unknown_customer.status_code == 422 and _fields(unknown_customer.json()) == {"customer_id"}

    async with httpx.AsyncClient(base_url=crm.url) as anonymous:
        denied = await anonymous.get("/customers")
        assert denied.status_code == 401 and denied.headers["content-type"] == PROBLEM_JSON
        assert denied.headers["www-authenticate"] == "Bearer"


async def test_contract_amount_is_the_exact_sum_of_its_lines(crm: RunningCrm) -> None:
    async with crm.client() as client:
        contract = await _create_contract(client)
    assert contract["amount"] == "598.50"  # 3 × 199.00 + 0.10 + 7 × 0.20, with no float rounding
    assert [line["amount"] for line in contract["lines"]] == ["597.00", "0.10", "1.40"]
    assert contract["currency"] == "CNY" and contract["status"] == "draft"
    assert re.fullmatch(r"HT-\d{4}-\d{6}", contract["number"])
    assert contract["customer"]["phone"] == "13812345678"


async def test_contract_moves_draft_signed_cancelled_and_refuses_other_transitions(crm: RunningCrm) -> None:
    async with crm.client() as client:
        contract = await _create_contract(client)
        path = f"/contracts/{contract['id']}"

        early = await client.patch(path, json={"erp_order_no": "SO-1"})
        assert early.status_code == 409 and _fields(early.json()) == {"erp_order_no"}

        signed = await client.post(f"{path}/sign")
        assert signed.status_code == 200 and signed.json()["status"] == "signed" and signed.json()["signed_at"]

        again = await client.post(f"{path}/sign")
        assert again.status_code == 409 and again.headers["content-type"] == PROBLEM_JSON
        assert "signed" in again.json()["detail"]

        relined = await client.patch(path, json={"lines": _lines()[:1]})
        assert relined.status_code == 409 and _fields(relined.json()) == {"lines"}

        written = await client.patch(path, json={"erp_order_no": "SO-2026-0001", "shipping_status": "shipped"})
        assert written.status_code == 200 and written.json()["erp_order_no"] == "SO-2026-0001"
        same = await client.patch(path, json={"erp_order_no": "SO-2026-0001"})
        assert same.json()["version"] == written.json()["version"]  # nothing changed, no new version
        other = await client.patch(path, json={"erp_order_no": "SO-2026-0002"})
        assert other.status_code == 409 and _fields(other.json()) == {"erp_order_no"}

        partial = await client.patch(path, json={"amount_received": "100.50"})
        assert partial.json()["payment_status"] == "partial" and partial.json()["amount_received"] == "100.50"
        wrong = await client.patch(path, json={"amount_received": "598.50", "payment_status": "partial"})
        assert wrong.status_code == 422 and _fields(wrong.json()) == {"payment_status"}
        paid = await client.patch(path, json={"amount_received": "598.50"})
        assert paid.json()["payment_status"] == "paid"

        cancelled = await client.post(f"{path}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert (await client.post(f"{path}/cancel")).status_code == 409
        assert (await client.post(f"{path}/sign")).status_code == 409

        listed = (await client.get("/contracts", params={"status": "cancelled", "per_page": 500})).json()
        assert contract["id"] in [item["id"] for item in listed["items"]]


async def test_same_idempotency_key_gives_the_same_answer_and_one_effect(crm: RunningCrm) -> None:
    key = f"create-{uuid.uuid4()}"
    body = _customer()
    async with crm.client(**{"Idempotency-Key": key}) as client:
        answers = await asyncio.gather(*(client.post("/customers", json=body) for _ in range(5)))
        assert {answer.status_code for answer in answers} == {201}
        assert len({answer.text for answer in answers}) == 1
        assert sum(answer.headers.get("idempotent-replayed") == "true" for answer in answers) == 4

        same_name = await client.get("/customers", params={"q": body["name"]})
        assert same_name.json()["total"] == 1

        reused = await client.post("/customers", json=_customer())
        assert reused.status_code == 422 and _fields(reused.json()) == {"Idempotency-Key"}

    async with crm.client() as client:
        contract = await _create_contract(client)
        after = (await client.get("/events", params={"after": 0, "limit": 1000})).json()["next_after"]
        sign_key = {"Idempotency-Key": f"sign-{uuid.uuid4()}"}
        first = await client.post(f"/contracts/{contract['id']}/sign", headers=sign_key)
        second = await client.post(f"/contracts/{contract['id']}/sign", headers=sign_key)
        assert first.status_code == second.status_code == 200 and first.text == second.text
        events = (await client.get("/events", params={"after": after})).json()["items"]
        assert [event["event"] for event in events] == ["contract.signed"]


async def test_pages_are_ordered_by_updated_at_then_id_and_filtered_by_updated_since(crm: RunningCrm) -> None:
    async with crm.client() as client:
        created = [await _create_customer(client) for _ in range(5)]
        since = created[0]["updated_at"]

        async def read_all(per_page: int) -> list[dict[str, object]]:
            items, page = [], 1
            while True:
                params = {"updated_since": since, "page": page, "per_page": per_page}
                body = (await client.get("/customers", params=params)).json()
                items += body["items"]
                if page * per_page >= body["total"]:
                    return items
                page += 1

        assert [c["id"] for c in await read_all(2)] == [c["id"] for c in created]

        moved = await client.patch(f"/customers/{created[1]['id']}", json={"phone": "13900002222"})
        assert [c["id"] for c in await read_all(3)] == [c["id"] for c in [created[0], *created[2:], moved.json()]]

        later = (await client.get("/customers", params={"updated_since": moved.json()["updated_at"]})).json()
        assert [c["id"] for c in later["items"]] == [created[1]["id"]]

        naive = await client.get("/customers", params={"updated_since": "2026-01-01T00:00:00"})
        assert naive.status_code == 422 and _fields(naive.json()) == {"updated_since"}


async def test_openapi_document_names_every_operation(crm: RunningCrm) -> None:
    async with httpx.AsyncClient(base_url=crm.url) as client:
        document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    operations = {
        operation["operationId"]: (method, path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", operation_id) for operation_id in operations)
    assert operations["sign_contract"] == ("post", "/contracts/{contract_id}/sign")
    assert operations["update_contract"] == ("patch", "/contracts/{contract_id}")
    assert {"list_customers", "create_customer", "update_customer", "delete_customer"} <= operations.keys()
    update = document["paths"]["/contracts/{contract_id}"]["patch"]
    assert update["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Contract"
    }
    assert "application/problem+json" in update["responses"]["409"]["content"]
    assert {"Idempotency-Key", "X-Origin", "If-Match"} <= {p["name"] for p in update["parameters"]}


def test_unified_social_credit_code_check_character() -> None:
    from seamflow_crm import uscc

    assert uscc.is_valid("91350100M000100Y43")
    assert not uscc.is_valid("91350100M000100Y44")
    assert not uscc.is_valid("91350100M000100Y4")
    assert uscc.calc_check_character("91350100M000100Y4") == "3"


# --- webhooks ---------------------------------------------------------------------------------


def _verify(request_body: bytes, signature: str) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), request_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


async def _subscribe(client: httpx.AsyncClient, url: str) -> int:
    response = await client.post("/webhooks", json={"url": url, "events": ["customer.*", "contract.*"]})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_change_is_delivered_signed_with_its_origin(crm: RunningCrm) -> None:
    async with Sink.start() as sink, crm.client(**{"X-Origin": "seamflow:flow/contract-signed-to-erp"}) as client:
        subscription = await _subscribe(client, f"{sink.url}/crm/contracts")
        try:
            contract = await _create_contract(client)
            await client.post(f"/contracts/{contract['id']}/sign")

            async def signed() -> dict[str, object]:
                for request in sink.requests:
                    body = json.loads(request.body)
                    if body["event"] == "contract.signed" and body["data"]["id"] == contract["id"]:
                        assert _verify(request.body, request.headers["x-signature"])
                        assert request.headers["idempotency-key"] == body["id"] == request.headers["x-event-id"]
                        return body
                raise AssertionError(f"no contract.signed among {len(sink.requests)} requests")

            event = await eventually(signed, timeout=10)
            assert event["origin"] == "seamflow:flow/contract-signed-to-erp"
            assert event["data"]["status"] == "signed" and event["data"]["amount"] == "598.50"
            assert Decimal(event["data"]["lines"][0]["unit_price"]) == Decimal("199.00")
            assert event["occurred_at"] == event["data"]["updated_at"]
        finally:
            await client.delete(f"/webhooks/{subscription}")


async def test_webhook_is_retried_until_the_subscriber_is_back(crm: RunningCrm) -> None:
    port = _free_port()
    async with crm.client() as client:
        subscription = await _subscribe(client, f"http://127.0.0.1:{port}/hook")
        try:
            customer = await _create_customer(client)
            events = (await client.get("/events", params={"after": 0, "limit": 1000})).json()["items"]
            event_id = next(
                e["id"] for e in events if e["event"] == "customer.created" and e["data"]["id"] == customer["id"]
            )

            async def failed_twice() -> None:
                deliveries = (await client.get("/webhooks/deliveries", params={"event_id": event_id})).json()["items"]
                assert deliveries and deliveries[0]["attempts"] >= 2, deliveries
                assert deliveries[0]["status"] == "pending" and deliveries[0]["last_error"]

            await eventually(failed_twice, timeout=10)
            async with Sink.start(port=port) as sink:

                async def delivered() -> None:
                    received = [json.loads(r.body)["id"] for r in sink.requests]
                    assert event_id in received
                    deliveries = (await client.get("/webhooks/deliveries", params={"event_id": event_id})).json()
                    assert deliveries["items"][0]["status"] == "delivered"

                await eventually(delivered, timeout=10)
                assert [r.idempotency_key for r in sink.requests].count(event_id) == 1
        finally:
            await client.delete(f"/webhooks/{subscription}")


async def test_outbox_keeps_events_across_a_restart_while_the_subscriber_is_down(tmp_path: Path) -> None:
    port = _free_port()
    env = {"CRM_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook"}
    with run_crm(tmp_path, env=env) as first:
        async with first.client(**{"X-Origin": "erp"}) as client:
            customer = await _create_customer(client, name="北京中关村科技有限公司")
            webhooks = (await client.get("/webhooks")).json()["items"]
            assert [(w["url"], w["source"]) for w in webhooks] == [(env["CRM_WEBHOOK_URL"], "env")]
    async with Sink.start(port=port) as sink:
        with run_crm(tmp_path, env=env):

            async def delivered() -> dict[str, object]:
                assert sink.requests, "nothing delivered yet"
                return json.loads(sink.requests[0].body)

            # The first CRM may have been stopped between claiming the delivery and recording its failed
            # attempt: then the claim (twice the 10 s attempt timeout) must run out before the retry.
            event = await eventually(delivered, timeout=45)
    assert event["event"] == "customer.created" and event["data"] == customer and event["origin"] == "erp"
    assert _verify(sink.requests[0].body, sink.requests[0].headers["x-signature"])
