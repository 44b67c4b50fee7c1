"""Import Tardis.dev CSV files (``incremental_book_L2``, ``trades``, ``book_snapshot_25``).

Input, as Tardis documents its downloadable CSV datasets (one header line, then one row
per line, times in microseconds since the epoch, UTC; plain or gzip):

* ``incremental_book_L2``: ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,
  price,amount``; ``side`` is ``bid`` or ``ask``, ``amount`` the new absolute size (``0``
  deletes the level). Rows sharing a ``local_timestamp`` form one venue message. A run of
  ``is_snapshot=true`` rows is a whole book: the first one starts the stream, one after
  deltas *replaces* the book (the collector re-synchronised: written with ``FLAG_GAP`` and
  counted as a resync).
* ``trades``: ``exchange,symbol,timestamp,local_timestamp,id,side,price,amount``;
  ``side`` is the aggressor's ``buy`` / ``sell`` (``unknown`` rows are skipped, counted).
* ``book_snapshot_25`` (optional): ``exchange,symbol,timestamp,local_timestamp`` then
  ``asks[i].price,asks[i].amount,bids[i].price,bids[i].amount``; only the best level is
  read. Each snapshot checks the book rebuilt from the deltas at its ``local_timestamp``:
  a level better than the snapshot's best bid / ask is stale and is removed (rows with
  ``size`` 0 and ``FLAG_REPAIR``), as the Binance importer does with bookTicker.

What the importer does, and why (DESIGN §6):

* **Two passes, bounded memory.** The files are read as a stream of record batches
  (``pyarrow.csv.open_csv``: a few MB at a time, whatever the file size). The first pass
  validates every row and measures what the second needs (price / size decimals for the
  tick and lot, the clock offset, the time range); only then is anything written. A
  malformed row (wrong column count, a value that is not a number, an unknown side, a
  ``local_timestamp`` going backwards, a second symbol) raises
  :class:`~arbsim.core.errors.DataError` naming the file, line and field, with the catalog
  untouched; a failure during the second pass removes what it wrote
  (:func:`~arbsim.data.importers.common.rollback_on_failure`).
* **Messages.** The catalog's ``seq`` of a Tardis stream is a message counter (Tardis
  rows carry no venue update id); an appended import continues it.
* **Time.** ``ts_exchange`` = ``timestamp``, ``ts_local`` = ``local_timestamp`` + the
  clock offset (both in ns). Tardis's collectors keep their clocks synchronised, so the
  offset is 0 unless some ``timestamp`` is after its ``local_timestamp`` (negative feed
  latency: the recording clock was behind the exchange); then, as the Binance importer
  does, it is estimated so that the smallest feed latency is ``min_feed_latency_ns``, and
  the report says so. A given offset (or the one an earlier import of the stream used)
  is applied as is; an exchange time still after its local time is clamped to it, counted.
* **Crossed books.** After every message the rebuilt book is checked; crossed states are
  counted (and repaired only where a snapshot file shows the stale levels).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal, cast

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from arbsim.core.book import OrderBook, TickScale
from arbsim.core.errors import DataError
from arbsim.core.model import Instrument, parse_symbol, to_decimal
from arbsim.data.catalog import (
    FLAG_GAP,
    FLAG_REPAIR,
    FLAG_SNAPSHOT_BEGIN,
    FLAG_SNAPSHOT_END,
    Catalog,
    CatalogInfo,
)
from arbsim.data.feed import BookCursor
from arbsim.data.importers.common import (
    Columns,
    check_new_range,
    check_same_instrument,
    existing_stream,
    file_size,
    grid_dp,
    iso,
    rollback_on_failure,
)

__all__ = ["BOOK_COLUMNS", "TRADE_COLUMNS", "TardisReport", "import_tardis"]

FileKind = Literal["book", "trades", "snapshots"]

BOOK_COLUMNS = (
    "exchange",
    "symbol",
    "timestamp",
    "local_timestamp",
    "is_snapshot",
    "side",
    "price",
    "amount",
)
TRADE_COLUMNS = (
    "exchange",
    "symbol",
    "timestamp",
    "local_timestamp",
    "id",
    "side",
    "price",
    "amount",
)
_SNAPSHOT_HEAD = ("exchange", "symbol", "timestamp", "local_timestamp")
_SNAPSHOT_BEST = ("asks[0].price", "bids[0].price")

_TYPES: dict[str, pa.DataType] = {
    "exchange": pa.string(),
    "symbol": pa.string(),
    "timestamp": pa.int64(),
    "local_timestamp": pa.int64(),
    "is_snapshot": pa.bool_(),
    "side": pa.string(),
    "price": pa.float64(),
    "amount": pa.float64(),
    "id": pa.string(),
    "asks[0].price": pa.float64(),
    "bids[0].price": pa.float64(),
}
_US = 1_000
_BLOCK = 4 << 20  # bytes of CSV per record batch: memory stays flat in the file size
_CREATED_BY = __name__
DEFAULT_FEE = Decimal("0.001")
_BOOK_SIDES = {"bid": 1, "ask": -1}
_TRADE_SIDES = {"buy": 1, "sell": -1}


# --------------------------------------------------------------------------- reading
def _is_gzip(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError as e:
        raise DataError(f"{path}: cannot open ({e})") from e


def _text_lines(path: Path) -> io.TextIOBase:
    if _is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def _header(path: Path) -> list[str]:
    try:
        with _text_lines(path) as f:
            return next(csv.reader(f), [])
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise DataError(f"{path}:1: unreadable ({e})") from e


def _expect_header(path: Path, kind: FileKind) -> list[str]:
    """The columns to read, after checking the header line against Tardis's format."""
    head = _header(path)
    if kind == "snapshots":
        missing = [c for c in (*_SNAPSHOT_HEAD, *_SNAPSHOT_BEST) if c not in head]
        if head[:4] != list(_SNAPSHOT_HEAD) or missing:
            raise DataError(
                f"{path}:1: not a Tardis book_snapshot header (expected "
                f"{','.join(_SNAPSHOT_HEAD)},asks[0].price,asks[0].amount,bids[0].price,...; "
                f"got {','.join(head)[:120]!r})"
            )
        return head
    want = list(BOOK_COLUMNS if kind == "book" else TRADE_COLUMNS)
    if head != want:
        name = "incremental_book_L2" if kind == "book" else "trades"
        raise DataError(
            f"{path}:1: not a Tardis {name} header (expected {','.join(want)}; "
            f"got {','.join(head)[:120]!r})"
        )
    return want


