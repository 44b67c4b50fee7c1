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
import logging
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, Literal

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.errors import InvalidOrder, VenueError
from arbsim.core.model import ZERO, Instrument, Trade, floor_to
from arbsim.core.ports import TransferVenue
from arbsim.core.records import ArbRecord, TransferRecord
from arbsim.runtime.arbitrage import (
    ArbExecutor,
    ArbParams,
    Opportunity,
    RebalanceParams,
    edge_threshold,
    find_opportunity,
    touch_pays,
)
from arbsim.runtime.context import Context
from arbsim.runtime.execution import AlgoParams, ExecAlgo
from arbsim.runtime.strategy import Strategy

log = logging.getLogger("arbsim.strategy")


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
        #: (buy venue, sell venue) -> amortised transfer cost, bps (ArbParams.transfer_cost)
        self.costs: dict[tuple[str, str], float] = {}
        #: each venue's pairs with the others, in config order
        self.pairs = {
            v: [(a, b) for a, b in itertools.combinations(self.venues, 2) if v in (a, b)]
            for v in self.venues
        }
        self.fees = {v: float(i.taker_fee) for v, i in self.insts.items()}

    def best(self, venue: str, ts: int) -> Opportunity | None:
        """The opportunity with the largest expected PnL between ``venue`` and each other
        venue (each pair in config order: buy on the first, else on the second). A
        direction whose touch does not pay (most top-of-book changes) is not walked."""
        best: Opportunity | None = None
        books, fees, costs, p = self.books, self.fees, self.costs, self.p
        for a, b in self.pairs[venue]:
            ba, bb = books[a], books[b]
            opp = None
            cost = costs.get((a, b), 0.0)
            if touch_pays(ba, bb, fees[a], fees[b], edge_threshold(p, cost)) is not None:
                opp = find_opportunity(ba, bb, self.insts[a], self.insts[b], p, ts, cost)
            if opp is None:
                cost = costs.get((b, a), 0.0)
                if touch_pays(bb, ba, fees[b], fees[a], edge_threshold(p, cost)) is not None:
                    opp = find_opportunity(bb, ba, self.insts[b], self.insts[a], p, ts, cost)
            if opp is not None and (best is None or opp.exp_pnl > best.exp_pnl):
                best = opp
        return best


