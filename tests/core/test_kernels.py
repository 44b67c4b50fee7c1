"""The compiled book kernel against the Python book, message by message.

Random message streams (moving markets, deleted touches, stray levels far away that go to
the overflow, jumps that regrid, snapshots, one-sided and crossed books) are written to a
real catalog and walked by two cursors: one applies each message with the Python book
(``BookCursor.apply``), the other through the kernel (``apply_fast``, or ``catch_up`` in
bulk); the two books must hold the same state after every message.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import MS, T0, VenueData, instrument, write_catalog

from arbsim.core.book import OrderBook
from arbsim.core.kernels import apply_messages, nonzero_indices
from arbsim.data.feed import BookCursor


def state(book: OrderBook) -> dict[str, Any]:
    """Everything a book holds, grid position and overflow order included."""
    return {
        "base": book._base,
        "cap": book._cap,
        "bb": book._bb,
        "ba": book._ba,
        "over_bids": list(book._over_bids.items()),
        "over_asks": list(book._over_asks.items()),
        "updates": book.updates,
        "crossed": book.crossed_updates,
        "stamp": (book.ts_exchange, book.ts_local, book.seq),
        "top": (book.best_bid_tick, book.best_ask_tick, book.best_bid_size, book.best_ask_size),
    }


def assert_same(a: OrderBook, b: OrderBook, where: str) -> None:
    assert state(a) == state(b), where
    assert np.array_equal(a._bids, b._bids), f"{where}: bid arrays differ"
    assert np.array_equal(a._asks, b._asks), f"{where}: ask arrays differ"


def random_stream(seed: int, n: int = 400) -> VenueData:
    """A venue's book messages: a random walk with the awkward cases mixed in."""
    rng = random.Random(seed)
    v = VenueData(instrument("k"))
    mid = 600_000  # ticks of 0.1 (60,000.0)
    t = T0

    def px(tick: int) -> float:
        return round(tick / 10, 1)

    snap_b = [(px(mid - 1 - i), rng.choice([0.5, 1.0, 2.0])) for i in range(40)]
    snap_a = [(px(mid + 1 + i), rng.choice([0.5, 1.0, 2.0])) for i in range(40)]
    v.message(t, t + MS, snap_b, snap_a, snapshot=True)
    for _ in range(n):
        t += rng.randint(1, 50) * MS
        roll = rng.random()
        if roll < 0.03:  # the market jumps: the grid has to follow
            mid += rng.choice([-1, 1]) * rng.randint(20_000, 120_000)
            mid = max(mid, 200_000)
        elif roll < 0.05:  # a fresh snapshot
            levels = rng.randint(1, 30)
            fresh_b = [(px(mid - 1 - i), 1.0) for i in range(levels)]
            fresh_a = [(px(mid + 1 + i), 1.0) for i in range(rng.randint(0, 30))]
            v.message(t, t + MS, fresh_b, fresh_a, snapshot=True)
            continue
        else:
            mid += rng.randint(-3, 3)
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        for _ in range(rng.randint(0, 12)):
            side = rng.random() < 0.5
            off = rng.randint(0, 60)
            size = 0.0 if rng.random() < 0.35 else rng.choice([0.1, 0.7, 3.0])
            if side:
                bids.append((px(mid - off), size))
            else:
                asks.append((px(mid + off), size))
        if rng.random() < 0.15:  # a stray level far from the market (overflow), or its removal
            far = mid + rng.choice([-1, 1]) * rng.randint(300_000, 500_000)
            if far > 0:
                (bids if rng.random() < 0.5 else asks).append((px(far), rng.choice([0.0, 1.0])))
        if rng.random() < 0.05:  # a level through the other side: a crossed book
            bids.append((px(mid + 5), 1.0))
        if rng.random() < 0.05:  # the whole near side goes away
            asks.extend((px(mid + off), 0.0) for off in range(0, 70))
        if bids or asks:
            v.message(t, t + MS, bids, asks)
    return v


