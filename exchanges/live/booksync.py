"""The order-book synchronisation machine both venues use.

Both venues send versioned diffs (``fromVersion``/``toVersion`` on MEXC, ``U``/``u`` on
Gate) that must be stitched onto a snapshot; they differ only in a handful of rules, which
are data (:class:`SyncPolicy`), not branches. The venue modules convert their own messages
into :class:`BookSnapshot` / :class:`BookDiff` and pick a policy.

The machine is pure: no I/O, no clock. It answers every input with a list of
:class:`BookChanges` ("apply these levels") and/or :class:`ResyncNeeded` ("fetch a snapshot"
or "resubscribe"). An input it cannot use (a price or size that is not a number, a price
off the tick grid, a version range that runs backwards) raises
:class:`~arbsim.core.errors.MalformedMessage` after forgetting the book: the caller counts
it and resyncs. A stale duplicate (a diff whose range ends at or before the book's id) is
dropped and counted in ``stale``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from decimal import Decimal
from enum import Enum
from typing import Literal

import msgspec

from arbsim.core.errors import MalformedMessage

Level = tuple[str, str]
"""One book level as the venue sent it: ``(price, size)`` decimal strings."""

ResyncAction = Literal["snapshot", "resubscribe"]


class BookSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A full book with the id of the last update it contains (REST depth answer)."""

    last_id: int
    bids: list[Level]
    asks: list[Level]
    ts_exchange: int = 0
    """Exchange time in ns, 0 when the venue does not say."""


class BookDiff(msgspec.Struct, frozen=True, kw_only=True):
    """Level changes covering update ids ``first_id..last_id`` (sizes absolute, "0" deletes).

    ``full=True`` means the diff *is* a whole book (Gate ``full: true`` pushes).
    """

    first_id: int
    last_id: int
    bids: list[Level]
    asks: list[Level]
    ts_exchange: int = 0
    full: bool = False


class BookChanges(msgspec.Struct, frozen=True, kw_only=True):
    """Apply these level changes; when ``replace`` is set, clear the book first."""

    bids: list[Level]
    asks: list[Level]
    update_id: int
    ts_exchange: int
    replace: bool = False


class ResyncNeeded(msgspec.Struct, frozen=True, kw_only=True):
    """The local book can no longer be trusted (or a snapshot cannot be used).

    ``action`` tells the adapter what to do: fetch a REST snapshot, or (Gate ``spot.obu``)
    unsubscribe and subscribe again.
    """

    reason: str
    action: ResyncAction


SyncEvent = BookChanges | ResyncNeeded


class SyncPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The rules in which the venues' sync procedures differ.

    Attributes
    ----------
    allow_overlap:
        Once live, accept a diff whose first id is at or before ``local_id + 1`` as long as it
        ends after ``local_id`` (Gate: only ``U > local_id + 1`` is a gap). When false, the
        next diff must start exactly at ``local_id + 1`` (MEXC step 7, Gate ``spot.obu``).
    buffer_before_snapshot:
        Keep diffs that arrive before the first snapshot (REST-snapshot procedures). When
        false the machine waits for a ``full`` diff and ignores the rest (Gate ``spot.obu``).
    resync_action:
        What a :class:`ResyncNeeded` asks for.
    max_buffer:
        Buffered diffs kept before a snapshot; the oldest are dropped beyond it (the snapshot
        check then asks for a newer snapshot, which is the right outcome).
    check_crossed:
        Ask for a resync when best bid >= best ask after an update.
    max_stale_run:
        Stale duplicates in a row, once live, before the book's id is taken to be wrong and
        a resync is asked for: one bogus id (a far-future ``u``) must not freeze the book.
        Ten times as many diffs older than a freshly loaded snapshot are allowed (a REST
        snapshot may be ahead of the stream) before its ``lastUpdateId`` is doubted.
    """

    allow_overlap: bool
    buffer_before_snapshot: bool
    resync_action: ResyncAction
    max_buffer: int = 10_000
    check_crossed: bool = True
    max_stale_run: int = 100


class SyncState(Enum):
    """Where a :class:`DiffBookSync` is in its procedure."""

    WAITING_SNAPSHOT = "waiting_snapshot"
    WAITING_FIRST_DIFF = "waiting_first_diff"
    LIVE = "live"


_ZERO = Decimal(0)
_MAX_TICKS = Decimal(2**53)
"""Prices stay below this many ticks: their float is exact enough to land on its tick."""
_MAX_PRICE = Decimal("1e18")
"""Without a tick (unit tests), the largest price accepted."""
_MAX_SIZE = Decimal("1e30")
_MIN_SIZE = Decimal("1e-30")
"""A non-zero size outside [_MIN_SIZE, _MAX_SIZE] is not a size: as a float it would be 0
(a deletion the level book does not see) or inf."""

ParsedLevel = tuple[Decimal, Decimal, str]
"""``(price, size, size as sent)`` of one checked level."""


def parse_levels(levels: Sequence[Level], tick: Decimal | None, side: str) -> list[ParsedLevel]:
    """Check one side's levels: each a ``(price, size)`` pair of decimal strings, the price
    positive and on the ``tick`` grid (when given), the size zero or a usable positive number.

    Raises
    ------
    MalformedMessage
        Naming the side and the offending value (market data is public).
    """
    out: list[ParsedLevel] = []
    for level in levels:
        try:
            price_text, size_text = level
            price = Decimal(price_text)
            size = Decimal(size_text)
        except (ValueError, TypeError, ArithmeticError):
            raise MalformedMessage(f"{side} level {str(level)[:60]} is not (price, size)") from None
        if not price.is_finite() or price <= _ZERO:
            raise MalformedMessage(f"{side} price {str(price_text)[:40]} is not a positive number")
        if not size.is_finite() or size < _ZERO:
            raise MalformedMessage(f"{side} size {str(size_text)[:40]} is not a size")
        if size and not _MIN_SIZE <= size <= _MAX_SIZE:
            raise MalformedMessage(f"{side} size {str(size_text)[:40]} is out of range")
        if tick is None:
            if price > _MAX_PRICE:
                raise MalformedMessage(f"{side} price {str(price_text)[:40]} is out of range")
        elif price >= tick * _MAX_TICKS:
            raise MalformedMessage(f"{side} price {str(price_text)[:40]} is out of range")
        elif price % tick:
            raise MalformedMessage(
                f"{side} price {str(price_text)[:40]} is off the tick grid ({tick})"
            )
        out.append((price, size, str(size_text)))
    return out


class LevelBook:
    """A minimal two-sided book: ``Decimal(price) -> size string`` per side.

    Prices are keyed by value so that ``"10.2"`` and ``"10.20"`` are the same level; with
    prices on the tick grid (:func:`parse_levels`), comparing them is comparing ticks, as
    the :class:`~arbsim.core.book.OrderBook` fed from this machine does.
    """

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids: dict[Decimal, str] = {}
        self.asks: dict[Decimal, str] = {}

    def clear(self) -> None:
        """Remove every level."""
        self.bids.clear()
        self.asks.clear()

    def apply(self, bids: list[ParsedLevel], asks: list[ParsedLevel]) -> None:
        """Set absolute sizes; a zero size deletes the level."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, size, text in levels:
                if size == _ZERO:
                    side.pop(price, None)
                else:
                    side[price] = text

    def best_bid(self) -> Decimal | None:
        """Highest bid price, or None when there is no bid."""
        return max(self.bids) if self.bids else None

    def best_ask(self) -> Decimal | None:
        """Lowest ask price, or None when there is no ask."""
        return min(self.asks) if self.asks else None

    def is_crossed(self) -> bool:
        """True when both sides exist and best bid >= best ask."""
        bid = self.best_bid()
        ask = self.best_ask()
        return bid is not None and ask is not None and bid >= ask


