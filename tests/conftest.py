"""Shared fixtures: a fresh project folder per test, and the local sink."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.sink import Sink


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    return tmp_path / "project"


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with Sink.start() as running:
        yield running
