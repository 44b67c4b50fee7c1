from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import MS, T0, VenueData, instrument, write_catalog

from arbsim.core.book import OrderBook
from arbsim.core.errors import DataError
from arbsim.core.model import Side
from arbsim.data.catalog import BOOK_SCHEMA, Catalog, CatalogInfo, open_parquet
from arbsim.data.feed import BookCursor, TradeCursor, merge


def two_venues(tmp_path: Path) -> Catalog:
    a = VenueData(instrument("a", tick=Decimal("0.01")))
    b = VenueData(instrument("b"))
    a.message(T0, T0 + 5 * MS, bids=[(100.0, 1), (99.99, 2)], asks=[(100.01, 3)], snapshot=True)
    b.message(T0, T0 + 2 * MS, bids=[(100.0, 1)], asks=[(100.1, 1)], snapshot=True)
    for k in range(1, 50):
        a.message(
            T0 + k * MS,
            T0 + k * MS + 5 * MS,
            bids=[(100.0 - k / 100, 1.0 + k)],
            asks=[(100.01 + k / 100, float(k))],
        )
        b.message(T0 + k * MS, T0 + k * MS + 2 * MS, bids=[(100.0, float(k))])
    a.trade(T0 + 10 * MS, T0 + 12 * MS, 1, 100.01, 0.5)
    b.trade(T0 + 11 * MS, T0 + 12 * MS, -1, 100.0, 0.25)
    return write_catalog(tmp_path / "cat", [a, b])


def test_round_trip_instruments_rows_and_books(tmp_path: Path) -> None:
    cat = two_venues(tmp_path)
    assert cat.info().synthetic is True
    assert [i.key for i in cat.instruments()] == ["a:BTC/USDT", "b:BTC/USDT"]
    assert cat.instrument("a", "BTC/USDT").tick == Decimal("0.01")
    [path] = cat.files("a", "BTC/USDT", "book")
    meta = pq.ParquetFile(path).schema_arrow.metadata
    assert meta[b"arbsim.schema_version"] == b"1" and meta[b"arbsim.kind"] == b"book"
    assert pq.read_table(path).num_rows == 3 + 49 * 2
    book = OrderBook("a", "BTC/USDT", Decimal("0.01"))
    cur = BookCursor(cat, "a", "BTC/USDT", book.scale, batch_size=7)
    n = 0
    while cur.next():
        cur.apply(book)
        n += 1
    assert n == 50
    assert book.best_bid == 100.0 and book.best_bid_size == 1.0
    assert book.best_ask == 100.01 and book.best_ask_size == 3.0
    assert book.depth(Side.BUY) == 50 and book.depth(Side.SELL) == 50  # 99.99 is sent twice
    assert cat.time_range("b", "BTC/USDT") == (T0 + 2 * MS, T0 + 51 * MS)


def test_message_spanning_batches_is_delivered_whole(tmp_path: Path) -> None:
    v = VenueData(instrument("a"))
    v.message(T0, T0, bids=[(100.0 - i / 10, 1.0) for i in range(30)], snapshot=True)
    v.message(T0 + MS, T0 + MS, bids=[(50.0, 1.0)], asks=[(100.5 + i / 10, 1.0) for i in range(9)])
    cat = write_catalog(tmp_path / "c", [v])
    book = OrderBook("a", "BTC/USDT", Decimal("0.1"))
    cur = BookCursor(cat, "a", "BTC/USDT", book.scale, batch_size=4)
    sizes = []
    while cur.next():
        sizes.append(cur.levels)
        # memory stays bounded by the batch plus one message
        assert len(cur._ticks) <= 4 + 30
    assert sizes == [30, 10]


def test_k_way_merge_orders_by_timestamp_across_venues(tmp_path: Path) -> None:
    cat = two_venues(tmp_path)
    ia, ib = cat.instrument("a", "BTC/USDT"), cat.instrument("b", "BTC/USDT")
    ca = BookCursor(cat, "a", "BTC/USDT", OrderBook("a", "x", ia.tick).scale)
    cb = BookCursor(cat, "b", "BTC/USDT", OrderBook("b", "x", ib.tick).scale)
    ta = TradeCursor(cat, "a", "BTC/USDT", OrderBook("a", "x", ia.tick).scale)
    seen = [(c.ts, id(c)) for c in merge([ca, cb, ta])]
    assert len(seen) == 50 + 50 + 1
    assert [t for t, _ in seen] == sorted(t for t, _ in seen)
    # exchange-keyed cursors order by ts_exchange instead
    xa = BookCursor(cat, "a", "BTC/USDT", OrderBook("a", "x", ia.tick).scale, key="exchange")
    xs = [c.ts for c in merge([xa])]
    assert xs[0] == T0 and xs[-1] == T0 + 49 * MS


