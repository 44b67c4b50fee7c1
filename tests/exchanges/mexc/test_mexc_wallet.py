"""MEXC wallet answers (as recorded from the venue) converted to arbsim transfers, and the
``mexc`` plug-in handing its withdrawal policy to the venue."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import msgspec
import pytest

from arbsim.core.errors import InvalidOrder, MalformedMessage
from arbsim.core.model import TransferStatus, WithdrawRequest
from arbsim.core.ports import VenueSetup
from arbsim.runtime.loop import WallClock
from exchanges.mexc import rest
from exchanges.mexc.plugin import MexcConfig, build
from exchanges.mexc.venue import MexcVenue

WITHDRAWAL = b"""{"id": "adcd1c8322154de691b815eedcd10c42",
 "txId": "0xc8c918cd69b2246db493ef6225a72ffdc664f15b08da3e25c6879b271d05e9d0:0",
 "coin": "USDC-MATIC", "network": "MATIC", "address": "0xeE6C7a415995312ED52c53a0f8f03e165e0A5D62",
 "amount": "2", "transferType": "0", "status": "7", "transactionFee": "1", "confirmNo": null,
 "applyTime": "1664882739000", "remark": "", "memo": null,
 "transHash": "0xc8c918cd69b2246db493ef6225a72ffdc664f15b08da3e25c6879b271d05e9d0",
 "updateTime": "1664882799000", "netWork": "MATIC"}"""

DEPOSIT = b"""{"amount": "10", "coin": "USDC-TRX", "network": "TRX", "status": "5",
 "address": "TSMcEDDvkqY9dz8RkFnrS86U59GwEZjfvh",
 "txId": "51a8f49e6f03f2c056e71fe3291aa65e1032880be855b65cecd0595a1b8af95b:0",
 "insertTime": "1664805021000", "unlockConfirm": "200", "confirmTimes": "203",
 "memo": "xxyy1122",
 "transHash": "51a8f49e6f03f2c056e71fe3291aa65e1032880be855b65cecd0595a1b8af95b",
 "updateTime": "1664805621000", "netWork": "TRX"}"""

COINS = b"""[{"coin": "AGLD", "name": "Adventure Gold", "networkList": [{"coin": "AGLD",
 "depositDesc": null, "depositEnable": true, "minConfirm": "0", "name": "Adventure Gold",
 "network": "ERC20", "withdrawEnable": true, "withdrawFee": "10.000000000000000000",
 "withdrawIntegerMultiple": null, "withdrawMax": "1200000.000000000000000000",
 "withdrawMin": "20.000000000000000000", "sameAddress": false,
 "contract": "0x32353a6c91143bfd6c7d363b546e62a9a2489a20", "withdrawTips": null,
 "depositTips": null}]}]"""


def test_withdrawal_record_is_the_amount_received_with_its_fee() -> None:
    raw = msgspec.json.decode(WITHDRAWAL, type=rest.MexcWithdrawal, strict=False)
    t = rest.to_transfer(raw)
    assert (t.asset, t.network, t.amount, t.fee) == ("USDC", "MATIC", Decimal(1), Decimal(1))
    assert t.status is TransferStatus.ARRIVED and t.venue_id == raw.id
    assert t.tx_id == raw.trans_hash and t.ts_requested == 1664882739000 * 1_000_000
    assert t.ts_updated == 1664882799000 * 1_000_000


@pytest.mark.parametrize(
    ("status", "expected"),
    [(1, TransferStatus.PENDING), (6, TransferStatus.SENT), (8, TransferStatus.FAILED),
     (9, TransferStatus.FAILED), (10, TransferStatus.PENDING)],
)  # fmt: skip
def test_withdrawal_statuses(status: int, expected: TransferStatus) -> None:
    raw = msgspec.json.decode(WITHDRAWAL, type=rest.MexcWithdrawal, strict=False)
    assert rest.to_transfer(msgspec.structs.replace(raw, status=status)).status is expected


def test_unknown_status_or_bad_amount_is_malformed() -> None:
    raw = msgspec.json.decode(WITHDRAWAL, type=rest.MexcWithdrawal, strict=False)
    with pytest.raises(MalformedMessage):
        rest.to_transfer(msgspec.structs.replace(raw, status=42))
    with pytest.raises(MalformedMessage):
        rest.to_transfer(msgspec.structs.replace(raw, amount="two"))


def test_deposit_record() -> None:
    d = rest.to_deposit(msgspec.json.decode(DEPOSIT, type=rest.MexcDeposit, strict=False))
    assert (d.asset, d.network, d.amount, d.credited) == ("USDC", "TRX", Decimal(10), True)
    assert d.tx_id.startswith("51a8f49e") and d.ts == 1664805021000 * 1_000_000


def test_terms_turn_the_minimum_with_fee_into_the_minimum_received() -> None:
    coins = msgspec.json.decode(COINS, type=list[rest.MexcCoin], strict=False)
    terms = rest.to_terms(coins, "AGLD", "ERC20")
    assert (terms.fee, terms.minimum, terms.step) == (Decimal(10), Decimal(10), Decimal("1e-8"))
    with pytest.raises(InvalidOrder, match=r"AGLD on BSC \(its networks for AGLD: ERC20\)"):
        rest.to_terms(coins, "AGLD", "BSC")
    broken = msgspec.structs.replace(coins[0].network_list[0], withdraw_fee="ten")
    with pytest.raises(MalformedMessage):
        rest.to_terms([msgspec.structs.replace(coins[0], network_list=[broken])], "AGLD", "ERC20")


def test_withdraw_parameters_send_the_amount_with_the_fee() -> None:
    req = WithdrawRequest(client_id="c1", asset="BTC", amount=Decimal("0.5"), network="BTC",
                          address="bc1qx", memo="m")  # fmt: skip
    assert rest.withdraw_params(req, Decimal("0.5002")) == [
        ("coin", "BTC"), ("withdrawOrderId", "c1"), ("netWork", "BTC"), ("address", "bc1qx"),
        ("memo", "m"), ("amount", "0.5002"), ("remark", "c1"),
    ]  # fmt: skip


async def test_plugin_hands_the_config_policy_to_the_venue() -> None:
    cfg = msgspec.convert(
        {"name": "mexc", "allow_withdrawals": True, "withdraw_addresses": {"BTC": {"BTC": ["a"]}}},
        MexcConfig,
    )

    def no_rules(name: str | None, venue: str) -> object:
        raise AssertionError("a live venue needs no simulated rules")

    setup = VenueSetup(mode="live", loop=asyncio.get_running_loop(), clock=WallClock(),
                       environ={"ARBSIM_MEXC_API_KEY": "k", "ARBSIM_MEXC_API_SECRET": "s"},
                       catalog=None, rules=no_rules, feed=no_rules)  # type: ignore[arg-type]  # fmt: skip
    venue = build(cfg, setup)
    assert isinstance(venue, MexcVenue)
    policy = venue.withdraw_policy
    assert policy.allowed and policy.addresses == {"BTC": {"BTC": ["a"]}}
    await venue.stop()
