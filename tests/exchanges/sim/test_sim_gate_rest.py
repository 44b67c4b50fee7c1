"""The simulated Gate.io over real HTTP: order lifecycle, balances, rejections, rate limit."""

from __future__ import annotations

import time
from decimal import Decimal

import aiohttp
import msgspec

from arbsim.core.model import Side
from arbsim.data.catalog import Catalog
from exchanges.gateio.symbols import symbols_from_currency_pairs
from exchanges.sim.config import default_catalog
from exchanges.sim.runner import Simulator

from .sim_testkit import GateAuth, gate_call


async def test_currency_pairs_round_trip_to_the_catalog_instrument(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    v = sim.venues["gateio"]
    status, pairs, headers = await gate_call(http, v, "GET", "spot/currency_pairs", signed=False)
    assert status == 200 and "X-In-Time" in headers and "X-Out-Time" in headers
    (parsed,) = symbols_from_currency_pairs(msgspec.json.encode(pairs))
    inst = Catalog(default_catalog()).instrument("gateio", "BTC/USDT")
    assert (parsed.symbol, parsed.native_symbol) == ("BTC/USDT", "BTC_USDT")
    assert (parsed.tick, parsed.step) == (inst.tick, inst.lot)
    assert (parsed.min_qty, parsed.min_notional) == (inst.min_qty, inst.min_notional)
    assert (parsed.maker_fee, parsed.taker_fee) == (inst.maker_fee, inst.taker_fee)
    assert parsed.tradable
    status, one, _ = await gate_call(http, v, "GET", "spot/currency_pairs/BTC_USDT", signed=False)
    assert status == 200 and one == pairs[0]
    status, t, _ = await gate_call(http, v, "GET", "spot/time", signed=False)
    assert abs(t["server_time"] - time.time() * 1000) < 5000


async def test_order_book_with_id_matches_the_simulator_book(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    v = sim.venues["gateio"]
    q = "currency_pair=BTC_USDT&limit=5&with_id=true"
    status, book, _ = await gate_call(http, v, "GET", "spot/order_book", q, signed=False)
    assert status == 200 and set(book) == {"id", "current", "update", "asks", "bids"}
    assert book["id"] == v.market.symbols["BTC/USDT"].version
    assert len(book["bids"]) == 5
    status, book, _ = await gate_call(
        http, v, "GET", "spot/order_book", "currency_pair=BTC_USDT", signed=False
    )
    assert "id" not in book and len(book["asks"]) == 10
    status, err, _ = await gate_call(
        http, v, "GET", "spot/order_book", "currency_pair=NOPE_USDT", signed=False
    )
    assert (status, err["label"]) == (400, "INVALID_CURRENCY_PAIR")


async def test_place_partial_fill_fill_cancel_query_balances(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    v = sim.venues["gateio"]
    _, book, _ = await gate_call(
        http, v, "GET", "spot/order_book", "currency_pair=BTC_USDT&limit=1", signed=False
    )
    price = Decimal(book["bids"][0][0]) - Decimal("5.0")
    body = {
        "text": "t-sim1",
        "currency_pair": "BTC_USDT",
        "type": "limit",
        "account": "spot",
        "side": "buy",
        "amount": "0.002",
        "price": str(price),
    }
    status, order, headers = await gate_call(http, v, "POST", "spot/orders", body=body)
    assert status == 201, order
    assert headers["X-Gate-RateLimit-Limit"] == "10"
    assert (order["status"], order["finish_as"], order["left"]) == ("open", "open", "0.002")
    oid = order["id"]

    async def get(ref: str) -> dict[str, str]:
        status, o, _ = await gate_call(
            http, v, "GET", f"spot/orders/{ref}", "currency_pair=BTC_USDT"
        )
        assert status == 200, o
        found: dict[str, str] = o
        return found

    assert (await get("t-sim1"))["id"] == oid  # the client text id works while open
    v.exchange.inject_trade("BTC/USDT", Side.SELL, price, Decimal("0.0015"))
    o = await get(oid)
    assert (o["status"], o["filled_amount"], o["left"]) == ("open", "0.0015", "0.0005")
    v.exchange.inject_trade("BTC/USDT", Side.SELL, price, Decimal("0.01"))
    o = await get(oid)
    assert (o["status"], o["finish_as"], o["left"]) == ("closed", "filled", "0")
    # Gate charges a buy's fee in the currency it receives: 0.002 BTC * 0.001
    assert Decimal(o["fee"]) == Decimal("0.002") * Decimal("0.001")
    assert o["fee_currency"] == "BTC"

    status, trades, _ = await gate_call(
        http, v, "GET", "spot/my_trades", f"currency_pair=BTC_USDT&order_id={oid}"
    )
    assert status == 200 and [t["role"] for t in trades] == ["maker", "maker"]
    assert {t["text"] for t in trades} == {"t-sim1"}
    # REST trade ids are strings, as Gate answers them (the push carries numbers)
    assert all(isinstance(t["id"], str) and t["id"].isdigit() for t in trades)

    body2 = {**body, "text": "t-sim2", "amount": "0.001"}
    status, order2, _ = await gate_call(http, v, "POST", "spot/orders", body=body2)
    assert status == 201
    status, opens, _ = await gate_call(http, v, "GET", "spot/open_orders")
    assert [(g["currency_pair"], g["total"]) for g in opens] == [("BTC_USDT", 1)]
    status, listed, _ = await gate_call(
        http, v, "GET", "spot/orders", "currency_pair=BTC_USDT&status=open"
    )
    assert [o["id"] for o in listed] == [order2["id"]]
    status, cancelled, _ = await gate_call(
        http, v, "DELETE", f"spot/orders/{order2['id']}", "currency_pair=BTC_USDT"
    )
    assert (status, cancelled["status"], cancelled["finish_as"]) == (200, "cancelled", "cancelled")
    status, again, _ = await gate_call(
        http, v, "DELETE", f"spot/orders/{order2['id']}", "currency_pair=BTC_USDT"
    )
    assert (status, again["label"]) == (400, "ORDER_CANCELLED")
    status, again, _ = await gate_call(
        http, v, "DELETE", f"spot/orders/{oid}", "currency_pair=BTC_USDT"
    )
    assert (status, again["label"]) == (400, "ORDER_CLOSED")
    status, finished, _ = await gate_call(
        http, v, "GET", "spot/orders", "currency_pair=BTC_USDT&status=finished"
    )
    assert {o["id"] for o in finished} == {oid, order2["id"]}

    status, accounts, _ = await gate_call(http, v, "GET", "spot/accounts")
    bal = {a["currency"]: a for a in accounts}
    fee = Decimal("0.002") * Decimal("0.001")  # in BTC
    assert Decimal(bal["BTC"]["available"]) == Decimal("2.002") - fee
    expected_usdt = Decimal(100000) - price * Decimal("0.002")
    assert Decimal(bal["USDT"]["available"]) == expected_usdt
    assert Decimal(bal["USDT"]["locked"]) == 0


async def test_batch_and_cancel_batch(sim: Simulator, http: aiohttp.ClientSession) -> None:
    v = sim.venues["gateio"]
    orders = [
        {"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.001", "price": "5000.0",
         "text": "t-b1"},
        {"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.001", "price": "5000.05"},
    ]  # fmt: skip
    status, out, _ = await gate_call(http, v, "POST", "spot/batch_orders", body=orders)
    assert status == 200
    assert [o["succeeded"] for o in out] == [True, False]
    assert out[1]["label"] == "INVALID_PRECISION"
    status, out, _ = await gate_call(
        http,
        v,
        "POST",
        "spot/cancel_batch_orders",
        body=[
            {"currency_pair": "BTC_USDT", "id": "t-b1"},
            {"currency_pair": "BTC_USDT", "id": "9"},
        ],
    )
    assert status == 200 and [o["succeeded"] for o in out] == [True, False]


async def test_rejections_carry_gate_labels(sim: Simulator, http: aiohttp.ClientSession) -> None:
    v = sim.venues["gateio"]
    cases = [
        (GateAuth(key="nokey"), 401, "INVALID_KEY"),
        (GateAuth(secret="wrong"), 401, "INVALID_SIGNATURE"),
        (GateAuth(timestamp=str(time.time() - 61)), 401, "REQUEST_EXPIRED"),
        (GateAuth(timestamp=str(time.time() + 61)), 401, "REQUEST_EXPIRED"),
    ]
    for kwargs, http_status, label in cases:
        status, body, _ = await gate_call(http, v, "GET", "spot/accounts", **kwargs)
        assert (status, body["label"]) == (http_status, label), kwargs
    # decimals in Timestamp are accepted
    status, _, _ = await gate_call(http, v, "GET", "spot/accounts", timestamp=f"{time.time():.3f}")
    assert status == 200
    status, body, _ = await gate_call(http, v, "GET", "spot/accounts", signed=False)
    assert (status, body["label"]) == (401, "MISSING_REQUIRED_HEADER")
    base = {"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.001", "price": "5000.0"}
    for override, label in [
        ({"amount": "1000"}, "BALANCE_NOT_ENOUGH"),
        ({"price": "5000.01"}, "INVALID_PRECISION"),
        ({"amount": "0.000001"}, "AMOUNT_TOO_LITTLE"),
        ({"currency_pair": "NOPE_USDT"}, "INVALID_CURRENCY_PAIR"),
        ({"text": "no-prefix"}, "INVALID_CLIENT_ORDER_ID"),
        ({"price": "200000.0", "time_in_force": "poc"}, "POC_FILL_IMMEDIATELY"),
        ({"price": "200000.0", "amount": "50", "time_in_force": "fok", "side": "sell"},
         "BALANCE_NOT_ENOUGH"),
    ]:  # fmt: skip
        status, body, _ = await gate_call(http, v, "POST", "spot/orders", body={**base, **override})
        assert (status, body["label"]) == (400, label), override
    status, body, _ = await gate_call(http, v, "GET", "spot/orders/12345", "currency_pair=BTC_USDT")
    assert (status, body["label"]) == (400, "ORDER_NOT_FOUND")


async def test_fok_that_cannot_fill_is_fok_not_fill(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    v = sim.venues["gateio"]
    _, book, _ = await gate_call(
        http, v, "GET", "spot/order_book", "currency_pair=BTC_USDT&limit=1", signed=False
    )
    ask, size = Decimal(book["asks"][0][0]), Decimal(book["asks"][0][1])
    body = {"currency_pair": "BTC_USDT", "side": "buy", "amount": str(size + 1),
            "price": str(ask), "time_in_force": "fok"}  # fmt: skip
    status, err, _ = await gate_call(http, v, "POST", "spot/orders", body=body)
    assert (status, err["label"]) == (400, "FOK_NOT_FILL")


async def test_market_buy_is_sized_in_quote(sim: Simulator, http: aiohttp.ClientSession) -> None:
    v = sim.venues["gateio"]
    body = {"currency_pair": "BTC_USDT", "type": "market", "side": "buy", "amount": "100",
            "time_in_force": "ioc"}  # fmt: skip
    status, order, _ = await gate_call(http, v, "POST", "spot/orders", body=body)
    assert status == 201, order
    assert order["status"] == "closed" and order["amount"] == "100"
    assert Decimal(order["filled_total"]) <= 100 and Decimal(order["filled_amount"]) > 0


async def test_place_limit_10_per_second_per_market(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    v = sim.venues["gateio"]
    body = {"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.001", "price": "5000.0"}
    statuses = []
    for _ in range(11):
        status, out, headers = await gate_call(http, v, "POST", "spot/orders", body=body)
        statuses.append(status)
    assert statuses[:10] == [201] * 10
    assert statuses[10] == 429 and out["label"] == "TOO_MANY_REQUESTS"
    assert headers["X-Gate-RateLimit-Requests-Remain"] == "0"
    # cancels are not counted against the place limit
    status, _, _ = await gate_call(http, v, "DELETE", "spot/orders", "currency_pair=BTC_USDT")
    assert status == 200
