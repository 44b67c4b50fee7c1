"""An order's intent is committed to journal.sqlite before the request leaves the process:
a venue that reads the journal (through its own SQLite connection, as a process started
after a crash would) when the request reaches it finds the order there."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from decimal import Decimal as D
from pathlib import Path

import builders

from arbsim.core.book import OrderBook
from arbsim.core.model import Balance, Balances, Instrument, Order, OrderRequest, Side
from arbsim.core.ports import MarketSink, VenueHealth
from arbsim.runtime.engine import Engine
from arbsim.runtime.journal import Journal, JournalRecorder
from arbsim.runtime.loop import WallClock
from arbsim.runtime.risk import RiskLimits
from arbsim.runtime.strategy import Strategy


class JournalReadingVenue:
    """A venue that, as each order request arrives, reads the journal from outside."""

    name = "v"
    order_expiry_ns = 0

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.inst = builders.instrument("v")
        self.ob = OrderBook("v", self.inst.symbol, self.inst.tick)
        now = time.time_ns()
        self.ob.apply([99.0], [1.0], [100.0], [1.0], ts_exchange=now, ts_local=now, snapshot=True)
        self.seen_in_journal: list[list[tuple[str, str]]] = []

    async def start(self, symbols: Sequence[str], sink: MarketSink) -> None:
        return None

    async def stop(self) -> None:
        return None

    def instrument(self, symbol: str) -> Instrument:
        return self.inst

    def book(self, symbol: str) -> OrderBook:
        return self.ob

    def describe(self) -> dict[str, str | float]:
        return {}

    def health(self) -> VenueHealth:
        return VenueHealth()

    async def fetch_balances(self) -> Balances:
        return Balances(venue="v", ts=0, assets={"USDT": Balance(asset="USDT", free=D(1000))})

    async def place_order(self, req: OrderRequest) -> Order:
        db = sqlite3.connect(self.journal)
        try:
            rows = db.execute(
                "SELECT event, status FROM orders WHERE client_order_id = ?",
                (req.client_order_id,),
            ).fetchall()
        finally:
            db.close()
        self.seen_in_journal.append(rows)
        return Order.from_request(req, time.time_ns())

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        raise NotImplementedError("not used here")

    async def fetch_order(self, symbol: str, client_order_id: str) -> Order:
        raise NotImplementedError("not used here")

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        return []


def test_the_intent_is_committed_before_the_request_leaves(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    venue = JournalReadingVenue(path)

    async def main() -> None:
        engine = Engine(
            strategy=Strategy(),
            venues={"v": venue},
            symbols={"v": [venue.inst.symbol]},
            loop=asyncio.get_running_loop(),
            clock=WallClock(),
            risk_limits=RiskLimits(),
            recorder=JournalRecorder(journal),
        )
        req = OrderRequest(
            venue="v", symbol=venue.inst.symbol, side=Side.BUY, qty=D("0.01"), price=D("100")
        )
        await engine.ctx.place_order(req)

    asyncio.run(main())
    journal.close()
    assert venue.seen_in_journal == [[("sent", "new")]]
