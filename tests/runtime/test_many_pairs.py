"""Many symbols on three venues: the cross-exchange strategy on a synthetic
three-venue, three-symbol catalog, with per-symbol and total risk limits."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq
import pytest

from arbsim.app.backtest import run_backtest
from arbsim.app.config import parse_config
from arbsim.core.model import OrderRequest, Side
from arbsim.data.synth import generate_synthetic
from arbsim.runtime.arbitrage import ArbParams
from arbsim.runtime.context import Context
from strategies.cross_exchange import CrossExchangeArb

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
VENUES = ["mexc", "gateio", "third"]

CONFIG = """
strategy:
  name: cross_exchange
  params:
    symbols: [BTC/USDT, ETH/USDT, SOL/USDT]
    venues: [mexc, gateio, third]
    max_qty: "0.25"
    max_qty_by_symbol: {{ETH/USDT: "5", SOL/USDT: "100"}}
venues:
  - {{name: mexc, balances: {{BTC: "1.5", ETH: "30", SOL: "600", USDT: "150000"}},
     latency: {{entry_ms: 8.0, response_ms: 8.0}}}}
  - {{name: gateio, balances: {{BTC: "1.5", ETH: "30", SOL: "600", USDT: "150000"}},
     latency: {{entry_ms: 15.0, response_ms: 15.0}}}}
  - {{name: third, balances: {{BTC: "1.5", ETH: "30", SOL: "600", USDT: "150000"}},
     latency: {{entry_ms: 12.0, response_ms: 12.0}}}}
risk:
  max_position: {{BTC: "0.5", ETH: "{eth_cap}", SOL: "200"}}
  max_total_exposure: "100000"
  max_order_notional: "30000"
  max_open_orders: 20
  max_orders_per_s: 30
run: {{drain_s: 1.0, equity_interval_s: 1.0}}
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("three") / "cat"
    generate_synthetic(root, seed=5, duration_s=150.0, symbols=SYMBOLS, venues=VENUES)
    return root


def backtest(catalog: Path, out: Path, eth_cap: str = "10", **kw: Any) -> dict[str, Any]:
    cfg = parse_config(CONFIG.format(eth_cap=eth_cap).encode())
    return run_backtest(cfg, catalog_path=catalog, out_dir=out, **kw).summary


