"""Malformed, stale and off-grid messages on the live adapters.

A frame that cannot be decoded or applied must never end a stream or leave a frozen book
behind: it is counted, logged once, and the book is synchronised again (``ready`` is clear
meanwhile). A stale duplicate depth frame is ignored; an off-grid price is refused; every
parse error on the adapter side is a :class:`VenueError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from decimal import Decimal

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from arbsim.core.book import OrderBook
from arbsim.core.errors import OutcomeUnknown, VenueError
from arbsim.core.model import OrderRequest, OrderStatus, Side
from exchanges.gateio import rest as gate_rest
from exchanges.gateio import ws as gate_ws
from exchanges.gateio.stream import GateMarketDialect, GateUserStream
from exchanges.gateio.venue import GateVenue
from exchanges.live.booksync import BookSnapshot
from exchanges.live.credentials import Credentials
from exchanges.live.stream import MarketStream
from exchanges.mexc import rest as mexc_rest
from exchanges.mexc import ws as mexc_ws
from exchanges.mexc.pb.mexc_push_pb2 import PublicAggreDepthsV3Api, PushDataV3ApiWrapper
from exchanges.mexc.push import AggreDepth, PrivateDeal, encode_push
from exchanges.mexc.stream import MexcMarketDialect, MexcUserStream
from exchanges.mexc.venue import MexcVenue

TICK = Decimal("0.01")
NOWHERE = "http://127.0.0.1:9"


async def until(cond: Callable[[], bool], timeout_s: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class VenueBook:
    """The venue's side: a book with its last update id, and the frames that change it."""

    def __init__(self) -> None:
        self.version = 1000
        self.bids: dict[str, str] = {"99.00": "1", "98.50": "2"}
        self.asks: dict[str, str] = {"101.00": "3", "102.50": "4"}

    def snapshot(self) -> BookSnapshot:
        return BookSnapshot(
            last_id=self.version,
            bids=list(self.bids.items()),
            asks=list(self.asks.items()),
        )

    def change(self, bids: dict[str, str], asks: dict[str, str]) -> tuple[int, int]:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, s in levels.items():
                if Decimal(s) == 0:
                    side.pop(p, None)
                else:
                    side[p] = s
        self.version += 1
        return self.version, self.version

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids = sorted(self.bids, key=Decimal, reverse=True)
        asks = sorted(self.asks, key=Decimal)
        return (
            [(float(p), float(self.bids[p])) for p in bids],
            [(float(p), float(self.asks[p])) for p in asks],
        )


def held(book: OrderBook) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    return (
        [(lv.price, lv.size) for lv in book.bids(100)],
        [(lv.price, lv.size) for lv in book.asks(100)],
    )


def no_session() -> aiohttp.ClientSession:
    raise AssertionError("these tests feed frames directly")


class MexcDialect(MexcMarketDialect):
    def __init__(self, venue: VenueBook) -> None:
        super().__init__(mexc_rest.MexcRestClient(NOWHERE), {"BTCUSDT": "BTC/USDT"})
        self.venue = venue

    async def snapshot(self, native: str) -> BookSnapshot:
        return self.venue.snapshot()


class GateDialect(GateMarketDialect):
    def __init__(self, venue: VenueBook) -> None:
        super().__init__(gate_rest.GateRestClient(NOWHERE), {"BTC_USDT": "BTC/USDT"})
        self.venue = venue

    async def snapshot(self, native: str) -> BookSnapshot:
        return self.venue.snapshot()


def mexc_frame(first: int, last: int, bids: dict[str, str], asks: dict[str, str]) -> bytes:
    return encode_push(
        AggreDepth(
            channel="spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT", symbol="BTCUSDT",
            send_time=1736411507002, from_version=first, to_version=last,
            bids=list(bids.items()), asks=list(asks.items()),
        )
    )  # fmt: skip


def gate_frame(first: int | str, last: int, bids: dict[str, str], asks: dict[str, str]) -> str:
    result = {"t": 1606294781123, "e": "depthUpdate", "E": 1606294781, "s": "BTC_USDT",
              "U": first, "u": last, "b": [list(x) for x in bids.items()],
              "a": [list(x) for x in asks.items()]}  # fmt: skip
    frame = {"time": 1606294781, "time_ms": 1606294781236, "channel": "spot.order_book_update",
             "event": "update", "result": result}  # fmt: skip
    return msgspec.json.encode(frame).decode()


