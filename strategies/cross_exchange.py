"""Cross-exchange spot arbitrage: buy where it is cheap, sell where it is dear.

The strategy is thin: it watches top-of-book changes of every configured symbol on every
configured venue (two or more) and hands the best opportunity between the venue that
moved and each other venue (found by :func:`arbsim.runtime.arbitrage.find_opportunity`)
to an :class:`arbsim.runtime.arbitrage.ArbExecutor`. Each symbol runs one attempt at a
time with a short cool-down; attempts on different symbols run concurrently. It runs
unchanged in backtest, paper and live modes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.model import Instrument
from arbsim.core.records import ArbRecord
from arbsim.runtime.arbitrage import ArbExecutor, ArbParams, Opportunity, find_opportunity
from arbsim.runtime.context import Context
from arbsim.runtime.strategy import Strategy


class _Market:
    """One symbol across the venues: books, instruments, its executor and its state."""

    def __init__(
        self, ctx: Context, params: ArbParams, venues: Sequence[str], ids: Iterator[int]
    ) -> None:
        self.p = params
        self.venues = list(venues)
        self.books = {v: ctx.book(v, params.symbol) for v in venues}
        self.insts: dict[str, Instrument] = {v: ctx.instrument(v, params.symbol) for v in venues}
        self.executor = ArbExecutor(ctx, params, ids)
        self.busy = False
        self.cooldown_until = 0

    def best(self, venue: str, ts: int) -> Opportunity | None:
        """The opportunity with the largest expected PnL between ``venue`` and each other
        venue (each pair in config order: buy on the first, else on the second)."""
        best: Opportunity | None = None
        for a, b in itertools.combinations(self.venues, 2):
            if venue not in (a, b):
                continue
            ba, bb, ia, ib = self.books[a], self.books[b], self.insts[a], self.insts[b]
            opp = find_opportunity(ba, bb, ia, ib, self.p, ts) or find_opportunity(
                bb, ba, ib, ia, self.p, ts
            )
            if opp is not None and (best is None or opp.exp_pnl > best.exp_pnl):
                best = opp
        return best


class CrossExchangeArb(Strategy):
    name = "cross_exchange"
    Params = ArbParams

    def __init__(self, params: ArbParams):
        self.p = params
        self.checks = 0
        self.found = 0
        self._markets: dict[str, _Market] = {}
        self._last_top: dict[tuple[str, str], tuple[int | None, int | None, float, float]] = {}

    def subscriptions(self, venues: Sequence[str]) -> dict[str, list[str]]:
        return {v: list(self.p.all_symbols) for v in (self.p.venues or venues)}

    async def on_start(self, ctx: Context) -> None:
        names = self.p.venues or sorted(ctx.venues)
        if len(names) < 2:
            raise ValueError(f"cross_exchange needs two or more venues, got {names}")
        ids = itertools.count(1)  # one numbering for every symbol's attempts
        for symbol in self.p.all_symbols:
            params = msgspec.structs.replace(
                self.p, symbol=symbol, max_qty=self.p.max_qty_by_symbol.get(symbol, self.p.max_qty)
            )
            self._markets[symbol] = _Market(ctx, params, names, ids)

    @property
    def busy(self) -> bool:
        """An attempt is in flight on some symbol."""
        return any(m.busy for m in self._markets.values())

    async def on_resume(self, ctx: Context, in_flight: list[ArbRecord]) -> None:
        """Attempts a crashed process left in flight are repaired before trading on."""
        for rec in in_flight:
            market = self._markets.get(rec.symbol)
            if market is None:
                raise ValueError(f"an attempt on {rec.symbol} was in flight; it is not traded now")
            market.busy = True
            try:
                await market.executor.complete(rec)
            finally:
                market.busy = False

    def on_book(self, ctx: Context, venue: str, book: OrderBook) -> None:
        market = self._markets.get(book.symbol)
        if market is None or venue not in market.books:
            return
        top = (book.best_bid_tick, book.best_ask_tick, book.best_bid_size, book.best_ask_size)
        key = (venue, book.symbol)
        if self._last_top.get(key) == top:
            return
        self._last_top[key] = top
        # the cool-down is counted in received data: an update received before it ended
        # is not acted on however late it is processed (a backtest, processing each
        # update at its receive time, gates the same updates)
        if market.busy or book.ts_local < market.cooldown_until:
            return
        self.checks += 1
        opp = market.best(venue, book.ts_local)
        if opp is None or ctx.risk.tripped:
            return
        self.found += 1
        market.busy = True
        ctx.spawn(self._attempt(ctx, market, opp), name=f"arb-{self.found}")

    async def _attempt(self, ctx: Context, market: _Market, opp: Opportunity) -> None:
        try:
            await market.executor.execute(opp)
        finally:
            market.busy = False
            market.cooldown_until = ctx.now_ns() + int(market.p.cooldown_s * 1e9)

    def summary(self) -> dict[str, Any]:
        return {"top_of_book_checks": self.checks, "opportunities": self.found}
