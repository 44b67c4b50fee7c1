"""Latency models, FIFO order entry and the feed offset."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import MS, T0, VenueData, instrument, write_catalog

from arbsim.app.backtest import run_backtest
from arbsim.app.config import parse_config
from arbsim.core.book import OrderBook
from arbsim.core.errors import ConfigError, DataError
from arbsim.core.model import Order, OrderRequest, Side, TimeInForce
from arbsim.runtime.context import Context
from arbsim.runtime.latency import EmpiricalLatency, LatencyConfig, LatencySpec, build_latency
from arbsim.runtime.strategy import Strategy


def test_constant_and_per_kind_override() -> None:
    m = build_latency(
        LatencyConfig(
            entry_ms=5, response_ms=7, per_kind={"cancel": LatencySpec(entry_ms=1, response_ms=2)}
        )
    )
    assert m.sample("place") == (5_000_000, 7_000_000)
    assert m.sample("cancel") == (1_000_000, 2_000_000)
    assert "cancel: constant(entry=1ms, response=2ms)" in m.describe()


def test_lognormal_is_seeded_and_has_the_configured_median() -> None:
    cfg = LatencyConfig(model="lognormal", entry_ms=10, response_ms=20, sigma=0.5, seed=3)
    a = [build_latency(cfg).sample("place") for _ in range(1)]
    m1, m2 = build_latency(cfg), build_latency(cfg)
    draws1 = np.array([m1.sample("place") for _ in range(20_000)])
    draws2 = np.array([m2.sample("place") for _ in range(20_000)])
    assert (draws1 == draws2).all() and a[0] == tuple(draws1[0])  # same seed, same draws
    assert np.median(draws1[:, 0]) == pytest.approx(10e6, rel=0.03)
    assert np.median(draws1[:, 1]) == pytest.approx(20e6, rel=0.03)
    # sigma is the log-space standard deviation
    assert np.std(np.log(draws1[:, 0])) == pytest.approx(0.5, rel=0.05)
    other = build_latency(LatencyConfig(model="lognormal", entry_ms=10, sigma=0.5, seed=4))
    assert other.sample("place") != tuple(draws1[0])


def test_empirical_resamples_recorded_round_trips(tmp_path: Path) -> None:
    table = pa.table(
        {
            "ts": [1, 2, 3, 4],
            "kind": ["place", "place", "cancel", "feed_sample"],
            "venue": ["a"] * 4,
            "latency_ns": [10_000_000, 30_000_000, 99, 5],
        }
    )
    pq.write_table(table, tmp_path / "latency.parquet")
    m = EmpiricalLatency.from_file(tmp_path / "latency.parquet", ("place",), 0.25, seed=1)
    seen = {m.sample("place") for _ in range(200)}
    assert seen == {(2_500_000, 7_500_000), (7_500_000, 22_500_000)}
    (tmp_path / "rt.csv").write_text("latency_ms\n4\n")
    m = EmpiricalLatency.from_file(tmp_path / "rt.csv", ("place",), 0.5, seed=1)
    assert m.sample("cancel") == (2_000_000, 2_000_000)
    (tmp_path / "bad.csv").write_text("rtt\n4\n")
    with pytest.raises(DataError, match="latency_ms"):
        EmpiricalLatency.from_file(tmp_path / "bad.csv", ("place",), 0.5, seed=1)
    with pytest.raises(DataError, match="not found"):
        EmpiricalLatency.from_file(tmp_path / "none.parquet", ("place",), 0.5, seed=1)
    with pytest.raises(ValueError, match="no recorded round trips"):
        EmpiricalLatency.from_file(tmp_path / "latency.parquet", ("fetch_order",), 0.5, seed=1)


def test_empirical_reads_only_its_venues_rows(tmp_path: Path) -> None:
    table = pa.table(
        {
            "ts": [1, 2],
            "kind": ["place", "place"],
            "venue": ["a", "b"],
            "latency_ns": [10_000_000, 30_000_000],
        }
    )
    pq.write_table(table, tmp_path / "latency.parquet")
    m = EmpiricalLatency.from_file(tmp_path / "latency.parquet", ("place",), 0.5, 1, venue="b")
    assert {m.sample("place") for _ in range(50)} == {(15_000_000, 15_000_000)}
    with pytest.raises(DataError, match=r"no latencies of venue 'c' \(it has a, b\)"):
        EmpiricalLatency.from_file(tmp_path / "latency.parquet", ("place",), 0.5, 1, venue="c")


def _session(tmp_path: Path) -> Path:
    """A run directory as a session writes it: two arbs' legs, a hedge, measured latencies."""
    ms = 1_000_000
    orders = [
        # client id, venue, sent, accepted, ack
        ("o1", "a", 1_000 * ms, 1_008 * ms, 1_020 * ms),
        ("o2", "b", 1_000 * ms, 1_015 * ms, 1_031 * ms),
        ("o3", "a", 1_040 * ms, 1_049 * ms, 1_058 * ms),  # a hedge: no decision before it
        ("o4", "a", 2_000 * ms, 0, 2_010 * ms),  # no accepted time: split by entry_share
        ("o5", "b", 2_000 * ms, 2_020 * ms, 2_041 * ms),
        ("o6", "a", 0, 0, 0),  # seen only as an update: never sent by the session
    ]
    pq.write_table(
        pa.table(
            {
                "client_order_id": [o[0] for o in orders],
                "venue": [o[1] for o in orders],
                "ts_sent": [o[2] for o in orders],
                "ts_accepted": [o[3] for o in orders],
                "ts_ack": [o[4] for o in orders],
            }
        ),
        tmp_path / "orders.parquet",
    )
    # arb 1 was triggered at 960 ms and fetched balances at 962 ms (answered at 992 and
    # 998 ms); its legs left at 1,000 ms
    pq.write_table(
        pa.table(
            {
                "ts_trigger": [960 * ms, 1_960 * ms],
                "ts_done": [1_058 * ms, 2_041 * ms],
                "orders": [["o1", "o2", "o3"], ["o4", "o5"]],
            }
        ),
        tmp_path / "arbs.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "ts": [962 * ms, 962 * ms, 999 * ms, 1_961 * ms, 1_999 * ms, 3_000 * ms],
                "kind": [
                    "fetch_balances",
                    "fetch_balances",
                    "tick_to_trade",
                    "fetch_balances",
                    "tick_to_trade",
                    "cancel",
                ],
                "venue": ["a", "b", "a", "a", "a", "a"],
                "latency_ns": [30 * ms, 36 * ms, 39 * ms, 37 * ms, 39 * ms, 6 * ms],
            }
        ),
        tmp_path / "latency.parquet",
    )
    return tmp_path


