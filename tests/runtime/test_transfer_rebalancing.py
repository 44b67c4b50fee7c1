"""Inventory rebalancing by transfers between venues, in a backtest on the bundled sample
and in paper trading against the exchange simulator; the amortised transfer cost in the
net-profit check; per-venue risk limits."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import builders
import pyarrow.parquet as pq
import pytest
from builders import T0

from arbsim.analysis import load_run
from arbsim.analysis.frames import inventory, transfers
from arbsim.analysis.report import render_report
from arbsim.app.backtest import bundled_sample, default_config_path, run_backtest
from arbsim.app.config import parse_config
from arbsim.core.book import OrderBook
from arbsim.core.errors import ConfigError, DataError
from arbsim.core.model import to_decimal
from arbsim.runtime.arbitrage import ArbParams, find_opportunity
from arbsim.runtime.journal import Journal
from arbsim.runtime.risk import RiskLimits, RiskManager

# BTC over its own network, USDT over TRC20; short delays: the sample lasts 20 minutes
ROUTES = """    transfers:
      BTC: {BTC: {fee: "0.0002", minimum: "0.001", step: "0.00000001",
                  delay: {kind: lognormal, median_s: 10, sigma: 0.5}}}
      USDT: {TRC20: {fee: "1", minimum: "10", step: "0.000001",
                     delay: {kind: uniform, low_s: 5, high_s: 15}}}
