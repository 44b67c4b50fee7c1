"""The matching engine shared by the replay venue, the paper venue and the exchange
simulator.

It works on the *exchange-side* book (the book as of the venue's own clock), keeps
the account's exact balances (free / locked), and turns order requests and market
events into execution events. Rules:

- an order arriving at the exchange is validated (tick, lot, minimums, balance);
- a taker walks the opposite side level by level, never filling more than the
  displayed size, up to its limit price (market orders: no limit);
- IOC remainders expire, FOK without enough displayed size expires unfilled,
  post-only orders that would cross are rejected, GTC remainders rest;
- a resting limit fills (as maker, at its own price) when the book or a trade crosses it;
- fees per instrument (maker / taker rate), charged in the quote asset.

Rejections carry a code from a per-venue table so that a backtest shows the code the
real venue would answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from decimal import Decimal

import msgspec

from arbsim.book import OrderBook
from arbsim.errors import (
    BelowMinimum,
    InsufficientBalance,
    InvalidOrder,
    OrderNotFound,
    PostOnlyWouldTake,
    PrecisionError,
    VenueError,
)
from arbsim.model import (
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
)

#: rejection kind -> (code, error class). Venues override the codes with their own.
GENERIC_CODES: dict[str, tuple[str, type[VenueError]]] = {
    "insufficient_balance": ("INSUFFICIENT_BALANCE", InsufficientBalance),
    "invalid_price": ("INVALID_PRICE_PRECISION", PrecisionError),
    "invalid_qty": ("INVALID_QTY_PRECISION", PrecisionError),
    "below_min_qty": ("BELOW_MIN_QTY", BelowMinimum),
    "below_min_notional": ("BELOW_MIN_NOTIONAL", BelowMinimum),
    "post_only_would_take": ("POST_ONLY_WOULD_TAKE", PostOnlyWouldTake),
    "order_not_found": ("ORDER_NOT_FOUND", OrderNotFound),
    "duplicate_client_id": ("DUPLICATE_CLIENT_ORDER_ID", InvalidOrder),
}


class ExecEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Something the exchange did to an order, to be reported to the client."""

    kind: str  # accepted | fill | canceled | expired | rejected
    client_order_id: str
    ts: int
    fill: Fill | None = None
    order_id: str = ""
    arrival_price: float = 0.0
    code: str = ""
    message: str = ""


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


class _Resting(msgspec.Struct, kw_only=True):
    order: Order
    tick: int
    lock_per_unit: Decimal  # quote locked per unit of base (buys) or 1 (sells, in base)


