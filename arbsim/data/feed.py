"""Message cursors over catalog streams and their k-way merge.

A cursor walks one ``(venue, symbol, kind)`` stream one *venue message* at a time
(all book rows sharing ``ts_local`` and ``seq`` form one message), reading record
batches lazily so memory stays bounded by the batch size, whatever the file size.
Each batch is validated once, vectorised: the error names the file and what was
expected.

A cursor is keyed either by ``ts_local`` (what a strategy sees) or by
``ts_exchange`` (what the simulated exchange sees); :func:`merge` interleaves any
number of cursors by key, which is how the backtest engine replays several venues.
"""

from __future__ import annotations

import abc
import bisect
import contextlib
import heapq
import queue
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from arbsim.core.book import (
    M_ASK_FAR,
    M_ASK_MAX,
    M_ASK_MIN,
    M_ASK_TOP,
    M_BID_FAR,
    M_BID_LO,
    M_BID_MAX,
    M_BID_MIN,
    M_END,
    M_FLAGS,
    M_SPLIT,
    M_START,
    MAX_SPAN,
    META_COLS,
    NO_ASK,
    NO_BID,
    OrderBook,
    TickScale,
)
from arbsim.core.errors import DataError
from arbsim.core.model import Side, Trade
from arbsim.data.catalog import Catalog, Kind, numpy_column

Key = Literal["local", "exchange"]
#: rows further than this from a batch's median tick are applied one by one (they are
#: few, and a vectorised scatter over them would force the book's slow path)
FAR_TICKS = MAX_SPAN // 2
_NEVER = 2**63 - 1
#: rows of one kernel call's overflow buffer, and of its undo log (a longer message
#: takes the Python book); the buffers are the cursor's own (see BookCursor._buffers)
_OVER_ROWS = 4096
_UNDO_ROWS = 4096


def _kernel() -> Callable[..., tuple[int, int, int, int, int, int]]:
    """The compiled book kernel, imported on first use: numba is heavy to import and
    only the replay's fast path needs it (not the importers, not the exchange
    simulator's feed)."""
    global _apply_messages
    from arbsim.core.kernels import warm_up

    _apply_messages = warm_up()
    return _apply_messages


_apply_messages: Callable[..., tuple[int, int, int, int, int, int]] | None = None
#: :func:`arbsim.core.kernels.check_rows` once the kernels are in use (see use_kernels)
_check_rows: Callable[..., tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] | None = None


def use_kernels() -> None:
    """Compile (or load from numba's cache) the replay's kernels, and check every batch
    read from now on in this process with the compiled pass (the same errors)."""
    global _check_rows
    from arbsim.core.kernels import check_rows

    _kernel()
    _check_rows = check_rows


class Cursor(Protocol):
    ts: int

    def next(self) -> bool: ...


class _BatchSource:
    """Validated column arrays of one stream, batch by batch."""

    def __init__(
        self,
        catalog: Catalog,
        venue: str,
        symbol: str,
        kind: Kind,
        scale: TickScale,
        batch_size: int,
        seek_ns: int | None = None,
    ):
        self.label = f"{venue} {symbol} {kind}"
        self.files = catalog.files(venue, symbol, kind)
        if not self.files:
            raise DataError(
                f"{catalog.root}: no {kind} files for {venue} {symbol} "
                f"(looked in {catalog.root / venue})"
            )
        seek = None
        if seek_ns is not None:
            seek = catalog.seek(venue, symbol, kind, seek_ns, batch_size)
        self._it = catalog.batches(venue, symbol, kind, batch_size, seek)
        self.scale = scale
        self.kind = kind
        self._last_ts = -(2**63)

    def read(self) -> tuple[Path, dict[str, npt.NDArray[np.generic]]] | None:
        item = next(self._it, None)
        if item is None:
            return None
        path, batch = item
        cols = {name: numpy_column(batch, name) for name in batch.schema.names}
        # the Parquet reader's scratch memory goes back to the system once the batch is
        # read (Arrow's allocator would keep it: a replay's peak memory, tens of MB)
        pa.default_memory_pool().release_unused()
        self._validate(path, cols)
        return path, cols

    def _validate(self, path: Path, cols: dict[str, npt.NDArray[np.generic]]) -> None:
        tsl = np.asarray(cols["ts_local"], np.int64)
        if len(tsl) and tsl[0] < self._last_ts:
            raise DataError(f"{path}: ts_local goes backwards across batches/files")
        tsx = np.asarray(cols["ts_exchange"], np.int64)
        price = np.asarray(cols["price"], np.float64)
        size = np.asarray(cols["size"], np.float64)
        side = cols["side"]
        trades = self.kind == "trades"
        if _check_rows is not None and side.dtype == np.int8:
            sc = self.scale
            ticks, bad_rows = _check_rows(
                tsl, tsx, side, price, size, sc.inv, sc.per_unit or 0, sc.tick_f, trades
            )
            bad = bad_rows.tolist()
        else:
            ticks, bad = _checks(tsl, tsx, side, price, size, self.scale, trades)
        for row, what in zip(bad[:-1], _CHECK_ERRORS, strict=True):
            if row >= 0:
                raise DataError(f"{path}: {what} (first bad row in batch: {row})")
        if bad[-1] >= 0:
            row = bad[-1]
            raise DataError(
                f"{path}: price {price[row]!r} is not on the instrument tick "
                f"{self.scale.tick} (row {row} of a batch)"
            )
        cols["ticks"] = ticks
        if len(tsl):
            self._last_ts = int(tsl[-1])