"""
TRANSFER = "    rebalance: {method: transfer, every_s: 1, band: 0.1, networks: {USDT: TRC20}}"


def _config(
    rebalance: str | None = None, routes: str = ROUTES, params: dict[str, str] | None = None
) -> str:
    """The default backtest config, with withdrawal routes on both venues, ``rebalance``
    instead of ``rebalance: null`` and strategy ``params`` (name -> YAML value) set."""
    text = default_config_path().read_text()
    line = next(x for x in text.splitlines() if x.startswith("    rebalance: null"))
    if rebalance is not None:
        text = text.replace(line, rebalance)
    for key, value in (params or {}).items():
        old = next(x for x in text.splitlines() if x.startswith(f"    {key}: "))
        text = text.replace(old, f"    {key}: {value}")
    for lat in ("{entry_ms: 8.0, response_ms: 8.0}", "{entry_ms: 15.0, response_ms: 15.0}"):
        old = f"    latency: {lat}\n"
        assert old in text
        text = text.replace(old, old + routes)
    return text


def _run(tmp_path: Path, name: str, text: str) -> dict[str, Any]:
    out = tmp_path / name
    cfg = parse_config(text.encode(), "<test>", "backtest")
    return run_backtest(cfg, catalog_path=bundled_sample(), out_dir=out).summary


def _ledger_net_from_files(out: Path, summary: dict[str, Any]) -> D:
    """The ledger's net PnL recomputed exactly from the run's files: every fill's flows
    and every transfer's fee (amounts only move between venues or are in flight), valued
    at the end marks the summary used."""
    marks = {a: to_decimal(m) for a, m in summary["stats"]["marks"]["end"].items()}
    marks["USDT"] = D(1)
    net = D(0)
    for f in pq.read_table(out / "fills.parquet").to_pylist():
        base, quote = f["symbol"].split("/")
        qty, price = D(f["qty"]), D(f["price"])
        sign = 1 if f["side"] == 1 else -1
        net += sign * qty * marks[base] - sign * qty * price * marks[quote]
        net -= D(f["fee"]) * marks[f["fee_asset"]]
    path = out / "transfers.parquet"
    for t in pq.read_table(path).to_pylist() if path.exists() else []:
        if t["status"] in ("sent", "arrived"):
            net -= D(t["fee"]) * marks[t["asset"]]
    return net


def test_transfer_rebalancing_keeps_inventory_to_trade_with(tmp_path: Path) -> None:
    """Without rebalancing about a quarter of the sample's decisions find no balance;
    withdrawing each asset's excess to the venue short of it leaves fewer than 5%. The
    transfers' fees and delays are in transfers.parquet, the summary and the report; the
    ledger reconciles exactly and adds up, to the last digit, from the files."""
    off = _run(tmp_path, "off", _config())
    on = _run(tmp_path, "on", _config(TRANSFER))
    share = {
        k: s["arbs"].get("skipped", 0) / s["arbs"]["decisions"]
        for k, s in (("off", off), ("on", on))
    }
    assert share["off"] > 0.2 and share["on"] < 0.05, share
    assert "transfers" not in off and not (tmp_path / "off" / "transfers.parquet").exists()
    assert on["status"] == "ok" and on["reconciled_exactly"] is True
    out = tmp_path / "on"
    rows = pq.read_table(out / "transfers.parquet").to_pylist()
    t = on["transfers"]
    assert t["count"] == len(rows) == on["strategy"]["rebalance_transfers"] > 10
    sent = [r for r in rows if r["status"] in ("sent", "arrived")]
    arrived = [r for r in rows if r["status"] == "arrived"]
    assert t["sent"] == len(sent) and t["arrived"] == len(arrived) > 0
    assert {r["asset"] for r in sent} == {"BTC", "USDT"}
    steps = {"BTC": D("0.00000001"), "USDT": D("0.000001")}
    fees = {"BTC": D("0.0002"), "USDT": D("1")}
    for r in sent:
        amount = D(r["amount"])
        assert D(r["fee"]) == fees[r["asset"]] and amount % steps[r["asset"]] == 0
        assert amount >= (D("0.001") if r["asset"] == "BTC" else D("10"))
        assert r["venue"] != r["destination"] and r["ts_sent"] == r["ts_requested"]
        assert r["network"] == ("BTC" if r["asset"] == "BTC" else "TRC20")
    for r in arrived:
        assert r["delay_s"] == (r["ts_arrived"] - r["ts_sent"]) / 1e9
        if r["asset"] == "USDT":  # uniform between 5 and 15 s
            assert 5 <= r["delay_s"] <= 15
    assert t["max_delay_s"] == pytest.approx(max(r["delay_s"] for r in arrived))
    for asset in ("BTC", "USDT"):
        assert D(t["fees"][asset]) == fees[asset] * sum(1 for r in sent if r["asset"] == asset)
    flight: dict[str, D] = {}
    for r in rows:
        if r["status"] == "sent":
            flight[r["asset"]] = flight.get(r["asset"], D(0)) + D(r["amount"])
    assert {a: D(v) for a, v in t["in_flight_at_end"].items()} == {
        a: v for a, v in flight.items() if v
    }
    # the fees are a cost outside the arbitrages, and in the summary's fees
    net, arbs = D(on["pnl"]["net_exact"]), D(on["pnl"]["arbs_net_exact"])
    assert on["stats"]["other_pnl"] == pytest.approx(float(net - arbs)) and net < arbs
    assert t["fees_quote"] == pytest.approx(sum(r["fee_quote"] for r in sent))
    assert _ledger_net_from_files(out, on) == net
    # the report shows them; the inventory frame moves funds by them
    run = load_run(out)
    assert len(transfers(run)) == len(rows)
    html = render_report(run)
    assert "Transfers between venues" in html and "delay in flight" in html
    inv = inventory(run)
    end = inv.groupby(["venue", "asset"])["balance"].last()
    mexc_btc = D("1.5")
    for f in pq.read_table(out / "fills.parquet").to_pylist():
        if f["venue"] == "mexc":
            mexc_btc += D(f["qty"]) * (1 if f["side"] == 1 else -1)
            mexc_btc -= D(f["fee"]) if f["fee_asset"] == "BTC" else 0
    for r in sent:
        if r["asset"] == "BTC" and r["venue"] == "mexc":
            mexc_btc -= D(r["amount"]) + D(r["fee"])
        if r["asset"] == "BTC" and r["destination"] == "mexc" and r["status"] == "arrived":
            mexc_btc += D(r["amount"])
    assert end["mexc", "BTC"] == pytest.approx(float(mexc_btc), abs=1e-9)
    # a transfers file that is not one is refused, naming it
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    (bad / "transfers.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"transfers\.parquet: not a readable Parquet file"):
        load_run(bad)


def test_ledger_reconciles_with_transfers_in_flight_at_the_end(tmp_path: Path) -> None:
    """Transfers of 400 s from minute 13 on are still in flight when the 20-minute sample
    ends: in no venue's balance, but the ledger and the venues agree exactly and the
    run's value counts them (no dip in equity by the amount in flight)."""
    slow = ROUTES.replace(
        "delay: {kind: lognormal, median_s: 10, sigma: 0.5}", "delay: {seconds: 400}"
    )
    slow = slow.replace("delay: {kind: uniform, low_s: 5, high_s: 15}", "delay: {seconds: 400}")
    s = _run(tmp_path, "slow", _config(TRANSFER, slow))
    assert s["status"] == "ok" and s["reconciled_exactly"] is True
    flight = s["transfers"]["in_flight_at_end"]
    assert flight and all(D(v) > 0 for v in flight.values())
    rows = pq.read_table(tmp_path / "slow" / "transfers.parquet").to_pylist()
    assert all(r["delay_s"] == 400.0 for r in rows if r["status"] == "arrived")
    assert _ledger_net_from_files(tmp_path / "slow", s) == D(s["pnl"]["net_exact"])
    # the last equity sample values what is in flight: net PnL stays near the arbitrages'
    eq = pq.read_table(tmp_path / "slow" / "equity.parquet").to_pylist()
    assert eq[-1]["net_pnl"] == pytest.approx(s["pnl"]["net"], abs=1.0)
    # without what is in flight, the run would show a loss of most of it
    mark = s["stats"]["marks"]["end"]["BTC"]
    away = sum(float(v) * (1.0 if a == "USDT" else mark) for a, v in flight.items())
    assert s["pnl"]["net"] > 0 > s["pnl"]["net"] - away


