"""The simulator's transfer network over real HTTP: the MEXC and Gate wallet endpoints'
shapes and status progressions, cancellation, an address outside the simulation, the
venues' rejections, faults on wallet routes, and the seeded delay distributions."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
import pytest

from exchanges.sim.config import DelayConfig, FaultRule, SimConfig, TransferRoute, VenueConfig
from exchanges.sim.runner import Simulator, run_simulator
from exchanges.sim.transfers import TransferNetwork, draw_delay_s

from .sim_testkit import gate_call, mexc_call

ROUTES = [
    # held 1 s before it leaves (cancellable), then 2 s on its way
    TransferRoute(
        asset="BTC",
        network="BTC",
        fee=Decimal("0.0002"),
        minimum=Decimal("0.001"),
        send_s=1.0,
        delay=DelayConfig(seconds=2.0),
    ),
    TransferRoute(asset="BTC", network="BSC", fee=Decimal("0.00001"), minimum=Decimal("0.0001")),
]


class Clock:
    def __init__(self) -> None:
        self.shift_ns = 0

    def __call__(self) -> int:
        return time.time_ns() + self.shift_ns

    def advance(self, seconds: float) -> None:
        self.shift_ns += round(seconds * 1e9)


@pytest.fixture
async def world() -> AsyncIterator[tuple[Simulator, Clock, aiohttp.ClientSession]]:
    clock = Clock()
    cfg = SimConfig(
        venues=[VenueConfig(venue="mexc"), VenueConfig(venue="gateio")],
        speed=0,
        transfers=ROUTES,
    )
    async with run_simulator(cfg, now_ns=clock) as sim, aiohttp.ClientSession() as http:
        yield sim, clock, http


World = tuple[Simulator, Clock, aiohttp.ClientSession]


def address(sim: Simulator, venue: str, network: str = "BTC") -> str:
    return sim.transfers.address(venue, sim.venues[venue].api_key, "BTC", network)


def btc(sim: Simulator, venue: str) -> tuple[Decimal, Decimal]:
    """(free, locked) BTC as of now (the network applies what is due first)."""
    sim.transfers.advance()
    v = sim.venues[venue]
    free, locked = v.exchange.account(v.api_key).balances()["BTC"]
    return free, locked


async def mexc_history(http: aiohttp.ClientSession, sim: Simulator) -> list[dict[str, Any]]:
    status, rows = await mexc_call(http, sim.venues["mexc"], "GET", "capital/withdraw/history")
    assert status == 200
    return list(rows)


async def test_mexc_withdrawal_statuses_and_deposit_on_gate(world: World) -> None:
    sim, clock, http = world
    mexc, gate = sim.venues["mexc"], sim.venues["gateio"]
    dest = address(sim, "gateio")
    params = [("coin", "BTC"), ("withdrawOrderId", "m-1"), ("netWork", "BTC"),
              ("address", dest), ("amount", "0.1002"), ("remark", "rebalance")]  # fmt: skip
    status, ack = await mexc_call(http, mexc, "POST", "capital/withdraw", params)
    assert status == 200 and set(ack) == {"id"}
    # held: locked at the source, APPLY (1)
    assert btc(sim, "mexc") == (Decimal("1.8998"), Decimal("0.1002"))
    (row,) = await mexc_history(http, sim)
    assert row["status"] == "1" and row["id"] == ack["id"] and row["txId"] is None
    assert (row["amount"], row["transactionFee"], row["coin"]) == ("0.1002", "0.0002", "BTC-BTC")
    assert (row["withdrawOrderId"], row["remark"], row["netWork"]) == ("m-1", "rebalance", "BTC")
    assert set(row) >= {"applyTime", "updateTime", "address", "network", "transHash", "memo"}
    # left: debited, WAIT_CONFIRM (6); the deposit is pending on Gate
    clock.advance(1.1)
    (row,) = await mexc_history(http, sim)
    assert row["status"] == "6" and row["txId"] and row["transHash"]
    assert btc(sim, "mexc") == (Decimal("1.8998"), Decimal(0))
    status, deps, _ = await gate_call(http, gate, "GET", "wallet/deposits", "currency=BTC")
    assert status == 200 and [(d["status"], d["amount"]) for d in deps] == [("PEND", "0.1")]
    assert deps[0]["txid"] == row["transHash"] and deps[0]["address"] == dest
    assert btc(sim, "gateio") == (Decimal("2"), Decimal(0))
    # arrived: SUCCESS (7), DONE on Gate, credited
    clock.advance(2.1)
    (row,) = await mexc_history(http, sim)
    assert row["status"] == "7"
    status, deps, _ = await gate_call(http, gate, "GET", "wallet/deposits", "currency=BTC")
    assert [(d["status"], d["amount"], d["chain"]) for d in deps] == [("DONE", "0.1", "BTC")]
    assert btc(sim, "gateio") == (Decimal("2.1"), Decimal(0))
    # the older path and parameter name work too; a coin filter in either spelling
    params = [("coin", "BTC"), ("network", "BSC"), ("address", address(sim, "gateio", "BSC")),
              ("amount", "0.01")]  # fmt: skip
    status, _ = await mexc_call(http, mexc, "POST", "capital/withdraw/apply", params)
    assert status == 200
    status, rows = await mexc_call(
        http, mexc, "GET", "capital/withdraw/history", [("coin", "BTC-BSC")]
    )
    assert [r["netWork"] for r in rows] == ["BSC"]


async def test_gate_withdrawal_cancel_and_lookups(world: World) -> None:
    sim, clock, http = world
    gate = sim.venues["gateio"]
    body = {"withdraw_order_id": "g-1", "amount": "0.5", "currency": "BTC",
            "address": address(sim, "mexc"), "chain": "BTC"}  # fmt: skip
    status, ack, _ = await gate_call(http, gate, "POST", "withdrawals", body=body)
    assert status == 200 and ack["status"] == "REQUEST" and ack["id"].startswith("w")
    assert (ack["amount"], ack["fee_amount"], ack["withdraw_order_id"]) == ("0.5", "0.0002", "g-1")
    assert btc(sim, "gateio") == (Decimal("1.5"), Decimal("0.5"))
    q = "withdraw_order_id=g-1"
    status, rows, _ = await gate_call(http, gate, "GET", "wallet/withdrawals", q)
    assert [(r["id"], r["status"]) for r in rows] == [(ack["id"], "REQUEST")]
    status, gone, _ = await gate_call(http, gate, "DELETE", f"withdrawals/{ack['id']}")
    assert status == 200 and gone["status"] == "CANCEL"
    assert btc(sim, "gateio") == (Decimal("2"), Decimal(0))  # the funds came back
    clock.advance(5)
    status, rows, _ = await gate_call(http, gate, "GET", "wallet/withdrawals", q)
    assert rows[0]["status"] == "CANCEL" and rows[0]["timestamp2"]
    assert sim.venues["mexc"].exchange.transfers is sim.transfers
    assert sim.transfers.deposits == []
    # a withdrawal that left cannot be cancelled; an unknown id is not found
    body["withdraw_order_id"] = "g-2"
    _, ack, _ = await gate_call(http, gate, "POST", "withdrawals", body=body)
    clock.advance(1.1)
    status, err, _ = await gate_call(http, gate, "DELETE", f"withdrawals/{ack['id']}")
    assert (status, err["label"]) == (400, "INVALID_WITHDRAW_CANCEL_STATUS")
    status, err, _ = await gate_call(http, gate, "DELETE", "withdrawals/w999")
    assert (status, err["label"]) == (400, "INVALID_WITHDRAW_ID")
    # a withdraw_order_id is used once
    status, err, _ = await gate_call(http, gate, "POST", "withdrawals", body=body)
    assert (status, err["label"]) == (400, "INVALID_PARAM_VALUE")
    # fees and minimum, addresses
    status, ws, _ = await gate_call(http, gate, "GET", "wallet/withdraw_status", "currency=BTC")
    assert status == 200 and ws[0]["withdraw_fix_on_chains"] == {"BTC": "0.0002", "BSC": "0.00001"}
    assert ws[0]["withdraw_amount_mini"] == "0.001"
    status, addr, _ = await gate_call(http, gate, "GET", "wallet/deposit_address", "currency=BTC")
    chains = {c["chain"]: c["address"] for c in addr["multichain_addresses"]}
    assert chains == {"BTC": address(sim, "gateio"), "BSC": address(sim, "gateio", "BSC")}


async def test_mexc_cancel_coins_and_addresses(world: World) -> None:
    sim, _clock, http = world
    mexc = sim.venues["mexc"]
    params = [("coin", "BTC"), ("netWork", "BTC"), ("address", address(sim, "gateio")),
              ("amount", "0.01")]  # fmt: skip
    _, ack = await mexc_call(http, mexc, "POST", "capital/withdraw", params)
    status, gone = await mexc_call(http, mexc, "DELETE", "capital/withdraw", [("id", ack["id"])])
    assert status == 200 and gone == {"id": ack["id"]}
    (row,) = await mexc_history(http, sim)
    assert row["status"] == "9"
    assert btc(sim, "mexc") == (Decimal("2"), Decimal(0))
    status, err = await mexc_call(http, mexc, "DELETE", "capital/withdraw", [("id", ack["id"])])
    assert (status, err["code"]) == (400, -2011)
    status, coins = await mexc_call(http, mexc, "GET", "capital/config/getall")
    (coin,) = [c for c in coins if c["coin"] == "BTC"]
    nets = {n["netWork"]: (n["withdrawFee"], n["withdrawMin"]) for n in coin["networkList"]}
    assert nets == {"BTC": ("0.0002", "0.001"), "BSC": ("0.00001", "0.0001")}
    assert [c["networkList"] for c in coins if c["coin"] == "USDT"] == [[]]
    status, addrs = await mexc_call(
        http, mexc, "GET", "capital/deposit/address", [("coin", "BTC"), ("network", "BSC")]
    )
    assert [(a["netWork"], a["address"]) for a in addrs] == [("BSC", address(sim, "mexc", "BSC"))]
    assert f"deposit BTC on BSC to {address(sim, 'mexc', 'BSC')}" in sim.banner()


async def test_rejections_in_each_venue_spelling(world: World) -> None:
    sim, _clock, http = world
    mexc, gate = sim.venues["mexc"], sim.venues["gateio"]
    dest = address(sim, "gateio")
    cases = [("0.0009", 30002), ("3", 10101), ("0.000100001", -1111)]
    for amount, code in cases:
        params = [("coin", "BTC"), ("netWork", "BTC"), ("address", dest), ("amount", amount)]
        status, err = await mexc_call(http, mexc, "POST", "capital/withdraw", params)
        assert (status, err["code"]) == (400, code), amount
    params = [("coin", "DOGE"), ("netWork", "DOGE"), ("address", dest), ("amount", "1")]
    status, err = await mexc_call(http, mexc, "POST", "capital/withdraw", params)
    assert (status, err["code"]) == (400, 10232)
    for amount, label in [("0.0009", "AMOUNT_TOO_LITTLE"), ("3", "BALANCE_NOT_ENOUGH")]:
        body = {"amount": amount, "currency": "BTC", "address": address(sim, "mexc"),
                "chain": "BTC"}  # fmt: skip
        status, err, _ = await gate_call(http, gate, "POST", "withdrawals", body=body)
        assert (status, err["label"]) == (400, label), amount
    body = {"amount": "1", "currency": "BTC", "address": "x"}
    status, err, _ = await gate_call(http, gate, "POST", "withdrawals", body=body)
    assert (status, err["label"]) == (400, "MISSING_REQUIRED_PARAM")  # chain is required
    body = {"amount": "1", "currency": "DOGE", "address": "x", "chain": "DOGE"}
    status, err, _ = await gate_call(http, gate, "POST", "withdrawals", body=body)
    assert (status, err["label"]) == (400, "INVALID_CURRENCY")
    assert sim.transfers.withdrawals == [] and btc(sim, "mexc") == (Decimal(2), Decimal(0))


async def test_external_address_leaves_and_never_arrives(world: World) -> None:
    sim, clock, http = world
    mexc = sim.venues["mexc"]
    params = [("coin", "BTC"), ("netWork", "BSC"), ("address", "0xoutside"), ("amount", "0.3")]
    status, _ = await mexc_call(http, mexc, "POST", "capital/withdraw", params)
    assert status == 200
    clock.advance(2.1)
    (row,) = await mexc_history(http, sim)
    assert row["status"] == "7"
    assert btc(sim, "mexc") == (Decimal("1.7"), Decimal(0))
    assert btc(sim, "gateio") == (Decimal("2"), Decimal(0))
    assert sim.transfers.deposits == []
    async with http.get(mexc.base_url + "/_sim/ledger") as r:
        ledger = await r.json()
    (w,) = ledger[mexc.api_key]["withdrawals"]
    assert (w["destination"], w["stage"], w["received"]) == ("external", "arrived", "0.29999")


async def test_funds_in_flight_are_in_neither_account(world: World) -> None:
    sim, clock, http = world
    params = [("coin", "BTC"), ("netWork", "BTC"), ("address", address(sim, "gateio")),
              ("amount", "1.0002")]  # fmt: skip
    await mexc_call(http, sim.venues["mexc"], "POST", "capital/withdraw", params)
    clock.advance(1.1)
    total = sum(btc(sim, "mexc")) + sum(btc(sim, "gateio"))
    assert total == Decimal("4") - Decimal("1.0002")
    assert sim.transfers.in_flight("BTC") == Decimal("1")
    clock.advance(2.1)
    assert sum(btc(sim, "mexc")) + sum(btc(sim, "gateio")) == Decimal("4") - Decimal("0.0002")
    assert sim.transfers.in_flight("BTC") == 0


async def test_faults_apply_to_wallet_routes(world: World) -> None:
    sim, _clock, http = world
    mexc, gate = sim.venues["mexc"], sim.venues["gateio"]
    mexc.inject_fault(FaultRule(kind="http_status", status=502, path="/api/v3/capital/deposit"))
    status, _ = await mexc_call(http, mexc, "GET", "capital/deposit/hisrec")
    assert status == 502
    status, rows = await mexc_call(http, mexc, "GET", "capital/deposit/hisrec")
    assert (status, rows) == (200, [])
    # lose_ack: the withdrawal is processed, the answer never comes
    gate.inject_fault(FaultRule(kind="lose_ack", status=0, path="/api/v4/withdrawals"))
    body = {"withdraw_order_id": "g-lost", "amount": "0.01", "currency": "BTC",
            "address": address(sim, "mexc"), "chain": "BSC"}  # fmt: skip
    with pytest.raises(aiohttp.ClientError):
        await gate_call(http, gate, "POST", "withdrawals", body=body)
    status, rows, _ = await gate_call(http, gate, "GET", "wallet/withdrawals", "currency=BTC")
    assert [r["withdraw_order_id"] for r in rows] == ["g-lost"]
    async with http.get(gate.base_url + "/_sim/requests") as r:
        counts = await r.json()
    assert counts["POST /api/v4/withdrawals"] == 1


def test_delays_are_seeded_and_follow_their_distribution() -> None:
    lognormal = DelayConfig(kind="lognormal", median_s=30.0, sigma=0.5)
    uniform = DelayConfig(kind="uniform", low_s=5.0, high_s=9.0)
    a = [draw_delay_s(lognormal, random.Random(7)) for _ in range(3)]
    b = [draw_delay_s(lognormal, random.Random(7)) for _ in range(3)]
    assert a == b
    rng = random.Random(1)
    draws = [draw_delay_s(lognormal, rng) for _ in range(4001)]
    assert 27.0 < statistics.median(draws) < 33.0
    assert min(draws) > 0
    spread = [draw_delay_s(uniform, rng) for _ in range(2000)]
    assert 5.0 <= min(spread) < 5.1 and 8.9 < max(spread) <= 9.0
    assert draw_delay_s(DelayConfig(seconds=4.5), rng) == 4.5


def test_network_delays_repeat_with_the_seed() -> None:
    route = TransferRoute(
        asset="BTC", network="BTC", delay=DelayConfig(kind="uniform", low_s=1, high_s=100)
    )

    def arrivals(seed: int) -> list[int]:
        from exchanges.simulated.matching import Account

        net = TransferNetwork([route], lambda: 0, seed=seed)
        net.register("mexc", {"k": Account("mexc", {"BTC": Decimal(10)})})
        return [
            net.withdraw("mexc", "k", asset="BTC", network="BTC", address="x",
                         amount=Decimal("0.1")).ts_arrive
            for _ in range(5)
        ]  # fmt: skip

    assert arrivals(3) == arrivals(3) != arrivals(4)


def test_config_refuses_bad_routes() -> None:
    base: dict[str, Any] = {"venues": [{"venue": "mexc"}]}
    for route, why in [
        ({"asset": "BTC", "network": "BTC", "fee": "-1"}, "fee must be"),
        ({"asset": "BTC", "network": "BTC", "step": "0"}, "step must be"),
        ({"asset": "BTC", "network": "BTC", "delay": {"kind": "lognormal", "median_s": 0}},
         "median_s"),
        ({"asset": "BTC", "network": "BTC", "delay": {"kind": "weekly"}}, "kind"),
    ]:  # fmt: skip
        with pytest.raises(msgspec.ValidationError, match=why) as e:
            msgspec.convert({**base, "transfers": [route]}, SimConfig)
        assert "transfers[0]" in str(e.value)
    twice = [{"asset": "BTC", "network": "BTC"}] * 2
    with pytest.raises(msgspec.ValidationError, match="given twice"):
        msgspec.convert({**base, "transfers": twice}, SimConfig)
