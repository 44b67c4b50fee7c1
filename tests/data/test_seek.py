"""Fast windows: where a stream's reading starts for a window (Catalog.seek), that the
batches read from there are the full read's batches, and that a backtest of a window
started that way writes the same outputs as one that replays all the history."""

from __future__ import annotations

import filecmp
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import MS, T0, instrument

from arbsim.app.backtest import bundled_sample, catalog_config, default_config_path, run_backtest
from arbsim.app.config import load_config
from arbsim.core.book import OrderBook
from arbsim.core.model import Side
from arbsim.data.catalog import (
    FLAG_SNAPSHOT_BEGIN,
    FLAG_SNAPSHOT_END,
    Catalog,
    CatalogInfo,
    Seek,
    _batches_from,
)
from arbsim.data.feed import BookCursor, SharedBatches
from arbsim.data.synth import generate_synthetic

SYM = "BTC/USDT"
SNAP = FLAG_SNAPSHOT_BEGIN | FLAG_SNAPSHOT_END


Message = tuple[int, list[tuple[int, float, float]], bool]


def _book_rows(messages: list[Message], seq0: int = 0) -> dict[str, list[float | int]]:
    """Rows of book messages ``(ts, [(side, price, size)], snapshot)``."""
    cols: dict[str, list[float | int]] = {
        k: [] for k in ("ts_exchange", "ts_local", "seq", "side", "price", "size", "flags")
    }
    for k, (ts, levels, snap) in enumerate(messages):
        for side, price, size in levels:
            cols["ts_exchange"].append(ts - MS)
            cols["ts_local"].append(ts)
            cols["seq"].append(seq0 + k)
            cols["side"].append(side)
            cols["price"].append(price)
            cols["size"].append(size)
            cols["flags"].append(SNAP if snap else 0)
    return cols


def _catalog(tmp_path: Path) -> Catalog:
    cat = Catalog(tmp_path / "cat")
    cat.create(CatalogInfo(synthetic=True, description="seek test"))
    cat.write_instrument(instrument("a"))
    return cat


def _snapshot(ts: int, mid: float, depth: int = 3) -> Message:
    levels = [(1, mid - 0.1 * (i + 1), 1.0 + i) for i in range(depth)]
    levels += [(-1, mid + 0.1 * (i + 1), 2.0 + i) for i in range(depth)]
    return (ts, levels, True)


def _delta(ts: int, price: float, size: float, side: int = 1) -> Message:
    return (ts, [(side, price, size)], False)


def test_book_seek_is_the_latest_snapshot_message_before_the_start(tmp_path: Path) -> None:
    cat = _catalog(tmp_path)
    # each write is a row group of its own: snapshot at 10 ms, deltas, snapshot at 40 ms
    # whose rows run over two row groups, deltas, snapshot at 90 ms
    with cat.writer("a", SYM, "book") as w:
        w.write(_book_rows([_snapshot(T0 + 10 * MS, 100.0)], seq0=0))  # rows 0-5
        w.write(_book_rows([_delta(T0 + (20 + k) * MS, 99.9, k + 1.0) for k in range(4)], 1))
        snap = _snapshot(T0 + 40 * MS, 100.5)
        first, rest = (snap[0], snap[1][:2], True), (snap[0], snap[1][2:], True)
        w.write(_book_rows([first], seq0=5))  # rows 10-11
        w.write(_book_rows([rest], seq0=5))  # rows 12-15: the same message
        w.write(_book_rows([_delta(T0 + (50 + k) * MS, 100.4, 3.0) for k in range(3)], 6))
        w.write(_book_rows([_snapshot(T0 + 90 * MS, 101.0)], seq0=9))
    [path] = cat.files("a", SYM, "book")
    assert pq.ParquetFile(path).metadata.num_row_groups == 6
    # before the first snapshot: the stream's start
    assert cat.seek("a", SYM, "book", T0 + 10 * MS, 1) == Seek(0, 0)
    assert cat.seek("a", SYM, "book", T0 + 11 * MS, 1) == Seek(0, 0)
    assert cat.seek("a", SYM, "book", T0 + 40 * MS, 1) == Seek(0, 0)
    # the 40 ms snapshot begins at row 10, in the row group before its last rows
    assert cat.seek("a", SYM, "book", T0 + 41 * MS, 1) == Seek(0, 10)
    assert cat.seek("a", SYM, "book", T0 + 90 * MS, 1) == Seek(0, 10)
    assert cat.seek("a", SYM, "book", T0 + 91 * MS, 1) == Seek(0, 19)
    # moved back to a multiple of the batch size
    assert cat.seek("a", SYM, "book", T0 + 91 * MS, 8) == Seek(0, 16)
    assert cat.seek("a", SYM, "book", T0 + 41 * MS, 4) == Seek(0, 8)


