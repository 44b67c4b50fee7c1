"""Gate.io WebSocket clients (PROTOCOLS.md B5, B7).

* :class:`GateMarketDialect` plugs Gate into :class:`exchanges.live.stream.MarketStream`:
  book frames (+ ``spot.trades``) decoded by :func:`exchanges.gateio.ws.decode`,
  ``spot.ping`` keep-alive, ``event: upgrade`` -> reconnect. Two book channels
  (:data:`BOOK_CHANNELS`):

  - ``order_book_update``: ``spot.order_book_update`` diffs synced with REST
    ``order_book?with_id=true`` snapshots;
  - ``obu``: ``spot.obu`` (``ob.PAIR.50|400``), no REST snapshot: full pushes replace the
    book, an incremental applies only when ``U == local + 1``, anything else is answered by
    unsubscribe + subscribe (the venue then pushes a full book again).
* :class:`GateUserStream`: ``spot.orders`` / ``spot.usertrades`` / ``spot.balances`` with
  per-request auth (``SIGN`` over ``channel=..&event=..&time=..``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Literal

import aiohttp
import msgspec

from arbsim.core.errors import AuthError, MalformedMessage, NetworkError
from arbsim.core.model import Side, Trade
from exchanges.gateio import booksync, signing, ws
from exchanges.gateio.rest import GateRestClient
from exchanges.live.booksync import BookSnapshot, DiffBookSync
from exchanges.live.credentials import Credentials
from exchanges.live.stream import (
    Ack,
    Backoff,
    DiffEvent,
    ReconnectEvent,
    Refused,
    StreamEvent,
    StreamTask,
    SubscriptionRefused,
    TradeEvent,
)

__all__ = [
    "BOOK_CHANNELS",
    "TRADE_SIDES",
    "BookChannel",
    "BookChannelName",
    "GateMarketDialect",
    "GateUserStream",
]

log = logging.getLogger(__name__)

TRADE_SIDES: dict[str, Side] = {"buy": Side.BUY, "sell": Side.SELL}
BookChannelName = Literal["order_book_update", "obu"]


class BookChannel(msgspec.Struct, frozen=True, kw_only=True):
    """How one Gate book channel is synced (the differences as data).

    Attributes
    ----------
    channel:
        WebSocket channel name.
    rest_snapshot:
        Books start from (and resync with) a REST ``with_id`` snapshot; otherwise from the
        channel's own ``full`` pushes, and a resync is an unsubscribe + subscribe.
    """

    channel: str
    rest_snapshot: bool


BOOK_CHANNELS: dict[BookChannelName, BookChannel] = {
    "order_book_update": BookChannel(channel="spot.order_book_update", rest_snapshot=True),
    "obu": BookChannel(channel="spot.obu", rest_snapshot=False),
}
"""``book_channel`` option -> channel and sync style (PROTOCOLS B5)."""

TRADES_CHANNEL = "spot.trades"
PRIVATE_CHANNELS = ("spot.orders", "spot.usertrades", "spot.balances")
_AUTH_FAILED = 4


def _topic(channel: str, pair: str = "") -> str:
    return f"{channel}:{pair}" if pair else channel


def public_trade(result: ws.Trade, symbols: Mapping[str, str], ts_local: int) -> Trade:
    """A ``spot.trades`` result as an arbsim :class:`Trade`.

    Raises
    ------
    MalformedMessage
        The price, amount or time is not a usable number.
    """
    pair = result.currency_pair
    try:
        price, size = float(result.price), float(result.amount)
    except ValueError:
        price = size = math.nan
    if not (0.0 < price < math.inf and 0.0 < size < math.inf):
        raise MalformedMessage(
            f"trade price {result.price[:40]!r} / amount {result.amount[:40]!r} unusable",
            venue="gateio",
            channel=TRADES_CHANNEL,
            symbol=pair,
        )
    try:
        ts_exchange = ws.ms_to_ns(result.create_time_ms)
    except MalformedMessage as exc:
        exc.channel, exc.symbol = TRADES_CHANNEL, pair
        raise
    return Trade(
        venue="gateio",
        symbol=symbols.get(pair, pair),
        ts_exchange=ts_exchange,
        ts_local=ts_local,
        trade_id=result.id,
        side=TRADE_SIDES.get(result.side, Side.BUY),
        price=price,
        size=size,
    )


class GateMarketDialect:
    """Gate's public stream for :class:`exchanges.live.stream.MarketStream`.

    Parameters
    ----------
    rest:
        For the ``with_id`` snapshots.
    symbols:
        Native -> unified symbol (``"BTC_USDT"`` -> ``"BTC/USDT"``).
    url:
        ``wss://api.gateio.ws/ws/v4/`` by default.
    interval:
        ``spot.order_book_update`` speed (``100ms`` or ``1000ms``).
    depth_limit:
        Levels of the REST snapshot.
    trades:
        Also subscribe to ``spot.trades``.
    book_channel:
        ``"order_book_update"`` (default) or ``"obu"`` (:data:`BOOK_CHANNELS`).
    obu_depth:
        ``spot.obu`` depth, 50 or 400.
    """

    def __init__(
        self,
        rest: GateRestClient,
        symbols: Mapping[str, str],
        *,
        url: str = ws.URL,
        interval: str = "100ms",
        depth_limit: int = 100,
        trades: bool = True,
        book_channel: BookChannelName = "order_book_update",
        obu_depth: int = 400,
    ) -> None:
        self.rest = rest
        self.symbols = dict(symbols)
        self.url = url
        self.interval = interval
        self.depth_limit = depth_limit
        self.trades = trades
        self.book = BOOK_CHANNELS[book_channel]
        self.obu_depth = obu_depth
        ws.obu_stream("X", obu_depth)  # refuse a depth the venue does not serve, now
        self._by_id: dict[int, str] = {}
        self._unacked: list[str] = []
        self._next_id = 1

    @property
    def rest_snapshot(self) -> bool:
        """Whether books are synced with REST snapshots (else: resubscribe)."""
        return self.book.rest_snapshot

    def _book_payload(self, native: str) -> list[str]:
        if self.book.rest_snapshot:
            return [native, self.interval]
        return [ws.obu_stream(native, self.obu_depth)]

    def _request(self, channel: str, payload: list[str], now_s: int, *, event: str) -> str:
        # Gate's reply names the channel, not the payload: one request per (channel, pair)
        # with the request id tying reply to topic.
        request_id = self._next_id
        self._next_id += 1
        build = ws.subscribe_request if event == "subscribe" else ws.unsubscribe_request
        if event == "subscribe":
            topic = _topic(channel, payload[0])
            self._by_id[request_id] = topic
            self._unacked.append(topic)
        return build(channel, payload, now_s, request_id=request_id).decode()

    def subscribe_frames(self, natives: Sequence[str], now_s: int) -> list[tuple[str, str]]:
        self._by_id = {}
        self._unacked = []
        self._next_id = 1
        frames: list[tuple[str, str]] = []
        for native in natives:
            payload = self._book_payload(native)
            frames.append(
                (
                    _topic(self.book.channel, payload[0]),
                    self._request(self.book.channel, payload, now_s, event="subscribe"),
                )
            )
            if self.trades:
                frames.append(
                    (
                        _topic(TRADES_CHANNEL, native),
                        self._request(TRADES_CHANNEL, [native], now_s, event="subscribe"),
                    )
                )
        return frames

    def resubscribe_frames(self, native: str, now_s: int) -> list[str]:
        """Unsubscribe + subscribe of one pair's book (the ``spot.obu`` resync)."""
        payload = self._book_payload(native)
        return [
            self._request(self.book.channel, payload, now_s, event="unsubscribe"),
            self._request(self.book.channel, payload, now_s, event="subscribe"),
        ]

    def _reply_topic(self, reply: ws.SubscriptionReply) -> str:
        topic = self._by_id.get(reply.id or 0)
        if topic is None:
            # A reply without our id: the oldest unanswered request on that channel.
            prefix = reply.channel + ":"
            topic = next((t for t in self._unacked if t.startswith(prefix)), reply.channel)
        if topic in self._unacked:
            self._unacked.remove(topic)
        return topic

    def ping_frame(self, now_s: int) -> str:
        return ws.ping_request(now_s).decode()

    def parse(self, data: str | bytes, ts_local: int) -> list[StreamEvent]:
        """Events of one JSON frame.

        Raises
        ------
        MalformedMessage
            The frame cannot be decoded, or a book or trade push carries unusable values.
        """
        msg = ws.decode(data)
        if isinstance(msg, ws.SubscriptionReply):
            if msg.event != "subscribe":
                return []
            topic = self._reply_topic(msg)
            if msg.ok:
                return [Ack(topic)]
            return [Refused(topic, msg.error.message if msg.error else "not subscribed")]
        if isinstance(msg, ws.Push):
            result = msg.result
            if isinstance(result, ws.OrderBookUpdate):
                return [DiffEvent(result.symbol, booksync.diff_from_push(result), msg.channel)]
            if isinstance(result, ws.Obu):
                try:
                    pair, _depth = ws.parse_obu_stream(result.stream)
                except ValueError:
                    raise MalformedMessage(
                        f"spot.obu push for stream {result.stream[:60]!r}",
                        venue="gateio",
                        channel=msg.channel,
                    ) from None
                return [DiffEvent(pair, booksync.diff_from_push(result), msg.channel)]
            if isinstance(result, ws.Trade):
                return [TradeEvent(public_trade(result, self.symbols, ts_local))]
            return []
        if msg.event == "upgrade":
            return [ReconnectEvent("event: upgrade")]
        return []

    def new_sync(self, native: str, tick: Decimal | None = None) -> DiffBookSync:
        if self.book.rest_snapshot:
            return booksync.new_order_book_update_sync(native, tick)
        return booksync.new_obu_sync(ws.obu_stream(native, self.obu_depth), tick)

    async def snapshot(self, native: str) -> BookSnapshot:
        return booksync.snapshot_from_rest(await self.rest.order_book(native, self.depth_limit))


