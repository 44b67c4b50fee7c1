"""MarketCapture: what a feed delivered, written as catalog rows and read back exactly."""

from __future__ import annotations

import random
from decimal import Decimal as D
from pathlib import Path

import builders

from arbsim.core.book import OrderBook
from arbsim.core.model import Side, Trade
from arbsim.core.ports import BookUpdate
from arbsim.data.capture import MarketCapture
from arbsim.data.catalog import FLAG_GAP, FLAG_SNAPSHOT_BEGIN, FLAG_SNAPSHOT_END, Catalog
from arbsim.data.feed import BookCursor, TradeCursor

T0 = 1_767_571_200_000_000_000
MS = 1_000_000


def updates(n: int, seed: int = 1) -> list[BookUpdate]:
    """A snapshot, ``n`` random diffs around 100, a resync snapshot in the middle."""
    rng = random.Random(seed)
    out = [
        BookUpdate(symbol="BTC/USDT", ts_exchange=T0, ts_local=T0 + 5 * MS, seq=1,
                   bids=[(99.0 - i * 0.1, 1.0 + i) for i in range(5)],
                   asks=[(100.0 + i * 0.1, 2.0 + i) for i in range(5)], snapshot=True)
    ]  # fmt: skip
    for i in range(1, n):
        ts = T0 + i * 10 * MS
        if i == n // 2:
            out.append(
                BookUpdate(symbol="BTC/USDT", ts_exchange=ts, ts_local=ts + 5 * MS, seq=i + 1,
                           bids=[(98.5, 3.0)], asks=[(100.5, 4.0)], snapshot=True)
            )  # fmt: skip
            continue
        bid = round(98.0 + rng.randint(0, 10) * 0.1, 1)
        ask = round(100.0 + rng.randint(0, 10) * 0.1, 1)
        out.append(
            BookUpdate(symbol="BTC/USDT", ts_exchange=ts, ts_local=ts + 5 * MS, seq=i + 1,
                       bids=[(bid, float(rng.randint(0, 3)))],
                       asks=[(ask, float(rng.randint(0, 3)))])
        )  # fmt: skip
    return out


def test_captured_book_replays_to_the_same_book_at_every_message(tmp_path: Path) -> None:
    inst = builders.instrument("mexc")
    cap = MarketCapture(tmp_path / "cat", source="test", flush_rows=7, rotate_rows=50)
    cap.instrument(inst)
    live = OrderBook("mexc", inst.symbol, inst.tick)
    states = []
    ups = updates(300)
    for u in ups:
        cap.update("mexc", u)
        live.apply_pairs(u.bids, u.asks, ts_exchange=u.ts_exchange, ts_local=u.ts_local,
                         seq=u.seq, snapshot=u.snapshot)  # fmt: skip
        states.append((live.bids(50), live.asks(50)))
    cap.trade("mexc", Trade(venue="mexc", symbol=inst.symbol, ts_exchange=T0, ts_local=T0 + MS,
                            trade_id=7, side=Side.SELL, price=99.0, size=0.5))  # fmt: skip
    cap.close()
    catalog = Catalog(tmp_path / "cat")
    assert catalog.instrument("mexc", inst.symbol).tick == inst.tick
    parts = list((tmp_path / "cat" / "mexc" / "BTC-USDT" / "book").rglob("*.parquet"))
    assert len(parts) > 1  # rotated
    replay = OrderBook("mexc", inst.symbol, inst.tick)
    cur = BookCursor(catalog, "mexc", inst.symbol, replay.scale, batch_size=64)
    got = []
    flags = []
    while cur.next():
        cur.apply(replay)
        got.append((replay.bids(50), replay.asks(50)))
    assert got == states
    import pyarrow.parquet as pq

    rows = pq.ParquetDataset(tmp_path / "cat" / "mexc" / "BTC-USDT" / "book").read().to_pylist()
    flags = [r["flags"] for r in rows if r["flags"]]
    assert flags[0] == FLAG_SNAPSHOT_BEGIN and flags[1] == FLAG_SNAPSHOT_END  # the first snapshot
    assert flags[2] == FLAG_GAP | FLAG_SNAPSHOT_BEGIN  # the resync: a gap, then a snapshot
    assert cap.stats.resyncs == {"mexc BTC/USDT": 1}
    tc = TradeCursor(catalog, "mexc", inst.symbol, replay.scale)
    assert tc.next() and tc.trade().trade_id == 7 and tc.trade().side is Side.SELL
    assert D(str(tc.trade().size)) == D("0.5")


def test_receipt_times_that_step_back_stay_in_order(tmp_path: Path) -> None:
    cap = MarketCapture(tmp_path / "cat", source="test")
    cap.instrument(builders.instrument("mexc"))
    for ts_local in (T0 + 5 * MS, T0 + 3 * MS, T0 + 6 * MS):
        cap.update("mexc", BookUpdate(symbol="BTC/USDT", ts_exchange=T0, ts_local=ts_local,
                                      bids=[(99.0, 1.0)], asks=[(100.0, 1.0)]))  # fmt: skip
    cap.close()
    import pyarrow.parquet as pq

    rows = pq.ParquetDataset(tmp_path / "cat" / "mexc" / "BTC-USDT" / "book").read()
    assert rows.column("ts_local").to_pylist() == [T0 + 5 * MS] * 4 + [T0 + 6 * MS] * 2