def test_routes_alone_change_nothing(tmp_path: Path) -> None:
    """Transfer routes on the venues, rebalancing by trades (the default) and the new
    strategy keys at their defaults: the outputs are the same bytes as without them."""
    plain = default_config_path().read_text()
    _run(tmp_path, "plain", plain)
    _run(tmp_path, "routes", _config())
    for name in ("orders", "fills", "arbs", "equity"):
        a = (tmp_path / "plain" / f"{name}.parquet").read_bytes()
        b = (tmp_path / "routes" / f"{name}.parquet").read_bytes()
        assert a == b, name


def test_transfer_cost_is_counted_in_each_arbitrage(tmp_path: Path) -> None:
    """The amortised cost of buying on A and selling on B is A's BTC fee over the typical
    BTC transfer plus B's USDT fee over the typical USDT transfer: with band 0.1 of the
    start balances, 0.0002 / 0.15 + 1 / 10,000 = 14.333... bps. Every arbitrage decided
    expects at least min_edge_bps after it."""
    s = _run(tmp_path, "cost", _config(TRANSFER, params={"transfer_cost": "true"}))
    want = (0.0002 / 0.15 + 1 / 10_000) * 1e4
    costs = s["strategy"]["transfer_cost_bps"]
    assert costs == {
        "BTC/USDT mexc->gateio": pytest.approx(want),
        "BTC/USDT gateio->mexc": pytest.approx(want),
    }
    arbs = pq.read_table(tmp_path / "cost" / "arbs.parquet").to_pylist()
    assert arbs and min(a["expected_edge_bps"] for a in arbs) >= 5.0 - 1e-9
    # an explicit typical size replaces band x start
    s2 = _run(
        tmp_path,
        "size",
        _config(
            TRANSFER,
            params={"transfer_cost": "true", "transfer_size": '{BTC: "0.5", USDT: "20000"}'},
        ),
    )
    want2 = (0.0002 / 0.5 + 1 / 20_000) * 1e4
    assert s2["strategy"]["transfer_cost_bps"]["BTC/USDT mexc->gateio"] == pytest.approx(want2)