# --------------------------------------------------------------------------------------------
# Private stream
# --------------------------------------------------------------------------------------------


class GateUserStream(StreamTask):
    """Gate private channels with per-request auth.

    Parameters
    ----------
    session:
        Returns the venue's ``aiohttp.ClientSession``.
    credentials:
        Key and secret for the ``auth`` block.
    pairs:
        Native pairs for ``spot.orders`` / ``spot.usertrades`` (``["!all"]`` when empty).
    on_order, on_trade, on_balance:
        Called with each pushed item and the local receive time (ns).
    """

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        credentials: Credentials,
        pairs: Sequence[str],
        *,
        on_order: Callable[[ws.GateOrder, int], None],
        on_trade: Callable[[ws.GateTrade, int], None],
        on_balance: Callable[[ws.Balance, int], None] | None = None,
        url: str = ws.URL,
        ping_interval_s: float = 15.0,
        backoff: Backoff | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._session = session
        self.credentials = credentials
        self.pairs = list(pairs) or ["!all"]
        self.on_order = on_order
        self.on_trade = on_trade
        self.on_balance = on_balance
        self.url = url
        self.clock = clock
        self.connections = 0
        self._init_task(
            "gateio", "private stream", backoff=backoff, ping_interval_s=ping_interval_s
        )

    def subscribe_frames(self, now_s: int) -> list[bytes]:
        """The three signed subscription requests."""
        frames = []
        for channel in PRIVATE_CHANNELS:
            payload = [] if channel == "spot.balances" else list(self.pairs)
            auth = {
                "method": "api_key",
                "KEY": self.credentials.api_key,
                "SIGN": signing.sign_channel_auth(
                    self.credentials.api_secret, channel, "subscribe", now_s
                ),
            }
            frames.append(ws.subscribe_request(channel, payload, now_s, auth=auth))
        return frames

    async def run(self) -> None:
        """Connect, subscribe and dispatch; reconnect with backoff on any loss."""
        await self._reconnect_forever(self._connection, fatal=(SubscriptionRefused, AuthError))

    async def _connection(self) -> None:
        async with self._session().ws_connect(self.url) as conn:
            self._ws = conn
            self.connections += 1
            pending = set(PRIVATE_CHANNELS)
            for frame in self.subscribe_frames(self._now_s()):
                await conn.send_str(frame.decode())
            pinger = asyncio.create_task(
                self._pinger(conn, lambda: ws.ping_request(self._now_s()).decode())
            )
            try:
                async for msg in conn:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        self._on_frame(msg.data, pending)
                    elif msg.type is aiohttp.WSMsgType.ERROR:
                        break
            finally:
                pinger.cancel()
                self._ws = None

    def _on_frame(self, data: str, pending: set[str]) -> None:
        """Handle one frame. A push that cannot be decoded or applied is counted and
        dropped (the order tracker and REST reconciliation stay the truth); a refused
        subscription or the venue's request to reconnect raise."""
        ts_local = self.clock()
        try:
            msg = ws.decode(data)
        except MalformedMessage as exc:
            self.malformed.record(exc)
            return
        if isinstance(msg, ws.SubscriptionReply):
            if msg.event != "subscribe" or msg.channel not in pending:
                return
            if not msg.ok:
                error = msg.error
                cls = AuthError if error and error.code == _AUTH_FAILED else SubscriptionRefused
                raise cls(
                    f"{msg.channel}: {error.message if error else 'not subscribed'}",
                    code=str(error.code) if error else None,
                    venue="gateio",
                )
            pending.discard(msg.channel)
            if not pending:
                self._usable()
            return
        if isinstance(msg, ws.Push):
            if msg.channel in PRIVATE_CHANNELS:  # a public push here is not ours to read
                for item in msg.result:
                    self._dispatch(msg.channel, item, ts_local)
        elif msg.event == "upgrade":
            raise NetworkError("venue asked to reconnect (upgrade)", venue="gateio")

    def _dispatch(self, channel: str, item: object, ts_local: int) -> None:
        """Hand one pushed item on; an item that cannot be applied is counted, the
        others of the push still go through."""
        try:
            if isinstance(item, ws.GateOrder):
                self.on_order(item, ts_local)
            elif isinstance(item, ws.GateTrade):
                self.on_trade(item, ts_local)
            elif isinstance(item, ws.Balance) and self.on_balance is not None:
                self.on_balance(item, ts_local)
        except Exception as exc:  # counted; a handler bug must not end the stream
            self.malformed.record_push_failure(exc, channel)

    def _now_s(self) -> int:
        return int(self.clock() // 1_000_000_000)