#: what each check of :func:`_checks` reports (the last, off-grid, names the price)
_CHECK_ERRORS = (
    "ts_local is not non-decreasing",
    "ts_exchange is after ts_local (negative feed latency)",
    "side must be 1 (bid/buy) or -1 (ask/sell)",
    "price must be finite and > 0",
    "size must be finite and >= 0",
    "trade size must be > 0",
)


def _checks(
    tsl: npt.NDArray[np.int64],
    tsx: npt.NDArray[np.int64],
    side: npt.NDArray[np.generic],
    price: npt.NDArray[np.float64],
    size: npt.NDArray[np.float64],
    scale: TickScale,
    trades: bool,
) -> tuple[npt.NDArray[np.int64], list[int]]:
    """A batch's ticks and, per check (those of ``_CHECK_ERRORS``, then off-grid), the
    first row that fails it (-1: none), with NumPy; checks after a failed one are not
    run (only the first failure is reported). :func:`arbsim.core.kernels.check_rows`
    does the same in one compiled pass."""

    def first(mask: npt.NDArray[np.bool_]) -> int:
        return int(np.argmax(mask)) if mask.any() else -1

    bad = [-1] * (len(_CHECK_ERRORS) + 1)
    ticks = np.zeros(len(tsl), np.int64)
    if len(tsl) > 1:
        bad[0] = first(np.concatenate([[False], np.diff(tsl) < 0]))
    bad[1] = first(tsx > tsl)
    bad[2] = first((side != 1) & (side != -1))
    bad[3] = first(~np.isfinite(price) | (price <= 0))
    bad[4] = first(~np.isfinite(size) | (size < 0))
    if trades:
        bad[5] = first(size == 0)
    if max(bad) < 0:
        ticks = scale.to_ticks(price)
        bad[6] = first(scale.off_grid(price, ticks))
    return ticks, bad


Batch = tuple[Path, dict[str, npt.NDArray[np.generic]]]


class _ReadAhead:
    """Reads a stream's batches one or two ahead of its cursors, in a thread of its own.

    Decoding Parquet and validating a batch (pyarrow and NumPy, which let go of the GIL
    while they work) then overlaps with the replay's Python loop instead of stopping it
    at every batch (on the real two-venue set, about a fifth of the replay). One thread per
    stream, in file order; a reading error reaches the cursor at the batch where it
    happened, as if read there. The thread ends at the stream's end, on :meth:`close`, or
    once the stream is no longer referenced."""

    DEPTH = 2

    def __init__(self, read: Callable[[], Batch | None], label: str):
        self._q: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=self.DEPTH)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(
            target=_read_ahead, args=(read, self._q, self._stop), name=f"read {label}", daemon=True
        )
        self._thread.start()
        # a stream dropped without close (a failed run) still ends its thread
        self._finalizer = weakref.finalize(self, self._stop.set)

    def read(self) -> Batch | None:
        if self._done:
            return None
        ok, item = self._q.get()
        if not ok:
            self._done = True
            raise item
        if item is None:
            self._done = True
        return cast(Batch | None, item)

    def close(self) -> None:
        self._stop.set()
        self._done = True
        with contextlib.suppress(queue.Empty):
            while True:
                self._q.get_nowait()
        self._thread.join(timeout=5.0)


def _read_ahead(
    read: Callable[[], Batch | None],
    q: queue.Queue[tuple[bool, Any]],
    stop: threading.Event,
) -> None:
    """The read-ahead thread: each batch (or the error reading it) into ``q``, in order."""

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    while not stop.is_set():
        try:
            item = read()
        except BaseException as e:  # handed to the reader, raised there
            put((False, e))
            return
        if not put((True, item)) or item is None:
            return


def _joined(
    carry: dict[str, npt.NDArray[np.generic]] | None, new: dict[str, npt.NDArray[np.generic]]
) -> dict[str, npt.NDArray[np.generic]]:
    """A batch's columns after the rows carried over from the batch before."""
    return new if carry is None else {k: np.concatenate([carry[k], new[k]]) for k in new}


def _trim(memo: dict[tuple[int, int], tuple[object, _Split]]) -> None:
    """Keep the four newest splits of a stream (a read-ahead thread may add one while a
    cursor trims: the keys are copied first, in one step)."""
    for key in list(memo)[:-4]:
        memo.pop(key, None)


