"""Start and stop the simulator: one aiohttp server per venue, one replay per venue.

In tests::

    cfg = SimConfig(venues=[VenueConfig(venue="mexc"), VenueConfig(venue="gateio")], speed=0)
    async with run_simulator(cfg) as sim:
        mexc = sim.venues["mexc"]
        mexc.base_url, mexc.ws_url, mexc.api_key, mexc.api_secret
        sim.step(10)  # speed 0: the replay advances only when stepped
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import msgspec
from aiohttp import web

from arbsim.core.errors import ConfigError
from arbsim.core.rules import VenueRules
from arbsim.data.catalog import Catalog
from exchanges.gateio.rules import GATEIO_RULES
from exchanges.mexc.rules import MEXC_RULES
from exchanges.sim.config import FaultRule, SimConfig, VenueConfig
from exchanges.sim.exchange import SimExchange
from exchanges.sim.faults import FaultState
from exchanges.sim.gate_server import GateServer
from exchanges.sim.market import MarketReplay
from exchanges.sim.mexc_server import MexcServer

__all__ = ["VENUE_SERVERS", "SimVenue", "Simulator", "run_simulator"]


class _Server(Protocol):
    def app(self) -> web.Application: ...

    def drop_connections(self) -> None: ...


class _ServerSpec(msgspec.Struct, frozen=True, kw_only=True):
    factory: Callable[..., _Server]
    rules: VenueRules
    ws_path: str
    api_prefix: str
    first_order_id: int


VENUE_SERVERS: dict[str, _ServerSpec] = {
    "mexc": _ServerSpec(
        factory=MexcServer,
        rules=MEXC_RULES,
        ws_path="/ws",
        api_prefix="/api/v3",
        first_order_id=700_000_000_001,
    ),
    "gateio": _ServerSpec(
        factory=GateServer,
        rules=GATEIO_RULES,
        ws_path="/ws/v4/",
        api_prefix="/api/v4",
        first_order_id=400_000_000_001,
    ),
}
"""Venue -> server class, order rules (rate limits included), WebSocket path, REST prefix
and first order id."""

_SHUTDOWN_S = 1.0


class SimVenue:
    """One running simulated venue: URLs, credentials and its parts (for tests)."""

    def __init__(
        self,
        cfg: VenueConfig,
        market: MarketReplay,
        exchange: SimExchange,
        faults: FaultState,
        server: _Server,
    ):
        self.cfg = cfg
        self.name = cfg.venue
        self.market = market
        self.exchange = exchange
        self.faults = faults
        self.server = server
        self.base_url = ""
        self.runner: web.AppRunner | None = None

    @property
    def ws_url(self) -> str:
        """WebSocket URL (``ws://host:port/ws`` or ``.../ws/v4/``)."""
        return "ws" + self.base_url[4:] + VENUE_SERVERS[self.name].ws_path

    @property
    def api_url(self) -> str:
        """REST base including the version prefix (``.../api/v3`` or ``.../api/v4``)."""
        return self.base_url + VENUE_SERVERS[self.name].api_prefix

    @property
    def api_key(self) -> str:
        """The first account's API key."""
        return self.cfg.effective_accounts()[0].api_key

    @property
    def api_secret(self) -> str:
        """The first account's API secret."""
        return self.cfg.effective_accounts()[0].api_secret

    def inject_fault(self, rule: FaultRule) -> None:
        """Queue a fault (same as ``POST /_sim/faults``)."""
        self.faults.add(rule)


class Simulator:
    """All venues of one simulator run."""

    def __init__(self, config: SimConfig, venues: dict[str, SimVenue]):
        self.config = config
        self.venues = venues
        self.tasks: list[asyncio.Task[None]] = []

    def step(self, n: int = 1, venue: str | None = None) -> int:
        """Apply the next ``n`` catalog messages of one venue (or each venue); returns how
        many market events were published."""
        total = 0
        for name, v in self.venues.items():
            if venue is None or name == venue:
                total += len(v.market.step(n))
        return total

    def banner(self) -> str:
        """What the command line prints on start."""
        lines = []
        for v in self.venues.values():
            lines.append(
                f"{v.name}: REST {v.api_url}  WS {v.ws_url}  "
                f"api_key={v.api_key} api_secret={v.api_secret}  "
                f"admin {v.base_url}/_sim/faults"
            )
        return "\n".join(lines)


def _build_venue(cfg: VenueConfig, config: SimConfig, now_ns: Callable[[], int]) -> SimVenue:
    catalog = Catalog(config.catalog_path)
    instruments = [
        msgspec.structs.replace(i, venue=cfg.venue)
        for i in catalog.instruments()
        if i.venue == cfg.source
    ]
    if not instruments:
        raise ConfigError(f"{catalog.root}: no instruments of venue {cfg.source!r}")
    market = MarketReplay(catalog, cfg.source, instruments, now_ns, loop=config.loop)
    spec = VENUE_SERVERS[cfg.venue]
    exchange = SimExchange(
        cfg.venue,
        market,
        cfg.effective_accounts(),
        now_ns,
        rules=spec.rules,
        first_order_id=spec.first_order_id,
    )
    faults = FaultState()
    try:
        server = spec.factory(exchange, faults, rate_limits=cfg.rate_limits, now_ns=now_ns)
    except ValueError as e:
        raise ConfigError(f"{cfg.venue}: {e}") from e

    def immediate(rule: FaultRule) -> None:
        actions: dict[str, Callable[[], None]] = {
            "pause": lambda: market.pause(rule.delay_s),
            "resume": market.resume,
            "drop_ws": server.drop_connections,
        }
        actions[rule.kind]()

    faults.on_immediate = immediate
    market.prime()
    return SimVenue(cfg, market, exchange, faults, server)


@contextlib.asynccontextmanager
async def run_simulator(
    config: SimConfig, *, now_ns: Callable[[], int] = time.time_ns
) -> AsyncIterator[Simulator]:
    """Start every configured venue on ``config.host``; stop them on exit.

    Parameters
    ----------
    config:
        The simulator configuration (``speed=0`` for manual stepping in tests).
    now_ns:
        The venues' clock (server time, timestamp checks, pushed event times).
    """
    venues: dict[str, SimVenue] = {}
    for cfg in config.venues:
        if cfg.venue in venues:
            raise ConfigError(f"venue {cfg.venue} configured twice")
        venues[cfg.venue] = _build_venue(cfg, config, now_ns)
    sim = Simulator(config, venues)
    try:
        for v in venues.values():
            runner = web.AppRunner(v.server.app(), shutdown_timeout=_SHUTDOWN_S, access_log=None)
            await runner.setup()
            v.runner = runner
            site = web.TCPSite(runner, config.host, v.cfg.port)
            await site.start()
            port = runner.addresses[0][1] if runner.addresses else v.cfg.port
            v.base_url = f"http://{config.host}:{port}"
            for rule in v.cfg.faults:
                v.faults.add(rule)
            if config.speed > 0:
                sim.tasks.append(asyncio.create_task(v.market.run(config.speed)))
        yield sim
    finally:
        for task in sim.tasks:
            task.cancel()
        for task in sim.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for v in venues.values():
            if v.runner is not None:
                await v.runner.cleanup()
