"""``LiveVenue``: what the live venues (MEXC, Gate.io) share as arbsim
:class:`~arbsim.core.ports.Venue` implementations.

The frame is the same on every venue: load the symbols' trading rules, run the public
:class:`~exchanges.live.stream.MarketStream` with the venue's dialect, then (with
credentials) its private streams; orders go through the
:class:`~exchanges.live.orders.OrderTracker` (:func:`~exchanges.live.orders.place_tracked`
to send, :func:`~exchanges.live.orders.reconcile_remote` to merge REST answers). A venue
supplies its protocol layer's conversions as data (:class:`VenueCodec`) and the few steps
where the protocols really differ as hooks: how symbols are listed, the market dialect,
the private stream, and how an order is sent, cancelled, queried and listed.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, Protocol, TypedDict, TypeVar

from arbsim.core.book import OrderBook
from arbsim.core.errors import (
    InvalidOrder,
    InvalidSymbol,
    MalformedMessage,
    OrderNotFound,
    OutcomeUnknown,
    VenueError,
)
from arbsim.core.model import (
    Deposit,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    OrderType,
    TimeInForce,
    Trade,
    Transfer,
    TransferStatus,
    WithdrawalTerms,
    WithdrawRequest,
)
from arbsim.core.ports import BookUpdate, MarketRecorder, MarketSink, UpdateSink, VenueHealth
from arbsim.runtime.loop import WallClock
from exchanges.live.credentials import Credentials
from exchanges.live.errors import order_answer_error
from exchanges.live.http import RestTransport
from exchanges.live.orders import OrderTracker, place_tracked, reconcile_remote
from exchanges.live.stream import Backoff, MarketDialect, MarketStream, StreamTask
from exchanges.live.symbols import SymbolTable, VenueSymbolInfo
from exchanges.live.transfers import WithdrawalLog, WithdrawPolicy

__all__ = ["LiveOptions", "LiveRest", "LiveVenue", "Send", "VenueCodec"]

log = logging.getLogger(__name__)

RawOrder = TypeVar("RawOrder")
RawTrade = TypeVar("RawTrade")
RawOrder_contra = TypeVar("RawOrder_contra", contravariant=True)
RawTrade_co = TypeVar("RawTrade_co", covariant=True)
RawTrade_contra = TypeVar("RawTrade_contra", contravariant=True)

Send = Callable[[], Awaitable[tuple[str, bool]]]
"""Sends a new order: the venue's order id, and whether the answer says it already ended."""

_SETTLING = frozenset({TimeInForce.IOC, TimeInForce.FOK})


class ToOrder(Protocol[RawOrder_contra]):
    """A venue order answer as an arbsim :class:`Order` (``rest.to_order``)."""

    def __call__(
        self, raw: RawOrder_contra, symbol: str, /, *, ts_local: int, venue: str
    ) -> Order: ...


class ToFill(Protocol[RawTrade_contra]):
    """A venue trade (an own fill) as an arbsim :class:`Fill` (``rest.to_fill``)."""

    def __call__(
        self,
        raw: RawTrade_contra,
        symbol: str,
        client_order_id: str,
        /,
        *,
        ts_local: int,
        venue: str,
    ) -> Fill: ...


@dataclass(frozen=True)
class VenueCodec(Generic[RawOrder, RawTrade]):
    """A venue's conversions, taken from its protocol layer.

    Attributes
    ----------
    exchange:
        The venue's name in ``describe`` (``"mexc"``, ``"gateio"``).
    to_native:
        ``"BTC/USDT"`` -> the venue's symbol.
    to_order, to_fill:
        REST order / own trade -> arbsim :class:`Order` / :class:`Fill`.
    """

    exchange: str
    to_native: Callable[[str], str]
    to_order: ToOrder[RawOrder]
    to_fill: ToFill[RawTrade]


class LiveRest(Protocol[RawTrade_co]):
    """What :class:`LiveVenue` uses of a venue's REST client."""

    @property
    def transport(self) -> RestTransport: ...

    async def close(self) -> None: ...

    async def server_time(self) -> int:
        """The venue's clock, in ms."""
        ...

    async def my_trades(
        self, native: str, /, *, order_id: str | None = None
    ) -> Sequence[RawTrade_co]: ...