class SharedBatches:
    """One stream's validated batches read once and served to several cursors (the
    exchange-side and the local-side cursor of a replay walk the same file a few
    messages apart). A batch is dropped once every reader has passed it.

    ``seek_ns``: only the stream's state from this ``ts_local`` on matters (a window's
    warm-up): reading starts where :meth:`Catalog.seek` says, not at the first file.
    ``read_ahead``: batches are read in a thread of their own (:class:`_ReadAhead`),
    started at the first read; :meth:`close` ends it."""

    def __init__(
        self,
        catalog: Catalog,
        venue: str,
        symbol: str,
        kind: Kind,
        scale: TickScale,
        batch_size: int = 16_384,
        seek_ns: int | None = None,
        read_ahead: bool = False,
    ):
        self._src = _BatchSource(catalog, venue, symbol, kind, scale, batch_size, seek_ns)
        self._read_ahead = read_ahead
        self._ahead: _ReadAhead | None = None
        self._cache: dict[int, Batch | None] = {}
        self._pos: list[int] = []
        #: batches split into messages, shared by the book cursors (see BookCursor._load)
        self.prepared: dict[tuple[int, int], tuple[object, _Split]] = {}

    def reader(self) -> Callable[[], Batch | None]:
        me = len(self._pos)
        self._pos.append(0)

        def read() -> Batch | None:
            i = self._pos[me]
            if i not in self._cache:
                self._cache[i] = self._next()
            item = self._cache[i]
            self._pos[me] = i + 1
            low = min(self._pos)
            for k in [k for k in self._cache if k < low]:
                del self._cache[k]
            return item

        # book cursors reading the same batches split them into messages once
        read.prepared = self.prepared  # type: ignore[attr-defined]
        return read

    def _next(self) -> Batch | None:
        if not self._read_ahead:
            return self._src.read()
        if self._ahead is None:
            read = self._src.read
            if self._src.kind == "book":
                read = self._splitting(read)
            self._ahead = _ReadAhead(read, self._src.label)
        return self._ahead.read()

    def _splitting(self, read: Callable[[], Batch | None]) -> Callable[[], Batch | None]:
        """``read``, and each batch read split into messages (after the carry of the
        batch before) into :attr:`prepared` too: in the read-ahead thread, so that the
        book cursors find it done. With the kernels in use (:func:`use_kernels`), the
        compiled split."""
        carry: dict[str, npt.NDArray[np.generic]] | None = None
        memo = self.prepared

        def read_and_split() -> Batch | None:
            nonlocal carry
            got = read()
            if got is not None:
                new = got[1]
                cols = _joined(carry, new)
                split = _split(cols, last=False, compiled=_check_rows is not None)
                memo[id(new), 0 if carry is None else len(carry["ts_local"])] = (new, split)
                _trim(memo)
                carry = split.carry
            return got

        return read_and_split

    def close(self) -> None:
        """End the read-ahead thread, if any (the run no longer reads this stream)."""
        if self._ahead is not None:
            self._ahead.close()


class _StreamCursor(abc.ABC):
    """What book and trade cursors share: the batch source, the window end, the key."""

    kind: Kind

    def __init__(
        self,
        catalog: Catalog,
        venue: str,
        symbol: str,
        scale: TickScale,
        key: Key = "local",
        end_ns: int | None = None,
        batch_size: int = 16_384,
        offset_ns: int = 0,
        source: Callable[[], Batch | None] | None = None,
    ):
        """``key``: order by ``ts_local`` or ``ts_exchange``; ``end_ns``: stop before
        this ``ts_local``; ``offset_ns``: shift local times (feed offset); ``source``: a
        :class:`SharedBatches` reader instead of reading the files here."""
        self.venue = venue
        self.symbol = symbol
        self.key = key
        self.scale = scale
        self.offset_ns = offset_ns
        self._read = (
            source or _BatchSource(catalog, venue, symbol, self.kind, scale, batch_size).read
        )
        self._memo: dict[tuple[int, int], tuple[object, _Split]] | None = getattr(
            source, "prepared", None
        )
        self._end = _NEVER if end_ns is None else end_ns
        self._done = False
        self._i = 0
        self._n = 0
        self._key_floor = -(2**63)
        #: called after each batch this cursor loads (a replay venue catches up the
        #: streams it holds back, so shared batches are not kept for them)
        self.on_batch: Callable[[], None] | None = None
        #: the key of the last message passed by :meth:`catch_up` / :meth:`skip_until`
        self.passed_key = -(2**63)
        self.ts = 0
        self.ts_exchange = 0
        self.ts_local = 0
        self._init_state()

    @abc.abstractmethod
    def _init_state(self) -> None:
        """The kind-specific part of a new cursor."""