@dataclass(slots=True)
class _Batch:
    path: Path
    first_line: int  # file line of the batch's first row
    cols: dict[str, npt.NDArray[Any]]

    def line(self, i: int) -> int:
        return self.first_line + i

    def error(self, i: int, what: str) -> DataError:
        """``what`` is wrong with row ``i``: the error names the file and line."""
        return DataError(f"{self.path}:{self.line(i)}: {what}")


def _bad(mask: npt.NDArray[np.bool_]) -> int:
    """The first True row of ``mask``, -1 when none."""
    return int(np.flatnonzero(mask)[0]) if mask.any() else -1


def _batches(
    path: Path, kind: FileKind, on_bytes: Callable[[int], None] | None = None
) -> Iterator[_Batch]:
    """Record batches of one Tardis CSV file as NumPy columns, with their file lines.

    A row pyarrow cannot parse is located by reading the file again with the csv module,
    so that the error names its line and field (see :func:`_locate`)."""
    head = _expect_header(path, kind)
    use = (
        [*_SNAPSHOT_HEAD, *_SNAPSHOT_BEST]
        if kind == "snapshots"
        else list(BOOK_COLUMNS if kind == "book" else TRADE_COLUMNS)
    )
    read = pacsv.ReadOptions(column_names=head, use_threads=False, block_size=2 * _BLOCK)
    # empty lines are rows too (malformed ones): line numbers stay exact
    parse = pacsv.ParseOptions(ignore_empty_lines=False, newlines_in_values=False)
    convert = pacsv.ConvertOptions(
        column_types={c: _TYPES[c] for c in use},
        include_columns=use,
        null_values=[""] if kind == "snapshots" else [],
        strings_can_be_null=False,
        true_values=["true", "True", "TRUE"],
        false_values=["false", "False", "FALSE"],
    )
    line = 2
    # Whole lines, _BLOCK bytes at a time, each parsed on its own: memory is one block
    # (pyarrow's streaming reader reads ahead, and holds more the longer the file).
    with _binary(path) as f:
        raw: Any = getattr(f, "fileobj", None) or f
        try:
            f.readline()  # the header, checked above
            while chunk := f.read(_BLOCK):
                if not chunk.endswith(b"\n"):
                    chunk += f.readline()
                try:
                    table = pacsv.read_csv(
                        # parsed in place (C++); the stubs list only Python file types
                        pa.BufferReader(chunk),  # type: ignore[arg-type]
                        read_options=read,
                        parse_options=parse,
                        convert_options=convert,
                    )
                except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
                    raise _locate(path, head, use, kind, e) from None
                if on_bytes is not None:
                    on_bytes(raw.tell())
                for rb in table.to_batches():
                    if rb.num_rows:
                        cols = {
                            name: rb.column(name).to_numpy(zero_copy_only=False)
                            for name in rb.schema.names
                        }
                        yield _Batch(path, line, cols)
                    line += rb.num_rows
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}:{line}: unreadable ({e})") from e


@contextmanager
def _binary(path: Path) -> Iterator[IO[bytes]]:
    gz = _is_gzip(path)  # raises DataError naming the file when it cannot be opened
    with gzip.open(path, "rb") if gz else path.open("rb") as f:
        yield cast(IO[bytes], f)


def _locate(path: Path, head: list[str], use: list[str], kind: FileKind, e: Exception) -> DataError:
    """The first row pyarrow refused, found with the csv module: file, line and field."""
    where = {c: head.index(c) for c in use}
    try:
        with _text_lines(path) as f:
            rows = csv.reader(f)
            next(rows, None)
            for n, row in enumerate(rows, 2):
                if len(row) != len(head):
                    return DataError(
                        f"{path}:{n}: {len(row)} column(s), expected {len(head)} "
                        f"({','.join(row)[:80]!r})"
                    )
                for c, i in where.items():
                    if not _ok(row[i], _TYPES[c], kind == "snapshots"):
                        return DataError(f"{path}:{n}: {c} {row[i][:40]!r} is not a {_TYPES[c]}")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        return DataError(f"{path}: unreadable ({err})")
    return DataError(f"{path}: malformed CSV ({e})")


def _ok(text: str, t: pa.DataType, nullable: bool) -> bool:
    if text == "":
        return nullable or t == pa.string()
    try:
        if t == pa.int64():
            int(text)
        elif t == pa.float64():
            float(text)
        elif t == pa.bool_():
            return text.lower() in ("true", "false")
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- pass 1
@dataclass(slots=True)
class _Scan:
    """What pass 1 learns of one file."""

    rows: int = 0
    price_dp: int = 0
    size_dp: int = 0
    min_lag: int | None = None  # min(local_timestamp - timestamp), us
    first: int | None = None  # local_timestamp, us
    last: int | None = None
    exchange: str | None = None
    symbol: str | None = None
    numeric_ids: bool = True


