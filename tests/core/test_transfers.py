"""The simulated transfer network on virtual time: terms, refusals, the delay draw, funds
in flight and their arrival, checked by hand."""

from __future__ import annotations

import math
import statistics
from decimal import Decimal as D

import pytest

from arbsim.core.errors import BelowMinimum, InsufficientBalance, InvalidOrder, PrecisionError
from arbsim.core.model import TransferStatus, WithdrawRequest
from arbsim.core.transfers import DelayConfig, TransferNetwork, TransferRoute
from arbsim.runtime.loop import VirtualTimeLoop, scheduler
from exchanges.simulated.matching import Account

T0 = 1_767_571_200_000_000_000  # 2026-01-05T00:00:00Z

BTC = TransferRoute(
    fee=D("0.0002"), minimum=D("0.001"), step=D("0.00001"), delay=DelayConfig(seconds=90.0)
)


def _network() -> tuple[VirtualTimeLoop, TransferNetwork, Account, Account]:
    loop = VirtualTimeLoop(T0)
    net = TransferNetwork(loop, scheduler(loop, loop))
    a = Account("a", {"BTC": D("1"), "USDT": D("1000")})
    b = Account("b", {"BTC": D("1"), "USDT": D("1000")})
    net.join("a", a, {"BTC": {"BTC": BTC}, "USDT": {"TRC20": TransferRoute(enabled=False)}})
    net.join("b", b, {"BTC": {"BTC": BTC}})
    return loop, net, a, b


def _req(
    cid: str, amount: str, address: str, asset: str = "BTC", network: str = "BTC"
) -> WithdrawRequest:
    return WithdrawRequest(
        client_id=cid, asset=asset, amount=D(amount), network=network, address=address
    )


def test_a_withdrawal_is_debited_in_flight_then_credited_after_its_delay() -> None:
    loop, net, a, b = _network()
    try:
        terms = net.terms("a", "BTC", "BTC")
        assert (terms.fee, terms.minimum, terms.step, terms.enabled) == (
            D("0.0002"),
            D("0.001"),
            D("0.00001"),
            True,
        )
        to_b = net.address("b", "BTC", "BTC")
        loop.set_now(T0 + 5_000_000_000)
        tr = net.withdraw("a", _req("w1", "0.5", to_b))
        # sent at once: the source paid amount + fee, nobody holds the amount
        assert tr.status is TransferStatus.SENT and tr.fee == D("0.0002")
        assert tr.ts_requested == tr.ts_updated == T0 + 5_000_000_000
        assert a.get_free("BTC") == D("0.4998") and b.get_free("BTC") == D("1")
        assert [t.client_id for t in net.in_flight()] == ["w1"]
        assert net.deposits("b", "BTC", 0) == []
        # the same client id again is the same withdrawal, not a second debit
        assert net.withdraw("a", _req("w1", "0.5", to_b)).tx_id == tr.tx_id
        assert a.get_free("BTC") == D("0.4998")
        due = T0 + 5_000_000_000 + 90_000_000_000
        loop.run_until_complete(loop.sleep_until(due - 1))  # 2 ns before it is due
        assert (
            b.get_free("BTC") == D("1") and net.withdrawal("a", "w1").status is TransferStatus.SENT
        )
        loop.run_until_complete(loop.sleep_until(due + 1))
        assert b.get_free("BTC") == D("1.5")
        done = net.withdrawal("a", "w1")
        assert done.status is TransferStatus.ARRIVED and done.ts_updated == due
        (dep,) = net.deposits("b", None, T0)
        assert (dep.amount, dep.ts, dep.tx_id, dep.credited) == (D("0.5"), due, tr.tx_id, True)
        assert net.deposits("b", "BTC", due + 1) == [] and net.in_flight() == []
        # exact: the run lost the fee and nothing else
        assert a.get_free("BTC") + b.get_free("BTC") == D("2") - D("0.0002")
    finally:
        loop.close()