class BookCursor(_StreamCursor):
    """Walk a book stream message by message; :meth:`apply` puts the message on a book."""

    kind: Kind = "book"

    def _init_state(self) -> None:
        self._carry: dict[str, npt.NDArray[np.generic]] | None = None
        self.seq = 0
        self.flags = 0
        self.levels = 0
        self._ticks: npt.NDArray[np.int64] = np.empty(0, np.int64)
        self._sizes: npt.NDArray[np.float64] = np.empty(0)
        self._starts: list[int] = []
        self._splits: list[int] = []
        self._ends: list[int] = []
        self._tsx: list[int] = []
        self._tsl: list[int] = []
        self._seqs: list[int] = []
        self._flg: list[int] = []
        self._keys: list[int] = []
        self._hint_rows: npt.NDArray[np.int64] = np.empty((0, 6), np.int64)
        self._ranges: list[tuple[int, int, int, int]] = []
        self._meta: npt.NDArray[np.int64] = np.empty((0, META_COLS), np.int64)
        # the kernel's scratch: overflow rows (side, tick) and sizes, undo log and sizes
        self._bufs = (
            np.zeros((_OVER_ROWS, 2), np.int64),
            np.zeros(_OVER_ROWS),
            np.zeros(_UNDO_ROWS, np.int64),
            np.zeros(_UNDO_ROWS),
        )
        self._s = self._m = self._e = 0
        #: batches are split by the compiled kernel (the replay's fast path)
        self.compiled = False

    def _load(self) -> bool:
        while not self._done:
            got = self._read()
            if got is None:
                cols = self._carry
                self._carry = None
                self._done = True
                if cols is None:
                    return False
                split = _split(cols, last=True, compiled=self.compiled)
            else:
                _, new = got
                carry = self._carry
                key = (id(new), 0 if carry is None else len(carry["ts_local"]))
                hit = self._memo.get(key) if self._memo is not None else None
                if hit is not None and hit[0] is new:
                    split = hit[1]
                else:
                    cols = _joined(carry, new)
                    split = _split(cols, last=False, compiled=self.compiled)
                    if self._memo is not None:
                        self._memo[key] = (new, split)
                        _trim(self._memo)
                self._carry = split.carry
            if split.n:
                self._set_batch(split)
                if self._n:
                    if self.on_batch is not None:
                        self.on_batch()
                    return True
        return False

    def _set_batch(self, p: _Split) -> None:
        """Take a split batch as the current one: local times shifted by the feed
        offset, messages from the window end on cut, keys."""
        n = p.n
        tsl = p.tsl
        tsl_list = p.tsl_list
        if self.offset_ns:
            tsl = _shift(tsl, p.tsx, self.offset_ns)
            tsl_list = tsl.tolist()
        keep = tsl < self._end
        k = n
        flags, flg_list, meta = p.flags, p.flg_list, p.meta
        if not keep.all():
            self._done = True
            self._carry = None
            k = int(np.argmin(keep))
            if not k:
                self._n = 0
                self._i = 0
                return
            # the last message kept takes the flags of every row after it in the batch
            flags = p.flags[:k].copy()
            flags[k - 1] = np.bitwise_or.reduce(p.flag_rows[p.starts[k - 1] :])
            flg_list = flags.tolist()
            meta = p.meta[:k].copy()
            meta[:, M_FLAGS] = flags
        tsx = p.tsx[:k]
        if self.key == "exchange":
            keys = np.maximum.accumulate(np.maximum(tsx, self._key_floor))
            self._key_floor = int(keys[-1])
        else:
            keys = tsl[:k]
        self._ticks = p.ticks
        self._sizes = p.sizes
        if k < n:
            self._starts = p.starts_list[:k]
            self._splits = p.splits_list[:k]
            self._ends = p.ends_list[:k]
            self._tsx = p.tsx_list[:k]
            self._tsl = tsl_list[:k]
            self._seqs = p.seqs_list[:k]
            self._bid_far = p.bid_far_list[:k]
            self._ask_far = p.ask_far_list[:k]
            self._hint_rows = p.hints[:k]
            self._ranges = p.ranges_list[:k]
        else:
            self._starts = p.starts_list
            self._splits = p.splits_list
            self._ends = p.ends_list
            self._tsx = p.tsx_list
            self._tsl = tsl_list
            self._seqs = p.seqs_list
            self._bid_far = p.bid_far_list
            self._ask_far = p.ask_far_list
            self._hint_rows = p.hints
            self._ranges = p.ranges_list
        self._flg = flg_list[:k] if k < len(flg_list) else flg_list
        self._keys = keys.tolist()
        self._meta = meta
        self._n = k
        self._i = 0

    def next(self) -> bool:
        """Move to the next message; False at the end of the stream (or of the window)."""
        if self._i >= self._n and not self._load():
            return False
        i = self._i
        self._i = i + 1
        self.ts = self._keys[i]
        self.ts_exchange = self._tsx[i]
        self.ts_local = self._tsl[i]
        self.seq = self._seqs[i]
        self.flags = self._flg[i]
        self._s = self._starts[i]
        self._m = self._splits[i]
        self._e = self._ends[i]
        self.levels = self._e - self._s
        return True

    def _hint(self, i: int) -> tuple[int, int, int, int, int, int]:
        """Message ``i``'s hints (see ``OrderBook.apply_hinted``)."""
        blo, bhi, btop, alo, ahi, atop = self._hint_rows[i].tolist()
        return blo, bhi, btop, alo, ahi, atop

    def apply(self, book: OrderBook, snapshot_flag: int = 1) -> None:
        """Apply the current message to ``book`` (a snapshot-begin message replaces it)."""
        self._apply_at(book, self._i - 1, snapshot_flag)

    def _apply_at(self, book: OrderBook, i: int, snapshot_flag: int) -> None:
        """Apply message ``i`` of the loaded batch with the Python book."""
        s, m, e = self._starts[i], self._splits[i], self._ends[i]
        t, z = self._ticks, self._sizes
        tsx, tsl, seq = self._tsx[i], self._tsl[i], self._seqs[i]
        if self._flg[i] & snapshot_flag:
            book.apply_ticks(t[s:m], z[s:m], t[m:e], z[m:e], tsx, tsl, seq, True)
            return
        bf, af = self._bid_far[i], self._ask_far[i]
        far = None
        if bf != m or af != e:
            far = (t[bf:m].tolist(), z[bf:m].tolist(), t[af:e].tolist(), z[af:e].tolist())
        book.apply_hinted(
            t[s:bf], z[s:bf], t[m:af], z[m:af], self._hint(i), tsx, tsl, seq, False, far
        )

    def apply_fast(self, book: OrderBook, snapshot_flag: int = 1) -> None:
        """:meth:`apply` through the compiled kernel (same result, see
        :mod:`arbsim.core.kernels`)."""
        i = self._i - 1
        if book._initialised:
            k, crossed, bb, ba, n_over, open_ = (_apply_messages or _kernel())(
                book._bids,
                book._asks,
                self._ticks,
                self._sizes,
                self._meta,
                i,
                i + 1,
                book._base,
                book._bb,
                book._ba,
                snapshot_flag,
                *self._bufs,
            )
            if k > i:
                if n_over or open_:
                    self._settle(book, i, k, crossed, bb, ba, n_over, open_)
                    return
                # the common case, inlined: one message on the grid
                book._bb = bb
                book._ba = ba
                book.updates += 1
                book.crossed_updates += crossed
                book.ts_exchange = self.ts_exchange
                book.ts_local = self.ts_local
                book.seq = self.seq
                return
        self._apply_at(book, i, snapshot_flag)

    def _apply_run(self, book: OrderBook, i: int, j: int, snapshot_flag: int) -> None:
        """Apply messages ``i .. j-1`` of the loaded batch: runs the kernel handles in
        compiled code, any other message with the Python book, in order."""
        kernel = _apply_messages or _kernel()
        while i < j:
            if not book._initialised:
                self._apply_at(book, i, snapshot_flag)
                i += 1
                continue
            k, crossed, bb, ba, n_over, open_ = kernel(
                book._bids,
                book._asks,
                self._ticks,
                self._sizes,
                self._meta,
                i,
                j,
                book._base,
                book._bb,
                book._ba,
                snapshot_flag,
                *self._bufs,
            )
            if k > i:
                self._settle(book, i, k, crossed, bb, ba, n_over, open_)
            if k < j and not open_:
                self._apply_at(book, k, snapshot_flag)
                k += 1
            i = k

    def _settle(
        self,
        book: OrderBook,
        i: int,
        k: int,
        crossed: int,
        bb: int,
        ba: int,
        n_over: int,
        open_: int,
    ) -> None:
        """Bring ``book`` up to date with a kernel run that applied messages ``i ..
        k-1``: best indices, overflow rows, counters, the last message's stamps."""
        book._bb = bb
        book._ba = ba
        if n_over:
            ob, oa = book._over_bids, book._over_asks
            for (side, t), sz in zip(
                self._bufs[0][:n_over].tolist(), self._bufs[1][:n_over].tolist(), strict=True
            ):
                d = ob if side > 0 else oa
                if sz > 0.0:
                    d[t] = sz
                else:
                    d.pop(t, None)
        if open_ and book.is_crossed:
            crossed += 1
        book.updates += k - i
        book.crossed_updates += crossed
        last = k - 1
        book.ts_exchange = self._tsx[last]
        book.ts_local = self._tsl[last]
        book.seq = self._seqs[last]

    def catch_up(
        self, book: OrderBook, bound: int, inclusive: bool, snapshot_flag: int = 1
    ) -> bool:
        """Apply the current message and every later one whose key is before ``bound``
        (``inclusive``: at or before it), leaving the first later message current.
        Returns False when the stream ended (no current message left)."""
        if self.ts > bound or (self.ts == bound and not inclusive):
            return True  # nothing to pass
        while True:
            i = self._i - 1
            keys = self._keys
            find = bisect.bisect_right if inclusive else bisect.bisect_left
            j = find(keys, bound, i)
            if j > i:
                self._apply_run(book, i, j, snapshot_flag)
                self.passed_key = keys[j - 1]
            if j < self._n:
                self._i = j
                return BookCursor.next(self)
            self._i = self._n
            if not BookCursor.next(self):
                return False

    def touched(self, snapshot_flag: int = 1) -> tuple[int, int, int, int] | None:
        """The tick range the current message sets on each side, ``(bid_lo, bid_hi, ask_lo,
        ask_hi)`` (``lo > hi``: no row on that side); ``None`` for a message that replaces
        the book (any level may have changed)."""
        if self.flags & snapshot_flag:
            return None
        return self._ranges[self._i - 1]

    def current_levels(
        self,
    ) -> tuple[
        npt.NDArray[np.int64],
        npt.NDArray[np.float64],
        npt.NDArray[np.int64],
        npt.NDArray[np.float64],
    ]:
        """The current message as ``(bid_ticks, bid_sizes, ask_ticks, ask_sizes)``."""
        s, m, e = self._s, self._m, self._e
        return self._ticks[s:m], self._sizes[s:m], self._ticks[m:e], self._sizes[m:e]


