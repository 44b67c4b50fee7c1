"""Start and stop the simulator: one aiohttp server per venue, one replay per venue, all
on one clock (:mod:`exchanges.sim.clock`).

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
from exchanges.sim.clock import (
    MS,
    Extent,
    SimClock,
    catalog_extent,
    check_window,
    iso,
    lap_length,
    parse_time,
)
from exchanges.sim.config import FaultRule, SimConfig, VenueConfig
from exchanges.sim.exchange import SimExchange
from exchanges.sim.faults import FaultState
from exchanges.sim.gate_server import GateServer
from exchanges.sim.market import MarketReplay
from exchanges.sim.mexc_server import MexcServer
from exchanges.sim.transfers import TransferNetwork

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
    """All venues of one simulator run, on one clock."""

    def __init__(self, config: SimConfig, venues: dict[str, SimVenue], clock: SimClock):
        self.config = config
        self.venues = venues
        self.clock = clock
        self.tasks: list[asyncio.Task[None]] = []

    @property
    def transfers(self) -> TransferNetwork:
        """The transfer network the venues share."""
        network = next(iter(self.venues.values())).exchange.transfers
        if network is None:
            raise RuntimeError("the simulator has not started its transfer network")
        return network

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
        network = self.transfers
        for v in self.venues.values():
            for (asset, chain), route in network.routes.items():
                lines.append(
                    f"{v.name}: deposit {asset} on {chain} to "
                    f"{network.address(v.name, v.api_key, asset, chain)} "
                    f"(withdrawal fee {route.fee}, minimum {route.minimum})"
                )
        c = self.clock
        end = iso(c.end_ns) if c.end_ns is not None else "the catalog's end"
        lines.append(
            f"window {iso(c.start_ns)} .. {end} ({'looping, ' if c.loop else ''}pace {c.pace}); "
            f"exchange time = catalog ts_exchange + {c.offset_ns // MS} ms"
        )
        return "\n".join(lines)


def _markets(config: SimConfig, clock: SimClock) -> dict[str, MarketReplay]:
    catalog = Catalog(config.catalog_path)
    out: dict[str, MarketReplay] = {}
    for cfg in config.venues:
        if cfg.venue in out:
            raise ConfigError(f"venue {cfg.venue} configured twice")
        instruments = [
            msgspec.structs.replace(i, venue=cfg.venue)
            for i in catalog.instruments()
            if i.venue == cfg.source
        ]
        if not instruments:
            raise ConfigError(f"{catalog.root}: no instruments of venue {cfg.source!r}")
        out[cfg.venue] = MarketReplay(catalog, cfg.source, instruments, clock)
    return out


def _plan(config: SimConfig, markets: dict[str, MarketReplay], clock: SimClock) -> None:
    """Check the window, build the books up to its start (silently) and set the clock's
    window."""
    start = parse_time(config.start, "start") if config.start else None
    end = parse_time(config.end, "end") if config.end else None
    extent = Extent.union(catalog_extent(m.catalog, m.source, m.symbols) for m in markets.values())
    check_window(extent, start, end, str(config.catalog_path))
    if start is None:
        # the first moment every symbol has a book: prime each venue, then the others up
        # to there too (one window for all venues)
        primed = [k for k in (m.prime() for m in markets.values()) if k is not None]
        start = max(primed) + 1 if primed else (extent.first_exchange if extent else 0)
    for m in markets.values():
        m.warm(start)
    clock.set_window(start, end, lap_length(extent, start, end, config.pace))


def _build_venue(
    cfg: VenueConfig, market: MarketReplay, clock: SimClock, host_ns: Callable[[], int]
) -> SimVenue:
    spec = VENUE_SERVERS[cfg.venue]
    exchange = SimExchange(
        cfg.venue,
        market,
        cfg.effective_accounts(),
        clock.now_ns,
        rules=spec.rules,
        first_order_id=spec.first_order_id,
    )
    faults = FaultState()
    try:
        server = spec.factory(
            exchange, faults, rate_limits=cfg.rate_limits, now_ns=clock.now_ns, host_ns=host_ns
        )
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
        The host clock. The venues' exchange clock (server time, pushed and REST times)
        is derived from it (:class:`exchanges.sim.clock.SimClock`).
    """
    clock = SimClock(config.speed, config.pace, loop=config.loop, host_ns=now_ns)
    markets = _markets(config, clock)
    _plan(config, markets, clock)
    venues: dict[str, SimVenue] = {
        cfg.venue: _build_venue(cfg, markets[cfg.venue], clock, now_ns) for cfg in config.venues
    }
    # one transfer network for every venue: an address of one is a destination of another
    transfers = TransferNetwork(config.transfers, clock.now_ns, seed=config.transfer_seed)
    for v in venues.values():
        transfers.register(v.name, {k: a.account for k, a in v.exchange.accounts.items()})
        v.exchange.transfers = transfers
    sim = Simulator(config, venues, clock)
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
        # one origin for every venue: catalog time `start` is now
        clock.start()
        for v in venues.values():
            v.market.start()
        if config.speed > 0:
            for v in venues.values():
                sim.tasks.append(asyncio.create_task(v.market.run()))
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
