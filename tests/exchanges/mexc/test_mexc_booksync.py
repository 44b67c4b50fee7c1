"""MEXC book synchronisation with synthetic sequences (PROTOCOLS.md A5)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from arbsim.core.errors import MalformedMessage
from exchanges.live.booksync import BookChanges, DiffBookSync, ResyncNeeded, SyncState
from exchanges.mexc import booksync, push

REPO_ROOT = Path(__file__).resolve().parents[3]
REALDATA = REPO_ROOT / ".." / "shared" / "realdata"


def realdata(rel: str) -> Path:
    path = REALDATA / rel
    if not path.exists():
        pytest.skip(reason=f"needs ../shared/realdata/{rel} next to the repo (not found)")
    return path


def frame(first: int, last: int, bids: list[tuple[str, str]] | None = None,
          asks: list[tuple[str, str]] | None = None) -> push.AggreDepth:  # fmt: skip
    return push.AggreDepth(channel="spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT",
                           symbol="BTCUSDT", send_time=1000 + last, from_version=first,
                           to_version=last, bids=bids or [], asks=asks or [])  # fmt: skip


def depth(last_update_id: int) -> booksync.MexcDepth:
    return booksync.decode_depth(json.dumps({
        "lastUpdateId": last_update_id,
        "bids": [["100.00", "1"], ["99.50", "2"]],
        "asks": [["100.50", "1"], ["101.00", "3"]],
    }))  # fmt: skip


def on_frame(sync: object, f: push.AggreDepth) -> list[object]:
    assert hasattr(sync, "on_diff")
    # Round trip through the binary codec as the adapter would see it.
    decoded = push.decode_push(push.encode_push(f))
    assert isinstance(decoded, push.AggreDepth)
    return list(sync.on_diff(booksync.diff_from_aggre_depth(decoded)))


def test_buffer_snapshot_drop_and_apply() -> None:
    sync = booksync.new_book_sync("BTCUSDT")
    for f in (frame(100, 101), frame(102, 105, bids=[("100.00", "0")]), frame(106, 106)):
        assert on_frame(sync, f) == []
    assert sync.buffered == 3
    events = sync.on_snapshot(booksync.snapshot_from_depth(depth(103)))
    assert [type(e) for e in events] == [BookChanges, BookChanges, BookChanges]
    assert isinstance(events[0], BookChanges) and events[0].replace
    assert [e.update_id for e in events if isinstance(e, BookChanges)] == [103, 105, 106]
    assert isinstance(events[1], BookChanges)
    assert events[1].ts_exchange == (1000 + 105) * 1_000_000
    assert sync.local_id == 106 and sync.state is SyncState.LIVE
    assert str(sync.book.best_bid()) == "99.50"
    (changes,) = on_frame(sync, frame(107, 110, asks=[("100.25", "4")]))
    assert isinstance(changes, BookChanges) and str(sync.book.best_ask()) == "100.25"


def test_contiguous_snapshot_is_accepted() -> None:
    sync = booksync.new_book_sync("BTCUSDT")
    on_frame(sync, frame(104, 105))
    events = sync.on_snapshot(booksync.snapshot_from_depth(depth(103)))
    assert [type(e) for e in events] == [BookChanges, BookChanges]
    assert sync.local_id == 105


def test_stale_snapshot_asks_again_and_keeps_buffer() -> None:
    sync = booksync.new_book_sync("BTCUSDT")
    on_frame(sync, frame(110, 112))
    on_frame(sync, frame(113, 113))
    (resync,) = sync.on_snapshot(booksync.snapshot_from_depth(depth(100)))
    assert isinstance(resync, ResyncNeeded) and resync.action == "snapshot"
    assert "older" in resync.reason
    assert sync.buffered == 2 and sync.state is SyncState.WAITING_SNAPSHOT
    events = sync.on_snapshot(booksync.snapshot_from_depth(depth(111)))
    assert [type(e) for e in events] == [BookChanges, BookChanges, BookChanges]
    assert sync.local_id == 113


def test_first_update_after_snapshot_leaving_gap() -> None:
    sync = booksync.new_book_sync("BTCUSDT")
    sync.on_snapshot(booksync.snapshot_from_depth(depth(100)))
    assert on_frame(sync, frame(90, 100)) == []  # toVersion <= lastUpdateId: dropped
    (resync,) = on_frame(sync, frame(102, 103))
    assert isinstance(resync, ResyncNeeded) and "first diff" in resync.reason


def test_gap_while_live() -> None:
    sync = booksync.new_book_sync("BTCUSDT")
    sync.on_snapshot(booksync.snapshot_from_depth(depth(100)))
    on_frame(sync, frame(101, 102))
    (gap,) = on_frame(sync, frame(104, 105))
    assert isinstance(gap, ResyncNeeded) and "gap" in gap.reason
    assert sync.state is SyncState.WAITING_SNAPSHOT
    assert sync.buffered == 1 and len(sync.book.bids) == 0


def test_overlap_while_live_is_a_gap_on_mexc() -> None:
    # Step 7 is strict: fromVersion must be previous toVersion + 1.
    sync = booksync.new_book_sync("BTCUSDT")
    sync.on_snapshot(booksync.snapshot_from_depth(depth(100)))
    on_frame(sync, frame(101, 105))
    (resync,) = on_frame(sync, frame(104, 107))
    assert isinstance(resync, ResyncNeeded)


def test_zero_quantity_in_any_spelling_deletes() -> None:
    sync = booksync.new_book_sync("BTCUSDT")
    sync.on_snapshot(booksync.snapshot_from_depth(depth(100)))
    on_frame(sync, frame(101, 101, bids=[("100.0", "0.000000")], asks=[("100.5", "0")]))
    assert str(sync.book.best_bid()) == "99.50"
    assert str(sync.book.best_ask()) == "101.00"


@pytest.mark.realdata
def test_real_depth_answer_converts() -> None:
    recording = json.loads(realdata("mexc/gocryptotrader_mexc_v3_http_recording.json").read_text())
    answer = recording["routes"]["/api/v3/depth"]["GET"][0]["data"]
    snapshot = booksync.snapshot_from_depth(booksync.decode_depth(json.dumps(answer)))
    assert snapshot.last_id == 56217769552
    assert snapshot.ts_exchange == 1767205854814 * 1_000_000
    assert snapshot.bids[0] == ("87900.00", "0.05661525")
    sync = booksync.new_book_sync("BTCUSDT")
    sync.on_snapshot(snapshot)
    assert str(sync.book.best_bid()) == "87900.00" and str(sync.book.best_ask()) == "87903.98"
    assert not sync.book.is_crossed()


def test_depth_with_a_string_update_id_decodes() -> None:
    from exchanges.mexc.booksync import decode_depth

    d = decode_depth(b'{"lastUpdateId": "20453289489", "bids": [["1.0", "2.0"]], "asks": []}')
    assert d.last_update_id == 20453289489


def _live(tick: str | None = "0.01") -> DiffBookSync:
    sync = booksync.new_book_sync("BTCUSDT", Decimal(tick) if tick else None)
    sync.on_snapshot(booksync.snapshot_from_depth(depth(100)))
    (first,) = on_frame(sync, frame(101, 101, bids=[("99.00", "1")]))
    assert isinstance(first, BookChanges) and sync.state is SyncState.LIVE
    return sync


def test_stale_duplicate_is_dropped_not_resynced() -> None:
    sync = _live()
    assert on_frame(sync, frame(102, 103, bids=[("99.10", "1")]))
    assert on_frame(sync, frame(102, 103, bids=[("99.10", "1")])) == []  # the same again
    assert on_frame(sync, frame(101, 101)) == []  # an older one
    assert sync.stale == 2 and sync.state is SyncState.LIVE and sync.local_id == 103
    (gap,) = on_frame(sync, frame(105, 105))  # a genuine gap still resyncs
    assert isinstance(gap, ResyncNeeded)


def test_off_grid_or_unusable_levels_are_malformed() -> None:
    bad_levels = [
        ("100.005", "1"),
        ("abc", "1"),
        ("NaN", "1"),
        ("-1", "1"),
        ("0", "1"),
        ("1e999999", "1"),
        ("99.00", "-1"),
        ("99.00", "sNaN"),
        ("99.00", "1e-99"),
    ]
    for bad in bad_levels:
        sync = _live()
        with pytest.raises(MalformedMessage) as exc:
            on_frame(sync, frame(102, 102, bids=[bad]))
        assert exc.value.venue == "mexc" and exc.value.symbol == "BTCUSDT"
        assert sync.state is SyncState.WAITING_SNAPSHOT and not sync.book.bids  # forgotten
    # without a tick only the grid is unchecked
    assert on_frame(_live(None), frame(102, 102, bids=[("100.005", "1")]))
    with pytest.raises(MalformedMessage, match="backwards"):
        on_frame(_live(), frame(105, 104))


def test_a_bogus_future_id_cannot_freeze_the_book() -> None:
    sync = _live()
    assert on_frame(sync, frame(102, 10**15, bids=[("99.20", "1")]))  # contiguous, absurd end
    events: list[object] = []
    for v in range(10**15 - 200, 10**15):  # the venue's real ids all look stale now
        events = on_frame(sync, frame(v, v))
        if events:
            break
    (resync,) = events
    assert isinstance(resync, ResyncNeeded) and "in a row" in resync.reason


def test_snapshot_starts_from_the_diff_that_continues_it() -> None:
    """A buffered diff from a bogus future does not block every later snapshot."""
    sync = booksync.new_book_sync("BTCUSDT", Decimal("0.01"))
    assert on_frame(sync, frame(10**12, 10**12, bids=[("1.00", "1")])) == []  # bogus
    assert on_frame(sync, frame(101, 102, bids=[("99.00", "1")])) == []
    events = sync.on_snapshot(booksync.snapshot_from_depth(depth(100)))
    assert [type(e) for e in events] == [BookChanges, BookChanges]
    assert sync.local_id == 102 and Decimal("1.00") not in sync.book.bids