class _Split:
    """One batch split into venue messages, ready for any cursor of the stream: what
    does not depend on a cursor's key, feed offset or window end (see ``_split``)."""

    __slots__ = (
        "ask_far_list",
        "bid_far_list",
        "carry",
        "ends_list",
        "flag_rows",
        "flags",
        "flg_list",
        "hints",
        "meta",
        "n",
        "ranges_list",
        "seqs_list",
        "sizes",
        "splits_list",
        "starts",
        "starts_list",
        "ticks",
        "tsl",
        "tsl_list",
        "tsx",
        "tsx_list",
    )
    ticks: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.float64]
    starts: npt.NDArray[np.int64]
    tsl: npt.NDArray[np.int64]
    tsx: npt.NDArray[np.int64]
    flags: npt.NDArray[np.uint8]
    flag_rows: npt.NDArray[np.uint8]
    hints: npt.NDArray[np.int64]
    meta: npt.NDArray[np.int64]
    starts_list: list[int]
    splits_list: list[int]
    ends_list: list[int]
    tsx_list: list[int]
    tsl_list: list[int]
    seqs_list: list[int]
    flg_list: list[int]
    bid_far_list: list[int]
    ask_far_list: list[int]
    ranges_list: list[tuple[int, int, int, int]]

    def __init__(self, carry: dict[str, npt.NDArray[np.generic]] | None) -> None:
        self.carry = carry
        self.n = 0


