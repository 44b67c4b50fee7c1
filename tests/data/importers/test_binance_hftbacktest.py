"""The Binance (hftbacktest collector format) importer.

Synthetic tests write small line files to ``tmp_path``; the ``realdata`` tests import the
real recordings in ``../shared/realdata/binance`` and are skipped when it is absent.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest

from arbsim.core.errors import DataError
from arbsim.data.catalog import (
    FLAG_GAP,
    FLAG_REPAIR,
    FLAG_SNAPSHOT_BEGIN,
    FLAG_SNAPSHOT_END,
    KINDS,
    Catalog,
    Kind,
    PartitionWriter,
)
from arbsim.data.importers import ImportReport, import_binance_hftbacktest, replay_check

SYM = "BTC/USDT"
SNAP = FLAG_SNAPSHOT_BEGIN | FLAG_SNAPSHOT_END
T0 = 1_723_161_600_000_000_000  # a receive time (ns)
BEHIND_MS = 500  # the synthetic recording clock is 500 ms behind the exchange


# --------------------------------------------------------------------------- helpers
def _lv(levels: list[tuple[str, str]]) -> list[list[str]]:
    return [[p, q] for p, q in levels]


def snap(
    lid: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]], E: int | None = None
) -> dict[str, Any]:
    d: dict[str, Any] = {"lastUpdateId": lid, "bids": _lv(bids), "asks": _lv(asks)}
    if E is not None:
        d["E"] = d["T"] = E
    return d


def depth(
    E: int,
    U: int,
    u: int,
    b: list[tuple[str, str]] | None = None,
    a: list[tuple[str, str]] | None = None,
    pu: int | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "e": "depthUpdate",
        "E": E,
        "s": "BTCUSDT",
        "U": U,
        "u": u,
        "b": _lv(b or []),
        "a": _lv(a or []),
    }
    if pu is not None:
        data["pu"] = pu
        data["T"] = E
    return {"stream": "btcusdt@depth@100ms", "data": data}


def ticker(u: int, b: str, a: str, E: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"u": u, "s": "BTCUSDT", "b": b, "B": "1.0", "a": a, "A": "1.0"}
    if E is not None:
        data["E"] = data["T"] = E
    return {"stream": "btcusdt@bookTicker", "data": data}


def trade(E: int, t: int, p: str, q: str, m: bool) -> dict[str, Any]:
    data = {"e": "trade", "E": E, "T": E, "s": "BTCUSDT", "t": t, "p": p, "q": q, "m": m}
    return {"stream": "btcusdt@trade", "data": data}


def ems(recv: int) -> int:
    """The exchange time (ms) of a message received at ``recv`` by the slow clock."""
    return recv // 1_000_000 + BEHIND_MS


def write(path: Path, lines: list[tuple[int, dict[str, Any] | str]]) -> Path:
    text = "".join(
        f"{recv} {obj if isinstance(obj, str) else json.dumps(obj)}\n" for recv, obj in lines
    ).encode()
    path.write_bytes(gzip.compress(text) if path.suffix == ".gz" else text)
    return path


def rows(cat: Catalog, venue: str, kind: Kind = "book") -> dict[str, npt.NDArray[Any]]:
    batches = [b for _, b in cat.batches(venue, SYM, kind)]
    table = pa.Table.from_batches(batches)
    return {name: table.column(name).to_numpy() for name in table.column_names}


def imp(files: list[Path], cat: Catalog, venue: str = "bin", **kw: Any) -> ImportReport:
    return import_binance_hftbacktest(files, catalog=cat, venue=venue, symbol=SYM, **kw)


MS = 1_000_000


# --------------------------------------------------------------------------- synthetic
def test_chain_gap_is_flagged_on_that_message_only(tmp_path: Path) -> None:
    t = [T0 + i * 100 * MS for i in range(5)]
    f = write(
        tmp_path / "spot.gz",  # gzip input is detected by its magic bytes
        [
            (t[0], snap(100, [("10.00", "1")], [("10.02", "1")])),
            (t[1], depth(ems(t[1]), 101, 105, b=[("9.99", "2")])),
            (t[2], depth(ems(t[2]), 107, 110, a=[("10.03", "1")])),  # 106 missing
            (t[3], depth(ems(t[3]), 111, 112, b=[("9.98", "1")], a=[("10.04", "2")])),
        ],
    )
    cat = Catalog(tmp_path / "cat")
    rep = imp([f], cat)
    assert rep.gaps == 1
    assert rep.diffs_applied == 3
    r = rows(cat, "bin")
    flags = dict(zip(r["seq"].tolist(), r["flags"].tolist(), strict=True))
    assert flags == {100: SNAP, 105: 0, 110: FLAG_GAP, 112: 0}
    assert r["seq"].tolist() == [100, 100, 105, 110, 112, 112]


def test_first_diff_after_snapshot_must_straddle(tmp_path: Path) -> None:
    f = write(
        tmp_path / "spot.txt",
        [
            (T0, snap(100, [("10.00", "1")], [("10.02", "1")])),
            (T0 + MS, depth(ems(T0 + MS), 103, 106, b=[("9.99", "2")])),  # 101..102 missing
            (T0 + 2 * MS, depth(ems(T0 + 2 * MS), 107, 108, b=[("9.98", "2")])),
        ],
    )
    cat = Catalog(tmp_path / "cat")
    assert imp([f], cat).gaps == 1
    r = rows(cat, "bin")
    assert r["flags"][r["seq"] == 106].tolist() == [FLAG_GAP]
    assert r["flags"][r["seq"] == 108].tolist() == [0]


def test_usdm_chain_uses_pu(tmp_path: Path) -> None:
    t = [T0 + i * MS for i in range(5)]
    f = write(
        tmp_path / "usdm.txt",
        [
            (t[0], snap(100, [("10.0", "1.000")], [("10.2", "1.000")], E=ems(t[0]))),
            (t[1], depth(ems(t[1]), 95, 104, b=[("9.9", "0.002")], pu=90)),  # straddles 101
            (t[2], depth(ems(t[2]), 120, 130, b=[("9.8", "0.001")], pu=104)),  # ids jump: fine
            (t[3], depth(ems(t[3]), 140, 150, a=[("10.3", "0.001")], pu=131)),  # pu != 130
        ],
    )
    cat = Catalog(tmp_path / "cat")
    rep = imp([f], cat)
    assert rep.market == "usdm"
    assert (rep.maker_fee, rep.taker_fee) == (Decimal("0.0002"), Decimal("0.0005"))
    assert (rep.tick, rep.lot) == (Decimal("0.1"), Decimal("0.001"))
    assert rep.gaps == 1
    r = rows(cat, "bin")
    assert r["flags"][r["seq"] == 150].tolist() == [FLAG_GAP]
    assert r["flags"][r["seq"] == 130].tolist() == [0]
    # the USD-M snapshot has its own exchange time
    assert r["ts_exchange"][r["seq"] == 100].tolist() == [ems(t[0]) * MS] * 2


def _sync_lines(tmp_path: Path) -> tuple[Path, list[int]]:
    t = [T0 + i * 10 * MS for i in range(6)]
    f = write(
        tmp_path / "sync.txt",
        [
            (t[0], depth(ems(t[0]), 90, 99, b=[("9.90", "1")])),  # older than the snapshot
            (t[1], depth(ems(t[1]), 100, 102, b=[("9.95", "3")])),  # straddles 101
            (t[2], snap(100, [("10.00", "1")], [("10.02", "1")])),
            (t[3], depth(ems(t[3]), 98, 100, b=[("9.80", "1")])),  # u <= lastUpdateId
            (t[4], depth(ems(t[4]), 103, 104, a=[("10.03", "1")])),
        ],
    )
    return f, t


def test_stale_diffs_dropped_and_early_diff_applied_after_snapshot(tmp_path: Path) -> None:
    f, t = _sync_lines(tmp_path)
    cat = Catalog(tmp_path / "cat")
    rep = imp([f], cat)
    assert (rep.dropped_stale_diffs, rep.diffs_replayed, rep.gaps) == (2, 1, 0)
    r = rows(cat, "bin")
    assert r["seq"].tolist() == [100, 100, 102, 104]
    # the diff received before the snapshot is applied at the snapshot's ts_local
    tsl = dict(zip(r["seq"].tolist(), r["ts_local"].tolist(), strict=True))
    assert tsl[102] == tsl[100] == t[2] + rep.clock_offset_ns
    assert tsl[104] == t[4] + rep.clock_offset_ns
    assert not np.isin(r["price"], [9.90, 9.80]).any()


def test_strict_file_order_sees_a_gap_after_the_snapshot(tmp_path: Path) -> None:
    f, _ = _sync_lines(tmp_path)
    cat = Catalog(tmp_path / "cat")
    rep = imp([f], cat, replay_buffered_diffs=False)
    assert (rep.dropped_stale_diffs, rep.diffs_without_book, rep.gaps) == (2, 1, 1)
    r = rows(cat, "bin")
    assert r["seq"].tolist() == [100, 100, 104]
    assert r["flags"].tolist() == [SNAP, SNAP, FLAG_GAP]


def _repair_lines(tmp_path: Path) -> tuple[Path, list[int]]:
    t = [T0 + i * 10 * MS for i in range(6)]
    f = write(
        tmp_path / "repair.txt",
        [
            # the 10.05 bid and 10.06 ask are stale: the bookTicker at the same id says so
            (
                t[0],
                snap(100, [("10.05", "1"), ("10.00", "1")], [("10.06", "1"), ("10.07", "1")]),
            ),
            (t[1], ticker(99, "9.00", "11.00")),  # older than the book: ignored
            (t[2], ticker(100, "10.00", "10.07")),
            (t[3], depth(ems(t[3]), 101, 102, a=[("10.02", "2")])),  # below the stale bid
            (t[4], ticker(103, "10.00", "10.02")),  # newer, agrees: nothing to remove
        ],
    )
    return f, t


def test_book_ticker_repair(tmp_path: Path) -> None:
    f, t = _repair_lines(tmp_path)
    cat = Catalog(tmp_path / "cat")
    rep = imp([f], cat)
    assert (rep.book_tickers, rep.repairs, rep.repairs_stale) == (3, 2, 2)
    r = rows(cat, "bin")
    rep_rows = r["flags"] == FLAG_REPAIR
    assert r["price"][rep_rows].tolist() == [10.05, 10.06]
    assert r["side"][rep_rows].tolist() == [1, -1]
    assert r["size"][rep_rows].tolist() == [0.0, 0.0]
    assert r["seq"][rep_rows].tolist() == [100, 100]  # the book's update id
    assert set(r["ts_local"][rep_rows].tolist()) == {t[2] + rep.clock_offset_ns}
    # bookTickers are not stored: 4 snapshot rows + 2 repairs + 1 diff row
    assert rep.book_rows == len(r["seq"]) == 7
    check = replay_check([f], cat, "bin", SYM)
    assert (check.shared_ids, check.matches, check.crossed_states) == (1, 1, 0)


def test_without_repair_the_same_data_is_crossed(tmp_path: Path) -> None:
    # the bookTickers are what remove the stale levels: drop them and the check fails
    f, _ = _repair_lines(tmp_path)
    keep = [ln for ln in f.read_text().splitlines() if '"u": 100,' not in ln]
    g = tmp_path / "norepair.txt"
    g.write_text("\n".join(ln for ln in keep if '"u": 103,' not in ln) + "\n")
    cat = Catalog(tmp_path / "cat")
    assert imp([g], cat).repairs == 0
    check = replay_check([f], cat, "bin", SYM)  # compared with all the bookTickers
    assert check.crossed_states == 1  # after the diff: stale bid 10.05 >= ask 10.02
    assert (check.shared_ids, check.matches, check.match_ratio) == (1, 0, 0.0)
    assert "update id 100" in check.mismatches[0]


def test_trades_sides_and_clock_offset_estimate(tmp_path: Path) -> None:
    t = [T0 + i * MS for i in range(4)]
    f = write(
        tmp_path / "tr.txt",
        [
            (t[0], trade(ems(t[0]) - 3, 7, "10.00", "0.0015", True)),  # 497 ms "early"
            (t[1], trade(ems(t[1]) - 1, 8, "10.01", "0.2", False)),  # 499 ms: the most
            (t[2], snap(100, [("10.00", "1")], [("10.02", "1")])),
            (t[3], depth(ems(t[3]) - 2, 101, 101, b=[("9.99", "1")])),
        ],
    )
    cat = Catalog(tmp_path / "cat")
    rep = imp([f], cat, min_feed_latency_ns=2 * MS)
    # min(receive - exchange) is -499 ms; shifting by 499 + 2 ms leaves 2 ms
    assert rep.clock_offset_estimated
    assert rep.clock_offset_ns == (BEHIND_MS - 1 + 2) * MS
    assert (rep.tick, rep.lot) == (Decimal("0.01"), Decimal("0.0001"))  # lot from trades
    tr = rows(cat, "bin", "trades")
    assert tr["trade_id"].tolist() == [7, 8]
    assert tr["side"].tolist() == [-1, 1]  # m=true: the buyer was the maker, a sell hit it
    assert tr["ts_exchange"].tolist() == [(ems(t[0]) - 3) * MS, (ems(t[1]) - 1) * MS]
    lat = (tr["ts_local"] - tr["ts_exchange"]).tolist()
    assert lat == [4 * MS, 2 * MS]
    book = rows(cat, "bin")
    # the spot snapshot has no exchange time: its ts_local minus the latency floor
    snap_rows = book["flags"] == SNAP
    assert (book["ts_local"] - book["ts_exchange"])[snap_rows].tolist() == [2 * MS, 2 * MS]
    assert rep.feed_latency_min_ms == 2.0
    assert rep.clamped_ts_exchange == 0


def test_given_offset_clamps_negative_latency(tmp_path: Path) -> None:
    t = [T0 + i * MS for i in range(3)]
    f = write(
        tmp_path / "c.txt",
        [
            (t[0], snap(100, [("10.00", "1")], [("10.02", "1")])),
            (t[1], depth(ems(t[1]), 101, 101, b=[("9.99", "1")])),
            (t[2], trade(ems(t[2]), 1, "10.00", "1", False)),
            (t[2] - 5, trade(ems(t[2]) - 600, 2, "10.00", "1", False)),  # receive time went back
        ],
    )
    cat = Catalog(tmp_path / "cat")
    rep = imp([f], cat, clock_offset_ns=0)
    assert not rep.clock_offset_estimated
    assert rep.clamped_ts_exchange == 2  # the diff and trade 1 were 500 ms "in the future"
    assert rep.clamped_ts_local == 1
    tr = rows(cat, "bin", "trades")
    assert tr["ts_local"].tolist() == [t[2], t[2]]
    assert tr["ts_exchange"].tolist() == [t[2], (ems(t[2]) - 600) * MS]
    book = rows(cat, "bin")
    assert (book["ts_exchange"] <= book["ts_local"]).all()


def test_given_tick_coarser_than_the_data_is_refused(tmp_path: Path) -> None:
    f = write(tmp_path / "a.txt", [(T0, snap(100, [("10.05", "1")], [("10.10", "1")]))])
    with pytest.raises(DataError, match=r"2 decimals, finer than the given 0\.1"):
        imp([f], Catalog(tmp_path / "cat"), tick=Decimal("0.1"))
    # a tick that is not a power of ten is left to the replay's exact grid check
    g = write(tmp_path / "b.txt", [(T0, snap(100, [("10.5", "1")], [("11.0", "1")]))])
    assert imp([g], Catalog(tmp_path / "cat2"), tick=Decimal("0.5")).tick == Decimal("0.5")
    with pytest.raises(ValueError, match="min_feed_latency_ns"):
        imp([g], Catalog(tmp_path / "cat3"), min_feed_latency_ns=-1)


GOOD = [
    (T0, snap(100, [("10.00", "1")], [("10.02", "1")])),
    (T0 + MS, depth(ems(T0 + MS), 101, 101, b=[("9.99", "1")])),
    (T0 + 2 * MS, trade(ems(T0 + 2 * MS), 1, "10.00", "1", False)),
]


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ('{"stream":"btcusdt@trade","data":{"e":"trade"', "truncated"),
        ('{"stream":"btcusdt@depth@100ms","data":{"E":1,"U":102,"b":[],"a":[]}}', "`u`"),
        (
            '{"stream":"btcusdt@trade","data":{"T":1,"t":3,"p":"abc","q":"1","m":true}}',
            "Expected `float`",
        ),
        (
            '{"stream":"btcusdt@depth@100ms","data":{"E":1,"U":102,"u":102,'
            '"b":[["-1.00","1"]],"a":[]}}',
            "bad price or size",
        ),
        (
            '{"stream":"ethusdt@trade","data":{"T":1,"t":3,"p":"1","q":"1","m":true,'
            '"s":"ETHUSDT"}}',
            "message for ETHUSDT",
        ),
        ('{"hello":1}', "neither a depth snapshot nor a stream message"),
    ],
)
def test_malformed_line_names_file_and_line_and_writes_nothing(
    tmp_path: Path, bad: str, why: str
) -> None:
    cat = Catalog(tmp_path / "cat")
    first = write(tmp_path / "first.txt", list(GOOD))
    imp([first], cat, venue="good")
    before = rows(cat, "good")
    later = [(T0 + 10 * MS, depth(ems(T0 + 10 * MS), 102, 102, b=[("9.98", "1")]))]
    second = write(tmp_path / "second.txt", [*later, *later, (T0 + 11 * MS, bad)])
    with pytest.raises(DataError, match=rf"second\.txt:3: .*{why}"):
        imp([first, second], cat, venue="bad")
    # decided behaviour: every line is validated before anything of the venue is written,
    # so the failed import leaves no trace and everything written before stays readable
    assert cat.files("bad", SYM, "book") == [] and cat.files("bad", SYM, "trades") == []
    after = rows(cat, "good")
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert len(cat.info().notes) == 1
    # ... and the corrected import can simply be run again
    second.write_text("".join(second.read_text().splitlines(keepends=True)[:2]))
    assert imp([first, second], cat, venue="bad").diffs_applied == 2


def test_bad_timestamp_prefix(tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_text('{"lastUpdateId": 1, "bids": [], "asks": []}\n')
    with pytest.raises(DataError, match=r"x\.txt:1: expected '<local_receive_ns> <json>'"):
        imp([f], Catalog(tmp_path / "cat"))


def test_catalog_created_then_appended_and_venue_not_imported_twice(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "cat")
    f = write(tmp_path / "a.txt", list(GOOD))
    r1 = imp([f], cat, venue="one", description="two venues")
    r2 = imp([f], cat, venue="two", maker_fee=Decimal("0"), taker_fee=Decimal("0.0004"))
    assert (r1.catalog_created, r2.catalog_created) == (True, False)
    info = cat.info()
    assert not info.synthetic and info.description == "two venues"
    assert [n.split(" ")[0] for n in info.notes] == ["one", "two"]
    inst = cat.instrument("two", SYM)
    assert (inst.tick, inst.lot, inst.maker_fee, inst.taker_fee) == (
        Decimal("0.01"),
        Decimal("1"),
        Decimal("0"),
        Decimal("0.0004"),
    )
    with pytest.raises(DataError, match=r"one BTC/USDT: the new data .* overlaps the data already"):
        imp([f], cat, venue="one")
    assert any("took" in line for line in r1.lines())


def test_a_new_day_is_appended_to_the_stream_already_in_the_catalog(tmp_path: Path) -> None:
    day = 86_400_000_000_000
    t1 = [T0 - 2 * 100 * MS + i * 100 * MS for i in range(2)]  # the day before T0's
    t2 = [T0 + i * 100 * MS for i in range(3)]  # continues the chain, no new snapshot
    f1 = write(
        tmp_path / "d1.gz",
        [
            (t1[0], snap(100, [("10.00", "1"), ("9.99", "1")], [("10.02", "1")])),
            (t1[1], depth(ems(t1[1]), 101, 102, b=[("9.98", "1")])),
            (t1[1] + MS, trade(ems(t1[1] + MS), 1, "10.00", "0.5", False)),
        ],
    )
    f2 = write(
        tmp_path / "d2.gz",
        [
            (t2[0], depth(ems(t2[0]), 103, 104, b=[("10.00", "0")])),
            (t2[1], depth(ems(t2[1]), 105, 105, a=[("10.01", "2")])),
            (t2[2], trade(ems(t2[2]), 2, "10.01", "1", True)),
        ],
    )
    cat = Catalog(tmp_path / "cat")
    first = imp([f1], cat)
    before = {k: cat.files("bin", SYM, k) for k in KINDS}
    second = imp([f2], cat)
    assert second.appended and not second.catalog_created
    assert second.clock_offset_reused and second.clock_offset_ns == first.clock_offset_ns
    # the book went on from the catalog's last state: no snapshot needed, no gap
    assert (second.snapshots, second.diffs_applied, second.gaps) == (0, 2, 0)
    assert second.diffs_without_book == 0
    assert any("appended to the stream already there" in line for line in second.lines())
    for kind, files in before.items():
        now = cat.files("bin", SYM, kind)
        assert set(files) < set(now)  # new parts; the old ones untouched
    r = rows(cat, "bin")
    assert r["seq"].tolist() == [100, 100, 100, 102, 104, 105]
    assert (r["ts_local"][1:] >= r["ts_local"][:-1]).all()
    assert rows(cat, "bin", "trades")["trade_id"].tolist() == [1, 2]
    info = cat.info()
    assert len(info.notes) == 2 and info.clock_offsets_ns == {f"bin:{SYM}": first.clock_offset_ns}
    # the replayed book is the one the two days make together
    from arbsim.core.book import OrderBook
    from arbsim.data.feed import BookCursor

    inst = cat.instrument("bin", SYM)
    book = OrderBook("bin", SYM, inst.tick)
    cur = BookCursor(cat, "bin", SYM, book.scale)
    while cur.next():
        cur.apply(book)
    assert (book.best_bid, book.best_ask) == (9.99, 10.01)
    # the same day again overlaps, and an earlier one is refused too: nothing written
    with pytest.raises(DataError, match=r"the new data \(.*\) overlaps the data already in"):
        imp([f2], cat)
    f0 = write(
        tmp_path / "d0.gz",
        [(T0 - day, snap(50, [("10.00", "1")], [("10.02", "1")]))],
    )
    with pytest.raises(DataError, match="comes before the data already in the catalog"):
        imp([f0], cat)
    assert cat.files("bin", SYM, "book") == sorted(set(cat.files("bin", SYM, "book")))
    with pytest.raises(DataError, match=r"has tick 0\.01; an import appended to it cannot"):
        imp([write(tmp_path / "d3.gz", [(T0 + day, snap(200, [("10", "1")], []))])], cat,
            tick=Decimal("0.1"))  # fmt: skip


def test_mixed_spot_and_usdm_refused(tmp_path: Path) -> None:
    f = write(
        tmp_path / "m.txt",
        [
            (T0, depth(ems(T0), 1, 2, b=[("1.0", "1")])),
            (T0 + 1, depth(ems(T0), 3, 4, b=[("1.0", "1")], pu=2)),
        ],
    )
    with pytest.raises(DataError, match="mix spot"):
        imp([f], Catalog(tmp_path / "cat"))


# --------------------------------------------------------------------------- real data
SPOT = ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"]
USDM = ["usdm_btcusdt_20240808.gz"]
SPOT_0808_LAST_U = 50093421584  # the 0809 file's first diff has U = this + 1


class Imported:
    def __init__(self, root: Path, data: Path, replay_buffered: bool):
        self.cat = Catalog(root)
        self.spot_files = [data / "binance" / f for f in SPOT]
        self.usdm_files = [data / "binance" / f for f in USDM]
        kw: dict[str, Any] = {"catalog": self.cat, "symbol": SYM}
        kw["replay_buffered_diffs"] = replay_buffered
        self.spot = import_binance_hftbacktest(self.spot_files, venue="binance_spot", **kw)
        self.usdm = import_binance_hftbacktest(self.usdm_files, venue="binance_usdm", **kw)


@pytest.fixture(scope="module")
def real(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Imported:
    return Imported(tmp_path_factory.mktemp("real") / "cat", realdata, True)


@pytest.fixture(scope="module")
def strict(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Imported:
    return Imported(tmp_path_factory.mktemp("strict") / "cat", realdata, False)


@pytest.mark.realdata
def test_real_counts(real: Imported) -> None:
    s, u = real.spot, real.usdm
    # spot: 41,249 + 58,325 lines; 3,451 + 3,044 diffs of which 3 precede the snapshot
    # line: 2 are older than lastUpdateId 50093239218 (dropped), the third (U..u =
    # ...208..224) straddles it and is applied right after the snapshot. The chain is then
    # unbroken through both files: 0 gaps.
    assert (s.lines_read, s.snapshots, s.diffs, s.diffs_applied) == (99_574, 1, 6_495, 6_493)
    assert (s.diffs_replayed, s.dropped_stale_diffs, s.diffs_without_book) == (1, 2, 0)
    assert (s.gaps, s.book_tickers, s.trades, s.trade_rows) == (0, 73_174, 19_904, 19_904)
    # no level is stale at the bookTicker's own id; the repairs remove levels a newer
    # bookTicker already shows gone, before the next 100 ms diff removes them
    assert (s.repairs, s.repairs_stale) == (6_855, 0)
    # 2,000 snapshot levels + 298,094 diff level changes + 6,855 repair rows
    assert s.book_rows == 306_949
    # USD-M: 6 diffs before the snapshot line, 4 older than lastUpdateId, 2 newer
    assert (u.lines_read, u.snapshots, u.diffs, u.diffs_applied) == (93_954, 1, 6_551, 6_547)
    assert (u.diffs_replayed, u.dropped_stale_diffs, u.gaps) == (2, 4, 0)
    assert (u.book_tickers, u.trades, u.repairs, u.repairs_stale) == (66_089, 21_313, 5_355, 0)
    # 2,000 + (443,521 level changes - 259 in the 4 dropped diffs) + 5,355
    assert u.book_rows == 450_617
    assert s.clamped_ts_exchange == s.clamped_ts_local == u.clamped_ts_exchange == 0
    assert (s.tick, s.lot, u.tick, u.lot) == tuple(
        Decimal(x) for x in ("0.01", "0.00001", "0.1", "0.001")
    )


@pytest.mark.realdata
def test_real_catalog_reads_back(real: Imported) -> None:
    r = rows(real.cat, "binance_spot")
    flags, seq = r["flags"], r["seq"]
    assert int((flags == SNAP).sum()) == 2_000
    assert int((flags == FLAG_REPAIR).sum()) == 6_855
    assert int((flags & FLAG_GAP).sum()) == 0
    diff = flags == 0
    # README: 124k level changes in 0808 (124,090 less the 17 of the two stale diffs),
    # 174,021 in 0809
    assert int((diff & (seq <= SPOT_0808_LAST_U)).sum()) == 124_073
    assert int((diff & (seq > SPOT_0808_LAST_U)).sum()) == 174_021
    assert np.all(np.diff(r["ts_local"]) >= 0)
    # after the shift the stream crosses midnight UTC: one partition per day
    assert [p.parent.name for p in real.cat.files("binance_spot", SYM, "book")] == [
        "date=2024-08-08",
        "date=2024-08-09",
    ]
    tr = rows(real.cat, "binance_spot", "trades")
    assert len(tr["trade_id"]) == 19_904
    assert int((tr["side"] == -1).sum()) == 10_811  # lines with "m":true
    assert len(rows(real.cat, "binance_usdm")["seq"]) == 450_617
    tu = rows(real.cat, "binance_usdm", "trades")
    assert int((tu["side"] == -1).sum()) == 11_697
    assert [i.venue for i in real.cat.instruments()] == ["binance_spot", "binance_usdm"]
    info = real.cat.info()
    assert not info.synthetic and len(info.notes) == 2


@pytest.mark.realdata
def test_real_clock_offset_and_feed_latency(real: Imported) -> None:
    for rep, venue in ((real.spot, "binance_spot"), (real.usdm, "binance_usdm")):
        assert rep.clock_offset_estimated
        assert 1.25e9 < rep.clock_offset_ns < 1.30e9  # the recorder was ~1.27 s behind
        for kind in KINDS:
            r = rows(real.cat, venue, kind)
            lat = r["ts_local"] - r["ts_exchange"]
            assert lat.min() >= 1_000_000  # never negative; the floor is 1 ms
        assert rep.feed_latency_p50_ms is not None and 1.0 < rep.feed_latency_p50_ms < 50.0
    assert real.spot.clock_offset_ns == 1_277_159_997
    assert real.usdm.clock_offset_ns == 1_273_519_320


@pytest.mark.realdata
@pytest.mark.slow
def test_real_replay_matches_book_ticker(real: Imported) -> None:
    spot = replay_check(real.spot_files, real.cat, "binance_spot", SYM)
    usdm = replay_check(real.usdm_files, real.cat, "binance_usdm", SYM)
    assert (spot.shared_ids, usdm.shared_ids) == (1_072, 629)
    assert spot.match_ratio >= 0.99 and usdm.match_ratio >= 0.99, spot.lines() + usdm.lines()
    assert spot.crossed_states == usdm.crossed_states == 0
    assert spot.messages == 1 + 6_493 + 2_397  # snapshot, diffs, repair messages


@pytest.mark.realdata
@pytest.mark.slow
def test_real_strict_order_gap_after_each_snapshot_only(strict: Imported) -> None:
    s, u = strict.spot, strict.usdm
    # in file order the straddling diff precedes the snapshot: one gap right after it...
    assert (s.snapshots, s.gaps, u.snapshots, u.gaps) == (1, 1, 1, 1)
    r = rows(strict.cat, "binance_spot")
    # ... at the first diff after the snapshot line (U = 50093239225 > 50093239219) ...
    assert set(r["seq"][(r["flags"] & FLAG_GAP) > 0].tolist()) == {50093239237}
    # ... and none where 0809 continues 0808
    assert (s.diffs_without_book, s.diffs_applied) == (1, 6_492)
    ru = rows(strict.cat, "binance_usdm")
    assert set(ru["seq"][(ru["flags"] & FLAG_GAP) > 0].tolist()) == {5123107858366}
    # the bookTicker repair keeps that book sane: one level more is removed than with
    # the proper sync (6,855): the stale bid 61820.99 the dropped diff would have deleted
    assert s.repairs == 6_856
    check = replay_check(strict.spot_files, strict.cat, "binance_spot", SYM)
    assert check.match_ratio >= 0.99 and check.crossed_states == 0, check.lines()


@pytest.mark.realdata
def test_real_0809_needs_0808(realdata: Path, tmp_path: Path) -> None:
    # 0809 has no snapshot of its own: alone it gives trades but no book
    rep = import_binance_hftbacktest(
        [realdata / "binance" / SPOT[1]], catalog=Catalog(tmp_path), venue="s", symbol=SYM
    )
    assert (rep.snapshots, rep.diffs_without_book, rep.book_rows) == (0, 3_044, 0)
    assert rep.trade_rows == 10_147


def test_failure_while_writing_leaves_the_catalog_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = write(
        tmp_path / "spot.txt",
        [
            (T0, snap(100, [("10.00", "1")], [("10.02", "1")])),
            (T0 + MS, depth(ems(T0 + MS), 101, 101, b=[("9.99", "2")])),
        ],
    )
    cat = Catalog(tmp_path / "cat")

    def broken(self: PartitionWriter, columns: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(PartitionWriter, "write", broken)
    with pytest.raises(OSError, match="disk full"):
        imp([f], cat)
    assert not cat.root.exists()  # the catalog this import created is gone too
    monkeypatch.undo()
    assert imp([f], cat).diffs_applied == 1  # a re-run works
