"""Import a cryptofeed raw capture of Gate.io spot (entry point
``arbsim.importers: cryptofeed.gateio``; ``arbsim data import cryptofeed PREFIX --venue
gateio``).

cryptofeed's raw-data recorder writes, for one feed handler, files sharing a prefix:

* ``PREFIX.0``: REST answers the feed made while starting (``<url> -> <receipt s>:
  <body>``; for Gate ``GET /spot/currency_pairs``, whose ``precision`` /
  ``amount_precision`` / ``fee`` give each pair's tick, lot and fee) and the recorder's
  ``configuration: {channel: [symbols]}``;
* ``PREFIX.http.*``: REST answers while running, here the ``order_book?with_id=true``
  snapshots the book sync asked for;
* ``PREFIX.ws.*``: one WebSocket connection each: ``<url> <-> <s>`` (opened),
  ``<url> <- <s>: <frame>`` (sent) and ``<receipt s>: <frame>`` (received).

The REST snapshots and the received frames are merged by receipt time and replayed, pair
by pair, through the live Gate adapter's own code: :func:`exchanges.gateio.ws.decode`,
the ``spot.order_book_update`` sync machine of :mod:`exchanges.gateio.booksync`
(:class:`~exchanges.live.booksync.DiffBookSync`: buffer diffs, load the snapshot, drop
``u <= id``, the first kept diff must straddle ``id + 1``, afterwards only ``U > local +
1`` is a gap), :func:`exchanges.live.stream.apply_sync_events` onto an
:class:`~arbsim.core.book.OrderBook` (a crossed book is a resync, as live) and
:func:`exchanges.gateio.stream.public_trade`. The rows are written by
:class:`~arbsim.data.capture.MarketCapture`, the writer of ``arbsim record``: the same
flags (snapshot rows, ``FLAG_GAP`` on the snapshot that follows a gap), ``ts_exchange``
from the message (``t`` of a diff, ``update`` of a snapshot, ``create_time_ms`` of a
trade), ``ts_local`` the recorder's receipt time. A gap (or a crossed book) forgets the
book until the next recorded snapshot, exactly as the live adapter forgets it until the
snapshot it fetches.

A line that cannot be read (not one of the three forms, a frame or body that does not
decode, a price off the pair's tick) is refused naming the file and line; whatever the
import had written is removed (:func:`~arbsim.data.importers.common.rollback_on_failure`).
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.errors import DataError, MalformedMessage
from arbsim.core.model import Instrument
from arbsim.data.capture import MarketCapture
from arbsim.data.catalog import Catalog
from arbsim.data.importers.common import (
    check_new_range,
    existing_stream,
    file_size,
    iso,
    rollback_on_failure,
)
from arbsim.data.importers.plugin import ImporterPlugin
from exchanges.gateio import booksync, ws
from exchanges.gateio.stream import public_trade
from exchanges.gateio.symbols import from_native, symbols_from_currency_pairs, to_native
from exchanges.live.booksync import BookChanges, BookSnapshot, DiffBookSync, ResyncNeeded
from exchanges.live.stream import apply_sync_events
from exchanges.live.symbols import VenueSymbolInfo

__all__ = ["CryptofeedReport", "PairChain", "import_cryptofeed", "plugin"]

VENUE = "gateio"
_S = Decimal(1_000_000_000)
_BOOK_PATH = "/spot/order_book"
_PAIRS_PATH = "/spot/currency_pairs"
_CREATED_BY = __name__
_DEFAULT_FEE = Decimal("0.002")  # Gate's base spot tier, when no currency_pairs was recorded
_MAX_IDS = 10_000


@dataclass(slots=True)
class _Line:
    """A usable line of the capture: a REST snapshot or a received WebSocket frame."""

    receipt_ns: int
    path: Path
    line: int
    pair: str = ""
    snapshot: ws.OrderBookSnapshot | None = None
    frame: bytes = b""

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def _receipt_ns(text: str, path: Path, n: int) -> int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0:
        raise DataError(f"{path}:{n}: receipt time {text.strip()[:40]!r} is not seconds")
    return int(value * _S)


def _pair_of(url: str) -> str:
    for part in url.partition("?")[2].split("&"):
        key, _, value = part.partition("=")
        if key == "currency_pair":
            return value
    return ""


def _http_lines(path: Path) -> Iterator[_Line]:
    """REST snapshots of an ``http`` file (other REST answers are skipped)."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            url, sep, rest = raw.partition(b" -> ")
            stamp, sep2, body = rest.partition(b": ")
            if not sep or not sep2:
                raise DataError(f"{path}:{n}: expected '<url> -> <seconds>: <body>'")
            if _BOOK_PATH.encode() not in url:
                continue
            pair = _pair_of(url.decode(errors="replace"))
            if not pair:
                raise DataError(f"{path}:{n}: order book answer without currency_pair")
            try:
                snapshot = ws.decode_order_book_snapshot(body)
            except MalformedMessage as e:
                raise DataError(f"{path}:{n}: {pair} order book: {e}") from None
            yield _Line(_receipt_ns(stamp.decode(), path, n), path, n, pair, snapshot=snapshot)