@pytest.fixture(scope="module")
def three(catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    backtest(catalog, out)
    return out


def test_every_symbol_trades_between_every_venue_and_the_books_reconcile(three: Path) -> None:
    import json

    summary = json.loads((three / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["reconciled_exactly"] is True
    assert D(summary["pnl"]["net_exact"]) == D(summary["pnl"]["arbs_net_exact"])
    arbs = pq.read_table(three / "arbs.parquet").to_pandas()
    traded = arbs[arbs.outcome.isin(["completed", "partial", "hedged", "unwound"])]
    assert set(traded.symbol) == set(SYMBOLS)
    assert set(traded.buy_venue) == set(VENUES) and set(traded.sell_venue) == set(VENUES)
    assert arbs.arb_id.is_unique
    fills = pq.read_table(three / "fills.parquet").to_pandas()
    assert set(fills.symbol) == set(SYMBOLS)
    # no fill is counted twice, though each venue numbers its trades per symbol
    assert not fills.duplicated(["venue", "symbol", "trade_id"]).any()


def test_attempts_on_different_symbols_overlap_in_time(three: Path) -> None:
    arbs = pq.read_table(three / "arbs.parquet").to_pandas()
    sent = arbs[~arbs.outcome.isin(["skipped", "denied"])].sort_values("ts_decision")
    rows = list(
        zip(
            sent.symbol.tolist(),
            sent.ts_decision.astype(int).tolist(),
            sent.ts_done.astype(int).tolist(),
            strict=True,
        )
    )
    overlapping = [
        (sym_a, sym_b)
        for i, (sym_a, _, done_a) in enumerate(rows)
        for sym_b, start_b, _ in rows[i + 1 :]
        if start_b < done_a and sym_a != sym_b
    ]
    assert overlapping, "no two attempts on different symbols were in flight together"
    # one symbol runs one attempt at a time
    for sym in SYMBOLS:
        one = sent[sent.symbol == sym].sort_values("ts_decision")
        assert (one.ts_decision.to_numpy()[1:] >= one.ts_done.to_numpy()[:-1]).all()


def test_a_per_symbol_position_limit_stops_that_symbol_only(catalog: Path, tmp_path: Path) -> None:
    summary = backtest(catalog, tmp_path / "run", eth_cap="0.001")
    assert summary["risk"]["denials"].get("position", 0) > 0
    arbs = pq.read_table(tmp_path / "run" / "arbs.parquet").to_pandas()
    eth = arbs[arbs.symbol == "ETH/USDT"]
    assert len(eth) > 0 and set(eth.outcome) <= {"denied", "skipped"}
    others = arbs[arbs.symbol != "ETH/USDT"]
    assert others.outcome.isin(["completed", "hedged"]).sum() > 10
    assert summary["reconciled_exactly"] is True


class ExposureProbe(CrossExchangeArb):
    """At the end of the run, asks the gate about a small ETH order under total-exposure
    limits just below and just above the value of every position."""

    probed: dict[str, Any]

    async def on_stop(self, ctx: Context) -> None:
        await super().on_stop(ctx)
        self.probed = {}
        book = ctx.book("mexc", "ETH/USDT")
        assert book.mid is not None and book.best_ask is not None
        others = 0.0
        for sym in ("BTC/USDT", "SOL/USDT"):
            base = sym.split("/")[0]
            mid = ctx.book("mexc", sym).mid
            assert mid is not None
            others += abs(float(ctx.ledger.position(base))) * mid
        qty = D("0.01")
        own = abs(float(ctx.ledger.position("ETH") + qty)) * book.mid
        req = OrderRequest(venue="mexc", symbol="ETH/USDT", side=Side.BUY, qty=qty,
                           price=ctx.instrument("mexc", "ETH/USDT").tick * 10**9)  # fmt: skip
        limits = ctx.risk.limits
        self.probed["others"] = others
        for name, cap in (("below", own + others / 2), ("above", own + others + 1)):
            ctx.risk.limits = msgspec.structs.replace(limits, max_total_exposure=D(str(cap)))
            denial = ctx.check_entry(req)
            self.probed[name] = None if denial is None else denial.reason
            self.probed[f"own_{name}_cap"] = own < cap
        ctx.risk.limits = limits


def test_the_total_exposure_limit_counts_every_symbol(catalog: Path, tmp_path: Path) -> None:
    probe = ExposureProbe(
        ArbParams(
            symbols=SYMBOLS,
            venues=VENUES,
            max_qty=D("0.25"),
            max_qty_by_symbol={"ETH/USDT": D("5"), "SOL/USDT": D("100")},
        )
    )
    backtest(catalog, tmp_path / "run", strategy=probe)
    assert probe.probed["others"] > 100  # BTC and SOL positions are open at the end
    # the ETH order alone is under the limit: only the other symbols push it over
    assert probe.probed["own_below_cap"] is True
    assert probe.probed["below"] == "exposure"
    assert probe.probed["above"] is None


PAPER = """
strategy:
  name: cross_exchange
  params:
    symbols: [BTC/USDT, ETH/USDT]
    venues: [mexc, gateio]
    max_qty: "0.25"
    max_qty_by_symbol: {ETH/USDT: "5"}
venues:
  - {name: mexc, balances: {BTC: "1.5", ETH: "30", USDT: "150000"},
     latency: {entry_ms: 8.0, response_ms: 8.0}}
  - {name: gateio, balances: {BTC: "1.5", ETH: "30", USDT: "150000"},
     latency: {entry_ms: 15.0, response_ms: 15.0}}
risk: {max_position: {BTC: "0.5", ETH: "10"}, max_total_exposure: "100000"}
run: {drain_s: 0.5, equity_interval_s: 1.0}
"""


@pytest.mark.parametrize("rebalance", [False, True], ids=["arbs", "arbs+rebalancing"])
async def test_paper_trades_two_symbols_against_the_simulator(
    tmp_path: Path, rebalance: bool
) -> None:
    from arbsim.app.realtime import VenueUrls, run_realtime_async
    from exchanges.sim import SimConfig, run_simulator
    from exchanges.sim import VenueConfig as SimVenueConfig

    data = tmp_path / "cat"
    generate_synthetic(data, seed=8, duration_s=200.0, symbols=["BTC/USDT", "ETH/USDT"])
    sim_cfg = SimConfig(
        data=str(data),
        venues=[SimVenueConfig(venue="mexc"), SimVenueConfig(venue="gateio")],
        speed=8,
    )
    async with run_simulator(sim_cfg) as sim:
        urls = {
            name: VenueUrls(v.base_url if name == "mexc" else v.api_url, v.ws_url)
            for name, v in sim.venues.items()
        }
        text = PAPER
        if rebalance:  # every arbitrage drifts a venue past the band
            text = text.replace(
                'max_qty_by_symbol: {ETH/USDT: "5"}',
                'max_qty_by_symbol: {ETH/USDT: "5"}\n'
                "    rebalance: {every_s: 2, band: 0.1, duration_s: 1, slices: 2}",
            )
            assert "rebalance:" in text
        cfg = parse_config(text.encode(), "<test>", "paper")
        result = await run_realtime_async(
            cfg, mode="paper", out_dir=tmp_path / "run", duration_s=20.0, urls=urls, env={}
        )
    s = result.summary
    assert s["status"] == "ok" and s["reconciled_exactly"] is True
    arbs = pq.read_table(tmp_path / "run" / "arbs.parquet").to_pandas()
    traded = arbs[arbs.outcome.isin(["completed", "partial", "hedged", "unwound"])]
    assert set(traded.symbol) == {"BTC/USDT", "ETH/USDT"}, arbs.outcome.value_counts()
    with_fills = arbs[(arbs.buy_filled.map(D) > 0) | (arbs.sell_filled.map(D) > 0)]
    assert s["stats"]["arbs"]["traded"] == len(with_fills) >= len(traded)
    if rebalance:  # TWAPs of IOC children against the simulator's books
        algos = pq.read_table(tmp_path / "run" / "algos.parquet").to_pandas()
        assert s["stats"]["rebalance_orders"] > 0 and (algos.kind == "twap").all()
        assert (algos.outcome == "done").sum() > 0


def test_rebalancing_by_trades_keeps_inventory_to_trade_with(tmp_path: Path) -> None:
    """On the bundled sample the arbitrage flow drains one side of each venue: without
    rebalancing about a quarter of the decisions find no balance; trading each venue back
    to its start every 5 s leaves fewer than 5%, at a cost the summary shows."""
    from arbsim.app.backtest import bundled_sample, default_config_path

    text = default_config_path().read_text()
    line = next(x for x in text.splitlines() if x.startswith("    rebalance: null"))
    rebalance = "    rebalance: {every_s: 5, band: 0.25, duration_s: 3, slices: 3}"
    share = {}
    for name, cfg_text in (("off", text), ("on", text.replace(line, rebalance))):
        out = tmp_path / name
        s = run_backtest(
            parse_config(cfg_text.encode()), catalog_path=bundled_sample(), out_dir=out
        ).summary
        assert s["status"] == "ok" and s["reconciled_exactly"] is True
        share[name] = s["arbs"].get("skipped", 0) / s["arbs"]["decisions"]
        if name == "on":
            st = s["stats"]
            assert st["rebalance_orders"] > 0 and s["strategy"]["rebalances"] > 0
            net, arbs = D(s["pnl"]["net_exact"]), D(s["pnl"]["arbs_net_exact"])
            assert st["other_pnl"] == pytest.approx(float(net - arbs)) and net != arbs
            algos = pq.read_table(out / "algos.parquet").to_pandas()
            orders = pq.read_table(out / "orders.parquet").to_pandas()
            tagged = orders[orders.tag.str.startswith("rebalance-")]
            assert len(tagged) == st["rebalance_orders"]
            assert set(tagged.client_order_id) == {c for cs in algos.children for c in cs}
    assert share["off"] > 0.2 and share["on"] < 0.05, share
