"""Gate.io currency-pair names and parsing."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from exchanges.gateio import symbols

REPO_ROOT = Path(__file__).resolve().parents[3]
REALDATA = REPO_ROOT / ".." / "shared" / "realdata"


def realdata(rel: str) -> Path:
    path = REALDATA / rel
    if not path.exists():
        pytest.skip(reason=f"needs ../shared/realdata/{rel} next to the repo (not found)")
    return path


def test_names_round_trip() -> None:
    assert symbols.to_native("BTC/USDT") == "BTC_USDT"
    assert symbols.from_native("BTC_USDT") == "BTC/USDT"
    assert symbols.from_native("BTC3L_USDT") == "BTC3L/USDT"
    with pytest.raises(ValueError):
        symbols.to_native("BTC_USDT")
    with pytest.raises(ValueError):
        symbols.from_native("BTCUSDT")


@pytest.mark.parametrize(
    ("status", "tradable"),
    [("tradable", True), ("buyable", False), ("sellable", False), ("untradable", False),
     ("new_state", False)],
)  # fmt: skip
def test_trade_status(status: str, tradable: bool) -> None:
    raw = {"id": "A_B", "base": "A", "quote": "B", "fee": "0.2", "amount_precision": 3,
           "precision": 4, "trade_status": status}  # fmt: skip
    (info,) = symbols.symbols_from_currency_pairs(json.dumps(raw))
    assert info.tradable is tradable
    # Old answers (2021) lack min_base_amount: no minimum.
    assert info.min_qty == 0
    assert info.min_notional == 0
    assert info.maker_fee == Decimal("0.002")


@pytest.mark.realdata
def test_real_currency_pairs() -> None:
    data = realdata("gateio/gate.spot.2025-05-08.currency_pairs.json").read_bytes()
    infos = symbols.symbols_from_currency_pairs(data)
    assert len(infos) == 2926
    by_id = {i.native_symbol: i for i in infos}
    btc = by_id["BTC_USDT"]
    assert btc.symbol == "BTC/USDT"
    assert (btc.venue, btc.base, btc.quote) == ("gateio", "BTC", "USDT")
    assert btc.tick == Decimal("0.1")
    assert btc.step == Decimal("0.00001")
    assert btc.min_qty == Decimal("0.00001")
    assert btc.min_notional == Decimal("3")
    assert btc.maker_fee == btc.taker_fee == Decimal("0.002")
    assert btc.tradable
    assert sum(i.tradable for i in infos) == 2919
    for info in infos:
        assert symbols.to_native(info.symbol) == info.native_symbol
        assert info.tick > 0 and info.step > 0


@pytest.mark.realdata
def test_old_recording_currency_pairs_parse() -> None:
    line = realdata("gateio/cryptofeed_GATEIO.0").read_text().splitlines()[0]
    body = line.split(": ", 1)[1]
    infos = symbols.symbols_from_currency_pairs(body)
    assert len(infos) == 1458
    by_id = {i.native_symbol: i for i in infos}
    # 2021 answers omit min_quote_amount on some pairs: read as "no minimum".
    assert by_id["BTC_USDC"].min_notional == 0
    assert by_id["BTC_USDC"].min_qty == Decimal("0.0001")
    assert by_id["ALEPH_USDT"].min_notional == Decimal("1")
    assert by_id["ALEPH_USDT"].min_qty == 0
