"""The cross-exchange arbitrage core (DESIGN §5), reusable by any strategy.

- :func:`find_opportunity` — on a top-of-book change: fees and depth included, the
  size chosen so that every marginal unit still clears the minimum edge.
- :class:`ArbExecutor` — validation, pre-trade risk, fresh balances from both venues
  (concurrently), both legs placed concurrently, leg timeout, partial and one-leg
  fills hedged or unwound with bounded one-sided exposure, and one
  :class:`~arbsim.core.records.ArbRecord` per attempt with its outcome and reason.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, NamedTuple

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.checks import non_negative, positive, positive_map
from arbsim.core.errors import OrderNotPlaced, OutcomeUnknown, Unresolved, VenueError
from arbsim.core.model import (
    ZERO,
    Instrument,
    Order,
    OrderRequest,
    Side,
    TimeInForce,
    common_lot,
    floor_to,
    lots_of,
)
from arbsim.core.records import ArbRecord
from arbsim.runtime.risk import RiskDenied

if TYPE_CHECKING:
    from arbsim.runtime.context import Context


class RebalanceParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Inventory rebalancing (config ``strategy.params.rebalance``), every ``every_s``.

    ``method: trade``: each symbol's base balance on each venue is compared with its
    start; when one drifts more than ``band`` of it, the excess is sold where it is long
    and bought where it is short, as TWAPs of ``slices`` IOC children over ``duration_s``
    (every venue back to its start).

    ``method: transfer``: every asset traded (bases and quotes) on the venues that can
    transfer (:class:`~arbsim.core.ports.TransferVenue`) is compared with its start, what
    is in flight to a venue counted as there; when one drifts more than ``band`` of it,
    the venue with the largest excess withdraws to the one with the largest shortfall
    (over ``networks[asset]``, default the asset's name): the smaller of its excess less
    the fee and the shortfall, snapped down to the route's step, at least its minimum,
    and at most its free balance less the fee; at most one transfer per asset and
    direction in flight. A transfer the source venue refused (or that failed) is not
    tried again in that direction for ``retry_s``; a venue that may not withdraw at all
    (a live venue without ``allow_withdrawals``, or whose allow-list lacks the
    destination's address) is not asked again for the session.

    For a flow that keeps draining one side, transfers can pre-position the inventory:
    ``targets`` (venue -> asset -> amount) replaces the start as the balance a venue is
    filled or emptied to (the band stays a fraction of the start balance; a venue
    without a target keeps its start), and ``max_in_flight`` lets that many transfers of
    one asset in one direction be on their way at once, so a venue is refilled while
    earlier transfers are still in flight.

    Either way ``flatten`` also closes a net one-sided position an attempt left (by
    trades, on the venue that holds it)."""

    method: Literal["trade", "transfer"] = "trade"
    #: the network each asset is withdrawn over (transfer); default: the asset's name
    networks: dict[str, str] = msgspec.field(default_factory=dict)
    every_s: float = 10.0
    band: float = 0.25
    duration_s: float = 5.0
    slices: int = 5
    limit_offset_bps: float = 10.0
    #: also close a net position of a lot or more that an attempt left one-sided
    flatten: bool = True
    #: seconds before an asset and direction is tried again after a refused transfer
    retry_s: float = 30.0
    #: transfer: the balance to keep per venue and asset instead of its start
    targets: dict[str, dict[str, Decimal]] = msgspec.field(default_factory=dict)
    #: transfer: transfers of one asset in one direction on their way at once
    max_in_flight: int = 1

    def __post_init__(self) -> None:
        positive(
            every_s=self.every_s,
            band=self.band,
            slices=self.slices,
            max_in_flight=self.max_in_flight,
        )
        non_negative(retry_s=self.retry_s)
        non_negative(duration_s=self.duration_s, limit_offset_bps=self.limit_offset_bps)
        if self.method != "transfer" and (self.targets or self.max_in_flight != 1):
            raise ValueError("targets and max_in_flight: only with method: transfer")
        for venue, amounts in self.targets.items():
            for asset, amount in amounts.items():
                if amount < 0:
                    raise ValueError(f"targets.{venue}.{asset}: must be >= 0, got {amount}")


class ArbParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Parameters of the cross-exchange arbitrage (config ``strategy.params``)."""

    symbol: str = "BTC/USDT"
    #: every symbol to trade (each on every venue); empty: ``symbol`` alone
    symbols: list[str] = msgspec.field(default_factory=list)
    venues: list[str] = msgspec.field(default_factory=list)
    min_edge_bps: float = 5.0
    #: the least PnL (quote, after fees) an arbitrage must expect, next to min_edge_bps
    min_profit_quote: float = 0.0
    max_qty: Decimal = Decimal("0.5")
    #: per symbol, in its base asset, instead of ``max_qty``
    max_qty_by_symbol: dict[str, Decimal] = msgspec.field(default_factory=dict)
    max_levels: int = 20
    max_slippage_bps: float = 25.0
    leg_timeout_s: float = 2.0
    tif: TimeInForce = TimeInForce.IOC
    hedge_slippage_bps: float = 30.0
    max_hedge_attempts: int = 2
    cooldown_s: float = 0.25
    #: inventory rebalancing by trades or transfers (off when absent)
    rebalance: RebalanceParams | None = None
    #: count the amortised transfer cost of moving the inventory back in the net-profit
    #: check: buying on A and selling on B costs, as bps of the notional,
    #: 1e4 * (A's withdrawal fee of the base / the typical base transfer + B's withdrawal
    #: fee of the quote / the typical quote transfer); the typical transfer of an asset
    #: is ``transfer_size[asset]``, else ``rebalance.band`` times the source venue's start
    #: balance of it. Venues that cannot transfer, or have no route, add nothing.
    transfer_cost: bool = False
    #: the typical transfer size per asset (for ``transfer_cost``), in the asset
    transfer_size: dict[str, Decimal] = msgspec.field(default_factory=dict)

    @property
    def all_symbols(self) -> list[str]:
        """The symbols traded: ``symbols``, else ``symbol``."""
        return list(self.symbols) or [self.symbol]

    def __post_init__(self) -> None:
        positive(max_qty=self.max_qty, max_levels=self.max_levels, leg_timeout_s=self.leg_timeout_s)
        positive_map("max_qty_by_symbol", self.max_qty_by_symbol)
        positive_map("transfer_size", self.transfer_size)
        if self.transfer_cost and self.rebalance is None and not self.transfer_size:
            raise ValueError(
                "transfer_cost: needs transfer_size (the typical transfer per asset) "
                "or rebalance (its band times the start balances)"
            )
        if self.rebalance is not None and self.venues:
            stray = sorted(set(self.rebalance.targets) - set(self.venues))
            if stray:
                raise ValueError(
                    f"rebalance.targets names {stray}, not among the venues {self.venues}"
                )
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols {self.symbols}: a symbol is named twice")
        unknown = sorted(set(self.max_qty_by_symbol) - set(self.all_symbols))
        if unknown:
            raise ValueError(f"max_qty_by_symbol names {unknown}, not among the symbols traded")
        non_negative(
            max_slippage_bps=self.max_slippage_bps,
            min_profit_quote=self.min_profit_quote,
            hedge_slippage_bps=self.hedge_slippage_bps,
            max_hedge_attempts=self.max_hedge_attempts,
            cooldown_s=self.cooldown_s,
        )


class _Grid(NamedTuple):
    unit_f: float  # the finer lot's decimal unit (10**-k)
    step: int  # units per common lot
    common: Decimal  # the smallest quantity on both lot grids
    max_units: int  # max_qty in units, floored


@functools.lru_cache(maxsize=64)
def _grid(lot_a: Decimal, lot_b: Decimal, max_qty: Decimal) -> _Grid:
    exp = min(lot_a.as_tuple().exponent, lot_b.as_tuple().exponent)
    assert isinstance(exp, int)
    unit = Decimal(1).scaleb(exp)
    common = common_lot(lot_a, lot_b)
    return _Grid(
        unit_f=float(unit),
        step=int(common / unit),
        common=common,
        max_units=int(floor_to(max_qty, unit) / unit),
    )


class Opportunity(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    buy_venue: str
    sell_venue: str
    qty: Decimal
    buy_limit: Decimal
    sell_limit: Decimal
    touch_buy: float
    touch_sell: float
    exp_buy_avg: float
    exp_sell_avg: float
    edge_bps: float
    exp_pnl: float
    ts_trigger: int


def edge_threshold(p: ArbParams, cost_bps: float = 0.0) -> float:
    """What selling must beat buying by, after fees, as a factor (``min_edge_bps`` and
    the cost per unit bought)."""
    return 1.0 + (p.min_edge_bps + cost_bps) / 1e4


def touch_pays(
    buy_book: OrderBook, sell_book: OrderBook, fee_buy: float, fee_sell: float, thr: float
) -> tuple[float, float] | None:
    """The touch prices ``(buy, sell)`` when buying one unit at ``buy_book``'s best ask and
    selling it at ``sell_book``'s best bid clears ``thr`` after both taker fees; None
    when it does not or a side is empty. The first test of :func:`find_opportunity`,
    cheap enough to run on every top-of-book change before the depth walk."""
    ask_t = buy_book.best_ask_tick
    bid_t = sell_book.best_bid_tick
    if ask_t is None or bid_t is None:
        return None
    touch_buy = buy_book.scale.price(ask_t)
    touch_sell = sell_book.scale.price(bid_t)
    if touch_sell * (1.0 - fee_sell) < touch_buy * (1.0 + fee_buy) * thr:
        return None
    return touch_buy, touch_sell


def find_opportunity(
    buy_book: OrderBook,
    sell_book: OrderBook,
    buy_inst: Instrument,
    sell_inst: Instrument,
    p: ArbParams,
    ts_trigger: int,
    cost_bps: float = 0.0,
) -> Opportunity | None:
    """Buy on ``buy_book``'s asks, sell on ``sell_book``'s bids, if it pays after fees.

    The quantity grows level by level while the *marginal* unit still earns
    ``min_edge_bps`` after both taker fees, up to ``max_qty``; it is then snapped to
    both venues' lot grids and checked against their minimums, the slippage cap and
    ``min_profit_quote`` (the PnL expected after fees, in quote). ``cost_bps``: a cost
    per unit of notional bought (the amortised transfer cost, ``ArbParams.transfer_cost``)
    on top of the fees: in the edge every unit must clear and in the expected PnL.
    """
    fb = float(buy_inst.taker_fee)
    fs = float(sell_inst.taker_fee)
    thr = edge_threshold(p, cost_bps)
    touches = touch_pays(buy_book, sell_book, fb, fs, thr)
    if touches is None:
        return None
    touch_buy, touch_sell = touches
    asks = buy_book.levels(Side.SELL, p.max_levels)
    bids = sell_book.levels(Side.BUY, p.max_levels)
    # the walk counts whole units of the finer of the two lots (each level snapped once by
    # lots_of), so the sum is exact; the size is then floored to both lot grids
    grid = _grid(buy_inst.lot, sell_inst.lot, p.max_qty)
    unit, step, max_units = grid.unit_f, grid.step, grid.max_units
    units = 0
    cost = proceeds = 0.0
    worst_a = worst_b = 0
    i = j = 0
    ra, rb = lots_of(asks[0][1], unit), lots_of(bids[0][1], unit)
    while i < len(asks) and j < len(bids) and units < max_units:
        pa = buy_book.scale.price(asks[i][0])
        pb = sell_book.scale.price(bids[j][0])
        if pb * (1.0 - fs) < pa * (1.0 + fb) * thr:
            break
        take = min(ra, rb, max_units - units)
        if take > 0:
            units += take
            cost += take * unit * pa
            proceeds += take * unit * pb
            worst_a, worst_b = asks[i][0], bids[j][0]
            ra -= take
            rb -= take
        if ra <= 0:
            i += 1
            ra = lots_of(asks[i][1], unit) if i < len(asks) else 0
        if rb <= 0:
            j += 1
            rb = lots_of(bids[j][1], unit) if j < len(bids) else 0
    if units <= 0:
        return None
    qty = units * unit
    q = Decimal(units // step) * grid.common
    if q <= 0 or q < buy_inst.min_qty or q < sell_inst.min_qty:
        return None
    buy_avg = cost / qty
    sell_avg = proceeds / qty
    if q * Decimal(repr(buy_avg)) < buy_inst.min_notional:
        return None
    if q * Decimal(repr(sell_avg)) < sell_inst.min_notional:
        return None
    slip = max((buy_avg - touch_buy) / touch_buy, (touch_sell - sell_avg) / touch_sell) * 1e4
    if slip > p.max_slippage_bps:
        return None
    qf = float(q)
    pnl = qf * (sell_avg * (1.0 - fs) - buy_avg * (1.0 + fb))
    if cost_bps:
        pnl -= qf * buy_avg * cost_bps / 1e4
    if p.min_profit_quote > 0 and pnl < p.min_profit_quote:
        return None
    return Opportunity(
        symbol=buy_inst.symbol,
        buy_venue=buy_inst.venue,
        sell_venue=sell_inst.venue,
        qty=q,
        buy_limit=buy_book.scale.decimal(worst_a),
        sell_limit=sell_book.scale.decimal(worst_b),
        touch_buy=touch_buy,
        touch_sell=touch_sell,
        exp_buy_avg=buy_avg,
        exp_sell_avg=sell_avg,
        edge_bps=(sell_avg * (1.0 - fs) - buy_avg * (1.0 + fb)) / buy_avg * 1e4 - cost_bps,
        exp_pnl=pnl,
        ts_trigger=ts_trigger,
    )


class _Unresolved(Exception):
    """A hedge or unwind whose outcome is unknown: the attempt stops there."""


class _Leg(msgspec.Struct, kw_only=True):
    order: Order | None = None
    error: str = ""
    #: the outcome could not be learned: nothing may be decided on this leg
    unresolved: bool = False


class ArbExecutor:
    """Executes opportunities as two-leg attempts and records each one."""

    def __init__(self, ctx: Context, params: ArbParams, ids: Iterator[int] | None = None) -> None:
        """``ids``: the attempt numbers, shared by the executors of one strategy (one per
        symbol) so that every attempt of a run has its own."""
        self.ctx = ctx
        self.p = params
        self._ids = ids if ids is not None else itertools.count(1)

    # ------------------------------------------------------------ legs
    async def _leg(self, req: OrderRequest, *, reducing: bool = False) -> _Leg:
        """Place one leg and learn its outcome: a leg that outlives the leg timeout, or
        whose answer never came, is resolved by querying the venue, never guessed."""
        ctx = self.ctx
        if not req.client_order_id:
            req = msgspec.structs.replace(req, client_order_id=ctx.new_client_order_id())
        sent = ctx.now_ns()
        try:
            order = await asyncio.wait_for(
                ctx.place_order(req, reducing=reducing), self.p.leg_timeout_s
            )
        except RiskDenied as e:
            return _Leg(error=f"risk:{e.reason}")
        except Unresolved:
            return _Leg(error="unresolved", unresolved=True)
        except VenueError as e:
            return _Leg(error=f"rejected:{e.code or type(e).__name__}")
        except TimeoutError:
            try:
                order = await ctx.resolve_order(req, sent, OutcomeUnknown("leg timeout"))
            except Unresolved:
                return _Leg(error="unresolved", unresolved=True)
            except OrderNotPlaced:
                return _Leg(error="timeout:not_placed")
        if order.is_open:
            # a resting remainder (GTC legs) is not wanted once the leg timed out
            await asyncio.sleep(self.p.leg_timeout_s)
            order = await ctx.cancel_order(req.venue, req.symbol, req.client_order_id)
            if order.is_open:
                return _Leg(order=order, error="cancel:unconfirmed", unresolved=True)
        return _Leg(order=order)

    async def _repair(self, rec: ArbRecord, imbalance: Decimal) -> tuple[Decimal, Decimal, Decimal]:
        """Bring a one-sided fill (``imbalance``: bought minus sold) back to flat: first
        complete the arb on the other venue (hedge), then, if that fails, take the
        position back where it was opened (unwind), at most ``max_hedge_attempts``
        rounds. Records and returns ``(hedged, unwound, residual)``; a residual above
        ``risk.max_one_sided`` trips the circuit breaker."""
        hedged = unwound = ZERO
        for attempt in range(self.p.max_hedge_attempts):
            if imbalance == 0:
                break
            side = Side.SELL if imbalance > 0 else Side.BUY
            # selling completes the buy leg where the arb sells, and is undone where it bought
            there, back = (
                (rec.sell_venue, rec.buy_venue)
                if imbalance > 0
                else (rec.buy_venue, rec.sell_venue)
            )
            done = await self._settle(rec, side, there, abs(imbalance), f"hedge{attempt}")
            hedged += done
            imbalance -= done if imbalance > 0 else -done
            if imbalance != 0 and (imbalance > 0) == (side is Side.SELL):
                done = await self._settle(rec, side, back, abs(imbalance), f"unwind{attempt}")
                unwound += done
                imbalance -= done if imbalance > 0 else -done
        rec.hedge_qty, rec.unwind_qty, rec.residual_qty = str(hedged), str(unwound), str(imbalance)
        if abs(imbalance) > self.ctx.risk.limits.max_one_sided:
            self.ctx.risk.trip(
                self.ctx.now_ns(), f"one-sided exposure {imbalance} after arb {rec.arb_id}"
            )
        return hedged, unwound, imbalance

    async def complete(self, rec: ArbRecord) -> ArbRecord:
        """Finish an attempt an earlier process left in flight (``--resume``): its orders
        are known again (read back from the venues), so the one-sided part is repaired
        as usual and the attempt gets its outcome."""
        ctx = self.ctx
        bought = sold = ZERO
        for cid in rec.orders:
            order = ctx.recorder.order(cid)
            if order is None:
                continue
            if order.is_open:
                order = await ctx.cancel_order(order.venue, order.symbol, cid)
            if order.side is Side.BUY:
                bought += order.filled_qty
            else:
                sold += order.filled_qty
        try:
            hedged, unwound, residual = await self._repair(rec, bought - sold)
        except _Unresolved as e:
            rec.outcome, rec.reason = "unresolved", f"after a restart: {e}"
        else:
            if residual != 0:
                rec.outcome, rec.reason = "exposed", f"after a restart: residual {residual}"
            else:
                rec.outcome = "hedged" if hedged or unwound else rec.outcome
                rec.reason = "completed after a restart"
                if rec.outcome == "pending":
                    rec.outcome = "completed" if bought else "missed"
        book_b, book_s = ctx.book(rec.buy_venue, rec.symbol), ctx.book(rec.sell_venue, rec.symbol)
        mids = [m for m in (book_b.mid, book_s.mid) if m is not None]
        self._realize(rec, sum(mids) / len(mids) if mids else 0.0)
        rec.ts_done = ctx.now_ns()
        ctx.recorder.arb_finished(rec)
        return rec

    async def _settle(
        self, rec: ArbRecord, side: Side, venue: str, qty: Decimal, kind: str
    ) -> Decimal:
        """Trade ``qty`` on ``venue`` aggressively (IOC, slippage-capped); return the fill."""
        ctx = self.ctx
        tag = f"arb{rec.arb_id}:{kind}"
        inst = ctx.instrument(venue, rec.symbol)
        book = ctx.book(venue, rec.symbol)
        touch = book.best_ask if side is Side.BUY else book.best_bid
        q = inst.round_qty(qty)
        if touch is None or q <= 0 or q < inst.min_qty:
            return ZERO
        slip = self.p.hedge_slippage_bps / 1e4
        limit = inst.round_price(touch * (1 + slip if side is Side.BUY else 1 - slip), side)
        if q * limit < inst.min_notional:
            return ZERO
        req = OrderRequest(
            venue=venue,
            symbol=rec.symbol,
            side=side,
            qty=q,
            price=limit,
            tif=TimeInForce.IOC,
            tag=tag,
            client_order_id=ctx.new_client_order_id(),
        )
        rec.orders.append(req.client_order_id)
        leg = await self._leg(req, reducing=True)
        if leg.unresolved:
            raise _Unresolved(leg.error)
        return leg.order.filled_qty if leg.order is not None else ZERO

    # ------------------------------------------------------------ attempt
    async def execute(self, opp: Opportunity) -> ArbRecord:
        ctx = self.ctx
        arb_id = next(self._ids)
        rec = ArbRecord(
            arb_id=arb_id,
            symbol=opp.symbol,
            buy_venue=opp.buy_venue,
            sell_venue=opp.sell_venue,
            ts_trigger=opp.ts_trigger,
            ts_decision=ctx.now_ns(),
            qty_target=str(opp.qty),
            buy_limit=str(opp.buy_limit),
            sell_limit=str(opp.sell_limit),
            decision_buy_price=opp.touch_buy,
            decision_sell_price=opp.touch_sell,
            expected_buy_avg=opp.exp_buy_avg,
            expected_sell_avg=opp.exp_sell_avg,
            expected_edge_bps=opp.edge_bps,
            expected_pnl=opp.exp_pnl,
        )
        ctx.recorder.arb_started(rec)
        try:
            await self._execute(opp, rec)
        except _Unresolved as e:
            rec.outcome, rec.reason = "unresolved", f"a repair order's outcome is unknown ({e})"
        finally:
            rec.ts_done = ctx.now_ns()
            ctx.recorder.arb_finished(rec)
        return rec

    async def _execute(self, opp: Opportunity, rec: ArbRecord) -> None:
        ctx, p = self.ctx, self.p
        bi = ctx.instrument(opp.buy_venue, opp.symbol)
        si = ctx.instrument(opp.sell_venue, opp.symbol)
        # seed rule: balances are fetched fresh (both venues at once) before acting
        try:
            bal_b, bal_s = await asyncio.gather(
                ctx.fetch_balances(opp.buy_venue), ctx.fetch_balances(opp.sell_venue)
            )
        except VenueError as e:
            rec.outcome, rec.reason = "failed", f"balances: {e}"
            return
        afford = bal_b.free(bi.quote) / (opp.buy_limit * (1 + max(bi.taker_fee, ZERO)))
        qty = floor_to(min(opp.qty, afford, bal_s.free(si.base)), common_lot(bi.lot, si.lot))
        if (
            qty <= 0
            or qty < bi.min_qty
            or qty < si.min_qty
            or qty * opp.buy_limit < bi.min_notional
            or qty * opp.sell_limit < si.min_notional
        ):
            rec.outcome, rec.reason = "skipped", "balance"
            return
        rec.qty_target = str(qty)
        tif = p.tif
        buy = OrderRequest(
            venue=opp.buy_venue,
            symbol=opp.symbol,
            side=Side.BUY,
            qty=qty,
            price=opp.buy_limit,
            tif=tif,
            tag=f"arb{rec.arb_id}:buy",
            client_order_id=ctx.new_client_order_id(),
        )
        sell = OrderRequest(
            venue=opp.sell_venue,
            symbol=opp.symbol,
            side=Side.SELL,
            qty=qty,
            price=opp.sell_limit,
            tif=tif,
            tag=f"arb{rec.arb_id}:sell",
            client_order_id=ctx.new_client_order_id(),
        )
        # the risk gate sees both legs before either leaves: a leg it would refuse must
        # not leave the other one alone in the market
        now = ctx.now_ns()
        for leg_req in (buy, sell):
            denial = ctx.check_entry(leg_req)
            if denial:
                rec.outcome, rec.reason = "denied", denial.reason
                return
        rec.orders = [buy.client_order_id, sell.client_order_id]
        ctx.latency.record("tick_to_trade", opp.buy_venue, now, now - opp.ts_trigger)
        lb, ls = await asyncio.gather(self._leg(buy), self._leg(sell))
        if lb.unresolved or ls.unresolved:
            # hedging on a guess could double the exposure: the venue stays closed to new
            # entries until the order is resolved, and the ledger carries what did fill
            rec.outcome = "unresolved"
            rec.reason = ";".join(e for e in (lb.error, ls.error) if e)
            self._realize(rec, (opp.touch_buy + opp.touch_sell) / 2)
            return
        fb = lb.order.filled_qty if lb.order else ZERO
        fs = ls.order.filled_qty if ls.order else ZERO
        rec.buy_filled, rec.sell_filled = str(fb), str(fs)
        if lb.order is not None:
            rec.buy_arrival_price = lb.order.arrival_price
            rec.buy_avg = float(lb.order.avg_price or 0)
        if ls.order is not None:
            rec.sell_arrival_price = ls.order.arrival_price
            rec.sell_avg = float(ls.order.avg_price or 0)
        errors = [e for e in (lb.error, ls.error) if e]
        imbalance = fb - fs
        hedged, unwound, imbalance = await self._repair(rec, imbalance)
        self._realize(rec, (opp.touch_buy + opp.touch_sell) / 2)
        if fb == 0 and fs == 0:
            rec.outcome = "failed" if errors else "missed"
            rec.reason = ";".join(errors) or "no fill at the limit prices"
        elif imbalance != 0:
            rec.outcome, rec.reason = "exposed", f"residual {imbalance}"
        elif unwound > 0:
            rec.outcome, rec.reason = "unwound", ";".join(errors) or "one leg short"
        elif hedged > 0:
            rec.outcome, rec.reason = "hedged", ";".join(errors) or "one leg short"
        elif fb == qty:
            rec.outcome = "completed"
        else:
            rec.outcome, rec.reason = "partial", "both legs partially filled"

    def _realize(self, rec: ArbRecord, mark: float) -> None:
        """Cash flows of every order of this arb, each fee valued in its own asset at its
        fill's price, and the residual position at ``mark``. ``quote_flow`` and
        ``base_flow`` keep the exact flows (fees included) so that, valued at the same
        mark, the arbs add up to the ledger."""
        cash = base = quote_fees = base_fees = ZERO
        fees = bought = 0.0
        for cid in rec.orders:
            order = self.ctx.recorder.order(cid)
            if order is None:
                continue
            inst = self.ctx.instrument(order.venue, order.symbol)
            for f in order.fills:
                notional = f.price * f.qty
                if f.side is Side.SELL:
                    cash += notional
                    base -= f.qty
                else:
                    cash -= notional
                    base += f.qty
                    bought += float(notional)
                if f.fee_asset == inst.base:
                    base_fees += f.fee
                    fees += float(f.fee * f.price)
                else:
                    quote_fees += f.fee
                    fees += float(f.fee)
        rec.fees = fees
        rec.quote_flow, rec.base_flow = str(cash - quote_fees), str(base - base_fees)
        rec.realized_pnl = float(cash) - fees + float(base) * mark
        rec.realized_edge_bps = rec.realized_pnl / bought * 1e4 if bought else 0.0
