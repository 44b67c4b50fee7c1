"""Gate.io local order books (PROTOCOLS B5), on :class:`exchanges.live.booksync.DiffBookSync`.

``spot.order_book_update`` (:data:`ORDER_BOOK_UPDATE_POLICY`): buffer; REST snapshot with
``with_id=true`` gives ``baseID``; drop messages with ``u < baseID + 1``; the first kept one
must have ``U <= baseID + 1 <= u``, else snapshot again; afterwards only ``U > local + 1`` is
a gap (an overlapping message is applied: sizes are absolute). A ``full=true`` message
replaces the book and sets ``local = u``.

``spot.obu`` (:data:`OBU_POLICY`): no REST snapshot; the first push is ``full`` (replace the
book, ``local = u``) and full pushes may repeat; an incremental applies only if
``U == local + 1``; otherwise the answer is to unsubscribe and subscribe again.
"""

from __future__ import annotations

from decimal import Decimal

from exchanges.gateio.ws import Obu, OrderBookSnapshot, OrderBookUpdate
from exchanges.live.booksync import BookDiff, BookSnapshot, DiffBookSync, SyncPolicy

__all__ = [
    "OBU_POLICY",
    "ORDER_BOOK_UPDATE_POLICY",
    "diff_from_push",
    "new_obu_sync",
    "new_order_book_update_sync",
    "snapshot_from_rest",
]

ORDER_BOOK_UPDATE_POLICY = SyncPolicy(
    allow_overlap=True, buffer_before_snapshot=True, resync_action="snapshot"
)
OBU_POLICY = SyncPolicy(
    allow_overlap=False, buffer_before_snapshot=False, resync_action="resubscribe"
)
_MS = 1_000_000


def snapshot_from_rest(snapshot: OrderBookSnapshot) -> BookSnapshot:
    """REST ``order_book?with_id=true`` -> :class:`BookSnapshot` (``update`` ms -> ns)."""
    return BookSnapshot(
        last_id=snapshot.id,
        bids=snapshot.bids,
        asks=snapshot.asks,
        ts_exchange=snapshot.update * _MS,
    )


def diff_from_push(update: OrderBookUpdate | Obu) -> BookDiff:
    """A ``spot.order_book_update`` or ``spot.obu`` result -> :class:`BookDiff` (``t`` ms ->
    ns); a full ``spot.obu`` push has no ``U``: it covers its own ``u``."""
    return BookDiff(
        first_id=update.last_id if update.first_id is None else update.first_id,
        last_id=update.last_id,
        bids=update.bids,
        asks=update.asks,
        ts_exchange=update.t * _MS,
        full=update.full,
    )


def new_order_book_update_sync(pair: str, tick: Decimal | None = None) -> DiffBookSync:
    """Sync machine for ``spot.order_book_update`` + REST snapshots of one pair (``tick``
    refuses prices off the pair's grid)."""
    return DiffBookSync(ORDER_BOOK_UPDATE_POLICY, symbol=pair, tick=tick, venue="gateio")


def new_obu_sync(stream: str, tick: Decimal | None = None) -> DiffBookSync:
    """Sync machine for one ``spot.obu`` stream (``ob.BTC_USDT.400``)."""
    return DiffBookSync(OBU_POLICY, symbol=stream, tick=tick, venue="gateio")
