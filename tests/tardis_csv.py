"""Tardis.dev CSV files written from real recordings, for the Tardis importer's tests and
bench (``bench/import_tardis.py``).

The events are those the hftbacktest importer gets from a recording (its reader and
Binance's sync procedure: the REST snapshot, the update-id chain, the stale levels
bookTicker shows): the rows of its catalog stream. They are written as Tardis documents
its datasets (https://docs.tardis.dev/downloadable-csv-files):

* ``incremental_book_L2``: ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,
  price,amount``, the snapshot as ``is_snapshot=true`` rows, deltas after it;
* ``trades``: ``exchange,symbol,timestamp,local_timestamp,id,side,price,amount``, side the
  aggressor's ``buy`` / ``sell``;
* ``book_snapshot_25``: ``exchange,symbol,timestamp,local_timestamp`` then
  ``asks[i].price,asks[i].amount,bids[i].price,bids[i].amount`` for i in 0..24 (empty when
  a side has fewer levels).

Times are microseconds. ``local_timestamp`` is the recorder's own receive time (the
catalog's ``ts_local`` less the clock offset the import added): the Binance recorder's
clock was ~1.27 s behind the exchange, so these files carry negative feed latency, as a
Tardis file of such a recorder would.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from arbsim.core.book import OrderBook
from arbsim.core.model import Side
from arbsim.data.catalog import FLAG_SNAPSHOT_BEGIN, FLAG_SNAPSHOT_END, Catalog
from arbsim.data.feed import BookCursor

BOOK_HEADER = [
    "exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price",
    "amount",
]  # fmt: skip
TRADE_HEADER = [
    "exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount",
]  # fmt: skip
SNAPSHOT_LEVELS = 25
SNAPSHOT_HEADER = ["exchange", "symbol", "timestamp", "local_timestamp"] + [
    f"{side}[{i}].{what}"
    for i in range(SNAPSHOT_LEVELS)
    for side in ("asks", "bids")
    for what in ("price", "amount")
]


def num(x: float) -> str:
    """A float as Tardis writes numbers: positional decimals, no exponent."""
    return np.format_float_positional(x, trim="-")


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "wt", newline="", compresslevel=1)
    return path.open("w", newline="")


def _rows(catalog: Catalog, venue: str, symbol: str, kind: str) -> Iterator[dict[str, Any]]:
    for _path, batch in catalog.batches(venue, symbol, "book" if kind == "book" else "trades"):
        yield {name: batch.column(name).to_numpy() for name in batch.schema.names}


def _write(
    path: Path,
    head: list[str],
    rows: Iterator[list[str | int]],
    header: bool,
) -> int:
    n = 0
    with _open(path) if header else _append(path) as f:
        w = csv.writer(f, lineterminator="\n")
        if header:
            w.writerow(head)
        for row in rows:
            w.writerow(row)
            n += 1
    return n


def _append(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "at", newline="", compresslevel=1)
    return path.open("a", newline="")


def write_book(
    path: Path,
    catalog: Catalog,
    venue: str,
    symbol: str,
    offset_ns: int,
    *,
    exchange: str = "binance",
    code: str = "BTCUSDT",
    shift_us: int = 0,
    header: bool = True,
    local_us: tuple[int, int] = (0, 2**62),
) -> int:
    """``incremental_book_L2`` rows of a catalog stream; the number of rows written.

    ``shift_us`` moves every time (a later copy of the same data); ``header=False``
    appends to ``path`` without a header (to make a longer file of shifted copies);
    ``local_us`` keeps the rows with ``lo <= local_timestamp < hi`` (one day of a
    longer recording: a day after the first then starts without a snapshot)."""

    def rows() -> Iterator[list[str | int]]:
        in_snapshot = False
        for c in _rows(catalog, venue, symbol, "book"):
            tsx = c["ts_exchange"] // 1000 + shift_us
            tsl = (c["ts_local"] - offset_ns) // 1000 + shift_us
            for i in range(len(tsl)):
                if not local_us[0] <= tsl[i] < local_us[1]:
                    continue
                fl = int(c["flags"][i])
                in_snapshot = in_snapshot or bool(fl & FLAG_SNAPSHOT_BEGIN)
                side = "bid" if c["side"][i] > 0 else "ask"
                yield [exchange, code, int(tsx[i]), int(tsl[i]), "true" if in_snapshot else "false",
                       side, num(float(c["price"][i])), num(float(c["size"][i]))]  # fmt: skip
                in_snapshot = in_snapshot and not fl & FLAG_SNAPSHOT_END

    return _write(path, BOOK_HEADER, rows(), header)


def write_trades(
    path: Path,
    catalog: Catalog,
    venue: str,
    symbol: str,
    offset_ns: int,
    *,
    exchange: str = "binance",
    code: str = "BTCUSDT",
    shift_us: int = 0,
    header: bool = True,
    local_us: tuple[int, int] = (0, 2**62),
) -> int:
    """``trades`` rows of a catalog stream (``local_us`` as :func:`write_book`)."""

    def rows() -> Iterator[list[str | int]]:
        for c in _rows(catalog, venue, symbol, "trades"):
            tsx = c["ts_exchange"] // 1000 + shift_us
            tsl = (c["ts_local"] - offset_ns) // 1000 + shift_us
            for i in range(len(tsl)):
                if not local_us[0] <= tsl[i] < local_us[1]:
                    continue
                side = "buy" if c["side"][i] > 0 else "sell"
                yield [exchange, code, int(tsx[i]), int(tsl[i]), int(c["trade_id"][i]), side,
                       num(float(c["price"][i])), num(float(c["size"][i]))]  # fmt: skip

    return _write(path, TRADE_HEADER, rows(), header)


def write_snapshots(
    path: Path,
    catalog: Catalog,
    venue: str,
    symbol: str,
    offset_ns: int,
    *,
    every: int = 50,
    exchange: str = "binance",
    code: str = "BTCUSDT",
) -> int:
    """``book_snapshot_25`` rows: the replayed book's top 25 levels after every
    ``every``-th message (and after the last one of each local time); rows written."""
    book = OrderBook(venue, symbol, catalog.instrument(venue, symbol).tick)
    cur = BookCursor(catalog, venue, symbol, book.scale)
    n = 0
    k = 0
    with _open(path) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(SNAPSHOT_HEADER)
        pending: tuple[int, int] | None = None
        while True:
            more = cur.next()
            if pending is not None and (not more or cur.ts_local != pending[1]):
                w.writerow(_snapshot_row(book, pending, offset_ns, exchange, code))
                n += 1
                pending = None
            if not more:
                break
            cur.apply(book, FLAG_SNAPSHOT_BEGIN)
            k += 1
            if k % every == 0:
                pending = (cur.ts_exchange, cur.ts_local)
    return n


def _snapshot_row(
    book: OrderBook, at: tuple[int, int], offset_ns: int, exchange: str, code: str
) -> list[str | int]:
    row: list[str | int] = [exchange, code, at[0] // 1000, (at[1] - offset_ns) // 1000]
    asks = book.levels(Side.SELL, SNAPSHOT_LEVELS)
    bids = book.levels(Side.BUY, SNAPSHOT_LEVELS)
    for i in range(SNAPSHOT_LEVELS):
        for levels in (asks, bids):
            if i < len(levels):
                tick, size = levels[i]
                row += [num(book.scale.price(tick)), num(size)]
            else:
                row += ["", ""]
    return row
