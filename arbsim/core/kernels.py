"""Compiled kernels of the replay hot path (numba, compiled on first use and cached).

:func:`apply_messages` puts a run of catalog messages on an :class:`~arbsim.core.book.
OrderBook`'s arrays with no Python per level or per message. It does exactly what
:meth:`OrderBook.apply_hinted` does for a message whose rows all fall inside the book's
grid (the common case: the same scatter, the same best bid / ask tracking, the same
crossed-book count) and stops *before* any message it does not handle — a snapshot, a
row outside the grid (a regrid or an overflow level) — which the caller then applies with
the Python book, so both paths leave the book in the same state, message for message
(``tests/core/test_kernels.py`` compares them on random message sequences).

Messages are described by one int64 row each (``meta``), columns ``M_*`` (defined
with the book, so that reading a catalog does not import numba): the row
bounds of near bids ``[start, bid_far)``, far bids ``[bid_far, split)``, near asks
``[split, ask_far)`` and far asks ``[ask_far, end)`` in the batch's ``ticks`` / ``sizes``
(ordered as :class:`arbsim.data.feed.BookCursor` orders them), the near rows' hints
(tick range and best live tick per side) and the message's flags.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
from numba import njit
from numba import typeof as _typeof

from arbsim.core.book import (
    M_ASK_FAR,
    M_ASK_HI,
    M_ASK_LO,
    M_ASK_MAX,
    M_ASK_MIN,
    M_ASK_TOP,
    M_BID_FAR,
    M_BID_HI,
    M_BID_LO,
    M_BID_MAX,
    M_BID_MIN,
    M_BID_TOP,
    M_END,
    M_FLAGS,
    M_SPLIT,
    M_START,
    MAX_SPAN,
    META_COLS,
    NO_ASK,
    NO_BID,
    use_scan,
)

HALF_SPAN = MAX_SPAN // 2
#: numba's type of a Python value (what its dispatcher keys compiled code by)
typeof: Callable[[Any], Any] = _typeof
F = TypeVar("F", bound=Callable[..., Any])


def _jit(fn: F) -> F:
    """``numba.njit``, cached on disk (next to this file, or numba's user-wide cache
    directory); where neither can be written the kernel is compiled in each process.

    These kernels keep the GIL: the replay's loop calls them tens of thousands of times
    for microseconds each, and letting the GIL go at each call would hand it to a
    read-ahead thread and wait to get it back (measured: 1.5 -> 8.7 µs a call)."""
    try:
        return cast(F, njit(cache=True)(fn))
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return cast(F, njit()(fn))


def _jit_nogil(fn: F) -> F:
    """:func:`_jit` for the kernels of the read-ahead threads (a batch at a time): they
    let the GIL go while they work, so the replay's loop runs meanwhile."""
    try:
        return cast(F, njit(cache=True, nogil=True)(fn))
    except RuntimeError:
        return cast(F, njit(nogil=True)(fn))


@_jit
def _scan_bid(arr: npt.NDArray[np.float64], i: int) -> int:  # pragma: no cover - compiled
    """Highest non-empty index strictly below ``i`` (or -1)."""
    j = i - 1
    while j >= 0:
        if arr[j] != 0.0:
            return j
        j -= 1
    return -1


@_jit
def _scan_ask(arr: npt.NDArray[np.float64], i: int) -> int:  # pragma: no cover - compiled
    """Lowest non-empty index strictly above ``i`` (or -1)."""
    j = i + 1
    n = arr.shape[0]
    while j < n:
        if arr[j] != 0.0:
            return j
        j += 1
    return -1


