"""Rebalancing by transfer in live trading: the runner of ``arbsim live``
(``run_realtime_async`` in mode live, in this process; ``bench/faults.py --only wallet``
runs the two commands as processes) with the real cross-exchange strategy and
``rebalance.method: transfer`` against the exchange simulator on 127.0.0.1, whose two
venues share a transfer network. The judge is the
simulator's own record of the accounts (``GET /_sim/ledger``: withdrawals, deposits,
balances, fills) and of the requests it received (``GET /_sim/requests``), against the
run's ``transfers.parquet``, fills, journal and summary: every withdrawal the venues hold
is one the run asked for, none is there twice, each has the run's amount, fee and
transaction id, and the balances add up exactly — also with the simulator's faults on
the wallet routes (lost acknowledgements, 5xx, timeouts)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import aiohttp
import pyarrow.parquet as pq
import pytest

from arbsim.app.config import parse_config
from arbsim.app.realtime import VenueUrls, run_realtime_async
from exchanges.gateio import plugin as gate_plugin
from exchanges.mexc import plugin as mexc_plugin
from exchanges.sim import SimConfig, Simulator, run_simulator
from exchanges.sim import VenueConfig as SimVenueConfig
from exchanges.sim.config import DEFAULT_BALANCES, DelayConfig, FaultRule, TransferRoute

# live sessions of 15-40 s each
pytestmark = pytest.mark.slow

# delays on the exchange clock, which runs SPEED times as fast as the wall clock
SPEED = 5.0
ROUTES = [
    TransferRoute(
        asset="BTC", network="BTC", fee=D("0.0002"), minimum=D("0.001"),
        delay=DelayConfig(kind="uniform", low_s=2.0, high_s=8.0),
    ),
    TransferRoute(
        asset="USDT", network="TRC20", fee=D("1"), minimum=D("10"), step=D("0.000001"),
        delay=DelayConfig(kind="uniform", low_s=2.0, high_s=8.0),
    ),
]  # fmt: skip
OTHER = {"mexc": "gateio", "gateio": "mexc"}
CREDENTIALS = {
    "mexc": (mexc_plugin.API_KEY_ENV, mexc_plugin.API_SECRET_ENV),
    "gateio": (gate_plugin.API_KEY_ENV, gate_plugin.API_SECRET_ENV),
}
WALLET: dict[str, tuple[str, ...]] = {
    "mexc": ("/api/v3/capital/",),
    "gateio": ("/api/v4/withdrawals", "/api/v4/wallet/"),
}
WITHDRAW_POST = {"mexc": "/api/v3/capital/withdraw", "gateio": "/api/v4/withdrawals"}

STRATEGY = """
strategy:
  name: cross_exchange
  params:
    symbol: BTC/USDT
    venues: [mexc, gateio]
    max_qty: "0.05"
    min_edge_bps: 0.5
    cooldown_s: 0.05
    leg_timeout_s: 2.0
    rebalance: {{method: transfer, every_s: 0.5, band: {band}, retry_s: {retry_s},
                 networks: {{USDT: TRC20}}}}
venues:
{venues}
risk: {{max_position: {{BTC: "1"}}, max_one_sided: "1", max_total_exposure: "200000",
       max_order_notional: "30000", max_open_orders: 20, max_orders_per_s: 20,
       max_daily_loss: "100000"}}