def test_refusals_are_a_venues_own() -> None:
    loop, net, a, _ = _network()
    try:
        to_b = net.address("b", "BTC", "BTC")
        cases: list[tuple[WithdrawRequest, type[InvalidOrder], str]] = [
            (_req("m", "0.0005", to_b), BelowMinimum, "withdraw_minimum"),
            (_req("s", "0.000015", to_b), PrecisionError, "withdraw_step"),
            (_req("i", "0.9999", to_b), InsufficientBalance, "withdraw_balance"),
            (_req("u", "0.1", "somewhere"), InvalidOrder, "unknown_address"),
            (_req("self", "0.1", net.address("a", "BTC", "BTC")), InvalidOrder, "unknown_address"),
            (
                _req("d", "10", net.address("b", "USDT", "TRC20"), "USDT", "TRC20"),
                InvalidOrder,
                "withdraw_disabled",
            ),
            (_req("r", "0.1", to_b, network="ERC20"), InvalidOrder, "no_route"),
        ]
        for req, kind, code in cases:
            with pytest.raises(kind) as err:
                net.withdraw("a", req)
            assert err.value.code == code, (req.client_id, err.value)
        # nothing left the account, nothing is in flight
        assert a.get_free("BTC") == D("1") and net.in_flight() == []
        # exactly amount + fee available is enough
        assert net.withdraw("a", _req("ok", "0.9998", to_b)).status is TransferStatus.SENT
        assert a.get_free("BTC") == 0
    finally:
        loop.close()


def test_delay_draws_follow_their_distribution_and_seed() -> None:
    def draws(cfg: DelayConfig, key: str = "a:BTC:BTC", n: int = 2000) -> list[float]:
        draw = cfg.sampler(key)
        return [draw() / 1e9 for _ in range(n)]

    assert set(draws(DelayConfig(kind="fixed", seconds=42.5), n=10)) == {42.5}
    uni = draws(DelayConfig(kind="uniform", low_s=30, high_s=120))
    assert min(uni) >= 30 and max(uni) <= 120 and 70 < statistics.mean(uni) < 80
    logn = draws(DelayConfig(kind="lognormal", median_s=600, sigma=0.5))
    assert 560 < statistics.median(logn) < 640
    assert statistics.stdev(math.log(x) for x in logn) == pytest.approx(0.5, rel=0.1)
    emp = draws(DelayConfig(kind="empirical", samples_s=[10, 20, 300]))
    assert set(emp) == {10.0, 20.0, 300.0}
    # seeded: the same route draws the same delays; another route or seed others
    cfg = DelayConfig(kind="lognormal", median_s=60)
    assert draws(cfg, n=20) == draws(cfg, n=20)
    assert draws(cfg, "b:BTC:BTC", 20) != draws(cfg, n=20)
    other = DelayConfig(kind="lognormal", median_s=60, seed=1)
    assert draws(other, n=20) != draws(cfg, n=20)


def test_the_network_draws_each_delay_from_the_route() -> None:
    loop = VirtualTimeLoop(T0)
    try:
        net = TransferNetwork(loop, scheduler(loop, loop))
        a, b = Account("a", {"BTC": D("10")}), Account("b", {})
        route = TransferRoute(delay=DelayConfig(kind="empirical", samples_s=[7.0, 11.0]))
        net.join("a", a, {"BTC": {"BTC": route}})
        net.join("b", b, {})
        to_b = net.address("b", "BTC", "BTC")
        expected = route.delay.sampler("a:BTC:BTC")
        for i in range(6):
            net.withdraw("a", _req(f"w{i}", "1", to_b))
        want = sorted(T0 + expected() for _ in range(6))
        loop.run_until_complete(loop.sleep_until(T0 + 12_000_000_000))
        assert sorted(d.ts for d in net.deposits("b", "BTC", 0)) == want
        assert b.get_free("BTC") == D("6") and a.get_free("BTC") == D("4")
    finally:
        loop.close()