def _scan(
    path: Path,
    kind: FileKind,
    scale: TickScale | None,
    on_bytes: Callable[[int], None] | None,
) -> _Scan:
    """Validate every row of ``path``; measure decimals, feed latency and the range."""
    sc = _Scan()
    last = -(2**63)
    for b in _batches(path, kind, on_bytes):
        c = b.cols
        n = len(c["local_timestamp"])
        for name in ("exchange", "symbol"):
            vals = c[name]
            first = str(vals[0]) if getattr(sc, name) is None else getattr(sc, name)
            if (i := _bad(vals != first)) >= 0:
                raise b.error(i, f"{name} {str(vals[i])!r}, earlier rows {first!r}")
            setattr(sc, name, first)
        tsx = c["timestamp"].astype(np.int64)
        tsl = c["local_timestamp"].astype(np.int64)
        if (i := _bad((tsx <= 0) | (tsl <= 0))) >= 0:
            raise b.error(i, f"timestamp {tsx[i]} / local_timestamp {tsl[i]} not positive")
        prev = np.concatenate([[last], tsl[:-1]])
        if (i := _bad(tsl < prev)) >= 0:
            raise b.error(i, f"local_timestamp {tsl[i]} goes backwards (previous row {prev[i]})")
        last = int(tsl[-1])
        if kind == "snapshots":
            for k in _SNAPSHOT_BEST:
                v = c[k].astype(np.float64)
                if (i := _bad(~np.isnan(v) & ~((v > 0) & np.isfinite(v)))) >= 0:
                    raise b.error(i, f"{k} {float(v[i])!r} is not a positive price")
        else:
            price = c["price"].astype(np.float64)
            size = c["amount"].astype(np.float64)
            side = c["side"]
            known = _BOOK_SIDES if kind == "book" else {**_TRADE_SIDES, "unknown": 0}
            if (i := _bad(~np.isin(side, list(known)))) >= 0:
                raise b.error(i, f"side {str(side[i])!r} is not one of {', '.join(known)}")
            if (i := _bad(~(np.isfinite(price) & (price > 0)))) >= 0:
                raise b.error(i, f"price {float(price[i])!r} is not a positive number")
            low = size <= 0 if kind == "trades" else size < 0
            if (i := _bad(~np.isfinite(size) | low)) >= 0:
                raise b.error(i, f"amount {float(size[i])!r} is not a usable size")
            if scale is not None:
                ticks = scale.to_ticks(price)
                if (i := _bad(scale.off_grid(price, ticks))) >= 0:
                    raise b.error(i, f"price {float(price[i])!r} is off the tick grid {scale.tick}")
            else:
                sc.price_dp = grid_dp(price, sc.price_dp)
            live = size[size > 0]
            sc.size_dp = grid_dp(live, sc.size_dp) if len(live) else sc.size_dp
            if kind == "trades" and sc.numeric_ids:
                sc.numeric_ids = _integer_ids(c["id"]) is not None
            lag = int((tsl - tsx).min())
            sc.min_lag = lag if sc.min_lag is None else min(sc.min_lag, lag)
        sc.first = int(tsl[0]) if sc.first is None else sc.first
        sc.last = last
        sc.rows += n
    return sc


class _TardisInstrument(msgspec.Struct, rename="camel", kw_only=True):
    """The fields used of Tardis's instrument metadata (``/v1/instruments``)."""

    id: str = ""
    type: str = "spot"
    price_increment: float
    amount_increment: float
    min_trade_amount: float | None = None
    maker_fee: float | None = None
    taker_fee: float | None = None


@dataclass(frozen=True, slots=True)
class _Meta:
    tick: Decimal
    lot: Decimal
    min_qty: Decimal | None
    maker_fee: Decimal | None
    taker_fee: Decimal | None
    market: str


def _instrument_meta(path: Path) -> _Meta:
    """Tick, lot, minimum, fees and market of a Tardis instrument metadata file."""
    try:
        raw = msgspec.json.decode(path.read_bytes(), type=_TardisInstrument)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    except msgspec.DecodeError as e:
        raise DataError(f"{path}: not Tardis instrument metadata ({e})") from None

    def dec(x: float | None) -> Decimal | None:
        return None if x is None else to_decimal(x)

    tick, lot = to_decimal(raw.price_increment), to_decimal(raw.amount_increment)
    if tick <= 0 or lot <= 0:
        raise DataError(f"{path}: priceIncrement {tick} / amountIncrement {lot} not positive")
    if raw.type not in ("spot", "perpetual"):
        raise DataError(f"{path}: instrument type {raw.type!r} (spot or perpetual here)")
    return _Meta(
        tick, lot, dec(raw.min_trade_amount), dec(raw.maker_fee), dec(raw.taker_fee), raw.type
    )


def _integer_ids(ids: npt.NDArray[Any]) -> npt.NDArray[np.int64] | None:
    try:
        return np.asarray(pa.array(ids, pa.string()).cast(pa.int64()), dtype=np.int64)
    except (pa.ArrowInvalid, ValueError):
        return None


