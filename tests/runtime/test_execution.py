"""Execution algorithms (TWAP, VWAP, iceberg) on hand-built replay data: child schedules,
sizes and prices checked by hand, and each parent's slippage against its benchmarks."""

from __future__ import annotations

import itertools
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import builders
import pyarrow.parquet as pq
import pytest
from builders import MS, T0

from arbsim.app.backtest import run_backtest
from arbsim.app.config import parse_config
from arbsim.runtime.execution import AlgoParams

S = 1_000 * MS

CONFIG = """
strategy:
  name: execution
  params:
    algos: {algos}
venues:
  - name: mexc
    rules: generic
    balances: {{USDT: "100000", BTC: "10"}}
    latency: {{entry_ms: 1.0, response_ms: 1.0}}
risk: {{max_position: {{BTC: "10"}}, max_total_exposure: "1000000", max_open_orders: 10}}
run: {{drain_s: 1.0, equity_interval_s: 1.0}}
"""


def market(trade_size: float, trades: int = 30) -> builders.VenueData:
    """A still book 99.9 / 100.0 (10 each) and a buy trade at 100.0 every second from
    T0 + 0.5 s; the book is refreshed every 100 ms so the run's clock moves on."""
    m = builders.VenueData(builders.instrument("mexc"))
    m.message(T0, T0, bids=[(99.9, 10.0)], asks=[(100.0, 10.0)], snapshot=True)
    for i in range(1, 10 * trades):
        m.message(T0 + i * 100 * MS, T0 + i * 100 * MS, bids=[(99.9, 10.0)])
    for i in range(trades):
        t = T0 + 500 * MS + i * S
        m.trade(t, t, 1, 100.0, trade_size)
    return m


def run(tmp_path: Path, algos: str, trade_size: float = 0.5) -> Path:
    builders.write_catalog(tmp_path / "cat", [market(trade_size)])
    cfg = parse_config(CONFIG.format(algos=algos).encode())
    out = tmp_path / "run"
    res = run_backtest(cfg, catalog_path=tmp_path / "cat", out_dir=out)
    assert res.summary["status"] == "ok" and res.summary["reconciled_exactly"] is True
    return out


def children(out: Path) -> list[dict[str, Any]]:
    algos = pq.read_table(out / "algos.parquet").to_pylist()
    orders = {o["client_order_id"]: o for o in pq.read_table(out / "orders.parquet").to_pylist()}
    assert len(algos) == 1
    return [orders[c] for c in algos[0]["children"]]


