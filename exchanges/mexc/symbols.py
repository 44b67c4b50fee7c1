"""MEXC symbol names and trading rules (PROTOCOLS.md A2).

Decisions
---------
* ``status``: the docs say ``"1"`` online, ``"2"`` paused, ``"3"`` offline; one doc example
  shows ``"ENABLED"``. ``"ENABLED"`` is read as online (it is the Binance-style spelling of the
  same state); any other value is not tradable.
* ``tradable`` = status online **and** ``isSpotTradingAllowed`` (ccxt's rule). Note that the
  real 2025-12-31 recording has ``BTCUSDT`` with ``isSpotTradingAllowed: false``: MEXC does
  not allow API spot orders on it, so it parses as not tradable.
* tick = 10^-``quoteAssetPrecision``; step = 10^-``baseAssetPrecision``; ``baseSizePrecision``
  is the minimum quantity (not a step); ``quoteAmountPrecision`` is the minimum notional of
  limit orders. ``makerCommission``/``takerCommission`` are fractions.
"""

from __future__ import annotations

import msgspec

from exchanges.live.errors import decode_body, number, parser
from exchanges.live.symbols import VenueSymbolInfo, grid

__all__ = [
    "QUOTE_ASSETS",
    "STATUS_ONLINE",
    "VENUE",
    "MexcExchangeInfo",
    "MexcSymbol",
    "decode_exchange_info",
    "from_native",
    "symbol_info",
    "symbols_from_exchange_info",
    "to_native",
]

VENUE = "mexc"

STATUS_ONLINE: dict[str, bool] = {"1": True, "ENABLED": True, "2": False, "3": False}
"""``status`` value -> whether the symbol is online (unknown values: not online)."""

QUOTE_ASSETS: tuple[str, ...] = (
    "USDT", "USDC", "USDE", "USD1", "FDUSD", "TUSD", "BUSD", "DAI", "EUR", "BRL",
    "BTC", "ETH", "MX",
)  # fmt: skip
"""Quote suffixes tried by :func:`from_native` when no exchangeInfo is at hand."""

Number = str | int | float


class MexcSymbol(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One element of ``GET /api/v3/exchangeInfo`` ``symbols`` (fields the rules need)."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    base_asset_precision: int
    quote_asset_precision: int
    # Real answers send strings ("0.000001"); doc-derived fixtures send numbers.
    base_size_precision: Number = "0"
    quote_amount_precision: Number = "0"
    quote_amount_precision_market: Number = "0"
    is_spot_trading_allowed: bool = False
    maker_commission: Number = "0"
    taker_commission: Number = "0"
    max_quote_amount: Number | None = None
    order_types: list[str] = msgspec.field(default_factory=list)
    permissions: list[str] = msgspec.field(default_factory=list)


class MexcExchangeInfo(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """``GET /api/v3/exchangeInfo`` answer (the part used here)."""

    symbols: list[MexcSymbol]
    server_time: int = 0
    timezone: str = ""


_exchange_info_decoder = msgspec.json.Decoder(MexcExchangeInfo)


def to_native(symbol: str) -> str:
    """``"BTC/USDT"`` -> ``"BTCUSDT"``."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"expected BASE/QUOTE, got {symbol!r}")
    return f"{base}{quote}".upper()


def from_native(native: str, quotes: tuple[str, ...] = QUOTE_ASSETS) -> str:
    """``"BTCUSDT"`` -> ``"BTC/USDT"`` by the longest known quote suffix.

    MEXC names carry no separator, so this is a guess; prefer
    :attr:`VenueSymbolInfo.symbol` from exchangeInfo wherever it is available.
    """
    upper = native.upper()
    for quote in sorted(quotes, key=len, reverse=True):
        if upper.endswith(quote) and len(upper) > len(quote):
            return f"{upper[: -len(quote)]}/{quote}"
    raise ValueError(f"no known quote asset at the end of {native!r}")


@parser(VENUE, "exchangeInfo")
def symbol_info(raw: MexcSymbol) -> VenueSymbolInfo:
    """Trading rules of one exchangeInfo symbol (:class:`MalformedMessage` when unusable)."""
    return VenueSymbolInfo(
        venue=VENUE,
        symbol=f"{raw.base_asset}/{raw.quote_asset}",
        native_symbol=raw.symbol,
        base=raw.base_asset,
        quote=raw.quote_asset,
        tick=grid(raw.quote_asset_precision),
        step=grid(raw.base_asset_precision),
        # str() first so that a float like 1e-08 becomes Decimal("1E-8"), not its binary value
        min_qty=number(str(raw.base_size_precision), "baseSizePrecision"),
        min_notional=number(str(raw.quote_amount_precision), "quoteAmountPrecision"),
        maker_fee=number(str(raw.maker_commission), "makerCommission", signed=True),
        taker_fee=number(str(raw.taker_commission), "takerCommission", signed=True),
        tradable=STATUS_ONLINE.get(raw.status, False) and raw.is_spot_trading_allowed,
    )


def decode_exchange_info(data: bytes | str) -> MexcExchangeInfo:
    """Decode the raw JSON of ``GET /api/v3/exchangeInfo`` (:class:`MalformedMessage` when
    it is not one)."""
    return decode_body(_exchange_info_decoder, data, venue=VENUE, channel="/api/v3/exchangeInfo")


def symbols_from_exchange_info(data: bytes | str) -> list[VenueSymbolInfo]:
    """Trading rules of every symbol in a raw exchangeInfo answer."""
    return [symbol_info(s) for s in decode_exchange_info(data).symbols]