def _split(cols: dict[str, npt.NDArray[np.generic]], last: bool, compiled: bool = False) -> _Split:
    """Split a batch into venue messages (rows sharing ``ts_local`` and ``seq``). Unless
    ``last``, the final message may continue in the next batch: it is held back as the
    carry. Inside each message: bids before asks, and on each side the rows near the
    batch's prices before the few far-away ones (real venues update levels at silly
    prices too); row order is kept within each group. Near rows go to the book as one
    vectorised scatter, far rows one by one. ``compiled``: the rows are ordered by the
    compiled kernel (the replay's fast path) instead of NumPy, with the same result."""
    tsl_rows = np.asarray(cols["ts_local"], np.int64)
    seq_rows = np.asarray(cols["seq"], np.int64)
    if not len(tsl_rows):
        return _Split(None)
    change = np.flatnonzero((tsl_rows[1:] != tsl_rows[:-1]) | (seq_rows[1:] != seq_rows[:-1])) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    carry = None
    if not last:
        tail = int(starts[-1])
        carry = {k: v[tail:] for k, v in cols.items()}
        starts = starts[:-1]
        if not len(starts):
            return _Split(carry)
        cols = {k: v[:tail] for k, v in cols.items()}
        tsl_rows = tsl_rows[:tail]
        seq_rows = seq_rows[:tail]
    p = _Split(carry)
    n = len(tsl_rows)
    side = np.asarray(cols["side"], np.int8)
    raw_ticks = np.asarray(cols["ticks"], np.int64)
    raw_sizes = np.asarray(cols["size"], np.float64)
    p.flag_rows = np.asarray(cols["flags"], np.uint8)
    median = int(np.median(raw_ticks))
    if compiled:
        from arbsim.core.kernels import partition_messages

        ticks, sizes, meta = partition_messages(
            starts, n, side, raw_ticks, raw_sizes, p.flag_rows, median, FAR_TICKS
        )
    else:
        ticks, sizes, meta = _partition(starts, n, side, raw_ticks, raw_sizes, p.flag_rows, median)
    p.n = len(starts)
    p.ticks = ticks
    p.sizes = sizes
    p.starts = starts
    p.tsl = tsl_rows[starts]
    p.tsx = np.asarray(cols["ts_exchange"], np.int64)[starts]
    p.flags = meta[:, M_FLAGS].astype(np.uint8)
    p.hints = np.ascontiguousarray(meta[:, M_BID_LO : M_ASK_TOP + 1])
    p.meta = meta
    p.starts_list = starts.tolist()
    p.splits_list = meta[:, M_SPLIT].tolist()
    p.ends_list = meta[:, M_END].tolist()
    p.tsx_list = p.tsx.tolist()
    p.tsl_list = p.tsl.tolist()
    p.seqs_list = seq_rows[starts].tolist()
    p.flg_list = p.flags.tolist()
    p.bid_far_list = meta[:, M_BID_FAR].tolist()
    p.ask_far_list = meta[:, M_ASK_FAR].tolist()
    p.ranges_list = list(map(tuple, meta[:, M_BID_MIN:].tolist()))
    return p