# --------------------------------------------------------------------------- report
class TardisReport(msgspec.Struct, kw_only=True):
    """What :func:`import_tardis` did. Times are ns unless named ``_ms`` / ``_s``."""

    venue: str
    symbol: str
    exchange: str
    file_symbol: str
    book_file: str
    trades_file: str | None
    snapshots_file: str | None
    catalog: str
    catalog_created: bool
    appended: bool
    tick: Decimal
    lot: Decimal
    tick_inferred: bool
    lot_inferred: bool
    tick_source: str = "given"
    lot_source: str = "given"
    maker_fee: Decimal
    taker_fee: Decimal
    book_rows_read: int = 0
    trade_rows_read: int = 0
    snapshot_rows_read: int = 0
    messages: int = 0
    snapshots: int = 0
    resyncs: int = 0
    deltas_without_book: int = 0
    crossed_states: int = 0
    snapshots_checked: int = 0
    snapshots_disagreeing: int = 0
    repairs: int = 0
    trades: int = 0
    trades_unknown_side: int = 0
    trade_ids_numbered: bool = False
    book_rows: int = 0
    trade_rows: int = 0
    clock_offset_ns: int = 0
    clock_offset_how: str = "none needed"
    negative_latency_rows: int = 0
    min_raw_latency_ms: float | None = None
    min_feed_latency_ns: int = 0
    clamped_ts_exchange: int = 0
    first_ts_local: int | None = None
    last_ts_local: int | None = None
    feed_latency_p50_ms: float | None = None
    feed_latency_p99_ms: float | None = None
    elapsed_s: float = 0.0

    @property
    def rows_per_s(self) -> float:
        rows = self.book_rows_read + self.trade_rows_read + self.snapshot_rows_read
        return rows / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def lines(self) -> list[str]:
        """Human-readable lines saying what the import did (printed by the CLI)."""
        files = [self.book_file, self.trades_file, self.snapshots_file]
        names = ", ".join(Path(f).name for f in files if f)
        out = [
            f"{self.venue} {self.symbol} (Tardis {self.exchange} {self.file_symbol}): "
            f"{self.book_rows_read:,} book rows, {self.trade_rows_read:,} trade rows, "
            f"{self.snapshot_rows_read:,} snapshot rows from {names}",
            f"  catalog {self.catalog} ("
            + (
                "created"
                if self.catalog_created
                else "appended to the stream already there: new parts, its instrument kept"
                if self.appended
                else "added to"
            )
            + ")",
            f"  instrument: tick {self.tick} ({self._how(self.tick_inferred, self.tick_source)}), "
            f"lot {self.lot} ({self._how(self.lot_inferred, self.lot_source)}), fees maker "
            f"{self.maker_fee} / taker "
            f"{self.taker_fee}",
            f"  book: {self.messages:,} messages (rows sharing a local_timestamp); "
            f"{self.snapshots} snapshot(s), {self.resyncs} of them after deltas (resyncs, "
            f"flagged FLAG_GAP); {self.deltas_without_book:,} delta rows before any snapshot "
            "dropped",
            f"  crossed states: {self.crossed_states} after a message"
            + (
                f"; snapshots checked {self.snapshots_checked:,}, "
                f"{self.snapshots_disagreeing} disagreeing, {self.repairs} stale level(s) "
                "removed (FLAG_REPAIR)"
                if self.snapshots_file
                else " (left as they are: no snapshot file to repair from)"
            ),
            f"  trades: {self.trades:,}; {self.trades_unknown_side} without an aggressor side "
            "skipped"
            + ("; ids not integers: numbered in file order" if self.trade_ids_numbered else ""),
            f"  rows written: book {self.book_rows:,}, trades {self.trade_rows:,}",
        ]
        offset_ms = self.clock_offset_ns / 1e6
        if self.negative_latency_rows:
            out.append(
                f"  clock: {self.negative_latency_rows:,} row(s) with timestamp after "
                f"local_timestamp (min feed latency {self.min_raw_latency_ms:.3f} ms): "
                "the recording clock was behind the exchange"
            )
        out.append(f"  clock: local times shifted by {offset_ms:+.3f} ms ({self.clock_offset_how})")
        if self.clamped_ts_exchange:
            out.append(f"  clamped: {self.clamped_ts_exchange} ts_exchange to its ts_local")
        if self.feed_latency_p50_ms is not None:
            out.append(
                f"  feed latency (ts_local - ts_exchange): p50 {self.feed_latency_p50_ms:.3f} "
                f"ms, p99 {self.feed_latency_p99_ms:.3f} ms"
            )
        if self.first_ts_local is not None and self.last_ts_local is not None:
            out.append(f"  ts_local range: {iso(self.first_ts_local)} -> {iso(self.last_ts_local)}")
        out.append(f"  took {self.elapsed_s:.2f} s ({self.rows_per_s:,.0f} rows/s)")
        return out

    def _how(self, inferred: bool, source: str) -> str:
        if inferred:
            return "inferred from the data's decimals"
        return "the catalog's" if self.appended else source


# --------------------------------------------------------------------------- pass 2
class _Snapshots:
    """The best bid / ask of each book_snapshot row, walked in local-time order."""

    def __init__(self, batches: Iterator[_Batch] | None) -> None:
        self._it = batches
        self._tsl: npt.NDArray[np.int64] = np.empty(0, np.int64)
        self._bid: npt.NDArray[np.float64] = np.empty(0)
        self._ask: npt.NDArray[np.float64] = np.empty(0)
        self._i = 0
        self._load()

    def _load(self) -> None:
        while self._it is not None and self._i >= len(self._tsl):
            b = next(self._it, None)
            if b is None:
                self._it = None
                return
            self._tsl = b.cols["local_timestamp"].astype(np.int64)
            self._ask = b.cols["asks[0].price"].astype(np.float64)
            self._bid = b.cols["bids[0].price"].astype(np.float64)
            self._i = 0

    def before(self, tsl_us: int) -> Iterator[tuple[int, float, float]]:
        """Snapshots taken before ``tsl_us`` (not yet walked): ``(local us, bid, ask)``,
        NaN for an empty side."""
        while self._i < len(self._tsl) and self._tsl[self._i] < tsl_us:
            i = self._i
            self._i += 1
            yield int(self._tsl[i]), float(self._bid[i]), float(self._ask[i])
            self._load()


