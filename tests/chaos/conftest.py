"""The chaos suite's marker (registered here so that only tests/chaos/ needs to know it)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "chaos: a long run of payments through real processes under injected faults "
        "(size from PAYFRONT_CHAOS_SIZE: unset = CI size, 'full', or a number of payments)",
    )