@pytest.mark.parametrize("seed", range(12))
def test_kernel_matches_the_python_book_message_by_message(tmp_path: Path, seed: int) -> None:
    cat = write_catalog(tmp_path / "cat", [random_stream(seed)])
    inst = cat.instrument("k", "BTC/USDT")
    ref = OrderBook("k", inst.symbol, inst.tick)
    fast = OrderBook("k", inst.symbol, inst.tick)
    # small batches: messages straddle batch ends (the carry) as in long files
    a = BookCursor(cat, "k", inst.symbol, ref.scale, batch_size=97)
    b = BookCursor(cat, "k", inst.symbol, fast.scale, batch_size=97)
    n = 0
    while a.next():
        assert b.next()
        a.apply(ref)
        b.apply_fast(fast)
        n += 1
        assert_same(ref, fast, f"seed {seed}, message {n}")
    assert not b.next() and n > 300
    assert ref.crossed_updates > 0 and (ref._over_bids or ref._over_asks or ref.updates)


@pytest.mark.parametrize("seed", range(6))
def test_bulk_catch_up_matches_message_by_message(tmp_path: Path, seed: int) -> None:
    """``catch_up`` applies runs of messages at once (the held-back exchange side)."""
    cat = write_catalog(tmp_path / "cat", [random_stream(100 + seed, 600)])
    inst = cat.instrument("k", "BTC/USDT")
    ref = OrderBook("k", inst.symbol, inst.tick)
    bulk = OrderBook("k", inst.symbol, inst.tick)
    a = BookCursor(cat, "k", inst.symbol, ref.scale, key="exchange", batch_size=211)
    b = BookCursor(cat, "k", inst.symbol, bulk.scale, key="exchange", batch_size=211)
    assert a.next() and b.next()
    rng = random.Random(seed)
    left = True
    steps = 0
    while left:
        bound = b.ts + rng.randint(0, 400) * MS
        inclusive = rng.random() < 0.5
        left = b.catch_up(bulk, bound, inclusive)
        while a.ts < bound or (inclusive and a.ts == bound):
            a.apply(ref)
            if not a.next():
                break
        steps += 1
        assert_same(ref, bulk, f"seed {seed}, catch-up {steps} to {bound}")
        if left:
            assert b.ts > bound or (not inclusive and b.ts == bound)
    assert steps > 5


def test_kernel_stops_before_what_it_does_not_handle() -> None:
    """A snapshot message is left untouched for the Python book."""
    bids, asks = np.zeros(64), np.zeros(64)
    ticks = np.array([10, 20], np.int64)
    sizes = np.array([1.0, 2.0])
    meta = np.array(
        [[0, 1, 1, 2, 2, 10, 10, 10, 20, 20, 20, 0], [0, 1, 1, 2, 2, 10, 10, 10, 20, 20, 20, 1]],
        np.int64,
    )
    over = np.zeros((4, 2), np.int64)
    k, crossed, bb, ba, n_over, open_ = apply_messages(
        bids, asks, ticks, sizes, meta, 0, 2, 0, -1, -1, 1, over, np.zeros(4),
        np.zeros(8, np.int64), np.zeros(8),
    )  # fmt: skip
    assert (k, crossed, bb, ba, n_over, open_) == (1, 0, 10, 20, 0, 0)
    assert bids[10] == 1.0 and asks[20] == 2.0


def test_nonzero_indices_match_numpy() -> None:
    rng = np.random.default_rng(5)
    for n in (0, 1, 17, 5000):
        arr = np.where(rng.random(n) < 0.1, rng.choice([0.5, 2.0, -0.0], n), 0.0)
        assert np.array_equal(nonzero_indices(arr), arr.nonzero()[0]), n


@pytest.mark.parametrize("seed", range(8))
def test_compiled_split_matches_numpy(seed: int) -> None:
    """The fast path splits batches into messages with a compiled kernel: the same rows
    in the same order, the same per-message bounds, hints and flags, the same carry."""
    from arbsim.data.feed import _split

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    per_msg = rng.integers(1, 60, size=n)
    tsl = np.repeat(np.cumsum(rng.integers(0, 3, size=n)), per_msg)[:n].astype(np.int64)
    seq = np.repeat(np.arange(n), per_msg)[:n].astype(np.int64)
    ticks = 600_000 + rng.integers(-80, 80, size=n)
    stray = rng.random(n) < 0.05  # levels far from the rest
    ticks[stray] += rng.choice([-1, 1], size=int(stray.sum())) * 400_000
    cols = {
        "ts_local": tsl,
        "ts_exchange": tsl - 5,
        "seq": seq,
        "side": rng.choice(np.array([1, -1], np.int8), size=n),
        "ticks": ticks.astype(np.int64),
        "size": np.where(rng.random(n) < 0.3, 0.0, rng.random(n)),
        "flags": rng.choice(np.array([0, 0, 0, 1, 2], np.uint8), size=n),
    }
    for last in (True, False):
        a, b = _split(cols, last), _split(cols, last, compiled=True)
        assert a.n == b.n and a.n > 0
        for name in ("ticks", "sizes", "starts", "tsl", "tsx", "flags", "hints", "meta"):
            x, y = getattr(a, name), getattr(b, name)
            assert x.dtype == y.dtype and np.array_equal(x, y), (seed, last, name)
        for name in ("starts_list", "splits_list", "ends_list", "bid_far_list", "ask_far_list"):
            assert getattr(a, name) == getattr(b, name), (seed, last, name)
        assert (a.carry is None) == last and (b.carry is None) == last
        if not last:
            assert a.carry is not None and b.carry is not None
            assert all(np.array_equal(a.carry[k], b.carry[k]) for k in cols)
    assert stray.any()


