from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from arbsim.core.book import MAX_SPAN, OrderBook, TickScale
from arbsim.core.model import BookLevel, Side


def make(tick: str = "0.01") -> OrderBook:
    return OrderBook("v", "BTC/USDT", Decimal(tick))


def test_snapshot_then_deltas_best_and_levels() -> None:
    b = make()
    b.apply(
        [100.0, 99.99, 99.5],
        [1, 2, 3],
        [100.01, 100.05],
        [4, 5],
        ts_exchange=1,
        ts_local=2,
        seq=10,
        snapshot=True,
    )
    assert (b.best_bid, b.best_ask) == (100.0, 100.01)
    assert (b.best_bid_size, b.best_ask_size) == (1.0, 4.0)
    assert b.bids(5) == [BookLevel(100.0, 1), BookLevel(99.99, 2), BookLevel(99.5, 3)]
    assert b.asks(1) == [BookLevel(100.01, 4)]
    # delete the touch on both sides, add a better ask
    b.apply([100.0], [0], [100.01, 100.02], [0, 7], ts_exchange=3, ts_local=5, seq=11)
    assert (b.best_bid, b.best_ask) == (99.99, 100.02)
    assert b.depth(Side.BUY) == 2 and b.depth(Side.SELL) == 2
    assert (b.ts_exchange, b.ts_local, b.seq) == (3, 5, 11)
    assert b.age_ns(105) == 100
    # a new snapshot replaces everything
    b.apply([50.0], [1], [51.0], [1], ts_exchange=6, ts_local=7, seq=20, snapshot=True)
    assert b.depth(Side.BUY) == 1 and b.best_bid == 50.0 and b.best_ask == 51.0


def test_exact_price_conversion_for_decimal_ticks() -> None:
    s = TickScale(Decimal("0.01"))
    assert s.price(6182099) == 61820.99  # multiplying by 0.01 would give 61820.990000000005
    assert s.decimal(6182099) == Decimal("61820.99")
    assert TickScale(Decimal("0.5")).price(3) == 1.5
    odd = TickScale(Decimal("0.3"))
    assert odd.per_unit is None and odd.price(10) == pytest.approx(3.0)
    prices = np.array([100.0, 100.005])
    assert s.off_grid(prices, s.to_ticks(prices)).tolist() == [False, True]


def test_walk_average_worst_and_slippage() -> None:
    b = make("0.1")
    b.apply(
        [99.9],
        [1],
        [100.0, 100.1, 100.5],
        [1.0, 2.0, 10.0],
        ts_exchange=1,
        ts_local=1,
        snapshot=True,
    )
    filled, avg, worst = b.walk(Side.BUY, 2.5)
    assert filled == 2.5 and worst == 100.1
    assert avg == pytest.approx((1.0 * 100.0 + 1.5 * 100.1) / 2.5)
    # slippage vs the touch in bps: (avg - 100) / 100 * 1e4
    assert b.slippage_bps(Side.BUY, 2.5) == pytest.approx((avg - 100.0) / 100.0 * 1e4)
    filled, _, worst = b.walk(Side.BUY, 100.0)
    assert filled == 13.0 and worst == 100.5  # never more than displayed
    filled, avg, worst = b.walk(Side.SELL, 0.5)
    assert (filled, avg, worst) == (0.5, 99.9, 99.9)


def test_crossed_states_are_detected_and_counted() -> None:
    b = make()
    b.apply([100.0], [1], [100.1], [1], ts_exchange=1, ts_local=1, snapshot=True)
    assert not b.is_crossed and b.crossed_updates == 0
    b.apply([100.2], [1], [], [], ts_exchange=2, ts_local=2)
    assert b.is_crossed and b.crossed_updates == 1
    b.apply([], [], [100.1], [0], ts_exchange=3, ts_local=3)
    assert not b.is_crossed and b.crossed_updates == 1