def test_session_latency_replays_each_order_in_order(tmp_path: Path) -> None:
    run = _session(tmp_path)
    ms = 1_000_000
    a = build_latency(LatencyConfig(model="session", source=str(run), entry_share=0.5), "a")
    # o1: entry 8 ms + the 2 ms from the last balance answer (998 ms) to leaving
    assert a.sample("place") == (10 * ms, 12 * ms)
    assert a.sample("place") == (9 * ms, 9 * ms)  # the hedge: as measured
    # o4: no accepted time, 10 ms split in half, plus 2 ms after its balances
    assert a.sample("place") == (7 * ms, 5 * ms)
    assert a.sample("place") == (10 * ms, 12 * ms)  # then again from the start
    # balance fetches carry the time from their arbitrage's trigger to leaving (2, 1 ms)
    assert a.sample("fetch_balances") == (17 * ms, 15 * ms)
    assert a.sample("fetch_balances") == (19_500_000, 18_500_000)
    assert a.sample("cancel") == (3 * ms, 3 * ms)  # outside any arbitrage: as measured
    assert a.sample("fetch_order") == (9 * ms, 9 * ms)  # never measured: the place ones
    b = build_latency(LatencyConfig(model="session", source=str(run)), "b")
    assert b.sample("place") == (17 * ms, 16 * ms)  # 15 ms + 2 ms after the balances
    assert b.sample("fetch_balances") == (20 * ms, 18 * ms)
    assert "replayed in order: 1 fetch_balances, 2 place" in b.describe()
    with pytest.raises(ValueError, match="venue 'c' placed no order"):
        build_latency(LatencyConfig(model="session", source=str(run)), "c")
    with pytest.raises(ValueError, match="needs the venue"):
        build_latency(LatencyConfig(model="session", source=str(run)))
    (run / "arbs.parquet").unlink()
    with pytest.raises(DataError, match=r"arbs.parquet: missing"):
        build_latency(LatencyConfig(model="session", source=str(run)), "a")


