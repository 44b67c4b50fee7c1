"""L2 order book on a tick grid.

Each side is a NumPy array of sizes indexed by ``price_tick - base``: applying a venue
message is a vectorised scatter, so a deep book (thousands of levels, most updates far
from the touch) costs the same per message as a shallow one. Best bid/ask are tracked
incrementally; a deleted touch is found again with a short backwards/forwards scan.

The grid follows the market: it grows and re-centres around the touch as prices move.
A level further than ``MAX_SPAN / 2`` ticks from the touch (a stray order at a silly
price) is kept in a small overflow dict instead of widening the grid; it comes back
onto the grid if the market gets near it, and is consulted if a grid side empties.

Sizes are floats (DESIGN §7: book processing may use floats); prices are exact tick
integers, converted to float or Decimal on the way out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from arbsim.core.model import BookLevel, Side

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

INITIAL_CAP = 1 << 14
MAX_SPAN = 1 << 19
_SCAN = 256
NO_BID = -(2**62)
NO_ASK = 2**62
# levels given as Python lists (live decoders) stay in Python up to this many per side:
# converting them to arrays costs more than the loop
_LISTS = 64
_SMALL = 6  # messages with at most this many levels per side take the pure-Python path

# The message table of a record batch, one int64 row per venue message, as the compiled
# kernel takes it (arbsim.core.kernels.apply_messages): the row bounds of near bids
# [start, bid_far), far bids [bid_far, split), near asks [split, ask_far), far asks
# [ask_far, end); the near rows' hints (see OrderBook.apply_hinted); the message's flags;
# the tick range of all its rows on each side, far ones too (NO_ASK, NO_BID: none).
M_START, M_BID_FAR, M_SPLIT, M_ASK_FAR, M_END = 0, 1, 2, 3, 4
M_BID_LO, M_BID_HI, M_BID_TOP, M_ASK_LO, M_ASK_HI, M_ASK_TOP = 5, 6, 7, 8, 9, 10
M_FLAGS = 11
M_BID_MIN, M_BID_MAX, M_ASK_MIN, M_ASK_MAX = 12, 13, 14, 15
META_COLS = 16


def _nonzero(arr: F64) -> I64:
    out: I64 = arr.nonzero()[0]
    return out


#: how a regrid finds a grid's levels: NumPy's scan, or the compiled one once the replay
#: has loaded the kernels (:func:`use_scan`; numba is not imported for it elsewhere:
#: live feeds, the exchange simulator, importers)
_scan: Callable[[F64], I64] = _nonzero


def use_scan(scan: Callable[[F64], I64]) -> None:
    """Make every book's regrid find its levels with ``scan`` (same indices as
    ``arr.nonzero()[0]``)."""
    global _scan
    _scan = scan


class TickScale:
    """Exact conversion between prices and integer ticks for one instrument."""

    __slots__ = ("inv", "per_unit", "tick", "tick_f")

    def __init__(self, tick: Decimal):
        if tick <= 0:
            raise ValueError(f"tick must be positive, got {tick}")
        self.tick = tick
        self.tick_f = float(tick)
        inv = Decimal(1) / tick
        # ticks like 0.01 have an integer inverse: dividing by it is exact in float,
        # multiplying by 0.01 is not (6182099 * 0.01 != 61820.99).
        self.per_unit: int | None = int(inv) if inv == inv.to_integral_value() else None
        self.inv = float(inv)

    def to_ticks(self, prices: F64) -> I64:
        return np.rint(prices * self.inv).astype(np.int64)

    def tick_of(self, price: float) -> int:
        return round(price * self.inv)

    def price(self, tick: int) -> float:
        if self.per_unit is not None:
            return tick / self.per_unit
        return tick * self.tick_f

    def decimal(self, tick: int) -> Decimal:
        return (Decimal(tick) * self.tick).quantize(self.tick)

    def off_grid(self, prices: F64, ticks: I64) -> npt.NDArray[np.bool_]:
        """Rows whose price is not on the tick grid (relative tolerance 1e-9 of a tick)."""
        back = ticks / self.per_unit if self.per_unit is not None else ticks * self.tick_f
        return np.abs(back - prices) > 1e-9 * np.maximum(1.0, np.abs(prices)) + 1e-6 * self.tick_f


class OrderBook:
    """An L2 book for one instrument on one venue.

    Attributes
    ----------
    ts_exchange, ts_local:
        Timestamps (ns) of the last applied message.
    seq:
        The venue update id of the last applied message.
    crossed_updates:
        How many applied messages left the book crossed (best bid >= best ask).
    """

    def __init__(self, venue: str, symbol: str, tick: Decimal):
        self.venue = venue
        self.symbol = symbol
        self.scale = TickScale(tick)
        self._cap = INITIAL_CAP
        self._base = 0
        self._bids: F64 = np.zeros(self._cap)
        self._asks: F64 = np.zeros(self._cap)
        self._bb = -1  # index of best bid in the grid, -1 when none
        self._ba = -1  # index of best ask in the grid, -1 when none
        self._over_bids: dict[int, float] = {}
        self._over_asks: dict[int, float] = {}
        self._initialised = False
        self.ts_exchange = 0
        self.ts_local = 0
        self.seq = 0
        self.updates = 0
        self.crossed_updates = 0

    # ------------------------------------------------------------------ queries
    @property
    def best_bid(self) -> float | None:
        t = self.best_bid_tick
        return None if t is None else self.scale.price(t)

    @property
    def best_ask(self) -> float | None:
        t = self.best_ask_tick
        return None if t is None else self.scale.price(t)

    @property
    def best_bid_tick(self) -> int | None:
        if self._bb >= 0:
            return self._base + self._bb
        return max(self._over_bids) if self._over_bids else None

    @property
    def best_ask_tick(self) -> int | None:
        if self._ba >= 0:
            return self._base + self._ba
        return min(self._over_asks) if self._over_asks else None

    @property
    def best_bid_size(self) -> float:
        if self._bb >= 0:
            return float(self._bids[self._bb])
        t = self.best_bid_tick
        return self._over_bids[t] if t is not None else 0.0

    @property
    def best_ask_size(self) -> float:
        if self._ba >= 0:
            return float(self._asks[self._ba])
        t = self.best_ask_tick
        return self._over_asks[t] if t is not None else 0.0

    @property
    def top(self) -> tuple[int | None, int | None, float, float]:
        """``(best_bid_tick, best_ask_tick, best_bid_size, best_ask_size)`` in one call."""
        bb, ba = self._bb, self._ba
        if bb >= 0 and ba >= 0:
            base = self._base
            return base + bb, base + ba, float(self._bids[bb]), float(self._asks[ba])
        return self.best_bid_tick, self.best_ask_tick, self.best_bid_size, self.best_ask_size

    @property
    def mid(self) -> float | None:
        b, a = self.best_bid, self.best_ask
        return None if b is None or a is None else (a + b) / 2.0

    @property
    def is_crossed(self) -> bool:
        b, a = self.best_bid_tick, self.best_ask_tick
        return b is not None and a is not None and b >= a

    def age_ns(self, now_ns: int) -> int:
        """How old the book is at ``now_ns`` (time since the last applied message)."""
        return now_ns - self.ts_local

    def size_at(self, side: Side, tick: int) -> float:
        i = tick - self._base
        if 0 <= i < self._cap:
            return float((self._bids if side > 0 else self._asks)[i])
        over = self._over_bids if side > 0 else self._over_asks
        return over.get(tick, 0.0)

    def depth(self, side: Side) -> int:
        """Number of non-empty levels on a side."""
        arr, over = (self._bids, self._over_bids) if side > 0 else (self._asks, self._over_asks)
        return int(np.count_nonzero(arr)) + len(over)

    def levels(self, side: Side, n: int) -> list[tuple[int, float]]:
        """Up to ``n`` best levels of a side as ``(tick, size)``, best first."""
        out: list[tuple[int, float]] = []
        if side > 0:
            i = self._bb
            while i >= 0 and len(out) < n:
                lo = max(0, i - _SCAN * 4 + 1)
                seg = self._bids[lo : i + 1]
                nz = np.flatnonzero(seg)[::-1]
                for j in nz[: n - len(out)].tolist():
                    out.append((self._base + lo + j, float(seg[j])))
                i = lo - 1
            if len(out) < n and self._over_bids:
                for t in sorted(self._over_bids, reverse=True)[: n - len(out)]:
                    out.append((t, self._over_bids[t]))
        else:
            i = self._ba
            while 0 <= i < self._cap and len(out) < n:
                hi = min(self._cap, i + _SCAN * 4)
                seg = self._asks[i:hi]
                nz = np.flatnonzero(seg)
                for j in nz[: n - len(out)].tolist():
                    out.append((self._base + i + j, float(seg[j])))
                i = hi
                if i >= self._cap:
                    break
            if len(out) < n and self._over_asks:
                for t in sorted(self._over_asks)[: n - len(out)]:
                    out.append((t, self._over_asks[t]))
        return out

    def bids(self, n: int = 10) -> list[BookLevel]:
        return [BookLevel(self.scale.price(t), s) for t, s in self.levels(Side.BUY, n)]

    def asks(self, n: int = 10) -> list[BookLevel]:
        return [BookLevel(self.scale.price(t), s) for t, s in self.levels(Side.SELL, n)]

    def walk(
        self, taker_side: Side, qty: float, max_levels: int = 200
    ) -> tuple[float, float, float]:
        """Take ``qty`` from the book as a taker on ``taker_side``.

        Returns ``(filled, avg_price, worst_price)``; ``filled`` < ``qty`` when the
        displayed depth (up to ``max_levels``) is not enough. Zeros when the side is empty.
        """
        book_side = taker_side.opposite
        filled = 0.0
        notional = 0.0
        worst = 0.0
        for t, s in self.levels(book_side, max_levels):
            take = min(s, qty - filled)
            p = self.scale.price(t)
            filled += take
            notional += take * p
            worst = p
            if filled >= qty - 1e-15:
                break
        return filled, (notional / filled if filled else 0.0), worst

    def slippage_bps(self, taker_side: Side, qty: float) -> float | None:
        """Expected slippage of a taker of ``qty`` against the touch, in basis points."""
        filled, avg, _ = self.walk(taker_side, qty)
        touch = self.best_ask if taker_side is Side.BUY else self.best_bid
        if not filled or touch is None:
            return None
        return (avg - touch) / touch * 1e4 * int(taker_side)

    # ------------------------------------------------------------------ updates
    def clear(self) -> None:
        self._bids[:] = 0.0
        self._asks[:] = 0.0
        self._bb = self._ba = -1
        self._over_bids.clear()
        self._over_asks.clear()

    def release(self) -> None:
        """Give the grid's memory back: the book is empty and new afterwards (a replay
        drops its exchange-side books this way once it stops)."""
        self._cap = INITIAL_CAP
        self._base = 0
        self._bids = np.zeros(self._cap)
        self._asks = np.zeros(self._cap)
        self._bb = self._ba = -1
        self._over_bids.clear()
        self._over_asks.clear()
        self._initialised = False

    def apply(
        self,
        bid_prices: F64 | list[float],
        bid_sizes: F64 | list[float],
        ask_prices: F64 | list[float],
        ask_sizes: F64 | list[float],
        *,
        ts_exchange: int,
        ts_local: int,
        seq: int = 0,
        snapshot: bool = False,
    ) -> None:
        """Apply one venue message given as float prices (absolute sizes, 0 deletes)."""
        if (
            self._initialised
            and not snapshot
            and len(bid_prices) <= _LISTS
            and len(ask_prices) <= _LISTS
        ):
            # a live feed's typical message: a few levels, handled without NumPy
            inv = self.scale.inv
            if len(bid_prices):
                self._set_bids(zip([round(p * inv) for p in bid_prices], bid_sizes, strict=True))
            if len(ask_prices):
                self._set_asks(zip([round(p * inv) for p in ask_prices], ask_sizes, strict=True))
            self._stamp(ts_exchange, ts_local, seq)
            return
        bp = np.asarray(bid_prices, dtype=np.float64)
        ap = np.asarray(ask_prices, dtype=np.float64)
        self.apply_ticks(
            self.scale.to_ticks(bp),
            np.asarray(bid_sizes, dtype=np.float64),
            self.scale.to_ticks(ap),
            np.asarray(ask_sizes, dtype=np.float64),
            ts_exchange,
            ts_local,
            seq,
            snapshot,
        )

    def apply_pairs(
        self,
        bids: Sequence[tuple[float, float]],
        asks: Sequence[tuple[float, float]],
        *,
        ts_exchange: int,
        ts_local: int,
        seq: int = 0,
        snapshot: bool = False,
    ) -> None:
        """:meth:`apply` for levels given as ``(price, size)`` pairs, as decoders produce."""
        if self._initialised and not snapshot and len(bids) <= _LISTS and len(asks) <= _LISTS:
            inv = self.scale.inv
            if bids:
                self._set_bids([(round(p * inv), s) for p, s in bids])
            if asks:
                self._set_asks([(round(p * inv), s) for p, s in asks])
            self._stamp(ts_exchange, ts_local, seq)
            return
        self.apply(
            [p for p, _ in bids],
            [s for _, s in bids],
            [p for p, _ in asks],
            [s for _, s in asks],
            ts_exchange=ts_exchange,
            ts_local=ts_local,
            seq=seq,
            snapshot=snapshot,
        )

    def apply_ticks(
        self,
        bid_ticks: I64,
        bid_sizes: F64,
        ask_ticks: I64,
        ask_sizes: F64,
        ts_exchange: int,
        ts_local: int,
        seq: int,
        snapshot: bool,
    ) -> None:
        """Apply one venue message on the tick grid. ``snapshot`` replaces the book."""
        if snapshot:
            self.clear()
        if not self._initialised:
            self._centre(bid_ticks, ask_ticks)
        if len(bid_ticks):
            self._apply_bids(bid_ticks, bid_sizes)
        if len(ask_ticks):
            self._apply_asks(ask_ticks, ask_sizes)
        self._stamp(ts_exchange, ts_local, seq)

    def apply_hinted(
        self,
        bid_ticks: I64,
        bid_sizes: F64,
        ask_ticks: I64,
        ask_sizes: F64,
        hints: tuple[int, int, int, int, int, int],
        ts_exchange: int,
        ts_local: int,
        seq: int,
        snapshot: bool,
        far: tuple[list[int], list[float], list[int], list[float]] | None = None,
    ) -> None:
        """:meth:`apply_ticks` with per-message facts precomputed for a whole batch.

        ``hints`` is ``(bid_lo, bid_hi, bid_top, ask_lo, ask_hi, ask_top)``: the tick
        range of each side's rows and the best tick among rows with size > 0
        (``NO_BID`` / ``NO_ASK`` when there is none). With them a message costs one
        scatter per side plus integer comparisons; when a side falls outside the grid
        the general path takes over. ``far`` holds the message's rows far from the
        rest (bid ticks, bid sizes, ask ticks, ask sizes), applied one by one after.
        """
        if snapshot or not self._initialised:
            self.apply_ticks(
                bid_ticks, bid_sizes, ask_ticks, ask_sizes, ts_exchange, ts_local, seq, snapshot
            )
            return
        blo, bhi, btop, alo, ahi, atop = hints
        base = self._base
        cap = self._cap
        if len(bid_ticks):
            if blo - base < 0 or bhi - base >= cap:
                self._apply_partly_outside(Side.BUY, bid_ticks, bid_sizes)
            else:
                arr = self._bids
                arr[bid_ticks - base] = bid_sizes
                bb = self._bb
                if btop != NO_BID and btop - base > bb:
                    bb = btop - base
                if bb >= 0 and arr[bb] == 0.0:
                    bb = self._scan_bid(bb)
                self._bb = bb
            base = self._base
            cap = self._cap
        if len(ask_ticks):
            if alo - base < 0 or ahi - base >= cap:
                self._apply_partly_outside(Side.SELL, ask_ticks, ask_sizes)
            else:
                arr = self._asks
                arr[ask_ticks - base] = ask_sizes
                ba = self._ba
                if atop != NO_ASK and (ba < 0 or atop - base < ba):
                    ba = atop - base
                if ba >= 0 and arr[ba] == 0.0:
                    ba = self._scan_ask(ba)
                self._ba = ba
        if far is not None:
            self._apply_far(far)
        self._stamp(ts_exchange, ts_local, seq)

    def _stamp(self, ts_exchange: int, ts_local: int, seq: int) -> None:
        """Record a message as applied; count it when it left the book crossed."""
        self.ts_exchange = ts_exchange
        self.ts_local = ts_local
        self.seq = seq
        self.updates += 1
        if self._bb >= 0 and self._ba >= 0:
            if self._bb >= self._ba:
                self.crossed_updates += 1
        elif self.is_crossed:
            self.crossed_updates += 1

    def _apply_far(self, far: tuple[list[int], list[float], list[int], list[float]]) -> None:
        bt, bs, at, as_ = far
        for t, sz in zip(bt, bs, strict=True):
            i = t - self._base
            if 0 <= i < self._cap:
                self._bids[i] = sz
                if sz > 0.0:
                    if i > self._bb:
                        self._bb = i
                elif i == self._bb:
                    self._bb = self._scan_bid(i)
            elif self._fits(t):
                self._apply_bids(np.array([t], np.int64), np.array([sz]))
            else:
                self._overflow(self._over_bids, t, sz)
        for t, sz in zip(at, as_, strict=True):
            i = t - self._base
            if 0 <= i < self._cap:
                self._asks[i] = sz
                if sz > 0.0:
                    if self._ba < 0 or i < self._ba:
                        self._ba = i
                elif i == self._ba:
                    self._ba = self._scan_ask(i)
            elif self._fits(t):
                self._apply_asks(np.array([t], np.int64), np.array([sz]))
            else:
                self._overflow(self._over_asks, t, sz)

    def _apply_partly_outside(self, side: Side, ticks: I64, sizes: F64) -> None:
        """A message with rows outside the grid: far levels go to overflow without a
        regrid; only a row near the touch but outside the window forces one."""
        bids = side is Side.BUY
        idx = ticks - self._base
        outside = (idx < 0) | (idx >= self._cap)
        out_t = ticks[outside].tolist()
        if not out_t:
            (self._apply_bids if bids else self._apply_asks)(ticks, sizes)
            return
        ref = self._ref_tick(out_t[0])
        half = MAX_SPAN // 2
        for t in out_t:
            if -half <= t - ref <= half:
                (self._apply_bids if bids else self._apply_asks)(ticks, sizes)
                return
        over = self._over_bids if bids else self._over_asks
        for t, sz in zip(out_t, sizes[outside].tolist(), strict=True):
            if sz > 0.0:
                over[t] = sz
            else:
                over.pop(t, None)
        if len(out_t) == len(ticks):
            return
        inside = ~outside
        idx = idx[inside]
        sizes = sizes[inside]
        if bids:
            arr = self._bids
            arr[idx] = sizes
            top = int(np.where(sizes > 0.0, idx, -1).max())
            bb = max(self._bb, top)
            if bb >= 0 and arr[bb] == 0.0:
                bb = self._scan_bid(bb)
            self._bb = bb
        else:
            arr = self._asks
            arr[idx] = sizes
            low = int(np.where(sizes > 0.0, idx, self._cap).min())
            ba = self._ba
            if low < self._cap and (ba < 0 or low < ba):
                ba = low
            if ba >= 0 and arr[ba] == 0.0:
                ba = self._scan_ask(ba)
            self._ba = ba

    def _centre(self, bid_ticks: I64, ask_ticks: I64) -> None:
        allt = np.concatenate([bid_ticks, ask_ticks])
        if not len(allt):
            return
        mid = int(np.median(allt))
        self._base = mid - self._cap // 2
        self._initialised = True

    def _set_bids(self, levels: Iterable[tuple[int, float]]) -> None:
        """Level by level in Python: cheaper than NumPy for a handful of levels."""
        arr = self._bids
        base = self._base
        cap = self._cap
        bb = self._bb
        for t, s in levels:
            i = t - base
            if not 0 <= i < cap:
                # the touch so far in this message decides what is near (else a stray
                # price far from the first level would stretch the grid between them)
                self._bb = bb
                if not self._fits(t):
                    self._overflow(self._over_bids, t, s)
                    continue
                self._regrid(t)
                arr, base, cap = self._bids, self._base, self._cap
                bb = self._bb
                i = t - base
            arr[i] = s
            if s > 0.0:
                if i > bb:
                    bb = i
            elif i == bb:
                bb = self._scan_bid(i)
        self._bb = bb

    def _set_asks(self, levels: Iterable[tuple[int, float]]) -> None:
        arr = self._asks
        base = self._base
        cap = self._cap
        ba = self._ba
        for t, s in levels:
            i = t - base
            if not 0 <= i < cap:
                # the touch so far in this message decides what is near (else a stray
                # price far from the first level would stretch the grid between them)
                self._ba = ba
                if not self._fits(t):
                    self._overflow(self._over_asks, t, s)
                    continue
                self._regrid(t)
                arr, base, cap = self._asks, self._base, self._cap
                ba = self._ba
                i = t - base
            arr[i] = s
            if s > 0.0:
                if ba < 0 or i < ba:
                    ba = i
            elif i == ba:
                ba = self._scan_ask(i)
        self._ba = ba

    def _apply_bids(self, ticks: I64, sizes: F64) -> None:
        arr = self._bids
        base = self._base
        n = len(ticks)
        if n <= _SMALL:
            self._set_bids(zip(ticks.tolist(), sizes.tolist(), strict=True))
            return
        idx = ticks - base
        if idx.min() < 0 or idx.max() >= self._cap:
            idx, ticks, sizes = self._make_room(ticks, sizes, self._over_bids)
            arr, base = self._bids, self._base
            if not len(idx):
                return
        arr[idx] = sizes
        top = int(np.where(sizes > 0.0, idx, -1).max())
        bb = self._bb
        if top > bb:
            bb = top
        if bb >= 0 and arr[bb] == 0.0:
            bb = self._scan_bid(bb)
        self._bb = bb

    def _apply_asks(self, ticks: I64, sizes: F64) -> None:
        arr = self._asks
        base = self._base
        n = len(ticks)
        if n <= _SMALL:
            self._set_asks(zip(ticks.tolist(), sizes.tolist(), strict=True))
            return
        idx = ticks - base
        if idx.min() < 0 or idx.max() >= self._cap:
            idx, ticks, sizes = self._make_room(ticks, sizes, self._over_asks)
            arr, base = self._asks, self._base
            if not len(idx):
                return
        arr[idx] = sizes
        low = int(np.where(sizes > 0.0, idx, self._cap).min())
        ba = self._ba
        if low < self._cap and (ba < 0 or low < ba):
            ba = low
        if ba >= 0 and arr[ba] == 0.0:
            ba = self._scan_ask(ba)
        self._ba = ba

    def _scan_bid(self, i: int) -> int:
        """Highest non-empty bid index strictly below ``i`` (or -1)."""
        arr = self._bids
        w = _SCAN
        hi = i
        while hi > 0:
            lo = max(0, hi - w)
            nz = arr[lo:hi].nonzero()[0]
            if len(nz):
                return lo + int(nz[-1])
            hi = lo
            w *= 4
        return -1

    def _scan_ask(self, i: int) -> int:
        """Lowest non-empty ask index strictly above ``i`` (or -1)."""
        arr = self._asks
        cap = self._cap
        w = _SCAN
        lo = i + 1
        while lo < cap:
            hi = min(cap, lo + w)
            nz = arr[lo:hi].nonzero()[0]
            if len(nz):
                return lo + int(nz[0])
            lo = hi
            w *= 4
        return -1

    # ------------------------------------------------------------------ grid management
    def _ref_tick(self, fallback: int) -> int:
        """Where the book is: the mid of the grid's touch (one side, or ``fallback``).

        Overflow levels never count: they are by definition far from the market."""
        b = self._base + self._bb if self._bb >= 0 else None
        a = self._base + self._ba if self._ba >= 0 else None
        if b is not None and a is not None:
            return (a + b) // 2
        if b is not None:
            return b
        return a if a is not None else fallback

    def _fits(self, t: int) -> bool:
        """Is tick ``t`` near enough the touch to live on the grid (else: overflow)?"""
        return abs(t - self._ref_tick(t)) <= MAX_SPAN // 2

    def _regrid(self, *ticks: int) -> None:
        """Rebuild the grid around the touch so that ``ticks`` fit.

        Levels further than ``MAX_SPAN / 2`` from the touch move to the overflow dicts,
        overflow levels that are near again come back. Costs a scan of the grid, which
        only happens when the market has moved out of the window."""
        nonzero = _scan
        ref = self._ref_tick((min(ticks) + max(ticks)) // 2)
        half = MAX_SPAN // 2
        live: list[tuple[dict[int, float], I64, F64]] = []
        for arr, over in ((self._bids, self._over_bids), (self._asks, self._over_asks)):
            idx = nonzero(arr)
            t = idx + self._base
            vals = arr[idx]
            if over:
                ot = np.fromiter(over.keys(), np.int64, len(over))
                ov = np.fromiter(over.values(), np.float64, len(over))
                t = np.concatenate([t, ot])
                vals = np.concatenate([vals, ov])
                over.clear()
            near = np.abs(t - ref) <= half
            for tt, vv in zip(t[~near].tolist(), vals[~near].tolist(), strict=True):
                over[tt] = vv
            live.append((over, t[near], vals[near]))
        los = [int(t.min()) for _, t, _ in live if len(t)] + [min(ticks)]
        his = [int(t.max()) for _, t, _ in live if len(t)] + [max(ticks)]
        lo, hi = min(los), max(his)
        span = hi - lo + 1
        # room for the book to widen: a grid that has to grow grows to three times the
        # levels' span (up to twice MAX_SPAN), so a deep book that keeps filling in
        # takes a few regrids, not one per doubling (each scans and copies the grid)
        cap = INITIAL_CAP
        target = span + span // 2 + 64
        if span + span // 2 + 64 > self._cap:
            target = max(target, min(3 * span, 2 * MAX_SPAN))
        while cap < target:
            cap *= 2
        base = lo - (cap - span) // 2
        bids = np.zeros(cap)
        asks = np.zeros(cap)
        for arr, (_, t, v) in zip((bids, asks), live, strict=True):
            arr[t - base] = v
        self._bids, self._asks, self._cap, self._base = bids, asks, cap, base
        self._initialised = True
        # every level placed is non-empty: the best ones are the extreme ticks placed
        # (no scan of the new grid)
        (_, tb, _), (_, ta, _) = live
        self._bb = int(tb.max()) - base if len(tb) else -1
        self._ba = int(ta.min()) - base if len(ta) else -1

    def _recompute_best(self) -> None:
        nzb = self._bids.nonzero()[0]
        nza = self._asks.nonzero()[0]
        self._bb = int(nzb[-1]) if len(nzb) else -1
        self._ba = int(nza[0]) if len(nza) else -1

    def _overflow(self, over: dict[int, float], t: int, s: float) -> None:
        if s > 0.0:
            over[t] = s
        else:
            over.pop(t, None)

    def _make_room(self, ticks: I64, sizes: F64, over: dict[int, float]) -> tuple[I64, I64, F64]:
        """Regrid for a vectorised update; park levels far from the touch in ``over``."""
        ref = self._ref_tick(int(np.median(ticks)))
        fits = np.abs(ticks - ref) <= MAX_SPAN // 2
        if not fits.all():
            for t, s in zip(ticks[~fits].tolist(), sizes[~fits].tolist(), strict=True):
                self._overflow(over, t, s)
            ticks = ticks[fits]
            sizes = sizes[fits]
        if len(ticks):
            lo, hi = int(ticks.min()), int(ticks.max())
            if lo - self._base < 0 or hi - self._base >= self._cap:
                self._regrid(lo, hi)
        return ticks - self._base, ticks, sizes