class _BookPass:
    """Messages of the incremental book into catalog rows and a rebuilt book."""

    def __init__(
        self,
        report: TardisReport,
        cols: Columns,
        book: OrderBook,
        offset: int,
        seq: int,
        have_book: bool,
        snapshots: _Snapshots,
    ) -> None:
        self.r = report
        self.cols = cols
        self.book = book
        self.scale = book.scale
        self.offset = offset
        self.seq = seq
        self.have_book = have_book
        # a file's first snapshot (each Tardis day starts with one) is no resync
        self.deltas_since_snapshot = False
        self.snaps = snapshots
        self.carry: dict[str, npt.NDArray[Any]] | None = None
        self.last_tsl = -(2**63)
        self.latency: list[npt.NDArray[np.int64]] = []
        self.lat_stride = 1
        self.lat_kept = 0

    def batch(self, cols: dict[str, npt.NDArray[Any]], final: bool = False) -> None:
        """Take a batch; write every message that is complete (the last one may continue
        in the next batch: it is carried over)."""
        c = {
            "tsx": cols["timestamp"].astype(np.int64),
            "tsl": cols["local_timestamp"].astype(np.int64),
            "snap": cols["is_snapshot"].astype(np.bool_),
            "side": np.where(cols["side"] == "bid", 1, -1).astype(np.int8),
            "price": cols["price"].astype(np.float64),
            "size": cols["amount"].astype(np.float64),
        }
        if self.carry is not None:
            c = {k: np.concatenate([self.carry[k], v]) for k, v in c.items()}
            self.carry = None
        self._messages(c, final)

    def finish(self) -> None:
        if self.carry is not None:
            c, self.carry = self.carry, None
            self._messages(c, True)
        for tsl_us, bid, ask in self.snaps.before(2**62):
            rows = self._check_snapshot(tsl_us, bid, ask)
            if rows:
                self._repair_rows(rows, tsl_us * _US + self.offset, self.seq)

    def _messages(self, c: dict[str, npt.NDArray[Any]], final: bool) -> None:
        tsl, snap = c["tsl"], c["snap"]
        n = len(tsl)
        if not n:
            return
        new = np.ones(n, np.bool_)
        new[1:] = (tsl[1:] != tsl[:-1]) | (snap[1:] != snap[:-1])
        # a run of snapshot rows is one book, whatever its local times
        new[1:] &= ~(snap[1:] & snap[:-1])
        starts = np.flatnonzero(new)
        if not final:
            cut = int(starts[-1])
            self.carry = {k: v[cut:] for k, v in c.items()}
            if cut == 0:
                return
            c = {k: v[:cut] for k, v in c.items()}
            starts = starts[:-1]
            tsl, snap, n = c["tsl"], c["snap"], cut
        ends = np.append(starts[1:], n)
        # one ts_local per message (a snapshot run keeps its first row's)
        msg_tsl = tsl[starts] * _US + self.offset
        counts = ends - starts
        row_tsl = np.repeat(msg_tsl, counts)
        row_tsx = c["tsx"] * _US
        late = row_tsx > row_tsl
        if late.any():
            self.r.clamped_ts_exchange += int(late.sum())
            row_tsx = np.minimum(row_tsx, row_tsl)
        ticks = self.scale.to_ticks(c["price"])
        side, size = c["side"], c["size"]
        keep = np.ones(n, np.bool_)
        seqs = np.empty(len(starts), np.int64)
        flags = np.zeros(n, np.uint8)
        out_at: list[tuple[int, list[tuple[int, int, float, float]], int, int]] = []
        book = self.book
        for k, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            t_us = int(tsl[a])
            for s_us, bid, ask in self.snaps.before(t_us):
                fixes = self._check_snapshot(s_us, bid, ask)
                if fixes:
                    out_at.append((a, fixes, s_us * _US + self.offset, self.seq))
            is_snap = bool(snap[a])
            if is_snap:
                self.r.snapshots += 1
                flags[a] |= FLAG_SNAPSHOT_BEGIN
                flags[b - 1] |= FLAG_SNAPSHOT_END
                if self.deltas_since_snapshot:
                    self.r.resyncs += 1
                    flags[a:b] |= FLAG_GAP
                self.have_book = True
                self.deltas_since_snapshot = False
            elif not self.have_book:
                keep[a:b] = False
                self.r.deltas_without_book += b - a
                seqs[k] = self.seq
                continue
            else:
                self.deltas_since_snapshot = True
            self.seq += 1
            seqs[k] = self.seq
            self.r.messages += 1
            is_bid = side[a:b] > 0
            tk, sz = ticks[a:b], size[a:b]
            book.apply_ticks(
                tk[is_bid],
                sz[is_bid],
                tk[~is_bid],
                sz[~is_bid],
                int(row_tsx[a]),
                int(msg_tsl[k]),
                self.seq,
                is_snap,
            )
            if book.is_crossed:
                self.r.crossed_states += 1
        rows = {
            "tsx": row_tsx,
            "tsl": row_tsl,
            "key": np.repeat(seqs, counts),
            "side": side,
            "price": c["price"],
            "size": size,
            "flags": flags,
        }
        self._emit(rows, keep, out_at)

    def _check_snapshot(
        self, tsl_us: int, bid: float, ask: float
    ) -> list[tuple[int, int, float, float]]:
        """Compare the book with a snapshot's best levels; the stale levels to remove as
        ``(side, tick, price, 0.0)`` rows."""
        if not self.have_book:
            return []
        self.r.snapshots_checked += 1
        book = self.book
        rows: list[tuple[int, int, float, float]] = []
        if not math.isnan(bid):
            limit = self.scale.tick_of(bid)
            while (t := book.best_bid_tick) is not None and t > limit:
                rows.append(self._remove(1, t))
        if not math.isnan(ask):
            limit = self.scale.tick_of(ask)
            while (t := book.best_ask_tick) is not None and t < limit:
                rows.append(self._remove(-1, t))
        if rows:
            self.r.snapshots_disagreeing += 1
            self.r.repairs += len(rows)
        return rows

    def _remove(self, side: int, tick: int) -> tuple[int, int, float, float]:
        """Delete one level of the rebuilt book; its repair row."""
        none, gone = np.empty(0, np.int64), np.array([tick])
        bids, asks = (gone, none) if side > 0 else (none, gone)
        book = self.book
        book.apply_ticks(
            bids, np.zeros(len(bids)), asks, np.zeros(len(asks)), 0, 0, book.seq, False
        )
        return side, tick, self.scale.price(tick), 0.0

    def _emit(
        self,
        rows: dict[str, npt.NDArray[Any]],
        keep: npt.NDArray[np.bool_],
        repairs: list[tuple[int, list[tuple[int, int, float, float]], int, int]],
    ) -> None:
        """Write a chunk's rows (those kept), with the repair rows at their places."""
        bounds = [0, *[at for at, *_ in repairs], len(keep)]
        for j in range(len(bounds) - 1):
            a, b = bounds[j], bounds[j + 1]
            m = keep[a:b]
            self._put({k: v[a:b][m] for k, v in rows.items()})
            if j < len(repairs):
                _, fixes, r_tsl, r_seq = repairs[j]
                self._repair_rows(fixes, r_tsl, r_seq)

    def _sample(self, lat: npt.NDArray[np.int64]) -> None:
        """Keep a bounded, evenly decimated sample of feed latencies (memory stays flat)."""
        self.latency.append(lat[:: self.lat_stride].copy())
        self.lat_kept += len(self.latency[-1])
        if self.lat_kept > _LATENCY_SAMPLES:
            kept = np.concatenate(self.latency)[::2]
            self.latency = [kept]
            self.lat_kept = len(kept)
            self.lat_stride *= 2

    def _repair_rows(self, rows: list[tuple[int, int, float, float]], tsl: int, seq: int) -> None:
        tsl = max(tsl, self.last_tsl)
        k = len(rows)
        self._put(
            {
                "tsx": np.full(k, tsl, np.int64),
                "tsl": np.full(k, tsl, np.int64),
                "key": np.full(k, seq, np.int64),
                "side": np.array([r[0] for r in rows], np.int8),
                "price": np.array([r[2] for r in rows], np.float64),
                "size": np.zeros(k),
                "flags": np.full(k, FLAG_REPAIR, np.uint8),
            }
        )

    def _put(self, rows: dict[str, npt.NDArray[Any]]) -> None:
        tsl = rows["tsl"]
        if not len(tsl):
            return
        c = self.cols
        c.extend(rows)
        self.last_tsl = int(tsl[-1])
        self._sample(tsl - rows["tsx"])
        if self.r.first_ts_local is None:
            self.r.first_ts_local = int(tsl[0])
        self.r.last_ts_local = max(self.r.last_ts_local or 0, int(tsl[-1]))
        if len(c) >= _FLUSH_ROWS:
            c.flush()


