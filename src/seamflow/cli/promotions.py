"""`seamflow flow promote | promotions`: asking a flow's owner to approve a candidate, making an
approved one live, and listing the requests — through the running server's API (the request is a
run of the built-in promotion flow, decided in the owner's inbox). Like every module of the CLI,
this one imports only click and the leaves at start.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from seamflow import redact
from seamflow.cli.table import json_option, print_json, print_table

__all__ = ["flow_promote", "flow_promotions"]

url_option = click.option(
    "--url",
    envvar="SEAMFLOW_URL",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="the running `seamflow serve` [$SEAMFLOW_URL]",
)
token_option = click.option(
    "--token", envvar="SEAMFLOW_TOKEN", help="an API token with the build scope [$SEAMFLOW_TOKEN]"
)


@click.command("promote")
@click.argument("flow_id")
@click.option("--candidate", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="the candidate file")
@click.option("--apply", "promotion_id", help="make this approved promotion live (instead of asking)")
@url_option
@token_option
@json_option
def flow_promote(
    flow_id: str, candidate: Path | None, promotion_id: str | None, url: str, token: str | None, as_json: bool
) -> None:
    """Ask the flow's owner to approve a candidate (--candidate FILE), or make an approved one live (--apply ID).

    The owner approves in their inbox; applying before that is refused (promotion.not_approved).
    """
    if (candidate is None) == (promotion_id is None):
        _fail("expected exactly one of --candidate FILE (ask the owner) or --apply PROMOTION_ID (make it live)", 2)
    base = f"/api/v1/flows/{flow_id}/promotions"
    if candidate is not None:
        answer = _call(url, token, "POST", base, {"source": candidate.read_text(encoding="utf-8")})
        if not as_json:
            click.echo(
                f"promotion {answer['promotion_id']} of {flow_id} -> {answer['candidate_version']} asked;"
                f" {answer['owner']} approves it in their inbox, then: seamflow flow promote {flow_id}"
                f" --apply {answer['promotion_id']}"
            )
    else:
        answer = _call(url, token, "POST", f"{base}/{promotion_id}/apply", None)
        if not as_json:
            click.echo(f"flow {flow_id} is live at {answer['version']} (promotion {promotion_id})")
    if as_json:
        print_json(answer)


@click.command("promotions")
@click.argument("flow_id")
@url_option
@token_option
@json_option
def flow_promotions(flow_id: str, url: str, token: str | None, as_json: bool) -> None:
    """List a flow's promotion requests, newest first, with the owner's decision."""
    found = _call(url, token, "GET", f"/api/v1/flows/{flow_id}/promotions", None)
    if as_json:
        print_json(found)
        return
    rows = [
        (p["promotion_id"], p["candidate_version"], p["owner"], p["requested_by"], p["decision"] or "pending")
        for p in found
    ]
    print_table(["promotion", "candidate", "owner", "requested_by", "decision"], rows, empty="no promotions")


def _call(url: str, token: str | None, method: str, path: str, body: Any) -> Any:
    import httpx

    if not token:
        _fail("no API token; expected --token or $SEAMFLOW_TOKEN set to a token with the build scope", 2)
    redact.register(token)
    try:
        response = httpx.request(
            method, url.rstrip("/") + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
    except httpx.HTTPError as exc:
        _fail(f"cannot reach seamflow serve at {url}: {redact.mask_text(str(exc)) or type(exc).__name__}", 1)
    if response.status_code >= 400:
        try:
            problem = response.json()
            said = f"{problem.get('code')}: {problem.get('detail')}"
        except ValueError:
            said = response.text[:500]
        _fail(f"{url} answered {response.status_code} {redact.mask_text(said)}", 1)
    return response.json()


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