class LiveOptions(TypedDict, total=False):
    """Keyword arguments every live venue takes (defaults: :class:`LiveVenue`)."""

    clock: WallClock | None
    recorder: MarketRecorder | None
    backoff_seed: int | None
    backoff_base_s: float
    ping_interval_s: float
    settle_timeout_s: float
    ready_timeout_s: float
    timeout_s: float
    probe_interval_s: float
    withdraw_policy: WithdrawPolicy


class LiveVenue(abc.ABC, Generic[RawOrder, RawTrade]):
    """The arbsim Venue frame of a live venue; subclasses fill in the protocol.

    Parameters
    ----------
    credentials:
        None for market data only.
    codec:
        The venue's conversions.
    name:
        Venue name in arbsim.
    rest_url, ws_url:
        Endpoints (tests point them at 127.0.0.1).
    depth_limit:
        Levels of a REST book snapshot.
    clock:
        Wall clock (``now_ns``) for ``ts_local``.
    backoff_seed, backoff_base_s:
        Seed and first delay of the reconnect jitter.
    ping_interval_s:
        WebSocket ping period.
    settle_timeout_s:
        How long ``place_order`` waits for an IOC/FOK/market order to end by push before
        asking REST.
    ready_timeout_s:
        How long ``start`` waits for each stream.
    timeout_s:
        Total time of a REST request.
    probe_interval_s:
        How often the venue's server time is asked for (0: never): whether REST answers
        and the venue's clock skew, in :meth:`health`.
    withdraw_policy:
        Whether withdrawals are allowed and to which addresses (default: none).

    Notes
    -----
    The constructor does no I/O; :meth:`start` loads the symbols and connects. A subclass
    sets ``rest`` after calling this constructor.
    """

    rest: LiveRest[RawTrade]
    #: how long after it was sent an order request can still create an order (the
    #: venue's own tolerance for a request's timestamp); set by the subclass
    order_expiry_ns: int

    def __init__(
        self,
        credentials: Credentials | None,
        codec: VenueCodec[RawOrder, RawTrade],
        *,
        name: str,
        rest_url: str,
        ws_url: str,
        depth_limit: int,
        clock: WallClock | None = None,
        recorder: MarketRecorder | None = None,
        backoff_seed: int | None = None,
        backoff_base_s: float = 0.5,
        ping_interval_s: float = 15.0,
        settle_timeout_s: float = 2.0,
        ready_timeout_s: float = 10.0,
        timeout_s: float = 10.0,
        probe_interval_s: float = 0.0,
        withdraw_policy: WithdrawPolicy | None = None,
    ) -> None:
        self.codec = codec
        self.name = name
        self.clock = clock or WallClock()
        self.recorder = recorder
        self.credentials = credentials
        self.rest_url = rest_url
        self.ws_url = ws_url
        self.depth_limit = depth_limit
        self.backoff_seed = backoff_seed
        self.backoff_base_s = backoff_base_s
        self.ping_interval_s = ping_interval_s
        self.settle_timeout_s = settle_timeout_s
        self.ready_timeout_s = ready_timeout_s
        self.timeout_s = timeout_s
        self.probe_interval_s = probe_interval_s
        #: the last REST probe: answered (None before the first), why not, clock skew
        self.rest_ok: bool | None = None
        self.rest_error = ""
        self.clock_skew_ms: float | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self.tracker = OrderTracker(name, self.clock.now_ns)
        self.market: MarketStream | None = None
        self.user: StreamTask | None = None
        self.table = SymbolTable(name)
        self.withdraw_policy = withdraw_policy or WithdrawPolicy()
        self.withdrawal_log = WithdrawalLog()

    # ---------------------------------------------------------------- hooks
    @abc.abstractmethod
    async def _symbol_infos(self, natives: Sequence[str]) -> list[VenueSymbolInfo]:
        """Trading rules of (at least) ``natives``."""

    @abc.abstractmethod
    def _dialect(self) -> MarketDialect:
        """The public stream's dialect over the started symbols (``self.table``)."""

    @abc.abstractmethod
    def _user_stream(self, credentials: Credentials, natives: Sequence[str]) -> StreamTask:
        """The private stream feeding ``self.tracker``."""

    @abc.abstractmethod
    def _sender(self, req: OrderRequest, native: str) -> Send:
        """How ``req`` is sent (its parameters checked and built now)."""

    @abc.abstractmethod
    async def _cancel(self, native: str, client_order_id: str) -> RawOrder:
        """Cancel an order; the venue's answer."""

    @abc.abstractmethod
    async def _query(self, native: str, client_order_id: str) -> RawOrder:
        """Query an order; the venue's answer."""

    @abc.abstractmethod
    async def _open_orders(self, symbol: str | None) -> list[tuple[str, RawOrder]]:
        """Open orders (of ``symbol``, else of every started symbol) with their symbols."""

    @abc.abstractmethod
    async def withdrawal_terms(self, asset: str, network: str) -> WithdrawalTerms:
        """Fee, minimum (of the amount received) and step of a withdrawal."""

    @abc.abstractmethod
    async def deposit_address(self, asset: str, network: str) -> str:
        """This account's deposit address for ``asset`` on ``network``."""

    @abc.abstractmethod
    async def fetch_deposits(self, asset: str | None, since_ns: int) -> list[Deposit]:
        """Deposits since ``since_ns`` (credited or on their way)."""

    @abc.abstractmethod
    async def _send_withdrawal(self, req: WithdrawRequest, amount: Decimal) -> str:
        """Send a withdrawal whose venue ``amount`` includes the fee; the venue's id."""

    @abc.abstractmethod
    async def _withdrawals(self, asset: str | None, client_id: str) -> list[Transfer]:
        """Recent withdrawals (of ``asset``, else all) as the venue reports them; a venue
        that can look one up by our id (``client_id``) may list only that one."""

    # ---------------------------------------------------------------- lifecycle
    def new_backoff(self) -> Backoff:
        """Reconnect delays of one stream."""
        return Backoff(base_s=self.backoff_base_s, seed=self.backoff_seed)

    def _streams(self) -> list[StreamTask]:
        """The streams, in the order they start and stop."""
        return [s for s in (self.market, self.user) if s is not None]

    async def start(self, symbols: Sequence[str], sink: MarketSink) -> None:
        """Load the symbols' rules, connect the public (and private) streams."""
        self.tracker.on_order = sink.on_order
        natives = [self.codec.to_native(s) for s in symbols]
        infos = {i.native_symbol: i for i in await self._symbol_infos(natives)}
        for symbol, native in zip(symbols, natives, strict=True):
            info = infos.get(native)
            if info is None:
                raise InvalidSymbol(f"{symbol} ({native}) is not listed", venue=self.name)
            inst = info.to_instrument(self.name)
            self.table.add(symbol, native, inst)
            if self.recorder is not None:
                self.recorder.instrument(inst)
        self.market = MarketStream(
            self._dialect(),
            lambda: self.rest.transport.session,
            self.table.books,
            venue=self.name,
            on_book=lambda native, book: sink.on_book(self.name, book),
            on_trade=self._trade_handler(sink),
            on_update=self._update_handler(sink),
            clock=self.clock.now_ns,
            backoff=self.new_backoff(),
            ping_interval_s=self.ping_interval_s,
        )
        if self.credentials is not None:
            self.user = self._user_stream(self.credentials, natives)
        for stream in self._streams():
            stream.start()
            await stream.wait_ready(self.ready_timeout_s)
        if self.probe_interval_s > 0:
            await self.probe()
            self._probe_task = asyncio.create_task(self._probe_forever(), name=f"{self.name}-probe")

    async def probe(self) -> None:
        """Ask the venue for its server time: REST answers or not, and the skew of its
        clock against ours (the server time minus the midpoint of the request)."""
        t0 = self.clock.now_ns()
        limit = min(self.timeout_s, max(1.0, self.probe_interval_s))
        try:
            server_ms = await asyncio.wait_for(self.rest.server_time(), limit)
        except Exception as exc:  # any failure is REST not answering, never the venue's end
            reason = str(exc) if isinstance(exc, VenueError) and str(exc) else type(exc).__name__
            if self.rest_ok is not False:
                log.warning(
                    "%s REST API not answering (%s)", self.name, reason,
                    extra={"venue": self.name, "event": "rest_down"},
                )  # fmt: skip
            self.rest_ok, self.rest_error = False, reason
            return
        t1 = self.clock.now_ns()
        if self.rest_ok is False:
            log.info(
                "%s REST API answers again", self.name,
                extra={"venue": self.name, "event": "rest_up"},
            )  # fmt: skip
        self.rest_ok, self.rest_error = True, ""
        self.clock_skew_ms = server_ms - (t0 + t1) / 2 / 1e6

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval_s)
            await self.probe()

    def _update_handler(self, sink: MarketSink) -> Callable[[BookUpdate], None] | None:
        """Who sees each book update before it is applied: the recorder, and a sink that
        sequences by it (the paper venue)."""
        hooks: list[Callable[[BookUpdate], None]] = []
        if self.recorder is not None:
            recorder = self.recorder
            hooks.append(lambda u: recorder.update(self.name, u))
        if isinstance(sink, UpdateSink):
            hooks.append(lambda u: sink.before_update(self.name, u))
        if not hooks:
            return None

        def each(update: BookUpdate) -> None:
            for hook in hooks:
                hook(update)

        return each

    def _trade_handler(self, sink: MarketSink) -> Callable[[Trade], None]:
        recorder = self.recorder
        if recorder is None:
            return lambda trade: sink.on_trade(self.name, trade)

        def both(trade: Trade) -> None:
            recorder.trade(self.name, trade)
            sink.on_trade(self.name, trade)

        return both

    async def stop(self) -> None:
        """Close the streams and the HTTP session."""
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._probe_task
            self._probe_task = None
        for stream in self._streams():
            await stream.stop()
        await self.rest.close()

    # ---------------------------------------------------------------- data
    def health(self) -> VenueHealth:
        market = self.market is not None and self.market.up
        private = self.credentials is None or (self.user is not None and self.user.up)
        rest = self.rest_ok is not False
        down = [n for n, ok in (("market stream", market), ("private stream", private)) if not ok]
        if not rest:
            down.append(f"REST ({self.rest_error})")
        return VenueHealth(
            market=market,
            private=private,
            detail=", ".join(down),
            rest=rest,
            clock_skew_ms=self.clock_skew_ms,
            reconnects=sum(s.losses for s in self._streams()),
            resyncs=self.market.resyncs if self.market is not None else 0,
        )

    def describe(self) -> dict[str, str | float]:
        return {
            "kind": "live" if self.credentials is not None else "feed",
            "exchange": self.codec.exchange,
            "rest_url": self.rest_url,
            "ws_url": self.ws_url,
            "latency": "real",
            "rules": "real",
            "queue": "real",
        }

    def instrument(self, symbol: str) -> Instrument:
        return self.table.instrument(symbol)

    def book(self, symbol: str) -> OrderBook:
        return self.table.book(symbol)

    # ---------------------------------------------------------------- orders
    async def place_order(self, req: OrderRequest) -> Order:
        native = self.table.native(req.symbol)
        if not req.client_order_id:
            raise ValueError("place_order needs a client_order_id")
        order = await place_tracked(
            self.tracker, req, self._sender(req, native),
            settle=req.tif in _SETTLING or req.order_type is OrderType.MARKET,
            settle_timeout_s=self.settle_timeout_s,
        )  # fmt: skip
        if order is not None:
            return order
        try:
            return await self.fetch_order(req.symbol, req.client_order_id)
        except MalformedMessage as exc:
            # the order was sent and may live: never let an unreadable answer read as a
            # rejection
            raise order_answer_error(exc) from exc

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        native = self.table.native(symbol)
        raw = await self._cancel(native, client_order_id)
        try:
            return await self._reconcile(symbol, native, raw, client_order_id)
        except MalformedMessage as exc:
            # the cancel reached the venue: what it did is unknown until the order is queried
            raise order_answer_error(exc) from exc

    async def fetch_order(self, symbol: str, client_order_id: str) -> Order:
        native = self.table.native(symbol)
        raw = await self._query(native, client_order_id)
        return await self._reconcile(symbol, native, raw, client_order_id)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        out: list[Order] = []
        for sym, raw in await self._open_orders(symbol):
            remote = self.codec.to_order(raw, sym, ts_local=self.clock.now_ns(), venue=self.name)
            tracked = self.tracker.get(remote.client_order_id)
            out.append(tracked.snapshot() if tracked else remote)
        return out

    def _order_id(self, client_order_id: str) -> str | None:
        """The venue's id of a tracked order, once known."""
        tracked = self.tracker.get(client_order_id)
        return tracked.order_id if tracked is not None and tracked.order_id else None

    async def _reconcile(
        self, symbol: str, native: str, raw: RawOrder, client_order_id: str
    ) -> Order:
        now = self.clock.now_ns()
        remote = self.codec.to_order(raw, symbol, ts_local=now, venue=self.name)

        async def fills() -> list[Fill]:
            trades = await self.rest.my_trades(native, order_id=remote.order_id)
            to_fill = self.codec.to_fill
            converted = (
                to_fill(t, symbol, client_order_id, ts_local=now, venue=self.name) for t in trades
            )
            return [f for f in converted if f.order_id == remote.order_id]

        return await reconcile_remote(self.tracker, remote, client_order_id, fills)

    # ---------------------------------------------------------------- transfers
    def check_withdrawal(self, asset: str, network: str, address: str | None = None) -> None:
        """Refuse locally, before any request, what the config does not allow
        (:class:`~exchanges.live.transfers.WithdrawPolicy`)."""
        self.withdraw_policy.permit(self.name, asset, network, address)

    async def withdraw(self, req: WithdrawRequest) -> Transfer:
        """Withdraw ``req.amount`` to ``req.address`` (the account pays ``amount + fee``).

        Refused locally, before any request, unless the config allows withdrawals and
        lists the address (:class:`~exchanges.live.transfers.WithdrawPolicy`). A client id
        already used is not sent again: the venue's history is asked first and its record
        returned (also after a restart), and an id this process sent without a known
        outcome that the venue does not list is :class:`OutcomeUnknown` again. A lost answer (5xx,
        timeout, broken connection, unreadable body) is :class:`OutcomeUnknown`; then
        :meth:`fetch_withdrawal` finds the withdrawal by ``req.client_id``.
        """
        self.withdraw_policy.check(req, self.name)
        # the venue's history first: a withdrawal with this id (sent by this process, or
        # before a restart) is returned, never sent again
        found = await self._find_withdrawal(req.client_id, req.asset)
        if found is not None:
            return found
        earlier = self.withdrawal_log.seen(req.client_id)
        if earlier is not None:
            raise OutcomeUnknown(
                f"withdrawal {req.client_id} was sent before ({earlier}) and the venue does "
                "not list it: not sent again (ask fetch_withdrawal, or use a new client id)",
                code="withdrawal_unresolved",
                venue=self.name,
            )
        terms = await self.withdrawal_terms(req.asset, req.network)
        if not terms.enabled:
            raise InvalidOrder(
                f"withdrawals of {req.asset} on {req.network} are suspended by the venue",
                code="withdraw_disabled",
                venue=self.name,
            )
        self.withdrawal_log.sending(req)
        try:
            venue_id = await self._send_withdrawal(req, req.amount + terms.fee)
        except MalformedMessage as exc:
            self.withdrawal_log.unknown(req.client_id)
            raise order_answer_error(exc) from exc
        except OutcomeUnknown:
            self.withdrawal_log.unknown(req.client_id)
            raise
        except VenueError:
            # refused, or never left this host: nothing was created
            self.withdrawal_log.refused(req.client_id)
            raise
        except BaseException:
            # cancelled while the request was on its way: the venue may have it
            self.withdrawal_log.unknown(req.client_id)
            raise
        self.withdrawal_log.acknowledged(req.client_id)
        now = self.clock.now_ns()
        log.info(
            "%s withdrawal %s accepted (id %s): %s %s on %s to %s, fee %s",
            self.name, req.client_id, venue_id, req.amount, req.asset, req.network,
            req.address, terms.fee, extra={"venue": self.name, "event": "withdrawal"},
        )  # fmt: skip
        return Transfer(
            client_id=req.client_id,
            venue=self.name,
            asset=req.asset,
            amount=req.amount,
            fee=terms.fee,
            network=req.network,
            address=req.address,
            status=TransferStatus.PENDING,
            ts_requested=now,
            ts_updated=now,
            venue_id=venue_id,
            memo=req.memo,
        )

    async def fetch_withdrawal(self, client_id: str) -> Transfer:
        """The withdrawal with our ``client_id`` as the venue reports it now
        (:class:`OrderNotFound` when the venue does not list it)."""
        found = await self._find_withdrawal(client_id, self.withdrawal_log.asset_of(client_id))
        if found is None:
            raise OrderNotFound(
                f"no withdrawal with client id {client_id} in the venue's history",
                venue=self.name,
            )
        return found

    async def _find_withdrawal(self, client_id: str, asset: str | None) -> Transfer | None:
        for transfer in await self._withdrawals(asset, client_id):
            if transfer.client_id == client_id:
                return transfer
        return None

    # ---------------------------------------------------------------- pushes
    def _on_push_fill(
        self, order_id: str, client_order_id: str, to_fill: Callable[[Order], Fill]
    ) -> None:
        """Apply a pushed fill (``to_fill`` of the tracked order); not one of ours: ignored."""
        cid = self.tracker.client_id(order_id, client_order_id)
        if cid is not None:
            self.tracker.fill(cid, to_fill(self.tracker.orders[cid]))