run: {{drain_s: 0.5, equity_interval_s: 0.5}}
"""


def address(sim: Simulator, venue: str, asset: str) -> str:
    """The deposit address of ``venue``'s account (the simulator's addresses are a
    digest of venue, key, asset and network: known before the session starts, and
    printed by ``arbsim exchange-sim``)."""
    network = "BTC" if asset == "BTC" else "TRC20"
    return sim.transfers.address(venue, sim.venues[venue].api_key, asset, network)


def live_config(
    sim: Simulator,
    *,
    allow: bool = True,
    listed: bool = True,
    band: float = 0.01,
    retry_s: float = 30.0,
) -> str:
    venues = []
    for name in ("mexc", "gateio"):
        lines = [f"  - name: {name}"]
        if allow:
            lines.append("    allow_withdrawals: true")
        dest = OTHER[name]
        btc = address(sim, dest, "BTC") if listed else "bc1qnotthesimulatorsaddress"
        usdt = address(sim, dest, "USDT")
        lines.append(
            f"    withdraw_addresses: {{BTC: {{BTC: [{btc}]}}, USDT: {{TRC20: [{usdt}]}}}}"
        )
        venues.append("\n".join(lines))
    return STRATEGY.format(venues="\n".join(venues), band=band, retry_s=retry_s)


def sim_config(faults: dict[str, list[FaultRule]] | None = None) -> SimConfig:
    faults = faults or {}
    return SimConfig(
        venues=[
            SimVenueConfig(venue="mexc", faults=faults.get("mexc", [])),
            SimVenueConfig(venue="gateio", faults=faults.get("gateio", [])),
        ],
        speed=SPEED,
        transfers=ROUTES,
        transfer_seed=7,
    )


def urls_of(sim: Simulator) -> dict[str, VenueUrls]:
    return {
        name: VenueUrls(v.base_url if name == "mexc" else v.api_url, v.ws_url)
        for name, v in sim.venues.items()
    }


async def get(sim: Simulator, venue: str, path: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(sim.venues[venue].base_url + path) as r:
        return await r.json()


async def session(
    sim: Simulator, text: str, out: Path, seconds: float, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    for name, (key_var, secret_var) in CREDENTIALS.items():
        monkeypatch.setenv(key_var, sim.venues[name].api_key)
        monkeypatch.setenv(secret_var, sim.venues[name].api_secret)
    result = await run_realtime_async(
        parse_config(text.encode(), "<test>", "live"),
        mode="live",
        out_dir=out,
        duration_s=seconds,
        urls=urls_of(sim),
    )
    return result.summary


def flows(out: Path) -> dict[tuple[str, str], D]:
    """(venue, asset) -> what the run's fills moved, exactly."""
    moved: dict[tuple[str, str], D] = Counter()  # type: ignore[assignment]
    for f in pq.read_table(out / "fills.parquet").to_pylist():
        base, quote = f["symbol"].split("/")
        sign = 1 if f["side"] == 1 else -1
        qty, price = D(f["qty"]), D(f["price"])
        moved[f["venue"], base] += sign * qty
        moved[f["venue"], quote] -= sign * qty * price
        moved[f["venue"], f["fee_asset"]] -= D(f["fee"])
    return moved


