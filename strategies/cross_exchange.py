"""Cross-exchange spot arbitrage: buy where it is cheap, sell where it is dear.

The strategy is thin: it watches top-of-book changes of every configured symbol on every
configured venue (two or more) and hands the best opportunity between the venue that
moved and each other venue (found by :func:`arbsim.runtime.arbitrage.find_opportunity`)
to an :class:`arbsim.runtime.arbitrage.ArbExecutor`. Each symbol runs one attempt at a
time with a short cool-down; attempts on different symbols run concurrently. It runs
unchanged in backtest, paper and live modes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, Literal

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.model import ZERO, Instrument, Trade
from arbsim.core.records import ArbRecord
from arbsim.runtime.arbitrage import (
    ArbExecutor,
    ArbParams,
    Opportunity,
    RebalanceParams,
    find_opportunity,
)
from arbsim.runtime.context import Context
from arbsim.runtime.execution import AlgoParams, ExecAlgo
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


class _Rebalancer:
    """Inventory rebalancing by trades: when a symbol's base balance on some venue drifted
    more than the band from its start, every venue of that symbol is traded back to its
    start (sold where long, bought where short, TWAPs at once). With ``flatten``, a net
    position an attempt left one-sided (every venue within its band) is closed too, on
    the venue that holds it."""

    def __init__(self, ctx: Context, params: RebalanceParams, markets: dict[str, _Market]):
        self.ctx = ctx
        self.p = params
        self.markets = markets
        self.ids = itertools.count(1)
        self.running: dict[str, list[ExecAlgo]] = {}
        self.started = 0

    def check(self) -> None:
        ctx = self.ctx
        if ctx.risk.tripped:
            return
        band = Decimal(repr(self.p.band))
        for symbol, market in self.markets.items():
            if symbol in self.running:
                continue
            base = market.insts[market.venues[0]].base
            targets = {v: ctx.ledger.start.get(v, {}).get(base, ZERO) for v in market.venues}
            excess = {v: self._excess(v, base) for v in market.venues}
            if any(abs(excess[v]) > t * band for v, t in targets.items() if t > 0):
                moves = excess  # every venue back to its start
            else:
                # a residual position an attempt left one-sided: closed where it sits
                net = sum(excess.values(), ZERO)
                lot = max(i.lot for i in market.insts.values())
                if not self.p.flatten or abs(net) < lot:
                    continue
                where = max(market.venues, key=lambda v: excess[v] * (1 if net > 0 else -1))
                moves = {where: net}
            algos = []
            for v, move in moves.items():
                lot = market.insts[v].lot
                qty = (abs(move) // lot) * lot
                if qty <= 0:
                    continue
                params = self._twap(v, symbol, "sell" if move > 0 else "buy", qty)
                algos.append(ExecAlgo(ctx, params, next(self.ids), "rebalance"))
            if not algos:
                continue
            self.running[symbol] = algos
            self.started += 1
            ctx.spawn(self._work(symbol, algos), name=f"rebalance-{symbol}-{self.started}")

    def _excess(self, venue: str, base: str) -> Decimal:
        ledger = self.ctx.ledger
        target = ledger.start.get(venue, {}).get(base, ZERO)
        return ledger.balances.get(venue, {}).get(base, ZERO) - target

    def _twap(
        self, venue: str, symbol: str, side: Literal["buy", "sell"], qty: Decimal
    ) -> AlgoParams:
        return AlgoParams(
            kind="twap",
            venue=venue,
            symbol=symbol,
            side=side,
            qty=qty,
            duration_s=self.p.duration_s,
            slices=self.p.slices,
            limit_offset_bps=self.p.limit_offset_bps,
        )

    async def _work(self, symbol: str, algos: list[ExecAlgo]) -> None:
        try:
            await asyncio.gather(*(a.run() for a in algos))
        finally:
            self.running.pop(symbol, None)

    def on_trade(self, venue: str, trade: Trade) -> None:
        for algos in self.running.values():
            for algo in algos:
                algo.on_trade(venue, trade)


class CrossExchangeArb(Strategy):
    name = "cross_exchange"
    Params = ArbParams

    def __init__(self, params: ArbParams):
        self.p = params
        self.checks = 0
        self.found = 0
        self._markets: dict[str, _Market] = {}
        self._rebalancer: _Rebalancer | None = None
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
        if self.p.rebalance is not None:
            self._rebalancer = _Rebalancer(ctx, self.p.rebalance, self._markets)
            ctx.every(self.p.rebalance.every_s, self._rebalancer.check)

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

    def on_trade(self, ctx: Context, venue: str, trade: Trade) -> None:
        if self._rebalancer is not None:
            self._rebalancer.on_trade(venue, trade)

    def wants_trades(self) -> bool:
        return self.p.rebalance is not None  # only the rebalancer counts traded volume

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"top_of_book_checks": self.checks, "opportunities": self.found}
        if self._rebalancer is not None:
            out["rebalances"] = self._rebalancer.started
        return out
