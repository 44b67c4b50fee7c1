"""Rebalancing by transfer on a sample built to drain one side: ``mexc`` carries a
persistent premium, so every arbitrage sells BTC on mexc and buys it on gateio, and the
withdrawals that bring the inventory back take minutes (BTC network lognormal, median
3 minutes; USDT over TRC20 1-2 minutes)."""

from __future__ import annotations

import itertools
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from arbsim.analysis import load_run
from arbsim.analysis.report import render_report
from arbsim.app.backtest import default_config_path, run_backtest
from arbsim.app.config import parse_config
from arbsim.core.errors import ConfigError
from arbsim.core.model import to_decimal
from arbsim.data.synth import generate_synthetic

ROUTES = """    transfers:
      BTC: {BTC: {fee: "0.0002", minimum: "0.001", step: "0.00000001",
                  delay: {kind: lognormal, median_s: 180, sigma: 0.4}}}
      USDT: {TRC20: {fee: "1", minimum: "10", step: "0.000001",
                     delay: {kind: uniform, low_s: 60, high_s: 120}}}
"""
ONE = "{method: transfer, every_s: 5, band: 0.1, networks: {USDT: TRC20}}"
MANY = "{method: transfer, every_s: 5, band: 0.1, networks: {USDT: TRC20}, max_in_flight: 4}"
TARGETS = (
    "{method: transfer, every_s: 5, band: 0.1, networks: {USDT: TRC20}, max_in_flight: 4, "
    'targets: {mexc: {BTC: "2.7", USDT: "40000"}, gateio: {BTC: "0.3", USDT: "160000"}}}'
)


@pytest.fixture(scope="module")
def drain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """15 minutes, mexc 10 bps rich, two dislocations a minute, all leaning its way."""
    root = tmp_path_factory.mktemp("drain") / "cat"
    generate_synthetic(
        root, seed=3, duration_s=900.0, premium_bps={"mexc": 10.0}, dislocations_per_min=2.0
    )
    return root


def _config(rebalance: str | None) -> str:
    """The default config with 0.05 BTC per arbitrage, withdrawal routes on both venues
    and ``rebalance``."""
    text = default_config_path().read_text()
    text = text.replace('    max_qty: "0.25"', '    max_qty: "0.05"')
    if rebalance is not None:
        line = next(x for x in text.splitlines() if x.startswith("    rebalance: null"))
        text = text.replace(line, f"    rebalance: {rebalance}")
    for lat in ("{entry_ms: 8.0, response_ms: 8.0}", "{entry_ms: 15.0, response_ms: 15.0}"):
        old = f"    latency: {lat}\n"
        assert old in text
        text = text.replace(old, old + ROUTES)
    return text


def _run(data: Path, out: Path, rebalance: str | None) -> dict[str, Any]:
    cfg = parse_config(_config(rebalance).encode(), "<test>", "backtest")
    return run_backtest(cfg, catalog_path=data, out_dir=out).summary


def _share(s: dict[str, Any]) -> float:
    return float(s["arbs"].get("skipped", 0) / s["arbs"]["decisions"])


def _net_from_files(out: Path, summary: dict[str, Any]) -> D:
    """Net PnL recomputed exactly from the run's files: every fill's flows and fee and
    every withdrawal fee, valued at the summary's end marks."""
    marks = {a: to_decimal(m) for a, m in summary["stats"]["marks"]["end"].items()}
    marks["USDT"] = D(1)
    net = D(0)
    for f in pq.read_table(out / "fills.parquet").to_pylist():
        base, quote = f["symbol"].split("/")
        sign = 1 if f["side"] == 1 else -1
        qty, price = D(f["qty"]), D(f["price"])
        net += sign * qty * marks[base] - sign * qty * price * marks[quote]
        net -= D(f["fee"]) * marks[f["fee_asset"]]
    for t in pq.read_table(out / "transfers.parquet").to_pylist():
        if t["status"] in ("sent", "arrived"):
            net -= D(t["fee"]) * marks[t["asset"]]
    return net


