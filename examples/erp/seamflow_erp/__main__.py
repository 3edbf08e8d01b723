"""`python -m seamflow_erp [serve|seed] --db erp.db --port 8102 [--seed] [--operator]`: run the example ERP."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import timedelta

from seamflow_erp.database import Database
from seamflow_erp.operator import OperatorOptions
from seamflow_erp.seed import seed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m seamflow_erp", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        choices=("serve", "seed"),
        default="serve",
        help="serve the API (default), or only load the sample data and exit",
    )
    parser.add_argument("--db", default="erp.db", help="SQLite file, sqlite:/// URL or postgresql:// URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument("--seed", action="store_true", help="load the sample data before serving")
    parser.add_argument(
        "--operator",
        action="store_true",
        help="simulate the back office: approve, collect payment and ship after random delays",
    )
    parser.add_argument(
        "--operator-delay-s",
        default="2:10",
        metavar="MIN:MAX",
        help="seconds between an order's simulated steps (default 2:10)",
    )
    parser.add_argument("--log-level", default="info")
    return parser


def _operator_options(text: str) -> OperatorOptions:
    low, _, high = text.partition(":")
    return OperatorOptions(min_delay=timedelta(seconds=float(low)), max_delay=timedelta(seconds=float(high or low)))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    db = Database(args.db)
    if args.command == "seed" or args.seed:
        seed(db)
        print("sample data loaded", file=sys.stderr)
    if args.command == "seed":
        return 0
    token = os.environ.get("ERP_API_TOKEN", "")
    if not token:
        print("error: set ERP_API_TOKEN to the bearer token clients must send", file=sys.stderr)
        return 2
    import uvicorn

    from seamflow_erp.app import create_app

    app = create_app(db, token, _operator_options(args.operator_delay_s) if args.operator else None)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower())
    return 0


if __name__ == "__main__":
    sys.exit(main())