class DiffBookSync:
    """Stitch versioned diffs onto snapshots for one symbol.

    Parameters
    ----------
    policy:
        The venue's rules (see :class:`SyncPolicy`).
    symbol:
        The symbol (or stream) in messages and errors.
    tick:
        The instrument's price tick: prices off this grid are refused as malformed. None
        checks only that prices are positive numbers.
    venue:
        Put on the errors.

    Notes
    -----
    Procedure (MEXC A5 / Gate B5): buffer diffs until a snapshot arrives; if the snapshot is
    older than the first buffered diff (``last_id + 1 < first_id``) ask for another one and
    keep buffering; otherwise load it, drop diffs with ``last_id <= snapshot id``, require the
    first remaining one to straddle ``snapshot id + 1``, then apply in order with the policy's
    contiguity rule. Once live, a diff entirely at or before the book's id is a stale
    duplicate: dropped (``stale``), never a resync. A ``full`` diff replaces the book at any
    time.
    """

    def __init__(
        self,
        policy: SyncPolicy,
        *,
        symbol: str = "",
        tick: Decimal | None = None,
        venue: str = "",
    ) -> None:
        if tick is not None and not tick > 0:
            raise ValueError(f"tick must be positive, got {tick}")
        self.policy = policy
        self.symbol = symbol
        self.tick = tick
        self.venue = venue
        self.book = LevelBook()
        self.state = SyncState.WAITING_SNAPSHOT
        self.local_id: int | None = None
        self.stale = 0
        """Stale duplicate diffs dropped while live."""
        self._stale_run = 0
        self._buffer: deque[BookDiff] = deque(maxlen=policy.max_buffer)

    @property
    def buffered(self) -> int:
        """Number of diffs waiting for a snapshot."""
        return len(self._buffer)

    @property
    def synced(self) -> bool:
        """A snapshot (or full push) is loaded: the book can be used."""
        return self.state is not SyncState.WAITING_SNAPSHOT

    def reset(self) -> None:
        """Forget the book and the buffer (e.g. after a reconnect)."""
        self.book.clear()
        self.state = SyncState.WAITING_SNAPSHOT
        self.local_id = None
        self._stale_run = 0
        self._buffer.clear()

    def on_snapshot(self, snapshot: BookSnapshot) -> list[SyncEvent]:
        """Load a REST snapshot and replay the buffered diffs onto it.

        Returns
        -------
        list[SyncEvent]
            A replacing :class:`BookChanges` followed by one per applied buffered diff, or a
            :class:`ResyncNeeded` when the snapshot is unusable or a gap shows up.

        Raises
        ------
        MalformedMessage
            A level of the snapshot is unusable (the book is forgotten, the buffer kept).
        """
        bids = self._levels(snapshot.bids, "bid", keep_buffer=True)
        asks = self._levels(snapshot.asks, "ask", keep_buffer=True)
        after = snapshot.last_id + 1
        # diffs the snapshot already holds are of no use to it, nor to any later snapshot
        pending = [d for d in self._buffer if d.last_id >= after]
        # the first diff that continues the snapshot; buffered diffs before it start later:
        # out of order or bogus, dropped
        start = next((i for i, d in enumerate(pending) if d.first_id <= after), None)
        self._buffer.clear()
        if start is None and pending:
            # The buffer stays: a newer snapshot will be able to use it.
            self._buffer.extend(pending)
            return [
                ResyncNeeded(
                    reason=(
                        f"{self.symbol}: snapshot id {snapshot.last_id} is older than the "
                        f"buffered diffs ({pending[0].first_id}..)"
                    ),
                    action="snapshot",
                )
            ]
        pending = pending[start or 0 :]
        self.state = SyncState.WAITING_FIRST_DIFF
        events = self._load((bids, asks), snapshot.last_id, snapshot.ts_exchange, replace=True)
        if isinstance(events[0], ResyncNeeded):
            return events
        for i, diff in enumerate(pending):
            # buffered diffs were checked when they arrived
            out = self._apply(diff, self._checked(diff))
            events.extend(out)
            if out and isinstance(out[-1], ResyncNeeded):
                # Later diffs are still newer than anything a fresh snapshot would hold.
                if self.policy.buffer_before_snapshot:
                    self._buffer.extend(pending[i + 1 :])
                break
        return events

    def on_diff(self, diff: BookDiff) -> list[SyncEvent]:
        """Consume one diff (buffered, applied, dropped as stale, or a resync).

        Raises
        ------
        MalformedMessage
            The diff is unusable: its ids run backwards or a level is not a usable
            ``(price, size)``. The book and the buffer are forgotten first (the diff's
            changes are lost, so the book must be synced again).
        """
        if diff.first_id > diff.last_id or diff.first_id < 0:
            self.reset()
            raise self._error(f"diff ids {diff.first_id}..{diff.last_id} run backwards")
        levels = self._checked(diff)
        if diff.full:
            return self._replace(diff, levels)
        if self.state is SyncState.WAITING_SNAPSHOT:
            if self.policy.buffer_before_snapshot:
                self._buffer.append(diff)
            return []
        return self._apply(diff, levels)

    # ----------------------------------------------------------------------------------------

    def _error(self, what: str) -> MalformedMessage:
        return MalformedMessage(
            f"{self.symbol}: {what}", venue=self.venue or None, symbol=self.symbol or None
        )

    def _levels(
        self, levels: Sequence[Level], side: str, *, keep_buffer: bool
    ) -> list[ParsedLevel]:
        try:
            return parse_levels(levels, self.tick, side)
        except MalformedMessage as exc:
            buffer = list(self._buffer) if keep_buffer else []
            self.reset()
            self._buffer.extend(buffer)
            raise self._error(str(exc.args[0])) from None

    def _checked(self, diff: BookDiff) -> tuple[list[ParsedLevel], list[ParsedLevel]]:
        return (
            self._levels(diff.bids, "bid", keep_buffer=False),
            self._levels(diff.asks, "ask", keep_buffer=False),
        )

    def _load(
        self,
        parsed: tuple[list[ParsedLevel], list[ParsedLevel]],
        last_id: int,
        ts_exchange: int,
        *,
        replace: bool,
    ) -> list[SyncEvent]:
        """Apply levels (onto an emptied book when ``replace``) up to ``last_id``: the
        change to pass on (levels as normalised decimal text), or the resync a crossed book
        calls for."""
        if replace:
            self.book.clear()
        self.book.apply(*parsed)
        self.local_id = last_id
        self._stale_run = 0
        crossed = self._crossed_resync()
        if crossed is not None:
            return [crossed]
        bids, asks = parsed
        return [
            BookChanges(
                bids=[(str(p), str(q)) for p, q, _ in bids],
                asks=[(str(p), str(q)) for p, q, _ in asks],
                update_id=last_id,
                ts_exchange=ts_exchange,
                replace=replace,
            )
        ]

    def _replace(
        self, diff: BookDiff, parsed: tuple[list[ParsedLevel], list[ParsedLevel]]
    ) -> list[SyncEvent]:
        self.state = SyncState.LIVE
        self._buffer.clear()
        return self._load(parsed, diff.last_id, diff.ts_exchange, replace=True)

    def _apply(
        self, diff: BookDiff, parsed: tuple[list[ParsedLevel], list[ParsedLevel]]
    ) -> list[SyncEvent]:
        local = self.local_id
        assert local is not None  # only called once a snapshot is loaded
        if self.state is SyncState.WAITING_FIRST_DIFF:
            if diff.last_id <= local:
                return self._old(diff)
            if diff.first_id > local + 1:
                return self._resync(
                    f"first diff after snapshot {local} starts at {diff.first_id}", diff
                )
            self.state = SyncState.LIVE
        elif diff.first_id != local + 1:
            if diff.last_id <= local:
                # a stale duplicate: everything in it is already in the book
                self.stale += 1
                return self._old(diff)
            if not self.policy.allow_overlap or diff.first_id > local + 1:
                return self._resync(
                    f"gap: local id {local}, diff {diff.first_id}..{diff.last_id}", diff
                )
        return self._load(parsed, diff.last_id, diff.ts_exchange, replace=False)

    def _old(self, diff: BookDiff) -> list[SyncEvent]:
        """Drop a diff the book already holds; too many in a row mean the book's id is
        wrong (a bogus id moved it ahead of the venue): resync."""
        self._stale_run += 1
        limit = self.policy.max_stale_run
        if self._stale_run < (limit if self.state is SyncState.LIVE else 10 * limit):
            return []
        reason = (
            f"{self.symbol}: {self._stale_run} diffs in a row at or before local id "
            f"{self.local_id} (latest {diff.first_id}..{diff.last_id})"
        )
        self.reset()
        return [ResyncNeeded(reason=reason, action=self.policy.resync_action)]

    def _crossed_resync(self) -> ResyncNeeded | None:
        if not self.policy.check_crossed or not self.book.is_crossed():
            return None
        reason = (
            f"{self.symbol}: crossed book (bid {self.book.best_bid()} >= ask "
            f"{self.book.best_ask()}) at id {self.local_id}"
        )
        self.reset()
        return ResyncNeeded(reason=reason, action=self.policy.resync_action)

    def _resync(self, reason: str, diff: BookDiff) -> list[SyncEvent]:
        self.reset()
        if self.policy.buffer_before_snapshot:
            # The diff that revealed the gap is newer than the broken book: keep it for the
            # next snapshot.
            self._buffer.append(diff)
        return [ResyncNeeded(reason=f"{self.symbol}: {reason}", action=self.policy.resync_action)]
