"""The finance system's web API: record a payment (once per reference), list payments; bearer token.

A payment's `reference` (the OA approval instance it pays) is UNIQUE: recording it again answers
the payment already recorded (200) instead of paying twice. Amounts are decimal strings in CNY
("1280.50"), kept as integer fen.
"""

from __future__ import annotations

import hmac
import sqlite3
import threading
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

__all__ = ["create_app"]

_bearer = HTTPBearer(auto_error=False)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
  id INTEGER PRIMARY KEY,
  number TEXT NOT NULL UNIQUE,
  reference TEXT NOT NULL UNIQUE,
  payee TEXT NOT NULL,
  payee_name TEXT NOT NULL,
  amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
  purpose TEXT NOT NULL,
  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
)
"""


class PaymentIn(BaseModel):
    """A payment to record: who is paid how much for which approved request."""

    reference: str = Field(min_length=1, max_length=100, description="the OA approval instance paid")
    payee: str = Field(min_length=1, max_length=64, description="the payee's user id")
    payee_name: str = Field(min_length=1, max_length=64)
    amount: str = Field(pattern=r"^\d{1,9}(\.\d{1,2})?$", description="CNY, e.g. 1280.50")
    purpose: str = Field("", max_length=200)


class Ledger:
    """The payments table behind one lock (one SQLite connection, used from FastAPI's threads)."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def record(self, payment: PaymentIn) -> tuple[dict[str, Any], bool]:
        """Record `payment` unless its reference is paid already; (payment, is_new)."""
        try:
            fen = int(Decimal(payment.amount) * 100)
        except InvalidOperation:
            raise HTTPException(422, f"amount {payment.amount!r} is not a decimal number of yuan") from None
        with self._lock:
            found = self._db.execute("SELECT * FROM payments WHERE reference = ?", (payment.reference,)).fetchone()
            if found is not None:
                return _json(found), False
            count = self._db.execute("SELECT count(*) FROM payments").fetchone()[0]
            self._db.execute(
                "INSERT INTO payments (number, reference, payee, payee_name, amount_fen, purpose)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (f"FK{count + 1:06d}", payment.reference, payment.payee, payment.payee_name, fen, payment.purpose),
            )
            row = self._db.execute("SELECT * FROM payments WHERE reference = ?", (payment.reference,)).fetchone()
            return _json(row), True

    def list(self, reference: str | None) -> list[dict[str, Any]]:
        with self._lock:
            if reference is None:
                rows = self._db.execute("SELECT * FROM payments ORDER BY id").fetchall()
            else:
                rows = self._db.execute("SELECT * FROM payments WHERE reference = ?", (reference,)).fetchall()
        return [_json(r) for r in rows]


def _json(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["amount"] = f"{Decimal(out.pop('amount_fen')) / 100:.2f}"
    return out


def create_app(db_path: str, token: str) -> FastAPI:
    """The finance API over the SQLite file `db_path`, behind the bearer `token`."""
    app = FastAPI(title="Finance (财务系统)", version="1.0.0")
    ledger = Ledger(db_path)

    def authorized(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "send the finance API token as `Authorization: Bearer <token>`")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/payments", operation_id="record_payment", status_code=201, dependencies=[Depends(authorized)])
    def record_payment(body: PaymentIn, response: Response) -> dict[str, Any]:
        payment, is_new = ledger.record(body)
        if not is_new:
            response.status_code = 200
        return payment

    @app.get("/payments", operation_id="list_payments", dependencies=[Depends(authorized)])
    def list_payments(request: Request, reference: str | None = None) -> list[dict[str, Any]]:
        return ledger.list(reference)

    return app