@pytest.mark.parametrize("seed", range(10))
def test_compiled_row_checks_match_numpy(seed: int) -> None:
    """Batches are checked by one compiled pass on the fast path: the same ticks, and the
    same first failure (check and row) as the NumPy checks, for each kind of bad row."""
    from decimal import Decimal

    from arbsim.core.book import TickScale
    from arbsim.core.kernels import check_rows
    from arbsim.data.feed import _checks

    rng = np.random.default_rng(seed)
    n = 500
    for tick in (Decimal("0.01"), Decimal("0.25")):
        scale = TickScale(tick)
        for fault in ("none", "order", "latency", "side", "nan", "zero", "size", "gone", "grid"):
            tsl = np.cumsum(rng.integers(0, 5, n)).astype(np.int64) + 10**18
            tsx = tsl - rng.integers(0, 1000, n)
            side = rng.choice(np.array([1, -1], np.int8), n)
            price = ((60_000 + rng.integers(-500, 500, n)) * float(tick)).astype(np.float64)
            size = rng.random(n) + 0.1
            at = int(rng.integers(1, n))
            later = min(n - 1, at + int(rng.integers(0, 40)))
            if fault == "order":
                tsl[at:] -= 10
            elif fault == "latency":
                tsx[at] = tsl[at] + 1
            elif fault == "side":
                side[at] = 0
            elif fault == "nan":
                price[at] = np.nan
                size[later] = -1.0  # reported after the price
            elif fault == "zero":
                price[at] = 0.0
            elif fault == "size":
                size[at] = np.inf
            elif fault == "gone":
                size[at] = 0.0  # a trade of nothing (a book row may delete a level)
            elif fault == "grid":
                price[at] += float(tick) / 3
            for trades in (False, True):
                want_ticks, want = _checks(tsl, tsx, side, price, size, scale, trades)
                got_ticks, got = check_rows(
                    tsl, tsx, side, price, size, scale.inv, scale.per_unit or 0,
                    scale.tick_f, trades,
                )  # fmt: skip
                failed = [(c, r) for c, r in enumerate(want) if r >= 0][:1]
                assert failed == [(c, r) for c, r in enumerate(got.tolist()) if r >= 0][:1]
                if not failed:
                    assert np.array_equal(want_ticks, got_ticks)
                should_fail = fault != "none" and not (fault == "gone" and not trades)
                assert bool(failed) == should_fail, (fault, trades)


@pytest.mark.parametrize("compiled", [False, True])
def test_touched_ranges_cover_every_row_of_each_side(tmp_path: Path, compiled: bool) -> None:
    """``touched`` (what the matching engine looks at after a message) is the tick range of
    all the message's rows per side, far rows included, from either split."""
    from arbsim.core.book import NO_ASK, NO_BID

    cat = write_catalog(tmp_path / "cat", [random_stream(300, 500)])
    inst = cat.instrument("k", "BTC/USDT")
    cur = BookCursor(
        cat, "k", inst.symbol, OrderBook("k", inst.symbol, inst.tick).scale, batch_size=61
    )
    cur.compiled = compiled
    seen = 0
    while cur.next():
        got = cur.touched()
        if cur.flags & 1:
            assert got is None
            continue
        bt, _, at, _ = cur.current_levels()
        want = (
            int(bt.min()) if len(bt) else NO_ASK,
            int(bt.max()) if len(bt) else NO_BID,
            int(at.min()) if len(at) else NO_ASK,
            int(at.max()) if len(at) else NO_BID,
        )
        assert got == want
        seen += 1
    assert seen > 300
