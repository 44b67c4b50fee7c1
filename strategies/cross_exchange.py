"""Cross-exchange spot arbitrage: buy where it is cheap, sell where it is dear.

The strategy is thin: it watches top-of-book changes on two venues and hands any
opportunity (found by :func:`arbsim.runtime.arbitrage.find_opportunity`) to the
:class:`arbsim.runtime.arbitrage.ArbExecutor`, one attempt at a time, with a short cool-down.
It runs unchanged in backtest, paper and live modes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from arbsim.core.book import OrderBook
from arbsim.core.model import Instrument
from arbsim.core.records import ArbRecord
from arbsim.runtime.arbitrage import ArbExecutor, ArbParams, Opportunity, find_opportunity
from arbsim.runtime.context import Context
from arbsim.runtime.strategy import Strategy


class CrossExchangeArb(Strategy):
    name = "cross_exchange"
    Params = ArbParams

    def __init__(self, params: ArbParams):
        self.p = params
        self.busy = False
        self.cooldown_until = 0
        self.checks = 0
        self.found = 0
        self._pair: tuple[str, str] = ("", "")
        self._books: tuple[OrderBook, OrderBook] | None = None
        self._insts: tuple[Instrument, Instrument] | None = None
        self._last_top: dict[str, tuple[int | None, int | None, float, float]] = {}
        self._executor: ArbExecutor | None = None

    def subscriptions(self, venues: Sequence[str]) -> dict[str, list[str]]:
        return {v: [self.p.symbol] for v in (self.p.venues or venues)}

    async def on_start(self, ctx: Context) -> None:
        names = self.p.venues or sorted(ctx.venues)
        if len(names) != 2:
            raise ValueError(f"cross_exchange needs exactly two venues, got {names}")
        a, b = names
        self._pair = (a, b)
        self._books = (ctx.book(a, self.p.symbol), ctx.book(b, self.p.symbol))
        self._insts = (ctx.instrument(a, self.p.symbol), ctx.instrument(b, self.p.symbol))
        self._executor = ArbExecutor(ctx, self.p)

    async def on_resume(self, ctx: Context, in_flight: list[ArbRecord]) -> None:
        """Attempts a crashed process left in flight are repaired before trading on."""
        assert self._executor is not None
        self.busy = True
        try:
            for rec in in_flight:
                await self._executor.complete(rec)
        finally:
            self.busy = False

    def on_book(self, ctx: Context, venue: str, book: OrderBook) -> None:
        if self._books is None or self._insts is None or book.symbol != self.p.symbol:
            return
        top = (book.best_bid_tick, book.best_ask_tick, book.best_bid_size, book.best_ask_size)
        if self._last_top.get(venue) == top:
            return
        self._last_top[venue] = top
        # the cool-down is counted in received data: an update received before it ended
        # is not acted on however late it is processed (a backtest, processing each
        # update at its receive time, gates the same updates)
        if self.busy or book.ts_local < self.cooldown_until:
            return
        self.checks += 1
        (ba, bb), (ia, ib) = self._books, self._insts
        ts = book.ts_local
        opp = find_opportunity(ba, bb, ia, ib, self.p, ts) or find_opportunity(
            bb, ba, ib, ia, self.p, ts
        )
        if opp is None or ctx.risk.tripped:
            return
        self.found += 1
        self.busy = True
        ctx.spawn(self._attempt(ctx, opp), name=f"arb-{self.found}")

    async def _attempt(self, ctx: Context, opp: Opportunity) -> None:
        assert self._executor is not None
        try:
            await self._executor.execute(opp)
        finally:
            self.busy = False
            self.cooldown_until = ctx.now_ns() + int(self.p.cooldown_s * 1e9)

    def summary(self) -> dict[str, Any]:
        return {"top_of_book_checks": self.checks, "opportunities": self.found}
