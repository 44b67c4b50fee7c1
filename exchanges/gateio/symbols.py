"""Gate.io currency-pair names and trading rules (PROTOCOLS.md B2).

Decisions
---------
* tick = 10^-``precision``; step = 10^-``amount_precision``; ``min_base_amount`` and
  ``min_quote_amount`` are the minimum quantity and notional (absent in old answers: 0).
* ``fee`` is a PERCENTAGE ("0.2" = 0.2 %); the account's real maker/taker rates come from
  ``/wallet/fee``. Both rates are set to ``fee / 100`` here.
* ``tradable`` only for ``trade_status == "tradable"``: ``buyable``/``sellable`` allow one
  side only, which an arbitrage leg cannot rely on. ``buy_start``/``sell_start`` (future
  listing times) are not checked: that needs a clock.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from exchanges.live.errors import decode_body, number, parser
from exchanges.live.symbols import VenueSymbolInfo, grid

__all__ = [
    "TRADE_STATUS_TRADABLE",
    "VENUE",
    "GateCurrencyPair",
    "decode_currency_pairs",
    "from_native",
    "symbol_info",
    "symbols_from_currency_pairs",
    "to_native",
]

VENUE = "gateio"

TRADE_STATUS_TRADABLE: dict[str, bool] = {
    "tradable": True,
    "buyable": False,
    "sellable": False,
    "untradable": False,
}
"""``trade_status`` -> whether both sides may be traded (unknown values: not tradable)."""

_PERCENT = Decimal(100)


class GateCurrencyPair(msgspec.Struct, frozen=True, kw_only=True):
    """One element of ``GET /spot/currency_pairs`` (fields the rules need)."""

    id: str
    base: str
    quote: str
    fee: str = "0"
    min_base_amount: str | None = None
    min_quote_amount: str | None = None
    max_base_amount: str | None = None
    max_quote_amount: str | None = None
    amount_precision: int
    precision: int
    trade_status: str
    buy_start: int = 0
    sell_start: int = 0


_pairs_decoder = msgspec.json.Decoder(list[GateCurrencyPair])
_pair_decoder = msgspec.json.Decoder(GateCurrencyPair)


def to_native(symbol: str) -> str:
    """``"BTC/USDT"`` -> ``"BTC_USDT"``."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"expected BASE/QUOTE, got {symbol!r}")
    return f"{base}_{quote}".upper()


def from_native(native: str) -> str:
    """``"BTC_USDT"`` -> ``"BTC/USDT"`` (quotes never contain ``_``: split at the last one)."""
    base, sep, quote = native.rpartition("_")
    if not sep or not base or not quote:
        raise ValueError(f"expected BASE_QUOTE, got {native!r}")
    return f"{base}/{quote}".upper()


@parser(VENUE, "currency_pairs")
def symbol_info(raw: GateCurrencyPair) -> VenueSymbolInfo:
    """Trading rules of one currency pair (:class:`MalformedMessage` when unusable)."""
    fee = number(raw.fee, "fee", signed=True) / _PERCENT
    return VenueSymbolInfo(
        venue=VENUE,
        symbol=f"{raw.base}/{raw.quote}",
        native_symbol=raw.id,
        base=raw.base,
        quote=raw.quote,
        tick=grid(raw.precision),
        step=grid(raw.amount_precision),
        min_qty=number(raw.min_base_amount or "0", "min_base_amount"),
        min_notional=number(raw.min_quote_amount or "0", "min_quote_amount"),
        maker_fee=fee,
        taker_fee=fee,
        tradable=TRADE_STATUS_TRADABLE.get(raw.trade_status, False),
    )


def decode_currency_pairs(data: bytes | str) -> list[GateCurrencyPair]:
    """Decode the raw JSON of ``GET /spot/currency_pairs`` (or one ``/{pair}`` object)."""
    text = data.encode() if isinstance(data, str) else data
    channel = "/spot/currency_pairs"
    if text.lstrip()[:1] == b"{":
        return [decode_body(_pair_decoder, text, venue=VENUE, channel=channel)]
    return decode_body(_pairs_decoder, text, venue=VENUE, channel=channel)


def symbols_from_currency_pairs(data: bytes | str) -> list[VenueSymbolInfo]:
    """Trading rules of every pair in a raw currency_pairs answer."""
    return [symbol_info(p) for p in decode_currency_pairs(data)]
