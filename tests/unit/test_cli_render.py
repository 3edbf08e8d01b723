"""Error texts for people: escaped once, JSON inside pretty-printed, long ones cut with a marker."""

from __future__ import annotations

import re

import pytest

from seamflow import errors, redact
from seamflow.cli.progress import Progress
from seamflow.cli.render import error_text
from seamflow.cli.table import print_table


def test_redact_text_keeps_quotes_that_redact_would_escape() -> None:
    message = "a str has no attribute 'x'"
    assert errors.redact_text(message, 200) == message
    assert errors.redact(message, 200) != message, "redact shows a value with repr"


def test_truncate_says_how_many_characters_were_left_out() -> None:
    cut = errors.truncate("订" * 12_400, 55)
    assert cut == "订" * 15 + "… [truncated, 12,385 more characters]"
    assert errors.truncate("short", 55) == "short"


def test_redact_text_masks_registered_secrets() -> None:
    redact.register("sk-live-3f9a7c21")
    assert errors.redact_text("Authorization: Bearer sk-live-3f9a7c21 refused", 200) == (
        "Authorization: Bearer *** refused"
    )


def test_a_json_body_in_an_error_is_pretty_printed_between_its_context() -> None:
    error = {
        "code": "connector.permanent",
        "message": 'erp.create_order: HTTP 422 Unprocessable Entity: {"type":"validation_error",'
        '"detail":"unknown sku \'SF-NAS-4B\'"} (POST http://erp.local/orders)',
    }
    assert error_text(error) == (
        "[connector.permanent] erp.create_order: HTTP 422 Unprocessable Entity:\n"
        "{\n"
        '  "type": "validation_error",\n'
        '  "detail": "unknown sku \'SF-NAS-4B\'"\n'
        "}\n"
        "(POST http://erp.local/orders)"
    )


def test_a_listing_shows_the_error_on_one_line_and_cut() -> None:
    error = {"code": "connector.permanent", "message": "HTTP 400: " + '{"lines": ["' + "行" * 3000 + '"]}'}
    shown = error_text(error, limit=200, pretty=False)
    assert "\n" not in shown
    assert shown.endswith("more characters]") and len(shown) <= 200


def test_text_that_is_not_json_is_left_as_it_is() -> None:
    error = {"code": "expression.undefined", "message": "in '{{ event.body.x }}': 'x' is undefined"}
    assert error_text(error) == "[expression.undefined] in '{{ event.body.x }}': 'x' is undefined"


def test_a_plain_progress_line_has_share_rate_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress("loading customers from erp", is_terminal=False) as progress:
        progress.update(0, 10_000)
        progress.update(2_500, 10_000)
        line = progress.line()
    assert re.fullmatch(r"loading customers from erp: 2,500/10,000 records \(25%\), [\d,]+ records/s, ETA \d+s", line)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "loading customers from erp: 0/10,000 records (0%), 0 records/s"
    assert printed[-1].startswith("loading customers from erp: 2,500/10,000 records (25%), "), "and at the end"


def test_a_plain_table_lines_up_under_its_headers(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(["flow", "status"], [["contract-signed-to-erp", "completed"], ["pay", None]], empty="no runs")
    assert capsys.readouterr().out.splitlines() == [
        "FLOW                    STATUS",
        "contract-signed-to-erp  completed",
        "pay                     -",
    ]
    print_table(["flow"], [], empty="no runs")
    assert capsys.readouterr().out == "no runs\n"


def test_an_index_in_a_path_is_not_taken_for_a_json_array() -> None:
    error = {"code": "expression.undefined", "message": "steps[0].transform.name: 'customer' is undefined"}
    assert error_text(error) == "[expression.undefined] steps[0].transform.name: 'customer' is undefined"


def test_a_short_list_in_the_text_is_left_and_the_body_after_it_pretty_printed() -> None:
    error = {
        "code": "connector.permanent",
        "message": 'HTTP 404 Not Found; expected one of [200, 201]: {"error":"无此客户"}',
    }
    assert error_text(error) == (
        '[connector.permanent] HTTP 404 Not Found; expected one of [200, 201]:\n{\n  "error": "无此客户"\n}'
    )
