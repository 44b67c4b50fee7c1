"""The ports of the core: what every venue implements and how venue packages plug in.

- :class:`Venue` is the one interface that replay, paper and live venues all satisfy
  (DESIGN §4). Market data flows from a venue into a :class:`MarketSink` (the engine);
  strategy code only ever sees books through the engine's callbacks and ``Venue.book``.
  Balances, order status and open orders are always fresh requests; only instruments are
  static.
- :class:`VenuePlugin` is what a venue package registers under the ``arbsim.venues``
  entry-point group: its config type (a :class:`VenueConfig` subclass tagged with the
  plug-in's name), the run modes it serves and one typed function that builds the venue
  from that config and a :class:`VenueSetup`. The application finds plug-ins; the core
  never imports a venue package.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.model import (
    Balances,
    Deposit,
    Instrument,
    Order,
    OrderRequest,
    Trade,
    Transfer,
    WithdrawalTerms,
    WithdrawRequest,
)
from arbsim.core.rules import VenueRules

if TYPE_CHECKING:
    from arbsim.core.transfers import TransferNetwork

Mode = Literal["backtest", "paper", "live"]
"""How a run executes: replayed data on virtual time, live data with simulated fills,
or live trading."""

MODES: tuple[Mode, ...] = ("backtest", "paper", "live")


class Clock(Protocol):
    """The only source of time for strategy, risk and execution code."""

    def now_ns(self) -> int: ...


class MarketSink(Protocol):
    """Where a venue delivers market data and order updates (the engine)."""

    def on_book(self, venue: str, book: OrderBook) -> None: ...

    def on_trade(self, venue: str, trade: Trade) -> None: ...

    def on_order(self, order: Order) -> None: ...


class VenueHealth(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a venue's streams are up (a venue with one down takes no new entries),
    and what operators watch besides: its REST API, its clock and its reconnects.

    ``rest`` and ``clock_skew_ms`` come from a venue that checks its API now and then
    (live venues and their public feeds, when the run asks them to: ``VenueSetup.
    probe_interval_s``); ``None`` skew: not measured. ``clock_skew_ms`` is the venue's
    clock minus ours (positive: the venue is ahead). ``reconnects`` counts lost stream
    connections since the start, ``resyncs`` books synchronised again.
    """

    market: bool = True
    private: bool = True
    detail: str = ""
    rest: bool = True
    clock_skew_ms: float | None = None
    reconnects: int = 0
    resyncs: int = 0

    @property
    def ok(self) -> bool:
        """The streams are up: what the risk gate asks before an order."""
        return self.market and self.private


@runtime_checkable
class Venue(Protocol):
    """A trading venue: replay (backtest), paper (simulated fills) or live.

    ``order_expiry_ns``: how long after it was sent an order request can still create an
    order at the venue (MEXC: the ``recvWindow``; 0: requests reach the venue in order, so
    a query sent later that does not find the order is final). An order whose outcome is
    unknown and that is still not found after this long was never placed.
    """

    name: str
    order_expiry_ns: int

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

    def describe(self) -> dict[str, str | float]:
        """What the run summary says about this venue (kind, endpoints, models)."""
        ...

    def health(self) -> VenueHealth:
        """Whether its market and private streams are up, now."""
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


@runtime_checkable
class TransferVenue(Venue, Protocol):
    """A venue that can move funds to another account: withdrawals and deposits.

    Optional: a venue kind that cannot (or whose config does not allow it) is a plain
    :class:`Venue`. Amounts are exact Decimals; a withdrawal debits ``amount + fee`` at
    the source when it is sent and credits ``amount`` at the destination when it arrives.
    """

    async def withdrawal_terms(self, asset: str, network: str) -> WithdrawalTerms:
        """The venue's current fee, minimum and step for ``asset`` on ``network``."""
        ...

    async def deposit_address(self, asset: str, network: str) -> str:
        """This account's deposit address for ``asset`` on ``network``."""
        ...

    def check_withdrawal(self, asset: str, network: str, address: str | None = None) -> None:
        """Refuse locally, without any request (:class:`~arbsim.core.errors.InvalidOrder`
        naming the reason), a withdrawal this venue may not send at all: a live venue
        whose config does not allow withdrawals, or (given ``address``) does not list the
        address for ``asset`` on ``network``."""
        ...

    async def withdraw(self, req: WithdrawRequest) -> Transfer:
        """Ask for a withdrawal; returns it as the venue acknowledged it.

        Raises :class:`~arbsim.core.errors.InvalidOrder`-like errors when the venue
        refuses it and :class:`~arbsim.core.errors.OutcomeUnknown` when the answer was
        lost (then :meth:`fetch_withdrawal` by ``req.client_id`` tells).
        """
        ...

    async def fetch_withdrawal(self, client_id: str) -> Transfer:
        """The withdrawal with our ``client_id``, as the venue reports it now."""
        ...

    async def fetch_deposits(self, asset: str | None, since_ns: int) -> list[Deposit]:
        """Deposits to this account since ``since_ns`` (credited or on their way)."""
        ...