def test_transfers_keep_a_one_sided_flow_funded(drain: Path, tmp_path: Path) -> None:
    """Without rebalancing the flow drains mexc's BTC and gateio's USDT and most
    decisions find no balance (66% measured); one transfer per asset and direction at a
    time cannot keep up with minutes of delay (11%); with four in flight fewer than 5%
    are skipped. The transfers' fees and delays are in transfers.parquet, the summary
    and the report, and the ledger adds up to the last digit from the files."""
    off = _run(drain, tmp_path / "off", None)
    one = _run(drain, tmp_path / "one", ONE)
    many = _run(drain, tmp_path / "many", MANY)
    share = {"off": _share(off), "one": _share(one), "many": _share(many)}
    assert share["off"] > 0.5 and share["one"] > 0.05 and share["many"] < 0.05, share
    # the drain is one-sided: every arbitrage that traded bought on gateio, sold on mexc
    arbs = pq.read_table(tmp_path / "off" / "arbs.parquet").to_pylist()
    traded = [a for a in arbs if a["outcome"] in ("completed", "hedged")]
    assert traded and {(a["buy_venue"], a["sell_venue"]) for a in traded} == {("gateio", "mexc")}
    for s in (off, one, many):
        assert s["status"] == "ok" and s["reconciled_exactly"] is True
    assert D(many["pnl"]["net_exact"]) > D(off["pnl"]["net_exact"])

    out = tmp_path / "many"
    rows = pq.read_table(out / "transfers.parquet").to_pylist()
    t = many["transfers"]
    sent = [r for r in rows if r["status"] in ("sent", "arrived")]
    arrived = [r for r in rows if r["status"] == "arrived"]
    assert t["count"] == len(rows) and t["sent"] == len(sent) and t["arrived"] == len(arrived)
    # BTC goes back to mexc, USDT back to gateio: the direction of the drain
    assert {(r["asset"], r["venue"], r["destination"]) for r in sent} == {
        ("BTC", "gateio", "mexc"),
        ("USDT", "mexc", "gateio"),
    }
    fees = {"BTC": D("0.0002"), "USDT": D("1")}
    for asset in ("BTC", "USDT"):
        mine = [r for r in sent if r["asset"] == asset]
        assert all(D(r["fee"]) == fees[asset] for r in mine)
        assert D(t["fees"][asset]) == fees[asset] * len(mine)
    for r in arrived:
        assert r["delay_s"] == (r["ts_arrived"] - r["ts_sent"]) / 1e9
        if r["asset"] == "USDT":
            assert 60 <= r["delay_s"] <= 120
        else:  # lognormal, median 3 minutes
            assert 30 < r["delay_s"] < 1_200
    assert t["max_delay_s"] == pytest.approx(max(r["delay_s"] for r in arrived))
    assert t["fees_quote"] == pytest.approx(sum(r["fee_quote"] for r in sent))
    # several BTC transfers on their way at once, never more than four
    btc = [r for r in sent if r["asset"] == "BTC"]
    end = max(r["ts_arrived"] or 0 for r in rows) + 1

    def flying(at: int) -> int:
        return sum(1 for r in btc if r["ts_sent"] <= at < (r["ts_arrived"] or end))

    most = max(flying(r["ts_sent"]) for r in btc)
    assert 1 < most <= 4, most
    # one at a time never overlaps
    one_rows = pq.read_table(tmp_path / "one" / "transfers.parquet").to_pylist()
    one_btc = sorted(
        (r for r in one_rows if r["asset"] == "BTC" and r["venue"] == "gateio"),
        key=lambda r: r["ts_sent"],
    )
    for a, b in itertools.pairwise(one_btc):
        assert a["ts_arrived"] is not None and b["ts_sent"] >= a["ts_arrived"]
    # the fees are a cost outside the arbitrages; the ledger adds up from the files
    net, arbs_net = D(many["pnl"]["net_exact"]), D(many["pnl"]["arbs_net_exact"])
    assert net < arbs_net
    assert _net_from_files(out, many) == net
    html = render_report(load_run(out))
    assert "Transfers between venues" in html and "delay in flight" in html
    assert f"{len(rows):,}" in html
    assert f"{sum(r['fee_quote'] for r in sent):,.4f}" in html


def test_targets_pre_position_the_inventory(drain: Path, tmp_path: Path) -> None:
    """With targets, the first check moves what gateio holds over its BTC target to mexc
    (and mexc's USDT over its target to gateio) before any arbitrage asks for it."""
    s = _run(drain, tmp_path / "t", TARGETS)
    assert s["status"] == "ok" and s["reconciled_exactly"] is True
    assert _share(s) < 0.05
    rows = pq.read_table(tmp_path / "t" / "transfers.parquet").to_pylist()
    first = {r["asset"]: r for r in reversed(rows)}  # the first of each asset
    btc, usdt = first["BTC"], first["USDT"]
    assert (btc["venue"], btc["destination"]) == ("gateio", "mexc")
    assert (usdt["venue"], usdt["destination"]) == ("mexc", "gateio")
    # 1.5 - 0.3 over the target, less the fee; 100,000 - 40,000, less the fee
    assert D(btc["amount"]) == D("1.2") - D("0.0002")
    assert D(usdt["amount"]) == D("60000") - D("1")
    # both at the first check (the source's balance read apart)
    starts = min(r["ts_requested"] for r in rows)
    assert max(btc["ts_requested"], usdt["ts_requested"]) - starts < 10**9
    assert _net_from_files(tmp_path / "t", s) == D(s["pnl"]["net_exact"])


@pytest.mark.parametrize(
    ("rebalance", "match"),
    [
        ('{targets: {mexc: {BTC: "1"}}}', "targets and max_in_flight: only with method: transfer"),
        ("{method: transfer, max_in_flight: 0}", "max_in_flight"),
        (
            '{method: transfer, targets: {mexc: {BTC: "-1"}}}',
            r"must be >= 0, got -1 - at `\$.strategy.params.rebalance.targets.mexc.BTC`",
        ),
        ('{method: transfer, targets: {kraken: {BTC: "1"}}}', "rebalance.targets names"),
    ],
    ids=["trade", "in-flight", "negative", "venue"],
)
def test_rebalance_target_options_are_checked(rebalance: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config(_config(rebalance).encode(), "c.yaml", "backtest")
