"""Execution algorithms: a parent order worked as child orders through the Context, so
the same code runs in backtest, paper and live.

- **TWAP**: ``slices`` child orders at even intervals over ``duration_s``; each aims at
  the quantity the schedule says should be done by then (a shortfall carries over).
- **VWAP**: the same, with the schedule following a volume ``profile`` (one weight per
  slice); without one it is a TWAP.
- Both: each child is an IOC limit ``limit_offset_bps`` through the touch; with
  ``participation``, a child takes at most that share of the market volume traded on
  the venue since the previous child.
- **Iceberg**: shows ``show_qty`` at a fixed limit (the own side's touch at the start
  unless ``price`` is given) as a GTC order; when a shown child is done, the next one is
  shown, until the quantity is filled or ``max_s`` runs out (the shown child is then
  cancelled).

Every parent is an :class:`~arbsim.core.records.AlgoRecord` (``algos.parquet``): its
children (tagged ``algo-<id>`` in ``orders.parquet``), the filled quantity and average
price, and its slippage against the arrival mid and against the market's VWAP on the
venue while it ran.
"""

from __future__ import annotations

import asyncio
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Literal

import msgspec

from arbsim.core.checks import non_negative, positive
from arbsim.core.errors import ArbsimError
from arbsim.core.model import ZERO, Order, OrderRequest, Side, TimeInForce, Trade, floor_to
from arbsim.core.records import AlgoRecord

if TYPE_CHECKING:
    from arbsim.runtime.context import Context


class AlgoParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One parent order and how to work it."""

    kind: Literal["twap", "vwap", "iceberg"]
    venue: str
    symbol: str
    side: Literal["buy", "sell"]
    qty: Decimal
    #: seconds after the strategy starts (the execution strategy's schedule)
    start_s: float = 0.0
    #: TWAP / VWAP: the schedule's length and its number of child orders
    duration_s: float = 60.0
    slices: int = 10
    #: TWAP / VWAP: each child's IOC limit, this far through the touch
    limit_offset_bps: float = 5.0
    #: TWAP / VWAP: a child's cap, as a share of the volume traded since the last child
    participation: float | None = None
    #: VWAP: relative volume of each slice (as many weights as slices)
    profile: list[float] = msgspec.field(default_factory=list)
    #: iceberg: the size shown at a time, and the limit (default: own side's touch)
    show_qty: Decimal | None = None
    price: Decimal | None = None
    #: every kind: the longest it may work; iceberg: how often the shown child is read
    max_s: float = 300.0
    poll_s: float = 0.05

    def __post_init__(self) -> None:
        positive(qty=self.qty, slices=self.slices, max_s=self.max_s, poll_s=self.poll_s)
        non_negative(
            start_s=self.start_s,
            duration_s=self.duration_s,
            limit_offset_bps=self.limit_offset_bps,
        )
        if self.participation is not None and not 0 < self.participation <= 1:
            raise ValueError(f"participation must be in (0, 1], got {self.participation}")
        if self.profile:
            if len(self.profile) != self.slices:
                raise ValueError(
                    f"profile has {len(self.profile)} weights for {self.slices} slices"
                )
            if any(w < 0 for w in self.profile) or sum(self.profile) <= 0:
                raise ValueError(f"profile weights must be >= 0 and not all 0: {self.profile}")
        if self.kind == "iceberg" and (self.show_qty is None or self.show_qty <= 0):
            raise ValueError("an iceberg needs show_qty > 0")

    @property
    def order_side(self) -> Side:
        return Side.BUY if self.side == "buy" else Side.SELL


def _bps_cost(side: Side, price: float, benchmark: float) -> float:
    if price <= 0 or benchmark <= 0:
        return 0.0
    return int(side) * (price - benchmark) / benchmark * 1e4


class ExecAlgo:
    """Works one parent order (:class:`AlgoParams`) with the context's orders.

    Feed it the venue's public trades with :meth:`on_trade` (the participation cap and
    the interval VWAP need them); :meth:`run` works the order and returns its record.
    """

    def __init__(self, ctx: Context, params: AlgoParams, algo_id: int, tag: str = "algo") -> None:
        """``tag``: the children's tag is ``<tag>-<algo_id>`` (``rebalance`` for the
        cross-exchange strategy's inventory trades)."""
        self.ctx = ctx
        self.p = params
        self.tag = tag
        self.rec = AlgoRecord(
            algo_id=algo_id,
            kind=params.kind,
            venue=params.venue,
            symbol=params.symbol,
            side=int(params.order_side),
            qty=str(params.qty),
            ts_start=0,
        )
        self._running = False
        self._market_qty = 0.0
        self._market_notional = 0.0
        self._since_child = 0.0
        self._filled = ZERO
        self._notional = ZERO
        self._fees = 0.0
        self._failures: list[str] = []

    # ------------------------------------------------------------ market data
    def on_trade(self, venue: str, trade: Trade) -> None:
        if self._running and venue == self.p.venue and trade.symbol == self.p.symbol:
            qty = trade.size
            self._market_qty += qty
            self._market_notional += qty * trade.price
            self._since_child += qty

    # ------------------------------------------------------------ work
    async def run(self) -> AlgoRecord:
        ctx, p = self.ctx, self.p
        book = ctx.book(p.venue, p.symbol)
        self.rec.ts_start = ctx.now_ns()
        self.rec.arrival_price = book.mid or 0.0
        ctx.recorder.algos.append(self.rec)
        self._running = True
        try:
            if p.kind == "iceberg":
                await self._iceberg()
            else:
                await self._schedule()
        finally:
            self._running = False
            self._finish()
        return self.rec

    def _child_ids(self) -> str:
        return f"{self.tag}-{self.rec.algo_id}"

    def _account(self, order: Order | None) -> None:
        if order is None:
            return
        inst = self.ctx.instrument(self.p.venue, self.p.symbol)
        for fill in order.fills:
            self._filled += fill.qty
            self._notional += fill.qty * fill.price
            rate = 1.0 if fill.fee_asset == inst.quote else float(fill.price)
            self._fees += float(fill.fee) * rate

    def _child_qty(self, qty: Decimal) -> Decimal:
        """``qty`` on the lot grid, or zero when below the venue's minimums."""
        inst = self.ctx.instrument(self.p.venue, self.p.symbol)
        q = floor_to(max(qty, ZERO), inst.lot).quantize(inst.lot)
        book = self.ctx.book(self.p.venue, self.p.symbol)
        mid = book.mid
        if q < inst.min_qty or (mid is not None and q * Decimal(repr(mid)) < inst.min_notional):
            return ZERO
        return q

    async def _send(self, req: OrderRequest) -> Order | None:
        req = msgspec.structs.replace(
            req, client_order_id=self.ctx.new_client_order_id(), tag=self._child_ids()
        )
        cid = req.client_order_id
        self.rec.children.append(cid)
        try:
            return await self.ctx.place_order(req)
        except ArbsimError as e:  # a rejection or a risk denial: the schedule goes on
            self._failures.append(f"{cid}: {e}"[:200])
            order = self.ctx.recorder.order(cid)
            if order is None:  # never sent (the risk gate): no child order to list
                self.rec.children.remove(cid)
            return order

    async def _schedule(self) -> None:
        ctx, p = self.ctx, self.p
        inst = ctx.instrument(p.venue, p.symbol)
        weights = p.profile or [1.0] * p.slices
        total_w = sum(weights)
        start = ctx.now_ns()
        step_ns = int(p.duration_s * 1e9 / p.slices)
        deadline = start + int(p.max_s * 1e9)
        done_w = 0.0
        for i, w in enumerate(weights):
            at = start + i * step_ns
            if at > deadline:
                break
            delay = (at - ctx.now_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            done_w += w
            target = p.qty if i == len(weights) - 1 else p.qty * Decimal(repr(done_w / total_w))
            want = target - self._filled
            if p.participation is not None:
                cap = Decimal(repr(self._since_child * p.participation))
                want = min(want, cap)
            self._since_child = 0.0
            qty = self._child_qty(want)
            if qty <= 0:
                continue
            book = ctx.book(p.venue, p.symbol)
            side = p.order_side
            touch = book.best_ask if side is Side.BUY else book.best_bid
            if touch is None:
                self._failures.append(f"slice {i}: no {'ask' if side is Side.BUY else 'bid'}")
                continue
            off = 1 + int(side) * p.limit_offset_bps / 1e4
            rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
            limit = (Decimal(repr(touch * off)) / inst.tick).to_integral_value(rounding)
            req = OrderRequest(
                venue=p.venue,
                symbol=p.symbol,
                side=side,
                qty=qty,
                price=limit * inst.tick,
                tif=TimeInForce.IOC,
            )
            self._account(await self._send(req))

    async def _iceberg(self) -> None:
        ctx, p = self.ctx, self.p
        assert p.show_qty is not None
        book = ctx.book(p.venue, p.symbol)
        side = p.order_side
        price = p.price
        if price is None:
            tick = book.best_bid_tick if side is Side.BUY else book.best_ask_tick
            if tick is None:
                self._failures.append("no price on the own side at the start")
                return
            price = book.scale.decimal(tick)
        deadline = ctx.now_ns() + int(p.max_s * 1e9)
        while self._filled < p.qty and ctx.now_ns() < deadline:
            qty = self._child_qty(min(p.show_qty, p.qty - self._filled))
            if qty <= 0:
                break
            req = OrderRequest(
                venue=p.venue, symbol=p.symbol, side=side, qty=qty, price=price,
                tif=TimeInForce.GTC,
            )  # fmt: skip
            order = await self._send(req)
            if order is None:
                break
            cid = order.client_order_id
            while order.is_open and ctx.now_ns() < deadline:
                await asyncio.sleep(p.poll_s)
                order = ctx.recorder.order(cid) or order
            if order.is_open:  # time is up: take the child back
                try:
                    order = await ctx.cancel_order(p.venue, p.symbol, cid)
                except ArbsimError as e:
                    self._failures.append(f"cancel {cid}: {e}"[:200])
                    order = ctx.recorder.order(cid) or order
            self._account(order)
            if order.filled_qty <= 0 and not order.is_open and order.status.value == "rejected":
                break

    def _finish(self) -> None:
        rec, p = self.rec, self.p
        side = p.order_side
        rec.ts_done = self.ctx.now_ns()
        rec.filled = str(self._filled)
        rec.avg_price = float(self._notional / self._filled) if self._filled > 0 else 0.0
        rec.fees_quote = self._fees
        rec.market_qty = self._market_qty
        rec.interval_vwap = self._market_notional / self._market_qty if self._market_qty else 0.0
        rec.slippage_arrival_bps = _bps_cost(side, rec.avg_price, rec.arrival_price)
        rec.slippage_vwap_bps = _bps_cost(side, rec.avg_price, rec.interval_vwap)
        if self._filled >= p.qty:
            rec.outcome, rec.reason = "done", ""
        elif self._filled > 0:
            rec.outcome = "partial"
            rec.reason = "; ".join(self._failures[-3:]) or "the schedule ended short"
        else:
            rec.outcome = "failed"
            rec.reason = "; ".join(self._failures[-3:]) or "nothing filled"
