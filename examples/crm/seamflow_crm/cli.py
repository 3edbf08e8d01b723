"""The command line: `python -m seamflow_crm [serve] --port 8101 --db crm.db` and `python -m seamflow_crm seed`."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import sys
from datetime import timedelta
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from seamflow_crm import seed
from seamflow_crm.app import create_app
from seamflow_crm.settings import Settings
from seamflow_crm.webhooks import DeliveryPolicy

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the CRM command in `argv` (default: the process arguments); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "seed":
        options = _seed_parser().parse_args(args[1:])
        app = create_app(Settings(db_path=options.db, api_token=secrets.token_urlsafe(24)))
        print(f"seeded {options.db}: {asyncio.run(seed.create_sample_data(app))}")
        return 0
    if args and args[0] == "serve":
        args = args[1:]
    return _serve(_serve_parser().parse_args(args))


def _serve(options: argparse.Namespace) -> int:
    token = options.token or os.environ.get("CRM_API_TOKEN") or ""
    if not token:
        token = secrets.token_urlsafe(24)
        print(f"CRM_API_TOKEN is not set; this run's API token is {token}", flush=True)
    policy = DeliveryPolicy(
        secret=options.webhook_secret or os.environ.get("CRM_WEBHOOK_SECRET") or None,
        initial_delay=timedelta(seconds=options.retry_initial_s),
        max_delay=timedelta(seconds=options.retry_max_s),
        max_attempts=options.max_attempts,
    )
    urls = tuple(options.webhook_url) or Settings.webhook_urls_from_env()
    settings = Settings(db_path=options.db, api_token=token, webhook_urls=urls, delivery=policy)
    app = create_app(settings)
    if urls and policy.secret is None:
        print("warning: CRM_WEBHOOK_SECRET is not set; webhooks are sent without X-Signature", flush=True)
    sock = socket.socket(socket.AF_INET6 if ":" in options.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((options.host, options.port))
    host, port = sock.getsockname()[:2]
    # Printed before serving, so a parent process that passed --port 0 learns the port.
    print(f"CRM_URL http://{host}:{port}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=options.log_level, lifespan="on"))
    asyncio.run(_run(app, server, sock, is_seeding=options.seed))
    return 0


async def _run(app: FastAPI, server: uvicorn.Server, sock: socket.socket, *, is_seeding: bool) -> None:
    if is_seeding:
        print(f"seeded: {await seed.create_sample_data(app)}", flush=True)
    await server.serve(sockets=[sock])


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m seamflow_crm", description="Serve the example CRM.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101, help="0 picks a free port (printed as CRM_URL)")
    parser.add_argument("--db", type=Path, default=Path("crm.db"), help="the SQLite file (default crm.db)")
    parser.add_argument("--token", help="the API bearer token (default: CRM_API_TOKEN; else a random one)")
    parser.add_argument(
        "--webhook-url", action="append", default=[], help="a subscriber URL; repeatable (default: CRM_WEBHOOK_URL)"
    )
    parser.add_argument("--webhook-secret", help="HMAC secret for X-Signature (default: CRM_WEBHOOK_SECRET)")
    parser.add_argument("--seed", action="store_true", help="add the sample data if the database has no customers")
    parser.add_argument("--retry-initial-s", type=float, default=1.0, help="first webhook retry delay (seconds)")
    parser.add_argument("--retry-max-s", type=float, default=600.0, help="longest webhook retry delay (seconds)")
    parser.add_argument("--max-attempts", type=int, default=30, help="webhook attempts before a delivery fails")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser


def _seed_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m seamflow_crm seed", description="Add sample data.")
    parser.add_argument("--db", type=Path, default=Path("crm.db"), help="the SQLite file (default crm.db)")
    return parser
