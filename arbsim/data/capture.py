"""Market data written to a catalog as a feed delivers it (``arbsim record``, and the
``catalog/`` of every paper / live run).

A :class:`MarketCapture` takes each book update just before the feed applies it (with
both timestamps and the venue's update id) and each public trade, buffers them per
``(venue, symbol)`` and writes them as catalog rows: a snapshot's rows are flagged
``FLAG_SNAPSHOT_BEGIN`` / ``FLAG_SNAPSHOT_END``; a snapshot after the first one of a
stream (a resync: a gap in the update-id chain, a reconnect, a resubscription) is also
flagged ``FLAG_GAP``. A row stamped by the venue after its receipt (the clocks a little
apart) gets its receipt time as exchange time, and is counted. Buffers are flushed every
``flush_rows`` rows or ``flush_s`` seconds of data (memory stays bounded); parts are
rotated every ``rotate_s`` seconds of data or ``rotate_rows`` rows, so a killed recorder
loses at most the part it was writing; writes run on a worker thread, off the feeds' loop;
:meth:`MarketCapture.close` flushes and closes every part (the catalog is readable).
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arbsim.core.model import Instrument, Side, Trade
from arbsim.core.ports import BookUpdate
from arbsim.data.catalog import (
    FLAG_GAP,
    FLAG_SNAPSHOT_BEGIN,
    FLAG_SNAPSHOT_END,
    Catalog,
    CatalogInfo,
    PartitionWriter,
)

_SECOND = 1_000_000_000


@dataclass
class _Stream:
    """Buffered rows of one ``(venue, symbol, kind)`` and the writer they go to."""

    writer: PartitionWriter
    columns: dict[str, list[float | int]] = field(default_factory=dict)
    rows: int = 0
    first_ts: int | None = None
    part_start_ts: int | None = None
    part_rows: int = 0

    last_ts: int = -(2**63)
    #: rows whose exchange time was after their receipt time (clocks a little apart)
    clamped: int = 0
    max_ahead_ns: int = 0

    def add(self, row: dict[str, float | int]) -> None:
        # receipt times come from the wall clock, which may step back a little (NTP):
        # rows stay in ts_local order, as the catalog requires
        ts = max(int(row["ts_local"]), self.last_ts)
        row["ts_local"] = ts
        self.last_ts = ts
        ahead = int(row["ts_exchange"]) - ts
        if ahead > 0:
            # the venue's clock ahead of ours: a message cannot arrive before it was sent,
            # so its exchange time is taken as its receipt time (counted, not hidden)
            row["ts_exchange"] = ts
            self.clamped += 1
            self.max_ahead_ns = max(self.max_ahead_ns, ahead)
        for k, v in row.items():
            self.columns.setdefault(k, []).append(v)
        self.rows += 1
        if self.first_ts is None:
            self.first_ts = ts
        if self.part_start_ts is None:
            self.part_start_ts = ts


@dataclass
class CaptureStats:
    """What a capture wrote, per ``venue symbol``."""

    book_messages: dict[str, int] = field(default_factory=dict)
    trades: dict[str, int] = field(default_factory=dict)
    resyncs: dict[str, int] = field(default_factory=dict)
    #: rows whose exchange time was after the receipt time, and by how much at most
    clamped_rows: int = 0
    max_clock_ahead_ms: float = 0.0


class MarketCapture:
    """Writes book updates and trades of live feeds into a catalog (see the module doc).

    Parameters
    ----------
    root:
        The catalog directory (created when new; an existing catalog grows by new parts).
    source:
        What the data is, for ``catalog.json`` (e.g. ``"recorded by arbsim record"``).
    flush_rows, flush_s:
        Buffered rows per stream, and seconds of data, before a flush to the open part.
    rotate_rows, rotate_s:
        Rows per part file, and seconds of data, before the next part is started.
    """

    def __init__(
        self,
        root: Path,
        *,
        source: str,
        flush_rows: int = 20_000,
        flush_s: float = 1.0,
        rotate_rows: int = 2_000_000,
        rotate_s: float = 600.0,
    ) -> None:
        self.catalog = Catalog(root)
        if not (Path(root) / "catalog.json").exists():
            self.catalog.create(
                CatalogInfo(
                    synthetic=False,
                    description=source,
                    created_by=__name__,
                    notes=[f"started {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}"],
                )
            )
        self.flush_rows = flush_rows
        self.flush_ns = int(flush_s * _SECOND)
        self.rotate_rows = rotate_rows
        self.rotate_ns = int(rotate_s * _SECOND)
        self._streams: dict[tuple[str, str, str], _Stream] = {}
        # Parquet writes happen on one worker thread, in order: a feed's event loop is
        # never held up by compression or the disk
        self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="capture")
        self._pending: list[Future[None]] = []
        self._snapshots_seen: set[tuple[str, str]] = set()
        self._instruments: set[str] = set()
        self.stats = CaptureStats()
        self.closed = False

    # ---------------------------------------------------------------- input
    def instrument(self, inst: Instrument) -> None:
        """The instrument of a stream about to be captured (written once)."""
        if inst.key not in self._instruments:
            self._instruments.add(inst.key)
            self.catalog.write_instrument(inst)

    def update(self, venue: str, update: BookUpdate) -> None:
        """One book update, before the feed applies it."""
        if self.closed:
            return
        key = (venue, update.symbol)
        stream = self._stream(venue, update.symbol, "book")
        flags = 0
        label = f"{venue} {update.symbol}"
        if update.snapshot:
            if key in self._snapshots_seen:
                flags |= FLAG_GAP
                self.stats.resyncs[label] = self.stats.resyncs.get(label, 0) + 1
            self._snapshots_seen.add(key)
        levels = [(1, p, s) for p, s in update.bids] + [(-1, p, s) for p, s in update.asks]
        if not levels and not update.snapshot:
            return
        if not levels:  # an empty snapshot still marks the reset
            levels = [(1, 0.0, 0.0)]
        for i, (side, price, size) in enumerate(levels):
            row_flags = flags
            if update.snapshot and i == 0:
                row_flags |= FLAG_SNAPSHOT_BEGIN
            if update.snapshot and i == len(levels) - 1:
                row_flags |= FLAG_SNAPSHOT_END
            stream.add(
                {
                    "ts_exchange": update.ts_exchange,
                    "ts_local": update.ts_local,
                    "seq": update.seq,
                    "side": side,
                    "price": price,
                    "size": size,
                    "flags": row_flags,
                }
            )
        self.stats.book_messages[label] = self.stats.book_messages.get(label, 0) + 1
        self._maybe_flush(stream)

    def trade(self, venue: str, trade: Trade) -> None:
        if self.closed:
            return
        stream = self._stream(venue, trade.symbol, "trades")
        stream.add(
            {
                "ts_exchange": trade.ts_exchange,
                "ts_local": trade.ts_local,
                "trade_id": trade.trade_id,
                "side": 1 if trade.side is Side.BUY else -1,
                "price": trade.price,
                "size": trade.size,
            }
        )
        label = f"{venue} {trade.symbol}"
        self.stats.trades[label] = self.stats.trades.get(label, 0) + 1
        self._maybe_flush(stream)

    # ---------------------------------------------------------------- output
    def _stream(self, venue: str, symbol: str, kind: str) -> _Stream:
        key = (venue, symbol, kind)
        stream = self._streams.get(key)
        if stream is None:
            writer = self.catalog.writer(venue, symbol, "book" if kind == "book" else "trades")
            stream = self._streams[key] = _Stream(writer)
        return stream

    def _maybe_flush(self, stream: _Stream) -> None:
        assert stream.first_ts is not None
        last = int(stream.columns["ts_local"][-1])
        if stream.rows >= self.flush_rows or last - stream.first_ts >= self.flush_ns:
            self._flush(stream)

    def _flush(self, stream: _Stream) -> None:
        if not stream.rows:
            return
        cols = {k: np.asarray(v) for k, v in stream.columns.items()}
        stream.part_rows += stream.rows
        last = int(cols["ts_local"][-1])
        stream.columns.clear()
        stream.rows = 0
        stream.first_ts = None
        assert stream.part_start_ts is not None
        rotate = (
            stream.part_rows >= self.rotate_rows or last - stream.part_start_ts >= self.rotate_ns
        )
        if rotate:
            stream.part_rows = 0
            stream.part_start_ts = None
        self._pending.append(self._writes.submit(self._write, stream.writer, cols, rotate))
        self._pending = [f for f in self._pending if not f.done() or f.exception()]
        for done in [f for f in self._pending if f.done()]:
            done.result()  # a failed write is not lost silently

    @staticmethod
    def _write(writer: PartitionWriter, cols: dict[str, np.ndarray], rotate: bool) -> None:
        writer.write(cols)
        if rotate:
            writer.close()  # the next write starts a new part

    def flush(self) -> None:
        for stream in self._streams.values():
            self._flush(stream)
        self.stats.clamped_rows = sum(s.clamped for s in self._streams.values())
        self.stats.max_clock_ahead_ms = max(
            (s.max_ahead_ns / 1e6 for s in self._streams.values()), default=0.0
        )

    def rows(self, kind: str) -> int:
        """Rows of ``kind`` (book / trades) written so far, over every stream."""
        return sum(s.writer.rows for (_, _, k), s in self._streams.items() if k == kind)

    def close(self) -> None:
        """Flush every buffer and close every part: the catalog is readable."""
        if self.closed:
            return
        self.flush()
        for stream in self._streams.values():
            self._pending.append(self._writes.submit(stream.writer.close))
        self._writes.shutdown(wait=True)
        self.closed = True
        for f in self._pending:
            f.result()