def _ws_lines(path: Path) -> Iterator[_Line]:
    """Received frames of a ``ws`` file (connection and sent lines are skipped)."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            if raw.startswith((b"wss://", b"ws://")):
                continue  # " <-> " opened, " <- " sent by the recorder
            stamp, sep, frame = raw.partition(b": ")
            if not sep:
                raise DataError(f"{path}:{n}: expected '<seconds>: <frame>'")
            yield _Line(_receipt_ns(stamp.decode(), path, n), path, n, frame=frame.rstrip(b"\n"))


def _numbered(files: list[Path]) -> list[Path]:
    def key(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in p.name.split(".") if x.isdigit())

    return sorted(files, key=key)


def capture_files(prefix: Path) -> tuple[Path | None, list[Path], list[Path]]:
    """The start-up file, the ``http`` files and the ``ws`` files of a capture."""
    folder = prefix.parent
    name = prefix.name
    if not folder.is_dir():
        raise DataError(f"{prefix}: no such directory {folder}")
    start = folder / f"{name}.0"
    http = _numbered(list(folder.glob(f"{name}.http.*")))
    sockets = _numbered(list(folder.glob(f"{name}.ws.*")))
    if not sockets:
        raise DataError(f"{prefix}: no WebSocket capture ({name}.ws.*) in {folder}")
    return (start if start.is_file() else None), http, sockets


def _startup(path: Path | None) -> tuple[dict[str, VenueSymbolInfo], list[str]]:
    """Pairs of the ``currency_pairs`` answer and the recorded L2 symbols of ``PREFIX.0``."""
    pairs: dict[str, VenueSymbolInfo] = {}
    books: list[str] = []
    if path is None:
        return pairs, books
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if raw.startswith(b"configuration: "):
                try:
                    config = json.loads(raw.partition(b": ")[2])
                    books = [s.replace("-", "_") for s in config.get("l2_book", [])]
                except (ValueError, AttributeError) as e:
                    raise DataError(f"{path}:{n}: unreadable configuration ({e})") from None
                continue
            url, sep, rest = raw.partition(b" -> ")
            if not sep or _PAIRS_PATH.encode() not in url:
                continue
            body = rest.partition(b": ")[2]
            try:
                pairs = {p.native_symbol: p for p in symbols_from_currency_pairs(body)}
            except MalformedMessage as e:
                raise DataError(f"{path}:{n}: currency_pairs answer: {e}") from None
    return pairs, books


# --------------------------------------------------------------------------- report
class PairChain(msgspec.Struct, kw_only=True):
    """How one pair's book was synchronised."""

    pair: str
    symbol: str
    snapshots: int = 0
    snapshot_ids: list[int] = msgspec.field(default_factory=list)
    diffs: int = 0
    applied: int = 0
    #: per snapshot a diff continued: (snapshot id, U, u of the first diff applied on it)
    continued: list[tuple[int, int, int]] = msgspec.field(default_factory=list)
    last_id: int | None = None
    gaps: int = 0
    gap_at: list[str] = msgspec.field(default_factory=list)
    crossed: int = 0
    trades: int = 0

    @property
    def continues_snapshot(self) -> bool:
        """Every snapshot's first applied diff straddles its id + 1."""
        return all(first <= sid + 1 <= last for sid, first, last in self.continued)


