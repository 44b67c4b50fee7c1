"""Import Binance L2 recordings made by hftbacktest's collector into the catalog.

Input: text files (optionally gzip-compressed), one message per line as
``<local_receive_ns> <raw json>``, exactly as ``nkaz001/hftbacktest``'s collector writes
them for Binance spot and USD-M futures. A line holds either a REST depth snapshot
(``{"lastUpdateId", "bids", "asks"}``; USD-M adds ``E``/``T``) or a combined-stream
envelope ``{"stream", "data"}`` whose data is a ``depthUpdate`` diff, a ``bookTicker``
or a ``trade``. The files given to one import are ONE continuous stream in the order
given (a day file may continue the previous one without a new snapshot).

What the importer does, and why (DESIGN §3, §6):

* **Two passes.** The first pass decodes and validates every line and measures what the
  second needs (the clock offset, the price/size decimals, spot or USD-M); only then is
  anything written. A malformed line therefore raises :class:`~arbsim.core.errors.DataError`
  naming the file and line *before* this venue's data is touched: the catalog (and every
  other venue in it) stays exactly as it was, and the import can simply be re-run.
* **Book synchronisation** follows Binance's documented procedure: diffs received before
  the snapshot are buffered, those with ``u <= lastUpdateId`` dropped, and the rest
  applied right after the snapshot (at the snapshot's ``ts_local``: before it there is no
  book to apply them to). In the hftbacktest recordings the diff that straddles
  ``lastUpdateId + 1`` arrives *before* the REST answer, so a reader that only looks at
  the diffs after the snapshot line sees a gap and keeps a stale level (the crossed books
  the data README describes). ``replay_buffered_diffs=False`` gives that strict
  file-order behaviour (for comparison). The update-id chain is checked (spot:
  ``U == prev_u + 1``; USD-M: ``pu == prev_u``; the first diff after a snapshot must
  satisfy ``U <= lastUpdateId + 1 <= u``); a break sets ``FLAG_GAP`` on that message's
  rows and is counted.
* **Stale-level repair with bookTicker.** A bookTicker carries the update id ``u`` of the
  book state it describes. When it is at least as new as the importer's book
  (``u >= book id``), no bid above its best bid and no ask below its best ask exists at
  that id, so such levels still in the book are stale (or about to be removed by the
  next diff): deletion rows are emitted (size 0, ``FLAG_REPAIR``, ``seq`` = the book's
  current update id, ``ts_local`` of the bookTicker line). bookTickers themselves are not
  stored.
* **Time.** ``ts_exchange`` is the venue's event time: ``E`` of a depth diff (and of the
  USD-M snapshot), ``T`` of a trade. The spot REST snapshot carries no exchange time: its
  ``ts_exchange`` is its ``ts_local`` minus ``min_feed_latency_ns``, i.e. the latest
  exchange time consistent with the latency floor (the state it describes is at most
  that old when it arrives); repair rows from spot bookTickers (no ``E`` either) get the
  same treatment. ``ts_local`` = receive ns + clock offset. The recording machine's clock
  was ~1.27 s behind the exchange; unless given, the offset is estimated so that the
  smallest ``ts_local - ts_exchange`` over every message carrying an exchange time
  (depth, trade, USD-M snapshot and bookTicker) equals ``min_feed_latency_ns``. Rows are
  written in ``ts_local`` order; a receive time that goes backwards is raised to the
  previous one, and a ``ts_exchange`` after its ``ts_local`` (possible only with a given
  offset) is clamped to it. Both are counted.
"""

from __future__ import annotations

import gzip
import heapq
import io
import math
import time
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import repeat
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np

from arbsim.core.book import OrderBook
from arbsim.core.errors import DataError
from arbsim.core.model import Instrument, parse_symbol
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

__all__ = [
    "DEFAULT_FEES",
    "CheckResult",
    "ImportReport",
    "import_binance_hftbacktest",
    "replay_check",
]

Market = Literal["spot", "usdm"]

#: Binance's base-tier (VIP 0, no BNB discount) fee rates as ``(maker, taker)``.
DEFAULT_FEES: dict[Market, tuple[Decimal, Decimal]] = {
    "spot": (Decimal("0.001"), Decimal("0.001")),
    "usdm": (Decimal("0.0002"), Decimal("0.0005")),
}

_MS = 1_000_000
_CHUNK_ROWS = 65_536
# Diffs kept for re-applying after a snapshot: only those received during the REST
# round trip can matter, so the buffer holds the last few seconds (and at most so many
# messages), not a recording that never gets a snapshot.
_RESYNC_WINDOW_NS = 10_000_000_000
_RESYNC_MAX = 5_000
_CREATED_BY = __name__

# Levels decode straight to floats: the decoders run with strict=False, which lets
# msgspec parse Binance's decimal strings in C (correctly rounded, identical to
# float(str): checked on every level of the recordings).
Level = tuple[float, float]
_INF = math.inf