class Feed:
    """A market stream fed frame by frame (no connection), subscribed and synced."""

    def __init__(self, venue_name: str) -> None:
        self.venue = VenueBook()
        self.native = "BTCUSDT" if venue_name == "mexc" else "BTC_USDT"
        self.book = OrderBook(venue_name, "BTC/USDT", TICK)
        dialect = MexcDialect(self.venue) if venue_name == "mexc" else GateDialect(self.venue)
        self.stream = MarketStream(dialect, no_session, {self.native: self.book},
                                   venue=venue_name, resync_delay_s=0.0)  # fmt: skip
        self.pending = dict(dialect.subscribe_frames([self.native], 0))
        self.name = venue_name

    async def subscribe(self) -> None:
        for topic in list(self.pending):
            if self.name == "mexc":
                ack = mexc_ws.ack_frame(topic).decode()
            else:
                channel = topic.split(":")[0]
                ack = msgspec.json.encode({"time": 1, "channel": channel, "event": "subscribe",
                                           "result": {"status": "success"}}).decode()  # fmt: skip
            self.stream._on_frame(ack, self.pending)
        await self.synced()

    async def synced(self) -> None:
        await until(lambda: self.stream.ready.is_set() and held(self.book) == self.venue.levels())

    def frame(self, first: int, last: int, bids: dict[str, str], asks: dict[str, str]) -> None:
        data: str | bytes = (
            mexc_frame(first, last, bids, asks)
            if self.name == "mexc"
            else gate_frame(first, last, bids, asks)
        )
        self.stream._on_frame(data, self.pending)

    def change(self, bids: dict[str, str], asks: dict[str, str]) -> None:
        first, last = self.venue.change(bids, asks)
        self.frame(first, last, bids, asks)


@pytest.fixture(params=["mexc", "gateio"])
async def feed(request: pytest.FixtureRequest) -> AsyncIterator[Feed]:
    f = Feed(request.param)
    await f.subscribe()
    try:
        yield f
    finally:
        f.stream._cancel_snapshots()


# --------------------------------------------------------------------------------------------
# Market streams
# --------------------------------------------------------------------------------------------


async def test_malformed_depth_frame_is_counted_and_resyncs(feed: Feed) -> None:
    feed.change({"99.10": "1"}, {})
    await feed.synced()
    # A price that is not a number: the frame can be decoded but not applied.
    feed.frame(feed.venue.version + 1, feed.venue.version + 1, {"abc": "1"}, {})
    assert not feed.stream.ready.is_set()  # down until synced again
    feed.venue.change({"99.20": "2"}, {})  # the venue moves on meanwhile
    await feed.synced()
    assert feed.stream.malformed.total == 1
    assert feed.stream.resyncs >= 1
    feed.change({"99.30": "1"}, {"101.00": "0"})
    assert held(feed.book) == feed.venue.levels()


@pytest.mark.parametrize(
    "garbage",
    [b"\x0a\xff\xff", b"\xff" * 7, "{not json", "wrong shape"],
    ids=["truncated-pb", "junk-bytes", "junk-text", "wrong-shape"],
)
async def test_undecodable_frames_never_end_the_stream(feed: Feed, garbage: str | bytes) -> None:
    if garbage == "wrong shape":
        garbage = (
            "[1]"
            if feed.name == "mexc"
            else '{"channel": "spot.order_book_update", "event": "update", "result": {}}'
        )
    feed.stream._on_frame(garbage, feed.pending)
    await feed.synced()
    assert feed.stream.malformed.total == 1
    feed.change({"99.30": "1"}, {})
    assert held(feed.book) == feed.venue.levels()


async def test_malformed_version_fields_are_malformed(feed: Feed) -> None:
    if feed.name == "mexc":
        # versions are decimal strings on the wire: send one that is not a number
        pb = PushDataV3ApiWrapper(
            channel="spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT", symbol="BTCUSDT",
            publicAggreDepths=PublicAggreDepthsV3Api(fromVersion="x", toVersion="5"),
        )  # fmt: skip
        feed.stream._on_frame(pb.SerializeToString(), feed.pending)
    else:
        feed.stream._on_frame(gate_frame("x", 5, {"99.40": "1"}, {}), feed.pending)
    await feed.synced()
    assert feed.stream.malformed.total == 1


