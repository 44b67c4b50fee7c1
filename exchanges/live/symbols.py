"""Started symbols of a live venue: native names, instruments and books."""

from __future__ import annotations

from arbsim.book import OrderBook
from arbsim.errors import InvalidSymbol
from arbsim.model import Instrument


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
