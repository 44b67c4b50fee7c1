"""Gate.io book synchronisation: the real 2021 recording, injected gaps, full pushes, obu."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from exchanges.gateio import booksync, ws
from exchanges.live.booksync import BookChanges, DiffBookSync, ResyncNeeded, SyncEvent, SyncState

REPO_ROOT = Path(__file__).resolve().parents[3]
REALDATA = REPO_ROOT / ".." / "shared" / "realdata"


def realdata(rel: str) -> Path:
    path = REALDATA / rel
    if not path.exists():
        pytest.skip(reason=f"needs ../shared/realdata/{rel} next to the repo (not found)")
    return path


Event = tuple[float, str, Any]


def recorded_events() -> list[Event]:
    """REST snapshots (``<url> -> <ts>: <json>``) and WS book updates (``<ts>: <json>``) of
    the cryptofeed recording, merged by local receive time."""
    events: list[Event] = []
    for line in realdata("gateio/cryptofeed_GATEIO.http.0.0").read_text().splitlines():
        if not line.strip():
            continue
        url, rest = line.split(" -> ", 1)
        ts, body = rest.split(": ", 1)
        pair = url.split("currency_pair=")[1].split("&")[0]
        events.append((float(ts), pair, ws.decode_order_book_snapshot(body)))
    for line in realdata("gateio/cryptofeed_GATEIO.ws.1.0").read_text().splitlines():
        if not line.strip() or line.startswith("wss://"):
            continue
        ts, body = line.split(": ", 1)
        message = ws.decode(body)
        if isinstance(message, ws.Push) and isinstance(message.result, ws.OrderBookUpdate):
            events.append((float(ts), message.result.symbol, message.result))
    events.sort(key=lambda e: e[0])
    return events


def feed(sync: DiffBookSync, item: Any) -> list[SyncEvent]:
    if isinstance(item, ws.OrderBookSnapshot):
        return sync.on_snapshot(booksync.snapshot_from_rest(item))
    return sync.on_diff(booksync.diff_from_push(item))


@pytest.mark.realdata
def test_real_recording_gives_consistent_books_for_all_pairs() -> None:
    events = recorded_events()
    syncs: dict[str, DiffBookSync] = {}
    snapshot_id: dict[str, int] = {}
    applied: dict[str, list[ws.OrderBookUpdate]] = {}
    for _, pair, item in events:
        sync = syncs.setdefault(pair, booksync.new_order_book_update_sync(pair))
        out = feed(sync, item)
        assert not [e for e in out if isinstance(e, ResyncNeeded)], out
        if isinstance(item, ws.OrderBookSnapshot):
            snapshot_id[pair] = item.id
            applied[pair] = []
        for event in out:
            assert isinstance(event, BookChanges)
            if not event.replace:
                applied[pair].append(next_applied(events, pair, event.update_id))
        if sync.state is not SyncState.WAITING_SNAPSHOT:
            bid, ask = sync.book.best_bid(), sync.book.best_ask()
            assert bid is not None and ask is not None and bid < ask, (pair, bid, ask)
    assert len(syncs) == len(snapshot_id) == 10
    live = {p for p, s in syncs.items() if s.state is SyncState.LIVE}
    # INK_USDT and BTC_USDC got no update newer than their snapshot in the 32 s recorded.
    assert set(syncs) - live == {"INK_USDT", "BTC_USDC"}
    for pair, updates in applied.items():
        if not updates:
            assert syncs[pair].local_id == snapshot_id[pair]
            continue
        # The chain continues the snapshot id with no gap and no overlap.
        first = updates[0]
        assert first.first_id <= snapshot_id[pair] + 1 <= first.last_id
        for prev, cur in itertools.pairwise(updates):
            assert cur.first_id == prev.last_id + 1
        assert syncs[pair].local_id == updates[-1].last_id
    assert sum(len(u) for u in applied.values()) > 100
    hai = syncs["HAI_ETH"].book
    assert (str(hai.best_bid()), str(hai.best_ask())) == ("0.00010324", "0.00010397")


def next_applied(events: list[Event], pair: str, last_id: int) -> ws.OrderBookUpdate:
    for _, p, item in events:
        if p == pair and isinstance(item, ws.OrderBookUpdate) and item.last_id == last_id:
            return item
    raise AssertionError(f"{pair}: no update ending at {last_id}")


@pytest.mark.realdata
def test_injected_gap_in_real_recording_is_detected() -> None:
    events = recorded_events()
    omg = [e for e in events if e[1] == "OMG_USDT" and isinstance(e[2], ws.OrderBookUpdate)]
    snapshot = next(
        e for e in events if e[1] == "OMG_USDT" and isinstance(e[2], ws.OrderBookSnapshot)
    )
    newer = [e for e in omg if e[2].last_id > snapshot[2].id]
    assert len(newer) > 5
    dropped = newer[2]  # a middle update: the chain breaks after two applied updates
    sync = booksync.new_order_book_update_sync("OMG_USDT")
    resyncs: list[ResyncNeeded] = []
    for event in events:
        if event[1] != "OMG_USDT" or event is dropped:
            continue
        resyncs += [e for e in feed(sync, event[2]) if isinstance(e, ResyncNeeded)]
    assert len(resyncs) == 1
    assert resyncs[0].action == "snapshot" and "gap" in resyncs[0].reason
    # After the gap the machine waits for a new snapshot and keeps the newer updates.
    assert sync.state is SyncState.WAITING_SNAPSHOT and sync.buffered > 0
    stale = ws.OrderBookSnapshot(id=snapshot[2].id, bids=[], asks=[])
    (older,) = sync.on_snapshot(booksync.snapshot_from_rest(stale))
    assert isinstance(older, ResyncNeeded) and "older" in older.reason
    assert sync.buffered > 0


def _update(
    first: int,
    last: int,
    bids: list[tuple[str, str]] | None = None,
    asks: list[tuple[str, str]] | None = None,
    *,
    full: bool = False,
) -> ws.OrderBookUpdate:
    return ws.OrderBookUpdate(
        t=1000,
        symbol="BTC_USDT",
        first_id=first,
        last_id=last,
        bids=bids or [],
        asks=asks or [],
        full=full,
    )


def _diff(*args: Any, **kwargs: Any) -> Any:
    return booksync.diff_from_push(_update(*args, **kwargs))


def _snap(last: int) -> Any:
    return booksync.snapshot_from_rest(
        ws.OrderBookSnapshot(
            id=last, bids=[("100", "1"), ("99", "2")], asks=[("101", "1")], update=5
        )
    )


def test_overlap_is_applied_and_stale_dropped() -> None:
    sync = booksync.new_order_book_update_sync("BTC_USDT")
    assert sync.on_diff(_diff(5, 9)) == []  # buffered, older than the snapshot
    events = sync.on_snapshot(_snap(10))
    assert len(events) == 1 and isinstance(events[0], BookChanges) and events[0].replace
    assert events[0].ts_exchange == 5_000_000
    (changes,) = sync.on_diff(_diff(9, 12, bids=[("100", "0")]))  # straddles 11
    assert isinstance(changes, BookChanges) and changes.update_id == 12
    assert changes.ts_exchange == 1000 * 1_000_000
    assert str(sync.book.best_bid()) == "99"
    assert sync.on_diff(_diff(11, 12)) == []  # fully old: dropped
    (overlap,) = sync.on_diff(_diff(12, 14, asks=[("100.5", "3")]))
    assert isinstance(overlap, BookChanges) and sync.local_id == 14
    (gap,) = sync.on_diff(_diff(16, 17))
    assert isinstance(gap, ResyncNeeded) and gap.action == "snapshot"


def test_first_diff_must_straddle_snapshot() -> None:
    sync = booksync.new_order_book_update_sync("BTC_USDT")
    sync.on_snapshot(_snap(10))
    (resync,) = sync.on_diff(_diff(12, 13))
    assert isinstance(resync, ResyncNeeded) and "first diff" in resync.reason
    assert sync.state is SyncState.WAITING_SNAPSHOT and sync.buffered == 1
    events = sync.on_snapshot(_snap(11))
    assert [type(e) for e in events] == [BookChanges, BookChanges]
    assert sync.local_id == 13


def test_full_update_replaces_book() -> None:
    sync = booksync.new_order_book_update_sync("BTC_USDT")
    sync.on_snapshot(_snap(10))
    (full,) = sync.on_diff(_diff(50, 60, bids=[("1", "1")], asks=[("2", "1")], full=True))
    assert isinstance(full, BookChanges) and full.replace
    assert sync.local_id == 60 and sync.state is SyncState.LIVE
    assert sync.book.bids == {1: "1"} and list(sync.book.asks) == [2]
    (nxt,) = sync.on_diff(_diff(61, 61, asks=[("2", "0"), ("3", "4")]))
    assert isinstance(nxt, BookChanges) and str(sync.book.best_ask()) == "3"


def test_crossed_book_asks_for_resync() -> None:
    sync = booksync.new_order_book_update_sync("BTC_USDT")
    sync.on_snapshot(_snap(10))
    (crossed,) = sync.on_diff(_diff(11, 11, bids=[("101.5", "1")]))
    assert isinstance(crossed, ResyncNeeded) and "crossed" in crossed.reason
    assert sync.state is SyncState.WAITING_SNAPSHOT


def _obu(
    first: int | None, last: int, *, full: bool = False, bids: list[tuple[str, str]] | None = None
) -> Any:
    return booksync.diff_from_push(
        ws.Obu(
            t=7,
            stream="ob.BTC_USDT.50",
            first_id=first,
            last_id=last,
            full=full,
            bids=bids or [("10", "1")],
            asks=[("11", "1")],
        )
    )


def test_obu_procedure() -> None:
    sync = booksync.new_obu_sync("ob.BTC_USDT.50")
    assert sync.on_diff(_obu(5, 6)) == [] and sync.buffered == 0  # before the first full
    (full,) = sync.on_diff(_obu(None, 6, full=True))
    assert isinstance(full, BookChanges) and full.replace and sync.local_id == 6
    (inc,) = sync.on_diff(_obu(7, 9, bids=[("10", "0"), ("9", "2")]))
    assert isinstance(inc, BookChanges) and str(sync.book.best_bid()) == "9"
    (overlap,) = sync.on_diff(_obu(9, 12))  # obu is strict: U must be local + 1
    assert isinstance(overlap, ResyncNeeded) and overlap.action == "resubscribe"
    assert sync.on_diff(_obu(13, 14)) == []
    (again,) = sync.on_diff(_obu(None, 20, full=True))
    assert isinstance(again, BookChanges) and sync.local_id == 20


@pytest.mark.realdata
def test_real_obu_frames() -> None:
    _, full, incremental = json.loads(
        realdata("gateio/gateio_spot_obu_v2_messages.json").read_text()
    )
    sync = booksync.new_obu_sync("ob.BTC_USDT.400")
    out = []
    for raw in (full, incremental):
        message = ws.decode(json.dumps(raw))
        assert isinstance(message, ws.Push) and isinstance(message.result, ws.Obu)
        out += sync.on_diff(booksync.diff_from_push(message.result))
    replace, resync = out
    assert isinstance(replace, BookChanges) and replace.update_id == 25847113075
    assert replace.ts_exchange == 1754006400261 * 1_000_000
    # The file is trimmed: the incremental does not continue the full push.
    assert isinstance(resync, ResyncNeeded) and resync.action == "resubscribe"
