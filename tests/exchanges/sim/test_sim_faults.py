"""Every injected fault is observable by a client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from exchanges.mexc import ws as mexc_ws
from exchanges.mexc.push import AggreDepth, decode_push
from exchanges.sim.config import FaultRule, SimConfig, VenueConfig
from exchanges.sim.market import DepthUpdate
from exchanges.sim.runner import Simulator, SimVenue, run_simulator

from .sim_testkit import gate_call, mexc_call

DEPTH = mexc_ws.topic(mexc_ws.TopicKind.AGGRE_DEPTH, "BTCUSDT")
ORDER = [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("quantity", "0.001"),
         ("price", "5000.00")]  # fmt: skip


async def _post_fault(http: aiohttp.ClientSession, v: SimVenue, **rule: object) -> None:
    async with http.post(f"{v.base_url}/_sim/faults", json=rule) as r:
        assert r.status == 200, await r.text()


async def test_http_status_faults_from_the_admin_endpoint(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    v = sim.venues["mexc"]
    await _post_fault(http, v, kind="http_status", status=503, count=2, path="/api/v3/time")
    for _ in range(2):
        async with http.get(f"{v.api_url}/time") as r:
            assert r.status == 503
    async with http.get(f"{v.api_url}/time") as r:
        assert r.status == 200
    await _post_fault(http, v, kind="http_status", status=429)
    async with http.get(f"{v.api_url}/ping") as r:
        assert r.status == 429
    async with http.get(f"{v.base_url}/_sim/faults") as r:
        state = await r.json()
    assert state["fired"]["http_status"] == 3 and state["pending"] == []


async def test_timeout_holds_the_request(sim: Simulator, http: aiohttp.ClientSession) -> None:
    v = sim.venues["gateio"]
    v.inject_fault(FaultRule(kind="timeout", delay_s=0.5, path="/api/v4/spot/time"))
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(
            f"{v.api_url}/spot/time", timeout=aiohttp.ClientTimeout(total=0.2)
        ) as r:
            await r.read()
    async with http.get(f"{v.api_url}/spot/time") as r:
        assert r.status == 200


async def test_lost_ack_order_exists(sim: Simulator, http: aiohttp.ClientSession) -> None:
    v = sim.venues["mexc"]
    v.inject_fault(FaultRule(kind="lose_ack", status=0))
    with pytest.raises(aiohttp.ClientError):
        await mexc_call(http, v, "POST", "order", ORDER)
    status, opens = await mexc_call(http, v, "GET", "openOrders", [("symbol", "BTCUSDT")])
    assert status == 200 and len(opens) == 1
    g = sim.venues["gateio"]
    g.inject_fault(FaultRule(kind="lose_ack", status=504))
    body = {"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.001", "price": "5000.0"}
    async with http.post(f"{g.api_url}/spot/orders") as r:  # unsigned: not an order, no fault
        assert r.status == 401
    status, _, _ = await gate_call(http, g, "POST", "spot/orders", body=body)
    assert status == 504
    status, opens, _ = await gate_call(http, g, "GET", "spot/open_orders")
    assert opens[0]["total"] == 1


async def _depth_frames(
    ws: aiohttp.ClientWebSocketResponse, v: SimVenue, n: int, expect: int
) -> list[AggreDepth]:
    for _ in range(n):
        while not any(isinstance(e, DepthUpdate) for e in v.market.step(1)):
            pass
    out = []
    for _ in range(expect):
        msg = await asyncio.wait_for(ws.receive(), 2)
        frame = decode_push(msg.data)
        assert isinstance(frame, AggreDepth)
        out.append(frame)
    return out


@pytest.fixture
async def depth_ws(
    sim: Simulator, http: aiohttp.ClientSession
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with http.ws_connect(sim.venues["mexc"].ws_url) as ws:
        await ws.send_str(mexc_ws.subscribe_frame([DEPTH]).decode())
        await asyncio.wait_for(ws.receive(), 2)
        yield ws


async def test_skip_seq_makes_a_gap(
    sim: Simulator, depth_ws: aiohttp.ClientWebSocketResponse
) -> None:
    v = sim.venues["mexc"]
    (a,) = await _depth_frames(depth_ws, v, 1, 1)
    v.inject_fault(FaultRule(kind="skip_seq", count=2))
    (b,) = await _depth_frames(depth_ws, v, 3, 1)
    assert b.from_version > a.to_version + 1  # two updates were never sent: a gap
    (c,) = await _depth_frames(depth_ws, v, 1, 1)
    assert c.from_version == b.to_version + 1


async def test_duplicate_and_reorder(
    sim: Simulator, depth_ws: aiohttp.ClientWebSocketResponse
) -> None:
    v = sim.venues["mexc"]
    v.inject_fault(FaultRule(kind="duplicate"))
    a, b = await _depth_frames(depth_ws, v, 1, 2)
    assert a == b
    v.inject_fault(FaultRule(kind="reorder"))
    c, d = await _depth_frames(depth_ws, v, 2, 2)
    assert c.from_version == d.to_version + 1  # the later update came first


async def test_garbage_sends_a_corrupt_copy_first(
    sim: Simulator, depth_ws: aiohttp.ClientWebSocketResponse
) -> None:
    v = sim.venues["mexc"]
    v.inject_fault(FaultRule(kind="garbage"))
    bad, good = await _depth_frames(depth_ws, v, 1, 2)
    assert (bad.from_version, bad.to_version) == (good.from_version, good.to_version)
    assert "garbage" in [p for p, _ in bad.bids + bad.asks]
    assert "garbage" not in [p for p, _ in good.bids + good.asks]
    (nxt,) = await _depth_frames(depth_ws, v, 1, 1)
    assert nxt.from_version == good.to_version + 1  # one corrupt frame only


async def test_drop_ws(
    sim: Simulator, http: aiohttp.ClientSession, depth_ws: aiohttp.ClientWebSocketResponse
) -> None:
    v = sim.venues["mexc"]
    await _post_fault(http, v, kind="drop_ws")
    msg = await asyncio.wait_for(depth_ws.receive(), 2)
    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)


async def test_pause_and_resume_a_paced_stream(http: aiohttp.ClientSession) -> None:
    cfg = SimConfig(venues=[VenueConfig(venue="gateio")], speed=20)
    async with run_simulator(cfg) as sim:
        v = sim.venues["gateio"]
        await asyncio.sleep(0.2)
        before = v.market.messages
        assert before > 1
        await _post_fault(http, v, kind="pause", delay_s=0)
        paused_at = v.market.messages
        await asyncio.sleep(0.3)
        assert v.market.messages == paused_at and v.market.paused
        await _post_fault(http, v, kind="resume")
        t0 = time.monotonic()
        while v.market.messages == paused_at and time.monotonic() - t0 < 2:
            await asyncio.sleep(0.02)
        assert v.market.messages > paused_at


async def test_faults_from_config(http: aiohttp.ClientSession) -> None:
    cfg = SimConfig(
        venues=[
            VenueConfig(
                venue="mexc",
                faults=[FaultRule(kind="http_status", status=502, path="/api/v3/ping")],
            )
        ],
        speed=0,
    )
    async with run_simulator(cfg) as sim:
        v = sim.venues["mexc"]
        async with http.get(f"{v.api_url}/ping") as r:
            assert r.status == 502
        async with http.get(f"{v.api_url}/ping") as r:
            assert r.status == 200
