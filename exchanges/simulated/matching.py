"""The matching engine shared by the replay venue, the paper venue and the exchange
simulator.

It works on the *exchange-side* book (the book as of the venue's own clock), keeps
the account's exact balances (free / locked), and turns order requests and market
events into execution events. Rules:

- an order arriving at the exchange is validated (tick, lot, minimums, balance, open
  orders);
- a taker walks the opposite side level by level, never filling more than the
  displayed size, up to its limit price (market orders: no limit; market buys may be
  sized in quote currency); our own fills hide the liquidity they took until the data
  shows the level changed (``consume_liquidity``);
- IOC remainders expire, FOK without enough displayed size expires unfilled, a
  crossing post-only order is rejected or cancelled (per venue), GTC remainders rest;
- a resting limit has a queue position: the displayed size at its price when it
  arrived is ahead of it (nothing at a new better price). Trades at its price eat the
  queue first, size decreases not explained by trades advance it per the queue model,
  and it fills (as maker, at its own price) from trades once the queue is gone, or when
  the book or a trade goes through its price;
- fees per instrument (maker / taker rate, negative maker = rebate), in the quote asset
  or in the asset received, per venue. Fees are exact (quantity x price x rate, not
  rounded): the venues' documentation (PROTOCOLS.md) says nothing of a fee precision.

Exactness (DESIGN §7): book sizes are floats, but every queue position, consumed quantity,
trade volume and fill size is a whole number of lots. A float size is snapped to the lot grid
once, where it enters the engine, by :func:`arbsim.core.model.lots_of` (float noise goes to
the nearest lot, a real fraction is floored), so a 0.3 trade after 0.1 of queue fills exactly
0.2. Fills, fees and balances are Decimals.

Cost: resting orders are indexed by side and tick, so a book message looks only at the
orders in the tick ranges it changed plus those its touch crosses, and a trade only at the
orders at or through its price; with thousands of orders resting far from the touch a
message costs what it can affect (:meth:`MatchingEngine.on_book`).

Rejections carry a code from a per-venue table so that a backtest shows the code the
real venue would answer.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Mapping
from decimal import ROUND_FLOOR, Decimal

import msgspec
import numpy as np

from arbsim.core.book import OrderBook
from arbsim.core.errors import VenueError
from arbsim.core.model import (
    ZERO,
    Balance,
    Balances,
    Fill,
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    lots_of,
)
from arbsim.core.rules import GENERIC_CODES


class ExecEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Something the exchange did to an order, to be reported to the client."""

    kind: str  # accepted | fill | canceled | expired | rejected
    client_order_id: str
    ts: int
    fill: Fill | None = None
    order_id: str = ""
    arrival_price: float = 0.0
    qty: Decimal | None = None  # set on "accepted" when the venue sized the order
    code: str = ""
    message: str = ""


def apply_exec_event(order: Order, ev: ExecEvent, now: int) -> None:
    """Bring the client's copy of an order up to date with what the exchange did, as the
    answer or push reaches the client at ``now`` (shared by the simulated venues)."""
    if ev.kind == "accepted":
        order.order_id = ev.order_id
        if ev.qty is not None:
            order.qty = ev.qty
        order.ts_accepted = ev.ts
        order.arrival_price = ev.arrival_price
        order.transition(OrderStatus.ACCEPTED, now)
    elif ev.kind == "fill":
        assert ev.fill is not None
        order.apply_fill(msgspec.structs.replace(ev.fill, ts_local=now))
    elif ev.kind == "canceled":
        order.transition(OrderStatus.CANCELED, now)
    elif ev.kind == "expired":
        order.transition(OrderStatus.EXPIRED, now)
    elif ev.kind == "rejected":
        order.reject_code = ev.code
        order.reject_reason = ev.message
        order.transition(OrderStatus.REJECTED, now)