def test_find_opportunity_counts_a_cost_in_edge_and_pnl() -> None:
    a_inst, b_inst = builders.instrument("mexc"), builders.instrument("gateio")

    def book(inst: Any, bid: float, ask: float) -> OrderBook:
        b = OrderBook(inst.venue, inst.symbol, inst.tick)
        b.apply([bid], [1.0], [ask], [1.0], ts_exchange=T0, ts_local=T0, snapshot=True)
        return b

    a, b = book(a_inst, 99.8, 100.0), book(b_inst, 101.0, 101.2)
    p = ArbParams(min_edge_bps=5.0, max_qty=D("0.5"))
    plain = find_opportunity(a, b, a_inst, b_inst, p, T0)
    costly = find_opportunity(a, b, a_inst, b_inst, p, T0, 20.0)
    assert plain is not None and costly is not None
    # 0.5 * (101 * 0.999 - 100 * 1.001) = 0.3995; the cost: 0.5 * 100 * 20 bps = 0.1
    assert costly.exp_pnl == pytest.approx(0.3995 - 0.1, abs=1e-9)
    assert costly.edge_bps == pytest.approx(plain.edge_bps - 20.0)
    # the edge after fees is 79.9 bps: a cost that leaves less than min_edge_bps blocks it
    assert find_opportunity(a, b, a_inst, b_inst, p, T0, 75.0) is None


def test_transfer_cost_needs_a_typical_size() -> None:
    text = _config(params={"transfer_cost": "true"})
    with pytest.raises(ConfigError, match="transfer_cost: needs transfer_size"):
        parse_config(text.encode(), "<test>", "backtest")


# ----------------------------------------------------------------------------- risk
def test_per_venue_limits_are_checked_and_counted() -> None:
    risk = RiskManager(
        RiskLimits(
            max_position_by_venue={"gateio": {"BTC": D("0.3")}},
            max_notional_by_venue={"mexc": D("10000")},
        )
    )
    ok = risk.check_venue_trade(
        1, venue="gateio", asset="BTC", position_after=D("-0.3"), notional_after=D(99_999)
    )
    assert ok is None
    over = risk.check_venue_trade(
        2, venue="gateio", asset="BTC", position_after=D("-0.31"), notional_after=D(0)
    )
    assert over is not None and over.reason == "venue_position" and "gateio" in over.detail
    assert (
        risk.check_venue_trade(
            3, venue="mexc", asset="BTC", position_after=D("5"), notional_after=D("10000")
        )
        is None
    )
    big = risk.check_venue_trade(
        4, venue="mexc", asset="BTC", position_after=D("0"), notional_after=D("10000.01")
    )
    assert big is not None and big.reason == "venue_exposure"
    assert risk.counts == {"venue_position": 1, "venue_exposure": 1}


def test_per_venue_position_limit_denies_arbitrages_in_a_backtest(tmp_path: Path) -> None:
    text = (
        default_config_path()
        .read_text()
        .replace(
            'max_position: {BTC: "0.5"}\n',
            'max_position: {BTC: "0.5"}\n  max_position_by_venue: {gateio: {BTC: "0.4"}}\n',
        )
    )
    assert "max_position_by_venue: {gateio" in text
    s = _run(tmp_path, "limited", text)
    assert s["status"] == "ok" and s["reconciled_exactly"] is True
    assert s["risk"]["denials"].get("venue_position", 0) > 0
    arbs = pq.read_table(tmp_path / "limited" / "arbs.parquet").to_pylist()
    denied = [a for a in arbs if a["outcome"] == "denied" and a["reason"] == "venue_position"]
    assert denied and all("gateio" in (a["buy_venue"], a["sell_venue"]) for a in denied)
    # every leg an arbitrage sent (hedges aside) kept gateio's BTC within 0.4 + one leg
    gate = D("0")
    worst = D("0")
    for f in pq.read_table(tmp_path / "limited" / "fills.parquet").to_pylist():
        if f["venue"] == "gateio":
            gate += D(f["qty"]) * (1 if f["side"] == 1 else -1)
            worst = max(worst, abs(gate))
    assert worst <= D("0.4") + D("0.25"), worst


def test_per_venue_limit_names_a_configured_venue() -> None:
    text = (
        default_config_path()
        .read_text()
        .replace(
            'max_position: {BTC: "0.5"}\n',
            'max_position: {BTC: "0.5"}\n  max_notional_by_venue: {kraken: "1000"}\n',
        )
    )
    with pytest.raises(ConfigError, match=r"`\$.risk.max_notional_by_venue.kraken`"):
        parse_config(text.encode(), "<test>", "backtest")


