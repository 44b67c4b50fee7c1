"""Symbols of a live venue: the parsed trading rules of one symbol and the table of
started symbols (native names, instruments and books)."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.errors import InvalidSymbol
from arbsim.core.model import Instrument

MAX_PRECISION = 30
"""The most decimals a venue's precision field may give a tick or step."""


def grid(precision: int) -> Decimal:
    """``10**-precision``, the tick or step a venue's decimal count describes.

    Raises
    ------
    ValueError
        A precision outside ``0..MAX_PRECISION`` (no real instrument has one).
    """
    if not 0 <= precision <= MAX_PRECISION:
        raise ValueError(f"precision {precision} outside 0..{MAX_PRECISION}")
    return Decimal(1).scaleb(-precision)


class VenueSymbolInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Trading rules of one spot symbol on one venue.

    Attributes
    ----------
    venue:
        ``"mexc"`` or ``"gateio"``.
    symbol:
        Unified ``"BASE/QUOTE"`` form.
    native_symbol:
        The venue's own spelling (``"BTCUSDT"``, ``"BTC_USDT"``).
    tick, step:
        Price tick and quantity step (grid sizes).
    min_qty, min_notional:
        Minimum base quantity and minimum quote value of an order (``0`` = none).
    maker_fee, taker_fee:
        Fee rates as fractions (``0.002`` = 0.2 %).
    tradable:
        Whether an API client may place orders on it now.
    """

    venue: str
    symbol: str
    native_symbol: str
    base: str
    quote: str
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    min_notional: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    tradable: bool

    def to_instrument(self, venue: str) -> Instrument:
        """These trading rules as an arbsim :class:`Instrument` of ``venue``."""
        return Instrument(
            venue=venue,
            symbol=self.symbol,
            base=self.base,
            quote=self.quote,
            tick=self.tick,
            lot=self.step,
            min_qty=self.min_qty,
            min_notional=self.min_notional,
            maker_fee=self.maker_fee,
            taker_fee=self.taker_fee,
        )


class SymbolTable:
    """Started symbols of one live venue: native names, instruments and books."""

    def __init__(self, venue: str) -> None:
        self.venue = venue
        self.instruments: dict[str, Instrument] = {}
        self.natives: dict[str, str] = {}  # "BTC/USDT" -> "BTCUSDT"
        self.symbols: dict[str, str] = {}  # "BTCUSDT" -> "BTC/USDT"
        self.books: dict[str, OrderBook] = {}  # by native symbol

    def add(self, symbol: str, native: str, inst: Instrument) -> None:
        self.instruments[symbol] = inst
        self.natives[symbol] = native
        self.symbols[native] = symbol
        self.books[native] = OrderBook(self.venue, symbol, inst.tick)

    def instrument(self, symbol: str) -> Instrument:
        try:
            return self.instruments[symbol]
        except KeyError:
            raise InvalidSymbol(f"{symbol} was not started", venue=self.venue) from None

    def native(self, symbol: str) -> str:
        native = self.natives.get(symbol)
        if native is None:
            raise InvalidSymbol(f"{symbol} was not started", venue=self.venue)
        return native

    def book(self, symbol: str) -> OrderBook:
        return self.books[self.native(symbol)]