def test_a_snapshot_message_split_over_two_row_groups_is_read_whole(tmp_path: Path) -> None:
    """The book built from the seek equals the book built from the start."""
    cat = _catalog(tmp_path)
    with cat.writer("a", SYM, "book") as w:
        w.write(_book_rows([_snapshot(T0 + 10 * MS, 100.0, depth=5)], seq0=0))
        w.write(_book_rows([_delta(T0 + 20 * MS, 99.4, 7.0)], seq0=1))
        snap = _snapshot(T0 + 40 * MS, 100.0, depth=5)
        w.write(_book_rows([(snap[0], snap[1][:7], True)], seq0=2))
        w.write(_book_rows([(snap[0], snap[1][7:], True)], seq0=2))
        w.write(_book_rows([_delta(T0 + 50 * MS, 100.6, 9.0, side=-1)], seq0=3))
    books = []
    for seek_ns in (None, T0 + 45 * MS):
        book = OrderBook("a", SYM, Decimal("0.1"))
        shared = SharedBatches(cat, "a", SYM, "book", book.scale, 3, seek_ns)
        cur = BookCursor(cat, "a", SYM, book.scale, batch_size=3, source=shared.reader())
        while cur.next():
            cur.apply(book)
        books.append(book)
    full, seeked = books
    for side in (Side.BUY, Side.SELL):
        assert seeked.levels(side, 20) == full.levels(side, 20)
    assert full.depth(Side.BUY) == 5 and full.depth(Side.SELL) == 6
    # the 99.4 level set before the snapshot is gone in both
    assert full.scale.tick_of(99.4) not in dict(full.levels(Side.BUY, 20))


def test_trades_seek_is_the_first_trade_at_the_start(tmp_path: Path) -> None:
    cat = _catalog(tmp_path)
    with cat.writer("a", SYM, "trades") as w:
        for part in range(3):
            ts = [T0 + (part * 10 + k) * MS for k in range(10)]
            w.write(
                {
                    "ts_exchange": ts,
                    "ts_local": ts,
                    "trade_id": [part * 10 + k for k in range(10)],
                    "side": [1] * 10,
                    "price": [100.0] * 10,
                    "size": [1.0] * 10,
                }
            )
    assert cat.seek("a", SYM, "trades", T0, 1) == Seek(0, 0)
    assert cat.seek("a", SYM, "trades", T0 + 15 * MS, 1) == Seek(0, 15)
    assert cat.seek("a", SYM, "trades", T0 + 15 * MS + 1, 1) == Seek(0, 16)
    assert cat.seek("a", SYM, "trades", T0 + 15 * MS, 4) == Seek(0, 12)
    # after the last trade: nothing to read
    assert cat.seek("a", SYM, "trades", T0 + 30 * MS, 1) == Seek(1, 0)


def test_files_of_later_dates_are_not_opened(tmp_path: Path) -> None:
    day = 86_400_000 * MS
    cat = _catalog(tmp_path)
    with cat.writer("a", SYM, "book") as w:
        w.write(_book_rows([_snapshot(T0 + 10 * MS, 100.0)], seq0=0))
        w.write(_book_rows([_snapshot(T0 + day + 10 * MS, 100.0)], seq0=1))
        w.write(_book_rows([_delta(T0 + 2 * day + 10 * MS, 99.9, 1.0)], seq0=2))
    files = cat.files("a", SYM, "book")
    assert [p.parent.name for p in files] == [
        "date=2026-01-05",
        "date=2026-01-06",
        "date=2026-01-07",
    ]
    files[2].write_bytes(b"not parquet")  # would fail if the search opened it
    assert cat.seek("a", SYM, "book", T0 + day + 20 * MS, 1) == Seek(1, 0)
    assert cat.seek("a", SYM, "book", T0 + day, 1) == Seek(0, 0)
    # reading from the seek opens only the files from there on
    first, _ = next(cat.batches("a", SYM, "book", 8, Seek(1, 0)))
    assert first.parent.name == "date=2026-01-06"


