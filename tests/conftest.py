"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """``../shared/realdata`` (relative to the project root); skips the test when absent."""
    if not REALDATA.is_dir():
        pytest.skip(f"real data not available: {REALDATA} does not exist")
    return REALDATA