async def judge(sim: Simulator, out: Path, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The run against the simulator's ledger (asserts); returns the run's transfers."""
    assert summary["status"] == "ok", summary["error"]
    assert summary["reconciled_exactly"] is True, summary["reconciliation"]
    rows: list[dict[str, Any]] = pq.read_table(out / "transfers.parquet").to_pylist()
    ids = [r["client_id"] for r in rows]
    assert len(ids) == len(set(ids))
    # nothing is left undecided: sent, arrived, or failed with a reason
    assert all(r["status"] in ("sent", "arrived", "failed") for r in rows), rows
    ledgers = {v: (await get(sim, v, "/_sim/ledger"))[sim.venues[v].api_key] for v in sim.venues}
    withdrawals = {v: ledgers[v]["withdrawals"] for v in ledgers}
    # no withdrawal twice, none the run does not know of
    for venue, ws in withdrawals.items():
        cids = Counter(w["client_id"] for w in ws)
        assert all(n == 1 for n in cids.values()), cids
        mine = {r["client_id"] for r in rows if r["venue"] == venue}
        assert set(cids) <= mine, set(cids) - mine
    by_cid = {w["client_id"]: (v, w) for v, ws in withdrawals.items() for w in ws}
    deposits = {(v, d["tx_id"]): d for v in ledgers for d in ledgers[v]["deposits"]}
    start = {a: D(x) for a, x in DEFAULT_BALANCES.items()}
    expected: dict[tuple[str, str], D] = Counter()  # type: ignore[assignment]
    for (venue, asset), moved in flows(out).items():
        expected[venue, asset] += moved
    for r in rows:
        if r["status"] == "failed":
            # refused or never received: the venue holds no withdrawal of it
            assert r["client_id"] not in by_cid, r
            assert r["reason"], r
            continue
        venue, w = by_cid[r["client_id"]]
        assert venue == r["venue"] and w["asset"] == r["asset"] and w["network"] == r["network"]
        # the venue's amount includes the fee; the run's amount is what arrives
        assert D(w["received"]) == D(r["amount"]) and D(w["fee"]) == D(r["fee"]), (w, r)
        assert D(w["amount"]) == D(r["amount"]) + D(r["fee"])
        assert w["address"] == r["address"] == address(sim, r["destination"], r["asset"])
        assert w["tx_id"] == r["tx_id"] and w["stage"] in ("sent", "arrived")
        dep = deposits[r["destination"], r["tx_id"]]
        assert D(dep["amount"]) == D(r["amount"])
        if r["status"] == "arrived":
            assert w["stage"] == "arrived" and dep["credited"] is True
            assert r["ts_arrived"] >= r["ts_sent"] > 0
        expected[r["venue"], r["asset"]] -= D(r["amount"]) + D(r["fee"])
        if dep["credited"]:  # arrived (possibly after the run's last look)
            expected[r["destination"], r["asset"]] += D(r["amount"])
    # every deposit the venues hold came from one of the run's withdrawals
    sent_tx = {(r["destination"], r["tx_id"]) for r in rows if r["status"] != "failed"}
    assert set(deposits) == sent_tx
    # the venues' balances are the start plus the run's fills and transfers, exactly
    for venue, ledger in ledgers.items():
        for asset in ("BTC", "USDT"):
            free, locked = ledger["balances"].get(asset, ["0", "0"])
            assert D(free) + D(locked) == start[asset] + expected[venue, asset], (venue, asset)
    # the journal knows each transfer in the state transfers.parquet has
    db = sqlite3.connect(out / "journal.sqlite")
    try:
        last = {
            cid: (status, record)
            for cid, status, record in db.execute(
                "SELECT client_id, status, record FROM transfers ORDER BY seq"
            )
        }
    finally:
        db.close()
    assert {c: s for c, (s, _) in last.items()} == {r["client_id"]: r["status"] for r in rows}
    for r in rows:
        rec = json.loads(last[r["client_id"]][1])
        assert (rec["amount"], rec["fee"], rec["tx_id"]) == (r["amount"], r["fee"], r["tx_id"])
    t = summary["transfers"]
    assert t["count"] == len(rows)
    assert t["sent"] == sum(1 for r in rows if r["status"] in ("sent", "arrived"))
    return rows


async def test_live_rebalancing_by_transfer_matches_the_venues_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The strategy trades on both venues and moves its drifted inventory back by
    withdrawals; the session sees them sent and arrived, and the simulator agrees."""
    async with run_simulator(sim_config()) as sim:
        out = tmp_path / "run"
        summary = await session(sim, live_config(sim), out, 30.0, monkeypatch)
        rows = await judge(sim, out, summary)
        requests = await get(sim, "mexc", "/_sim/requests")
    arrived = [r for r in rows if r["status"] == "arrived"]
    assert len(arrived) >= 2 and {r["venue"] for r in arrived} == {"mexc", "gateio"}, rows
    assert not [r for r in rows if r["status"] == "failed"], rows
    assert summary["strategy"]["rebalance_transfers"] == len(rows)
    assert requests[f"POST {WITHDRAW_POST['mexc']}"] == sum(1 for r in rows if r["venue"] == "mexc")


def _rule(kind: str, path: str, method: str = "GET", **kw: Any) -> FaultRule:
    return FaultRule(kind=kind, path=path, method=method, **kw)  # type: ignore[arg-type]


# every fault kind the simulator injects on the wallet routes, each firing on the first
# requests of its route: MEXC's withdrawal POST meets a 503 and a 504 (neither
# processed: the venue never has them) and then a lost acknowledgement (processed, the
# connection dropped); Gate's loses two acknowledgements (dropped, and answered 502);
# every history, deposit, address and terms route meets 5xx and a timeout
WALLET_FAULTS = {
    "mexc": [
        _rule("http_status", "/api/v3/capital/withdraw", "POST", status=503),
        _rule("timeout", "/api/v3/capital/withdraw", "POST", delay_s=1.0),
        _rule("lose_ack", "/api/v3/capital/withdraw", "POST", status=0),
        _rule("http_status", "/api/v3/capital/withdraw/history", status=500, count=3),
        _rule("http_status", "/api/v3/capital/deposit/hisrec", status=502, count=3),
        _rule("timeout", "/api/v3/capital/deposit/hisrec", delay_s=11.0),  # the client's 10 s
        _rule("http_status", "/api/v3/capital/deposit/address", status=503),
        _rule("http_status", "/api/v3/capital/config/getall", status=503),
    ],
    "gateio": [
        _rule("lose_ack", "/api/v4/withdrawals", "POST", status=0),
        _rule("lose_ack", "/api/v4/withdrawals", "POST", status=502),
        _rule("http_status", "/api/v4/wallet/withdrawals", status=500, count=3),
        _rule("timeout", "/api/v4/wallet/withdrawals", delay_s=1.0),
        _rule("http_status", "/api/v4/wallet/deposits", status=503, count=3),
        _rule("http_status", "/api/v4/wallet/deposit_address", status=503),
        _rule("http_status", "/api/v4/wallet/withdraw_status", status=503),
    ],
}


async def test_live_rebalancing_with_wallet_faults_sends_nothing_twice_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same session with every wallet fault: a withdrawal whose answer was lost is
    found by its client id and never sent again, one the venue never received is known
    as failed once the venue could no longer accept its request, failed reads are asked
    again; the simulator's ledger and the run's records agree exactly."""
    async with run_simulator(sim_config(WALLET_FAULTS)) as sim:
        out = tmp_path / "run"
        text = live_config(sim, retry_s=2.0)
        summary = await session(sim, text, out, 40.0, monkeypatch)
        rows = await judge(sim, out, summary)
        faults = {v: await get(sim, v, "/_sim/faults") for v in sim.venues}
        requests = {v: await get(sim, v, "/_sim/requests") for v in sim.venues}
        ledgers = {
            v: (await get(sim, v, "/_sim/ledger"))[sim.venues[v].api_key] for v in sim.venues
        }
    # every fault fired
    for venue, f in faults.items():
        assert f["pending"] == [], (venue, f["pending"])
    # each withdrawal POST created at most one withdrawal: MEXC's two unprocessed POSTs
    # created none, every other POST one, and none was sent again
    posts = {v: requests[v].get(f"POST {WITHDRAW_POST[v]}", 0) for v in sim.venues}
    assert posts["mexc"] == len(ledgers["mexc"]["withdrawals"]) + 2, (posts, ledgers["mexc"])
    assert posts["gateio"] == len(ledgers["gateio"]["withdrawals"])
    never = [r for r in rows if r["status"] == "failed" and "never received" in r["reason"]]
    assert sum(1 for r in never if r["venue"] == "mexc") >= 2, rows
    moved = [r for r in rows if r["status"] in ("sent", "arrived")]
    assert {r["venue"] for r in moved} == {"mexc", "gateio"} and len(moved) >= 4, rows
    assert summary["strategy"]["rebalance_transfers"] == len(moved)
    assert summary["transfers"]["arrived"] >= 2


def logged(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]


def wallet_requests(counts: dict[str, int], venue: str) -> dict[str, int]:
    prefixes = WALLET[venue]
    return {k: n for k, n in counts.items() if k.split(" ", 1)[1].startswith(prefixes)}


async def test_live_without_allow_withdrawals_trades_on_and_sends_no_wallet_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``method: transfer`` on live venues whose config does not allow withdrawals: the
    rebalancer's withdrawals are refused locally, said once per venue and asset in the
    log naming ``allow_withdrawals``; the session trades on, and no request reaches
    either venue's wallet routes."""
    async with run_simulator(sim_config()) as sim:
        out = tmp_path / "run"
        summary = await session(sim, live_config(sim, allow=False), out, 15.0, monkeypatch)
        counts = {v: await get(sim, v, "/_sim/requests") for v in sim.venues}
        ledgers = {
            v: (await get(sim, v, "/_sim/ledger"))[sim.venues[v].api_key] for v in sim.venues
        }
    assert summary["status"] == "ok" and summary["reconciled_exactly"] is True
    assert summary["arbs"]["attempted"] > 0 and summary["fills"] > 0  # it traded on
    assert not (out / "transfers.parquet").exists() and "transfers" not in summary
    not_sent = summary["strategy"]["rebalance_transfers_not_sent"]
    assert not_sent == {"gateio:withdrawals_disabled": 2, "mexc:withdrawals_disabled": 2}
    for venue in ("mexc", "gateio"):
        assert wallet_requests(counts[venue], venue) == {}, counts[venue]
        assert ledgers[venue]["withdrawals"] == [] and ledgers[venue]["deposits"] == []
        # some order request did reach it: the routes are counted
        assert sum(counts[venue].values()) > 0
    warnings = [
        x["message"]
        for x in logged(out)
        if x["level"] == "WARNING" and x.get("event") == "rebalance"
    ]
    assert len(warnings) == 4, warnings  # once per venue and asset, at the start
    assert max(x["time"] for x in logged(out) if x.get("event") == "rebalance") < min(
        x["time"] for x in logged(out) if x["component"] == "arbsim.orders"
    )
    assert all("allow_withdrawals" in w and "trades on" in w for w in warnings)


async def test_live_address_not_allow_listed_is_refused_before_any_withdrawal_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Withdrawals allowed, but the allow-list lacks the destination's BTC address: no
    BTC withdrawal request reaches the venues (the deposit address and the terms are
    read), the refusal is recorded and logged once per venue, USDT still moves."""
    async with run_simulator(sim_config()) as sim:
        out = tmp_path / "run"
        text = live_config(sim, listed=False)
        summary = await session(sim, text, out, 25.0, monkeypatch)
        rows = await judge(sim, out, summary)
        counts = {v: await get(sim, v, "/_sim/requests") for v in sim.venues}
        ledgers = {
            v: (await get(sim, v, "/_sim/ledger"))[sim.venues[v].api_key] for v in sim.venues
        }
    btc = [r for r in rows if r["asset"] == "BTC"]
    assert btc and all(r["status"] == "failed" for r in btc), btc
    assert all("address_not_allowed" in r["reason"] for r in btc)
    # one refusal per source: then that venue is no source of BTC for the session
    assert len(btc) == len({r["venue"] for r in btc})
    usdt = [r for r in rows if r["asset"] == "USDT" and r["status"] != "failed"]
    assert usdt, rows
    for venue in ("mexc", "gateio"):
        assert all(w["asset"] == "USDT" for w in ledgers[venue]["withdrawals"])
        mine = sum(1 for r in usdt if r["venue"] == venue)
        assert counts[venue].get(f"POST {WITHDRAW_POST[venue]}", 0) == mine
    warnings = [
        x["message"]
        for x in logged(out)
        if x["level"] == "WARNING" and x.get("event") == "rebalance"
    ]
    assert len(warnings) == len(btc) and all("withdraw_addresses" in w for w in warnings)


async def test_live_rebalancing_when_the_venues_clock_is_behind_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The venues' wallet stamps ten minutes behind the run's clock (the simulator's
    transfer network on a clock 600 s late): each deposit is dated before the run asked
    for its transfer, and the run still finds it by transaction id and sees it arrive."""
    async with run_simulator(sim_config()) as sim:
        network = sim.transfers
        exchange_ns = network.now_ns
        network.now_ns = lambda: exchange_ns() - 600_000_000_000
        out = tmp_path / "run"
        summary = await session(sim, live_config(sim), out, 20.0, monkeypatch)
        rows = await judge(sim, out, summary)
        ledger = (await get(sim, "mexc", "/_sim/ledger"))[sim.venues["mexc"].api_key]
    arrived = [r for r in rows if r["status"] == "arrived"]
    assert arrived and all(r["status"] != "failed" for r in rows), rows
    mine = {r["client_id"]: r for r in rows}
    for w in ledger["withdrawals"]:  # dated before the run asked for it
        assert w["ts_send"] < mine[w["client_id"]]["ts_requested"]