@pytest.mark.parametrize(
    ("route", "path", "what"),
    [
        ('{BTC: {BTC: {fee: "-1"}}}', "$.venues[0].transfers.BTC.BTC.fee", "must be >= 0"),
        (
            "{USDT: {TRC20: {delay: {kind: uniform, low_s: 9, high_s: 3}}}}",
            "$.venues[0].transfers.USDT.TRC20.delay.high_s",
            "must be >= low_s",
        ),
        (
            "{BTC: {BTC: {delay: {kind: gamma}}}}",
            "$.venues[0].transfers.BTC.BTC.delay.kind",
            "Invalid enum value 'gamma'",
        ),
        (
            "{BTC: {BTC: {delay: {kind: empirical}}}}",
            "$.venues[0].transfers.BTC.BTC.delay",
            "at least one sample",
        ),
        ("{BTC: {BTC: {fees: 1}}}", "$.venues[0].transfers.BTC.BTC", "unknown field `fees`"),
        ("{BTC: {}}", "$.venues[0].transfers.BTC", "must be one network or more"),
    ],
    ids=["fee", "uniform", "kind", "empirical", "unknown", "no-network"],
)
def test_transfer_config_errors_name_the_key_path(route: str, path: str, what: str) -> None:
    text = f"""
venues:
  - name: mexc
    balances: {{BTC: "1", USDT: "1000"}}
    transfers: {route}
  - {{name: gateio, balances: {{BTC: "1", USDT: "1000"}}}}
"""
    with pytest.raises(ConfigError) as err:
        parse_config(text.encode(), "c.yaml", "backtest")
    assert f"`{path}`" in str(err.value) and what in str(err.value), str(err.value)


# ----------------------------------------------------------------------------- paper
PAPER = """
strategy:
  name: cross_exchange
  params:
    symbol: BTC/USDT
    venues: [mexc, gateio]
    max_qty: "0.25"
    rebalance: {method: transfer, every_s: 1, band: 0.05, networks: {USDT: TRC20}}
venues:
  - {name: mexc, balances: {BTC: "1.5", USDT: "100000"},
     latency: {entry_ms: 8.0, response_ms: 8.0},
     transfers: {BTC: {BTC: {fee: "0.0002", minimum: "0.001", delay: {seconds: 1.5}}},
                 USDT: {TRC20: {fee: "1", minimum: "10", delay: {seconds: 1.5}}}}}
  - {name: gateio, balances: {BTC: "1.5", USDT: "100000"},
     latency: {entry_ms: 15.0, response_ms: 15.0},
     transfers: {BTC: {BTC: {fee: "0.0002", minimum: "0.001", delay: {seconds: 1.5}}},
                 USDT: {TRC20: {fee: "1", minimum: "10", delay: {seconds: 1.5}}}}}
risk: {max_position: {BTC: "0.5"}, max_total_exposure: "100000"}
run: {drain_s: 0.5, equity_interval_s: 1.0}
"""


