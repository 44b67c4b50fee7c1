"""The one Venue interface that replay, paper and live venues all satisfy (DESIGN §4).

Market data flows from a venue into a :class:`MarketSink` (the engine); strategy code
only ever sees books through the engine's callbacks and ``Venue.book``. Balances,
order status and open orders are always fresh requests; only instruments are static.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from arbsim.core.book import OrderBook
from arbsim.core.model import Balances, Instrument, Order, OrderRequest, Trade


class MarketSink(Protocol):
    """Where a venue delivers market data and order updates (the engine)."""

    def on_book(self, venue: str, book: OrderBook) -> None: ...

    def on_trade(self, venue: str, trade: Trade) -> None: ...

    def on_order(self, order: Order) -> None: ...


@runtime_checkable
class Venue(Protocol):
    """A trading venue: replay (backtest), paper (simulated fills) or live."""

    name: str

    async def start(self, symbols: Sequence[str], sink: MarketSink) -> None:
        """Connect / open data and begin delivering books and trades to ``sink``."""
        ...

    async def stop(self) -> None: ...

    def instrument(self, symbol: str) -> Instrument:
        """Static instrument definition: safe to cache."""
        ...

    def book(self, symbol: str) -> OrderBook:
        """The local book as of the engine clock (never ahead of it)."""
        ...

    async def fetch_balances(self) -> Balances:
        """A fresh balance request."""
        ...

    async def place_order(self, req: OrderRequest) -> Order:
        """Send an order; returns its state as acknowledged by the venue.

        Raises an :class:`~arbsim.core.errors.InvalidOrder` subclass carrying the venue's
        code when the venue rejects it, and :class:`~arbsim.core.errors.OutcomeUnknown`
        when the outcome cannot be known without a query.
        """
        ...

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order: ...

    async def fetch_order(self, symbol: str, client_order_id: str) -> Order: ...

    async def open_orders(self, symbol: str | None = None) -> list[Order]: ...
