"""Gate.io wallet answers (as recorded from the venue) converted to arbsim transfers, and
the ``gateio`` plug-in handing its withdrawal policy to the venue."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import msgspec
import pytest

from arbsim.core.errors import InvalidOrder, MalformedMessage
from arbsim.core.model import TransferStatus, WithdrawRequest
from arbsim.core.ports import VenueSetup
from arbsim.runtime.loop import WallClock
from exchanges.gateio import rest
from exchanges.gateio.plugin import GateConfig, build
from exchanges.gateio.venue import GateVenue

WITHDRAWAL = b"""{"id": "210496", "timestamp": "1542000000", "withdraw_order_id": "order_123456",
 "currency": "USDT", "address": "1HkxtBAMrA3tP5ENnYY2CZortjZvFDH5Cs",
 "txid": "128988928203223323290", "block_number": "41575382", "amount": "222.61",
 "fee": "0.01", "memo": "", "status": "DONE", "chain": "TRX"}"""

ACK = b"""{"id": "w64413318", "currency": "usdt", "amount": "10150",
 "address": "0x0ab891497116f7f5532a4c2f4f7b1784488628e1", "memo": null, "status": "REQUEST",
 "chain": "eth", "withdraw_order_id": "", "fee_amount": "4.15000000"}"""

DEPOSIT = b"""{"id": "d33361395", "currency": "USDT_TRX",
 "address": "TErdnxenuLtXfnMafLbfappYdHtnXQ5U4z", "amount": "100",
 "txid": "ae9374de34e558562fe18cbb1bf9ab4d9eb8aa7669d65541c9fa2a532c1474a0",
 "timestamp": "1626345819", "status": "DONE", "memo": ""}"""

STATUS = b"""[{"currency": "MTN", "name": "Medicalchain", "name_cn": "Medicalchain",
 "deposit": "0", "withdraw_percent": "0%", "withdraw_fix": "900",
 "withdraw_day_limit": "500000", "withdraw_day_limit_remain": "500000",
 "withdraw_amount_mini": "900.1", "withdraw_eachtime_limit": "90000000000",
 "withdraw_fix_on_chains": {"ETH": "900"}}]"""


def test_withdrawal_record_is_the_amount_received_with_its_fee() -> None:
    t = rest.to_transfer(msgspec.json.decode(WITHDRAWAL, type=rest.GateWithdrawal, strict=False))
    assert (t.client_id, t.asset, t.network) == ("order_123456", "USDT", "TRX")
    assert (t.amount, t.fee) == (Decimal("222.60"), Decimal("0.01"))
    assert t.status is TransferStatus.ARRIVED and t.ts_requested == 1542000000 * 1_000_000_000
    # Gate writes times as numbers or strings, with decimals or not
    raw = msgspec.json.decode(WITHDRAWAL, type=rest.GateWithdrawal, strict=False)
    fractional = msgspec.structs.replace(raw, timestamp="1596531048.285", timestamp2=1596531050)
    t = rest.to_transfer(fractional)
    assert (t.ts_requested, t.ts_updated) == (1596531048285000000, 1596531050000000000)


def test_withdraw_answer_carries_fee_amount() -> None:
    t = rest.to_transfer(msgspec.json.decode(ACK, type=rest.GateWithdrawal, strict=False))
    assert (t.asset, t.amount, t.fee) == ("USDT", Decimal("10145.85"), Decimal("4.15"))
    assert t.status is TransferStatus.PENDING and t.venue_id == "w64413318"


@pytest.mark.parametrize(
    ("status", "expected"),
    [("EXTPEND", TransferStatus.SENT), ("CANCEL", TransferStatus.FAILED),
     ("FAIL", TransferStatus.FAILED), ("MANUAL", TransferStatus.PENDING)],
)  # fmt: skip
def test_withdrawal_statuses(status: str, expected: TransferStatus) -> None:
    raw = msgspec.json.decode(WITHDRAWAL, type=rest.GateWithdrawal, strict=False)
    assert rest.to_transfer(msgspec.structs.replace(raw, status=status)).status is expected
    with pytest.raises(MalformedMessage):
        rest.to_transfer(msgspec.structs.replace(raw, status="SOMETHING_NEW"))


def test_deposit_record() -> None:
    d = rest.to_deposit(msgspec.json.decode(DEPOSIT, type=rest.GateDeposit, strict=False))
    assert (d.amount, d.credited, d.ts) == (Decimal(100), True, 1626345819 * 1_000_000_000)
    pending = msgspec.structs.replace(
        msgspec.json.decode(DEPOSIT, type=rest.GateDeposit, strict=False), status="TRACK"
    )
    assert not rest.to_deposit(pending).credited


def test_terms_and_percentage_fees() -> None:
    raws = msgspec.json.decode(STATUS, type=list[rest.GateWithdrawStatus], strict=False)
    terms = rest.to_terms(raws, "MTN", "ETH")
    assert (terms.fee, terms.minimum) == (Decimal(900), Decimal("0.1"))
    percent = [msgspec.structs.replace(raws[0], withdraw_percent_on_chains={"ETH": "0.1%"})]
    with pytest.raises(InvalidOrder, match="percentage withdrawal fee"):
        rest.to_terms(percent, "MTN", "ETH")
    with pytest.raises(InvalidOrder, match="no withdrawal of BTC"):
        rest.to_terms(raws, "BTC", "BTC")


def test_terms_take_the_step_and_state_from_the_currency_chains() -> None:
    raws = msgspec.json.decode(STATUS, type=list[rest.GateWithdrawStatus], strict=False)
    chains = msgspec.json.decode(
        b'[{"chain":"ETH","name_cn":"ETH","name_en":"ETH","contract_address":"0x1",'
        b'"is_disabled":0,"is_deposit_disabled":0,"is_withdraw_disabled":0,"decimal":"6"},'
        b'{"chain":"TRX","is_disabled":0,"is_withdraw_disabled":1,"decimal":"2"}]',
        type=list[rest.GateCurrencyChain],
        strict=False,
    )
    terms = rest.to_terms(raws, "MTN", "ETH", chains=chains)
    assert (terms.step, terms.enabled) == (Decimal("0.000001"), True)
    # without the chain's precision the step is the model's default
    assert rest.to_terms(raws, "MTN", "ETH").step == Decimal("1e-8")
    shut = [msgspec.structs.replace(chains[0], is_withdraw_disabled=1)]
    assert rest.to_terms(raws, "MTN", "ETH", chains=shut).enabled is False


def test_withdraw_body_sends_the_amount_with_the_fee() -> None:
    req = WithdrawRequest(client_id="c-1", asset="BTC", amount=Decimal("0.5"), network="BTC",
                          address="bc1qx")  # fmt: skip
    assert msgspec.json.decode(rest.withdraw_body(req, Decimal("0.50020"))) == {
        "withdraw_order_id": "c-1", "amount": "0.5002", "currency": "BTC", "address": "bc1qx",
        "chain": "BTC",
    }  # fmt: skip


async def test_plugin_hands_the_config_policy_to_the_venue() -> None:
    cfg = msgspec.convert({"name": "gateio"}, GateConfig)

    def no_rules(name: str | None, venue: str) -> object:
        raise AssertionError("a live venue needs no simulated rules")

    setup = VenueSetup(mode="live", loop=asyncio.get_running_loop(), clock=WallClock(),
                       environ={"ARBSIM_GATEIO_API_KEY": "k", "ARBSIM_GATEIO_API_SECRET": "s"},
                       catalog=None, rules=no_rules, feed=no_rules)  # type: ignore[arg-type]  # fmt: skip
    venue = build(cfg, setup)
    assert isinstance(venue, GateVenue)
    assert not venue.withdraw_policy.allowed  # off unless the config says so
    await venue.stop()