async def test_malformed_message_is_logged_once_per_channel(
    feed: Feed, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            feed.frame(feed.venue.version + 1, feed.venue.version + 1, {"1e99999": "1"}, {})
            await feed.synced()
    assert feed.stream.malformed.total == 3
    lines = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert feed.name in lines[0].getMessage()


async def test_stale_duplicate_frame_is_ignored_not_resynced(feed: Feed) -> None:
    feed.change({"99.10": "1"}, {})
    first = feed.venue.version
    feed.change({"99.20": "1"}, {})
    feed.frame(first, first, {"99.10": "1"}, {})  # the earlier frame again
    feed.frame(first + 1, first + 1, {"99.20": "1"}, {})  # and the latest one again
    assert feed.stream.resyncs == 0 and feed.stream.stale == 2
    assert feed.stream.ready.is_set()
    feed.change({"99.30": "1"}, {})
    assert held(feed.book) == feed.venue.levels()
    # a genuine gap still resyncs
    feed.venue.change({"99.40": "1"}, {})
    feed.change({"99.50": "1"}, {})
    assert feed.stream.resyncs == 1
    await feed.synced()


async def test_off_grid_price_is_refused_and_the_book_never_crosses(feed: Feed) -> None:
    # 100.004 < 100.005 as decimals, but both round to the same 0.01 tick: a crossed book
    # on the grid the book actually holds.
    feed.frame(feed.venue.version + 1, feed.venue.version + 1, {"100.004": "1"}, {"100.005": "1"})
    assert not feed.book.is_crossed
    await feed.synced()
    assert feed.stream.malformed.total == 1
    assert not feed.book.is_crossed


# --------------------------------------------------------------------------------------------
# REST answers
# --------------------------------------------------------------------------------------------


@pytest.fixture
async def bad_rest() -> AsyncIterator[str]:
    """Answers every request with bodies that fail validation (wrong field types)."""
    bodies = {
        "/api/v3/myTrades": b'[{"symbol":"BTCUSDT","id":1,"orderId":2,"price":"1","qty":{"a":1}}]',
        "/api/v3/order": b'{"symbol":"BTCUSDT","orderId":[1]}',
        "/api/v3/depth": b'{"lastUpdateId":"x","bids":[],"asks":[]}',
        "/api/v4/spot/my_trades": b'[{"id":"1","order_id":123}]',
        "/api/v4/spot/orders": b'{"id":5,"currency_pair":"BTC_USDT"}',
        "/api/v4/spot/order_book": b'{"id":1,"bids":[["1"]],"asks":[]}',
    }

    async def handle(request: web.Request) -> web.Response:
        body = bodies.get(request.path, b"{")
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield f"http://127.0.0.1:{server.port}"


async def test_rest_answers_that_fail_validation_are_venue_errors(bad_rest: str) -> None:
    creds = Credentials("k", "s")
    mexc = mexc_rest.MexcRestClient(bad_rest, creds)
    gate = gate_rest.GateRestClient(bad_rest + "/api/v4", creds)
    try:
        for call, venue in (
            (mexc.my_trades("BTCUSDT"), "mexc"),
            (mexc.query_order("BTCUSDT", order_id="2"), "mexc"),
            (mexc.depth("BTCUSDT"), "mexc"),
            (mexc.account(), "mexc"),
            (gate.my_trades("BTC_USDT"), "gateio"),
            (gate.order_book("BTC_USDT"), "gateio"),
            (gate.accounts(), "gateio"),
        ):
            with pytest.raises(VenueError) as exc:
                await call
            assert exc.value.venue == venue
            assert str(exc.value)
    finally:
        await mexc.close()
        await gate.close()


async def test_unreadable_answer_to_an_order_request_is_outcome_unknown(bad_rest: str) -> None:
    """The order may exist: an answer that cannot be read is not a rejection."""
    creds = Credentials("k", "s")
    mexc = mexc_rest.MexcRestClient(bad_rest, creds)
    gate = gate_rest.GateRestClient(bad_rest + "/api/v4", creds)
    try:
        with pytest.raises(OutcomeUnknown):
            await mexc.place_order([("symbol", "BTCUSDT")])
        with pytest.raises(OutcomeUnknown):
            await mexc.cancel_order("BTCUSDT", order_id="1")
        with pytest.raises(OutcomeUnknown):
            await gate.place_order("BTC_USDT", b"{}")
    finally:
        await mexc.close()
        await gate.close()


# --------------------------------------------------------------------------------------------
# Private pushes
# --------------------------------------------------------------------------------------------


def _track(venue: MexcVenue | GateVenue, cid: str) -> None:
    venue.tracker.register(
        OrderRequest(
            venue=venue.name,
            symbol="BTC/USDT",
            side=Side.BUY,
            qty=Decimal("1"),
            price=Decimal("100"),
            client_order_id=cid,
        )
    )
    venue.tracker.accepted(cid, "77")


async def test_mexc_private_stream_survives_malformed_pushes() -> None:
    venue = MexcVenue(Credentials("k", "s"), rest_url=NOWHERE)
    _track(venue, "c1")
    stream = MexcUserStream(venue.rest, on_order=venue._on_push_order, on_deal=venue._on_push_deal)

    def deal(price: str, qty: str, trade_id: str) -> bytes:
        return encode_push(PrivateDeal(channel="spot@private.deals.v3.api.pb", price=price,
                                       quantity=qty, trade_id=trade_id, order_id="77",
                                       client_order_id="c1", time=1))  # fmt: skip

    stream._on_push(deal("abc", "0.1", "t1"))  # not a price
    stream._on_push(deal("100", "5", "t2"))  # more than the order's quantity
    last = stream.malformed.last
    assert last is not None and last.code == "inconsistent"
    assert last.channel == "spot@private.deals.v3.api.pb"
    stream._on_push(b"\x0a\xff")  # not protobuf
    stream._on_push(deal("100", "0.25", "t3"))  # a good one still applies
    order = venue.tracker.orders["c1"]
    assert order.filled_qty == Decimal("0.25") and order.status is OrderStatus.PARTIALLY_FILLED
    assert stream.malformed.total == 3 and stream.malformed.internal == 0

    def broken_handler(frame: object, ts_local: int) -> None:
        raise KeyError("a bug in a handler")

    stream.on_deal = broken_handler
    stream._on_push(deal("100", "0.1", "t4"))  # counted as internal, the stream goes on
    assert stream.malformed.total == 4 and stream.malformed.internal == 1
    await venue.rest.close()


async def test_gate_private_stream_survives_malformed_pushes() -> None:
    venue = GateVenue(Credentials("k", "s"), rest_url=NOWHERE)
    _track(venue, "c1")
    stream = GateUserStream(lambda: venue.rest.transport.session, Credentials("k", "s"),
                            ["BTC_USDT"], on_order=venue._on_push_order,
                            on_trade=venue._on_push_trade)  # fmt: skip

    def push(channel: str, item: Mapping[str, object]) -> str:
        frame = {"time": 1, "channel": channel, "event": "update", "result": [item]}
        return msgspec.json.encode(frame).decode()

    trade = {"id": 1, "order_id": "77", "currency_pair": "BTC_USDT", "side": "buy",
             "amount": "0.1", "price": "100", "text": "t-c1", "create_time_ms": "1.5"}  # fmt: skip
    pending: set[str] = set()
    stream._on_frame(push("spot.usertrades", {**trade, "price": "abc"}), pending)
    stream._on_frame(push("spot.usertrades", {**trade, "id": 2, "side": "sideways"}), pending)
    stream._on_frame(push("spot.usertrades", {**trade, "id": 3, "create_time_ms": "x"}), pending)
    order = {"id": "77", "text": "t-c1", "currency_pair": "BTC_USDT", "event": "finish",
             "amount": "1", "left": "zzz"}  # fmt: skip
    stream._on_frame(push("spot.orders", order), pending)
    stream._on_frame('{"channel": "spot.orders", "event": "update", "result": [1]}', pending)
    stream._on_frame(push("spot.usertrades", {**trade, "id": 4, "amount": "0.25"}), pending)
    tracked = venue.tracker.orders["c1"]
    assert tracked.filled_qty == Decimal("0.25") and tracked.is_open
    assert stream.malformed.total == 5
    await venue.rest.close()


# --------------------------------------------------------------------------------------------
# Decoders
# --------------------------------------------------------------------------------------------


def test_decoders_raise_venue_errors() -> None:
    from exchanges.gateio import wsapi
    from exchanges.mexc.push import decode_depth_levels, decode_push

    cases: list[Callable[[], object]] = [
        lambda: gate_ws.decode(b"{"),
        lambda: gate_ws.decode(b'{"channel":"spot.trades","event":"update","result":{"id":"x"}}'),
        lambda: gate_ws.ms_to_ns("x"),
        lambda: mexc_ws.decode_control(b"[1]"),
        lambda: wsapi.decode_reply(b"{"),
        lambda: decode_push(b"\xff"),
        lambda: decode_depth_levels(mexc_frame(1, 1, {"abc": "1"}, {})),
    ]
    for case in cases:
        with pytest.raises(VenueError) as exc:
            case()
        assert exc.value.venue in ("mexc", "gateio")


def test_error_answers_always_map_to_venue_errors() -> None:
    from exchanges.gateio.errors import error_from_response as gate_error
    from exchanges.mexc.errors import error_from_response as mexc_error

    deep = b"[" * 100_000 + b"]" * 100_000  # deeper than the JSON decoder's recursion limit
    for mapper in (mexc_error, gate_error):
        for body in (deep, b"<html>502</html>", b'{"code": [1]}', b""):
            assert isinstance(mapper(502, body, {}), VenueError)
            assert isinstance(mapper(400, body, {}, order_request=True), VenueError)