class _Rebalancer:
    """Inventory rebalancing (:class:`~arbsim.runtime.arbitrage.RebalanceParams`).

    By trades: when a symbol's base balance on some venue drifted more than the band from
    its start, every venue of that symbol is traded back to its start (sold where long,
    bought where short, TWAPs at once). By transfers: when an asset's balance on some
    venue is more than the band away from its target (its start unless ``targets`` says;
    what is in flight to it counted), the venue that is longest withdraws its excess to
    the one that is shortest, up to ``max_in_flight`` transfers per asset and direction
    at once. With ``flatten``, a net position an attempt left one-sided (every venue
    within its band) is closed too, by trades on the venue that holds it.

    A venue that may not withdraw an asset at all (refused locally: a live venue without
    ``allow_withdrawals``, or whose allow-list lacks the destination's address) is no
    source of that asset for the rest of the session, said once in the log; the session
    trades on. A transfer the venue refused is not tried again in that direction for
    ``retry_s``."""

    def __init__(self, ctx: Context, params: RebalanceParams, markets: dict[str, _Market]):
        self.ctx = ctx
        self.p = params
        self.markets = markets
        self.ids = itertools.count(1)
        self.running: dict[str, list[ExecAlgo]] = {}
        self.started = 0
        #: transfers decided and not sent yet: (asset, source, destination)
        self.pending: set[tuple[str, str, str]] = set()
        #: the transfers it asked for (the desk keeps each record up to date)
        self.records: list[TransferRecord] = []
        #: transfers being decided and asked for (awaited at the end: see :meth:`stop`)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.stopping = False
        #: transfers not made, by reason (below the minimum, refused, ...)
        self.not_sent: dict[str, int] = {}
        #: (venue, asset) -> why that venue may not withdraw it this session
        self.barred: dict[tuple[str, str], str] = {}
        #: (asset, source, destination) -> clock time before which it is not tried again
        self.hold_until: dict[tuple[str, str, str], int] = {}
        venues: list[str] = []
        assets: set[str] = set()
        for market in markets.values():
            venues.extend(v for v in market.venues if v not in venues)
            for inst in market.insts.values():
                assets.update((inst.base, inst.quote))
        self.venues = venues
        self.assets = sorted(assets)
        for venue, amounts in params.targets.items():
            if venue not in venues:
                raise ValueError(f"rebalance.targets: {venue!r} is not a venue traded {venues}")
            stray = sorted(set(amounts) - assets)
            if stray:
                raise ValueError(
                    f"rebalance.targets.{venue}: {stray} not among the assets traded {self.assets}"
                )

    def screen(self) -> None:
        """At the start (``method: transfer``): say at once which venue may not withdraw
        which asset, rather than when it first drifts."""
        for venue in self.venues:
            if isinstance(self.ctx.venues[venue], TransferVenue):
                for asset in self.assets:
                    self._may_withdraw(venue, asset)

    def check(self) -> None:
        ctx = self.ctx
        if ctx.risk.tripped or self.stopping:
            return
        if self.p.method == "transfer":
            self._check_transfers()
        band = Decimal(repr(self.p.band))
        for symbol, market in self.markets.items():
            if symbol in self.running:
                continue
            base = market.insts[market.venues[0]].base
            targets = {v: ctx.ledger.start.get(v, {}).get(base, ZERO) for v in market.venues}
            excess = {v: self._excess(v, base) for v in market.venues}
            if self.p.method == "trade" and any(
                abs(excess[v]) > t * band for v, t in targets.items() if t > 0
            ):
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
                inst = market.insts[v]
                qty = (abs(move) // inst.lot) * inst.lot
                mid = market.books[v].mid
                # below the venue's minimums no child could be placed: the algo would
                # only fail, again at every check
                if (
                    qty <= 0
                    or qty < inst.min_qty
                    or (mid is not None and qty * Decimal(repr(mid)) < inst.min_notional)
                ):
                    continue
                params = self._twap(v, symbol, "sell" if move > 0 else "buy", qty)
                algos.append(ExecAlgo(ctx, params, next(self.ids), "rebalance"))
            if not algos:
                continue
            self.running[symbol] = algos
            self.started += 1
            ctx.spawn(self._work(symbol, algos), name=f"rebalance-{symbol}-{self.started}")

    def _excess(self, venue: str, asset: str, target: Decimal | None = None) -> Decimal:
        """``venue``'s balance of ``asset`` over ``target`` (default: its start), what is
        in flight to it counted as there."""
        ledger = self.ctx.ledger
        if target is None:
            target = ledger.start.get(venue, {}).get(asset, ZERO)
        held = ledger.balances.get(venue, {}).get(asset, ZERO) - target
        return held + ledger.incoming(venue, asset) if ledger.in_flight else held

    def _target(self, venue: str, asset: str) -> Decimal:
        """The balance of ``asset`` that transfers keep on ``venue``."""
        target = self.p.targets.get(venue, {}).get(asset)
        if target is None:
            return self.ctx.ledger.start.get(venue, {}).get(asset, ZERO)
        return target

    # ---------------------------------------------------------------- transfers
    def _check_transfers(self) -> None:
        ctx = self.ctx
        names = [v for v in self.venues if isinstance(ctx.venues[v], TransferVenue)]
        if len(names) < 2:
            return
        band = Decimal(repr(self.p.band))
        busy: dict[tuple[str, str, str], int] = {}
        for r in ctx.transfers_in_flight():
            key = (r.asset, r.venue, r.destination)
            busy[key] = busy.get(key, 0) + 1
        now = ctx.now_ns()
        for asset in self.assets:
            start = {v: ctx.ledger.start.get(v, {}).get(asset, ZERO) for v in names}
            excess = {v: self._excess(v, asset, self._target(v, asset)) for v in names}
            if not any(abs(excess[v]) > start[v] * band for v in names if start[v] > 0):
                continue
            sources = [v for v in names if self._may_withdraw(v, asset)]
            if not sources:
                continue
            src = max(sources, key=lambda v: excess[v])
            dst = min(names, key=lambda v: excess[v])
            key = (asset, src, dst)
            if excess[src] <= 0 or excess[dst] >= 0 or key in self.pending:
                continue
            if busy.get(key, 0) >= self.p.max_in_flight:
                continue
            if self.hold_until.get(key, 0) > now:
                continue
            self.pending.add(key)
            task = ctx.spawn(
                self._transfer(key, excess[src], -excess[dst]),
                name=f"rebalance-transfer-{asset}-{src}-{dst}",
            )
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    @property
    def transfers(self) -> int:
        """Transfers made: asked for and not failed (one whose request went unanswered
        and that never reached the venue is not one)."""
        return sum(1 for r in self.records if r.status != "failed")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """The end of the run: no new transfer, and those being asked for are awaited
        (up to ``timeout_s``) rather than cancelled with a withdrawal on its way."""
        self.stopping = True
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout_s)

    def _skip(self, reason: str) -> None:
        self.not_sent[reason] = self.not_sent.get(reason, 0) + 1

    def _may_withdraw(self, venue: str, asset: str, address: str | None = None) -> bool:
        """Whether ``venue`` may withdraw ``asset`` (to ``address``) at all, by its own
        local policy (no request); a refusal bars it for the session, logged once."""
        if (venue, asset) in self.barred:
            return False
        v = self.ctx.venues[venue]
        assert isinstance(v, TransferVenue)
        try:
            v.check_withdrawal(asset, self.p.networks.get(asset, asset), address)
        except InvalidOrder as e:
            self.barred[venue, asset] = str(e)
            self._skip(f"{venue}:{e.code or 'refused'}")
            log.warning(
                "rebalancing by transfer: %s will not withdraw %s this session (%s); "
                "the session trades on without moving it from there",
                venue, asset, e, extra={"venue": venue, "event": "rebalance"},
            )  # fmt: skip
            return False
        return True

    async def _transfer(
        self, key: tuple[str, str, str], surplus: Decimal, shortfall: Decimal
    ) -> None:
        asset, src, dst = key
        ctx = self.ctx
        network = self.p.networks.get(asset, asset)
        venue = ctx.venues[src]
        assert isinstance(venue, TransferVenue)
        try:
            try:
                terms = await venue.withdrawal_terms(asset, network)
                free = (await ctx.fetch_balances(src)).free(asset)
            except VenueError as e:
                self._skip(f"{src}:{e.code or type(e).__name__}")
                return
            if not terms.enabled:
                self._skip(f"{src}:disabled")
                return
            amount = floor_to(min(surplus - terms.fee, shortfall, free - terms.fee), terms.step)
            if amount <= 0 or amount < terms.minimum:
                self._skip("below_minimum")
                return
            rec = await ctx.transfer(
                src, dst, asset, network, amount, reason=f"rebalance {asset} {src} -> {dst}"
            )
            if rec.status != "failed":
                self.records.append(rec)
            elif rec.address and not self._may_withdraw(src, asset, rec.address):
                return  # not allowed to that address: barred for the session
            else:
                self._skip(f"{src}:refused")
                self.hold_until[key] = ctx.now_ns() + int(self.p.retry_s * 1e9)
                log.warning(
                    "rebalancing by transfer: %s -> %s of %s %s failed (%s); "
                    "not tried again in that direction for %g s",
                    src, dst, amount, asset, rec.reason, self.p.retry_s,
                    extra={"venue": src, "event": "rebalance"},
                )  # fmt: skip
        finally:
            self.pending.discard(key)

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
        if self.p.transfer_cost:
            for market in self._markets.values():
                market.costs = await self._transfer_costs(ctx, market)
        if self.p.rebalance is not None:
            self._rebalancer = _Rebalancer(ctx, self.p.rebalance, self._markets)
            if self.p.rebalance.method == "transfer":
                self._rebalancer.screen()
            ctx.every(self.p.rebalance.every_s, self._rebalancer.check)

    async def on_stop(self, ctx: Context) -> None:
        if self._rebalancer is not None:
            await self._rebalancer.stop()

    async def _transfer_costs(self, ctx: Context, market: _Market) -> dict[tuple[str, str], float]:
        """The amortised transfer cost of each direction of ``market``, bps of notional
        (:attr:`ArbParams.transfer_cost`): buying on A leaves base there to move to B, and
        selling on B leaves quote there to move to A."""
        rebalance = self.p.rebalance
        networks = rebalance.networks if rebalance is not None else {}

        async def share(venue: str, asset: str) -> float:
            v = ctx.venues[venue]
            if not isinstance(v, TransferVenue):
                return 0.0
            try:
                terms = await v.withdrawal_terms(asset, networks.get(asset, asset))
            except VenueError:
                return 0.0  # no route: this venue cannot move it
            size = self.p.transfer_size.get(asset)
            if size is None:
                start = ctx.ledger.start.get(venue, {}).get(asset, ZERO)
                band = Decimal(repr(rebalance.band)) if rebalance is not None else ZERO
                size = start * band
            if size <= 0:
                raise ValueError(
                    f"transfer_cost: no typical transfer size for {asset} on {venue} "
                    "(set transfer_size)"
                )
            return float(terms.fee / size)

        costs: dict[tuple[str, str], float] = {}
        inst = market.insts[market.venues[0]]
        for a in market.venues:
            for b in market.venues:
                if a != b:
                    base = await share(a, inst.base)
                    quote = await share(b, inst.quote)
                    costs[a, b] = (base + quote) * 1e4
        return costs

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
        top = book.top
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
            if self._rebalancer.p.method == "transfer":
                out["rebalance_transfers"] = self._rebalancer.transfers
                out["rebalance_transfers_not_sent"] = dict(
                    sorted(self._rebalancer.not_sent.items())
                )
        if self.p.transfer_cost:
            out["transfer_cost_bps"] = {
                f"{sym} {a}->{b}": round(c, 6)
                for sym, m in self._markets.items()
                for (a, b), c in sorted(m.costs.items())
            }
        return out