class Account:
    """Exchange-side balances of one account on one venue (exact decimals)."""

    def __init__(self, venue: str, balances: Mapping[str, Decimal]):
        self.venue = venue
        self.free: dict[str, Decimal] = {a: Decimal(v) for a, v in balances.items()}
        self.locked: dict[str, Decimal] = {a: ZERO for a in balances}

    def get_free(self, asset: str) -> Decimal:
        return self.free.get(asset, ZERO)

    def add(self, asset: str, amount: Decimal) -> None:
        self.free[asset] = self.free.get(asset, ZERO) + amount
        self.locked.setdefault(asset, ZERO)

    def lock(self, asset: str, amount: Decimal) -> None:
        self.free[asset] = self.free.get(asset, ZERO) - amount
        self.locked[asset] = self.locked.get(asset, ZERO) + amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] = self.locked.get(asset, ZERO) - amount
        self.free[asset] = self.free.get(asset, ZERO) + amount

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] = self.locked.get(asset, ZERO) - amount

    def snapshot(self, ts: int) -> Balances:
        assets = {
            a: Balance(asset=a, free=self.free.get(a, ZERO), locked=self.locked.get(a, ZERO))
            for a in sorted(set(self.free) | set(self.locked))
        }
        return Balances(venue=self.venue, ts=ts, assets=assets)


class QueueModel:
    """How far a resting order advances when its level shrinks without trades.

    ``risk_averse``: cancellations are assumed to be behind us (only trades advance the
    queue). ``prob_power`` (``f(x) = x**power``) and ``prob_log`` (``f(x) = log(1 + x)``):
    the share of a decrease that happened ahead of us is ``f(front) / (f(front) +
    f(back))`` — in expectation, or (``stochastic``) all-or-nothing with that probability
    from a seeded generator.
    """

    def __init__(
        self,
        kind: str = "risk_averse",
        power: float = 2.0,
        stochastic: bool = False,
        seed: int = 0,
    ):
        funcs: dict[str, Callable[[float], float] | None] = {
            "risk_averse": None,
            "prob_power": lambda x: x**power,
            "prob_log": math.log1p,
        }
        if kind not in funcs:
            raise ValueError(f"unknown queue model {kind!r} (known: {', '.join(funcs)})")
        self.kind = kind
        self.power = power
        self.stochastic = stochastic
        self._f = funcs[kind]
        self._rng = np.random.default_rng(seed)

    def advance(self, front: int, back: int, decrease: int, lot: float = 1.0) -> int:
        """New queue ahead, in lots, after ``decrease`` lots of the level were cancelled.

        ``front`` / ``back`` are the lots ahead of / behind us and ``lot`` the lot size, so
        that ``f`` sees quantities (``prob_log`` is not scale-free). The share is a float;
        the lots it puts ahead of us are snapped to whole lots by
        :func:`~arbsim.core.model.lots_of` (float noise aside, floored: the queue never
        advances further than the model expects), so the result is exact and deterministic.
        """
        f = self._f
        if f is None or decrease <= 0 or front <= 0:
            return front
        fa, fb = f(front * lot), f(max(back, 0) * lot)
        share = fa / (fa + fb) if fa + fb > 0.0 else 1.0
        if self.stochastic:
            ahead = decrease if self._rng.random() < share else 0
        else:
            ahead = min(lots_of(share * decrease, 1.0), decrease)
        return max(0, front - ahead)

    def describe(self) -> str:
        if self.kind == "prob_power":
            return f"prob_power(power={self.power:g}{', stochastic' if self.stochastic else ''})"
        return self.kind + (
            " (stochastic)" if self.stochastic and self.kind != "risk_averse" else ""
        )


class _Resting(msgspec.Struct, kw_only=True):
    """A resting order's exchange-side state. Quantities are whole lots (exact)."""

    order: Order
    tick: int
    seq: int  # arrival order: time priority among our resting orders
    lock_per_unit: Decimal  # quote locked per unit of base (buys) or 1 (sells, in base)
    ahead: int  # lots displayed ahead of us at our price
    level: int  # lots our level displayed when last seen
    level_raw: float  # that size as the book holds it (a cheap "has it changed?")
    traded: int = 0  # lots traded at our price since the level last changed