_FLUSH_ROWS = 65_536
_LATENCY_SAMPLES = 200_000


def _trade_rows(
    r: TardisReport, cols: Columns, b: _Batch, offset: int, numeric: bool, next_id: int
) -> int:
    c = b.cols
    side = c["side"]
    sign = np.select([side == "buy", side == "sell"], [1, -1], 0).astype(np.int8)
    keep = sign != 0
    r.trades_unknown_side += int((~keep).sum())
    tsl = c["local_timestamp"].astype(np.int64) * _US + offset
    tsx = c["timestamp"].astype(np.int64) * _US
    late = tsx > tsl
    if late.any():
        r.clamped_ts_exchange += int(late.sum())
        tsx = np.minimum(tsx, tsl)
    if numeric:
        ids = _integer_ids(c["id"])
        assert ids is not None  # checked by pass 1
    else:
        ids = np.arange(next_id, next_id + len(tsl), dtype=np.int64)
    next_id += len(tsl)
    k = int(keep.sum())
    if k:
        cols.extend(
            {
                "tsx": tsx[keep],
                "tsl": tsl[keep],
                "key": ids[keep],
                "side": sign[keep],
                "price": c["price"][keep],
                "size": c["amount"][keep],
            }
        )
        r.trades += k
        t0, t1 = int(tsl[keep][0]), int(tsl[keep][-1])
        r.first_ts_local = t0 if r.first_ts_local is None else min(r.first_ts_local, t0)
        r.last_ts_local = t1 if r.last_ts_local is None else max(r.last_ts_local, t1)
    if len(cols) >= _FLUSH_ROWS:
        cols.flush()
    return next_id


