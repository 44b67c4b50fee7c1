"""The simulated MEXC WebSocket: control frames, protobuf depth chain + REST sync, private."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

import aiohttp
import msgspec

from arbsim.core.model import Side
from exchanges.live.booksync import BookChanges
from exchanges.mexc import ws as mexc_ws
from exchanges.mexc.booksync import (
    decode_depth,
    diff_from_aggre_depth,
    new_book_sync,
    snapshot_from_depth,
)
from exchanges.mexc.push import (
    AggreBookTicker,
    AggreDepth,
    LimitDepth,
    MexcPush,
    PrivateAccount,
    PrivateDeal,
    PrivateOrder,
    decode_push,
)
from exchanges.sim.market import DepthUpdate
from exchanges.sim.runner import Simulator

from .sim_testkit import mexc_call

DEPTH = mexc_ws.topic(mexc_ws.TopicKind.AGGRE_DEPTH, "BTCUSDT")


async def _text(ws: aiohttp.ClientWebSocketResponse) -> mexc_ws.ControlReply:
    msg = await asyncio.wait_for(ws.receive(), 2)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return mexc_ws.decode_control(msg.data)


async def _binary(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[MexcPush]:
    out: list[MexcPush] = []
    for _ in range(n):
        msg = await asyncio.wait_for(ws.receive(), 2)
        assert msg.type is aiohttp.WSMsgType.BINARY, msg
        out.append(decode_push(msg.data))
    return out


async def test_subscribe_ack_blocked_and_ping(sim: Simulator, http: aiohttp.ClientSession) -> None:
    v = sim.venues["mexc"]
    async with http.ws_connect(v.ws_url) as ws:
        legacy = "spot@public.increase.depth.v3.api@BTCUSDT"
        await ws.send_str(mexc_ws.subscribe_frame([DEPTH]).decode())
        assert mexc_ws.subscription_result(await _text(ws), DEPTH) == "ack"
        await ws.send_str(mexc_ws.subscribe_frame([legacy]).decode())
        reply = await _text(ws)
        assert mexc_ws.subscription_result(reply, legacy) == "refused"
        assert reply.code == 0 and reply.msg.endswith("Reason： Blocked!")
        private = mexc_ws.topic(mexc_ws.TopicKind.PRIVATE_ORDERS)
        await ws.send_str(mexc_ws.subscribe_frame([private]).decode())
        assert mexc_ws.subscription_result(await _text(ws), private) == "refused"
        await ws.send_str(mexc_ws.ping_frame().decode())
        assert mexc_ws.is_pong(await _text(ws))


async def test_depth_frames_chain_and_sync_with_rest_depth(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    v = sim.venues["mexc"]
    book_ticker = mexc_ws.topic(mexc_ws.TopicKind.AGGRE_BOOK_TICKER, "BTCUSDT")
    limit = mexc_ws.topic(mexc_ws.TopicKind.LIMIT_DEPTH, "BTCUSDT", levels=5)
    async with http.ws_connect(v.ws_url) as ws:
        await ws.send_str(mexc_ws.subscribe_frame([DEPTH, book_ticker, limit]).decode())
        assert mexc_ws.subscription_result(await _text(ws), DEPTH) == "ack"
        sync = new_book_sync("BTCUSDT")
        depth_frames: list[AggreDepth] = []
        # trades interleave with book messages: count only depth updates
        for _ in range(5):
            while not any(isinstance(e, DepthUpdate) for e in v.market.step(1)):
                pass
        frames = await _binary(ws, 15)
        depth_frames += [f for f in frames if isinstance(f, AggreDepth)]
        assert any(isinstance(f, AggreBookTicker) for f in frames)
        assert any(isinstance(f, LimitDepth) and len(f.bids) == 5 for f in frames)
        _, body = await mexc_call(
            http, v, "GET", "depth", [("symbol", "BTCUSDT"), ("limit", 5000)], signed=False
        )
        snapshot = decode_depth(msgspec.json.encode(body))
        for f in depth_frames:
            assert f.channel == DEPTH and f.symbol == "BTCUSDT" and f.send_time
            sync.on_diff(diff_from_aggre_depth(f))
        events = sync.on_snapshot(snapshot_from_depth(snapshot))
        assert all(isinstance(e, BookChanges) for e in events)
        sim.step(60, "mexc")
        state = v.market.symbols["BTC/USDT"]
        while not depth_frames or depth_frames[-1].to_version != state.version:
            msg = await asyncio.wait_for(ws.receive(), 2)
            frame = decode_push(msg.data)
            if isinstance(frame, AggreDepth):
                depth_frames.append(frame)
                assert all(
                    isinstance(e, BookChanges) for e in sync.on_diff(diff_from_aggre_depth(frame))
                )
    versions = [(f.from_version, f.to_version) for f in depth_frames]
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(versions))
    assert snapshot.last_update_id >= depth_frames[0].from_version - 1
    for side, levels in ((Side.BUY, sync.book.bids), (Side.SELL, sync.book.asks)):
        ours = {Decimal(p): s for p, s in state.levels(side, 100_000)}
        assert {p: Decimal(s) for p, s in levels.items()} == {
            p: Decimal(s) for p, s in ours.items()
        }


async def test_private_channels_after_a_fill(sim: Simulator, http: aiohttp.ClientSession) -> None:
    v = sim.venues["mexc"]
    async with http.ws_connect(v.ws_url + "?listenKey=nope") as ws:
        msg = await asyncio.wait_for(ws.receive(), 2)
        assert msg.type is aiohttp.WSMsgType.TEXT and mexc_ws.is_invalid_listen_key(msg.data)
    status, lk = await mexc_call(http, v, "POST", "userDataStream")
    assert status == 200 and len(lk["listenKey"]) == 64
    status, same = await mexc_call(
        http, v, "PUT", "userDataStream", [("listenKey", lk["listenKey"])]
    )
    assert status == 200 and same == lk
    topics = [
        mexc_ws.topic(k)
        for k in (
            mexc_ws.TopicKind.PRIVATE_ORDERS,
            mexc_ws.TopicKind.PRIVATE_DEALS,
            mexc_ws.TopicKind.PRIVATE_ACCOUNT,
        )
    ]
    async with http.ws_connect(f"{v.ws_url}?listenKey={lk['listenKey']}") as ws:
        await ws.send_str(mexc_ws.subscribe_frame(topics).decode())
        assert mexc_ws.subscription_result(await _text(ws), topics[0]) == "ack"
        _, depth = await mexc_call(
            http, v, "GET", "depth", [("symbol", "BTCUSDT"), ("limit", 1)], signed=False
        )
        status, placed = await mexc_call(
            http, v, "POST", "order",
            [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "IMMEDIATE_OR_CANCEL"),
             ("quantity", "0.001"), ("price", depth["asks"][0][0])],
        )  # fmt: skip
        assert status == 200
        frames: list[MexcPush] = []
        while not any(isinstance(f, PrivateDeal) for f in frames) or not any(
            isinstance(f, PrivateOrder) and f.status == 2 for f in frames
        ):
            frames += await _binary(ws, 1)
    orders = [f for f in frames if isinstance(f, PrivateOrder)]
    assert orders[0].id == placed["orderId"] and orders[0].order_type == 3
    assert orders[-1].status == 2 and orders[-1].cumulative_quantity == "0.001"
    (deal,) = [f for f in frames if isinstance(f, PrivateDeal)]
    assert (deal.price, deal.quantity, deal.trade_type, deal.is_maker) == (
        depth["asks"][0][0], "0.001", 1, False,
    )  # fmt: skip
    # MEXC takes a buy's fee from the BTC it receives
    assert deal.fee_currency == "BTC" and Decimal(deal.fee_amount) > 0
    accounts = {f.vcoin_name: f for f in frames if isinstance(f, PrivateAccount)}
    assert Decimal(accounts["BTC"].balance_amount_change) == Decimal("0.001") - Decimal(
        deal.fee_amount
    )
    status, _ = await mexc_call(
        http, v, "DELETE", "userDataStream", [("listenKey", lk["listenKey"])]
    )
    assert status == 200
