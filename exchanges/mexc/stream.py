"""MEXC WebSocket clients (PROTOCOLS.md A5-A7).

* :class:`MexcMarketDialect` plugs MEXC into :class:`exchanges.live.stream.MarketStream`: topics
  ``aggre.depth`` (+ ``aggre.deals``), JSON control frames checked topic by topic (MEXC
  answers ``code 0`` even for a "Blocked!" refusal), binary protobuf data frames decoded by
  :func:`exchanges.mexc.push.decode_push`, books synced with REST ``/api/v3/depth``.
* :class:`MexcUserStream`: the private stream and its listenKey lifecycle: create, keep
  alive (every 30 min by default), re-create on "Invalid listen key" or a failed keep-alive,
  delete on stop; protobuf private orders / deals / account channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

import aiohttp

from arbsim.core.errors import AuthError, MalformedMessage, VenueError
from arbsim.core.model import Side, Trade
from arbsim.core.redact import register_secret
from exchanges.live.booksync import BookSnapshot, DiffBookSync
from exchanges.live.stream import (
    Ack,
    Backoff,
    DiffEvent,
    Refused,
    StreamEvent,
    StreamTask,
    SubscriptionRefused,
    TradeEvent,
)
from exchanges.mexc import booksync, ws
from exchanges.mexc.push import (
    AggreDeal,
    AggreDeals,
    AggreDepth,
    PrivateAccount,
    PrivateDeal,
    PrivateOrder,
    decode_push,
)
from exchanges.mexc.rest import MexcRestClient

__all__ = ["TRADE_SIDES", "MexcMarketDialect", "MexcUserStream", "parse_control"]

log = logging.getLogger(__name__)

TRADE_SIDES: dict[int, Side] = {1: Side.BUY, 2: Side.SELL}
"""``tradeType`` -> aggressor side."""

_MS = 1_000_000


def _native(frame: AggreDepth | AggreDeals) -> str:
    return frame.symbol or frame.channel.rsplit("@", 1)[-1]


def _trade(deal: AggreDeal, frame: AggreDeals, symbol: str, ts_local: int) -> Trade:
    """One public trade; a price or quantity that is not a positive number is malformed."""
    try:
        price, size = float(deal.price), float(deal.quantity)
    except ValueError:
        price = size = math.nan
    if not (0.0 < price < math.inf and 0.0 < size < math.inf):
        raise MalformedMessage(
            f"trade price {deal.price[:40]!r} / quantity {deal.quantity[:40]!r} unusable",
            venue="mexc",
            channel=frame.channel,
            symbol=_native(frame),
        )
    trade_id = deal.trade_id
    return Trade(
        venue="mexc",
        symbol=symbol,
        ts_exchange=deal.time * _MS,
        ts_local=ts_local,
        trade_id=int(trade_id) if trade_id.isascii() and trade_id.isdigit() else 0,
        side=TRADE_SIDES.get(deal.trade_type, Side.BUY),
        price=price,
        size=size,
    )


def parse_control(frame: str | bytes, topics: Sequence[str]) -> list[StreamEvent]:
    """A JSON control reply as :class:`Ack` / :class:`Refused` events for ``topics``.

    Raises
    ------
    MalformedMessage
        The frame is not a control reply.
    """
    reply = ws.decode_control(frame)
    events: list[StreamEvent] = []
    for topic in topics:
        result = ws.subscription_result(reply, topic)
        if result == "ack":
            events.append(Ack(topic))
        elif result == "refused":
            events.append(Refused(topic, reply.msg))
    return events


class MexcMarketDialect:
    """MEXC's public stream for :class:`exchanges.live.stream.MarketStream`.

    Parameters
    ----------
    rest:
        For the depth snapshots.
    symbols:
        Native -> unified symbol (``"BTCUSDT"`` -> ``"BTC/USDT"``).
    url:
        ``wss://wbs-api.mexc.com/ws`` by default.
    interval:
        ``100ms`` or ``10ms``.
    depth_limit:
        Levels of the REST snapshot (MEXC allows up to 5000).
    trades:
        Also subscribe to ``aggre.deals``.
    """

    def __init__(
        self,
        rest: MexcRestClient,
        symbols: Mapping[str, str],
        *,
        url: str = ws.MARKET_URL,
        interval: str = "100ms",
        depth_limit: int = 5000,
        trades: bool = True,
    ) -> None:
        self.rest = rest
        self.symbols = dict(symbols)
        self.url = url
        self.interval = interval
        self.depth_limit = depth_limit
        self.trades = trades
        self._topics: list[str] = []

    def subscribe_frames(self, natives: Sequence[str], now_s: int) -> list[tuple[str, str]]:
        kinds = [ws.TopicKind.AGGRE_DEPTH] + ([ws.TopicKind.AGGRE_DEALS] if self.trades else [])
        self._topics = [ws.topic(k, n, interval=self.interval) for n in natives for k in kinds]
        # One topic per request: each answer names exactly one topic.
        return [(t, ws.subscribe_frame([t]).decode()) for t in self._topics]

    @property
    def rest_snapshot(self) -> bool:
        """MEXC's aggre.depth is diffs only: books start from the REST depth snapshot."""
        return True

    def resubscribe_frames(self, native: str, now_s: int) -> list[str]:
        depth = ws.topic(ws.TopicKind.AGGRE_DEPTH, native, interval=self.interval)
        return [ws.unsubscribe_frame([depth]).decode(), ws.subscribe_frame([depth]).decode()]

    def ping_frame(self, now_s: int) -> str:
        return ws.ping_frame().decode()

    def parse(self, data: str | bytes, ts_local: int) -> list[StreamEvent]:
        """Events of one frame (JSON text: control replies; binary: protobuf pushes).

        Raises
        ------
        MalformedMessage
            The frame cannot be decoded, or a depth / trade frame carries unusable values.
        """
        if isinstance(data, str) or data[:1] == b"{":
            # control replies are JSON, whichever frame type carries them
            return parse_control(data, self._topics)
        frame = decode_push(data)
        if isinstance(frame, AggreDepth):
            native = _native(frame)
            if not frame.to_version:
                raise MalformedMessage(
                    "depth frame without versions", venue="mexc", channel=frame.channel,
                    symbol=native,
                )  # fmt: skip
            return [DiffEvent(native, booksync.diff_from_aggre_depth(frame), frame.channel)]
        if isinstance(frame, AggreDeals):
            native = _native(frame)
            symbol = self.symbols.get(native, native)
            return [TradeEvent(_trade(d, frame, symbol, ts_local)) for d in frame.deals]
        return []

    def new_sync(self, native: str, tick: Decimal | None = None) -> DiffBookSync:
        return booksync.new_book_sync(native, tick)

    async def snapshot(self, native: str) -> BookSnapshot:
        return booksync.snapshot_from_depth(await self.rest.depth(native, self.depth_limit))


