"""`seamflow dev receiver`: the local target of the scaffolded connection records what it gets and answers 201."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port
from tests.support.wait import eventually


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = tmp_path / "receiver.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "seamflow", "dev", "receiver", "--port", str(port)], stdout=out, stderr=out
        )
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _answer(url: str) -> None:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            await client.get(url + "/ready")
    except httpx.TransportError as exc:
        raise AssertionError(f"the receiver does not answer yet: {exc}") from exc


async def test_receiver_prints_the_request_with_credentials_masked_and_answers_201(
    receiver: tuple[str, Path],
) -> None:
    url, log = receiver
    await eventually(lambda: _answer(url), timeout=15)
    async with httpx.AsyncClient(timeout=5) as client:
        answer = await client.post(
            url + "/orders",
            json={"number": "SO-20261124-0001", "customer_name": "张伟", "amount_cents": 129900},
            headers={"Authorization": "Bearer sf-secret-orders-token", "Idempotency-Key": "run_1:forward:1"},
        )
    assert answer.status_code == 201
    assert answer.json() == {"id": 2, "received": True}

    async def printed() -> str:
        text = log.read_text("utf-8")
        assert "-> 201" in text.split("#2 POST /orders", 1)[-1], text
        return text

    text = await eventually(printed, timeout=10)
    assert "Authorization: Bearer ***" in text
    assert "sf-secret-orders-token" not in text
    assert "Idempotency-Key: run_1:forward:1" in text
    assert '    "customer_name": "张伟",' in text, "the JSON body is pretty-printed, Chinese as is"


async def test_receiver_on_a_taken_port_says_so_in_one_line(receiver: tuple[str, Path]) -> None:
    url, _ = receiver
    await eventually(lambda: _answer(url), timeout=15)
    second = subprocess.run(
        [sys.executable, "-m", "seamflow", "dev", "receiver", "--port", url.rsplit(":", 1)[1]],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 2
    assert second.stderr.startswith("error [dev.port_in_use]: cannot listen on 127.0.0.1:"), second.stderr
    assert "Traceback" not in second.stderr
