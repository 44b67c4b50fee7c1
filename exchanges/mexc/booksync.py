"""MEXC local order book from ``GET /api/v3/depth`` + ``aggre.depth`` frames (PROTOCOLS A5).

The procedure is :class:`exchanges.live.booksync.DiffBookSync` with :data:`AGGRE_DEPTH_POLICY`:

1. buffer aggre-depth frames; 2. take a REST snapshot (``lastUpdateId``); 3. if it is older
than the first buffered frame (``lastUpdateId + 1 < fromVersion``) ask for another one
(the doc's literal ``lastUpdateId < fromVersion`` would also refuse the contiguous case
``lastUpdateId + 1 == fromVersion``, which is a perfect fit); 4. drop frames with
``toVersion <= lastUpdateId``; 5. if the first remaining one has
``fromVersion > lastUpdateId + 1``, resync; 6. apply in order, version = ``toVersion``;
7. any later frame with ``fromVersion != version + 1`` is a gap: resync.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from exchanges.live.booksync import BookDiff, BookSnapshot, DiffBookSync, Level, SyncPolicy
from exchanges.live.errors import decode_body
from exchanges.mexc.messages import AggreDepth

__all__ = [
    "AGGRE_DEPTH_POLICY",
    "MexcDepth",
    "decode_depth",
    "diff_from_aggre_depth",
    "new_book_sync",
    "snapshot_from_depth",
]

AGGRE_DEPTH_POLICY = SyncPolicy(
    allow_overlap=False, buffer_before_snapshot=True, resync_action="snapshot"
)
_MS = 1_000_000


class MexcDepth(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """``GET /api/v3/depth`` answer (``timestamp`` in ms, absent in older answers)."""

    last_update_id: int
    bids: list[Level]
    asks: list[Level]
    timestamp: int = 0


# lenient: a recorded answer (ccxt fixtures) carries lastUpdateId as a JSON string
_depth_decoder = msgspec.json.Decoder(MexcDepth, strict=False)


def decode_depth(body: bytes | str) -> MexcDepth:
    """Decode a raw ``/api/v3/depth`` answer (:class:`~arbsim.core.errors.MalformedMessage`
    when it is not one)."""
    return decode_body(_depth_decoder, body, venue="mexc", channel="/api/v3/depth")


def snapshot_from_depth(depth: MexcDepth) -> BookSnapshot:
    """REST depth -> :class:`BookSnapshot` (``ts_exchange`` in ns, 0 when unknown)."""
    return BookSnapshot(
        last_id=depth.last_update_id,
        bids=depth.bids,
        asks=depth.asks,
        ts_exchange=depth.timestamp * _MS,
    )


def diff_from_aggre_depth(frame: AggreDepth) -> BookDiff:
    """Aggre-depth frame -> :class:`BookDiff` (``ts_exchange`` = ``sendTime`` in ns)."""
    return BookDiff(
        first_id=frame.from_version,
        last_id=frame.to_version,
        bids=frame.bids,
        asks=frame.asks,
        ts_exchange=(frame.send_time or 0) * _MS,
    )


def new_book_sync(symbol: str, tick: Decimal | None = None) -> DiffBookSync:
    """A sync machine for one MEXC symbol (feed it the two conversions above); ``tick``
    refuses prices off the instrument's grid."""
    return DiffBookSync(AGGRE_DEPTH_POLICY, symbol=symbol, tick=tick, venue="mexc")