class MatchingEngine:
    """Matching for one instrument against an exchange-side book."""

    def __init__(
        self,
        instrument: Instrument,
        book: OrderBook,
        account: Account,
        *,
        codes: Mapping[str, tuple[str, type[VenueError]]] | None = None,
        order_ids: itertools.count[int] | None = None,
        consume_liquidity: bool = True,
    ):
        self.inst = instrument
        self.book = book
        self.account = account
        self.codes = dict(GENERIC_CODES, **(codes or {}))
        self._ids = order_ids or itertools.count(1)
        self._trade_ids = itertools.count(1)
        self.orders: dict[str, Order] = {}
        self.resting: dict[str, _Resting] = {}
        self._scale = book.scale
        self.consume_liquidity = consume_liquidity
        # (book side, tick) -> (displayed size when we took from it, quantity we took):
        # our own fills hide that much of the level until the data shows it changed
        self._consumed: dict[tuple[int, int], tuple[float, Decimal]] = {}

    # ---------------------------------------------------------------- helpers
    def error(self, kind: str, message: str) -> VenueError:
        code, cls = self.codes[kind]
        return cls(message, code=code, venue=self.inst.venue)

    def _reject(self, order: Order, ts: int, kind: str, message: str) -> list[ExecEvent]:
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

    def _fill(self, order: Order, tick: int, qty: Decimal, ts: int, maker: bool) -> ExecEvent:
        inst = self.inst
        price = self._scale.decimal(tick)
        notional = price * qty
        fee = notional * (inst.maker_fee if maker else inst.taker_fee)
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
            fee_asset=inst.quote,
            liquidity="maker" if maker else "taker",
            ts_exchange=ts,
            ts_local=0,
        )
        order.apply_fill(fill)
        return ExecEvent(kind="fill", client_order_id=order.client_order_id, ts=ts, fill=fill)

    def _settle_taker(self, order: Order, ev: ExecEvent) -> None:
        f = ev.fill
        assert f is not None
        acct, inst = self.account, self.inst
        notional = f.price * f.qty
        if order.side is Side.BUY:
            acct.add(inst.quote, -(notional + f.fee))
            acct.add(inst.base, f.qty)
        else:
            acct.add(inst.base, -f.qty)
            acct.add(inst.quote, notional - f.fee)

    def _settle_maker(self, rest: _Resting, ev: ExecEvent) -> None:
        f = ev.fill
        assert f is not None
        acct, inst = self.account, self.inst
        notional = f.price * f.qty
        if rest.order.side is Side.BUY:
            acct.unlock(inst.quote, f.qty * rest.lock_per_unit)
            acct.add(inst.quote, -(notional + f.fee))
            acct.add(inst.base, f.qty)
        else:
            acct.spend_locked(inst.base, f.qty)
            acct.add(inst.quote, notional - f.fee)

    def _available(self, side: Side, limit_tick: int | None) -> list[tuple[int, Decimal]]:
        """Displayed levels a taker on ``side`` may take, best first, sizes on the lot grid."""
        book_side = side.opposite
        out: list[tuple[int, Decimal]] = []
        for tick, size in self.book.levels(book_side, 1000):
            if limit_tick is not None and (
                (side is Side.BUY and tick > limit_tick)
                or (side is Side.SELL and tick < limit_tick)
            ):
                break
            qty = self.inst.round_qty(size)
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

    def _consume(self, book_side: Side, tick: int, qty: Decimal) -> None:
        """Remember that ``qty`` of a displayed level was taken by our own fill."""
        if not self.consume_liquidity:
            return
        size = self.book.size_at(book_side, tick)
        key = (int(book_side), tick)
        used = self._consumed.get(key)
        before = used[1] if used is not None and used[0] == size else ZERO
        self._consumed[key] = (size, before + qty)
        if len(self._consumed) > 4096:
            self._consumed = {
                k: v
                for k, v in self._consumed.items()
                if self.book.size_at(Side(k[0]), k[1]) == v[0]
            }

    # ---------------------------------------------------------------- requests
    def submit(self, order: Order, ts: int) -> list[ExecEvent]:
        """An order reaches the exchange at ``ts`` (exchange time)."""
        inst = self.inst
        cid = order.client_order_id
        if cid in self.orders:
            return self._reject(order, ts, "duplicate_client_id", f"client order id {cid} in use")
        order.order_id = f"{next(self._ids)}"
        self.orders[cid] = order
        if order.order_type is OrderType.LIMIT and (
            order.price is None or not inst.on_tick(order.price)
        ):
            return self._reject(
                order, ts, "invalid_price", f"price {order.price} is not a multiple of {inst.tick}"
            )
        if not inst.on_lot(order.qty):
            return self._reject(
                order, ts, "invalid_qty", f"quantity {order.qty} is not a multiple of {inst.lot}"
            )
        if order.qty < inst.min_qty:
            return self._reject(
                order, ts, "below_min_qty", f"quantity {order.qty} < minimum {inst.min_qty}"
            )
        side = order.side
        touch_tick = self.book.best_ask_tick if side is Side.BUY else self.book.best_bid_tick
        ref_price = order.price
        if ref_price is None:
            if touch_tick is None:
                return self._reject(
                    order, ts, "below_min_notional", "no liquidity to price a market order"
                )
            ref_price = self._scale.decimal(touch_tick)
        if order.qty * ref_price < inst.min_notional:
            return self._reject(
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
        if order.tif is TimeInForce.POST_ONLY and crosses:
            return self._reject(
                order, ts, "post_only_would_take", "post-only order would take liquidity"
            )
        # balance check on the worst case the order can cost
        fee_rate = max(inst.taker_fee, inst.maker_fee, ZERO)
        levels = self._available(side, limit_tick) if crosses else []
        if side is Side.BUY:
            if order.price is not None:
                need = order.qty * order.price * (1 + fee_rate)
            else:
                need = self._cost(levels, order.qty) * (1 + fee_rate)
            have = self.account.get_free(inst.quote)
            asset = inst.quote
        else:
            need = order.qty
            have = self.account.get_free(inst.base)
            asset = inst.base
        if need > have:
            return self._reject(
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
            )
        ]
        if order.tif is TimeInForce.FOK and sum((q for _, q in levels), ZERO) < order.qty:
            order.transition(OrderStatus.EXPIRED, ts)
            events.append(ExecEvent(kind="expired", client_order_id=cid, ts=ts, message="FOK"))
            return events
        if order.tif is not TimeInForce.POST_ONLY:
            for tick, qty in levels:
                take = min(qty, order.remaining)
                ev = self._fill(order, tick, take, ts, maker=False)
                self._settle_taker(order, ev)
                self._consume(side.opposite, tick, take)
                events.append(ev)
                if order.remaining == 0:
                    return events
        if order.tif in (TimeInForce.IOC, TimeInForce.FOK) or order.order_type is OrderType.MARKET:
            order.transition(OrderStatus.EXPIRED, ts)
            events.append(ExecEvent(kind="expired", client_order_id=cid, ts=ts, message="IOC"))
            return events
        assert order.price is not None and limit_tick is not None
        if side is Side.BUY:
            per_unit = order.price * (1 + max(inst.maker_fee, ZERO))
            self.account.lock(inst.quote, order.remaining * per_unit)
        else:
            per_unit = Decimal(1)
            self.account.lock(inst.base, order.remaining)
        self.resting[cid] = _Resting(order=order, tick=limit_tick, lock_per_unit=per_unit)
        return events

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

    def cancel(self, client_order_id: str, ts: int) -> list[ExecEvent]:
        rest = self.resting.pop(client_order_id, None)
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
    def on_book(self, ts: int) -> list[ExecEvent]:
        """After the exchange-side book changed: fill resting orders it now crosses."""
        events: list[ExecEvent] = []
        book = self.book
        bid, ask = book.best_bid_tick, book.best_ask_tick
        for cid, rest in list(self.resting.items()):
            o = rest.order
            if o.side is Side.BUY:
                if ask is None or ask > rest.tick:
                    continue
            elif bid is None or bid < rest.tick:
                continue
            levels = self._available(o.side, rest.tick)
            take = min(sum((q for _, q in levels), ZERO), o.remaining)
            if take > 0:
                left = take
                for tick, q in levels:
                    part = min(q, left)
                    self._consume(o.side.opposite, tick, part)
                    left -= part
                    if left <= 0:
                        break
                events.append(self._maker_fill(cid, rest, take, ts))
        return events

    def on_trade(self, side: int, tick: int, size: float, ts: int) -> list[ExecEvent]:
        """A public trade: an aggressor on the other side at or through our price fills us."""
        events: list[ExecEvent] = []
        remaining = self.inst.round_qty(size)
        for cid, rest in list(self.resting.items()):
            if remaining <= 0:
                break
            o = rest.order
            if o.side is Side.BUY and not (side == -1 and tick <= rest.tick):
                continue
            if o.side is Side.SELL and not (side == 1 and tick >= rest.tick):
                continue
            take = min(remaining, o.remaining)
            if take > 0:
                events.append(self._maker_fill(cid, rest, take, ts))
                remaining -= take
        return events

    def _maker_fill(self, cid: str, rest: _Resting, qty: Decimal, ts: int) -> ExecEvent:
        ev = self._fill(rest.order, rest.tick, qty, ts, maker=True)
        self._settle_maker(rest, ev)
        if rest.order.remaining == 0:
            del self.resting[cid]
        return ev