class ReplaySource(Protocol):
    """One timestamp-ordered stream a replay venue feeds to the backtest driver."""

    ts: int
    events: int
    messages: int

    def next(self) -> bool: ...

    def dispatch(self) -> None: ...


class ReplayDriver(Protocol):
    """What the backtest driver's fast path offers a source that implements
    ``attach(driver, index)`` (and optionally ``finish()``, called after the replay).

    An attached source may leave the merge while it has messages left (its ``next()``
    returns False) and come back with :meth:`wake`; until then it applies its pending
    messages itself, up to :attr:`head`, when something needs their effect."""

    #: ``(ts, index, source)`` of the message the driver is dispatching, or will dispatch
    #: once the callbacks now running are done: every message ordered before it by
    #: ``(ts, index)`` has been delivered (``END`` after the last message)
    head: tuple[int, int, Any]
    #: whether the strategy wants public trades (``Strategy.wants_trades``)
    trades_wanted: bool

    def wake(self, index: int, source: ReplaySource) -> None:
        """Put ``source`` (attached as ``index``) back into the merge at its current
        message, which must come after :attr:`head`."""
        ...


#: the driver's head after the last message
END = (2**63 - 1, 2**31, None)


@runtime_checkable
class ReplayVenue(Venue, Protocol):
    """A venue that can run in a backtest: it hands the driver its data streams."""

    def sources(self, end_ns: int | None, start_ns: int | None = None) -> list[ReplaySource]:
        """Timestamp-ordered streams up to ``end_ns`` (exclusive), exchange side first.

        ``start_ns``: the window's start; a venue may then skip what cannot change its
        state at that time (earlier history before a book snapshot, earlier trades). The
        messages it still gives before ``start_ns`` are the warm-up."""
        ...

    def close_sources(self) -> None:
        """Release what reading the sources holds (read-ahead threads); the driver calls
        it once the replay is over, whether it ended or failed."""
        ...


class BookUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """One venue message's level changes (absolute sizes, 0 deletes), as a feed applies it
    to its book; ``snapshot``: the book is replaced."""

    symbol: str
    ts_exchange: int
    ts_local: int
    seq: int = 0
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    snapshot: bool = False


@runtime_checkable
class UpdateSink(MarketSink, Protocol):
    """A sink that also wants each book update just before the feed applies it (the
    paper venue sequences the exchange side by it; a recorder writes it down)."""

    def before_update(self, venue: str, update: BookUpdate) -> None: ...


class MarketRecorder(Protocol):
    """Where a feed writes down what it received, as it received it (``arbsim record``
    and the ``catalog/`` of paper / live runs): each instrument once, each book update
    just before it is applied, each public trade."""

    def instrument(self, inst: Instrument) -> None: ...

    def update(self, venue: str, update: BookUpdate) -> None: ...

    def trade(self, venue: str, trade: Trade) -> None: ...


class MarketFeed(Protocol):
    """The market-data part of a venue (a live adapter without credentials), which the
    paper venue matches against."""

    name: str

    async def start(self, symbols: Sequence[str], sink: MarketSink) -> None: ...

    async def stop(self) -> None: ...

    def instrument(self, symbol: str) -> Instrument: ...

    def book(self, symbol: str) -> OrderBook: ...

    def describe(self) -> dict[str, str | float]: ...

    def health(self) -> VenueHealth: ...


class VenueConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    """Base of every venue's config section. A plug-in subclasses it with
    ``tag=<its entry-point name>``; the ``kind`` key of a venue entry selects it."""

    name: str


@runtime_checkable
class Endpoints(Protocol):
    """A venue config with REST and public WebSocket URLs (``None``: the real venue's
    own); ``--venue-url NAME=REST_URL,WS_URL`` replaces them."""

    rest_url: str | None
    ws_url: str | None


@dataclass(frozen=True)
class FeedSpec:
    """Which public market data a paper venue asks a venue plug-in for."""

    name: str
    rest_url: str | None = None
    ws_url: str | None = None


@dataclass(frozen=True)
class VenueSetup:
    """What the application hands a plug-in's build function besides its config.

    Attributes
    ----------
    mode:
        The run's mode.
    loop:
        The event loop the run uses (a virtual-time loop in a backtest).
    clock:
        The engine's clock.
    environ:
        Where credentials come from (the process environment; tests pass their own).
    catalog:
        The Parquet catalog of a backtest, a directory or a URL (``None`` otherwise).
    rules:
        Order rules by name (``None``: the venue's own when a plug-in of that name has
        rules, else generic) for simulated venues.
    feed:
        The public market data of a venue plug-in (for paper venues).
    recorder:
        Where live feeds write down the market data they receive (``None``: nowhere).
    probe_interval_s:
        How often a live venue (or public feed) asks its REST API for the server time:
        whether REST answers and how far the venue's clock is from ours
        (:class:`VenueHealth`); 0: never (paper / live runs with the operations server
        set it).
    transfers:
        The run's simulated transfer network (backtest and paper: the app creates one
        and every simulated venue joins it; ``None``: no simulated transfers).
    """

    mode: Mode
    loop: asyncio.AbstractEventLoop
    clock: Clock
    environ: Mapping[str, str]
    catalog: str | Path | None
    rules: Callable[[str | None, str], VenueRules]
    feed: Callable[[str, FeedSpec], MarketFeed]
    recorder: MarketRecorder | None = None
    probe_interval_s: float = 0.0
    transfers: TransferNetwork | None = None


C = TypeVar("C", bound=VenueConfig)


@dataclass(frozen=True)
class VenuePlugin(Generic[C]):
    """A venue kind, as registered under the ``arbsim.venues`` entry-point group.

    Attributes
    ----------
    config:
        The config type of a venue of this kind (tag: the entry-point name).
    modes:
        The run modes this kind serves.
    build:
        Builds the venue (no I/O: connecting happens in ``Venue.start``).
    rules:
        The exchange's own order rules, when it is an exchange that simulated venues
        can imitate (``rules: NAME`` in a simulated venue's config).
    feed:
        Builds the exchange's public market data without credentials (paper trading).
    """

    config: type[C]
    modes: frozenset[Mode]
    build: Callable[[C, VenueSetup], Venue]
    rules: VenueRules | None = None
    feed: Callable[[FeedSpec, VenueSetup], MarketFeed] | None = None

    @property
    def kind(self) -> str:
        """The tag of the config type: the plug-in's registered name."""
        tag = self.config.__struct_config__.tag
        return tag if isinstance(tag, str) else self.config.__name__

    def build_venue(self, config: VenueConfig, setup: VenueSetup) -> Venue:
        """``build`` for a config decoded as this kind (checked, not assumed)."""
        if not isinstance(config, self.config):
            raise TypeError(
                f"venue {config.name!r}: a {type(config).__name__} is not a "
                f"{self.config.__name__} config"
            )
        return self.build(config, setup)


__all__ = [
    "END",
    "MODES",
    "BookUpdate",
    "Clock",
    "Endpoints",
    "FeedSpec",
    "MarketFeed",
    "MarketRecorder",
    "MarketSink",
    "Mode",
    "ReplayDriver",
    "ReplaySource",
    "ReplayVenue",
    "TransferVenue",
    "UpdateSink",
    "Venue",
    "VenueConfig",
    "VenueHealth",
    "VenuePlugin",
    "VenueSetup",
]