# --------------------------------------------------------------------------- wire types
class _Envelope(msgspec.Struct):
    """First decoding stage: a combined-stream envelope, or a REST depth snapshot.

    With ``lastUpdateId`` set the line is a snapshot and the struct itself is the
    message handed on (``E``/``T`` only on USD-M).
    """

    stream: str = ""
    data: msgspec.Raw = msgspec.Raw()
    lastUpdateId: int | None = None
    bids: list[Level] = msgspec.field(default_factory=list)
    asks: list[Level] = msgspec.field(default_factory=list)
    E: int | None = None
    T: int | None = None


class _Depth(msgspec.Struct):
    E: int
    U: int
    u: int
    b: list[Level]
    a: list[Level]
    s: str = ""
    pu: int | None = None  # USD-M only: the previous diff's ``u``


class _Ticker(msgspec.Struct):
    u: int
    b: float
    a: float
    s: str = ""
    E: int | None = None  # USD-M only


class _Trade(msgspec.Struct):
    T: int
    t: int
    p: float
    q: float
    m: bool  # buyer is the maker, i.e. the aggressor sold
    s: str = ""


_Msg = _Envelope | _Depth | _Ticker | _Trade

_ENVELOPE = msgspec.json.Decoder(_Envelope, strict=False)
_DEPTH = msgspec.json.Decoder(_Depth, strict=False)
_TICKER = msgspec.json.Decoder(_Ticker, strict=False)
_TRADE = msgspec.json.Decoder(_Trade, strict=False)


class _Decimals:
    """Decimals needed to put the prices and sizes seen on a grid (tick/lot inference).

    Trade sizes are kept apart: they are executed order quantities, on the lot grid,
    while aggregated book sizes can be finer (spot BTCUSDT levels show 6 decimals for a
    0.00001 lot).
    """

    __slots__ = ("price", "size", "trade_size")

    def __init__(self) -> None:
        self.price = 0
        self.size = 0
        self.trade_size = -1  # -1: no trade seen

    def levels(self, levels: list[Level]) -> None:
        if levels:
            arr = np.array(levels, dtype=np.float64)
            self.price = grid_dp(arr[:, 0], self.price)
            self.size = grid_dp(arr[:, 1], self.size)


def _check_levels(levels: list[Level], where: str) -> None:
    for p, q in levels:
        # written so that NaN fails too
        if not (0.0 < p < _INF and 0.0 <= q < _INF):
            raise DataError(f"{where}: level [{p}, {q}] has a bad price or size")


def _open(path: Path) -> io.BufferedIOBase:
    try:
        with path.open("rb") as f:
            magic = f.read(2)
        if magic == b"\x1f\x8b":
            return gzip.open(path, "rb")
        return path.open("rb")
    except OSError as e:
        raise DataError(f"{path}: cannot open ({e})") from e