def test_window_end_stops_the_stream(tmp_path: Path) -> None:
    cat = two_venues(tmp_path)
    ib = cat.instrument("b", "BTC/USDT")
    cur = BookCursor(cat, "b", "BTC/USDT", OrderBook("b", "x", ib.tick).scale, end_ns=T0 + 10 * MS)
    stamps = []
    while cur.next():
        stamps.append(cur.ts_local)
    assert stamps and max(stamps) < T0 + 10 * MS and len(stamps) == 8


def _scale(cat: Catalog, venue: str = "a") -> OrderBook:
    return OrderBook(venue, "BTC/USDT", cat.instrument(venue, "BTC/USDT").tick)


def _drain(cat: Catalog, venue: str = "a") -> None:
    cur = BookCursor(cat, venue, "BTC/USDT", _scale(cat, venue).scale)
    while cur.next():
        pass


def test_missing_catalog_and_stream_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        Catalog(tmp_path / "nope").info()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not an arbsim catalog"):
        Catalog(tmp_path / "empty").instruments()
    cat = two_venues(tmp_path)
    with pytest.raises(DataError, match="no instrument zz:BTC/USDT"):
        cat.instrument("zz", "BTC/USDT")
    cat.write_instrument(instrument("c"))
    with pytest.raises(DataError, match="no book files for c"):
        _drain(cat, "c")


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    cat = two_venues(tmp_path)
    [path] = cat.files("a", "BTC/USDT", "book")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=str(path.name)):
        _drain(cat)
    path.write_bytes(b"garbage" * 10)
    with pytest.raises(DataError, match="not a readable Parquet file"):
        _drain(cat)


def test_foreign_and_future_and_misschema_files_are_refused(tmp_path: Path) -> None:
    cat = two_venues(tmp_path)
    [path] = cat.files("a", "BTC/USDT", "book")
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata(None), path)
    with pytest.raises(DataError, match="not a file written by arbsim"):
        _drain(cat)
    pq.write_table(
        table.replace_schema_metadata({"arbsim.schema_version": "99", "arbsim.kind": "book"}), path
    )
    with pytest.raises(DataError, match="schema_version '99' is not supported"):
        _drain(cat)
    meta = {"arbsim.schema_version": "1", "arbsim.kind": "book"}
    bad = table.set_column(4, "price", table.column("price").cast(pa.string()))
    pq.write_table(bad.replace_schema_metadata(meta), path)
    with pytest.raises(DataError, match="column 'price' has type string, expected double"):
        _drain(cat)
    pq.write_table(table.drop(["flags"]).replace_schema_metadata(meta), path)
    with pytest.raises(DataError, match="column 'flags'"):
        _drain(cat)
    pq.write_table(table.replace_schema_metadata({**meta, "arbsim.kind": "trades"}), path)
    with pytest.raises(DataError, match="holds 'trades' rows"):
        _drain(cat)


def _rewrite(path: Path, column: str, values: np.ndarray) -> None:
    t = pq.read_table(path)
    i = t.schema.get_field_index(column)
    t = t.set_column(i, column, pa.array(values, type=BOOK_SCHEMA.field(column).type))
    pq.write_table(t, path)


@pytest.mark.parametrize(
    ("column", "mutate", "message"),
    [
        (
            "price",
            lambda v: np.where(np.arange(len(v)) == 3, 100.005, v),
            "not on the instrument tick",
        ),
        ("size", lambda v: np.where(np.arange(len(v)) == 2, -1.0, v), "size must be finite"),
        ("price", lambda v: np.where(np.arange(len(v)) == 1, np.nan, v), "price must be finite"),
        ("side", lambda v: np.where(np.arange(len(v)) == 0, 3, v), "side must be 1"),
        ("ts_local", lambda v: v[::-1].copy(), "not non-decreasing"),
        ("ts_exchange", lambda v: v + 10**12, "negative feed latency"),
    ],
)
def test_bad_rows_are_refused_with_the_file(
    tmp_path: Path, column: str, mutate: Callable[[np.ndarray], np.ndarray], message: str
) -> None:
    cat = two_venues(tmp_path)
    [path] = cat.files("a", "BTC/USDT", "book")
    values = pq.read_table(path).column(column).to_numpy()
    _rewrite(path, column, mutate(values))
    with pytest.raises(DataError, match=message) as err:
        _drain(cat)
    assert path.name in str(err.value)


