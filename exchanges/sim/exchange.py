"""The venue-neutral core of a simulated exchange: accounts, orders, matching, private events.

Orders are matched by :class:`exchanges.simulated.matching.MatchingEngine` (one per account and
symbol, all reading the simulator's own book of that symbol). The venue servers
(``mexc_server``, ``gate_server``) translate requests into :meth:`SimExchange.place` /
:meth:`SimExchange.cancel` and format what comes back; every change of an order, every fill
and every balance change is also published as a :class:`PrivateUpdate` for the private
streams.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal

import msgspec

from arbsim.core.errors import (
    BelowMinimum,
    InsufficientBalance,
    InvalidOrder,
    OrderNotFound,
    PostOnlyWouldTake,
    PrecisionError,
    VenueError,
)
from arbsim.core.model import (
    ZERO,
    Fill,
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from arbsim.core.rules import Rejection, VenueRules
from exchanges.sim.config import AccountConfig
from exchanges.sim.errors import SimError, SimReject, kind_of
from exchanges.sim.market import DepthUpdate, MarketEvent, MarketReplay, quote_to_base
from exchanges.sim.transfers import TransferNetwork
from exchanges.simulated.matching import Account, ExecEvent, MatchingEngine

__all__ = [
    "ENGINE_CODES",
    "BalanceChange",
    "PrivateUpdate",
    "SimAccount",
    "SimExchange",
    "SimFill",
    "SimOrder",
]

_MS = 1_000_000

ENGINE_CODES: dict[str, tuple[str, type[VenueError]]] = {
    "insufficient_balance": (Rejection.INSUFFICIENT_BALANCE.value, InsufficientBalance),
    "invalid_price": (Rejection.PRECISION.value, PrecisionError),
    "invalid_qty": (Rejection.PRECISION.value, PrecisionError),
    "below_min_qty": (Rejection.BELOW_MINIMUM.value, BelowMinimum),
    "below_min_notional": (Rejection.BELOW_MINIMUM.value, BelowMinimum),
    "post_only_would_take": (Rejection.POST_ONLY_WOULD_TAKE.value, PostOnlyWouldTake),
    "order_not_found": (Rejection.ORDER_NOT_FOUND.value, OrderNotFound),
    "duplicate_client_id": (SimError.DUPLICATE_CLIENT_ID.value, InvalidOrder),
}
"""Matching-engine rejection kind -> (simulator reject kind value, error class)."""


class SimFill(msgspec.Struct, frozen=True, kw_only=True):
    """One fill of an own order, with the venue's trade id."""

    trade_id: int
    fill: Fill
    order_id: str
    client_id: str | None
    native: str
    ts_ms: int

    @property
    def is_maker(self) -> bool:
        """Whether the order provided liquidity."""
        return self.fill.liquidity == "maker"


class SimOrder(msgspec.Struct, kw_only=True):
    """An order as the simulated venue keeps it."""

    order: Order
    native: str
    client_id: str | None
    venue_type: str
    create_ms: int
    update_ms: int
    quote_amount: Decimal | None = None
    fills: list[SimFill] = msgspec.field(default_factory=list)

    @property
    def order_id(self) -> str:
        """The venue's order id."""
        return self.order.order_id

    @property
    def is_open(self) -> bool:
        """Whether the order still rests."""
        return self.order.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


class BalanceChange(msgspec.Struct, frozen=True, kw_only=True):
    """One asset's balances after a change and the change itself."""

    asset: str
    free: Decimal
    locked: Decimal
    free_change: Decimal
    locked_change: Decimal


class PrivateUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """What an account's private streams report about one event.

    ``event``: ``put`` (new order), ``update`` (fill of a live order) or ``finish``.
    """

    api_key: str
    event: str
    order: SimOrder | None
    fills: list[SimFill]
    balances: list[BalanceChange]
    ts_ms: int