@_jit
def apply_messages(  # pragma: no cover - compiled; tested against the Python book
    bids: npt.NDArray[np.float64],
    asks: npt.NDArray[np.float64],
    ticks: npt.NDArray[np.int64],
    sizes: npt.NDArray[np.float64],
    meta: npt.NDArray[np.int64],
    i: int,
    j: int,
    base: int,
    bb: int,
    ba: int,
    snapshot_flag: int,
    over: npt.NDArray[np.int64],
    over_sizes: npt.NDArray[np.float64],
    undo: npt.NDArray[np.int64],
    undo_sizes: npt.NDArray[np.float64],
) -> tuple[int, int, int, int, int, int]:
    """Apply messages ``i .. j-1`` of ``meta`` to the grid arrays ``bids`` / ``asks``
    (base tick ``base``, best indices ``bb`` / ``ba``, -1 for none) until one needs the
    Python book.

    A far row outside the grid and further than ``MAX_SPAN / 2`` from the touch belongs
    in the book's overflow dicts, which the kernel cannot reach: it is written to
    ``over`` (side, tick) / ``over_sizes`` for the caller to apply in order. A far row
    outside the grid but near the touch needs a regrid: the kernel undoes what it wrote
    of that message (``undo`` / ``undo_sizes`` log each write) and stops before it. So
    does a message with more rows than ``undo`` holds, or more overflow rows than
    ``over`` has room left for.

    Returns ``(k, crossed, bb, ba, n_over, open_)``: messages ``i .. k-1`` were applied
    (message ``k`` was not touched and needs the Python book, unless ``k == j``),
    ``crossed`` of them left the book crossed, the new best indices, the overflow rows
    written, and ``open_`` = 1 when the last applied message left a grid side empty: its
    crossed check needs the overflow (the caller does it, after applying ``over``).
    """
    cap = bids.shape[0]
    room = over_sizes.shape[0]
    crossed = 0
    n_over = 0
    k = i
    while k < j:
        s = meta[k, M_START]
        bf = meta[k, M_BID_FAR]
        m = meta[k, M_SPLIT]
        af = meta[k, M_ASK_FAR]
        e = meta[k, M_END]
        if meta[k, M_FLAGS] & snapshot_flag:
            break
        if bf > s and (meta[k, M_BID_LO] - base < 0 or meta[k, M_BID_HI] - base >= cap):
            break
        if af > m and (meta[k, M_ASK_LO] - base < 0 or meta[k, M_ASK_HI] - base >= cap):
            break
        if e - s > undo.shape[0] or n_over + (m - bf) + (e - af) > room:
            break
        bb0 = bb
        ba0 = ba
        n_over0 = n_over
        n_undo = 0
        # near rows: one scatter per side, then the best index from the hint
        if bf > s:
            for r in range(s, bf):
                x = ticks[r] - base
                undo[n_undo] = x
                undo_sizes[n_undo] = bids[x]
                n_undo += 1
                bids[x] = sizes[r]
            top = meta[k, M_BID_TOP]
            if top != NO_BID and top - base > bb:
                bb = top - base
            if bb >= 0 and bids[bb] == 0.0:
                bb = _scan_bid(bids, bb)
        if af > m:
            for r in range(m, af):
                x = ticks[r] - base
                undo[n_undo] = -1 - x
                undo_sizes[n_undo] = asks[x]
                n_undo += 1
                asks[x] = sizes[r]
            top = meta[k, M_ASK_TOP]
            if top != NO_ASK and (ba < 0 or top - base < ba):
                ba = top - base
            if ba >= 0 and asks[ba] == 0.0:
                ba = _scan_ask(asks, ba)
        # far rows, one by one (as OrderBook._apply_far does)
        regrid = False
        for r in range(bf, e):
            if m <= r < af:
                continue
            is_bid = r < m
            t = ticks[r]
            x = t - base
            sz = sizes[r]
            if x < 0 or x >= cap:
                # where the book is (OrderBook._ref_tick): near it, the grid would move
                if bb >= 0 and ba >= 0:
                    ref = (base + ba + base + bb) // 2
                elif bb >= 0:
                    ref = base + bb
                elif ba >= 0:
                    ref = base + ba
                else:
                    ref = t
                if -HALF_SPAN <= t - ref <= HALF_SPAN:
                    regrid = True
                    break
                over[n_over, 0] = 1 if is_bid else -1
                over[n_over, 1] = t
                over_sizes[n_over] = sz
                n_over += 1
                continue
            if is_bid:
                undo[n_undo] = x
                undo_sizes[n_undo] = bids[x]
                n_undo += 1
                bids[x] = sz
                if sz > 0.0:
                    if x > bb:
                        bb = x
                elif x == bb:
                    bb = _scan_bid(bids, x)
            else:
                undo[n_undo] = -1 - x
                undo_sizes[n_undo] = asks[x]
                n_undo += 1
                asks[x] = sz
                if sz > 0.0:
                    if ba < 0 or x < ba:
                        ba = x
                elif x == ba:
                    ba = _scan_ask(asks, x)
        if regrid:
            # leave this message to the Python book: undo it, newest write first
            for u in range(n_undo - 1, -1, -1):
                x = undo[u]
                if x >= 0:
                    bids[x] = undo_sizes[u]
                else:
                    asks[-1 - x] = undo_sizes[u]
            bb = bb0
            ba = ba0
            n_over = n_over0
            break
        k += 1
        if bb < 0 or ba < 0:
            return k, crossed, bb, ba, n_over, 1
        if bb >= ba:
            crossed += 1
    return k, crossed, bb, ba, n_over, 0