class CryptofeedReport(msgspec.Struct, kw_only=True):
    """What :func:`import_cryptofeed` did."""

    venue: str
    prefix: str
    files: list[str]
    catalog: str
    catalog_created: bool
    pairs: list[PairChain]
    #: REST snapshots and received frames replayed (connection and sent lines not counted)
    lines_read: int = 0
    frames_ignored: int = 0
    book_rows: int = 0
    trade_rows: int = 0
    clamped_ts_exchange: int = 0
    max_clock_ahead_ms: float = 0.0
    instruments_from: str = ""
    first_ts_local: int | None = None
    last_ts_local: int | None = None
    elapsed_s: float = 0.0

    def lines(self) -> list[str]:
        out = [
            f"{self.venue}: cryptofeed capture {self.prefix} ({len(self.files)} files, "
            f"{self.lines_read:,} snapshots and received frames; {self.frames_ignored:,} "
            "frames of other channels "
            "or acks not used)",
            f"  catalog {self.catalog} ({'created' if self.catalog_created else 'added to'}); "
            f"instruments {self.instruments_from}",
            f"  rows written: book {self.book_rows:,}, trades {self.trade_rows:,}; "
            f"{self.clamped_ts_exchange} exchange time(s) after the receipt time clamped "
            f"(at most {self.max_clock_ahead_ms:.3f} ms ahead)",
        ]
        for p in self.pairs:
            first = ", ".join(f"{a}..{b}" for _, a, b in p.continued) or "-"
            out.append(
                f"  {p.symbol:<12} snapshot id {p.snapshot_ids or '-'}; diffs {p.diffs}, "
                f"applied {p.applied} (first after a snapshot {first}: "
                f"{'continues' if p.continues_snapshot else 'does NOT continue'} the snapshot), "
                f"last id {p.last_id}; gaps {p.gaps}; crossed {p.crossed}; trades {p.trades}"
            )
            out += [f"    gap: {g}" for g in p.gap_at]
        if self.first_ts_local is not None and self.last_ts_local is not None:
            out.append(f"  ts_local range: {iso(self.first_ts_local)} -> {iso(self.last_ts_local)}")
        out.append(f"  took {self.elapsed_s:.2f} s")
        return out


# --------------------------------------------------------------------------- import
def _native(symbol: str) -> str:
    try:
        return to_native(symbol)
    except ValueError as e:
        raise DataError(str(e)) from None


def _decimals(text: str) -> int:
    frac = text.partition(".")[2]
    return len(frac.rstrip("0")) if frac else 0


@dataclass(slots=True)
class _Scan:
    first: int | None = None
    last: int | None = None
    price_dp: dict[str, int] = field(default_factory=dict)
    size_dp: dict[str, int] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)


def _merged(http: list[Path], sockets: list[Path]) -> Iterator[_Line]:
    # each file is in receipt order; a snapshot and a frame received at once: the
    # snapshot first (the frame is then checked against it, as live)
    streams = [_http_lines(p) for p in http] + [_ws_lines(p) for p in sockets]
    return heapq.merge(*streams, key=lambda x: (x.receipt_ns, x.snapshot is None))


def _decode(line: _Line) -> ws.GateWsMessage:
    try:
        return ws.decode(line.frame)
    except MalformedMessage as e:
        raise DataError(f"{line.where()}: {e}") from None


def _scan(http: list[Path], sockets: list[Path]) -> _Scan:
    """Pass 1: every line decodes; the time range and the decimals seen per pair."""
    sc = _Scan()
    for line in _merged(http, sockets):
        sc.first = line.receipt_ns if sc.first is None else sc.first
        sc.last = line.receipt_ns
        levels: list[tuple[str, str]] = []
        pair = line.pair
        if line.snapshot is not None:
            levels = line.snapshot.bids + line.snapshot.asks
        else:
            msg = _decode(line)
            if isinstance(msg, ws.Push) and isinstance(msg.result, ws.OrderBookUpdate):
                pair = msg.result.symbol
                levels = msg.result.bids + msg.result.asks
            elif isinstance(msg, ws.Push) and isinstance(msg.result, ws.Trade):
                pair = msg.result.currency_pair
                levels = [(msg.result.price, msg.result.amount)]
        if pair:
            sc.seen.add(pair)
        for p, q in levels:
            sc.price_dp[pair] = max(sc.price_dp.get(pair, 0), _decimals(p))
            sc.size_dp[pair] = max(sc.size_dp.get(pair, 0), _decimals(q))
    return sc


def _instrument(venue: str, native: str, known: VenueSymbolInfo | None, sc: _Scan) -> Instrument:
    symbol = from_native(native)
    base, _, quote = symbol.partition("/")
    data_tick = Decimal(1).scaleb(-sc.price_dp.get(native, 0))
    if known is not None:
        # Resting orders placed before the venue made a pair's precision coarser keep
        # their finer prices (ZKS_ETH: precision 6, a bid at 0.00001063): the book's grid
        # is the finer of the two.
        return Instrument(
            venue=venue,
            symbol=symbol,
            base=base,
            quote=quote,
            tick=min(known.tick, data_tick),
            lot=known.step,
            min_qty=known.min_qty or known.step,
            min_notional=known.min_notional,
            maker_fee=known.maker_fee,
            taker_fee=known.taker_fee,
        )
    lot = Decimal(1).scaleb(-sc.size_dp.get(native, 0))
    return Instrument(
        venue=venue,
        symbol=symbol,
        base=base,
        quote=quote,
        tick=data_tick,
        lot=lot,
        min_qty=lot,
        maker_fee=_DEFAULT_FEE,
        taker_fee=_DEFAULT_FEE,
    )