def test_batches_from_a_row_are_the_full_reads_batches(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": pa.array(np.arange(1000))}), path, row_group_size=70)
    pf = pq.ParquetFile(path)
    full = [b.column(0).to_pylist() for b in pf.iter_batches(batch_size=32)]
    for k in (0, 1, 2, 7, 30, 31):
        got = [b.column(0).to_pylist() for b in _batches_from(pf, 32 * k, 32)]
        assert got == full[k:], k


def _window_runs(
    catalog: Path, start: str, end: str, out: Path, offset_ms: float = 0.0
) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg, _ = catalog_config(Catalog(catalog), load_config(default_config_path()))
    if offset_ms:
        import msgspec

        venues = [msgspec.structs.replace(v, feed_offset_ms=offset_ms) for v in cfg.venues]
        cfg = msgspec.structs.replace(cfg, venues=venues)
    sums = []
    for name, seek in (("seek", True), ("full", False)):
        run_backtest(cfg, catalog_path=catalog, out_dir=out / name, start=start, end=end, seek=seek)
        sums.append(json.loads((out / name / "summary.json").read_text()))
    for f in ("orders.parquet", "fills.parquet", "arbs.parquet", "equity.parquet"):
        assert filecmp.cmp(out / "seek" / f, out / "full" / f, shallow=False), f
    assert filecmp.cmp(out / "seek" / "latency.parquet", out / "full" / "latency.parquet"), (
        "latency.parquet"
    )
    return sums[0], sums[1]


def test_a_window_of_the_sample_writes_the_outputs_of_a_full_warmup(tmp_path: Path) -> None:
    seek, full = _window_runs(
        bundled_sample(), "2026-01-05T00:12:00Z", "2026-01-05T00:16:00Z", tmp_path
    )
    assert seek["arbs"]["attempted"] > 10 and seek["arbs"] == full["arbs"]
    assert seek["pnl"] == full["pnl"]
    # the sample has one snapshot per book, at its start: the books replay from there
    assert seek["events"] <= full["events"]


@pytest.fixture(scope="module")
def snap_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seek") / "cat"
    generate_synthetic(root, seed=5, duration_s=420.0, snapshot_every_s=30.0)
    return root


@pytest.mark.parametrize("offset_ms", [0.0, 40.0, -3.0])
def test_a_window_of_a_snapshotted_catalog_replays_less_and_writes_the_same(
    snap_catalog: Path, tmp_path: Path, offset_ms: float
) -> None:
    seek, full = _window_runs(
        snap_catalog, "2026-01-05T00:04:10Z", "2026-01-05T00:06:50Z", tmp_path, offset_ms
    )
    assert seek["arbs"]["attempted"] > 5 and seek["arbs"] == full["arbs"]
    assert seek["pnl"] == full["pnl"]
    # from the 04:00 snapshot on, not from 00:00: well under two thirds of the events
    assert seek["events"] < 0.75 * full["events"]


def test_a_window_replays_its_events_and_the_warmup_since_the_snapshot(
    snap_catalog: Path, tmp_path: Path
) -> None:
    """Events replayed with seek <= the rows from each stream's seek row to the end."""
    cat = Catalog(snap_catalog)
    # 00:04:30; a snapshot every 30 s of exchange time: the latest one received before
    # the start is 00:04:00's (00:04:30's arrives a little after it)
    start = T0 + 270 * 1_000 * MS
    end = T0 + 300 * 1_000 * MS
    cfg, _ = catalog_config(cat, load_config(default_config_path()))
    s = run_backtest(
        cfg,
        catalog_path=snap_catalog,
        out_dir=tmp_path / "run",
        start="2026-01-05T00:04:30Z",
        end="2026-01-05T00:05:00Z",
    ).summary
    bound = 0
    for venue in ("mexc", "gateio"):
        for kind in ("book", "trades"):
            seek = cat.seek(venue, SYM, kind, start, 16_384)
            t = pq.read_table(cat.files(venue, SYM, kind)[seek.file]).slice(seek.row)
            tsl = t.column("ts_local").to_numpy()
            bound += int(np.count_nonzero(tsl < end))
            if kind == "book":
                # the seek row is at most one batch before the latest snapshot
                flags = t.column("flags").to_numpy()
                last = np.flatnonzero((flags & FLAG_SNAPSHOT_BEGIN) & (tsl < start))
                assert len(last) and last[-1] < 16_384 + 2_000
    assert 0 < s["events"] <= bound


def test_periodic_snapshots_carry_the_book_the_changes_build(tmp_path: Path) -> None:
    """``snapshot_every_s`` replaces the first message of each period by the whole book:
    replayed, the books are the same as from the changes alone."""
    plain, snapped = tmp_path / "plain", tmp_path / "snapped"
    generate_synthetic(plain, seed=2, duration_s=40.0)
    generate_synthetic(snapped, seed=2, duration_s=40.0, snapshot_every_s=10.0)
    for venue in ("mexc", "gateio"):
        a, b = Catalog(plain), Catalog(snapped)
        flags = pq.read_table(b.files(venue, SYM, "book")[0]).column("flags").to_numpy()
        tsl = pq.read_table(b.files(venue, SYM, "book")[0]).column("ts_local").to_numpy()
        assert len(np.unique(tsl[(flags & FLAG_SNAPSHOT_BEGIN) > 0])) == 4  # 0, 10, 20, 30 s
        trades = [pq.read_table(c.files(venue, SYM, "trades")[0]) for c in (a, b)]
        assert trades[0].equals(trades[1])
        # the same messages at the same times, only the snapshots' rows differ
        keys = [
            pq.read_table(c.files(venue, SYM, "book")[0], columns=["ts_local", "seq"])
            .group_by(["ts_local", "seq"])
            .aggregate([])
            .sort_by("ts_local")
            for c in (a, b)
        ]
        assert keys[0].equals(keys[1])
        inst = a.instrument(venue, SYM)
        ba, bb = OrderBook(venue, SYM, inst.tick), OrderBook(venue, SYM, inst.tick)
        ca = BookCursor(a, venue, SYM, ba.scale)
        cb = BookCursor(b, venue, SYM, bb.scale)
        pending = ca.next()
        checked = 0
        while cb.next():
            cb.apply(bb)
            while pending and ca.ts_local <= cb.ts_local:
                ca.apply(ba)
                pending = ca.next()
            if cb.flags & FLAG_SNAPSHOT_BEGIN:
                checked += 1
                for side in (Side.BUY, Side.SELL):
                    assert bb.levels(side, 10_000) == ba.levels(side, 10_000)
        assert checked == 4 and not pending
        for side in (Side.BUY, Side.SELL):
            assert bb.levels(side, 10_000) == ba.levels(side, 10_000)


def test_a_snapshot_heading_a_part_is_used_unless_it_may_continue_the_previous_one(
    tmp_path: Path,
) -> None:
    cat = _catalog(tmp_path)
    with cat.writer("a", SYM, "book") as w:  # part-0000
        w.write(_book_rows([_snapshot(T0 + 10 * MS, 100.0)], seq0=0))
        w.write(_book_rows([_delta(T0 + 20 * MS, 99.9, 1.0)], seq0=1))
    with cat.writer("a", SYM, "book") as w:  # part-0001, appended later the same day
        w.write(_book_rows([_snapshot(T0 + 30 * MS, 100.0)], seq0=2))
        w.write(_book_rows([_delta(T0 + 40 * MS, 99.9, 2.0)], seq0=3))
    names = [p.name for p in cat.files("a", SYM, "book")]
    assert names == ["part-0000.parquet", "part-0001.parquet"]
    assert cat.seek("a", SYM, "book", T0 + 35 * MS, 1) == Seek(1, 0)
    # a part whose first message has the previous part's last receive time may be the
    # rest of that message: its snapshot is passed over for the one before
    cat2 = Catalog(tmp_path / "cat2")
    cat2.create(CatalogInfo(synthetic=True, description="seek test"))
    cat2.write_instrument(instrument("a"))
    with cat2.writer("a", SYM, "book") as w:
        w.write(_book_rows([_snapshot(T0 + 10 * MS, 100.0)], seq0=0))
        w.write(_book_rows([_delta(T0 + 30 * MS, 99.9, 1.0)], seq0=1))
    with cat2.writer("a", SYM, "book") as w:
        w.write(_book_rows([_snapshot(T0 + 30 * MS, 100.0)], seq0=2))
    assert cat2.seek("a", SYM, "book", T0 + 35 * MS, 1) == Seek(0, 0)


def test_the_commands_take_snapshot_every_and_full_warmup(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from arbsim.app.cli import main

    cat = tmp_path / "cat"
    synth = ["data", "synth", "--catalog", str(cat), "--seed", "4", "--duration", "90"]
    bad = CliRunner().invoke(main, [*synth, "--snapshot-every", "-1"])
    assert bad.exit_code == 2 and "snapshot_every_s" in bad.output
    assert not cat.exists()
    got = CliRunner().invoke(main, [*synth, "--snapshot-every", "20"])
    assert got.exit_code == 0, got.output
    assert "--snapshot-every 20" in Catalog(cat).info().created_by
    window = ["--start", "2026-01-05T00:01:05Z", "--end", "2026-01-05T00:01:25Z"]
    sums = {}
    for name, extra in (("seek", []), ("full", ["--full-warmup"])):
        out = tmp_path / name
        run = ["backtest", "--data", str(cat), "--out", str(out), *window, *extra]
        got = CliRunner().invoke(main, run)
        assert got.exit_code == 0, got.output
        sums[name] = json.loads((out / "summary.json").read_text())
    assert sums["seek"]["events"] < sums["full"]["events"]
    for f in ("orders.parquet", "fills.parquet", "arbs.parquet", "equity.parquet"):
        assert filecmp.cmp(tmp_path / "seek" / f, tmp_path / "full" / f, shallow=False), f
