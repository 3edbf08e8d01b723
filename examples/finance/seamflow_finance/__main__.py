"""`python -m seamflow_finance --db finance.db --port 8103`: run the example finance system (FINANCE_API_TOKEN)."""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from seamflow_finance.app import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seamflow_finance", description=__doc__)
    parser.add_argument("--db", default="finance.db", help="the SQLite file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8103)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    token = os.environ.get("FINANCE_API_TOKEN", "")
    if not token:
        print("error: set FINANCE_API_TOKEN, the bearer token the API expects", file=sys.stderr)
        return 2
    uvicorn.run(create_app(args.db, token), host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