def _resume(catalog: Catalog, venue: str, symbol: str, book: OrderBook) -> int:
    """Rebuild the book the catalog's stream ends with; its last ``seq``."""
    cur = BookCursor(catalog, venue, symbol, book.scale)
    while cur.next():
        cur.apply(book, FLAG_SNAPSHOT_BEGIN)
    return book.seq


# --------------------------------------------------------------------------- public API
def import_tardis(
    book_file: Path,
    *,
    catalog: Catalog,
    venue: str,
    symbol: str,
    trades_file: Path | None = None,
    snapshots_file: Path | None = None,
    tick: Decimal | None = None,
    lot: Decimal | None = None,
    maker_fee: Decimal | None = None,
    taker_fee: Decimal | None = None,
    market: str | None = None,
    instrument_file: Path | None = None,
    clock_offset_ns: int | None = None,
    min_feed_latency_ns: int = 1_000_000,
    progress: Callable[[int, int], None] | None = None,
) -> TardisReport:
    """Import Tardis.dev CSV files of one venue and symbol into ``catalog``.

    Parameters
    ----------
    book_file:
        ``incremental_book_L2`` CSV (plain or gzip).
    catalog:
        Target catalog: created when it has no ``catalog.json``; a venue and symbol it
        holds already is appended to (the new range must start after the data there;
        overlapping or earlier data is refused naming both ranges; the instrument and the
        earlier import's clock offset are kept, the book continues from the catalog's).
    venue, symbol:
        Names in the catalog (``BASE/QUOTE``). Every row must name one and the same
        exchange and symbol (Tardis spells symbols its own way: not compared with
        ``symbol``).
    trades_file, snapshots_file:
        ``trades`` and ``book_snapshot_25`` CSVs of the same symbol (optional).
    tick, lot:
        Price and quantity steps; inferred from the decimals of the data when not given
        (the lot from trade sizes when there are trades). A price off a given tick is
        refused naming its line.
    maker_fee, taker_fee:
        Fee rates (default 0.001 each, a common base tier).
    market:
        ``"spot"`` or ``"perpetual"`` (said wherever two venues are compared); default
        the instrument file's type, else spot.
    instrument_file:
        Tardis instrument metadata (the JSON object of ``GET /v1/instruments/<exchange>/
        <symbol>``): ``priceIncrement``, ``amountIncrement``, ``minTradeAmount``,
        ``makerFee``, ``takerFee`` and ``type`` give tick, lot, minimum, fees and market
        where not given explicitly.
    clock_offset_ns:
        Added to every ``local_timestamp``; see the module docstring when None.
    min_feed_latency_ns:
        The smallest feed latency an estimated offset leaves (default 1 ms).
    progress:
        Told ``(bytes done, bytes in all)`` of the input files (as stored) over both passes.

    Raises
    ------
    DataError
        Malformed input (file, line and field named; nothing written), a range that
        overlaps or precedes the stream's data in the catalog, or a synthetic catalog.
    """
    t0 = time.perf_counter()
    base, quote = parse_symbol(symbol)
    sources = {"tick": "given", "lot": "given"}
    min_qty: Decimal | None = None
    if instrument_file is not None:
        meta = _instrument_meta(Path(instrument_file))
        for name, value in (("tick", tick), ("lot", lot)):
            if value is None:
                sources[name] = "from the instrument file"
        tick = tick if tick is not None else meta.tick
        lot = lot if lot is not None else meta.lot
        maker_fee = maker_fee if maker_fee is not None else meta.maker_fee
        taker_fee = taker_fee if taker_fee is not None else meta.taker_fee
        market = market or meta.market
        min_qty = meta.min_qty
    market = market or "spot"
    if market not in ("spot", "perpetual"):
        raise DataError(f"market must be spot or perpetual, got {market!r}")
    files: list[tuple[Path, FileKind]] = [(Path(book_file), "book")]
    if trades_file is not None:
        files.append((Path(trades_file), "trades"))
    if snapshots_file is not None:
        files.append((Path(snapshots_file), "snapshots"))
    held = existing_stream(catalog, venue, symbol)
    prior = held.instrument
    if prior is not None:
        check_same_instrument(catalog, prior, tick, lot, maker_fee, taker_fee)
        tick, lot = prior.tick, prior.lot
        maker_fee, taker_fee = prior.maker_fee, prior.taker_fee
    if tick is not None and tick <= 0:
        raise DataError(f"tick must be positive, got {tick}")
    if lot is not None and lot <= 0:
        raise DataError(f"lot must be positive, got {lot}")
    sizes = [file_size(p) for p, _ in files]
    total = 2 * sum(sizes)

    def on_file(done_before: int) -> Callable[[int], None] | None:
        if progress is None:
            return None
        return lambda n: progress(done_before + n, total)

    # pass 1: validate everything and measure, before anything is written
    given_scale = TickScale(tick) if tick is not None else None
    scans: dict[FileKind, _Scan] = {}
    done = 0
    for (path, kind), size in zip(files, sizes, strict=True):
        scans[kind] = _scan(path, kind, given_scale, on_file(done))
        done += size
    bs = scans["book"]
    ts = scans.get("trades")
    for other in (ts, scans.get("snapshots")):
        if other is not None and other.rows and other.symbol != bs.symbol:
            raise DataError(
                f"{files[0][0]}: symbol {bs.symbol!r}, but another file given holds "
                f"{other.symbol!r}"
            )
    tick_ = tick if tick is not None else Decimal(1).scaleb(-bs.price_dp)
    if ts is not None and ts.rows and tick is None:
        tick_ = Decimal(1).scaleb(-max(bs.price_dp, ts.price_dp))
    lot_dp = ts.size_dp if ts is not None and ts.rows else bs.size_dp
    lot_ = lot if lot is not None else Decimal(1).scaleb(-lot_dp)
    maker = DEFAULT_FEE if maker_fee is None else maker_fee
    taker = DEFAULT_FEE if taker_fee is None else taker_fee

    lags = [s.min_lag for s in (bs, ts) if s is not None and s.min_lag is not None]
    min_lag_us = min(lags) if lags else None
    how = "given"
    if clock_offset_ns is None and prior is not None and held.info is not None:
        clock_offset_ns = held.info.clock_offsets_ns.get(prior.key)
        how = "the earlier import's, reused"
    if clock_offset_ns is None:
        if min_lag_us is not None and min_lag_us * _US < 0:
            offset = min_feed_latency_ns - min_lag_us * _US
            how = f"estimated so that the minimum feed latency is {min_feed_latency_ns / 1e6:g} ms"
        else:
            offset = 0
            how = "none needed: no timestamp after its local_timestamp"
    else:
        offset = clock_offset_ns
    firsts = [s.first for s in scans.values() if s.first is not None]
    lasts = [s.last for s in scans.values() if s.last is not None]
    if firsts and lasts:
        check_new_range(
            catalog,
            venue,
            symbol,
            held.range,
            min(firsts) * _US + offset,
            max(lasts) * _US + offset,
        )

    report = TardisReport(
        venue=venue,
        symbol=symbol,
        exchange=bs.exchange or "",
        file_symbol=bs.symbol or "",
        book_file=str(files[0][0]),
        trades_file=None if trades_file is None else str(trades_file),
        snapshots_file=None if snapshots_file is None else str(snapshots_file),
        catalog=str(catalog.root),
        catalog_created=held.info is None,
        appended=prior is not None,
        tick=tick_,
        lot=lot_,
        tick_inferred=tick is None,
        lot_inferred=lot is None,
        tick_source=sources["tick"],
        lot_source=sources["lot"],
        maker_fee=maker,
        taker_fee=taker,
        book_rows_read=bs.rows,
        trade_rows_read=0 if ts is None else ts.rows,
        snapshot_rows_read=scans["snapshots"].rows if "snapshots" in scans else 0,
        clock_offset_ns=offset,
        clock_offset_how=how,
        min_feed_latency_ns=min_feed_latency_ns,
        min_raw_latency_ms=None if min_lag_us is None else min_lag_us / 1e3,
        trade_ids_numbered=ts is not None and not ts.numeric_ids,
    )

    with rollback_on_failure(catalog, [(venue, symbol)]):
        info = held.info
        if info is None:
            info = CatalogInfo(
                synthetic=False, description="Tardis.dev CSV datasets", created_by=_CREATED_BY
            )
            catalog.create(info)
        if prior is None:
            catalog.write_instrument(
                Instrument(
                    venue=venue,
                    symbol=symbol,
                    base=base,
                    quote=quote,
                    tick=tick_,
                    lot=lot_,
                    min_qty=min_qty or lot_,
                    maker_fee=maker,
                    taker_fee=taker,
                    market=market,
                )
            )
        book = OrderBook(venue, symbol, tick_)
        seq = _resume(catalog, venue, symbol, book) if prior is not None else 0
        neg = 0
        # pass 2: write
        with catalog.writer(venue, symbol, "book") as bw:
            bk = Columns(bw, book=True)
            snaps = (
                _Snapshots(_batches(Path(snapshots_file), "snapshots"))
                if snapshots_file is not None
                else _Snapshots(None)
            )
            bp = _BookPass(report, bk, book, offset, seq, prior is not None, snaps)
            for b in _batches(files[0][0], "book", on_file(done)):
                neg += int((b.cols["timestamp"] > b.cols["local_timestamp"]).sum())
                bp.batch(b.cols)
            bp.finish()
            bk.flush()
        done += sizes[0]
        if trades_file is not None:
            with catalog.writer(venue, symbol, "trades") as tw:
                tr = Columns(tw, book=False)
                next_id = 0
                for b in _batches(Path(trades_file), "trades", on_file(done)):
                    neg += int((b.cols["timestamp"] > b.cols["local_timestamp"]).sum())
                    next_id = _trade_rows(
                        report, tr, b, offset, not report.trade_ids_numbered, next_id
                    )
                tr.flush()
            report.trade_rows = tw.rows
        report.book_rows = bw.rows
        report.negative_latency_rows = neg
        if bp.latency:
            lat = np.concatenate(bp.latency) / 1e6
            report.feed_latency_p50_ms = float(np.percentile(lat, 50))
            report.feed_latency_p99_ms = float(np.percentile(lat, 99))
        info = catalog.info()
        info.notes.append(
            f"{venue} {symbol}: imported by {_CREATED_BY} from "
            f"{', '.join(p.name for p, _ in files)} (Tardis {report.exchange} "
            f"{report.file_symbol}); clock offset {offset / 1e6:+.3f} ms ({how}); "
            f"{report.resyncs} resync(s), {report.crossed_states} crossed state(s), "
            f"{report.repairs} level(s) repaired"
        )
        info.clock_offsets_ns[f"{venue}:{symbol}"] = offset
        catalog.create(info)
    report.elapsed_s = time.perf_counter() - t0
    return report
