"""MEXC symbol names and exchangeInfo parsing."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from exchanges.mexc import symbols

REPO_ROOT = Path(__file__).resolve().parents[3]
REALDATA = REPO_ROOT / ".." / "shared" / "realdata"


def realdata(rel: str) -> Path:
    path = REALDATA / rel
    if not path.exists():
        pytest.skip(reason=f"needs ../shared/realdata/{rel} next to the repo (not found)")
    return path


def _symbol(**overrides: object) -> bytes:
    raw: dict[str, object] = {
        "symbol": "BTCUSDT", "status": "1", "baseAsset": "BTC", "quoteAsset": "USDT",
        "baseAssetPrecision": 8, "quoteAssetPrecision": 2, "baseSizePrecision": "0.000001",
        "quoteAmountPrecision": "1", "isSpotTradingAllowed": True, "makerCommission": "0",
        "takerCommission": "0.0005",
    }  # fmt: skip
    raw.update(overrides)
    return json.dumps({"symbols": [raw]}).encode()


def test_names_round_trip() -> None:
    assert symbols.to_native("BTC/USDT") == "BTCUSDT"
    assert symbols.from_native("BTCUSDT") == "BTC/USDT"
    assert symbols.from_native("ETHBTC") == "ETH/BTC"
    assert symbols.from_native("PEPEUSDC") == "PEPE/USDC"
    # Longest suffix wins: FDUSD before USD-like shorter ones.
    assert symbols.from_native("BTCFDUSD") == "BTC/FDUSD"
    with pytest.raises(ValueError):
        symbols.to_native("BTCUSDT")
    with pytest.raises(ValueError):
        symbols.from_native("USDT")


@pytest.mark.parametrize(
    ("status", "allowed", "tradable"),
    [("1", True, True), ("ENABLED", True, True), ("1", False, False), ("2", True, False),
     ("3", True, False), ("weird", True, False)],
)  # fmt: skip
def test_tradable_rule(status: str, allowed: bool, tradable: bool) -> None:
    (info,) = symbols.symbols_from_exchange_info(
        _symbol(status=status, isSpotTradingAllowed=allowed)
    )
    assert info.tradable is tradable


def test_numeric_fixture_fields_are_accepted() -> None:
    # Doc-derived fixtures send numbers where the real venue sends strings.
    (info,) = symbols.symbols_from_exchange_info(
        _symbol(baseSizePrecision=1e-08, quoteAmountPrecision=5)
    )
    assert info.min_qty == Decimal("0.00000001")
    assert info.min_notional == Decimal(5)


@pytest.mark.realdata
def test_real_exchange_info_btcusdt() -> None:
    recording = json.loads(realdata("mexc/gocryptotrader_mexc_v3_http_recording.json").read_text())
    answers = recording["routes"]["/api/v3/exchangeInfo"]["GET"]
    assert answers, "recording holds exchangeInfo answers"
    seen = 0
    for answer in answers:
        infos = symbols.symbols_from_exchange_info(msgspec.json.encode(answer["data"]))
        assert len(infos) == len(answer["data"]["symbols"])
        for info in infos:
            if info.native_symbol != "BTCUSDT":
                continue
            seen += 1
            assert info.symbol == "BTC/USDT"
            assert (info.base, info.quote, info.venue) == ("BTC", "USDT", "mexc")
            assert info.tick == Decimal("0.01")
            assert info.step == Decimal("0.00000001")
            assert info.min_qty == Decimal("0.000001")
            assert info.min_notional == Decimal("1")
            assert info.maker_fee == Decimal("0")
            assert info.taker_fee == Decimal("0.0005")
            # Recorded with isSpotTradingAllowed=false: API orders are not allowed on it.
            assert info.tradable is False
    assert seen == 2


@pytest.mark.realdata
def test_real_exchange_info_all_symbols_parse() -> None:
    recording = json.loads(realdata("mexc/gocryptotrader_mexc_v3_http_recording.json").read_text())
    answer = recording["routes"]["/api/v3/exchangeInfo"]["GET"][0]["data"]
    infos = symbols.symbols_from_exchange_info(msgspec.json.encode(answer))
    assert len(infos) == len(answer["symbols"]) > 1
    for info, raw in zip(infos, answer["symbols"], strict=True):
        assert info.native_symbol == raw["symbol"] == symbols.to_native(info.symbol)
        assert info.tick > 0 and info.step > 0
        assert info.tradable == (raw["status"] == "1" and raw["isSpotTradingAllowed"])
    assert any(i.tradable for i in infos)
