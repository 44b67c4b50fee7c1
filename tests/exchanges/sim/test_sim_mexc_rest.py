"""The simulated MEXC over real HTTP: order lifecycle, balances, rejections, rate limit."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import msgspec

from arbsim.core.model import Side
from arbsim.data.catalog import Catalog
from exchanges.mexc.symbols import symbols_from_exchange_info
from exchanges.sim.config import default_catalog
from exchanges.sim.runner import Simulator

from .sim_testkit import MexcAuth, mexc_call, now_ms


async def test_exchange_info_round_trips_to_the_catalog_instrument(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    v = sim.venues["mexc"]
    status, info = await mexc_call(http, v, "GET", "exchangeInfo", signed=False)
    assert status == 200
    (parsed,) = symbols_from_exchange_info(msgspec.json.encode(info))
    inst = Catalog(default_catalog()).instrument("mexc", "BTC/USDT")
    assert parsed.native_symbol == "BTCUSDT"
    assert parsed.symbol == inst.symbol
    assert (parsed.tick, parsed.step) == (inst.tick, inst.lot)
    assert (parsed.min_qty, parsed.min_notional) == (inst.min_qty, inst.min_notional)
    assert (parsed.maker_fee, parsed.taker_fee) == (inst.maker_fee, inst.taker_fee)
    assert parsed.tradable
    sym = info["symbols"][0]
    assert sym["status"] == "1" and sym["isSpotTradingAllowed"] is True


async def test_public_endpoints(sim: Simulator, http: aiohttp.ClientSession) -> None:
    v = sim.venues["mexc"]
    assert await mexc_call(http, v, "GET", "ping", signed=False) == (200, {})
    status, t = await mexc_call(http, v, "GET", "time", signed=False)
    assert status == 200 and abs(t["serverTime"] - now_ms()) < 5000
    status, depth = await mexc_call(
        http, v, "GET", "depth", [("symbol", "BTCUSDT"), ("limit", 5)], signed=False
    )
    assert status == 200 and len(depth["bids"]) == 5 and len(depth["asks"]) == 5
    assert depth["lastUpdateId"] == v.market.symbols["BTC/USDT"].version
    assert Decimal(depth["bids"][0][0]) < Decimal(depth["asks"][0][0])
    status, bt = await mexc_call(
        http, v, "GET", "ticker/bookTicker", [("symbol", "BTCUSDT")], signed=False
    )
    assert status == 200 and bt["bidPrice"] == depth["bids"][0][0]
    sim.step(300, "mexc")
    status, trades = await mexc_call(
        http, v, "GET", "trades", [("symbol", "BTCUSDT")], signed=False
    )
    assert status == 200 and trades and {"price", "qty", "time", "isBuyerMaker"} <= set(trades[0])
    status, err = await mexc_call(http, v, "GET", "depth", [("symbol", "NOPEUSDT")], signed=False)
    assert (status, err["code"]) == (400, -1121)


async def _best(http: aiohttp.ClientSession, sim: Simulator) -> tuple[Decimal, Decimal]:
    _, depth = await mexc_call(
        http, sim.venues["mexc"], "GET", "depth", [("symbol", "BTCUSDT")], signed=False
    )
    return Decimal(depth["bids"][0][0]), Decimal(depth["asks"][0][0])


async def test_place_partial_fill_fill_cancel_query_balances(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    v = sim.venues["mexc"]
    bid, _ = await _best(http, sim)
    price = bid - Decimal("5.00")
    status, placed = await mexc_call(
        http,
        v,
        "POST",
        "order",
        [
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("quantity", "0.002"),
            ("price", str(price)),
            ("newClientOrderId", "cid-1"),
        ],
    )
    assert status == 200, placed
    assert set(placed) == {
        "symbol", "orderId", "orderListId", "price", "origQty", "type", "side", "transactTime",
    }  # fmt: skip
    oid = placed["orderId"]

    async def query() -> dict[str, str]:
        status, o = await mexc_call(
            http, v, "GET", "order", [("symbol", "BTCUSDT"), ("orderId", oid)]
        )
        assert status == 200, o
        found: dict[str, str] = o
        return found

    assert (await query())["status"] == "NEW"
    _, account = await mexc_call(http, v, "GET", "account")
    usdt = {b["asset"]: b for b in account["balances"]}["USDT"]
    assert Decimal(usdt["locked"]) == price * Decimal("0.002")

    assert v.exchange.inject_trade("BTC/USDT", Side.SELL, price, Decimal("0.001")) == 1
    o = await query()
    assert (o["status"], o["executedQty"]) == ("PARTIALLY_FILLED", "0.001")
    assert v.exchange.inject_trade("BTC/USDT", Side.SELL, price, Decimal("0.005")) == 1
    o = await query()
    assert (o["status"], o["executedQty"]) == ("FILLED", "0.002")
    assert Decimal(o["cummulativeQuoteQty"]) == price * Decimal("0.002")

    status, trades = await mexc_call(
        http, v, "GET", "myTrades", [("symbol", "BTCUSDT"), ("orderId", oid)]
    )
    assert status == 200 and len(trades) == 2 and all(t["isMaker"] for t in trades)
    assert trades[0]["clientOrderId"] == "cid-1"

    # a second order: cancel, then query it and the cancelled-again case
    status, placed2 = await mexc_call(
        http,
        v,
        "POST",
        "order",
        [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("quantity", "0.001"),
         ("price", str(price))],
    )  # fmt: skip
    assert status == 200
    status, opens = await mexc_call(http, v, "GET", "openOrders", [("symbol", "BTCUSDT")])
    assert [o["orderId"] for o in opens] == [placed2["orderId"]]
    status, cancelled = await mexc_call(
        http, v, "DELETE", "order", [("symbol", "BTCUSDT"), ("orderId", placed2["orderId"])]
    )
    assert status == 200 and cancelled["status"] == "CANCELED"
    status, again = await mexc_call(
        http, v, "DELETE", "order", [("symbol", "BTCUSDT"), ("orderId", placed2["orderId"])]
    )
    assert (status, again["code"]) == (400, -2011)
    status, missing = await mexc_call(
        http, v, "GET", "order", [("symbol", "BTCUSDT"), ("orderId", "123")]
    )
    assert (status, missing["code"]) == (400, -2013)
    status, all_orders = await mexc_call(http, v, "GET", "allOrders", [("symbol", "BTCUSDT")])
    assert [o["status"] for o in all_orders] == ["FILLED", "CANCELED"]

    _, account = await mexc_call(http, v, "GET", "account")
    bal = {b["asset"]: b for b in account["balances"]}
    assert Decimal(bal["BTC"]["free"]) == Decimal("2.002")
    # maker fee on MEXC's sample instrument is 0
    assert Decimal(bal["USDT"]["free"]) == Decimal(100000) - price * Decimal("0.002")
    assert Decimal(bal["USDT"]["locked"]) == 0


async def test_taker_ioc_partially_fills_and_cancels_the_rest(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    v = sim.venues["mexc"]
    _, depth = await mexc_call(http, v, "GET", "depth", [("symbol", "BTCUSDT")], signed=False)
    ask, ask_qty = Decimal(depth["asks"][0][0]), Decimal(depth["asks"][0][1])
    qty = ask_qty + Decimal("0.5")
    status, placed = await mexc_call(
        http,
        v,
        "POST",
        "order",
        [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "IMMEDIATE_OR_CANCEL"),
         ("quantity", str(qty)), ("price", str(ask))],
    )  # fmt: skip
    assert status == 200, placed
    _, o = await mexc_call(
        http, v, "GET", "order", [("symbol", "BTCUSDT"), ("orderId", placed["orderId"])]
    )
    assert o["status"] == "PARTIALLY_CANCELED"
    assert Decimal(o["executedQty"]) == ask_qty


async def test_rejections_carry_mexc_codes(sim: Simulator, http: aiohttp.ClientSession) -> None:
    v = sim.venues["mexc"]
    params = [("symbol", "BTCUSDT")]
    cases = {
        "bad key": MexcAuth(key="mx0nosuchkey"),
        "bad signature": MexcAuth(secret="wrong"),
        "old timestamp": MexcAuth(timestamp_ms=now_ms() - 10_000),
        "future timestamp": MexcAuth(timestamp_ms=now_ms() + 5_000),
        "recvWindow too large": MexcAuth(recv_window=60_001),
    }
    expected = {
        "bad key": 10072,
        "bad signature": 700002,
        "old timestamp": 700003,
        "future timestamp": 700003,
        "recvWindow too large": 700005,
    }
    for name, kwargs in cases.items():
        status, body = await mexc_call(http, v, "GET", "openOrders", params, **kwargs)
        assert (status, body["code"]) == (400, expected[name]), name
    # a wider recvWindow accepts the same old timestamp
    status, _ = await mexc_call(
        http, v, "GET", "openOrders", params, timestamp_ms=now_ms() - 10_000, recv_window=20_000
    )
    assert status == 200
    async with http.get(f"{v.api_url}/account?timestamp={now_ms()}&signature=00") as r:
        assert (r.status, (await r.json())["code"]) == (400, 700001)
    status, body = await mexc_call(
        http, v, "POST", "order",
        [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("quantity", "1000"),
         ("price", "90000")],
    )  # fmt: skip
    assert (status, body["code"]) == (400, 10101)
    status, body = await mexc_call(
        http, v, "POST", "order",
        [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("quantity", "0.001"),
         ("price", "90000.001")],
    )  # fmt: skip
    assert (status, body["code"]) == (400, -1111)
    status, body = await mexc_call(
        http, v, "POST", "order",
        [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("quantity", "0.000001"),
         ("price", "1.00")],
    )  # fmt: skip
    assert (status, body["code"]) == (400, 30002)
    status, body = await mexc_call(http, v, "DELETE", "order", [("symbol", "BTCUSDT")])
    assert (status, body["code"]) == (400, 700004)
    status, body = await mexc_call(http, v, "POST", "order", [("symbol", "BTCUSDT")])
    assert (status, body["code"]) == (400, -1102)


async def test_order_and_cancel_share_12_per_second(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    v = sim.venues["mexc"]
    statuses = []
    for i in range(13):
        method, params = (
            ("POST", [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"),
                      ("quantity", "0.001"), ("price", "1000.00")])
            if i % 2 == 0
            else ("DELETE", [("symbol", "BTCUSDT"), ("orderId", "1")])
        )  # fmt: skip
        status, body = await mexc_call(http, v, method, "order", params)
        statuses.append(status)
    assert 429 not in statuses[:12]
    assert statuses[12] == 429 and body == {"code": 429, "msg": "Too Many Requests"}
