"""The Tardis.dev CSV importer.

Synthetic tests write small CSV files to ``tmp_path``; the ``realdata`` tests convert the
Binance recordings in ``../shared/realdata/binance`` to Tardis files (``tests/tardis_csv.py``)
and compare the imported book with the hftbacktest importer's; skipped when it is absent.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import tardis_csv
from click.testing import CliRunner

from arbsim.app.cli import main
from arbsim.core.book import OrderBook
from arbsim.core.errors import DataError
from arbsim.data.catalog import (
    FLAG_GAP,
    FLAG_REPAIR,
    FLAG_SNAPSHOT_BEGIN,
    FLAG_SNAPSHOT_END,
    Catalog,
    PartitionWriter,
    catalog_summary,
)
from arbsim.data.feed import BookCursor
from arbsim.data.importers import tardis as tardis_mod
from arbsim.data.importers.binance_hftbacktest import import_binance_hftbacktest
from arbsim.data.importers.tardis import import_tardis

SYM = "BTC/USDT"
T0 = 1_723_161_600_000_000  # us
HEAD = ",".join(tardis_csv.BOOK_HEADER)
THEAD = ",".join(tardis_csv.TRADE_HEADER)


# --------------------------------------------------------------------------- helpers
def brow(ts: int, local: int, snap: bool, side: str, price: str, amount: str) -> str:
    s = "true" if snap else "false"
    return f"binance,BTCUSDT,{T0 + ts},{T0 + local},{s},{side},{price},{amount}"


def later(rows: list[str], us: int) -> list[str]:
    """The same rows ``us`` later."""
    out = []
    for r in rows:
        f = r.split(",")
        f[2], f[3] = str(int(f[2]) + us), str(int(f[3]) + us)
        out.append(",".join(f))
    return out


def trow(ts: int, local: int, tid: int | str, side: str, price: str, amount: str) -> str:
    return f"binance,BTCUSDT,{T0 + ts},{T0 + local},{tid},{side},{price},{amount}"


def write(path: Path, header: str, rows: list[str]) -> Path:
    text = "\n".join([header, *rows]) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


BOOK = [
    brow(0, 100, True, "bid", "100.00", "1.5"),
    brow(0, 100, True, "bid", "99.55", "2"),
    brow(0, 100, True, "ask", "100.50", "1"),
    brow(0, 100, True, "ask", "101.00", "3"),
    brow(150, 200, False, "bid", "100.10", "0.25"),
    brow(150, 200, False, "ask", "100.50", "0"),
    brow(250, 300, False, "ask", "100.70", "0.125"),
]
TRADES = [
    trow(120, 160, 7, "buy", "100.5", "0.5"),
    trow(260, 310, 8, "sell", "100.1", "0.25"),
    trow(270, 320, 9, "unknown", "100.1", "0.25"),
]


def rows(cat: Catalog, venue: str, kind: str = "book") -> dict[str, npt.NDArray[Any]]:
    out: dict[str, list[npt.NDArray[Any]]] = {}
    for _p, batch in cat.batches(venue, SYM, "book" if kind == "book" else "trades"):
        for name in batch.schema.names:
            out.setdefault(name, []).append(batch.column(name).to_numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def replay(cat: Catalog, venue: str) -> Iterator[tuple[int, float | None, float | None, bool]]:
    """``(ts_local, best bid, best ask, crossed)`` after each message of a stream."""
    book = OrderBook(venue, SYM, cat.instrument(venue, SYM).tick)
    cur = BookCursor(cat, venue, SYM, book.scale)
    while cur.next():
        cur.apply(book, FLAG_SNAPSHOT_BEGIN)
        yield cur.ts_local, book.best_bid, book.best_ask, book.is_crossed


# --------------------------------------------------------------------------- synthetic
def test_messages_snapshot_trades_and_inferred_grid(tmp_path: Path) -> None:
    book = write(tmp_path / "book.csv.gz", HEAD, BOOK)
    trades = write(tmp_path / "trades.csv", THEAD, TRADES)
    cat = Catalog(tmp_path / "cat")
    rep = import_tardis(book, trades_file=trades, catalog=cat, venue="bn", symbol=SYM)
    assert (rep.messages, rep.snapshots, rep.resyncs, rep.crossed_states) == (3, 1, 0, 0)
    assert (rep.book_rows, rep.trade_rows, rep.trades_unknown_side) == (7, 2, 1)
    # prices show 2 decimals in the book, 1 in trades; trade sizes 2 (book sizes 3)
    assert (rep.tick, rep.lot) == (Decimal("0.01"), Decimal("0.01"))
    assert rep.tick_inferred and rep.lot_inferred
    r = rows(cat, "bn")
    assert r["seq"].tolist() == [1, 1, 1, 1, 2, 2, 3]
    snap = FLAG_SNAPSHOT_BEGIN | FLAG_SNAPSHOT_END
    assert r["flags"].tolist() == [FLAG_SNAPSHOT_BEGIN, 0, 0, FLAG_SNAPSHOT_END, 0, 0, 0]
    assert r["flags"][0] | r["flags"][3] == snap
    assert r["ts_local"].tolist() == [(T0 + t) * 1000 for t in (100,) * 4 + (200, 200, 300)]
    assert r["ts_exchange"].tolist()[4] == (T0 + 150) * 1000
    assert r["side"].tolist() == [1, 1, -1, -1, 1, -1, -1]
    t = rows(cat, "bn", "trades")
    assert t["trade_id"].tolist() == [7, 8] and t["side"].tolist() == [1, -1]
    states = list(replay(cat, "bn"))
    assert [(b, a) for _, b, a, _ in states] == [(100.0, 100.5), (100.1, 101.0), (100.1, 100.7)]
    assert any("without an aggressor side" in line for line in rep.lines())


def test_snapshot_after_deltas_is_a_resync(tmp_path: Path) -> None:
    again = [
        brow(400, 500, True, "bid", "90.00", "1"),
        brow(400, 500, True, "ask", "91.00", "1"),
        brow(450, 600, False, "bid", "90.50", "2"),
    ]
    cat = Catalog(tmp_path / "cat")
    rep = import_tardis(
        write(tmp_path / "b.csv", HEAD, BOOK + again), catalog=cat, venue="bn", symbol=SYM
    )
    assert (rep.snapshots, rep.resyncs, rep.messages) == (2, 1, 5)
    r = rows(cat, "bn")
    gap = (r["flags"] & FLAG_GAP) > 0
    assert r["price"][gap].tolist() == [90.0, 91.0]  # the whole second snapshot
    # the book is replaced: nothing of the first one survives
    last = list(replay(cat, "bn"))[-1]
    assert (last[1], last[2]) == (90.5, 91.0)


def test_deltas_before_any_snapshot_are_dropped(tmp_path: Path) -> None:
    first = [brow(10, 50, False, "bid", "100.00", "1")]
    cat = Catalog(tmp_path / "cat")
    rep = import_tardis(
        write(tmp_path / "b.csv", HEAD, first + BOOK), catalog=cat, venue="bn", symbol=SYM
    )
    assert (rep.deltas_without_book, rep.messages, rep.book_rows) == (1, 3, 7)


def test_negative_feed_latency_shifts_local_time(tmp_path: Path) -> None:
    # the recorder's clock 400 us behind the exchange: timestamp after local_timestamp
    late = [
        brow(500, 100, True, "bid", "100.00", "1"),
        brow(500, 100, True, "ask", "101.00", "1"),
        brow(900, 600, False, "bid", "100.50", "1"),
    ]
    cat = Catalog(tmp_path / "cat")
    rep = import_tardis(write(tmp_path / "b.csv", HEAD, late), catalog=cat, venue="bn", symbol=SYM)
    # min(local - timestamp) = -400 us; shifted so that it becomes the 1 ms floor
    assert rep.clock_offset_ns == 400_000 + 1_000_000
    assert rep.negative_latency_rows == 3
    r = rows(cat, "bn")
    assert int((r["ts_local"] - r["ts_exchange"]).min()) == 1_000_000
    text = "\n".join(rep.lines())
    assert "timestamp after local_timestamp" in text and "+1.400 ms" in text
    # with no negative latency nothing is shifted
    rep2 = import_tardis(
        write(tmp_path / "ok.csv", HEAD, BOOK), catalog=Catalog(tmp_path / "c2"), venue="bn",
        symbol=SYM,
    )  # fmt: skip
    assert rep2.clock_offset_ns == 0 and rep2.negative_latency_rows == 0


def test_snapshot_file_removes_stale_levels(tmp_path: Path) -> None:
    # the deltas never delete the bid at 100.00 although the venue's book lost it
    stale = [*BOOK[:4], brow(150, 200, False, "ask", "100.50", "0")]
    snap_head = ",".join(tardis_csv.SNAPSHOT_HEADER[:8])
    snaps = ["binance,BTCUSDT,{0},{0},101.00,3,99.55,2".format(T0 + 250)]
    cat = Catalog(tmp_path / "cat")
    rep = import_tardis(
        write(tmp_path / "b.csv", HEAD, [*stale, brow(300, 400, False, "ask", "100.90", "1")]),
        snapshots_file=write(tmp_path / "s.csv", snap_head, snaps),
        catalog=cat,
        venue="bn",
        symbol=SYM,
    )
    assert (rep.snapshots_checked, rep.snapshots_disagreeing, rep.repairs) == (1, 1, 1)
    r = rows(cat, "bn")
    rep_rows = (r["flags"] & FLAG_REPAIR) > 0
    assert r["price"][rep_rows].tolist() == [100.0] and r["size"][rep_rows].tolist() == [0.0]
    assert r["ts_local"][rep_rows].tolist() == [(T0 + 250) * 1000]
    assert [(b, a) for _, b, a, _ in replay(cat, "bn")][-1] == (99.55, 100.9)


def test_crossed_states_are_counted_and_left_without_snapshots(tmp_path: Path) -> None:
    crossing = [*BOOK[:4], brow(150, 200, False, "bid", "100.60", "1")]
    rep = import_tardis(
        write(tmp_path / "b.csv", HEAD, crossing), catalog=Catalog(tmp_path / "c"),
        venue="bn", symbol=SYM,
    )  # fmt: skip
    assert rep.crossed_states == 1
    assert any("left as they are" in line for line in rep.lines())


def test_append_a_second_day_and_refuse_overlap(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "cat")
    day = 86_400_000_000
    import_tardis(write(tmp_path / "d1.csv", HEAD, BOOK), catalog=cat, venue="bn", symbol=SYM)
    nxt = later(BOOK, day)
    rep = import_tardis(write(tmp_path / "d2.csv", HEAD, nxt), catalog=cat, venue="bn", symbol=SYM)
    assert rep.appended and not rep.catalog_created and rep.resyncs == 0
    r = rows(cat, "bn")
    assert r["seq"].tolist() == [1, 1, 1, 1, 2, 2, 3, 4, 4, 4, 4, 5, 5, 6]
    assert len(cat.files("bn", SYM, "book")) == 2
    (st,) = catalog_summary(cat)["streams"]
    assert [r["range"] for r in st["ranges"]] == [
        [(T0 + 100) * 1000, (T0 + 300) * 1000],
        [(T0 + day + 100) * 1000, (T0 + day + 300) * 1000],
    ]
    assert st["gaps"] == [
        {"after": "2024-08-09T00:00:00.000Z", "before": "2024-08-10T00:00:00.000Z",
         "seconds": 86_400.0},
    ]  # fmt: skip
    res = CliRunner().invoke(main, ["data", "info", str(cat.root)])
    assert "bn BTC/USDT: 2 ranges, gaps:" in res.output, res.output
    assert "2024-08-09 00:00:00.000Z -> 2024-08-10 00:00:00.000Z (24h00m00s)" in res.output
    with pytest.raises(DataError, match="overlaps the data already in the catalog"):
        import_tardis(tmp_path / "d2.csv", catalog=cat, venue="bn", symbol=SYM)
    assert len(cat.files("bn", SYM, "book")) == 2


def test_given_tick_refuses_off_grid_prices(tmp_path: Path) -> None:
    path = write(tmp_path / "b.csv", HEAD, BOOK)
    with pytest.raises(DataError, match=r"b\.csv:3: price 99\.55 is off the tick grid 0\.5"):
        import_tardis(
            path, catalog=Catalog(tmp_path / "c"), venue="bn", symbol=SYM, tick=Decimal("0.5")
        )


BAD = {
    "column count": (5, "binance,BTCUSDT,1,2,false,bid,100.0", r":5: 7 column\(s\), expected 8"),
    "price": (6, brow(260, 300, False, "ask", "1O1.5", "1"), r":6: price '1O1\.5' is not a double"),
    "side": (4, brow(0, 100, True, "buy", "99.00", "1"), r":4: side 'buy' is not one of bid, ask"),
    "time backwards": (
        7,
        brow(150, 150, False, "bid", "100.10", "0.25"),
        r":7: local_timestamp \d+ goes backwards \(previous row \d+\)",
    ),
    "blank line": (3, "", r":3: 0 column\(s\), expected 8"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_malformed_rows_name_file_and_line(tmp_path: Path, case: str) -> None:
    line, text, match = BAD[case]
    book = [*BOOK]
    book[line - 2] = text  # line 1 is the header
    path = write(tmp_path / "book.csv.gz", HEAD, book)
    cat_dir = tmp_path / "cat"
    with pytest.raises(DataError, match=f"book.csv.gz{match}"):
        import_tardis(path, catalog=Catalog(cat_dir), venue="bn", symbol=SYM)
    assert not cat_dir.exists()  # nothing written
    res = CliRunner().invoke(main, [
        "data", "import", "tardis", "--book", str(path), "--venue", "bn", "--symbol", SYM,
        "--catalog", str(cat_dir),
    ])  # fmt: skip
    assert res.exit_code == 2, res.output
    assert f"{path}:{line}:" in res.output
    assert not cat_dir.exists()


def test_malformed_trades_and_header(tmp_path: Path) -> None:
    book = write(tmp_path / "b.csv", HEAD, BOOK)
    trades = write(tmp_path / "t.csv", THEAD, [TRADES[0], trow(200, 150, 8, "sell", "1", "1")])
    with pytest.raises(DataError, match=r"t\.csv:3: local_timestamp .* goes backwards"):
        import_tardis(book, trades_file=trades, catalog=Catalog(tmp_path / "c"), venue="b",
                      symbol=SYM)  # fmt: skip
    wrong = write(tmp_path / "w.csv", THEAD, TRADES)
    with pytest.raises(DataError, match=r"w\.csv:1: not a Tardis incremental_book_L2 header"):
        import_tardis(wrong, catalog=Catalog(tmp_path / "c"), venue="b", symbol=SYM)
    assert not (tmp_path / "c").exists()


def test_failure_while_writing_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = Catalog(tmp_path / "cat")
    import_tardis(write(tmp_path / "d1.csv", HEAD, BOOK), catalog=cat, venue="bn", symbol=SYM)
    before = sorted(p.relative_to(cat.root) for p in cat.root.rglob("*"))
    info = (cat.root / "catalog.json").read_bytes()

    def broken(self: PartitionWriter, columns: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(PartitionWriter, "write", broken)
    day = 86_400_000_000
    nxt = write(tmp_path / "d2.csv", HEAD, later(BOOK, day))
    with pytest.raises(OSError, match="disk full"):
        import_tardis(nxt, catalog=cat, venue="bn", symbol=SYM)
    assert sorted(p.relative_to(cat.root) for p in cat.root.rglob("*")) == before
    assert (cat.root / "catalog.json").read_bytes() == info
    monkeypatch.undo()
    # the re-run is not refused as an overlap
    assert import_tardis(nxt, catalog=cat, venue="bn", symbol=SYM).appended


def test_cli_prints_the_report(tmp_path: Path) -> None:
    book = write(tmp_path / "b.csv", HEAD, BOOK)
    res = CliRunner().invoke(main, [
        "--progress", "off", "data", "import", "tardis", "--book", str(book), "--venue", "bn",
        "--symbol", SYM, "--catalog", str(tmp_path / "cat"), "--tick", "0.01",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "3 messages" in res.output and "rows/s" in res.output


# --------------------------------------------------------------------------- real data
@dataclass
class Compared:
    messages: int
    matches: int
    crossed: int

    @property
    def ratio(self) -> float:
        return self.matches / self.messages


def _states(cat: Catalog, venue: str, offset: int) -> dict[int, tuple[float | None, float | None]]:
    """Best bid / ask at the end of each recorder receive time (us)."""
    out: dict[int, tuple[float | None, float | None]] = {}
    for tsl, bid, ask, _ in replay(cat, venue):
        out[(tsl - offset) // 1000] = (bid, ask)
    return out


def compare(ref: Catalog, ref_venue: str, cat: Catalog, venue: str) -> Compared:
    """Per message of the reference stream: is the Tardis import's best bid / ask the same
    once both have taken everything the recorder received at that moment?"""
    ref_off = ref.info().clock_offsets_ns[f"{ref_venue}:{SYM}"]
    off = cat.info().clock_offsets_ns[f"{venue}:{SYM}"]
    mine = _states(cat, venue, off)
    theirs = _states(ref, ref_venue, ref_off)
    n = matches = 0
    for tsl, _b, _a, _ in replay(ref, ref_venue):
        key = (tsl - ref_off) // 1000
        n += 1
        matches += mine.get(key) == theirs[key]
    crossed = sum(c for *_, c in replay(cat, venue))
    return Compared(n, matches, crossed)


@pytest.mark.realdata
def test_real_binance_as_tardis_matches_hftbacktest_import(realdata: Path, tmp_path: Path) -> None:
    rec = [realdata / "binance" / "spot_btcusdt_20240808.gz"]
    ref = Catalog(tmp_path / "ref")
    import_binance_hftbacktest(rec, catalog=ref, venue="src", symbol=SYM)
    off = ref.info().clock_offsets_ns[f"src:{SYM}"]
    book, trades, snaps = (tmp_path / n for n in ("book.csv.gz", "trades.csv.gz", "s.csv.gz"))
    n_book = tardis_csv.write_book(book, ref, "src", SYM, off)
    n_trades = tardis_csv.write_trades(trades, ref, "src", SYM, off)
    n_snaps = tardis_csv.write_snapshots(snaps, ref, "src", SYM, off)
    cat = Catalog(tmp_path / "cat")
    rep = import_tardis(
        book, trades_file=trades, snapshots_file=snaps, catalog=cat, venue="t", symbol=SYM
    )
    assert (rep.book_rows_read, rep.trade_rows_read, rep.snapshot_rows_read) == (
        n_book, n_trades, n_snaps,
    )  # fmt: skip
    assert rep.book_rows == n_book and rep.trade_rows == n_trades
    assert (rep.tick, rep.lot) == (Decimal("0.01"), Decimal("0.00001"))
    # the recorder's clock was ~1.27 s behind: said and removed
    assert rep.negative_latency_rows > 0 and 1.25e9 < rep.clock_offset_ns < 1.30e9
    assert rep.resyncs == 0 and rep.snapshots == 1 and rep.repairs == 0
    assert rep.crossed_states == 0
    result = compare(ref, "src", cat, "t")
    assert result.messages > 4_000
    assert result.ratio >= 0.99, result
    assert result.crossed == 0


@pytest.mark.realdata
@pytest.mark.slow
def test_real_second_day_appended_backtests_across_midnight(realdata: Path, tmp_path: Path) -> None:
    b = realdata / "binance"
    midnight_us = 1_723_161_600_000_000  # 2024-08-09T00:00:00Z on the recorder's clock
    files: dict[str, list[Path]] = {}
    for venue, recs, days in (
        ("binance_spot", ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"], 2),
        ("binance_usdm", ["usdm_btcusdt_20240808.gz"], 1),
    ):
        ref = Catalog(tmp_path / f"ref_{venue}")
        import_binance_hftbacktest([b / r for r in recs], catalog=ref, venue="src", symbol=SYM)
        off = ref.info().clock_offsets_ns[f"src:{SYM}"]
        bounds = [(0, midnight_us), (midnight_us, 2**62)] if days == 2 else [(0, 2**62)]
        for day, span in enumerate(bounds):
            book = tmp_path / f"{venue}_{day}_book.csv.gz"
            trades = tmp_path / f"{venue}_{day}_trades.csv.gz"
            tardis_csv.write_book(book, ref, "src", SYM, off, local_us=span)
            tardis_csv.write_trades(trades, ref, "src", SYM, off, local_us=span)
            files.setdefault(venue, []).extend([book, trades])
    cat = tmp_path / "cat"
    runner = CliRunner()
    said = []
    for venue, paths in files.items():
        for book, trades in zip(paths[::2], paths[1::2], strict=True):
            res = runner.invoke(main, [
                "--progress", "off", "data", "import", "tardis", "--book", str(book),
                "--trades", str(trades), "--venue", venue, "--symbol", SYM,
                "--catalog", str(cat),
                "--market", "perpetual" if "usdm" in venue else "spot",
            ])  # fmt: skip
            assert res.exit_code == 0, res.output
            said.append(res.output)
    # the second spot day was appended: no snapshot of its own, the book continued
    assert "appended to the stream already there" in said[1]
    assert "0 snapshot(s)" in said[1] and "0 delta rows before any snapshot" in said[1]
    assert "crossed states: 0" in said[1]
    streams = {st["venue"]: st for st in catalog_summary(Catalog(cat))["streams"]}
    assert len(streams["binance_spot"]["ranges"]) == 1  # contiguous: no gap at midnight
    out = tmp_path / "run"
    res = runner.invoke(
        main, ["--progress", "off", "backtest", "--data", str(cat), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    s = json.loads((out / "summary.json").read_text())
    assert s["window"]["start"].startswith("2024-08-08T23:54")
    assert s["window"]["end"].startswith("2024-08-09T00:0")
    assert s["events"] == sum(st["rows"]["book"] + st["rows"]["trades"] for st in streams.values())
    assert s["reconciled_exactly"] is True


def test_instrument_file_gives_tick_lot_fees_and_market(tmp_path: Path) -> None:
    meta = tmp_path / "instrument.json"
    meta.write_text(json.dumps({
        "id": "BTCUSDT", "exchange": "binance-futures", "baseCurrency": "BTC",
        "quoteCurrency": "USDT", "type": "perpetual", "active": True, "priceIncrement": 0.05,
        "amountIncrement": 0.001, "minTradeAmount": 0.002, "makerFee": 0.0002,
        "takerFee": 0.0005,
    }))  # fmt: skip
    cat = Catalog(tmp_path / "cat")
    rep = import_tardis(
        write(tmp_path / "b.csv", HEAD, BOOK), catalog=cat, venue="bn",
        symbol=SYM, instrument_file=meta, lot=Decimal("0.0001"),
    )  # fmt: skip
    inst = cat.instrument("bn", SYM)
    assert (inst.tick, inst.lot, inst.min_qty) == (
        Decimal("0.05"),
        Decimal("0.0001"),
        Decimal("0.002"),
    )
    assert (inst.maker_fee, inst.taker_fee, inst.market) == (
        Decimal("0.0002"), Decimal("0.0005"), "perpetual",
    )  # fmt: skip
    assert "tick 0.05 (from the instrument file), lot 0.0001 (given)" in "\n".join(rep.lines())
    # a price off the instrument file's 0.05 grid is refused with its line
    off = [*BOOK, brow(350, 400, False, "bid", "100.33", "1")]
    with pytest.raises(DataError, match=r"b2\.csv:9: price 100\.33 is off the tick grid 0\.05"):
        import_tardis(
            write(tmp_path / "b2.csv", HEAD, off), catalog=Catalog(tmp_path / "c2"), venue="bn",
            symbol=SYM, instrument_file=meta,
        )  # fmt: skip
    meta.write_text('{"id": "X"}')
    with pytest.raises(DataError, match=r"instrument\.json: not Tardis instrument metadata"):
        import_tardis(
            write(tmp_path / "b.csv", HEAD, BOOK), catalog=Catalog(tmp_path / "c3"), venue="bn",
            symbol=SYM, instrument_file=meta,
        )  # fmt: skip


def test_small_blocks_give_the_same_catalog_and_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a snapshot run over several local times is one message, also when the reader's
    # blocks cut it (and every other message) in pieces
    book = [
        brow(0, 90, True, "bid", "100.00", "1.5"),
        brow(0, 95, True, "bid", "99.55", "2"),
        *BOOK[2:],
        *later(BOOK[4:], 1_000),
    ]
    path = write(tmp_path / "b.csv", HEAD, book)
    whole = import_tardis(path, catalog=Catalog(tmp_path / "a"), venue="bn", symbol=SYM)
    monkeypatch.setattr(tardis_mod, "_BLOCK", 64)  # about one row per block
    cut = import_tardis(path, catalog=Catalog(tmp_path / "b"), venue="bn", symbol=SYM)
    assert (whole.messages, whole.snapshots) == (cut.messages, cut.snapshots) == (5, 1)
    ra, rb = rows(Catalog(tmp_path / "a"), "bn"), rows(Catalog(tmp_path / "b"), "bn")
    for name in ra:
        assert ra[name].tolist() == rb[name].tolist(), name
    assert ra["ts_local"][:4].tolist() == [(T0 + 90) * 1000] * 4  # the run's first local time
    bad = [*book[:-1], brow(1250, 1250, False, "ask", "x", "1")]
    with pytest.raises(DataError, match=r"bad\.csv:11: price 'x' is not a double"):
        import_tardis(
            write(tmp_path / "bad.csv", HEAD, bad), catalog=Catalog(tmp_path / "c"),
            venue="bn", symbol=SYM,
        )  # fmt: skip