def _read(
    files: Sequence[Path],
    code: str,
    dec: _Decimals | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[tuple[Path, int, int, _Msg | None]]:
    """Yield ``(path, line_no, receive_ns, message)`` for every line of ``files`` in order.

    ``message`` is None for a stream this importer does not use (counted by the caller);
    blank lines are skipped. Every problem raises :class:`DataError` naming ``path:line``.
    ``dec``, when given, collects the decimals of prices and sizes; ``on_bytes`` is told
    now and then how many bytes of the files (as stored, compressed) were read.
    """
    before = 0
    for path in files:
        with _open(path) as f:
            raw = getattr(f, "fileobj", None) or f
            lineno = 0
            try:
                for lineno, line in enumerate(f, 1):
                    if on_bytes is not None and not lineno & 0x1FFF:
                        on_bytes(before + raw.tell())
                    if not line.strip():
                        continue
                    recv, msg = _parse(line, path, lineno, code, dec)
                    yield path, lineno, recv, msg
            except (OSError, EOFError, zlib.error) as e:
                raise DataError(f"{path}:{lineno + 1}: unreadable ({e})") from e
        before += file_size(path)
        if on_bytes is not None:
            on_bytes(before)


def _parse(
    line: bytes, path: Path, lineno: int, code: str, dec: _Decimals | None
) -> tuple[int, _Msg | None]:
    head, sep, body = line.partition(b" ")
    if not sep or not head.isdigit():
        raise DataError(f"{path}:{lineno}: expected '<local_receive_ns> <json>', got {line[:60]!r}")
    recv = int(head)
    try:
        env = _ENVELOPE.decode(body)
        if env.lastUpdateId is not None:
            if not env.bids and not env.asks:
                raise DataError(f"{path}:{lineno}: depth snapshot without levels")
            _check_levels(env.bids, f"{path}:{lineno}")
            _check_levels(env.asks, f"{path}:{lineno}")
            if dec is not None:
                dec.levels(env.bids)
                dec.levels(env.asks)
            return recv, env
        kind = env.stream.partition("@")[2]
        if not kind or not len(env.data):
            raise DataError(f"{path}:{lineno}: neither a depth snapshot nor a stream message")
        if kind.startswith("depth"):
            d = _DEPTH.decode(env.data)
            _check_symbol(d.s, code, path, lineno)
            if d.u < d.U:
                raise DataError(f"{path}:{lineno}: depth diff with u {d.u} < U {d.U}")
            _check_levels(d.b, f"{path}:{lineno}")
            _check_levels(d.a, f"{path}:{lineno}")
            if dec is not None:
                dec.levels(d.b)
                dec.levels(d.a)
            return recv, d
        if kind == "bookTicker":
            t = _TICKER.decode(env.data)
            _check_symbol(t.s, code, path, lineno)
            if not (0.0 <= t.b < _INF and 0.0 <= t.a < _INF):
                raise DataError(f"{path}:{lineno}: bookTicker with bid {t.b} ask {t.a}")
            return recv, t
        if kind == "trade":
            tr = _TRADE.decode(env.data)
            _check_symbol(tr.s, code, path, lineno)
            if not (0.0 < tr.p < _INF and 0.0 < tr.q < _INF):
                raise DataError(f"{path}:{lineno}: trade with price {tr.p} size {tr.q}")
            if dec is not None:
                dec.price = grid_dp(np.array([tr.p]), dec.price)
                dec.trade_size = grid_dp(np.array([tr.q]), max(dec.trade_size, 0))
            return recv, tr
        return recv, None
    except msgspec.DecodeError as e:
        raise DataError(f"{path}:{lineno}: {e}") from None


def _check_symbol(s: str, code: str, path: Path, lineno: int) -> None:
    if s and s != code:
        raise DataError(f"{path}:{lineno}: message for {s}, importing {code}")


# --------------------------------------------------------------------------- reports
class ImportReport(msgspec.Struct, kw_only=True):
    """What :func:`import_binance_hftbacktest` did. Times are ns unless named ``_ms``/``_s``."""

    venue: str
    symbol: str
    market: Market
    files: list[str]
    catalog: str
    catalog_created: bool
    tick: Decimal
    lot: Decimal
    tick_inferred: bool
    lot_inferred: bool
    maker_fee: Decimal
    taker_fee: Decimal
    lines_read: int = 0
    ignored_lines: int = 0
    snapshots: int = 0
    diffs: int = 0
    diffs_applied: int = 0
    diffs_replayed: int = 0
    dropped_stale_diffs: int = 0
    diffs_without_book: int = 0
    gaps: int = 0
    book_tickers: int = 0
    repairs: int = 0
    repairs_stale: int = 0
    trades: int = 0
    book_rows: int = 0
    trade_rows: int = 0
    clamped_ts_exchange: int = 0
    clamped_ts_local: int = 0
    clock_offset_ns: int = 0
    clock_offset_estimated: bool = False
    min_feed_latency_ns: int = 0
    first_ts_local: int | None = None
    last_ts_local: int | None = None
    feed_latency_p50_ms: float | None = None
    feed_latency_p99_ms: float | None = None
    feed_latency_min_ms: float | None = None
    replay_buffered_diffs: bool = True
    elapsed_s: float = 0.0
    #: the catalog held this venue and symbol already: the data was appended to it
    appended: bool = False
    #: the clock offset is the one the catalog's earlier import of the stream used
    clock_offset_reused: bool = False

    def lines(self) -> list[str]:
        """Human-readable lines saying what the import did (printed by the CLI)."""
        kind = "Binance spot" if self.market == "spot" else "Binance USD-M perpetual"
        names = ", ".join(Path(f).name for f in self.files)
        out = [
            f"{self.venue} {self.symbol} ({kind}): {self.lines_read:,} lines from "
            f"{len(self.files)} file(s): {names}",
            f"  catalog {self.catalog} ("
            + (
                "created"
                if self.catalog_created
                else "appended to the stream already there: new parts, its instrument kept"
                if self.appended
                else "added to"
            )
            + ")",
            f"  instrument: tick {self.tick} ({self._how(self.tick_inferred)}), lot {self.lot} "
            f"({self._how(self.lot_inferred)}), fees maker {self.maker_fee} / taker "
            f"{self.taker_fee}",
        ]
        sync = (
            "diffs received before each snapshot are re-applied after it (Binance's procedure)"
            if self.replay_buffered_diffs
            else "diffs before a snapshot line are dropped (strict file order)"
        )
        out += [
            f"  book: {self.snapshots} snapshot(s); {self.diffs:,} depth diffs: "
            f"{self.diffs_applied:,} applied ({self.diffs_replayed} from before a snapshot), "
            f"{self.dropped_stale_diffs} dropped as stale (u <= book update id), "
            f"{self.diffs_without_book} dropped before any snapshot; {sync}",
            f"  update-id chain: {self.gaps} gap(s) (rows flagged FLAG_GAP)",
            f"  bookTicker: {self.book_tickers:,} read (not stored); {self.repairs:,} "
            "level(s) better than a bookTicker at least as new as the book removed "
            f"(rows flagged FLAG_REPAIR), {self.repairs_stale} of them at the book's own "
            "update id (stale for certain; the others were already gone at the "
            "bookTicker's newer id and would have gone with the next diff)",
            f"  trades: {self.trades:,}; unused lines (other streams): {self.ignored_lines}",
            f"  rows written: book {self.book_rows:,}, trades {self.trade_rows:,}",
        ]
        offset_ms = self.clock_offset_ns / 1e6
        if self.clock_offset_estimated:
            out.append(
                f"  clock: local receive times shifted by {offset_ms:+.3f} ms (estimated so "
                f"that the minimum feed latency is {self.min_feed_latency_ns / 1e6:.3f} ms; "
                "the recording clock was behind the exchange)"
            )
        else:
            how = "the earlier import's, reused" if self.clock_offset_reused else "given"
            out.append(f"  clock: local receive times shifted by {offset_ms:+.3f} ms ({how})")
        out.append(
            f"  clamped: {self.clamped_ts_exchange} ts_exchange to its ts_local, "
            f"{self.clamped_ts_local} ts_local that went backwards"
        )
        if self.feed_latency_p50_ms is not None:
            out.append(
                f"  feed latency (ts_local - ts_exchange): min {self.feed_latency_min_ms:.3f} "
                f"ms, p50 {self.feed_latency_p50_ms:.3f} ms, p99 "
                f"{self.feed_latency_p99_ms:.3f} ms"
            )
        if self.first_ts_local is not None and self.last_ts_local is not None:
            out.append(f"  ts_local range: {iso(self.first_ts_local)} -> {iso(self.last_ts_local)}")
        out.append(f"  took {self.elapsed_s:.2f} s")
        return out

    def _how(self, inferred: bool) -> str:
        if inferred:
            return "inferred from the data's decimals"
        return "the catalog's" if self.appended else "given"


class CheckResult(msgspec.Struct, kw_only=True):
    """Outcome of :func:`replay_check`."""

    venue: str
    symbol: str
    messages: int
    crossed_states: int
    book_tickers: int
    shared_ids: int
    matches: int
    match_ratio: float  # matches / shared_ids; 0.0 when nothing is shared
    mismatches: list[str] = msgspec.field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [
            f"{self.venue} {self.symbol}: replayed {self.messages:,} book messages; "
            f"{self.crossed_states} crossed state(s)",
            f"  best bid/ask vs bookTicker at {self.shared_ids:,} shared update ids: "
            f"{self.matches:,} equal ({self.match_ratio:.2%}); "
            f"{self.book_tickers:,} bookTickers read",
        ]
        out += [f"  mismatch: {m}" for m in self.mismatches]
        return out


# --------------------------------------------------------------------------- pass 1
@dataclass(slots=True)
class _Scan:
    min_lag: int | None = None  # min(receive_ns - ts_exchange) over messages with one
    usdm_marks: int = 0
    spot_marks: int = 0
    dec: _Decimals = field(default_factory=_Decimals)
    first_recv: int | None = None
    last_recv: int | None = None


def _scan(files: Sequence[Path], code: str, on_bytes: Callable[[int], None] | None = None) -> _Scan:
    """Validate every line and measure what the second pass needs."""
    sc = _Scan()
    lag: int | None = None
    for _path, _n, recv, msg in _read(files, code, sc.dec, on_bytes):
        if sc.first_recv is None or recv < sc.first_recv:
            sc.first_recv = recv
        if sc.last_recv is None or recv > sc.last_recv:
            sc.last_recv = recv
        tsx: int | None
        if isinstance(msg, _Depth):
            tsx = msg.E
            if msg.pu is None:
                sc.spot_marks += 1
            else:
                sc.usdm_marks += 1
        elif isinstance(msg, _Trade):
            tsx = msg.T
        elif isinstance(msg, _Ticker | _Envelope):
            tsx = msg.E
            if msg.E is not None:
                sc.usdm_marks += 1
        else:
            continue
        if tsx is not None:
            d = recv - tsx * _MS
            if lag is None or d < lag:
                lag = d
    sc.min_lag = lag
    return sc


# --------------------------------------------------------------------------- pass 2
_PENDING = 0  # received while there was no book: neither applied nor counted yet
_HANDLED = 1  # applied to (or dropped from) a book already


class _Importer:
    """The second pass: book state machine, repairs and row emission."""

    def __init__(
        self,
        report: ImportReport,
        book_cols: Columns,
        trade_cols: Columns,
        offset: int,
        replay_buffered: bool,
    ):
        self.r = report
        self.bk = book_cols
        self.tr = trade_cols
        self.offset = offset
        self.min_lat = report.min_feed_latency_ns
        self.replay_buffered = replay_buffered
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        # lazy heaps of level prices (bids negated): the best levels without sorting
        self.bid_heap: list[float] = []
        self.ask_heap: list[float] = []
        self.book_u: int | None = None
        self.chain_start = False
        # recent (diff, state, receive ns), for re-applying those newer than a snapshot
        self.recent: deque[tuple[_Depth, int, int]] = deque()
        self.last_tsl = -(2**63)
        self.latency = array("q")

    # ---------------------------------------------------------------- helpers
    def local(self, recv: int) -> int:
        tsl = recv + self.offset
        if tsl < self.last_tsl:
            self.r.clamped_ts_local += 1
            return self.last_tsl
        self.last_tsl = tsl
        return tsl

    def exch(self, tsx: int, tsl: int) -> int:
        if tsx > tsl:
            self.r.clamped_ts_exchange += 1
            return tsl
        return tsx

    def emit(
        self, tsx: int, tsl: int, seq: int, bids: list[Level], asks: list[Level], fl: int
    ) -> None:
        """Append one book message's rows and apply them to the importer's book."""
        c = self.bk
        nb = len(bids)
        n = nb + len(asks)
        c.tsx.extend(repeat(tsx, n))
        c.tsl.extend(repeat(tsl, n))
        c.key.extend(repeat(seq, n))
        c.side.extend(repeat(1, nb))
        c.side.extend(repeat(-1, n - nb))
        c.flags.extend(repeat(fl, n))
        for levels, book, heap, sign in (
            (bids, self.bids, self.bid_heap, -1.0),
            (asks, self.asks, self.ask_heap, 1.0),
        ):
            price = c.price
            size = c.size
            for p, q in levels:
                price.append(p)
                size.append(q)
                if q > 0.0:
                    if p not in book:
                        heapq.heappush(heap, sign * p)
                    book[p] = q
                else:
                    book.pop(p, None)
        if self.r.first_ts_local is None:
            self.r.first_ts_local = tsl
        self.r.last_ts_local = tsl
        if len(c) >= _CHUNK_ROWS:
            c.flush()

    def compact(self) -> None:
        # deleted prices stay in the heaps until they surface; rebuild when they dominate
        if len(self.bid_heap) > 4 * len(self.bids) + 1024:
            self.bid_heap = [-p for p in self.bids]
            heapq.heapify(self.bid_heap)
        if len(self.ask_heap) > 4 * len(self.asks) + 1024:
            self.ask_heap = list(self.asks)
            heapq.heapify(self.ask_heap)

    # ---------------------------------------------------------------- messages
    def snapshot(self, recv: int, s: _Envelope) -> None:
        r = self.r
        r.snapshots += 1
        seq = s.lastUpdateId
        assert seq is not None
        tsl = self.local(recv)
        if s.E is not None:
            tsx = self.exch(s.E * _MS, tsl)
            self.latency.append(tsl - tsx)
        else:
            tsx = tsl - self.min_lat
        self.bids.clear()
        self.asks.clear()
        self.bid_heap.clear()
        self.ask_heap.clear()
        self.emit(tsx, tsl, seq, s.bids, s.asks, FLAG_SNAPSHOT_BEGIN | FLAG_SNAPSHOT_END)
        self.book_u = seq
        self.chain_start = True
        pending = list(self.recent)
        self.recent.clear()
        for d, state, at in pending:
            if d.u <= seq:
                if state == _PENDING:
                    r.dropped_stale_diffs += 1
            elif self.replay_buffered:
                # newer than the snapshot but received before it: Binance's procedure
                # applies it now, when there is a book to apply it to
                r.diffs_replayed += 1
                self.apply_diff(d, tsl)
                self.recent.append((d, _HANDLED, at))
            elif state == _PENDING:
                r.diffs_without_book += 1

    def remember(self, d: _Depth, state: int, recv: int) -> None:
        q = self.recent
        q.append((d, state, recv))
        while len(q) > _RESYNC_MAX or q[0][2] < recv - _RESYNC_WINDOW_NS:
            if q.popleft()[1] == _PENDING:
                self.r.diffs_without_book += 1

    def diff(self, recv: int, d: _Depth) -> None:
        self.r.diffs += 1
        tsl = self.local(recv)
        if self.book_u is None:
            self.remember(d, _PENDING, recv)
            return
        self.remember(d, _HANDLED, recv)
        if d.u <= self.book_u:
            self.r.dropped_stale_diffs += 1
            return
        self.apply_diff(d, tsl)

    def apply_diff(self, d: _Depth, tsl: int) -> None:
        r = self.r
        u0 = self.book_u
        assert u0 is not None
        if self.chain_start:
            ok = u0 + 1 >= d.U  # u > u0 holds: older diffs were dropped
        elif d.pu is not None:
            ok = d.pu == u0
        else:
            ok = u0 + 1 == d.U
        self.chain_start = False
        fl = 0
        if not ok:
            r.gaps += 1
            fl = FLAG_GAP
        tsx = self.exch(d.E * _MS, tsl)
        self.latency.append(tsl - tsx)
        self.emit(tsx, tsl, d.u, d.b, d.a, fl)
        self.book_u = d.u
        r.diffs_applied += 1
        self.compact()

    def ticker(self, recv: int, t: _Ticker) -> None:
        self.r.book_tickers += 1
        tsl = self.local(recv)
        u0 = self.book_u
        if u0 is None or t.u < u0:
            return
        bids: list[Level] = []
        asks: list[Level] = []
        if t.b > 0.0:  # a zero best bid means an empty side: nothing to compare with
            h = self.bid_heap
            while h and -h[0] > t.b:
                p = -heapq.heappop(h)
                # popped here, not in emit(): a price can sit in the heap twice
                if self.bids.pop(p, None) is not None:
                    bids.append((p, 0.0))
        if t.a > 0.0:
            h = self.ask_heap
            while h and h[0] < t.a:
                p = heapq.heappop(h)
                if self.asks.pop(p, None) is not None:
                    asks.append((p, 0.0))
        n = len(bids) + len(asks)
        if not n:
            return
        tsx = tsl - self.min_lat if t.E is None else self.exch(t.E * _MS, tsl)
        self.emit(tsx, tsl, u0, bids, asks, FLAG_REPAIR)
        self.r.repairs += n
        if t.u == u0:
            # same update id: provably stale, not merely gone at a newer id (which the
            # next diff would have brought)
            self.r.repairs_stale += n

    def trade(self, recv: int, p: _Trade) -> None:
        self.r.trades += 1
        tsl = self.local(recv)
        tsx = self.exch(p.T * _MS, tsl)
        self.latency.append(tsl - tsx)
        c = self.tr
        c.tsx.append(tsx)
        c.tsl.append(tsl)
        c.key.append(p.t)
        c.side.append(-1 if p.m else 1)
        c.price.append(p.p)
        c.size.append(p.q)
        if self.r.first_ts_local is None:
            self.r.first_ts_local = tsl
        self.r.last_ts_local = tsl
        if len(c) >= _CHUNK_ROWS:
            c.flush()

    def finish(self) -> None:
        self.r.diffs_without_book += sum(1 for _, state, _ in self.recent if state == _PENDING)
        self.recent.clear()

    def resume(self, catalog: Catalog, venue: str, symbol: str) -> None:
        """Start from the book the catalog's stream ends with (an appended import whose
        files continue the update-id chain need not begin with a snapshot)."""
        last_seq: int | None = None
        last_tsl = self.last_tsl
        for _path, batch in catalog.batches(venue, symbol, "book"):
            seqs = batch.column("seq").to_numpy().tolist()
            sides = batch.column("side").to_numpy().tolist()
            prices = batch.column("price").to_numpy().tolist()
            sizes = batch.column("size").to_numpy().tolist()
            flags = batch.column("flags").to_numpy().tolist()
            for seq, side, p, q, fl in zip(seqs, sides, prices, sizes, flags, strict=True):
                if fl & FLAG_SNAPSHOT_BEGIN:
                    self.bids.clear()
                    self.asks.clear()
                book = self.bids if side > 0 else self.asks
                if q > 0.0:
                    book[p] = q
                else:
                    book.pop(p, None)
                last_seq = seq
            if batch.num_rows:
                last_tsl = max(last_tsl, int(batch.column("ts_local")[-1].as_py()))
        if last_seq is None:
            return
        self.bid_heap = [-p for p in self.bids]
        heapq.heapify(self.bid_heap)
        self.ask_heap = list(self.asks)
        heapq.heapify(self.ask_heap)
        self.book_u = last_seq
        self.chain_start = False
        self.last_tsl = last_tsl


# --------------------------------------------------------------------------- public API
def import_binance_hftbacktest(
    files: Sequence[Path],
    *,
    catalog: Catalog,
    venue: str,
    symbol: str,
    tick: Decimal | None = None,
    lot: Decimal | None = None,
    maker_fee: Decimal | None = None,
    taker_fee: Decimal | None = None,
    clock_offset_ns: int | None = None,
    min_feed_latency_ns: int = 1_000_000,
    description: str = "",
    replay_buffered_diffs: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import hftbacktest Binance recordings of one venue and symbol into ``catalog``.

    Parameters
    ----------
    files:
        Recording files (``.gz`` or plain), processed in the given order as one
        continuous stream.
    catalog:
        Target catalog. Created (``synthetic=False``) when it has no ``catalog.json``
        yet; otherwise a note describing this import is appended to its notes. When
        the catalog already holds ``venue``/``symbol`` the import is *appended* (new
        parts): its data must start after the data already there (an overlapping or
        earlier range is refused, naming both ranges), the instrument must agree (its
        tick, lot and fees are kept unless given), the clock offset of the earlier
        import is reused unless given, and the book continues from the catalog's last
        state, so a day file that continues the stream without a new snapshot works.
    venue:
        Venue name in the catalog, e.g. ``"binance_spot"`` or ``"binance_usdm"``.
    symbol:
        ``BASE/QUOTE``; messages naming another symbol (``s``) are refused.
    tick, lot:
        Price and quantity increments; inferred from the largest number of
        significant decimals in the data when not given.
    maker_fee, taker_fee:
        Fee rates; default to Binance's base tier for the detected market
        (:data:`DEFAULT_FEES`).
    clock_offset_ns:
        Added to every receive time. Estimated when None (see the module docstring).
    min_feed_latency_ns:
        The smallest feed latency the estimated offset leaves (default 1 ms); also
        the assumed latency of messages without an exchange time.
    description:
        Catalog description when the catalog is created.
    replay_buffered_diffs:
        Re-apply diffs received before a snapshot line that are newer than the
        snapshot (Binance's sync procedure, default). False drops them (strict file
        order: the recordings then show one gap after each snapshot).

    Returns
    -------
    ImportReport
        Counts, the clock offset used, feed latency and the time range.

    Raises
    ------
    DataError
        A malformed line (naming file and line; nothing of this venue is written then),
        mixed spot/USD-M input, a range that overlaps (or precedes) the data already
        present for ``venue``/``symbol``, prices finer than a given tick, or a synthetic
        catalog.

    ``progress`` is told ``(bytes done, bytes in all)`` of the input over both passes.
    """
    t0 = time.perf_counter()
    paths = [Path(f) for f in files]
    if not paths:
        raise DataError("no input files given")
    if min_feed_latency_ns < 0:
        # it is also the latency given to messages without an exchange time
        raise ValueError(f"min_feed_latency_ns must be >= 0, got {min_feed_latency_ns}")
    base, quote = parse_symbol(symbol)
    code = f"{base}{quote}".upper()
    held = existing_stream(catalog, venue, symbol)
    info = held.info
    prior = held.instrument
    prior_range = held.range
    reused = False
    total_bytes = sum(file_size(p) for p in paths)

    def on_pass(first: bool) -> Callable[[int], None] | None:
        if progress is None:
            return None
        done_before = 0 if first else total_bytes
        return lambda n: progress(done_before + n, 2 * total_bytes)

    # pass 1: validate everything and measure, before anything is written
    sc = _scan(paths, code, on_pass(True))
    if sc.usdm_marks and sc.spot_marks:
        raise DataError(
            f"{paths[0]}: the files mix spot diffs (no 'pu') and USD-M messages "
            "(with 'pu'/'E'); import each venue separately"
        )
    market: Market = "usdm" if sc.usdm_marks else "spot"
    if prior is not None:
        kind = "perpetual" if market == "usdm" else "spot"
        if prior.market != kind:
            raise DataError(
                f"{paths[0]}: {kind} data, but {catalog.root} holds {venue} {symbol} as "
                f"{prior.market}; import it under another venue name"
            )
        check_same_instrument(catalog, prior, tick, lot, maker_fee, taker_fee)
        tick = prior.tick
        lot = lot if lot is not None else prior.lot
        maker_fee = prior.maker_fee
        taker_fee = prior.taker_fee
        if clock_offset_ns is None and info is not None:
            clock_offset_ns = info.clock_offsets_ns.get(prior.key)
            reused = clock_offset_ns is not None
    tick_inferred = tick is None and prior is None
    lot_inferred = lot is None and prior is None
    tick_ = Decimal(1).scaleb(-sc.dec.price) if tick is None else tick
    lot_dp = sc.dec.trade_size if sc.dec.trade_size >= 0 else sc.dec.size
    lot_ = Decimal(1).scaleb(-lot_dp) if lot is None else lot
    # A given power-of-ten step is checked against the decimals seen (a price off the
    # tick would be refused on replay); sizes only on trades, book sizes may be finer
    # (see _Decimals). Other steps (0.5) are left to the replay's own grid check.
    for what, step, dp in (("price", tick_, sc.dec.price), ("trade size", lot_, lot_dp)):
        if step <= 0:
            raise DataError(f"{what} step must be positive, got {step}")
        norm = step.normalize().as_tuple()
        if norm.digits == (1,) and isinstance(norm.exponent, int) and dp > -norm.exponent:
            raise DataError(f"{paths[0]}: {what}s have {dp} decimals, finer than the given {step}")
    fees = DEFAULT_FEES[market]
    maker = fees[0] if maker_fee is None else maker_fee
    taker = fees[1] if taker_fee is None else taker_fee
    estimated = clock_offset_ns is None
    if clock_offset_ns is None:
        offset = 0 if sc.min_lag is None else min_feed_latency_ns - sc.min_lag
    else:
        offset = clock_offset_ns
    if sc.first_recv is not None and sc.last_recv is not None:
        check_new_range(
            catalog, venue, symbol, prior_range, sc.first_recv + offset, sc.last_recv + offset
        )

    report = ImportReport(
        venue=venue,
        symbol=symbol,
        market=market,
        files=[str(p) for p in paths],
        catalog=str(catalog.root),
        catalog_created=info is None,
        appended=prior is not None,
        clock_offset_reused=reused,
        tick=tick_,
        lot=lot_,
        tick_inferred=tick_inferred,
        lot_inferred=lot_inferred,
        maker_fee=maker,
        taker_fee=taker,
        clock_offset_ns=offset,
        clock_offset_estimated=estimated and sc.min_lag is not None,
        min_feed_latency_ns=min_feed_latency_ns,
        replay_buffered_diffs=replay_buffered_diffs,
    )
    with rollback_on_failure(catalog, [(venue, symbol)]):
        if info is None:
            info = CatalogInfo(
                synthetic=False,
                description=description
                or "Real Binance L2 recordings (hftbacktest collector format)",
                created_by=_CREATED_BY,
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
                    min_qty=lot_,
                    maker_fee=maker,
                    taker_fee=taker,
                    market="perpetual" if market == "usdm" else "spot",
                )
            )

        # pass 2: stream into the catalog. Should something still fail here (I/O, an
        # interrupt), what this import wrote is removed: a re-run finds the catalog as it was.
        book_w = catalog.writer(venue, symbol, "book")
        trade_w = catalog.writer(venue, symbol, "trades")
        bk = Columns(book_w, book=True)
        tr = Columns(trade_w, book=False)
        imp = _Importer(report, bk, tr, offset, replay_buffered_diffs)
        if prior is not None:
            imp.resume(catalog, venue, symbol)
        try:
            for _path, _n, recv, msg in _read(paths, code, None, on_pass(False)):
                report.lines_read += 1
                if isinstance(msg, _Depth):
                    imp.diff(recv, msg)
                elif isinstance(msg, _Ticker):
                    imp.ticker(recv, msg)
                elif isinstance(msg, _Trade):
                    imp.trade(recv, msg)
                elif isinstance(msg, _Envelope):
                    imp.snapshot(recv, msg)
                else:
                    report.ignored_lines += 1
            imp.finish()
            bk.flush()
            tr.flush()
        finally:
            book_w.close()
            trade_w.close()
        report.book_rows = book_w.rows
        report.trade_rows = trade_w.rows
        if len(imp.latency):
            lat = np.frombuffer(imp.latency, np.int64) / 1e6
            report.feed_latency_min_ms = float(lat.min())
            report.feed_latency_p50_ms = float(np.percentile(lat, 50))
            report.feed_latency_p99_ms = float(np.percentile(lat, 99))
        report.elapsed_s = time.perf_counter() - t0

        how = (
            f"estimated so that the minimum feed latency is {min_feed_latency_ns / 1e6:g} ms"
            if report.clock_offset_estimated
            else "given"
        )
        note = (
            f"{venue} {symbol}: imported by {_CREATED_BY} from "
            f"{', '.join(p.name for p in paths)} (Binance {market}, hftbacktest collector "
            f"format); clock offset {offset / 1e6:+.3f} ms "
            f"({how}); "
            f"{report.gaps} gap(s), {report.repairs} level(s) repaired from bookTicker"
        )
        info = catalog.info()
        info.notes.append(note)
        info.clock_offsets_ns[f"{venue}:{symbol}"] = offset
        catalog.create(info)
    return report


def replay_check(files: Sequence[Path], catalog: Catalog, venue: str, symbol: str) -> CheckResult:
    """Replay a venue's book from the catalog and compare it with the raw bookTickers.

    The book is rebuilt through the real replay path (:class:`~arbsim.data.feed.BookCursor`
    applying each message to an :class:`~arbsim.core.book.OrderBook`, counting crossed
    states). For every update id ``X`` carried both by a book message (``seq``) and by a
    bookTicker in ``files`` (``u``), the rebuilt best bid and ask are compared with the
    bookTicker's ``b`` and ``a`` as the replay shows them at the moment both are known:
    after the message that brought the book to ``X`` and, when the bookTicker arrived
    later, after the repairs made up to its arrival while the book was still at ``X``
    (which can only come from that same bookTicker: bookTickers arrive in ``u`` order).
    Repairs from newer bookTickers are not part of state ``X`` and are left out.

    The bookTickers' arrival on the catalog's clock is the receive time plus the clock
    offset the import used, recovered from the catalog as the smallest
    ``ts_local - receive time`` over the diffs (exact for every diff applied when it
    arrived; others were applied later, never earlier).

    Parameters
    ----------
    files:
        The recording files the catalog was imported from (all or some of them).
    catalog, venue, symbol:
        The imported stream.

    Returns
    -------
    CheckResult
        Shared ids, matches, ``match_ratio``, crossed states and the first mismatches.
    """
    base, quote = parse_symbol(symbol)
    code = f"{base}{quote}".upper()
    tickers: dict[int, tuple[int, float, float]] = {}
    diff_recv: dict[int, int] = {}
    for _p, _n, recv, msg in _read([Path(f) for f in files], code):
        if isinstance(msg, _Ticker):
            tickers[msg.u] = (recv, msg.b, msg.a)
        elif isinstance(msg, _Depth):
            diff_recv.setdefault(msg.u, recv)
    inst = catalog.instrument(venue, symbol)
    book = OrderBook(venue, symbol, inst.tick)
    cur = BookCursor(catalog, venue, symbol, book.scale)
    messages = 0
    offset: int | None = None
    # per shared id, the states the replay showed: (ts_local, is_repair, bid, ask)
    states: dict[int, list[tuple[int, bool, float | None, float | None]]] = {}
    while cur.next():
        cur.apply(book, FLAG_SNAPSHOT_BEGIN)
        messages += 1
        seq = cur.seq
        repair = bool(cur.flags & FLAG_REPAIR)
        if not repair and not cur.flags & FLAG_SNAPSHOT_BEGIN:
            recv_ = diff_recv.get(seq)
            if recv_ is not None and (offset is None or cur.ts_local - recv_ < offset):
                offset = cur.ts_local - recv_
        if seq in tickers:
            states.setdefault(seq, []).append((cur.ts_local, repair, book.best_bid, book.best_ask))
    shared = matches = 0
    mismatches: list[str] = []
    for seq, seen in states.items():
        first = next((i for i, s in enumerate(seen) if not s[1]), None)
        if first is None:  # only repairs carry this id: no message brought the book there
            continue
        recv, bid, ask = tickers[seq]
        when = max(seen[first][0], recv + (offset or 0))
        state = seen[first]
        for s in seen[first + 1 :]:
            if s[0] > when or not s[1]:
                break
            state = s
        shared += 1
        if state[2] == bid and state[3] == ask:
            matches += 1
        elif len(mismatches) < 5:
            mismatches.append(
                f"update id {seq}: replayed book {state[2]}/{state[3]}, bookTicker {bid}/{ask}"
            )
    return CheckResult(
        venue=venue,
        symbol=symbol,
        messages=messages,
        crossed_states=book.crossed_updates,
        book_tickers=len(tickers),
        shared_ids=shared,
        matches=matches,
        match_ratio=matches / shared if shared else 0.0,
        mismatches=mismatches,
    )
