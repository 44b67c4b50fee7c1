"""What a paper or live run tells its operators while it runs: the observer the engine
reports to (requests and their latency, API failures, market messages, risk denials and
the breaker). A backtest has no observer, and the engine does no work for one.

Orders, fills and arbitrages reach operators through the run's recorder (the application
layer extends the journaling recorder); the observer sees what the recorder does not.
"""

from __future__ import annotations

from typing import Protocol

from arbsim.core.book import OrderBook
from arbsim.core.model import Trade
from arbsim.runtime.latency import LatencyRecorder
from arbsim.runtime.risk import RiskListener

__all__ = ["ObservedLatency", "RunObserver"]


class RunObserver(RiskListener, Protocol):
    """The engine's reports to the operations layer of a real-time run."""

    def request(self, kind: str, venue: str, ts: int, latency_ns: int) -> None:
        """A measured latency: a request round trip (``place``, ``cancel``,
        ``fetch_balances``, ``fetch_order``, ``open_orders``) or ``tick_to_trade``."""
        ...

    def api_failure(self, venue: str, error: Exception) -> None:
        """A request failed for a temporary reason (5xx, timeout, lost connection, rate
        limit, an order answer that never came)."""
        ...

    def book(self, venue: str, book: OrderBook) -> None:
        """A market message changed ``book`` (real-time runs: as it is delivered)."""
        ...

    def trade(self, venue: str, trade: Trade) -> None:
        """A public trade was delivered."""
        ...


class ObservedLatency(LatencyRecorder):
    """The run's latency records, each also reported to an observer."""

    def __init__(self, observer: RunObserver) -> None:
        super().__init__()
        self.observer = observer

    def record(self, kind: str, venue: str, ts: int, latency_ns: int) -> None:
        super().record(kind, venue, ts, latency_ns)
        self.observer.request(kind, venue, ts, latency_ns)
