"""Shared fixtures: a fresh project folder per test, and the local sink.

The test servers (the sink, PostgreSQL, brokers, fakes of SaaS platforms) listen on loopback,
which the outbound guard refuses by default: this is the one place tests allow it, explicitly
and for loopback only, for this process and the `seamflow` processes it starts (they inherit the
environment). Private networks and cloud metadata stay refused; the guard's own tests build
their `Outbound` without it, and the example projects allow their hosts in their `seamflow.toml`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.sink import Sink

TEST_OUTBOUND_ALLOW = "127.0.0.0/8,::1,localhost"
"""What tests may reach besides public addresses: loopback, where every test server listens."""
os.environ["SEAMFLOW_OUTBOUND_ALLOW"] = TEST_OUTBOUND_ALLOW


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    return tmp_path / "project"


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with Sink.start() as running:
        yield running
