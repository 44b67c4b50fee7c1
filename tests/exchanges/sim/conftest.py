"""Fixtures: a manually stepped simulator with both venues on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from exchanges.sim.config import SimConfig, VenueConfig
from exchanges.sim.runner import Simulator, run_simulator


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    cfg = SimConfig(venues=[VenueConfig(venue="mexc"), VenueConfig(venue="gateio")], speed=0)
    async with run_simulator(cfg) as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
