"""What client libraries call when they start: tickers, average price, aggregated trades,
currency lists, Gate's margin pairs; shapes against recorded answers, values against the
replay."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exchanges.sim.runner import Simulator

from .sim_testkit import gate_call, mexc_call

SYMBOL = [("symbol", "BTCUSDT")]


def recorded(realdata: Path, path: str, query: str) -> Any:
    """A real MEXC answer of the gocryptotrader recording (2025-12-31)."""
    routes = json.loads(
        (realdata / "mexc" / "gocryptotrader_mexc_v3_http_recording.json").read_text()
    )
    for rec in routes["routes"][path]["GET"]:
        if rec["queryString"] == query:
            return rec["data"]
    raise AssertionError(f"no recording of {path}?{query}")


def shape(value: Any) -> Any:
    """Keys and JSON types (a list: the shape of its first element)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


async def mexc_get(
    http: aiohttp.ClientSession, sim: Simulator, path: str, params: list[tuple[str, Any]]
) -> Any:
    status, body = await mexc_call(http, sim.venues["mexc"], "GET", path, params, signed=False)
    assert status == 200, body
    return body


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("ticker/24hr", "symbol=BTCUSDT"),
        ("ticker/24hr", ""),
        ("ticker/price", "symbol=BTCUSDT"),
        ("ticker/price", ""),
        ("ticker/bookTicker", "symbol=BTCUSDT"),
        ("ticker/bookTicker", ""),
        ("avgPrice", "symbol=BTCUSDT"),
        ("aggTrades", "endTime=1767204403384&startTime=1767204283384&symbol=BTCUSDT"),
    ],
)
async def test_mexc_answers_have_the_recorded_shape(
    sim: Simulator, http: aiohttp.ClientSession, realdata: Path, path: str, query: str
) -> None:
    sim.step(400, "mexc")  # some trades
    real = recorded(realdata, f"/api/v3/{path}", query)
    params: list[tuple[str, Any]] = [
        (k, val) for k, _, val in (kv.partition("=") for kv in query.split("&") if kv)
    ]
    if path == "aggTrades":
        params = SYMBOL  # the recorded window is not the replay's
    ours = await mexc_get(http, sim, path, params)
    assert shape(ours) == shape(real)
    if path == "ticker/24hr":
        # `count` is null there too; everything else is a string but the two times
        one = ours if isinstance(ours, dict) else ours[0]
        assert one["count"] is None and isinstance(one["openTime"], int)
    if path == "aggTrades":
        assert all(t["T"] % 1000 == 0 for t in ours)  # seconds, as recorded


@pytest.mark.realdata
async def test_currency_lists_have_the_documented_shape(
    sim: Simulator, http: aiohttp.ClientSession, realdata: Path
) -> None:
    def example(venue: str, *parts: str) -> Any:
        text = realdata.joinpath(venue, "jkorf_examples", "Endpoints", *parts).read_text()
        return json.loads(text.split("\n", 3)[3])  # method, path, signed, then the body

    status, coins = await mexc_call(http, sim.venues["mexc"], "GET", "capital/config/getall")
    assert status == 200
    (doc,) = example("mexc", "SpotApi", "Account", "GetUserAssets.txt")
    assert [set(c) for c in coins] == [set(doc)] * 2
    assert [c["coin"] for c in coins] == ["BTC", "USDT"] and coins[0]["networkList"] == []
    status, currencies, _ = await gate_call(
        http, sim.venues["gateio"], "GET", "spot/currencies", signed=False
    )
    assert status == 200
    (doc,) = example("gateio", "Spot", "ExchangeData", "GetAssets.txt")
    assert all(set(doc) <= set(c) for c in currencies)
    assert [c["currency"] for c in currencies] == ["BTC", "USDT"]
    for c in currencies:
        assert {k: type(v) for k, v in c.items() if k in doc} == {
            k: type(v) for k, v in doc.items()
        }


async def test_gate_margin_pairs_say_no_margin(sim: Simulator, http: aiohttp.ClientSession) -> None:
    # a client library's market loading (ccxt) merges this into the spot pairs: an empty
    # list makes every pair spot-only, which is what the simulator trades
    status, pairs, _ = await gate_call(
        http, sim.venues["gateio"], "GET", "margin/currency_pairs", signed=False
    )
    assert (status, pairs) == (200, [])
    status, one, _ = await gate_call(
        http, sim.venues["gateio"], "GET", "spot/currencies/usdt", signed=False
    )
    assert status == 200 and one["currency"] == "USDT" and one["trade_disabled"] is False
    status, err, _ = await gate_call(
        http, sim.venues["gateio"], "GET", "spot/currencies/NOPE", signed=False
    )
    assert status == 400 and err["label"] == "INVALID_PARAM_VALUE"
    status, _ = await mexc_call(
        http, sim.venues["mexc"], "GET", "capital/config/getall", signed=False
    )
    assert status == 400  # signed, as on the venue


async def test_mexc_ticker_values_come_from_the_replay(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    v = sim.venues["mexc"]
    before = await mexc_get(http, sim, "ticker/price", SYMBOL)
    state = v.market.symbols["BTC/USDT"]
    if not state.trades:  # before any trade: the mid, rounded down to the tick
        bid, ask = state.touch()
        assert bid is not None and ask is not None
        mid = (Decimal(bid[0]) + Decimal(ask[0])) / 2
        assert Decimal(before["price"]) == mid.quantize(Decimal("0.01"), "ROUND_FLOOR")
    sim.step(2000, "mexc")
    trades = list(state.trades)
    assert len(trades) > 20
    price = await mexc_get(http, sim, "ticker/price", SYMBOL)
    assert price == {"symbol": "BTCUSDT", "price": trades[-1].price}
    assert await mexc_get(http, sim, "ticker/price", []) == [price]
    day = await mexc_get(http, sim, "ticker/24hr", SYMBOL)
    qty = sum(Decimal(t.qty) for t in trades)
    prices = [Decimal(t.price) for t in trades]
    assert Decimal(day["volume"]) == qty
    assert Decimal(day["quoteVolume"]) == sum(Decimal(t.price) * Decimal(t.qty) for t in trades)
    assert (Decimal(day["highPrice"]), Decimal(day["lowPrice"])) == (max(prices), min(prices))
    assert (day["openPrice"], day["lastPrice"]) == (trades[0].price, trades[-1].price)
    assert Decimal(day["priceChange"]) == prices[-1] - prices[0]
    assert day["closeTime"] - day["openTime"] == 86_400_000
    bid, ask = state.touch()
    assert (day["bidPrice"], day["askPrice"]) == (bid[0] if bid else None, ask[0] if ask else None)
    # average price: volume-weighted over the trades of the last 5 whole minutes
    now_ms = day["closeTime"]
    recent = [t for t in trades if t.ts_ms // 60_000 >= (now_ms - 300_000) // 60_000]
    avg = await mexc_get(http, sim, "avgPrice", SYMBOL)
    if recent:
        quote = sum((Decimal(t.price) * Decimal(t.qty) for t in recent), Decimal(0))
        vwap = quote / sum((Decimal(t.qty) for t in recent), Decimal(0))
        assert avg == {
            "mins": 5,
            "price": str(vwap.quantize(Decimal("0.01"))).rstrip("0").rstrip("."),
        }
    agg = await mexc_get(http, sim, "aggTrades", [*SYMBOL, ("limit", 5)])
    assert [(a["p"], a["q"], a["T"]) for a in agg] == [
        (t.price, t.qty, t.ts_ms // 1000 * 1000) for t in trades[::-1][:5]
    ]