class SimAccount:
    """One API key: secret, balances, engines and order history."""

    def __init__(self, cfg: AccountConfig, venue: str):
        self.api_key = cfg.api_key
        self.secret = cfg.api_secret
        self.account = Account(venue, {a: Decimal(v) for a, v in cfg.balances.items()})
        self.engines: dict[str, MatchingEngine] = {}
        self.orders: dict[str, SimOrder] = {}  # order id -> order
        self.by_cid: dict[str, SimOrder] = {}  # engine's internal client id -> order
        self.by_client: dict[tuple[str, str], SimOrder] = {}  # (symbol, client id) -> order
        self.trades: list[SimFill] = []

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Asset -> (free, locked)."""
        acct = self.account
        assets = sorted(set(acct.free) | set(acct.locked))
        return {a: (acct.free.get(a, ZERO), acct.locked.get(a, ZERO)) for a in assets}


class SimExchange:
    """Accounts and order handling of one simulated venue.

    Parameters
    ----------
    venue:
        ``"mexc"`` or ``"gateio"``.
    rules:
        The venue's order rules (``exchanges/mexc/rules.py``, ``exchanges/gateio/rules.py``):
        fee currency for the matching, rate limits for the venue server.
    market:
        The venue's market-data replay (books are read from it).
    accounts:
        API keys with their starting balances.
    now_ns:
        The exchange clock (:meth:`exchanges.sim.clock.SimClock.now_ns`).
    first_order_id:
        Where the venue's order ids start.
    """

    def __init__(
        self,
        venue: str,
        market: MarketReplay,
        accounts: list[AccountConfig],
        now_ns: Callable[[], int],
        *,
        rules: VenueRules,
        first_order_id: int = 1,
    ):
        self.venue = venue
        self.rules = rules
        self.market = market
        self.now_ns = now_ns
        self.accounts = {a.api_key: SimAccount(a, venue) for a in accounts}
        self._order_ids = itertools.count(first_order_id)
        self._cids = itertools.count(1)
        self._trade_ids = itertools.count(first_order_id * 3)
        self.listeners: list[Callable[[PrivateUpdate], None]] = []
        #: the transfer network the simulator's venues share (set by the runner)
        self.transfers: TransferNetwork | None = None
        market.listeners.insert(0, self.on_market)

    def settle(self) -> None:
        """Apply the withdrawal and deposit steps due by now (before any request reads or
        changes balances)."""
        if self.transfers is not None:
            self.transfers.advance()

    # ------------------------------------------------------------------ lookups
    @property
    def instruments(self) -> dict[str, Instrument]:
        """Symbol -> instrument of every served symbol."""
        return {s: st.inst for s, st in self.market.symbols.items()}

    def assets(self) -> list[str]:
        """Every asset of the served symbols, sorted."""
        return sorted({a for i in self.instruments.values() for a in (i.base, i.quote)})

    def instrument(self, symbol: str) -> Instrument:
        """The instrument of ``symbol`` or an INVALID_SYMBOL rejection."""
        state = self.market.symbols.get(symbol)
        if state is None:
            raise SimReject(Rejection.INVALID_SYMBOL, symbol)
        return state.inst

    def account(self, api_key: str) -> SimAccount:
        """The account of a known key (callers have checked it)."""
        return self.accounts[api_key]

    def _engine(self, acct: SimAccount, symbol: str) -> MatchingEngine:
        engine = acct.engines.get(symbol)
        if engine is None:
            state = self.market.symbols[symbol]
            engine = MatchingEngine(
                state.inst,
                state.book,
                acct.account,
                codes=ENGINE_CODES,
                order_ids=self._order_ids,
                # the same order rules as the replay venue
                fee_currency=self.rules.fee_currency,
            )
            acct.engines[symbol] = engine
        return engine

    def find(
        self, api_key: str, symbol: str, order_id: str | None, client_id: str | None
    ) -> SimOrder | None:
        """An order of the account by venue id or client id (None when unknown)."""
        acct = self.accounts[api_key]
        found: SimOrder | None = None
        if order_id:
            found = acct.orders.get(order_id)
        elif client_id:
            found = acct.by_client.get((symbol, client_id))
        if found is not None and found.order.symbol != symbol:
            return None
        return found

    # ------------------------------------------------------------------ requests
    def place(
        self,
        api_key: str,
        symbol: str,
        side: Side,
        order_type: OrderType,
        tif: TimeInForce,
        *,
        qty: Decimal | None,
        price: Decimal | None,
        quote_amount: Decimal | None = None,
        client_id: str | None = None,
        venue_type: str = "",
        native: str = "",
        fok_unfilled_is_error: bool = False,
    ) -> SimOrder:
        """Place an order; raises :class:`SimReject` with the venue-neutral reason.

        ``fok_unfilled_is_error``: a FOK that cannot fill is a rejection (Gate
        ``FOK_NOT_FILL``) instead of an order that ends cancelled (MEXC).
        """
        inst = self.instrument(symbol)
        self.market.catch_up()
        self.settle()
        acct = self.accounts[api_key]
        if client_id:
            prev = acct.by_client.get((symbol, client_id))
            if prev is not None and prev.is_open:
                raise SimReject(SimError.DUPLICATE_CLIENT_ID, client_id)
        if qty is None:
            if quote_amount is None:
                raise SimReject(SimError.MISSING_PARAM, "quantity")
            state = self.market.symbols[symbol]
            qty = quote_to_base(state, side, quote_amount)
            if qty <= 0:
                raise SimReject(Rejection.BELOW_MINIMUM, str(quote_amount))
        ts = self.now_ns()
        engine = self._engine(acct, symbol)
        before = acct.balances()
        order = Order(
            venue=inst.venue,
            symbol=symbol,
            side=side,
            qty=qty,
            price=price if order_type is OrderType.LIMIT else None,
            order_type=order_type,
            tif=tif,
            client_order_id=f"sim{next(self._cids)}",
            ts_created=ts,
            ts_updated=ts,
        )
        events = engine.submit(order, ts)
        if events and events[0].kind == "rejected":
            raise SimReject(kind_of(events[0].code), events[0].message)
        if (
            fok_unfilled_is_error
            and tif is TimeInForce.FOK
            and order.status is OrderStatus.EXPIRED
            and order.filled_qty == 0
        ):
            raise SimReject(SimError.FOK_NOT_FILLED)
        ms = ts // _MS
        sim = SimOrder(
            order=order,
            native=native or symbol,
            client_id=client_id or None,
            venue_type=venue_type,
            create_ms=ms,
            update_ms=ms,
            quote_amount=quote_amount,
        )
        acct.orders[order.order_id] = sim
        acct.by_cid[order.client_order_id] = sim
        if client_id:
            acct.by_client[(symbol, client_id)] = sim
        fills = self._record_fills(acct, events, ms)
        self._publish(acct, "put", sim, [], before, ms)
        if fills or not sim.is_open:
            self._publish(acct, "finish" if not sim.is_open else "update", sim, fills, None, ms)
        return sim

    def cancel(
        self, api_key: str, symbol: str, order_id: str | None, client_id: str | None
    ) -> SimOrder:
        """Cancel an open order; raises :class:`SimReject` when it is unknown or finished."""
        self.instrument(symbol)
        self.market.catch_up()
        sim = self.find(api_key, symbol, order_id, client_id)
        if sim is None:
            raise SimReject(SimError.CANCEL_UNKNOWN, order_id or client_id or "")
        if not sim.is_open:
            closed = sim.order.status is OrderStatus.FILLED
            raise SimReject(SimError.ORDER_CLOSED if closed else SimError.ORDER_CANCELLED)
        acct = self.accounts[api_key]
        before = acct.balances()
        ts = self.now_ns()
        self._engine(acct, symbol).cancel(sim.order.client_order_id, ts)
        sim.update_ms = ts // _MS
        self._publish(acct, "finish", sim, [], before, sim.update_ms)
        return sim

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[SimOrder]:
        """Open orders of the account (of one symbol or all), oldest first."""
        acct = self.accounts[api_key]
        return [
            o
            for o in acct.orders.values()
            if o.is_open and (symbol is None or o.order.symbol == symbol)
        ]

    # ------------------------------------------------------------------ market events
    def on_market(self, event: MarketEvent) -> None:
        """Let resting orders of every account react to a book change or a public trade."""
        ts = self.now_ns()
        ms = ts // _MS
        for acct in self.accounts.values():
            engine = acct.engines.get(event.symbol)
            if engine is None or not engine.resting:
                continue
            before = acct.balances()
            if isinstance(event, DepthUpdate):
                events = engine.on_book(ts, event.touched)
            else:
                events = engine.on_trade(int(event.side), event.tick, event.size, ts)
            if events:
                self._report_fills(acct, events, before, ms)

    def inject_trade(self, symbol: str, side: Side, price: Decimal, qty: Decimal) -> int:
        """A public trade that only the matching sees (tests, ``POST /_sim/trade``).

        Returns the number of own fills it caused.
        """
        inst = self.instrument(symbol)
        tick = int(price / inst.tick)
        ts = self.now_ns()
        n = 0
        for acct in self.accounts.values():
            engine = acct.engines.get(symbol)
            if engine is None:
                continue
            before = acct.balances()
            events = engine.on_trade(int(side), tick, qty, ts)
            n += len(events)
            if events:
                self._report_fills(acct, events, before, ts // _MS)
        return n

    def _report_fills(
        self,
        acct: SimAccount,
        events: list[ExecEvent],
        before: dict[str, tuple[Decimal, Decimal]],
        ms: int,
    ) -> None:
        fills = self._record_fills(acct, events, ms)
        by_order: dict[str, list[SimFill]] = {}
        for f in fills:
            by_order.setdefault(f.order_id, []).append(f)
        first = True
        for order_id, order_fills in by_order.items():
            sim = acct.orders[order_id]
            event = "update" if sim.is_open else "finish"
            self._publish(acct, event, sim, order_fills, before if first else None, ms)
            first = False

    def _record_fills(self, acct: SimAccount, events: list[ExecEvent], ms: int) -> list[SimFill]:
        out: list[SimFill] = []
        for ev in events:
            if ev.kind != "fill" or ev.fill is None:
                continue
            sim = acct.by_cid[ev.client_order_id]
            sf = SimFill(
                trade_id=next(self._trade_ids),
                fill=ev.fill,
                order_id=sim.order_id,
                client_id=sim.client_id,
                native=sim.native,
                ts_ms=ms,
            )
            sim.fills.append(sf)
            sim.update_ms = ms
            acct.trades.append(sf)
            out.append(sf)
        return out

    def _publish(
        self,
        acct: SimAccount,
        event: str,
        sim: SimOrder | None,
        fills: list[SimFill],
        before: dict[str, tuple[Decimal, Decimal]] | None,
        ms: int,
    ) -> None:
        changes: list[BalanceChange] = []
        if before is not None:
            after = acct.balances()
            for asset, (free, locked) in after.items():
                f0, l0 = before.get(asset, (ZERO, ZERO))
                if free != f0 or locked != l0:
                    changes.append(
                        BalanceChange(
                            asset=asset,
                            free=free,
                            locked=locked,
                            free_change=free - f0,
                            locked_change=locked - l0,
                        )
                    )
        update = PrivateUpdate(
            api_key=acct.api_key, event=event, order=sim, fills=fills, balances=changes, ts_ms=ms
        )
        for listener in list(self.listeners):
            listener(update)