def test_twap_slices_evenly_and_measures_its_slippage(tmp_path: Path) -> None:
    out = run(tmp_path, "[{kind: twap, venue: mexc, symbol: BTC/USDT, side: buy, qty: '1.0',"
                        " duration_s: 10, slices: 5, limit_offset_bps: 5}]")  # fmt: skip
    (algo,) = pq.read_table(out / "algos.parquet").to_pylist()
    kids = children(out)
    # five children of 0.2, two seconds apart from the start, IOC at 100.0 x 1.0005 -> 100.1
    assert [o["qty"] for o in kids] == ["0.200"] * 5
    assert [(o["ts_sent"] - algo["ts_start"]) // MS for o in kids] == [0, 2000, 4000, 6000, 8000]
    assert {o["price"] for o in kids} == {"100.1"} and {o["tif"] for o in kids} == {"ioc"}
    assert {o["tag"] for o in kids} == {"algo-1"}
    assert algo["outcome"] == "done" and D(algo["filled"]) == D("1.0")
    assert algo["avg_price"] == pytest.approx(100.0)
    assert algo["arrival_price"] == pytest.approx(99.95)
    # a buy at 100.0 against a 99.95 mid costs 5.0025 bps; the market traded at 100.0 only
    assert algo["slippage_arrival_bps"] == pytest.approx(0.05 / 99.95 * 1e4)
    assert algo["interval_vwap"] == pytest.approx(100.0)
    assert algo["slippage_vwap_bps"] == pytest.approx(0.0)
    # it ran from the start to its last child (+8 s): the trades at +0.5 ... +7.5 s
    assert algo["market_qty"] == pytest.approx(0.5 * 8)
    assert algo["fees_quote"] == pytest.approx(1.0 * 100.0 * 0.001)


def test_vwap_follows_its_profile(tmp_path: Path) -> None:
    out = run(tmp_path, "[{kind: vwap, venue: mexc, symbol: BTC/USDT, side: sell, qty: '0.8',"
                        " duration_s: 6, slices: 3, profile: [1, 2, 1]}]")  # fmt: skip
    kids = children(out)
    # 1/4, 2/4, 1/4 of 0.8 at 0, 2 and 4 s, each IOC at 99.9 x 0.9995 -> 99.8 (floored)
    assert [o["qty"] for o in kids] == ["0.200", "0.400", "0.200"]
    assert {o["price"] for o in kids} == {"99.8"}
    (algo,) = pq.read_table(out / "algos.parquet").to_pylist()
    assert algo["outcome"] == "done" and algo["avg_price"] == pytest.approx(99.9)
    # a sell at 99.9 against a 99.95 mid: a cost of 5.0025 bps; against the 100.0 VWAP, 10
    assert algo["slippage_arrival_bps"] == pytest.approx(0.05 / 99.95 * 1e4)
    assert algo["slippage_vwap_bps"] == pytest.approx(10.0)


def test_a_participation_cap_waits_for_volume_and_carries_the_rest(tmp_path: Path) -> None:
    out = run(tmp_path, "[{kind: twap, venue: mexc, symbol: BTC/USDT, side: buy, qty: '1.0',"
                        " duration_s: 8, slices: 4, participation: 0.5}]")  # fmt: skip
    kids = children(out)
    (algo,) = pq.read_table(out / "algos.parquet").to_pylist()
    # at 0 s nothing has traded: no child. At 2, 4 and 6 s the market traded 1.0 since
    # the last child (0.5 at +0.5 and +1.5 s, ...): a cap of 0.5. The schedule asks for
    # 0.5 by 2 s (capped 0.5), 0.75 by 4 s (0.25 more) and all by 6 s (0.25 more)
    assert [o["qty"] for o in kids] == ["0.500", "0.250", "0.250"]
    assert [(o["ts_sent"] - algo["ts_start"]) // MS for o in kids] == [2000, 4000, 6000]
    assert algo["outcome"] == "done"


def test_an_iceberg_shows_one_slice_at_a_time(tmp_path: Path) -> None:
    out = run(tmp_path, "[{kind: iceberg, venue: mexc, symbol: BTC/USDT, side: sell,"
                        " qty: '0.3', show_qty: '0.1', max_s: 20}]", trade_size=6.0)  # fmt: skip
    kids = children(out)
    (algo,) = pq.read_table(out / "algos.parquet").to_pylist()
    # three GTC children of 0.1 at the ask (100.0), each shown once the last one filled
    assert [(o["qty"], o["price"], o["tif"]) for o in kids] == [("0.100", "100.0", "gtc")] * 3
    assert all(o["status"] == "filled" for o in kids)
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    last_fill = {f["client_order_id"]: f["ts_local"] for f in fills}
    for before, after in itertools.pairwise(kids):
        assert after["ts_sent"] >= last_fill[before["client_order_id"]]
    assert {f["liquidity"] for f in fills} == {"maker"}
    assert algo["outcome"] == "done" and algo["avg_price"] == pytest.approx(100.0)
    # selling at 100.0 against a 99.95 mid is a gain: a negative cost
    assert algo["slippage_arrival_bps"] == pytest.approx(-0.05 / 99.95 * 1e4)


def test_an_iceberg_that_cannot_fill_in_time_is_cancelled_and_partial(tmp_path: Path) -> None:
    out = run(tmp_path, "[{kind: iceberg, venue: mexc, symbol: BTC/USDT, side: buy,"
                        " qty: '0.3', show_qty: '0.1', max_s: 3}]")  # fmt: skip
    kids = children(out)
    (algo,) = pq.read_table(out / "algos.parquet").to_pylist()
    # a bid at 99.9 behind 10 BTC: buy-side trades never reach it; cancelled at 3 s
    assert len(kids) == 1 and kids[0]["status"] == "canceled"
    assert algo["outcome"] == "failed" and D(algo["filled"]) == 0
    assert (algo["ts_done"] - algo["ts_start"]) // MS >= 3000


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"profile": [1.0, 2.0]}, "2 weights for 10 slices"),
        ({"participation": 1.5}, "participation"),
        ({"kind": "iceberg"}, "show_qty"),
        ({"qty": D("0")}, "qty"),
    ],
)
def test_bad_parameters_are_refused(fields: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"kind": "twap", "venue": "mexc", "symbol": "BTC/USDT",
                               "side": "buy", "qty": D("1")}  # fmt: skip
    with pytest.raises(ValueError, match=message):
        AlgoParams(**{**base, **fields})  # type: ignore[arg-type]


async def test_a_twap_works_in_paper_mode_against_the_simulator(tmp_path: Path) -> None:
    from arbsim.app.realtime import VenueUrls, run_realtime_async
    from exchanges.sim import SimConfig, run_simulator
    from exchanges.sim import VenueConfig as SimVenueConfig

    text = (
        "strategy: {name: execution, params: {algos: [{kind: twap, venue: mexc,"
        " symbol: BTC/USDT, side: buy, qty: '0.04', duration_s: 3, slices: 4}]}}\n"
        "venues:\n"
        "  - {name: mexc, balances: {USDT: '100000', BTC: '1'},"
        " latency: {entry_ms: 5.0, response_ms: 5.0}}\n"
        "run: {drain_s: 0.5, equity_interval_s: 1.0}\n"
    )
    cfg = parse_config(text.encode(), "<test>", "paper")
    sim_cfg = SimConfig(venues=[SimVenueConfig(venue="mexc")], speed=1)
    async with run_simulator(sim_cfg) as sim:
        v = sim.venues["mexc"]
        result = await run_realtime_async(
            cfg, mode="paper", out_dir=tmp_path / "run", duration_s=6.0,
            urls={"mexc": VenueUrls(v.base_url, v.ws_url)}, env={},
        )  # fmt: skip
    assert result.summary["status"] == "ok" and result.summary["reconciled_exactly"] is True
    (algo,) = pq.read_table(tmp_path / "run" / "algos.parquet").to_pylist()
    kids = children(tmp_path / "run")
    assert [D(o["qty"]) for o in kids] == [D("0.01")] * 4
    gaps = [(b["ts_sent"] - a["ts_sent"]) / S for a, b in itertools.pairwise(kids)]
    assert all(0.7 < g < 1.3 for g in gaps), gaps  # 0.75 s apart, on the wall clock
    assert algo["outcome"] == "done" and algo["arrival_price"] > 0