class MatchingEngine:
    """Matching for one instrument against an exchange-side book.

    Parameters
    ----------
    codes:
        Rejection kind -> (venue code, error class); defaults to generic codes.
    post_only_cross:
        ``"reject"`` or ``"cancel"`` a post-only order that would take.
    fee_currency:
        ``"quote"`` or ``"received"`` (base for buys, quote for sells).
    market_buy_in_quote:
        Market buys must carry ``quote_order_qty``.
    max_open_orders:
        Resting orders allowed at once (``None``: no limit).
    queue:
        The queue-position model of resting orders.
    consume_liquidity:
        Our own fills hide the displayed size they took until the level changes.
    """

    def __init__(
        self,
        instrument: Instrument,
        book: OrderBook,
        account: Account,
        *,
        codes: Mapping[str, tuple[str, type[VenueError]]] | None = None,
        order_ids: itertools.count[int] | None = None,
        consume_liquidity: bool = True,
        post_only_cross: str = "reject",
        fee_currency: str = "quote",
        market_buy_in_quote: bool = False,
        max_open_orders: int | None = None,
        queue: QueueModel | None = None,
        impact_bps_per_depth: float = 0.0,
        impact_decay_ns: int = 0,
        impact_levels: int = 10,
    ):
        if post_only_cross not in ("reject", "cancel"):
            raise ValueError(f"post_only_cross must be reject or cancel, got {post_only_cross!r}")
        if fee_currency not in ("quote", "received"):
            raise ValueError(f"fee_currency must be quote or received, got {fee_currency!r}")
        self.inst = instrument
        self.book = book
        self.account = account
        self.codes = dict(GENERIC_CODES, **(codes or {}))
        self._ids = order_ids or itertools.count(1)
        self._trade_ids = itertools.count(1)
        self.orders: dict[str, Order] = {}
        #: resting orders in arrival order (time priority)
        self.resting: dict[str, _Resting] = {}
        # the same orders by side and tick (side -> tick -> cid -> order), with each side's
        # ticks sorted: a market event looks only at the orders it can affect
        self._at: dict[int, dict[int, dict[str, _Resting]]] = {1: {}, -1: {}}
        self._ticks: dict[int, list[int]] = {1: [], -1: []}
        self._seq = itertools.count()
        self._lot = instrument.lot
        self._lot_f = float(instrument.lot)
        self._scale = book.scale
        self.consume_liquidity = consume_liquidity
        self.post_only_cross = post_only_cross
        self.fee_in_base_for_buys = fee_currency == "received"
        self.market_buy_in_quote = market_buy_in_quote
        self.max_open_orders = max_open_orders
        self.queue = queue or QueueModel()
        # temporary market impact (off unless impact_bps_per_depth > 0): after our taker
        # takes a share q of the displayed depth of the top impact_levels, that side is
        # moved away by impact_bps_per_depth * q bps for impact_decay_ns
        self.impact_bps_per_depth = impact_bps_per_depth
        self.impact_decay_ns = impact_decay_ns
        self.impact_levels = impact_levels
        self._impact: dict[int, tuple[int, int]] = {}  # taker side -> (until, first tick)
        # (book side, tick) -> (displayed size when we took from it, lots we took):
        # our own fills hide that much of the level until the data shows it changed
        self._consumed: dict[tuple[int, int], tuple[float, int]] = {}

    # ---------------------------------------------------------------- helpers
    def error(self, kind: str, message: str) -> VenueError:
        code, cls = self.codes[kind]
        return cls(message, code=code, venue=self.inst.venue)

    def reject(self, order: Order, ts: int, kind: str, message: str) -> list[ExecEvent]:
        code, _ = self.codes[kind]
        order.reject_code = code
        order.reject_reason = message
        order.transition(OrderStatus.REJECTED, ts)
        return [
            ExecEvent(
                kind="rejected",
                client_order_id=order.client_order_id,
                ts=ts,
                code=code,
                message=message,
            )
        ]

    def _tick(self, price: Decimal) -> int:
        return int(price / self.inst.tick)

    # exact quantities: lots (int) <-> Decimal; float book sizes enter through lots_of
    def _qty(self, lots: int) -> Decimal:
        return Decimal(lots) * self._lot

    def _lots(self, qty: Decimal) -> int:
        """A quantity (on the lot grid, or floored to it) in lots."""
        return int((qty / self._lot).to_integral_value(rounding=ROUND_FLOOR))

    def queue_ahead(self, client_order_id: str) -> Decimal:
        """The displayed quantity ahead of a resting order at its price."""
        return self._qty(self.resting[client_order_id].ahead)

    def _add_resting(self, rest: _Resting) -> None:
        cid = rest.order.client_order_id
        self.resting[cid] = rest
        side = int(rest.order.side)
        at = self._at[side]
        level = at.get(rest.tick)
        if level is None:
            at[rest.tick] = {cid: rest}
            bisect.insort(self._ticks[side], rest.tick)
        else:
            level[cid] = rest

    def _remove_resting(self, cid: str) -> _Resting | None:
        rest = self.resting.pop(cid, None)
        if rest is None:
            return None
        side = int(rest.order.side)
        at = self._at[side]
        level = at[rest.tick]
        del level[cid]
        if not level:
            del at[rest.tick]
            ticks = self._ticks[side]
            del ticks[bisect.bisect_left(ticks, rest.tick)]
        return rest

    def _between(self, side: int, lo: int, hi: int, out: dict[int, _Resting]) -> None:
        """Add the resting orders of ``side`` with ``lo <= tick <= hi`` to ``out`` (by seq)."""
        ticks = self._ticks[side]
        i = bisect.bisect_left(ticks, lo)
        j = bisect.bisect_right(ticks, hi, i)
        if i < j:
            at = self._at[side]
            for t in ticks[i:j]:
                for rest in at[t].values():
                    out[rest.seq] = rest

    def _fill(self, order: Order, tick: int, qty: Decimal, ts: int, maker: bool) -> ExecEvent:
        inst = self.inst
        price = self._scale.decimal(tick)
        notional = price * qty
        rate = inst.maker_fee if maker else inst.taker_fee
        if order.side is Side.BUY and self.fee_in_base_for_buys:
            fee, fee_asset = qty * rate, inst.base
        else:
            fee, fee_asset = notional * rate, inst.quote
        fill = Fill(
            venue=inst.venue,
            symbol=inst.symbol,
            client_order_id=order.client_order_id,
            order_id=order.order_id,
            trade_id=f"{inst.venue}-{next(self._trade_ids)}",
            side=order.side,
            price=price,
            qty=qty,
            fee=fee,
            fee_asset=fee_asset,
            liquidity="maker" if maker else "taker",
            ts_exchange=ts,
            ts_local=0,
        )
        order.apply_fill(fill)
        return ExecEvent(kind="fill", client_order_id=order.client_order_id, ts=ts, fill=fill)

    def _settle(self, side: Side, f: Fill) -> None:
        """Move a fill's money through free balances (fees in their own asset)."""
        acct, inst = self.account, self.inst
        notional = f.price * f.qty
        if side is Side.BUY:
            acct.add(inst.quote, -notional)
            acct.add(inst.base, f.qty)
        else:
            acct.add(inst.base, -f.qty)
            acct.add(inst.quote, notional)
        acct.add(f.fee_asset, -f.fee)

    def _settle_maker(self, rest: _Resting, ev: ExecEvent) -> None:
        f = ev.fill
        assert f is not None
        if rest.order.side is Side.BUY:
            self.account.unlock(self.inst.quote, f.qty * rest.lock_per_unit)
        else:
            self.account.unlock(self.inst.base, f.qty)
        self._settle(rest.order.side, f)

    def _quote_fee_rate(self, side: Side, maker: bool) -> Decimal:
        """The fee rate a buy pays on top of its quote cost (0 when fees come out of base)."""
        if side is Side.BUY and self.fee_in_base_for_buys:
            return ZERO
        rate = self.inst.maker_fee if maker else self.inst.taker_fee
        return max(rate, ZERO)

    def _available(
        self, side: Side, limit_tick: int | None, ts: int | None = None
    ) -> list[tuple[int, Decimal]]:
        """:meth:`_available_lots` as quantities."""
        return [(t, self._qty(n)) for t, n in self._available_lots(side, limit_tick, ts)]

    def _available_lots(
        self, side: Side, limit_tick: int | None, ts: int | None = None
    ) -> list[tuple[int, int]]:
        """Displayed levels a taker on ``side`` may take, best first, in whole lots (each
        displayed size snapped by :func:`~arbsim.core.model.lots_of`, less what our own
        fills consumed of it).

        With ``ts``, levels still inside the temporary impact of our own earlier taker
        fills are left out."""
        book_side = side.opposite
        out: list[tuple[int, int]] = []
        lot = self._lot_f
        impact = self._impact.get(int(side)) if ts is not None else None
        if impact is not None and ts is not None and ts >= impact[0]:
            del self._impact[int(side)]
            impact = None
        depth = 1000
        if limit_tick is not None:
            # levels are at least a tick apart: no more than that many up to the limit
            touch = self.book.best_ask_tick if side is Side.BUY else self.book.best_bid_tick
            if touch is None:
                return out
            depth = min(depth, max(0, (limit_tick - touch) * int(side) + 1))
            if depth == 0:
                return out
        for tick, size in self.book.levels(book_side, depth):
            if limit_tick is not None and (
                (side is Side.BUY and tick > limit_tick)
                or (side is Side.SELL and tick < limit_tick)
            ):
                break
            if impact is not None and (
                (side is Side.BUY and tick < impact[1]) or (side is Side.SELL and tick > impact[1])
            ):
                continue
            qty = lots_of(size, lot)
            if self._consumed:
                key = (int(book_side), tick)
                used = self._consumed.get(key)
                if used is not None:
                    if used[0] == size:
                        qty -= used[1]
                    else:  # the level was refreshed by market data
                        del self._consumed[key]
            if qty > 0:
                out.append((tick, qty))
        return out

    def _consume(self, book_side: Side, tick: int, lots: int) -> None:
        """Remember that ``lots`` of a displayed level were taken by our own fill."""
        if not self.consume_liquidity:
            return
        size = self.book.size_at(book_side, tick)
        key = (int(book_side), tick)
        used = self._consumed.get(key)
        before = used[1] if used is not None and used[0] == size else 0
        self._consumed[key] = (size, before + lots)
        if len(self._consumed) > 4096:
            self._consumed = {
                k: v
                for k, v in self._consumed.items()
                if self.book.size_at(Side(k[0]), k[1]) == v[0]
            }

    def _cost(self, levels: list[tuple[int, Decimal]], qty: Decimal) -> Decimal:
        """Quote needed to take ``qty`` from ``levels`` (a market buy's worst case)."""
        cost = ZERO
        left = qty
        for tick, q in levels:
            take = min(q, left)
            cost += take * self._scale.decimal(tick)
            left -= take
            if left <= 0:
                break
        return cost

    def _affordable(self, levels: list[tuple[int, Decimal]], quote: Decimal) -> Decimal:
        """Base quantity (on the lot grid) that ``quote`` buys walking ``levels``."""
        left = quote
        qty = ZERO
        rate = 1 + self._quote_fee_rate(Side.BUY, maker=False)
        for tick, q in levels:
            price = self._scale.decimal(tick) * rate
            take = min(q, self.inst.round_qty(left / price))
            qty += take
            left -= take * price
            if take < q:
                break
        return qty

    # ---------------------------------------------------------------- requests
    def submit(self, order: Order, ts: int) -> list[ExecEvent]:
        """An order reaches the exchange at ``ts`` (exchange time)."""
        inst = self.inst
        cid = order.client_order_id
        if cid in self.orders:
            return self.reject(order, ts, "duplicate_client_id", f"client order id {cid} in use")
        order.order_id = f"{next(self._ids)}"
        self.orders[cid] = order
        side = order.side
        market = order.order_type is OrderType.MARKET
        touch_tick = self.book.best_ask_tick if side is Side.BUY else self.book.best_bid_tick
        if market and side is Side.BUY and order.quote_order_qty is not None:
            # a market buy sized in quote: the quantity is what that money buys now
            levels = self._available(side, None)
            order.qty = self._affordable(levels, order.quote_order_qty)
            if order.qty <= 0:
                return self.reject(
                    order,
                    ts,
                    "below_min_notional",
                    f"{order.quote_order_qty} {inst.quote} buys nothing at the displayed asks",
                )
        elif market and side is Side.BUY and self.market_buy_in_quote:
            return self.reject(
                order, ts, "invalid_qty", "market buys on this venue are sized in quote currency"
            )
        if not market and (order.price is None or not inst.on_tick(order.price)):
            return self.reject(
                order, ts, "invalid_price", f"price {order.price} is not a multiple of {inst.tick}"
            )
        if not inst.on_lot(order.qty):
            return self.reject(
                order, ts, "invalid_qty", f"quantity {order.qty} is not a multiple of {inst.lot}"
            )
        if order.qty < inst.min_qty:
            return self.reject(
                order, ts, "below_min_qty", f"quantity {order.qty} < minimum {inst.min_qty}"
            )
        ref_price = order.price
        if ref_price is None:
            if touch_tick is None:
                return self.reject(
                    order, ts, "below_min_notional", "no liquidity to price a market order"
                )
            ref_price = self._scale.decimal(touch_tick)
        if order.qty * ref_price < inst.min_notional:
            return self.reject(
                order,
                ts,
                "below_min_notional",
                f"notional {order.qty * ref_price} < minimum {inst.min_notional}",
            )
        limit_tick = self._tick(order.price) if order.price is not None else None
        crosses = touch_tick is not None and (
            limit_tick is None
            or (side is Side.BUY and touch_tick <= limit_tick)
            or (side is Side.SELL and touch_tick >= limit_tick)
        )
        post_only = order.tif is TimeInForce.POST_ONLY
        if post_only and crosses and self.post_only_cross == "reject":
            return self.reject(
                order, ts, "post_only_would_take", "post-only order would take liquidity"
            )
        rests = order.tif in (TimeInForce.GTC, TimeInForce.POST_ONLY) and not market
        if rests and self.max_open_orders is not None and len(self.resting) >= self.max_open_orders:
            return self.reject(
                order, ts, "max_open_orders", f"{len(self.resting)} orders already open"
            )
        # balance check on the worst case the order can cost
        levels = self._available(side, limit_tick, ts) if crosses and not post_only else []
        if side is Side.BUY:
            rate = max(
                self._quote_fee_rate(side, maker=False), self._quote_fee_rate(side, maker=True)
            )
            if order.price is not None:
                need = order.qty * order.price * (1 + rate)
            else:
                need = self._cost(levels, order.qty) * (1 + rate)
            have = self.account.get_free(inst.quote)
            asset = inst.quote
        else:
            need = order.qty
            have = self.account.get_free(inst.base)
            asset = inst.base
        if need > have:
            return self.reject(
                order, ts, "insufficient_balance", f"{asset}: need {need}, free {have}"
            )
        order.transition(OrderStatus.ACCEPTED, ts)
        order.ts_accepted = ts
        order.arrival_price = self._scale.price(touch_tick) if touch_tick is not None else 0.0
        events = [
            ExecEvent(
                kind="accepted",
                client_order_id=cid,
                ts=ts,
                order_id=order.order_id,
                arrival_price=order.arrival_price,
                qty=order.qty if order.quote_order_qty is not None else None,
            )
        ]
        if post_only and crosses:
            # Gate's poc: accepted, then cancelled at once (finish_as=poc)
            order.transition(OrderStatus.CANCELED, ts)
            events.append(ExecEvent(kind="canceled", client_order_id=cid, ts=ts, message="poc"))
            return events
        if order.tif is TimeInForce.FOK and sum((q for _, q in levels), ZERO) < order.qty:
            order.transition(OrderStatus.EXPIRED, ts)
            events.append(ExecEvent(kind="expired", client_order_id=cid, ts=ts, message="FOK"))
            return events
        depth = (
            sum(s for _, s in self.book.levels(side.opposite, self.impact_levels))
            if levels and self.impact_bps_per_depth > 0.0
            else 0.0
        )
        for tick, qty in levels:
            take = min(qty, order.remaining)
            ev = self._fill(order, tick, take, ts, maker=False)
            assert ev.fill is not None
            self._settle(side, ev.fill)
            self._consume(side.opposite, tick, self._lots(take))
            events.append(ev)
            if order.remaining == 0:
                break
        if depth > 0.0 and order.filled_qty > 0:
            self._leave_impact(side, float(order.filled_qty) / depth, levels[0][0], ts)
        if order.remaining == 0:
            return events
        if not rests:
            order.transition(OrderStatus.EXPIRED, ts)
            events.append(ExecEvent(kind="expired", client_order_id=cid, ts=ts, message="IOC"))
            return events
        assert order.price is not None and limit_tick is not None
        if side is Side.BUY:
            per_unit = order.price * (1 + self._quote_fee_rate(side, maker=True))
            self.account.lock(inst.quote, order.remaining * per_unit)
        else:
            per_unit = Decimal(1)
            self.account.lock(inst.base, order.remaining)
        level_raw = self.book.size_at(side, limit_tick)
        level = lots_of(level_raw, self._lot_f)
        self._add_resting(
            _Resting(
                order=order,
                tick=limit_tick,
                seq=next(self._seq),
                lock_per_unit=per_unit,
                ahead=level,
                level=level,
                level_raw=level_raw,
            )
        )
        return events

    def _leave_impact(self, side: Side, share: float, touch: int, ts: int) -> None:
        """Our taker took ``share`` of the displayed depth: move that side away."""
        bps = self.impact_bps_per_depth * share
        shift = math.ceil(self._scale.price(touch) * bps / 1e4 / self._scale.tick_f)
        first = touch + shift if side is Side.BUY else touch - shift
        self._impact[int(side)] = (ts + self.impact_decay_ns, first)

    def cancel(self, client_order_id: str, ts: int) -> list[ExecEvent]:
        rest = self._remove_resting(client_order_id)
        if rest is None:
            raise self.error("order_not_found", f"order {client_order_id} is not open")
        self._release(rest)
        rest.order.transition(OrderStatus.CANCELED, ts)
        return [ExecEvent(kind="canceled", client_order_id=client_order_id, ts=ts)]

    def _release(self, rest: _Resting) -> None:
        o = rest.order
        if o.side is Side.BUY:
            self.account.unlock(self.inst.quote, o.remaining * rest.lock_per_unit)
        else:
            self.account.unlock(self.inst.base, o.remaining)

    # ---------------------------------------------------------------- market events
    def on_book(self, ts: int, touched: tuple[int, int, int, int] | None = None) -> list[ExecEvent]:
        """After the exchange-side book changed: move queues, fill what it goes through.

        ``touched`` is ``(bid_lo, bid_hi, ask_lo, ask_hi)``: the tick range of the levels
        the message set on each side (``lo > hi``: none on that side). Only the resting
        orders in those ranges and those the new touch crosses are looked at, so a message
        costs what it can affect, not what rests. ``None`` (a snapshot that replaced the
        book, or a caller that cannot tell) looks at every resting order. Both give the
        same result: a resting order whose level did not change is left as it was.
        """
        if not self.resting:
            return []
        book = self.book
        bid, ask = book.best_bid_tick, book.best_ask_tick
        todo: list[_Resting]
        if touched is None:
            todo = list(self.resting.values())
        else:
            blo, bhi, alo, ahi = touched
            found: dict[int, _Resting] = {}
            if blo <= bhi:
                self._between(1, blo, bhi, found)
            if alo <= ahi:
                self._between(-1, alo, ahi, found)
            buys, sells = self._ticks[1], self._ticks[-1]
            if ask is not None and buys and buys[-1] >= ask:
                self._between(1, ask, buys[-1], found)
            if bid is not None and sells and sells[0] <= bid:
                self._between(-1, sells[0], bid, found)
            if not found:
                return []
            todo = [found[k] for k in sorted(found)]
        events: list[ExecEvent] = []
        lot = self._lot_f
        for rest in todo:
            o = rest.order
            crossed = (
                ask is not None and ask <= rest.tick
                if o.side is Side.BUY
                else bid is not None and bid >= rest.tick
            )
            if crossed:
                # orders posted at or through our price would have traded with our level:
                # through it, all of it (we are filled); at it, the queue ahead goes first
                levels = self._available_lots(o.side, rest.tick)
                usable = [(t, n) for t, n in levels if t != rest.tick]
                if usable:
                    rest.ahead = 0
                for t, n in levels:
                    if t != rest.tick:
                        continue
                    eaten = min(n, rest.ahead)
                    rest.ahead -= eaten
                    if eaten:
                        self._consume(o.side.opposite, t, eaten)
                    if n > eaten:
                        usable.append((t, n - eaten))
                take = min(sum(n for _, n in usable), self._lots(o.remaining))
                if take > 0:
                    left = take
                    for t, n in usable:
                        part = min(n, left)
                        self._consume(o.side.opposite, t, part)
                        left -= part
                        if left <= 0:
                            break
                    events.append(self._maker_fill(rest, take, ts))
                    if o.client_order_id not in self.resting:
                        continue
            size_raw = book.size_at(o.side, rest.tick)
            if size_raw != rest.level_raw:
                size = lots_of(size_raw, lot)
                if size < rest.level:
                    cancelled = rest.level - size - rest.traded
                    if cancelled > 0:
                        back = rest.level - rest.ahead
                        rest.ahead = self.queue.advance(rest.ahead, back, cancelled, lot)
                    rest.ahead = min(rest.ahead, size)
                rest.level = size
                rest.level_raw = size_raw
                rest.traded = 0
        return events

    def on_trade(self, side: int, tick: int, size: float | Decimal, ts: int) -> list[ExecEvent]:
        """A public trade: the aggressor's volume at our price eats the queue ahead of
        us first; a trade through our price means our level is gone.

        Only our orders at or through the trade's price are looked at; the volume is
        snapped to whole lots once (:func:`~arbsim.core.model.lots_of` for a float size).
        """
        if not self.resting:
            return []
        found: dict[int, _Resting] = {}
        if side == -1:  # a sell aggressor reaches our buys at or above its price
            ticks = self._ticks[1]
            if not ticks or ticks[-1] < tick:
                return []
            self._between(1, tick, ticks[-1], found)
        elif side == 1:  # a buy aggressor reaches our sells at or below its price
            ticks = self._ticks[-1]
            if not ticks or ticks[0] > tick:
                return []
            self._between(-1, ticks[0], tick, found)
        else:
            return []
        volume = self._lots(size) if isinstance(size, Decimal) else lots_of(size, self._lot_f)
        events: list[ExecEvent] = []
        for k in sorted(found):
            if volume <= 0:
                break
            rest = found[k]
            if rest.tick == tick:
                eaten = min(volume, rest.ahead)
                rest.ahead -= eaten
                rest.traded += eaten
                volume -= eaten
                if volume <= 0:
                    continue
            else:
                rest.ahead = 0
            take = min(volume, self._lots(rest.order.remaining))
            if take > 0:
                rest.traded += take
                events.append(self._maker_fill(rest, take, ts))
                volume -= take
        return events

    def _maker_fill(self, rest: _Resting, lots: int, ts: int) -> ExecEvent:
        ev = self._fill(rest.order, rest.tick, self._qty(lots), ts, maker=True)
        self._settle_maker(rest, ev)
        if rest.order.remaining == 0:
            self._remove_resting(rest.order.client_order_id)
        return ev