def _partition(
    starts: npt.NDArray[np.int64],
    n: int,
    side: npt.NDArray[np.int8],
    raw_ticks: npt.NDArray[np.int64],
    raw_sizes: npt.NDArray[np.float64],
    flag_rows: npt.NDArray[np.uint8],
    median: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """The rows ordered within each message and one ``meta`` row per message (see
    :func:`arbsim.core.kernels.partition_messages`, which does the same compiled)."""
    msg_id = np.zeros(n, np.int64)
    msg_id[starts[1:]] = 1
    msg_id = np.cumsum(msg_id)
    far = np.abs(raw_ticks - median) > FAR_TICKS
    order = np.lexsort((far, -side, msg_id))
    ticks = raw_ticks[order]
    sizes = raw_sizes[order]
    ends = np.concatenate([starts[1:], [n]])
    is_bid = side == 1
    nbids = np.add.reduceat(is_bid.astype(np.int64), starts)
    nbfar = np.add.reduceat((is_bid & far).astype(np.int64), starts)
    nafar = np.add.reduceat((~is_bid & far).astype(np.int64), starts)
    splits = starts + nbids
    bid_far = splits - nbfar
    ask_far = ends - nafar
    meta = np.empty((len(starts), META_COLS), np.int64)
    meta[:, M_START] = starts
    meta[:, M_BID_FAR] = bid_far
    meta[:, M_SPLIT] = splits
    meta[:, M_ASK_FAR] = ask_far
    meta[:, M_END] = ends
    meta[:, M_BID_LO : M_ASK_TOP + 1] = _hint_rows(ticks, sizes, starts, bid_far, splits, ask_far)
    meta[:, M_FLAGS] = np.bitwise_or.reduceat(flag_rows, starts)
    every = _hint_rows(ticks, sizes, starts, splits, splits, ends)
    meta[:, [M_BID_MIN, M_BID_MAX, M_ASK_MIN, M_ASK_MAX]] = every[:, [0, 1, 3, 4]]
    return ticks, sizes, meta


def _hint_rows(
    ticks: npt.NDArray[np.int64],
    sizes: npt.NDArray[np.float64],
    bid_start: npt.NDArray[np.int64],
    bid_end: npt.NDArray[np.int64],
    ask_start: npt.NDArray[np.int64],
    ask_end: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """Per message: tick range and best live tick of each side (see OrderBook.apply_hinted);
    a side with no rows has the range ``(NO_ASK, NO_BID)`` and no best tick.

    Bid rows of message k are ``[bid_start[k], bid_end[k])``, ask rows
    ``[ask_start[k], ask_end[k])``; the four bounds are non-decreasing across messages.
    """
    n = len(bid_start)
    if n == 0:
        return np.empty((0, 6), np.int64)
    # reduceat over [bid | gap | ask | gap] segments; a sentinel row keeps indices valid
    bounds = np.empty(4 * n, np.int64)
    bounds[0::4] = bid_start
    bounds[1::4] = bid_end
    bounds[2::4] = ask_start
    bounds[3::4] = ask_end
    # the sentinel is neutral for each reduction: the last ask segment runs to the end
    live = sizes > 0.0
    hi_t = np.append(np.where(live, ticks, NO_BID), NO_BID)
    lo_t = np.append(np.where(live, ticks, NO_ASK), NO_ASK)
    seg_min = np.minimum.reduceat(np.append(ticks, NO_ASK), bounds)
    seg_max = np.maximum.reduceat(np.append(ticks, NO_BID), bounds)
    top_bid = np.maximum.reduceat(hi_t, bounds)[0::4]
    top_ask = np.minimum.reduceat(lo_t, bounds)[2::4]
    bids, asks = bid_end > bid_start, ask_end > ask_start
    return np.stack(
        [
            np.where(bids, seg_min[0::4], NO_ASK),
            np.where(bids, seg_max[0::4], NO_BID),
            np.where(bids, top_bid, NO_BID),
            np.where(asks, seg_min[2::4], NO_ASK),
            np.where(asks, seg_max[2::4], NO_BID),
            np.where(asks, top_ask, NO_ASK),
        ],
        axis=1,
    ).astype(np.int64)


class TradeCursor(_StreamCursor):
    """Walk a trades stream one trade at a time."""

    kind: Kind = "trades"

    def _init_state(self) -> None:
        self.trade_id = 0
        self.side = 1
        self.price = 0.0
        self.size = 0.0
        self.tick = 0
        # the batch's columns as arrays; as lists (what ``next`` reads) once needed
        self._arrs: tuple[npt.NDArray[np.int64 | np.float64], ...] = ()
        self._cols: tuple[list[Any], ...] | None = None

    def _load(self) -> bool:
        while not self._done:
            got = self._read()
            if got is None:
                self._done = True
                return False
            _, c = got
            tsl = c["ts_local"].astype(np.int64)
            if self.offset_ns:
                tsl = _shift(tsl, c["ts_exchange"].astype(np.int64), self.offset_ns)
            keep = tsl < self._end
            k = len(tsl)
            if not keep.all():
                k = int(np.argmin(keep))
                self._done = True
            if k == 0:
                return False
            tsx = c["ts_exchange"].astype(np.int64)[:k]
            if self.key == "exchange":
                keys = np.maximum.accumulate(np.maximum(tsx, self._key_floor))
                self._key_floor = int(keys[-1])
            else:
                keys = tsl[:k]
            self._arrs = (
                keys,
                tsx,
                tsl[:k],
                c["trade_id"].astype(np.int64)[:k],
                c["price"].astype(np.float64)[:k],
                c["size"].astype(np.float64)[:k],
                c["side"].astype(np.int64)[:k],
                c["ticks"].astype(np.int64)[:k],
            )
            self._cols = None
            self._n = k
            self._i = 0
            if self.on_batch is not None:
                self.on_batch()
            return True
        return False

    def next(self) -> bool:
        if self._i >= self._n and not self._load():
            return False
        i = self._i
        self._i = i + 1
        cols = self._cols
        if cols is None:
            cols = self._cols = tuple(a.tolist() for a in self._arrs)
        keys, tsx, tsl, tid, price, size, side, tick = cols
        self.ts = keys[i]
        self.ts_exchange = tsx[i]
        self.ts_local = tsl[i]
        self.trade_id = tid[i]
        self.price = price[i]
        self.size = size[i]
        self.side = side[i]
        self.tick = tick[i]
        return True

    def skip_until(self, bound: int, inclusive: bool) -> tuple[int, bool]:
        """Pass over the current trade and every later one whose key is before ``bound``
        (``inclusive``: at or before it), leaving the first later trade current. Returns
        how many were passed and whether a current trade is left."""
        if self.ts > bound or (self.ts == bound and not inclusive):
            return 0, True  # nothing to pass
        passed = 0
        side: Literal["left", "right"] = "right" if inclusive else "left"
        while True:
            i = self._i - 1
            keys = self._arrs[0]
            j = i + int(np.searchsorted(keys[i:], bound, side))
            passed += j - i
            if j > i:
                self.passed_key = int(keys[j - 1])
            if j < self._n:
                self._i = j
                return passed, self.step()
            self._i = self._n
            if not self.step():
                return passed, False

    def step(self) -> bool:
        """:meth:`next` read from the batch's arrays: for a cursor that passes trades
        without delivering them (no per-trade lists are made)."""
        if self._i >= self._n and not self._load():
            return False
        i = self._i
        self._i = i + 1
        keys, tsx, tsl, tid, price, size, side, tick = self._arrs
        self.ts = int(keys[i])
        self.ts_exchange = int(tsx[i])
        self.ts_local = int(tsl[i])
        self.trade_id = int(tid[i])
        self.price = float(price[i])
        self.size = float(size[i])
        self.side = int(side[i])
        self.tick = int(tick[i])
        return True

    def trade(self) -> Trade:
        return Trade(
            venue=self.venue,
            symbol=self.symbol,
            ts_exchange=self.ts_exchange,
            ts_local=self.ts_local,
            trade_id=self.trade_id,
            side=Side.BUY if self.side == 1 else Side.SELL,
            price=self.price,
            size=self.size,
        )


def _shift(
    tsl: npt.NDArray[np.int64], tsx: npt.NDArray[np.int64], offset_ns: int
) -> npt.NDArray[np.int64]:
    """Local times moved by ``offset_ns`` (a strategy elsewhere than the recorder), never
    before the exchange time and never out of order."""
    shifted = np.maximum(tsl + offset_ns, tsx)
    return np.maximum.accumulate(shifted)


def merge(cursors: Sequence[Cursor]) -> Iterator[Cursor]:
    """k-way merge: yield the cursor holding the earliest message, then advance it.

    Ties go to the cursor listed first. The consumer handles the yielded cursor's
    current message before asking for the next one.
    """
    heap = [(c.ts, i, c) for i, c in enumerate(cursors) if c.next()]
    heapq.heapify(heap)
    while heap:
        _, i, c = heap[0]
        yield c
        if c.next():
            heapq.heapreplace(heap, (c.ts, i, c))
        else:
            heapq.heappop(heap)