class DictBook:
    """Reference: the obvious dict implementation."""

    def __init__(self) -> None:
        self.bids: dict[int, float] = {}
        self.asks: dict[int, float] = {}

    def apply(self, side: dict[int, float], ticks: list[int], sizes: list[float]) -> None:
        for t, s in zip(ticks, sizes, strict=True):
            if s:
                side[t] = s
            else:
                side.pop(t, None)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_deltas_match_reference_including_far_levels(seed: int) -> None:
    """Deep book, most updates far from the touch, prices drifting (regrids), small and
    large messages (both code paths), occasional stray far-away levels (overflow)."""
    rng = np.random.default_rng(seed)
    b = make()
    ref = DictBook()
    mid = 6_000_000
    for step in range(3000):
        mid += int(rng.integers(-40, 41))
        n = int(rng.choice([1, 3, 8, 40, 120]))
        dist = np.abs(rng.normal(0, 400, n)).astype(np.int64) + 1
        bid_t = (mid - dist[: n // 2]).tolist()
        ask_t = (mid + dist[n // 2 :]).tolist()
        bid_s = np.where(rng.random(len(bid_t)) < 0.3, 0.0, rng.random(len(bid_t)) + 0.01)
        ask_s = np.where(rng.random(len(ask_t)) < 0.3, 0.0, rng.random(len(ask_t)) + 0.01)
        if step % 500 == 7:  # a stray level far beyond the grid's maximum span
            bid_t.append(mid - MAX_SPAN * 3)
            bid_s = np.append(bid_s, 1.0)
        # keep the reference uncrossed like a real venue: drop levels through the other side
        ref.apply(ref.bids, bid_t, bid_s.tolist())
        ref.apply(ref.asks, ask_t, ask_s.tolist())
        top_bid = max(ref.bids) if ref.bids else None
        crossed_asks = [t for t in ref.asks if top_bid is not None and t <= top_bid]
        for t in crossed_asks:
            del ref.asks[t]
        b.apply_ticks(
            np.array(bid_t, np.int64),
            np.asarray(bid_s, np.float64),
            np.array(ask_t + crossed_asks, np.int64),
            np.concatenate([ask_s, np.zeros(len(crossed_asks))]),
            step,
            step,
            step,
            False,
        )
        assert b.best_bid_tick == (max(ref.bids) if ref.bids else None)
        assert b.best_ask_tick == (min(ref.asks) if ref.asks else None)
        assert b.top == (b.best_bid_tick, b.best_ask_tick, b.best_bid_size, b.best_ask_size)
        if step % 250 == 0:
            top = sorted(ref.bids.items(), reverse=True)[:20]
            assert b.levels(Side.BUY, 20) == top
            assert b.levels(Side.SELL, 20) == sorted(ref.asks.items())[:20]
    assert b.depth(Side.BUY) == len(ref.bids)
    assert b.depth(Side.SELL) == len(ref.asks)
    assert b.crossed_updates == 0


def test_hinted_path_equals_general_path() -> None:
    rng = np.random.default_rng(5)
    a, h = make(), make()
    snap_b = np.arange(5_999_000, 6_000_000, dtype=np.int64)
    snap_a = np.arange(6_000_001, 6_001_001, dtype=np.int64)
    for book in (a, h):
        book.apply_ticks(snap_b, np.ones(1000), snap_a, np.ones(1000), 0, 0, 0, True)
    for step in range(2000):
        bt = rng.integers(5_990_000, 6_000_050, 30)
        at = rng.integers(5_999_950, 6_010_000, 30)
        bs = np.where(rng.random(30) < 0.5, 0.0, 1.0)
        as_ = np.where(rng.random(30) < 0.5, 0.0, 1.0)
        # keep it uncrossed: only bids below / asks above the other side's touch are live
        ask_top = h.best_ask_tick or 6_010_000
        bs = np.where(bt >= ask_top, 0.0, bs)
        live_bids = [t for t, s in zip(bt.tolist(), bs.tolist(), strict=True) if s]
        bid_top = max([h.best_bid_tick or 0, *live_bids])
        as_ = np.where(at <= bid_top, 0.0, as_)
        hints = (
            int(bt.min()),
            int(bt.max()),
            int(bt[bs > 0].max()) if (bs > 0).any() else -(2**62),
            int(at.min()),
            int(at.max()),
            int(at[as_ > 0].min()) if (as_ > 0).any() else 2**62,
        )
        a.apply_ticks(bt, bs, at, as_, step, step, step, False)
        h.apply_hinted(bt, bs, at, as_, hints, step, step, step, False)
        assert (a.best_bid_tick, a.best_ask_tick) == (h.best_bid_tick, h.best_ask_tick)
    assert a.levels(Side.BUY, 50) == h.levels(Side.BUY, 50)
    assert a.levels(Side.SELL, 50) == h.levels(Side.SELL, 50)


def test_batch_hints_match_a_direct_computation() -> None:
    from arbsim.core.book import NO_ASK, NO_BID
    from arbsim.data.feed import _hint_rows

    # three messages: bids+asks, bids only (all deletions), asks only running to the batch
    # end, where a sentinel must not leak into the range
    ticks = np.array([10, 12, 20, 21, 11, 9, 30, 31], np.int64)
    sizes = np.array([1, 0, 1, 1, 0, 0, 0, 2], np.float64)
    starts = np.array([0, 4, 6], np.int64)
    splits = np.array([2, 6, 6], np.int64)
    ends = np.array([4, 6, 8], np.int64)
    got = [tuple(r) for r in _hint_rows(ticks, sizes, starts, splits, splits, ends).tolist()]
    assert got[0] == (10, 12, 10, 20, 21, 20)
    assert got[1] == (9, 11, NO_BID, NO_ASK, NO_BID, NO_ASK)  # no ask rows: an empty range
    assert got[2] == (NO_ASK, NO_BID, NO_BID, 30, 31, 31)


def test_apply_pairs_equals_apply() -> None:
    a, b = make(), make()
    snap_b = [(100.0 - i / 100, 1.0) for i in range(50)]
    snap_a = [(100.01 + i / 100, 1.0) for i in range(50)]
    for book in (a, b):
        book.apply_pairs(snap_b, snap_a, ts_exchange=1, ts_local=1, snapshot=True)
    rng = np.random.default_rng(2)
    for k in range(500):
        n = int(rng.choice([1, 3, 8, 30]))
        bids = [
            (round(100.0 - int(rng.integers(0, 60)) / 100, 2), float(rng.choice([0.0, 2.0])))
            for _ in range(n)
        ]
        asks = [
            (round(100.01 + int(rng.integers(0, 60)) / 100, 2), float(rng.choice([0.0, 3.0])))
            for _ in range(n)
        ]
        a.apply_pairs(bids, asks, ts_exchange=k, ts_local=k, seq=k)
        b.apply(
            [p for p, _ in bids],
            [s for _, s in bids],
            [p for p, _ in asks],
            [s for _, s in asks],
            ts_exchange=k,
            ts_local=k,
            seq=k,
        )
        assert (a.best_bid_tick, a.best_ask_tick) == (b.best_bid_tick, b.best_ask_tick)
    assert a.levels(Side.BUY, 100) == b.levels(Side.BUY, 100)
    assert a.levels(Side.SELL, 100) == b.levels(Side.SELL, 100)


@pytest.mark.parametrize("side", ["bids", "asks"])
def test_a_stray_price_in_one_message_does_not_stretch_the_grid(side: str) -> None:
    """A level far from the first one of the same message goes to the overflow: before, the
    grid was stretched to hold both (a 256 GiB allocation for 1e9 next to 100.2)."""
    book = OrderBook("x", "BTC/USDT", Decimal("0.05"))
    levels = ([1e9, 100.2], [1.0, 2.0])
    args = (*levels, [], []) if side == "bids" else ([], [], *levels)
    book.apply(*args, ts_exchange=0, ts_local=0, snapshot=True)
    held = book.bids(5) if side == "bids" else book.asks(5)
    assert sorted((lv.price, lv.size) for lv in held) == [(100.2, 2.0), (1e9, 1.0)]
    assert book._cap <= 1 << 16
