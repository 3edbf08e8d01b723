"""The demo's summary in plain words: dead letters explained, quantiles, the CRM/ERP agreement lines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from seamflow import store
from seamflow.cli import demo_report
from seamflow.cli.demo_facts import percentile
from seamflow.cli.demo_problems import WHAT, WHO, explain
from seamflow.cli.demo_watch import CatchUp
from seamflow.ids import EventId, FlowId, Json, RunId

AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
CONTRACT_EVENT: Json = {
    "body": {
        "event": "contract.signed",
        "data": {"number": "HT-2026-000002", "customer": {"name": "深圳南山智能制造有限公司"}},
    },
    "headers": {},
}


def _dead(flow: str, message: str) -> store.RunSummary:
    error: Json = {"code": "connector.permanent", "message": message}
    return store.RunSummary(
        RunId("run_01"), FlowId(flow), "v1", store.RunStatus.DEAD_LETTER, EventId("e1"), AT, AT, AT, error
    )


@pytest.mark.parametrize(
    "detail",
    [
        "lines/1/sku: no active product with sku 'SF-NAS-4B'",
        "lines/1/sku: no active product with sku \\\\\\'SF-NAS-4B\\\\\\'",  # escaped as the stored text is today
    ],
)
def test_a_contract_for_a_product_the_erp_lacks_names_the_contract_and_the_product(detail: str) -> None:
    message = f'erp.create_sales_order: HTTP 422 Unprocessable Entity: {{"detail":"{detail}"}}'
    explained = explain(_dead("contract-signed-to-erp", message), CONTRACT_EVENT)
    assert explained.kind == "unknown_product" and explained.is_deliberate
    assert explained.detail == "HT-2026-000002 深圳南山智能制造有限公司: SF-NAS-4B"
    assert "sales" in WHO[explained.kind]["en"] and "销售" in WHO[explained.kind]["zh"]


def test_an_erp_customer_with_a_landline_is_named_with_its_phone_and_record() -> None:
    message = (
        "sync customers, erp record 22: phone: '021-95567279' is not a mainland China mobile number;"
        " expected 11 digits starting 13-19"
    )
    explained = explain(_dead("sync.customers.erp", message))
    assert (explained.kind, explained.detail, explained.record) == ("landline", "ERP 22: 021-95567279", "erp:22")
    assert explained.is_deliberate


def test_a_duplicate_tax_id_is_not_passed_off_as_a_deliberate_mistake() -> None:
    message = 'crm.create_customer: HTTP 409 Conflict: {"detail":"tax_id: already the tax id of customer 49"}'
    explained = explain(_dead("sync.customers.erp", message))
    assert explained.kind == "tax_id_taken" and not explained.is_deliberate
    assert "not one of the demo's mistakes" in WHAT[explained.kind]["en"]


def test_anything_else_is_marked_unplanned_with_its_message() -> None:
    explained = explain(_dead("erp-payment-to-crm", "crm.update_contract: HTTP 400 Bad Request"))
    assert explained.kind == "other" and not explained.is_deliberate
    assert explained.detail == "erp-payment-to-crm: crm.update_contract: HTTP 400 Bad Request"


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(n) for n in range(1, 21)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 1.0)) == (10.0, 19.0, 20.0)
    assert percentile([], 0.5) == 0.0 and percentile([3.0], 0.95) == 3.0


def test_agreement_lines_list_each_difference_and_each_one_sided_customer() -> None:
    agreement = demo_report.Agreement(
        linked=61,
        differing=(("上海明远贸易有限公司 (91310115MA1K4B2X3L)", "address", "上海市人民路1号", "上海市人民路2号"),),
        one_sided=(("erp", "2", "parked"), ("erp", "10", "parked")),
    )
    en = demo_report.agreement_lines(agreement, "en")
    assert en[0] == "CRM and ERP differ on 1 of 61 linked customers:"
    assert "上海明远贸易有限公司 (91310115MA1K4B2X3L): address — CRM '上海市人民路1号', ERP '上海市人民路2号'" in en[1]
    assert en[2] == "  2 customers only in the ERP (2, 10): each waits as a problem above"
    agreeing = demo_report.Agreement(61, (), ())
    assert demo_report.agreement_lines(agreeing, "zh")[0].startswith("CRM 与 ERP 的 61 家关联客户资料完全一致")
    assert demo_report.agreement_lines(None, "en") == [
        "CRM and ERP customers not compared: the demo stopped before every feed had caught up"
    ]


def test_a_catch_up_that_ran_out_of_time_says_what_was_still_moving() -> None:
    late = CatchUp(is_done=False, in_flight=3, webhooks=2, behind=("sync.customers.crm", "erp-payment-to-crm"))
    assert late.describe() == (
        "3 runs in flight; 2 CRM webhooks not delivered;"
        " feeds not polled since the last change: sync.customers.crm, erp-payment-to-crm"
    )
    assert CatchUp(is_done=True).describe() == "nothing"
