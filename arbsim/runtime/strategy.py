"""The strategy interface: the callbacks a strategy overrides, and what it declares.

A strategy is registered by name under the ``arbsim.strategies`` entry-point group (or
named explicitly as ``module:Class`` of a :class:`Strategy` subclass) and built from its
validated ``Params``. It never reads the config or the venues' kinds: it declares the
symbols it needs (:meth:`Strategy.subscriptions`) and sees the market only through the
:class:`~arbsim.runtime.context.Context` its callbacks receive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.model import Order, Trade
from arbsim.core.records import ArbRecord

if TYPE_CHECKING:
    from arbsim.runtime.context import Context


class Strategy:
    """Base class: override what you need. Callbacks must be fast and synchronous;
    long work goes into ``ctx.spawn(coro)``."""

    #: the name the strategy is registered under (entry-point group ``arbsim.strategies``)
    name: ClassVar[str] = "strategy"
    #: a msgspec Struct type validating ``strategy.params`` (``None``: no parameters)
    Params: ClassVar[type[msgspec.Struct] | None] = None

    def __init__(self, params: object = None) -> None:
        """Built from the validated ``Params`` (or ``None``); no I/O here."""

    def subscriptions(self, venues: Sequence[str]) -> dict[str, list[str]]:
        """The symbols this strategy needs on each of the configured ``venues``.

        The runners start exactly these. An empty answer means "everything the data
        holds" in a backtest and is an error in paper and live runs.
        """
        return {}

    async def on_start(self, ctx: Context) -> None:
        """Called once, after the start balances are known."""

    def on_book(self, ctx: Context, venue: str, book: OrderBook) -> None:
        """A venue message changed ``book``."""

    def on_trade(self, ctx: Context, venue: str, trade: Trade) -> None:
        """A public trade."""

    def wants_trades(self) -> bool:
        """Whether :meth:`on_trade` does anything; asked once, before the run starts. A
        backtest delivers no public trades to a strategy that says no (it skips them in
        bulk). Default: whether the class overrides :meth:`on_trade`."""
        return type(self).on_trade is not Strategy.on_trade

    def on_order(self, ctx: Context, order: Order) -> None:
        """One of our orders changed state or filled."""

    async def on_resume(self, ctx: Context, in_flight: list[ArbRecord]) -> None:
        """A resumed run (``--resume``) found attempts its earlier process left in flight;
        called after ``on_start``, once the journal and the venues are reconciled. By
        default they stay as they are (flagged ``pending`` in the outputs)."""

    async def on_stop(self, ctx: Context) -> None:
        """Called once at the end, before in-flight work is cancelled."""

    def summary(self) -> dict[str, Any]:
        """Strategy-specific figures for ``summary.json``."""
        return {}