class _Replay:
    """Pass 2: the live adapter's sync per pair, rows through the recorder's writer."""

    def __init__(self, venue: str, capture: MarketCapture, pairs: dict[str, Instrument]):
        self.venue = venue
        self.capture = capture
        self.books = {n: OrderBook(venue, i.symbol, i.tick) for n, i in pairs.items()}
        self.syncs: dict[str, DiffBookSync] = {
            n: booksync.new_order_book_update_sync(n, i.tick) for n, i in pairs.items()
        }
        self.chains = {n: PairChain(pair=n, symbol=i.symbol) for n, i in pairs.items()}
        self.symbols = {n: i.symbol for n, i in pairs.items()}
        self.ignored = 0
        self.pending_first: set[str] = set()
        # last id -> first id of the diffs seen since a pair's snapshot was asked for:
        # which diff continued the snapshot (it may have been buffered before it)
        self.ids: dict[str, dict[int, int]] = {n: {} for n in pairs}

    def line(self, line: _Line) -> None:
        if line.snapshot is not None:
            if line.pair not in self.syncs:
                return
            chain = self.chains[line.pair]
            chain.snapshots += 1
            chain.snapshot_ids.append(line.snapshot.id)
            self.pending_first.add(line.pair)
            self._sync(line, line.pair, lambda s: s.on_snapshot(_snap(line)))
            return
        msg = _decode(line)
        if isinstance(msg, ws.Push) and isinstance(msg.result, ws.OrderBookUpdate):
            update = msg.result
            if update.symbol not in self.syncs:
                return
            self.chains[update.symbol].diffs += 1
            diff = booksync.diff_from_push(update)
            if update.symbol in self.pending_first or not self.syncs[update.symbol].synced:
                seen = self.ids[update.symbol]
                seen[diff.last_id] = diff.first_id
                if len(seen) > _MAX_IDS:
                    del seen[next(iter(seen))]
            self._sync(line, update.symbol, lambda s: s.on_diff(diff))
        elif isinstance(msg, ws.Push) and isinstance(msg.result, ws.Trade):
            pair = msg.result.currency_pair
            if pair not in self.syncs:
                return
            try:
                trade = public_trade(msg.result, self.symbols, line.receipt_ns)
            except MalformedMessage as e:
                raise DataError(f"{line.where()}: {e}") from None
            self.capture.trade(self.venue, trade)
            self.chains[pair].trades += 1
        else:
            self.ignored += 1

    def _sync(
        self,
        line: _Line,
        pair: str,
        step: Callable[[DiffBookSync], list[BookChanges | ResyncNeeded]],
    ) -> None:
        sync = self.syncs[pair]
        chain = self.chains[pair]
        try:
            events = step(sync)
        except MalformedMessage as e:
            raise DataError(f"{line.where()}: {e}") from None
        book = self.books[pair]
        for event in events:
            if isinstance(event, BookChanges) and not event.replace:
                chain.applied += 1
                if pair in self.pending_first:
                    self.pending_first.discard(pair)
                    first = self.ids[pair].get(event.update_id)
                    if first is not None:
                        chain.continued.append((chain.snapshot_ids[-1], first, event.update_id))
                    self.ids[pair].clear()
                chain.last_id = event.update_id
            elif isinstance(event, BookChanges):
                chain.last_id = event.update_id
        applied, resyncs = apply_sync_events(
            book, events, line.receipt_ns, lambda u: self.capture.update(self.venue, u)
        )
        if not resyncs and applied and book.is_crossed:
            chain.crossed += 1
            resyncs = [ResyncNeeded(reason=f"{pair}: crossed book", action="snapshot")]
        if resyncs:
            # as the live stream: forget the book until the next snapshot
            chain.gaps += 1
            chain.gap_at.append(f"{line.where()}: {resyncs[0].reason}")
            sync.reset()
            book.clear()


def _snap(line: _Line) -> BookSnapshot:
    assert line.snapshot is not None
    return booksync.snapshot_from_rest(line.snapshot)