@_jit_nogil
def partition_messages(  # pragma: no cover - compiled; tested against the NumPy split
    starts: npt.NDArray[np.int64],
    n: int,
    side: npt.NDArray[np.int8],
    ticks: npt.NDArray[np.int64],
    sizes: npt.NDArray[np.float64],
    flag_rows: npt.NDArray[np.uint8],
    median: int,
    far_ticks: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Order a batch's rows ``0 .. n-1`` message by message (message ``k`` is rows
    ``starts[k] ..`` up to the next start) as :func:`arbsim.data.feed._split` does with
    NumPy: near bids, far bids, near asks, far asks, each in row order (a row is far
    when its tick is more than ``far_ticks`` from ``median``). Returns the ordered
    ticks and sizes and one ``meta`` row per message (the ``M_*`` columns: row bounds,
    the near rows' tick range and best live tick per side, the flags of all its rows
    or-ed, the tick range of all its rows per side); a side without rows has the range
    ``(NO_ASK, NO_BID)``."""
    m = starts.shape[0]
    out_t = np.empty(n, np.int64)
    out_s = np.empty(n, np.float64)
    meta = np.empty((m, META_COLS), np.int64)
    for k in range(m):
        s = starts[k]
        e = starts[k + 1] if k + 1 < m else n
        nb = 0
        nbf = 0
        naf = 0
        fl = 0
        bmin = NO_ASK
        bmax = NO_BID
        amin = NO_ASK
        amax = NO_BID
        for r in range(s, e):
            t = ticks[r]
            far = abs(t - median) > far_ticks
            if side[r] == 1:
                nb += 1
                if far:
                    nbf += 1
                bmin = min(bmin, t)
                bmax = max(bmax, t)
            else:
                if far:
                    naf += 1
                amin = min(amin, t)
                amax = max(amax, t)
            fl |= flag_rows[r]
        split = s + nb
        bid_far = split - nbf
        ask_far = e - naf
        q_bn = s
        q_bf = bid_far
        q_an = split
        q_af = ask_far
        blo = NO_ASK
        bhi = NO_BID
        btop = NO_BID
        alo = NO_ASK
        ahi = NO_BID
        atop = NO_ASK
        for r in range(s, e):
            t = ticks[r]
            far = abs(t - median) > far_ticks
            if side[r] == 1:
                if far:
                    q = q_bf
                    q_bf += 1
                else:
                    q = q_bn
                    q_bn += 1
                    blo = min(blo, t)
                    bhi = max(bhi, t)
                    if sizes[r] > 0.0 and t > btop:
                        btop = t
            elif far:
                q = q_af
                q_af += 1
            else:
                q = q_an
                q_an += 1
                alo = min(alo, t)
                ahi = max(ahi, t)
                if sizes[r] > 0.0 and t < atop:
                    atop = t
            out_t[q] = t
            out_s[q] = sizes[r]
        meta[k, M_START] = s
        meta[k, M_BID_FAR] = bid_far
        meta[k, M_SPLIT] = split
        meta[k, M_ASK_FAR] = ask_far
        meta[k, M_END] = e
        meta[k, M_BID_LO] = blo
        meta[k, M_BID_HI] = bhi
        meta[k, M_BID_TOP] = btop
        meta[k, M_ASK_LO] = alo
        meta[k, M_ASK_HI] = ahi
        meta[k, M_ASK_TOP] = atop
        meta[k, M_FLAGS] = fl
        meta[k, M_BID_MIN] = bmin
        meta[k, M_BID_MAX] = bmax
        meta[k, M_ASK_MIN] = amin
        meta[k, M_ASK_MAX] = amax
    return out_t, out_s, meta


#: the row checks of :func:`check_rows`, in the order their errors are reported
CHECKS = ("ts_order", "feed_latency", "side", "price", "size", "trade_size", "off_grid")


@_jit_nogil
def check_rows(  # pragma: no cover - compiled; tested against the NumPy checks
    tsl: npt.NDArray[np.int64],
    tsx: npt.NDArray[np.int64],
    side: npt.NDArray[np.int8],
    price: npt.NDArray[np.float64],
    size: npt.NDArray[np.float64],
    inv: float,
    per_unit: int,
    tick_f: float,
    trades: bool,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """A batch's rows checked in one pass, as ``_BatchSource._validate`` does with NumPy:
    returns each row's tick (``rint(price * inv)``) and, per check of :data:`CHECKS`,
    the first row that fails it (-1: none). ``per_unit`` > 0: the tick's integer
    inverse (a tick's price is ``tick / per_unit``), else ``tick * tick_f``."""
    n = tsl.shape[0]
    ticks = np.zeros(n, np.int64)
    bad = np.full(len(CHECKS), -1, np.int64)
    for r in range(n):
        if r > 0 and tsl[r] < tsl[r - 1] and bad[0] < 0:
            bad[0] = r
        if tsx[r] > tsl[r] and bad[1] < 0:
            bad[1] = r
        if side[r] != 1 and side[r] != -1 and bad[2] < 0:
            bad[2] = r
        p = price[r]
        if not (np.isfinite(p) and p > 0.0):
            if bad[3] < 0:
                bad[3] = r
            continue
        z = size[r]
        if not (np.isfinite(z) and z >= 0.0) and bad[4] < 0:
            bad[4] = r
        if trades and z == 0.0 and bad[5] < 0:
            bad[5] = r
        t = np.int64(np.rint(p * inv))
        ticks[r] = t
        back = t / per_unit if per_unit > 0 else t * tick_f
        if abs(back - p) > 1e-9 * max(1.0, abs(p)) + 1e-6 * tick_f and bad[6] < 0:
            bad[6] = r
    return ticks, bad


@_jit
def nonzero_indices(arr: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:  # pragma: no cover
    """``arr.nonzero()[0]`` (indices of the non-zero elements, ascending), in one pass
    over a sparse grid without NumPy's temporaries (a book's regrid scans its grid)."""
    n = 0
    for x in arr:
        if x != 0.0:
            n += 1
    out = np.empty(n, np.int64)
    j = 0
    for i in range(arr.shape[0]):
        if arr[i] != 0.0:
            out[j] = i
            j += 1
    return out


# a book's regrid scans its grid with it from now on in this process
use_scan(nonzero_indices)


def direct(kernel: F, *example: Any) -> F:
    """``kernel``'s compiled code for the argument types of ``example``, called without
    numba's dispatch: the dispatcher types every argument on every call, about 2 µs of
    the 3.3 µs a call of :func:`apply_messages` (15 arguments) costs, once per replayed
    message. The caller must pass exactly those types (the same dtypes, ranks and
    C-contiguous layout, writable, and Python ints): they are not checked. Falls back to
    the dispatcher where numba keeps no such entry point."""
    kernel(*example)
    sig = tuple(typeof(a) for a in example)
    overloads: dict[Any, Any] = getattr(kernel, "overloads", {})
    entry = getattr(overloads.get(sig), "entry_point", None)
    return cast(F, entry) if callable(entry) else kernel


def _compile() -> Callable[..., tuple[int, int, int, int, int, int]]:
    z = np.zeros(4)
    return direct(
        apply_messages,
        z, z.copy(), np.zeros(0, np.int64), z[:0].copy(), np.zeros((0, META_COLS), np.int64),
        0, 0, 0, -1, -1, 1, np.zeros((1, 2), np.int64), np.zeros(1),
        np.zeros(1, np.int64), np.zeros(1),
    )  # fmt: skip


#: :func:`apply_messages` as the replay calls it (see :func:`direct`), set by :func:`warm_up`
apply_direct: Callable[..., tuple[int, int, int, int, int, int]] | None = None


def warm_up() -> Callable[..., tuple[int, int, int, int, int, int]]:
    """Compile (or load from the cache) every kernel now, not in the first message;
    returns :data:`apply_direct`."""
    global apply_direct
    if apply_direct is None:
        apply_direct = _compile()
        nonzero_indices(np.zeros(4))
        e, f = np.zeros(0, np.int64), np.zeros(0)
        partition_messages(e, 0, np.zeros(0, np.int8), e, f, np.zeros(0, np.uint8), 0, 1)
        check_rows(e, e, np.zeros(0, np.int8), f, f, 1.0, 1, 1.0, False)
    return apply_direct
