"""The example projects allow the systems they talk to in their own `seamflow.toml`.

Their tests run without the loopback the rest of the suite allows (`tests/conftest.py`), so they
prove that a user who runs an example, or `seamflow demo`, needs nothing else. Tests that point an
example at a stand-in for a public platform (`test_pack_examples.py`) keep the suite's allowance:
the stand-in on loopback is the test's change, not the example's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

_PROJECTS_ALLOWING_THEIR_HOSTS = {
    "test_demo",
    "test_lead_to_cash",
    "test_oa_approvals",
    "test_procure_to_pay",
    "test_reimbursement",
}


@pytest.fixture(scope="module", autouse=True)
def _no_suite_outbound_allowance(request: pytest.FixtureRequest) -> Iterator[None]:
    """Module-scoped and autouse, so it applies before the module's servers are started."""
    with pytest.MonkeyPatch.context() as patch:
        if request.module.__name__.rpartition(".")[2] in _PROJECTS_ALLOWING_THEIR_HOSTS:
            patch.delenv("SEAMFLOW_OUTBOUND_ALLOW", raising=False)
        yield