def import_cryptofeed(
    prefix: Path,
    *,
    catalog: Catalog,
    venue: str = VENUE,
    symbols: Sequence[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> CryptofeedReport:
    """Import a cryptofeed Gate.io spot capture (``PREFIX.0``, ``PREFIX.http.*``,
    ``PREFIX.ws.*``) into ``catalog`` (see the module docstring).

    Parameters
    ----------
    prefix:
        The capture's path without the suffixes, e.g. ``rec/cryptofeed_GATEIO``.
    catalog:
        Created when new; streams it holds already are appended to (their data must
        end before the capture starts; an overlap is refused naming both ranges).
    venue:
        The venue name in the catalog.
    symbols:
        ``BASE/QUOTE`` pairs to import; empty: every pair of the capture.

    Raises
    ------
    DataError
        A line that cannot be read (file and line named), a pair the capture does not
        hold, or a range that overlaps the catalog's data; nothing is left written.
    """
    t0 = time.perf_counter()
    start, http, sockets = capture_files(Path(prefix))
    known, configured = _startup(start)
    files = [p for p in (start, *http, *sockets) if p is not None]
    total = sum(file_size(p) for p in files)
    if progress is not None:
        progress(0, total)
    sc = _scan(http, sockets)
    if progress is not None:
        progress(total // 2, total)
    recorded = configured or sorted(sc.seen)
    natives = [_native(s) for s in symbols] or sorted(recorded)
    missing = [n for n in natives if n not in sc.seen and n not in recorded]
    if missing:
        raise DataError(
            f"{prefix}: the capture holds no {', '.join(from_native(m) for m in missing)} "
            f"(it holds {', '.join(from_native(n) for n in sorted(sc.seen)) or 'nothing'})"
        )
    instruments = {n: _instrument(venue, n, known.get(n), sc) for n in natives}
    held = {n: existing_stream(catalog, venue, i.symbol) for n, i in instruments.items()}
    if sc.first is not None and sc.last is not None:
        for n, h in held.items():
            check_new_range(catalog, venue, instruments[n].symbol, h.range, sc.first, sc.last)
            if h.instrument is not None:
                instruments[n] = h.instrument  # the catalog's stream keeps its instrument
    created = not (catalog.root / "catalog.json").exists()
    report = CryptofeedReport(
        venue=venue,
        prefix=str(prefix),
        files=[str(p) for p in files],
        catalog=str(catalog.root),
        catalog_created=created,
        pairs=[],
        instruments_from=(
            "from the recorded GET /spot/currency_pairs answer (precision, amount_precision, fee)"
            if known
            else "inferred from the data's decimals (no currency_pairs answer recorded)"
        ),
    )
    streams = [(venue, i.symbol) for i in instruments.values()]
    with rollback_on_failure(catalog, streams):
        capture = MarketCapture(catalog.root, source=f"cryptofeed capture {Path(prefix).name}")
        try:
            for n, inst in instruments.items():
                if held[n].instrument is None:
                    capture.instrument(inst)
            replay = _Replay(venue, capture, instruments)
            for line in _merged(http, sockets):
                report.lines_read += 1
                replay.line(line)
        finally:
            capture.close()
        info = catalog.info()
        info.notes.append(
            f"{venue}: {', '.join(i.symbol for i in instruments.values())} imported by "
            f"{_CREATED_BY} from {Path(prefix).name}.* (cryptofeed raw capture, synced "
            "by the live Gate adapter's book sync)"
        )
        catalog.create(info)
    stats = capture.stats
    report.pairs = [replay.chains[n] for n in natives]
    report.frames_ignored = replay.ignored
    report.book_rows = capture.rows("book")
    report.trade_rows = capture.rows("trades")
    report.clamped_ts_exchange = stats.clamped_rows
    report.max_clock_ahead_ms = stats.max_clock_ahead_ms
    report.first_ts_local, report.last_ts_local = sc.first, sc.last
    if progress is not None:
        progress(total, total)
    report.elapsed_s = time.perf_counter() - t0
    return report


def _run(
    source: Path,
    *,
    catalog: Catalog,
    venue: str,
    symbols: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
) -> CryptofeedReport:
    return import_cryptofeed(
        source, catalog=catalog, venue=venue, symbols=symbols, progress=progress
    )


def plugin() -> ImporterPlugin:
    """The ``arbsim.importers: cryptofeed.gateio`` entry point."""
    return ImporterPlugin(
        format="cryptofeed",
        venue=VENUE,
        summary="cryptofeed raw capture of Gate.io spot (REST with_id snapshots + "
        "spot.order_book_update + spot.trades)",
        run=_run,
    )
