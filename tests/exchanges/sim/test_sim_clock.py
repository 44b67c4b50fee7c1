"""One replay clock for every venue; the window in catalog time; exchange times that map
back to the catalog through the offset ``GET /_sim/state`` reports; recorded pacing."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import aiohttp
import pytest

from arbsim.core.book import OrderBook
from arbsim.core.errors import ConfigError
from arbsim.core.model import Side
from arbsim.data.catalog import Catalog
from arbsim.data.feed import BookCursor, Cursor, TradeCursor, merge
from exchanges.gateio.symbols import to_native as gate_native
from exchanges.mexc import ws as mexc_ws
from exchanges.mexc.push import AggreDeals, AggreDepth, decode_push
from exchanges.sim.cli import build_config, main
from exchanges.sim.clock import MS, iso, parse_time
from exchanges.sim.config import SimConfig, VenueConfig, default_catalog
from exchanges.sim.market import DepthUpdate, MarketEvent, PublicTrade
from exchanges.sim.runner import Simulator, run_simulator

from .sim_testkit import gate_call, mexc_call

BOTH = [VenueConfig(venue="mexc"), VenueConfig(venue="gateio")]
START = "2026-01-05T00:03:00.250Z"


class Msg(NamedTuple):
    """One catalog message as the simulator replays it."""

    depth: bool
    key: int  # the replay's exchange key (ts_exchange, never going back within a stream)
    ts_exchange: int
    ts_local: int


def catalog_messages(venue: str, start: int, end: int | None) -> list[Msg]:
    """The catalog's messages of a venue in ``[start, end)``, in the simulator's order."""
    cat = Catalog(default_catalog())
    inst = cat.instrument(venue, "BTC/USDT")
    scale = OrderBook(venue, inst.symbol, inst.tick).scale
    cursors: list[Cursor] = [
        BookCursor(cat, venue, inst.symbol, scale, key="exchange"),
        TradeCursor(cat, venue, inst.symbol, scale, key="exchange"),
    ]
    out = []
    for c in merge(cursors):
        if c.ts < start:
            continue
        if end is not None and c.ts >= end:
            break
        assert isinstance(c, BookCursor | TradeCursor)
        out.append(Msg(isinstance(c, BookCursor), c.ts, c.ts_exchange, c.ts_local))
    return out


def book_at(venue: str, start: int) -> OrderBook:
    """The book built from every book message before ``start``."""
    cat = Catalog(default_catalog())
    inst = cat.instrument(venue, "BTC/USDT")
    book = OrderBook(venue, inst.symbol, inst.tick)
    cursor = BookCursor(cat, venue, inst.symbol, book.scale, key="exchange")
    while cursor.next() and cursor.ts < start:
        cursor.apply(book)
    return book


def levels(book: OrderBook) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    return book.levels(Side.BUY, 20), book.levels(Side.SELL, 20)


def stamper(out: list[int]) -> Callable[[MarketEvent], None]:
    """A listener that notes the host time of every event."""

    def listen(event: MarketEvent) -> None:
        out.append(time.time_ns())

    return listen


def recorder(out: list[tuple[MarketEvent, int]]) -> Callable[[MarketEvent], None]:
    """A listener that keeps every event with its host time."""

    def listen(event: MarketEvent) -> None:
        out.append((event, time.time_ns()))

    return listen


def first_seen(out: dict[int, int]) -> Callable[[MarketEvent], None]:
    """A listener that notes when each event object is first seen."""

    def listen(event: MarketEvent) -> None:
        out.setdefault(id(event), time.time_ns())

    return listen


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Timing tests run without the test process's full collections (100 ms pauses over
    the whole suite's heap: the host's, not the clock's)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def assert_on_time(late_ms: list[float]) -> None:
    """Release times against their schedule (ms): a timer wakes up to ~1 ms late; a busy
    host may hold a message a little longer."""
    assert min(late_ms) > -0.5, late_ms
    assert statistics.median(late_ms) < 3, late_ms
    assert sorted(late_ms)[int(0.9 * len(late_ms))] < 10, late_ms
    assert max(late_ms) < 50, late_ms


async def sim_state(http: aiohttp.ClientSession, sim: Simulator, venue: str) -> dict[str, Any]:
    async with http.get(f"{sim.venues[venue].base_url}/_sim/state") as r:
        assert r.status == 200
        state: dict[str, Any] = await r.json()
    return state


async def until_ended(sim: Simulator, timeout_s: float) -> None:
    t0 = time.monotonic()
    while not all(v.market.ended for v in sim.venues.values()):
        assert time.monotonic() - t0 < timeout_s, "the window did not end in time"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.01)


# ---------------------------------------------------------------------------- one clock
async def test_both_venues_release_on_one_clock(http: aiohttp.ClientSession) -> None:
    start = parse_time(START, "start")
    end = start + 1500 * MS
    cfg = SimConfig(venues=BOTH, speed=1, start=START, end=iso(end), loop=False)
    released: dict[str, list[int]] = {"mexc": [], "gateio": []}
    with no_gc():
        async with run_simulator(cfg) as sim:
            for name, v in sim.venues.items():
                v.market.wire_listeners.append(stamper(released[name]))
            states = [await sim_state(http, sim, name) for name in ("mexc", "gateio")]
            await until_ended(sim, 10)
    clocks = [s["clock"] for s in states]
    assert clocks[0]["offset_ns"] == clocks[1]["offset_ns"] == sim.clock.offset_ns
    assert clocks[0]["origin_ns"] == clocks[1]["origin_ns"] == start + sim.clock.offset_ns
    assert clocks[0]["start_ns"] == start and clocks[0]["end_ns"] == end
    offset = sim.clock.offset_ns
    late: dict[str, list[tuple[int, float]]] = {}
    for name in ("mexc", "gateio"):
        truth = catalog_messages(name, start, end)
        assert len(released[name]) == len(truth) > 5
        # each message goes out at origin + (key - start) = key + offset (speed 1)
        late[name] = [
            (m.key, (host - (m.key + offset)) / MS)
            for m, host in zip(truth, released[name], strict=True)
        ]
        assert_on_time([ms for _, ms in late[name]])
    # the spread between the venues' releases is the catalog's spread
    gate = late["gateio"]
    errors = []
    for key, ms in late["mexc"]:
        nearest = min(gate, key=lambda g: abs(g[0] - key))
        errors.append(abs(ms - nearest[1]))
    assert_on_time(errors)


# ---------------------------------------------------------------------------- window
async def test_window_publishes_exactly_the_catalog_between_start_and_end() -> None:
    start = parse_time(START, "start")
    end = start + 3000 * MS
    cfg = SimConfig(venues=BOTH, speed=0, start=START, end=iso(end), loop=False)
    async with run_simulator(cfg) as sim:
        offset = sim.clock.offset_ns
        assert offset % MS == 0
        for name, v in sim.venues.items():
            state = v.market.symbols["BTC/USDT"]
            assert levels(state.book) == levels(book_at(name, start))  # warmed up, silently
            events: list[MarketEvent] = []
            while not v.market.ended:
                events += v.market.step(50)
            assert v.market.step(10) == []
            truth = catalog_messages(name, start, end)
            assert truth[0].key >= start and truth[-1].key < end
            assert [(isinstance(e, DepthUpdate), e.ts_ns - offset) for e in events] == [
                (m.depth, m.ts_exchange) for m in truth
            ]
            # the millisecond stamps every protocol carries map back exactly too
            assert [e.ts_ms - offset // MS for e in events] == [m.ts_exchange // MS for m in truth]
            assert levels(state.book) == levels(book_at(name, end))


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-01-06T00:00:00Z", "", "is after the catalog's last message"),
        ("", "2026-01-04T23:00:00Z", "is not after the catalog's first message"),
        ("2026-01-05T00:05:00Z", "2026-01-05T00:04:00Z", "before it starts"),
        ("yesterday", "", "is not an ISO-8601 time"),
    ],
)
async def test_a_window_outside_the_catalog_is_refused(start: str, end: str, message: str) -> None:
    cfg = SimConfig(venues=BOTH, speed=0, start=start, end=end)
    with pytest.raises(ConfigError, match=message) as e:
        async with run_simulator(cfg):
            pass
    if "catalog" in message:
        assert "the catalog spans 2026-01-05T00:00:00" in str(e.value)


def test_cli_window_options(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = build_config(
        ["mexc"], "127.0.0.1", 0, None, 0, None, None, None,
        start="2026-01-05T00:01:00Z", end="2026-01-05T00:02:00Z", pace="local", loop=False,
    )  # fmt: skip
    assert (cfg.start, cfg.end, cfg.pace, cfg.loop) == (
        "2026-01-05T00:01:00Z",
        "2026-01-05T00:02:00Z",
        "local",
        False,
    )
    assert main(["--venue", "mexc", "--speed", "0", "--start", "2027-01-01T00:00:00Z"]) == 1
    assert "is after the catalog's last message" in capsys.readouterr().err


# ---------------------------------------------------------------------------- exchange times
async def test_offset_maps_pushed_and_rest_times_back_to_the_catalog(
    http: aiohttp.ClientSession,
) -> None:
    start = parse_time(START, "start")
    cfg = SimConfig(venues=BOTH, speed=0, start=START, loop=False)
    async with run_simulator(cfg) as sim:
        offset_ms = (await sim_state(http, sim, "mexc"))["clock"]["offset_ms"]
        assert offset_ms == (await sim_state(http, sim, "gateio"))["clock"]["offset_ms"]
        mexc, gate = sim.venues["mexc"], sim.venues["gateio"]
        topics = [
            mexc_ws.topic(mexc_ws.TopicKind.AGGRE_DEPTH, "BTCUSDT"),
            mexc_ws.topic(mexc_ws.TopicKind.AGGRE_DEALS, "BTCUSDT"),
        ]
        pair = gate_native("BTC/USDT")
        async with http.ws_connect(mexc.ws_url) as mws, http.ws_connect(gate.ws_url) as gws:
            await mws.send_str(mexc_ws.subscribe_frame(topics).decode())
            await asyncio.wait_for(mws.receive(), 2)
            for channel, payload in (
                ("spot.order_book_update", [pair, "100ms"]),
                ("spot.trades", [pair]),
            ):
                await gws.send_json(
                    {"time": int(time.time()), "channel": channel, "event": "subscribe",
                     "payload": payload}
                )  # fmt: skip
                await asyncio.wait_for(gws.receive(), 2)
            n = 120
            sim.step(n)
            mexc_times: list[tuple[bool, int]] = []
            while len(mexc_times) < n:
                frame = decode_push((await asyncio.wait_for(mws.receive(), 2)).data)
                if isinstance(frame, AggreDepth):
                    assert frame.send_time is not None
                    mexc_times.append((True, frame.send_time))
                else:
                    assert isinstance(frame, AggreDeals)
                    mexc_times += [(False, d.time) for d in frame.deals]
            gate_times: list[tuple[bool, int]] = []
            while len(gate_times) < n:
                msg = json.loads((await asyncio.wait_for(gws.receive(), 2)).data)
                res = msg["result"]
                if msg["channel"] == "spot.order_book_update":
                    gate_times.append((True, res["t"]))
                else:
                    gate_times.append((False, int(res["create_time_ms"].split(".")[0])))
        for name, got in (("mexc", mexc_times), ("gateio", gate_times)):
            truth = catalog_messages(name, start, None)[:n]
            assert [(d, t - offset_ms) for d, t in got] == [
                (m.depth, m.ts_exchange // MS) for m in truth
            ], name

        # REST market-data times are the same stamps
        def last_ms(venue: str, depth: bool) -> int:
            return [m for m in catalog_messages(venue, start, None)[:n] if m.depth == depth][
                -1
            ].ts_exchange // MS

        _, book = await mexc_call(http, mexc, "GET", "depth", [("symbol", "BTCUSDT")], signed=False)
        _, trades = await mexc_call(
            http, mexc, "GET", "trades", [("symbol", "BTCUSDT")], signed=False
        )
        assert book["timestamp"] - offset_ms == last_ms("mexc", True)
        assert trades[0]["time"] - offset_ms == last_ms("mexc", False)
        query = f"currency_pair={pair}"
        _, book, _ = await gate_call(http, gate, "GET", "spot/order_book", query, signed=False)
        _, trades, _ = await gate_call(http, gate, "GET", "spot/trades", query, signed=False)
        assert book["update"] - offset_ms == last_ms("gateio", True)
        assert int(trades[0]["create_time_ms"].split(".")[0]) - offset_ms == last_ms(
            "gateio", False
        )


async def test_rest_times_run_on_the_exchange_clock(http: aiohttp.ClientSession) -> None:
    speed = 10
    cfg = SimConfig(venues=BOTH, speed=speed, start=START, loop=False)
    async with run_simulator(cfg) as sim:
        await asyncio.sleep(0.3)
        mexc, gate = sim.venues["mexc"], sim.venues["gateio"]
        clock = (await sim_state(http, sim, "mexc"))["clock"]
        offset_ms, origin_ms = clock["offset_ms"], clock["origin_ns"] // MS
        start_ms = clock["start_ns"] // MS
        # exchange_now = origin + speed * (host_now - origin)
        host0 = time.time_ns() // MS
        _, t = await mexc_call(http, mexc, "GET", "time", signed=False)
        host1 = time.time_ns() // MS
        lo, hi = (origin_ms + speed * (h - origin_ms) for h in (host0, host1))
        assert lo - 2 * speed <= t["serverTime"] <= hi + 2 * speed
        _, placed = await mexc_call(
            http, mexc, "POST", "order",
            [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"),
             ("quantity", "0.001"), ("price", "5000.00")],
        )  # fmt: skip
        status, order, _ = await gate_call(
            http, gate, "POST", "spot/orders",
            body={"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.001", "price": "5000"},
        )  # fmt: skip
        assert status == 201
        now_catalog = (await sim_state(http, sim, "gateio"))["clock"]["catalog_now_ns"] // MS
        for created in (placed["transactTime"], order["create_time_ms"]):
            catalog_ms = created - offset_ms
            assert start_ms + 2500 < catalog_ms <= now_catalog  # 0.3 s at x10 = 3 s


# ---------------------------------------------------------------------------- pacing
async def test_local_pace_moves_the_book_at_ts_exchange_and_the_wire_at_ts_local() -> None:
    start = parse_time(START, "start")
    end = start + 1500 * MS
    cfg = SimConfig(venues=BOTH, speed=1, start=START, end=iso(end), loop=False, pace="local")
    applied: dict[str, list[tuple[MarketEvent, int]]] = {"mexc": [], "gateio": []}
    wired: dict[int, int] = {}
    with no_gc():
        async with run_simulator(cfg) as sim:
            for name, v in sim.venues.items():
                v.market.listeners.append(recorder(applied[name]))
                v.market.wire_listeners.append(first_seen(wired))
            await until_ended(sim, 10)
            deadline = time.monotonic() + 5
            while len(wired) < sum(map(len, applied.values())) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            offset = sim.clock.offset_ns
    feed_ms = []
    for name in ("mexc", "gateio"):
        truth = catalog_messages(name, start, end)
        assert len(applied[name]) == len(truth) > 5
        book_late, wire_late = [], []
        for m, (ev, host) in zip(truth, applied[name], strict=True):
            assert ev.ts_ns == m.ts_exchange + offset  # stamps stay the exchange's
            book_late.append((host - (m.key + offset)) / MS)  # the book moves at ts_exchange
            wire_late.append((wired[id(ev)] - (m.ts_local + offset)) / MS)  # the wire: ts_local
            feed_ms.append((wired[id(ev)] - host) / MS)
        assert_on_time(book_late)
        assert_on_time(wire_late)
    # the recorded feed latency is on the wire (the sample's median is 30-60 ms)
    assert statistics.median(feed_ms) > 20


async def test_loop_replays_the_window_one_lap_later(http: aiohttp.ClientSession) -> None:
    start = parse_time(START, "start")
    end = start + 1000 * MS
    cfg = SimConfig(venues=[VenueConfig(venue="gateio")], speed=0, start=START, end=iso(end))
    async with run_simulator(cfg) as sim:
        m = sim.venues["gateio"].market
        state = m.symbols["BTC/USDT"]
        at_start = levels(state.book)
        truth = catalog_messages("gateio", start, end)
        first_lap = m.step(len(truth))
        assert m.lap == 0 and len(first_lap) == len(truth)
        (reset,) = m.step(1)  # one full-book update per symbol opens the next lap
        clock = (await sim_state(http, sim, "gateio"))["clock"]
        assert m.lap == clock["lap"] == 1 and clock["lap_ns"] == 1000 * MS
        assert isinstance(reset, DepthUpdate) and levels(state.book) == at_start
        last = first_lap[-1] if isinstance(first_lap[-1], DepthUpdate) else None
        assert last is None or reset.first_id > last.last_id
        assert reset.ts_ns == start + clock["lap_ns"] + clock["offset_ns"]
        second = m.step(len(truth))
        assert [e.ts_ns for e in second] == [e.ts_ns + clock["lap_ns"] for e in first_lap]
        assert [type(e) for e in second] == [type(e) for e in first_lap]
        assert all(isinstance(e, PublicTrade | DepthUpdate) for e in second)
        assert sim.clock.to_catalog(second[-1].ts_ns) == (
            first_lap[-1].ts_ns - clock["offset_ns"],
            1,
        )


async def test_a_paused_venue_holds_its_messages_while_the_clock_goes_on(
    http: aiohttp.ClientSession,
) -> None:
    speed = 2
    start = parse_time(START, "start")
    end = start + 3000 * MS
    cfg = SimConfig(venues=BOTH, speed=speed, start=START, end=iso(end), loop=False)
    released: dict[str, list[int]] = {"mexc": [], "gateio": []}
    with no_gc():
        async with run_simulator(cfg) as sim:
            for name, v in sim.venues.items():
                v.market.wire_listeners.append(stamper(released[name]))
            await asyncio.sleep(0.3)
            async with http.post(
                f"{sim.venues['gateio'].base_url}/_sim/faults",
                json={"kind": "pause", "delay_s": 0.4},
            ) as r:
                assert r.status == 200
            paused, resumed = time.time_ns(), time.time_ns() + 400 * MS
            await until_ended(sim, 10)
            origin = sim.clock.origin_ns
    assert any(paused < t < resumed for t in released["mexc"])  # the other venue goes on
    truth = catalog_messages("gateio", start, end)
    assert len(released["gateio"]) == len(truth)
    on_time = []
    for m, host in zip(truth, released["gateio"], strict=True):
        due = origin + (m.key - start) / speed
        assert not paused + 5 * MS < host < resumed - 5 * MS  # held: nothing went out
        if due < resumed:
            assert host < due + 50 * MS or host < resumed + 50 * MS  # the held ones at once
        elif due > resumed + 50 * MS:
            on_time.append((host - due) / MS)  # then back on the shared schedule
    assert on_time
    assert_on_time(on_time)