# --------------------------------------------------------------------------------------------
# Private stream
# --------------------------------------------------------------------------------------------

PRIVATE_TOPICS = (
    ws.topic(ws.TopicKind.PRIVATE_ORDERS),
    ws.topic(ws.TopicKind.PRIVATE_DEALS),
    ws.topic(ws.TopicKind.PRIVATE_ACCOUNT),
)


class MexcUserStream(StreamTask):
    """MEXC private stream with its listenKey lifecycle.

    Parameters
    ----------
    rest:
        Signed client (listenKey create / keep-alive / delete).
    on_order, on_deal, on_account:
        Called with each decoded private push and the local receive time (ns).
    url:
        Private endpoint template with ``{listen_key}``.
    keepalive_interval_s:
        PUT period (MEXC: keys live 60 min, 30 min recommended).
    ping_interval_s:
        Application PING period.
    backoff, clock:
        Injectable reconnect delays and wall clock (ns).
    """

    def __init__(
        self,
        rest: MexcRestClient,
        *,
        on_order: Callable[[PrivateOrder, int], None],
        on_deal: Callable[[PrivateDeal, int], None],
        on_account: Callable[[PrivateAccount, int], None] | None = None,
        url: str = ws.PRIVATE_URL,
        keepalive_interval_s: float = 30 * 60,
        ping_interval_s: float = 15.0,
        backoff: Backoff | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.rest = rest
        self.on_order = on_order
        self.on_deal = on_deal
        self.on_account = on_account
        self.url = url
        self.keepalive_interval_s = keepalive_interval_s
        self.clock = clock
        self.listen_key: str | None = None
        self.keys_created = 0
        self.keepalives = 0
        self.connections = 0
        self._init_task("mexc", "private stream", backoff=backoff, ping_interval_s=ping_interval_s)

    async def stop(self) -> None:
        """End the task and delete the listenKey."""
        await super().stop()
        if self.listen_key is not None:
            with contextlib.suppress(VenueError):
                await self.rest.delete_listen_key(self.listen_key)
            self.listen_key = None

    async def run(self) -> None:
        """Create a key, connect, subscribe, keep alive; reconnect on any loss."""
        await self._reconnect_forever(self._connection, fatal=(SubscriptionRefused,))

    async def _connection(self) -> None:
        if self.listen_key is None:
            self.listen_key = await self.rest.create_listen_key()
            register_secret(self.listen_key)  # it is in the private stream's URL
            self.keys_created += 1
        listen_key = self.listen_key
        try:
            await self._listen(listen_key)
        except AuthError:
            # Invalid listen key (or a refused keep-alive): make a new one.
            self.listen_key = None
            raise

    async def _listen(self, listen_key: str) -> None:
        url = self.url.format(listen_key=listen_key)
        async with self.rest.transport.session.ws_connect(url) as conn:
            self._ws = conn
            self.connections += 1
            pending = set(PRIVATE_TOPICS)
            for topic in PRIVATE_TOPICS:
                await conn.send_str(ws.subscribe_frame([topic]).decode())
            keepalive = asyncio.create_task(self._keepalive(listen_key, conn))
            pinger = asyncio.create_task(self._pinger(conn, lambda: ws.ping_frame().decode()))
            try:
                async for msg in conn:
                    if msg.type is aiohttp.WSMsgType.BINARY:
                        self._on_push(msg.data)
                    elif msg.type is aiohttp.WSMsgType.TEXT:
                        self._on_text(msg.data, pending)
                    elif msg.type is aiohttp.WSMsgType.ERROR:
                        break
            finally:
                keepalive.cancel()
                pinger.cancel()
                self._ws = None

    def _on_text(self, data: str, pending: set[str]) -> None:
        if ws.is_invalid_listen_key(data):
            raise AuthError("Invalid listen key", code="invalid_listen_key", venue="mexc")
        try:
            events = parse_control(data, list(pending))
        except MalformedMessage as exc:
            self.malformed.record(exc)
            return
        for event in events:
            if isinstance(event, Refused):
                raise SubscriptionRefused(event.reason, code="refused", venue="mexc")
            if isinstance(event, Ack):
                pending.discard(event.topic)
                if not pending:
                    self._usable()

    def _on_push(self, data: bytes) -> None:
        """Decode one push and hand it on. A push that cannot be decoded or applied is
        counted and dropped: the order tracker and REST reconciliation stay the truth."""
        ts_local = self.clock()
        channel = ""
        try:
            frame = decode_push(data)
            channel = frame.channel
            if isinstance(frame, PrivateOrder):
                self.on_order(frame, ts_local)
            elif isinstance(frame, PrivateDeal):
                self.on_deal(frame, ts_local)
            elif isinstance(frame, PrivateAccount) and self.on_account is not None:
                self.on_account(frame, ts_local)
        except Exception as exc:  # counted; a handler bug must not end the stream
            self.malformed.record_push_failure(exc, channel)

    async def _keepalive(self, listen_key: str, conn: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            await asyncio.sleep(self.keepalive_interval_s)
            try:
                await self.rest.keepalive_listen_key(listen_key)
                self.keepalives += 1
            except VenueError as exc:
                log.warning("mexc: listenKey keep-alive failed (%s): new key", exc)
                self.listen_key = None
                await conn.close()
                return