async def test_paper_rebalancing_moves_funds_between_the_paper_venues(tmp_path: Path) -> None:
    """``arbsim paper`` against the exchange simulator: the two paper venues' accounts
    withdraw to each other on the wall clock; the transfers are journalled as they
    happen, arrive after their delay, and the ledger reconciles exactly."""
    from arbsim.app.realtime import VenueUrls, run_realtime_async
    from arbsim.data.synth import generate_synthetic
    from exchanges.sim import SimConfig, run_simulator
    from exchanges.sim import VenueConfig as SimVenueConfig

    data = tmp_path / "cat"
    generate_synthetic(data, seed=8, duration_s=200.0)
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
        cfg = parse_config(PAPER.encode(), "<test>", "paper")
        result = await run_realtime_async(
            cfg, mode="paper", out_dir=tmp_path / "run", duration_s=20.0, urls=urls, env={}
        )
    s = result.summary
    assert s["status"] == "ok" and s["reconciled_exactly"] is True, s["reconciliation"]
    rows = pq.read_table(tmp_path / "run" / "transfers.parquet").to_pylist()
    arrived = [r for r in rows if r["status"] == "arrived"]
    assert arrived, rows
    assert {r["venue"] for r in rows} <= {"mexc", "gateio"}
    for r in arrived:  # 1.5 s on the wall clock, learnt by polling every second
        assert r["delay_s"] == pytest.approx(1.5, abs=0.05)
        assert r["destination"] != r["venue"] and D(r["fee"]) in (D("0.0002"), D("1"))
    assert s["transfers"]["arrived"] == len(arrived)
    # the journal knows every transfer in its last state (a resumed run takes them back)
    journal = Journal(tmp_path / "run" / "journal.sqlite")
    try:
        state = journal.load()
    finally:
        journal.close()
    assert [(t.client_id, t.status, t.ts_arrived) for t in state.transfers] == [
        (r["client_id"], r["status"], r["ts_arrived"]) for r in rows
    ]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["transfers"]["count"] == len(rows)
    # the session's log tells of each one as it happens
    logged = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    arrivals = {
        x["client_id"] for x in logged if x.get("event") == "transfer" and x["status"] == "arrived"
    }
    assert arrivals == {r["client_id"] for r in arrived}


def test_a_resumed_run_takes_its_transfers_back_into_the_ledger(tmp_path: Path) -> None:
    """What the journal holds of each transfer is what a restarted process's ledger gets:
    the source paid amount + fee for every transfer sent, the destination has the amount
    of those that arrived, the rest is in flight."""
    from arbsim.core.records import TransferRecord
    from arbsim.runtime.engine import Engine
    from arbsim.runtime.journal import JournalRecorder
    from arbsim.runtime.loop import VirtualTimeLoop
    from arbsim.runtime.recorder import RunRecorder
    from strategies.cross_exchange import CrossExchangeArb

    journal = Journal(tmp_path / "journal.sqlite")
    rec = JournalRecorder(journal)
    a = TransferRecord(
        client_id="xt00001", venue="mexc", destination="gateio", asset="BTC", network="BTC",
        amount="0.5", ts_requested=T0,
    )  # fmt: skip
    b = TransferRecord(
        client_id="xt00002", venue="gateio", destination="mexc", asset="USDT",
        network="TRC20", amount="1000", ts_requested=T0 + 1,
    )  # fmt: skip
    rec.transfer_requested(a)
    rec.transfer_requested(b)
    a.status, a.fee, a.ts_sent = "sent", "0.0002", T0
    rec.transfer_update(a)
    b.status, b.fee, b.ts_sent = "sent", "1", T0 + 1
    rec.transfer_update(b)
    b.status, b.ts_arrived, b.delay_s = "arrived", T0 + 61, 60.0
    rec.transfer_update(b)
    state = journal.load()
    journal.close()
    assert [(t.client_id, t.status) for t in state.transfers] == [
        ("xt00001", "sent"),
        ("xt00002", "arrived"),
    ]
    loop = VirtualTimeLoop(T0)
    try:
        engine = Engine(
            strategy=CrossExchangeArb(ArbParams()),
            venues={},
            symbols={},
            loop=loop,
            clock=loop,
            risk_limits=RiskLimits(),
            recorder=RunRecorder(),
        )
        start = {
            "mexc": {"BTC": D("1"), "USDT": D("5000")},
            "gateio": {"BTC": D("1"), "USDT": D("5000")},
        }
        for venue, held in start.items():
            engine.ledger.start[venue] = dict(held)
            engine.ledger.balances[venue].update(held)
        engine.transfers.restore(state.transfers, follow=False)
        bal = engine.ledger.balances
        assert bal["mexc"]["BTC"] == D("0.4998") and bal["gateio"]["BTC"] == D("1")
        assert bal["gateio"]["USDT"] == D("3999") and bal["mexc"]["USDT"] == D("6000")
        assert engine.ledger.in_flight == {"xt00001": ("gateio", "BTC", D("0.5"))}
        assert engine.ledger.position("BTC") == D("-0.0002")  # the fee; the rest in flight
        assert [r.client_id for r in engine.transfers.in_flight()] == ["xt00001"]
        assert len(engine.recorder.transfers) == 2
    finally:
        loop.close()
