"""A synthetic two-venue spot dataset for backtests, demos and tests.

:func:`generate_synthetic` writes a new catalog (DESIGN §6) holding ``BTC/USDT`` on
``mexc`` and ``gateio``: L2 book diffs and trades whose statistics look like the real
venues, with a known set of arbitrage windows.

The model, in exchange time (integer milliseconds from ``start_ns``):

* A common log-mid follows a geometric random walk (~55 % annualised) whose volatility
  switches between calm, normal and busy regimes.
* Each venue sees the common mid through its own matching-engine lag (mexc 20-50 ms,
  gate 150-300 ms, wandering slowly); gate also carries a small mean-reverting basis.
  Lag and basis move the books a few bps apart: well inside the 15 bps of taker fees.
* Dislocations (~3 a minute): one venue's quotes jump 30-80 bps away from the common
  mid for 0.2-3 s, then snap back. These are the only times a taker-taker arbitrage
  pays; :attr:`SynthReport.windows` lists them.
* Optionally (``premium_bps``) a venue carries a persistent premium over the common mid
  and every dislocation leans its way: arbitrages then keep selling on the rich venue
  and buying on the cheap one, draining one side of each venue's inventory.
* Each venue keeps a book of integer ticks (dense near the touch, sparser deeper, sizes
  growing away from the touch). Every message moves the touch to the venue's mid,
  removes the levels it crosses, fills in new ones, changes, deletes and adds a few
  random levels and keeps the depth near its target; the catalog rows are the diff
  (size 0 deletes). Prices are always ``ticks / ticks_per_unit`` (exact on the grid).
* ``seq`` grows by the number of level changes in the message, like a venue's update
  id that counts every book event (MEXC ``toVersion``, Gate ``u``).
* ``ts_local = ts_exchange + feed latency`` (lognormal, with rare spikes). Book and trade
  messages of one venue share one connection, so they arrive FIFO: a message never
  overtakes an earlier one.

Everything is drawn from ``numpy.random.SeedSequence(seed)``: one seed, one dataset.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from arbsim.core.model import Instrument
from arbsim.data.catalog import (
    FLAG_SNAPSHOT_BEGIN,
    FLAG_SNAPSHOT_END,
    Catalog,
    CatalogInfo,
)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

SYMBOL = "BTC/USDT"
DEFAULT_START_NS = 1_767_571_200 * 10**9  # 2026-01-05T00:00:00Z
LOT_UNITS = 1_000_000  # both venues trade BTC in steps of 0.000001

_MS = 1_000_000  # ns per ms
_PRE_MS = 1_000  # common path history before t=0, so lagged venues can look back
_ANNUAL_VOL = 0.55
_YEAR_MS = 365.25 * 86_400 * 1_000
_REGIMES = np.array([0.6, 1.0, 1.7])  # volatility multipliers: calm, normal, busy
_REGIME_P = np.array([0.3, 0.5, 0.2])
_REGIME_MEAN_S = 180.0
_DISLOC_PER_MIN = 3.0
_DISLOC_BPS = (30.0, 80.0)
_DISLOC_MS = (200.0, 3_000.0)
_DISLOC_DECAY = 0.2  # a window loses up to this fraction of its offset before snapping back
_MAX_PREMIUM_BPS = 100.0
_MAX_DISLOC_PER_MIN = 20.0  # the windows are at least 2 s apart
_FIFO_STEP_NS = 1_000  # two messages read from one socket are at least 1 µs apart


@dataclass(frozen=True)
class VenueSpec:
    """What makes one synthetic venue look like itself.

    Ticks are integers: ``price = tick / ticks_per_unit``. Gap and size parameters are per
    rank (0 = touch): the mean gap to the next level is ``gap0 + gap1 * rank`` ticks and
    the median level size ``size0 * (1 + rank / size_rank)`` BTC.
    """

    instrument: Instrument
    ticks_per_unit: int
    depth: int
    depth_slack: int
    gap0: float
    gap1: float
    size0: float
    size_rank: float
    size_sigma: float
    spreads: tuple[int, ...]
    spread_p: tuple[float, ...]
    msg_ms: tuple[int, int]
    msg_jitter_ms: int
    bursts_per_min: float
    lag_ms: tuple[int, int]
    basis_bps: float
    feed_median_ms: float
    feed_sigma: float
    mods_per_msg: float
    inserts_per_msg: float
    delete_frac: float
    seq0: int
    trade_id0: int
    trade_id_gap: float
    trades_per_s: float
    trade_median: float
    trade_sigma: float

    @property
    def name(self) -> str:
        return self.instrument.venue


def _instrument(
    venue: str, tick: str, min_qty: str, min_notional: str, maker: str, taker: str
) -> Instrument:
    return Instrument(
        venue=venue,
        symbol=SYMBOL,
        base="BTC",
        quote="USDT",
        tick=Decimal(tick),
        lot=Decimal("0.000001"),
        min_qty=Decimal(min_qty),
        min_notional=Decimal(min_notional),
        maker_fee=Decimal(maker),
        taker_fee=Decimal(taker),
    )


MEXC = VenueSpec(
    instrument=_instrument("mexc", "0.01", "0.000001", "1", "0", "0.0005"),
    ticks_per_unit=100,
    depth=200,
    depth_slack=30,
    gap0=18.0,
    gap1=0.1,
    size0=0.04,
    size_rank=12.0,
    size_sigma=0.9,
    spreads=(1, 2, 3, 5),
    spread_p=(0.7, 0.15, 0.1, 0.05),
    msg_ms=(100, 100),
    msg_jitter_ms=3,
    bursts_per_min=2.0,
    lag_ms=(20, 50),
    basis_bps=0.0,
    feed_median_ms=30.0,
    feed_sigma=0.35,
    mods_per_msg=5.0,
    inserts_per_msg=2.0,
    delete_frac=0.15,
    seq0=10_589_632_359,
    trade_id0=3_201_004_517,
    trade_id_gap=1.0,
    trades_per_s=4.0,
    trade_median=0.002,
    trade_sigma=1.3,
)

GATEIO = VenueSpec(
    instrument=_instrument("gateio", "0.1", "0.00001", "3", "0.001", "0.001"),
    ticks_per_unit=10,
    depth=100,
    depth_slack=20,
    gap0=3.0,
    gap1=0.04,
    size0=0.03,
    size_rank=8.0,
    size_sigma=0.9,
    spreads=(1, 2, 3),
    spread_p=(0.8, 0.15, 0.05),
    msg_ms=(100, 200),
    msg_jitter_ms=0,
    bursts_per_min=0.0,
    lag_ms=(150, 300),
    basis_bps=1.5,
    feed_median_ms=60.0,
    feed_sigma=0.4,
    mods_per_msg=4.0,
    inserts_per_msg=1.5,
    delete_frac=0.15,
    seq0=1_500_000_000,
    trade_id0=9_876_543_210,
    trade_id_gap=3.0,
    trades_per_s=2.5,
    trade_median=0.0015,
    trade_sigma=1.2,
)

THIRD = VenueSpec(
    instrument=_instrument("third", "0.01", "0.00001", "5", "0.0008", "0.0008"),
    ticks_per_unit=100,
    depth=150,
    depth_slack=25,
    gap0=10.0,
    gap1=0.06,
    size0=0.035,
    size_rank=10.0,
    size_sigma=0.9,
    spreads=(1, 2, 3, 4),
    spread_p=(0.75, 0.15, 0.07, 0.03),
    msg_ms=(100, 150),
    msg_jitter_ms=2,
    bursts_per_min=1.0,
    lag_ms=(60, 140),
    basis_bps=-1.0,
    feed_median_ms=45.0,
    feed_sigma=0.35,
    mods_per_msg=4.5,
    inserts_per_msg=1.8,
    delete_frac=0.15,
    seq0=3_000_000_000,
    trade_id0=4_400_000_000,
    trade_id_gap=1.0,
    trades_per_s=3.0,
    trade_median=0.0018,
    trade_sigma=1.2,
)
"""A third synthetic venue (no real exchange's tick, fees or feed: its own)."""

VENUES: tuple[VenueSpec, ...] = (MEXC, GATEIO)
"""The venues of a catalog written without ``venues`` (the bundled sample's)."""

VENUE_SPECS: dict[str, VenueSpec] = {v.name: v for v in (MEXC, GATEIO, THIRD)}
"""Venues :func:`generate_synthetic` knows how to draw."""


@dataclass(frozen=True)
class SymbolSpec:
    """A market the generator can write besides ``BTC/USDT``.

    ``price`` is the starting mid; level and trade sizes are the BTC ones times
    ``size_scale`` (about the same notional); ``ticks_per_unit`` gives each venue's tick.
    """

    symbol: str
    price: float
    size_scale: float
    ticks_per_unit: dict[str, int]


SYMBOLS: dict[str, SymbolSpec] = {
    SYMBOL: SymbolSpec(SYMBOL, 60_000.0, 1.0, {"mexc": 100, "gateio": 10, "third": 100}),
    "ETH/USDT": SymbolSpec("ETH/USDT", 3_000.0, 20.0, {"mexc": 100, "gateio": 100, "third": 100}),
    "SOL/USDT": SymbolSpec("SOL/USDT", 150.0, 400.0, {"mexc": 100, "gateio": 100, "third": 1000}),
}
"""Symbols :func:`generate_synthetic` knows how to draw."""


def _venue_specs(
    sym: SymbolSpec, index: int, venues: Sequence[VenueSpec] = VENUES
) -> tuple[VenueSpec, ...]:
    """The venues' specs for one symbol (``BTC/USDT``: the specs unchanged)."""
    if sym.symbol == SYMBOL:
        return tuple(venues)
    base, quote = sym.symbol.split("/")
    out = []
    btc_price = SYMBOLS[SYMBOL].price
    for spec in venues:
        tpu = sym.ticks_per_unit[spec.name]
        inst = spec.instrument
        # level gaps keep their BTC width relative to the price (at least one tick)
        ratio = sym.price * tpu / (btc_price * spec.ticks_per_unit)
        out.append(
            replace(
                spec,
                instrument=msgspec.structs.replace(
                    inst,
                    symbol=sym.symbol,
                    base=base,
                    quote=quote,
                    tick=Decimal(1) / Decimal(tpu),
                ),
                ticks_per_unit=tpu,
                gap0=max(1.0, spec.gap0 * ratio),
                gap1=spec.gap1 * ratio,
                size0=spec.size0 * sym.size_scale,
                trade_median=spec.trade_median * sym.size_scale,
                seq0=spec.seq0 + index * 7_000_000_000,
                trade_id0=spec.trade_id0 + index * 500_000_000,
            )
        )
    return tuple(out)


class DislocationWindow(msgspec.Struct, frozen=True, kw_only=True):
    """One generated arbitrage window, in exchange time.

    ``bps`` is signed: positive when ``venue``'s quotes jumped above the common mid.
    """

    venue: str
    start_ns: int
    end_ns: int
    bps: float
    symbol: str = SYMBOL


class SynthReport(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`generate_synthetic` wrote.

    ``rows`` and ``messages`` are keyed ``"<venue>/<kind>"``; ``bytes_on_disk`` counts
    the Parquet files; ``elapsed_s`` is the generation wall time.
    """

    root: str
    seed: int
    start_ns: int
    duration_s: float
    rows: dict[str, int]
    messages: dict[str, int]
    windows: list[DislocationWindow]
    bytes_on_disk: int
    elapsed_s: float
    symbols: list[str] = msgspec.field(default_factory=lambda: [SYMBOL])
    venues: list[str] = msgspec.field(default_factory=lambda: [v.name for v in VENUES])

    @property
    def n_windows(self) -> int:
        return len(self.windows)

    def lines(self) -> list[str]:
        """Human-readable summary, one line per item, for the CLI."""
        out = [
            f"synthetic catalog {self.root} (seed {self.seed}, {self.duration_s:g} s, "
            f"{', '.join(self.symbols)} on {', '.join(self.venues)})",
        ]
        for key in sorted(self.rows):
            msgs = self.messages.get(key)
            extra = f" in {msgs:,} messages" if msgs is not None else ""
            out.append(f"  {key:<14} {self.rows[key]:>10,} rows{extra}")
        total = sum(w.end_ns - w.start_ns for w in self.windows) / 1e9
        out.append(
            f"  {self.n_windows} dislocation windows ({total:.1f} s, "
            f"{100 * total / max(self.duration_s, 1e-9):.1f} % of the time)"
        )
        out.append(
            f"  {self.bytes_on_disk / 1e6:.2f} MB on disk, generated in {self.elapsed_s:.2f} s"
        )
        return out


# --------------------------------------------------------------------------- market


@dataclass
class _Market:
    """The common price path and the dislocation schedule (exchange time, ms)."""

    log_mid: F64  # index t + _PRE_MS
    vol_mult: F64  # per ms, index t + _PRE_MS
    w_start: I64
    w_end: I64
    w_venue: I64
    w_bps: F64  # signed

    def window_at(self, t: I64) -> I64:
        """Index of the window active at each time, -1 outside every window."""
        j = np.searchsorted(self.w_start, t, side="right") - 1
        active = (j >= 0) & (t < self.w_end[np.maximum(j, 0)])
        return np.where(active, j, -1).astype(np.int64)


def _market(
    rng: np.random.Generator,
    duration_ms: int,
    price: float,
    n_venues: int = len(VENUES),
    premium_bps: Sequence[float] = (),
    per_min: float = _DISLOC_PER_MIN,
) -> _Market:
    n = duration_ms + _PRE_MS + 1
    # volatility regimes: exponential durations, multipliers normalised to unit RMS
    # so the long-run volatility stays near _ANNUAL_VOL
    k = max(4, int(3 * duration_ms / (_REGIME_MEAN_S * 1e3)) + 4)
    lengths = np.maximum(1, rng.exponential(_REGIME_MEAN_S * 1e3, k).astype(np.int64))
    states = rng.choice(len(_REGIMES), size=k, p=_REGIME_P)
    mult = _REGIMES / math.sqrt(float(np.sum(_REGIME_P * _REGIMES**2)))
    while int(lengths.sum()) < n:
        lengths = np.concatenate([lengths, lengths])
        states = np.concatenate([states, states])
    vol_mult = np.repeat(mult[states], lengths)[:n]
    sigma_ms = _ANNUAL_VOL / math.sqrt(_YEAR_MS)
    steps = rng.standard_normal(n) * sigma_ms * vol_mult
    log0 = math.log(price) + 0.02 * float(rng.standard_normal())
    log_mid = log0 + np.cumsum(steps)

    # dislocations: a renewal process with at least 2 s between windows, so that one
    # window's snap-back is over on both feeds before the next one starts
    mean_gap_ms = 60_000.0 / per_min
    m = int(duration_ms / 2_000) + 4
    gaps = 2_000.0 + rng.exponential(mean_gap_ms - 2_000.0, m)
    lo, hi = math.log(_DISLOC_MS[0]), math.log(_DISLOC_MS[1])
    durs = np.exp(rng.uniform(lo, hi, m))
    bps = rng.uniform(*_DISLOC_BPS, m) * rng.choice(np.array([-1.0, 1.0]), m)
    venue = rng.integers(0, n_venues, m)
    if any(premium_bps):
        # a persistent premium leans every dislocation the same way: a venue richer than
        # the venues' average jumps up, a cheaper one down (at the average: either way)
        lean = np.sign(np.asarray(premium_bps, np.float64) - float(np.mean(premium_bps)))
        bps = np.where(lean[venue] != 0, np.abs(bps) * lean[venue], bps)
    starts = np.cumsum(gaps + np.concatenate([[0.0], durs[:-1]]))
    ends = starts + durs
    keep = ends < duration_ms - 1_000
    # a never-active sentinel last window keeps lookups valid when no window fits
    never = np.array([2**62])
    return _Market(
        log_mid=log_mid,
        vol_mult=vol_mult,
        w_start=np.concatenate([starts[keep].astype(np.int64), never]),
        w_end=np.concatenate([ends[keep].astype(np.int64), never]),
        w_venue=np.concatenate([venue[keep].astype(np.int64), [-1]]),
        w_bps=np.concatenate([bps[keep], [0.0]]),
    )


def _basis(rng: np.random.Generator, duration_ms: int, bps: float, t: I64) -> F64:
    """A slow mean-reverting venue premium (fraction of price) at times ``t``."""
    if bps == 0.0:
        return np.zeros(len(t))
    n = duration_ms // 1_000 + 2
    a = math.exp(-1.0 / 30.0)  # 30 s mean reversion
    shocks = rng.standard_normal(n) * bps * math.sqrt(1 - a * a)
    x = np.empty(n)
    x[0] = rng.standard_normal() * bps
    for i in range(1, n):
        x[i] = a * x[i - 1] + shocks[i]
    return np.interp(t / 1_000.0, np.arange(n, dtype=np.float64), x) * 1e-4


def _schedule(
    rng: np.random.Generator, spec: VenueSpec, me: int, market: _Market, duration_ms: int
) -> I64:
    """Message times (ms, sorted, unique, > 0) of one venue's book stream.

    Regular pushes every ``msg_ms`` (drawn per message when it is a range, e.g. Gate's
    100 ms channel delivered every 100-200 ms) with up to ``msg_jitter_ms`` of jitter;
    venues with ``bursts_per_min`` also push at 10 ms in short bursts, at random and
    as their own dislocations start (MEXC's aggre.depth@10ms).
    """
    lo, hi = spec.msg_ms
    n = duration_ms // lo + 2
    # the grid is a cumulative sum of intervals, the jitter is not: it must not drift
    times = np.cumsum(rng.integers(lo, hi + 1, n)) + rng.integers(0, spec.msg_jitter_ms + 1, n)
    if spec.bursts_per_min > 0:
        nb = int(rng.poisson(spec.bursts_per_min * duration_ms / 60_000))
        b0 = rng.uniform(0, duration_ms, nb)
        b1 = b0 + rng.uniform(200, 600, nb)
        mine = market.w_venue == me
        jumps = market.w_start[mine].astype(np.float64)
        b0 = np.concatenate([b0, jumps - 30])
        b1 = np.concatenate([b1, jumps + 300])
        bursts = [np.arange(int(a), int(b), 10) for a, b in zip(b0, b1, strict=True)]
        times = np.concatenate([times, *bursts])
    times = np.unique(times.astype(np.int64))
    return times[(times > 0) & (times < duration_ms)]


# --------------------------------------------------------------------------- books


class _Side:
    """One side of a book as sorted keys (distance order: best first) and lot sizes.

    A key is the tick for asks and minus the tick for bids, so "better" is always
    "smaller key" and one code path serves both sides.
    """

    def __init__(self, spec: VenueSpec, rng: np.random.Generator):
        self.spec = spec
        self.rng = rng
        self.keys: I64 = np.empty(0, np.int64)
        self.sizes: I64 = np.empty(0, np.int64)
        self.min_units = max(1, int(spec.instrument.min_qty * LOT_UNITS))

    def _gaps(self, rank0: int, n: int) -> I64:
        ranks = np.arange(rank0, rank0 + n, dtype=np.float64)
        mean = self.spec.gap0 + self.spec.gap1 * ranks
        return self.rng.geometric(1.0 / mean).astype(np.int64)

    def _new_sizes(self, ranks: F64 | I64) -> I64:
        s = self.spec
        r = np.asarray(ranks, dtype=np.float64)
        x = (
            s.size0
            * (1.0 + r / s.size_rank)
            * np.exp(s.size_sigma * self.rng.standard_normal(len(r)))
        )
        # the odd wall: someone resting a large order
        x = np.where(self.rng.random(len(r)) < 0.03, x * 8.0, x)
        return np.maximum(_round_sig(x * LOT_UNITS), self.min_units)

    def step(self, touch: int) -> tuple[I64, I64]:
        """Move the side so its best level sits at key ``touch``; return the diff."""
        old_k, old_s = self.keys, self.sizes
        rng = self.rng
        spec = self.spec
        # levels better than the new touch would cross or sit inside the spread
        i = int(np.searchsorted(old_k, touch, side="left"))
        k, s = old_k[i:], old_s[i:]
        first = int(k[0]) if len(k) else touch + 10**9
        if first > touch:
            # the touch moved in (or its level went): new orders fill the gap
            pos = touch + np.concatenate([[0], np.cumsum(self._gaps(0, spec.depth - 1))])
            new = pos[pos < first]
            k = np.concatenate([new, k])
            s = np.concatenate([self._new_sizes(np.arange(len(new))), s])
        if not len(old_k):
            # the snapshot: exactly the advertised depth
            self.keys, self.sizes = k, s
            return k, s
        # size changes and cancellations, mostly near the touch, sometimes deep
        n_mod = 1 + int(rng.poisson(spec.mods_per_msg))
        near = rng.geometric(0.15, n_mod) - 1
        deep = rng.integers(0, len(k), n_mod)
        ranks = np.unique(np.where(rng.random(n_mod) < 0.8, near, deep))
        ranks = ranks[ranks < len(k)]
        if len(ranks):
            s = s.copy()
            factor = np.exp(0.5 * rng.standard_normal(len(ranks)))
            s[ranks] = np.maximum(_round_sig(s[ranks] * factor), self.min_units)
            # the touch level is never cancelled here: the spread is set by the mid
            cancel = (rng.random(len(ranks)) < spec.delete_frac) & (ranks > 0)
            s[ranks[cancel]] = 0
            keep = s > 0
            k, s = k[keep], s[keep]
        # new orders at empty ticks between existing levels
        n_ins = int(rng.poisson(spec.inserts_per_msg))
        if n_ins and len(k) > 1:
            at = np.minimum(rng.geometric(0.1, n_ins) - 1, len(k) - 2)
            room = k[at + 1] - k[at]
            ok = room > 1
            if ok.any():
                at, room = at[ok], room[ok]
                nk = k[at] + 1 + (rng.random(len(at)) * (room - 1)).astype(np.int64)
                nk, first_i = np.unique(nk, return_index=True)
                k = np.concatenate([k, nk])
                s = np.concatenate([s, self._new_sizes(at[first_i] + 1)])
                order = np.argsort(k, kind="stable")
                k, s = k[order], s[order]
        # keep the advertised depth near its target: trim or extend the far end in bulk
        if len(k) > spec.depth + spec.depth_slack:
            k, s = k[: spec.depth], s[: spec.depth]
        elif len(k) < spec.depth - spec.depth_slack:
            n = spec.depth - len(k)
            ext = int(k[-1]) + np.cumsum(self._gaps(len(k), n))
            k = np.concatenate([k, ext])
            s = np.concatenate([s, self._new_sizes(np.arange(len(k) - n, len(k)))])
        self.keys, self.sizes = k, s
        return _diff(old_k, old_s, k, s)


def _round_sig(units: F64 | I64, digits: int = 3) -> I64:
    """Round lot counts to a few significant digits.

    Resting orders are mostly typed-in sizes (0.0125, 0.4), not 6-decimal noise; this
    also roughly halves the compressed size of the ``size`` column.
    """
    x = np.maximum(np.asarray(units, dtype=np.float64), 1.0)
    mag: F64 = np.power(10.0, np.maximum(np.floor(np.log10(x)) - (digits - 1), 0.0))
    return (np.rint(x / mag) * mag).astype(np.int64)


def _lookup(keys: I64, sizes: I64, at: I64) -> I64:
    if not len(keys):
        return np.zeros(len(at), np.int64)
    idx = np.minimum(np.searchsorted(keys, at), len(keys) - 1)
    return np.where(keys[idx] == at, sizes[idx], 0)


def _diff(old_k: I64, old_s: I64, new_k: I64, new_s: I64) -> tuple[I64, I64]:
    """Rows turning the old side into the new one (size 0 deletes)."""
    allk = np.union1d(old_k, new_k)
    before = _lookup(old_k, old_s, allk)
    after = _lookup(new_k, new_s, allk)
    ch = before != after
    return allk[ch], after[ch]


@dataclass
class _BookStream:
    """Generated book messages of one venue (message 0 is a snapshot, and so is the first
    message of every period with periodic snapshots)."""

    t_ms: I64  # per message
    seq: I64
    n_rows: I64
    snapshot: npt.NDArray[np.bool_]
    row_side: npt.NDArray[np.int8]
    row_ticks: I64
    row_units: I64
    bid: I64  # touch after each message, for the trades
    ask: I64
    bid_units: I64
    ask_units: I64
    mid: F64


def _simulate_book(
    rng: np.random.Generator,
    spec: VenueSpec,
    me: int,
    market: _Market,
    duration_ms: int,
    snapshot_ms: int = 0,
    stop_requested: Callable[[], bool] | None = None,
    premium_bps: float = 0.0,
) -> _BookStream:
    times = np.concatenate([[0], _schedule(rng, spec, me, market, duration_ms)]).astype(np.int64)
    n = len(times)
    # the full book instead of the changes: message 0, and with ``snapshot_ms`` the first
    # message sent in each period (a venue's periodic snapshot; it draws nothing at
    # random and sends no message that would not be sent anyway)
    snap = np.zeros(n, bool)
    snap[0] = True
    period = 0
    # the engine lag wanders slowly (1 s knots): a per-message draw would make the
    # venue's mid jitter back and forth in time, churning the book for nothing
    knots = rng.uniform(spec.lag_ms[0], spec.lag_ms[1], duration_ms // 1_000 + 2)
    lag = np.rint(np.interp(times / 1_000.0, np.arange(len(knots), dtype=np.float64), knots))
    lag = lag.astype(np.int64)
    mid = np.exp(market.log_mid[times - lag + _PRE_MS])
    mid = mid * (1.0 + _basis(rng, duration_ms, spec.basis_bps, times))
    if premium_bps:
        mid = mid * (1.0 + premium_bps * 1e-4)
    w = market.window_at(times)
    mine = (w >= 0) & (market.w_venue[np.maximum(w, 0)] == me)
    wi = np.maximum(w, 0)
    frac = (times - market.w_start[wi]) / np.maximum(1, market.w_end[wi] - market.w_start[wi])
    off = np.where(mine, market.w_bps[wi] * 1e-4 * (1.0 - _DISLOC_DECAY * frac), 0.0)
    mid = mid * (1.0 + off)
    spread = rng.choice(np.array(spec.spreads), size=n, p=np.array(spec.spread_p))
    mid_ticks = mid * spec.ticks_per_unit
    bid = np.floor(mid_ticks - spread / 2.0).astype(np.int64)
    ask = bid + spread

    bids, asks = _Side(spec, rng), _Side(spec, rng)
    sides: list[npt.NDArray[np.int8]] = []
    ticks: list[I64] = []
    units: list[I64] = []
    n_rows = np.zeros(n, np.int64)
    changes = np.zeros(n, np.int64)
    bid_units = np.zeros(n, np.int64)
    ask_units = np.zeros(n, np.int64)
    for i in range(n):
        if stop_requested is not None and not i & 4095 and stop_requested():
            raise KeyboardInterrupt
        bk, bs = bids.step(-int(bid[i]))
        ak, as_ = asks.step(int(ask[i]))
        # a crossed book would be a generator bug: refuse to write it
        if -int(bids.keys[0]) >= int(asks.keys[0]):
            raise AssertionError(f"{spec.name}: generated a crossed book at message {i}")
        changes[i] = len(bk) + len(ak)
        if snapshot_ms > 0 and changes[i] and times[i] // snapshot_ms != period:
            snap[i] = True
            period = int(times[i]) // snapshot_ms
        if snap[i]:
            bk, bs, ak, as_ = bids.keys, bids.sizes, asks.keys, asks.sizes
        sides.append(np.concatenate([np.ones(len(bk), np.int8), -np.ones(len(ak), np.int8)]))
        ticks.append(np.concatenate([-bk, ak]))
        units.append(np.concatenate([bs, as_]))
        n_rows[i] = len(bk) + len(ak)
        bid_units[i] = bids.sizes[0]
        ask_units[i] = asks.sizes[0]
    # a message with no net change is not sent (the venue only pushes changes)
    sent = n_rows > 0
    seq = spec.seq0 + np.cumsum(changes) - changes[0]
    return _BookStream(
        t_ms=times[sent],
        seq=seq[sent],
        n_rows=n_rows[sent],
        snapshot=snap[sent],
        row_side=np.concatenate(sides),
        row_ticks=np.concatenate(ticks),
        row_units=np.concatenate(units),
        bid=bid[sent],
        ask=ask[sent],
        bid_units=bid_units[sent],
        ask_units=ask_units[sent],
        mid=mid[sent],
    )


# --------------------------------------------------------------------------- trades


@dataclass
class _Trades:
    t_ms: I64
    trade_id: I64
    side: npt.NDArray[np.int8]
    ticks: I64
    units: I64


def _simulate_trades(
    rng: np.random.Generator,
    spec: VenueSpec,
    me: int,
    market: _Market,
    book: _BookStream,
    duration_ms: int,
) -> _Trades:
    burst = 5.0  # trade rate multiplier while any venue is dislocated
    peak = spec.trades_per_s * float(market.vol_mult.max()) * burst
    # thinning of a Poisson process with a time-varying rate
    n = int(rng.poisson(peak * duration_ms / 1e3))
    t = np.sort(rng.uniform(book.t_ms[0] + 1, duration_ms, n)).astype(np.int64)
    w = market.window_at(t)
    rate = spec.trades_per_s * market.vol_mult[t + _PRE_MS] * np.where(w >= 0, burst, 1.0)
    keep = rng.random(n) * peak < rate
    t, w = t[keep], w[keep]
    n = len(t)
    j = np.searchsorted(book.t_ms, t, side="right") - 1  # book state at the trade
    wi = np.maximum(w, 0)
    sign = np.sign(market.w_bps[wi]).astype(np.int64)
    on_me = (w >= 0) & (market.w_venue[wi] == me)
    on_other = (w >= 0) & ~on_me
    into = (t - market.w_start[wi]) < np.minimum(150, (market.w_end[wi] - market.w_start[wi]) // 5)
    # aggressors follow the price: buyers lift a rising venue; inside a window the
    # jump is a sweep in its direction, then arbitrageurs hit the rich venue and lift
    # the cheap one
    recent = book.mid[j] - book.mid[np.maximum(j - 3, 0)]
    p_buy = 0.5 + 0.3 * np.sign(recent)
    p_buy = np.where(on_other, np.where(sign > 0, 0.65, 0.35), p_buy)
    p_buy = np.where(on_me, np.where(sign > 0, 0.25, 0.75), p_buy)
    p_buy = np.where(on_me & into, np.where(sign > 0, 0.85, 0.15), p_buy)
    side = np.where(rng.random(n) < p_buy, 1, -1).astype(np.int8)
    ticks = np.where(side == 1, book.ask[j], book.bid[j])
    touch_units = np.where(side == 1, book.ask_units[j], book.bid_units[j])
    price = ticks / spec.ticks_per_unit
    min_units = np.ceil(float(spec.instrument.min_notional) / price * LOT_UNITS).astype(np.int64)
    min_units = np.maximum(min_units, int(spec.instrument.min_qty * LOT_UNITS))
    x = spec.trade_median * np.exp(spec.trade_sigma * rng.standard_normal(n))
    units = np.minimum(np.rint(x * LOT_UNITS).astype(np.int64), touch_units)
    units = np.maximum(units, min_units)
    # Gate's trade ids are shared by all pairs: ours skip the ids of other markets
    step = rng.geometric(1.0 / spec.trade_id_gap, n).astype(np.int64)
    trade_id = spec.trade_id0 + np.cumsum(step)
    return _Trades(t_ms=t, trade_id=trade_id, side=side, ticks=ticks, units=units)


# --------------------------------------------------------------------------- timing


def _receive_times(rng: np.random.Generator, spec: VenueSpec, tsx: I64) -> I64:
    """ts_local for messages of one connection given their ts_exchange (sorted).

    Each message gets a lognormal feed latency (1 % of them a 3-10x spike); then TCP
    keeps them in order: a message is read no earlier than ``_FIFO_STEP_NS`` after the
    one before it.
    """
    n = len(tsx)
    lat = spec.feed_median_ms * _MS * np.exp(spec.feed_sigma * rng.standard_normal(n))
    lat = np.where(rng.random(n) < 0.01, lat * rng.uniform(3.0, 10.0, n), lat)
    raw = tsx + np.rint(lat).astype(np.int64)
    step = np.arange(n, dtype=np.int64) * _FIFO_STEP_NS
    return np.maximum.accumulate(raw - step) + step


# --------------------------------------------------------------------------- writing


def _iso(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).isoformat(timespec="milliseconds")


def generate_synthetic(
    root: Path,
    *,
    seed: int,
    duration_s: float = 1200.0,
    start_ns: int = DEFAULT_START_NS,
    progress: Callable[[int, int], None] | None = None,
    symbols: Sequence[str] = (SYMBOL,),
    venues: Sequence[str] = ("mexc", "gateio"),
    snapshot_every_s: float = 0.0,
    stop_requested: Callable[[], bool] | None = None,
    premium_bps: Mapping[str, float] | None = None,
    dislocations_per_min: float = _DISLOC_PER_MIN,
) -> SynthReport:
    """Write a synthetic catalog (``BTC/USDT`` on mexc and gateio by default) at ``root``.

    Parameters
    ----------
    root:
        Directory of the new catalog; it must not exist yet or be empty.
    seed:
        Seed of every random draw: the same seed writes the same rows.
    duration_s:
        Length of the sample in seconds (exchange time).
    start_ns:
        Exchange time of the initial snapshots, ns since the epoch (UTC).
    progress:
        Told ``(steps done, steps in all)`` as the venues' books and trades are made
        and written.
    symbols:
        Markets to write, each on both venues (keys of :data:`SYMBOLS`). Every symbol has
        its own price path, dislocations and random streams; ``BTC/USDT`` is drawn
        exactly as when it is alone, so adding symbols never changes its rows.
    venues:
        Venues to write every symbol on, two or more (keys of :data:`VENUE_SPECS`:
        ``mexc``, ``gateio`` and ``third``, a venue of its own). Each symbol's
        dislocations fall on one of these venues at a time.
    snapshot_every_s:
        With a positive period, the first book message of each period of that many
        seconds (exchange time) carries the whole book, flagged as a snapshot, as venues
        that push periodic snapshots do (the book after it is the same; a replay with
        ``--start`` builds its books from the latest one instead of from the start).
        0: only the first message is a snapshot. The other rows are the same either way.
    stop_requested:
        Asked every few thousand generated messages; once it says yes, the run raises
        :class:`KeyboardInterrupt` (and writes nothing). A stop signal's handler raises
        that too, but an exception raised inside a handler can be lost in the NumPy
        calls this generator spends its time in; the flag cannot.
    premium_bps:
        A persistent premium per venue, bps of the common mid (negative: a discount), for
        a sample that drains one side: the venue's quotes sit that far from the common
        mid for the whole sample, and every dislocation leans the same way (on a venue
        richer than the venues' average premium it jumps up, on a cheaper one down), so
        every arbitrage sells on the rich venue and buys on the cheap one. Each value
        within +-100 bps; venues not named have none. Without it (or all zero) the rows
        are those of the same seed without the option.
    dislocations_per_min:
        Mean rate of dislocation windows (a renewal process with at least 2 s between
        windows), above 0 and at most 20.

    The catalog is written in a hidden directory beside ``root`` and renamed to
    ``root`` once complete: an interrupted run leaves no half-written catalog.

    Returns
    -------
    SynthReport
        Rows and messages per stream, the dislocation windows, size on disk and timing.

    Raises
    ------
    FileExistsError
        When ``root`` exists and is not an empty directory.
    ValueError
        When ``duration_s`` is below 5 seconds, a symbol or venue is unknown or
        repeated, fewer than two venues are named, a premium names a venue not written
        or is not a number within +-100 bps, or ``dislocations_per_min`` is out of range.
    """
    root = Path(root)
    unknown = [x for x in symbols if x not in SYMBOLS]
    if unknown or not symbols or len(set(symbols)) != len(symbols):
        raise ValueError(
            f"symbols {list(symbols)!r}: expected distinct symbols out of {', '.join(SYMBOLS)}"
        )
    bad = [x for x in venues if x not in VENUE_SPECS]
    if bad or len(venues) < 2 or len(set(venues)) != len(venues):
        raise ValueError(
            f"venues {list(venues)!r}: expected two or more distinct venues out of "
            f"{', '.join(VENUE_SPECS)}"
        )
    premium = dict(premium_bps or {})
    for name, value in premium.items():
        if name not in venues:
            raise ValueError(
                f"premium_bps: venue {name!r} is not written; expected one of {', '.join(venues)}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"premium_bps[{name!r}]: expected a number of bps, got {value!r}")
        if not math.isfinite(value) or abs(value) > _MAX_PREMIUM_BPS:
            raise ValueError(
                f"premium_bps[{name!r}]: expected a number of bps within "
                f"+-{_MAX_PREMIUM_BPS:g}, got {value!r}"
            )
    if (
        isinstance(dislocations_per_min, bool)
        or not isinstance(dislocations_per_min, int | float)
        or not 0 < dislocations_per_min <= _MAX_DISLOC_PER_MIN
    ):
        raise ValueError(
            f"dislocations_per_min: expected a rate above 0 and at most "
            f"{_MAX_DISLOC_PER_MIN:g} a minute, got {dislocations_per_min!r}"
        )
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        if not _only_catalog_json(root):
            raise FileExistsError(f"{root}: exists and is not empty; synth writes a new catalog")
        # what an interrupted synth of an older arbsim left: no data, nothing to lose
        (root / "catalog.json").unlink()
    if duration_s < 5.0:
        raise ValueError(f"duration_s must be at least 5 seconds, got {duration_s}")
    if not snapshot_every_s >= 0.0 or (0.0 < snapshot_every_s < 0.001):
        raise ValueError(
            f"snapshot_every_s must be 0 (none) or at least 0.001 s, got {snapshot_every_s}"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        specs = [VENUE_SPECS[x] for x in venues]
        report = _generate(
            work,
            root,
            seed,
            duration_s,
            start_ns,
            progress,
            list(symbols),
            specs,
            snapshot_ms=round(snapshot_every_s * 1_000),
            stop_requested=stop_requested,
            premium={v: float(x) for v, x in premium.items()},
            per_min=float(dislocations_per_min),
        )
        if root.exists():
            root.rmdir()  # empty (checked above)
        work.rename(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _only_catalog_json(root: Path) -> bool:
    return root.is_dir() and [p.name for p in root.iterdir()] == ["catalog.json"]


def _generate(
    work: Path,
    root: Path,
    seed: int,
    duration_s: float,
    start_ns: int,
    progress: Callable[[int, int], None] | None,
    symbols: list[str],
    specs: list[VenueSpec],
    *,
    snapshot_ms: int = 0,
    stop_requested: Callable[[], bool] | None = None,
    premium: dict[str, float],
    per_min: float,
) -> SynthReport:
    t0 = time.perf_counter()
    per_symbol = 1 + 3 * len(specs)
    steps = per_symbol * len(symbols)
    if progress is not None:
        progress(0, steps)
    duration_ms = round(duration_s * 1_000)
    names = ", ".join(symbols)
    option = "".join(f" --symbol {x}" for x in symbols) if symbols != [SYMBOL] else ""
    if specs != list(VENUES):
        option += "".join(f" --venue {v.name}" for v in specs)
    if snapshot_ms:
        option += f" --snapshot-every {snapshot_ms / 1_000:g}"
    option += "".join(f" --premium-bps {v}={x:g}" for v, x in premium.items() if x)
    if per_min != _DISLOC_PER_MIN:
        option += f" --dislocations-per-min {per_min:g}"
    premiums = [premium.get(v.name, 0.0) for v in specs] if any(premium.values()) else []
    leaning = (
        "; persistent premium "
        + ", ".join(f"{v} {x:+g} bps" for v, x in premium.items() if x)
        + " (every dislocation leans its way)"
        if premiums
        else ""
    )
    on = " and ".join([", ".join(v.name for v in specs[:-1]), specs[-1].name])
    catalog = Catalog(work)
    catalog.create(
        CatalogInfo(
            synthetic=True,
            description=(
                f"synthetic {names} on {on}, {duration_s:g} s from "
                f"{_iso(start_ns)}: geometric random walk (~{_ANNUAL_VOL:.0%} annualised, "
                f"volatility regimes), per-venue lag, ~{per_min:g}/min dislocations "
                f"of {_DISLOC_BPS[0]:g}-{_DISLOC_BPS[1]:g} bps for "
                f"{_DISLOC_MS[0] / 1e3:g}-{_DISLOC_MS[1] / 1e3:g} s{leaning}"
            ),
            created_by=f"arbsim data synth --catalog {root} --seed {seed}{option}",
            notes=[
                "seq grows by the number of level changes in each message",
                "dislocation windows are the only taker-taker arbitrage opportunities",
            ],
        )
    )
    rows: dict[str, int] = {}
    messages: dict[str, int] = {}
    windows: list[DislocationWindow] = []
    for k, symbol in enumerate(symbols):
        sym = SYMBOLS[symbol]
        index = list(SYMBOLS).index(symbol)
        done = k * per_symbol

        def step(n: int, done: int = done) -> None:
            if stop_requested is not None and stop_requested():
                raise KeyboardInterrupt
            if progress is not None:
                progress(done + n, steps)

        # BTC/USDT keeps the streams it has always had: adding symbols changes no row of it
        entropy: int | list[int] = seed if index == 0 else [seed, index]
        streams = np.random.SeedSequence(entropy).spawn(1 + 3 * len(specs))
        market = _market(
            np.random.default_rng(streams[0]),
            duration_ms,
            sym.price,
            len(specs),
            premiums,
            per_min,
        )
        step(1)
        for v, spec in enumerate(_venue_specs(sym, index, specs)):
            rng_book, rng_trades, rng_net = (
                np.random.default_rng(s) for s in streams[1 + 3 * v : 4 + 3 * v]
            )
            book = _simulate_book(
                rng_book,
                spec,
                v,
                market,
                duration_ms,
                snapshot_ms=snapshot_ms,
                stop_requested=stop_requested,
                premium_bps=premium.get(spec.name, 0.0),
            )
            step(2 + 3 * v)
            trades = _simulate_trades(rng_trades, spec, v, market, book, duration_ms)
            step(3 + 3 * v)
            key = spec.name if symbol == SYMBOL else f"{spec.name} {symbol}"
            nb = _write_venue(catalog, spec, symbol, start_ns, book, trades, rng_net, rows, key)
            messages[f"{key}/book"] = nb
            messages[f"{key}/trades"] = len(trades.t_ms)
            step(4 + 3 * v)
        windows += [
            DislocationWindow(
                venue=specs[int(v)].name,
                start_ns=start_ns + int(a) * _MS,
                end_ns=start_ns + int(b) * _MS,
                bps=round(float(x), 2),
                symbol=symbol,
            )
            for a, b, v, x in zip(
                market.w_start[:-1],
                market.w_end[:-1],
                market.w_venue[:-1],
                market.w_bps[:-1],
                strict=True,
            )
        ]
    size = sum(p.stat().st_size for p in work.rglob("*.parquet"))
    return SynthReport(
        root=str(root),
        seed=seed,
        start_ns=start_ns,
        duration_s=duration_s,
        rows=rows,
        messages=messages,
        windows=windows,
        bytes_on_disk=size,
        elapsed_s=round(time.perf_counter() - t0, 3),
        symbols=symbols,
        venues=[v.name for v in specs],
    )


def _write_venue(
    catalog: Catalog,
    spec: VenueSpec,
    symbol: str,
    start_ns: int,
    book: _BookStream,
    trades: _Trades,
    rng_net: np.random.Generator,
    rows: dict[str, int],
    key: str,
) -> int:
    """Write one venue's book and trades of one symbol; return its book messages."""
    # one connection per venue and symbol: book and trade messages share the FIFO
    tsx_all = np.concatenate([book.t_ms, trades.t_ms]) * _MS + start_ns
    order = np.argsort(tsx_all, kind="stable")
    tsl_sorted = _receive_times(rng_net, spec, tsx_all[order])
    tsl_all = np.empty_like(tsl_sorted)
    tsl_all[order] = tsl_sorted
    nb = len(book.t_ms)
    book_tsx, book_tsl = tsx_all[:nb], tsl_all[:nb]
    trade_tsx, trade_tsl = tsx_all[nb:], tsl_all[nb:]

    flags = np.repeat(
        np.where(book.snapshot, FLAG_SNAPSHOT_BEGIN | FLAG_SNAPSHOT_END, 0).astype(np.uint8),
        book.n_rows,
    )
    catalog.write_instrument(spec.instrument)
    with catalog.writer(spec.name, symbol, "book") as w:
        w.write(
            {
                "ts_exchange": np.repeat(book_tsx, book.n_rows),
                "ts_local": np.repeat(book_tsl, book.n_rows),
                "seq": np.repeat(book.seq, book.n_rows),
                "side": book.row_side,
                # integer ticks divided by the per-unit count: exact on the grid
                "price": book.row_ticks / spec.ticks_per_unit,
                "size": book.row_units / LOT_UNITS,
                "flags": flags,
            }
        )
        rows[f"{key}/book"] = w.rows
    with catalog.writer(spec.name, symbol, "trades") as w:
        w.write(
            {
                "ts_exchange": trade_tsx,
                "ts_local": trade_tsl,
                "trade_id": trades.trade_id,
                "side": trades.side,
                "price": trades.ticks / spec.ticks_per_unit,
                "size": trades.units / LOT_UNITS,
            }
        )
        rows[f"{key}/trades"] = w.rows
    return nb