def test_latency_config_errors_name_the_key() -> None:
    base = 'venues:\n  - name: a\n    balances: {USDT: "1"}\n    latency: '
    with pytest.raises(
        ConfigError, match=r"per_kind: unknown request kind 'plac' .* - at `\$.venues\[0\].latency`"
    ):
        parse_config((base + "{per_kind: {plac: {entry_ms: 1}}}").encode())
    with pytest.raises(ConfigError, match="'empirical' needs `source`"):
        parse_config((base + "{model: empirical}").encode())
    with pytest.raises(ConfigError, match=r"Invalid enum value 'gaussian' - at `\$.venues\[0\]"):
        parse_config((base + "{model: gaussian}").encode())


class Burst(Strategy):
    """Sends ``n`` IOC buys at once; records the exchange order ids in send order."""

    Params = None

    def __init__(self, params: object = None, n: int = 30) -> None:
        self.n = n
        self.acks: list[Order] = []
        self.sent: list[str] = []

    async def on_start(self, ctx: Context) -> None:
        import asyncio

        reqs = [
            OrderRequest(
                venue="a",
                symbol="BTC/USDT",
                side=Side.BUY,
                qty=Decimal("0.01"),
                price=Decimal("100.1"),
                tif=TimeInForce.IOC,
                client_order_id=ctx.new_client_order_id(),
            )
            for _ in range(self.n)
        ]
        self.sent = [r.client_order_id for r in reqs]
        self.acks = list(await asyncio.gather(*(ctx.place_order(r) for r in reqs)))


def _one_venue(tmp_path: Path) -> Path:
    v = VenueData(instrument("a"))
    v.message(T0, T0 + 20 * MS, bids=[(100.0, 5.0)], asks=[(100.1, 5.0)], snapshot=True)
    for k in range(1, 200):
        v.message(T0 + k * 10 * MS, T0 + k * 10 * MS + 20 * MS, bids=[(100.0, 5.0 + k)])
    write_catalog(tmp_path / "cat", [v])
    return tmp_path / "cat"


def test_random_latency_never_reorders_one_venues_requests(tmp_path: Path) -> None:
    cfg = parse_config(b"""
venues:
  - name: a
    balances: {USDT: "100000", BTC: "0"}
    latency: {model: lognormal, entry_ms: 5, response_ms: 5, sigma: 1.5, seed: 11}
risk: {max_orders_per_s: 1000, max_open_orders: 1000}
""")
    s = Burst()
    summary = run_backtest(
        cfg, catalog_path=_one_venue(tmp_path), out_dir=tmp_path / "r", strategy=s
    ).summary
    assert "lognormal(entry median=5ms" in summary["venues"]["a"]["latency"]
    # exchange order ids are assigned on arrival: FIFO means they follow the send order
    by_cid = {o.client_order_id: int(o.order_id) for o in s.acks}
    assert [by_cid[c] for c in s.sent] == sorted(by_cid.values())
    # and the draws really varied (sigma 1.5): the round trips are not all equal
    rtts = json.loads((tmp_path / "r" / "summary.json").read_text())["latency_ms"]["place"]
    assert rtts["p90"] > rtts["p50"] * 1.05


class BookWatch(Strategy):
    Params = None

    def __init__(self, params: object = None) -> None:
        self.seen: list[tuple[int, int]] = []

    def on_book(self, ctx: Context, venue: str, book: OrderBook) -> None:
        self.seen.append((book.ts_exchange, book.ts_local))


def test_feed_offset_delays_what_the_strategy_sees(tmp_path: Path) -> None:
    cat = _one_venue(tmp_path)
    runs = {}
    for off in (0, 7):
        text = f'venues:\n  - name: a\n    balances: {{USDT: "1"}}\n    feed_offset_ms: {off}\n'
        cfg = parse_config(text.encode())
        s = BookWatch()
        out = run_backtest(cfg, catalog_path=cat, out_dir=tmp_path / f"r{off}", strategy=s)
        runs[off] = (s.seen, out.summary)
    base, shifted = dict(runs[0][0]), dict(runs[7][0])
    common = set(base) & set(shifted)
    assert len(common) > 100
    assert all(shifted[t] == base[t] + 7 * MS for t in common)
    feed0 = runs[0][1]["latency_ms"]["feed.a"]["p50"]
    feed7 = runs[7][1]["latency_ms"]["feed.a"]["p50"]
    assert feed7 == pytest.approx(feed0 + 7.0)