def test_writer_refuses_out_of_order_rows_and_keeps_written_data(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c")
    cat.create(CatalogInfo())
    w = cat.writer("a", "BTC/USDT", "trades")
    row = {
        "ts_exchange": [1],
        "ts_local": [10],
        "trade_id": [1],
        "side": [1],
        "price": [1.0],
        "size": [1.0],
    }
    w.write(row)
    with pytest.raises(DataError, match="not in ts_local order"):
        w.write({**row, "ts_local": [5]})
    w.close()
    [path] = cat.files("a", "BTC/USDT", "trades")
    assert open_parquet(path, "trades").metadata.num_rows == 1


def test_writer_partitions_by_utc_date(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c")
    cat.create(CatalogInfo())
    day = 86_400 * 10**9
    midnight = (T0 // day + 1) * day
    with cat.writer("a", "BTC/USDT", "trades") as w:
        w.write(
            {
                "ts_exchange": [midnight - 2, midnight],
                "ts_local": [midnight - 1, midnight + 1],
                "trade_id": [1, 2],
                "side": [1, -1],
                "price": [1.0, 1.0],
                "size": [1.0, 2.0],
            }
        )
    files = cat.files("a", "BTC/USDT", "trades")
    assert [f.parent.name for f in files] == ["date=2026-01-05", "date=2026-01-06"]


def test_cursor_with_far_rows_matches_a_dict_book(tmp_path: Path) -> None:
    """Messages mixing levels near the touch with levels at silly prices (as real venues
    send) take the split near/far path; the result must equal a plain dict book."""
    rng = np.random.default_rng(3)
    v = VenueData(instrument("a", tick=Decimal("0.01")))
    bids = {round(60_000 - i * 0.5, 2): 1.0 for i in range(200)}
    asks = {round(60_000.01 + i * 0.5, 2): 1.0 for i in range(200)}
    bids[20_000.0] = 5.0  # far below
    asks[150_000.0] = 5.0  # far above
    v.message(T0, T0, bids=list(bids.items()), asks=list(asks.items()), snapshot=True)
    ref_b, ref_a = dict(bids), dict(asks)
    for k in range(1, 400):
        mb, ma = max(ref_b), min(ref_a)
        nb = [
            (round(mb - float(rng.integers(0, 300)) / 100, 2), float(rng.choice([0.0, 2.0])))
            for _ in range(5)
        ]
        na = [
            (round(ma + float(rng.integers(0, 300)) / 100, 2), float(rng.choice([0.0, 2.0])))
            for _ in range(5)
        ]
        if k % 3 == 0:
            nb.append((round(float(rng.integers(10_000, 30_000)), 2), float(k % 2)))
            na.append((round(float(rng.integers(120_000, 200_000)), 2), float(k % 2)))
        for ref, rows in ((ref_b, nb), (ref_a, na)):
            for p, s in rows:
                if s:
                    ref[p] = s
                else:
                    ref.pop(p, None)
        v.message(T0 + k * MS, T0 + k * MS, bids=nb, asks=na)
    cat = write_catalog(tmp_path / "c", [v])
    book = OrderBook("a", "BTC/USDT", Decimal("0.01"))
    cur = BookCursor(cat, "a", "BTC/USDT", book.scale, batch_size=97)
    while cur.next():
        cur.apply(book)
    assert book.best_bid == max(ref_b) and book.best_ask == min(ref_a)
    assert book.depth(Side.BUY) == len(ref_b) and book.depth(Side.SELL) == len(ref_a)
    assert [lv.price for lv in book.bids(len(ref_b))] == sorted(ref_b, reverse=True)
    assert [lv.price for lv in book.asks(len(ref_a))] == sorted(ref_a)


def test_shared_batches_are_read_once_and_dropped_when_passed(tmp_path: Path) -> None:
    from arbsim.data.feed import SharedBatches

    cat = two_venues(tmp_path)
    scale = _scale(cat).scale
    shared = SharedBatches(cat, "a", "BTC/USDT", "book", scale, batch_size=10)
    ahead, behind = shared.reader(), shared.reader()
    first = ahead()
    second = ahead()
    assert first is not None and second is not None
    assert len(shared._cache) == 2  # the slower reader still needs both
    assert behind() is first  # served from the cache, not read again
    assert len(shared._cache) == 1
    assert behind() is second and not shared._cache
    # the two cursors of a replay see the same messages through one source
    both = SharedBatches(cat, "a", "BTC/USDT", "book", scale, batch_size=10)
    local = BookCursor(cat, "a", "BTC/USDT", scale, source=both.reader())
    exch = BookCursor(cat, "a", "BTC/USDT", scale, key="exchange", source=both.reader())
    seen: dict[str, list[int]] = {"local": [], "exchange": []}
    for cur in merge([exch, local]):
        assert isinstance(cur, BookCursor)
        seen[cur.key].append(cur.seq)
    assert seen["local"] == seen["exchange"] and len(seen["local"]) == 50
    assert not both._cache


def _readers() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name.startswith("read ")]


def test_read_ahead_serves_the_same_batches_and_the_error_where_it_is(tmp_path: Path) -> None:
    """A stream read ahead in a thread gives its readers the same batches, in order; a bad
    row in a later batch is raised when the readers reach that batch (the batches before
    it were served), and the thread is gone after the error, at the end, and on close."""
    import gc
    import time

    from arbsim.data.feed import SharedBatches

    cat = two_venues(tmp_path)
    scale = _scale(cat).scale
    plain = SharedBatches(cat, "a", "BTC/USDT", "book", scale, batch_size=7)
    ahead = SharedBatches(cat, "a", "BTC/USDT", "book", scale, batch_size=7, read_ahead=True)
    p, a = plain.reader(), ahead.reader()
    n = 0
    while (x := p()) is not None:
        y = a()
        assert y is not None and x[0] == y[0]
        assert all(np.array_equal(x[1][k], y[1][k]) for k in x[1])
        n += 1
    assert a() is None and n > 3
    deadline = time.monotonic() + 5
    while _readers() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _readers()

    [path] = cat.files("a", "BTC/USDT", "book")
    values = pq.read_table(path).column("size").to_numpy()
    _rewrite(path, "size", np.where(np.arange(len(values)) == 30, -1.0, values))
    bad = SharedBatches(cat, "a", "BTC/USDT", "book", scale, batch_size=7, read_ahead=True)
    read = bad.reader()
    served = 0
    with pytest.raises(DataError, match="size must be finite") as err:
        while read() is not None:
            served += 1
    assert served == 30 // 7 and path.name in str(err.value)  # every batch before row 30
    bad.close()
    assert not _readers()

    # a stream dropped half-read (a failed run) ends its thread too
    dropped = SharedBatches(cat, "b", "BTC/USDT", "book", scale, batch_size=2, read_ahead=True)
    assert dropped.reader()() is not None and _readers()
    del dropped
    gc.collect()
    deadline = time.monotonic() + 5
    while _readers() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _readers()


def test_read_ahead_splits_book_batches_in_its_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Book batches read ahead are split into messages in the reading thread: the two
    cursors of the stream find every split done (but the last, held-back rows') and walk
    the same messages as without read-ahead."""
    import threading

    from arbsim.data import feed
    from arbsim.data.feed import SharedBatches

    where: list[tuple[str, bool]] = []
    split = feed._split

    def spy(cols: dict[str, np.ndarray], last: bool, compiled: bool = False) -> object:
        where.append((threading.current_thread().name, last))
        return split(cols, last, compiled)

    monkeypatch.setattr(feed, "_split", spy)
    cat = two_venues(tmp_path)
    scale = _scale(cat).scale
    seqs: dict[bool, list[list[int]]] = {}
    for ahead in (False, True):
        where.clear()
        shared = SharedBatches(cat, "a", "BTC/USDT", "book", scale, 6, read_ahead=ahead)
        local = BookCursor(cat, "a", "BTC/USDT", scale, source=shared.reader())
        exch = BookCursor(cat, "a", "BTC/USDT", scale, key="exchange", source=shared.reader())
        seqs[ahead] = [[], []]
        for cur in merge([exch, local]):
            assert isinstance(cur, BookCursor)
            seqs[ahead][cur.key == "local"].append(cur.seq)
        shared.close()
    assert seqs[True] == seqs[False] and len(seqs[True][0]) == 50
    threaded = [w for w in where if w[0].startswith("read ")]
    in_main = [w for w in where if not w[0].startswith("read ")]
    assert len(threaded) > 5 and all(not last for _, last in threaded)
    assert all(last for _, last in in_main)  # only the stream's last rows, by each cursor
