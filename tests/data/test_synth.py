"""The synthetic catalog, read back through the real replay path (feed cursors + OrderBook)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arbsim.core.book import OrderBook
from arbsim.core.model import Side
from arbsim.data.catalog import FLAG_SNAPSHOT_BEGIN, FLAG_SNAPSHOT_END, Catalog, Kind
from arbsim.data.feed import BookCursor, TradeCursor, merge
from arbsim.data.synth import SYMBOL, SynthReport, generate_synthetic

SEED = 7
DURATION_S = 120.0
VENUES = ("mexc", "gateio")
FEES = 0.0005 + 0.001  # taker mexc + taker gate


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthReport]:
    root = tmp_path_factory.mktemp("synth") / "cat"
    return root, generate_synthetic(root, seed=SEED, duration_s=DURATION_S)


def _table(root: Path, venue: str, kind: Kind) -> pa.Table:
    files = Catalog(root).files(venue, SYMBOL, kind)
    assert files, f"no {kind} files for {venue}"
    return pa.concat_tables([pq.read_table(f) for f in files])


def _books(cat: Catalog) -> tuple[dict[str, OrderBook], list[BookCursor]]:
    books: dict[str, OrderBook] = {}
    cursors: list[BookCursor] = []
    for venue in VENUES:
        inst = cat.instrument(venue, SYMBOL)
        books[venue] = OrderBook(venue, SYMBOL, inst.tick)
        cursors.append(BookCursor(cat, venue, SYMBOL, books[venue].scale))
    return books, cursors


def test_catalog_metadata_and_instruments(sample: tuple[Path, SynthReport]) -> None:
    root, _ = sample
    cat = Catalog(root)
    info = cat.info()
    assert info.synthetic is True
    assert info.created_by == f"arbsim data synth --catalog {root} --seed {SEED}"
    assert info.description
    insts = {i.venue: i for i in cat.instruments()}
    assert sorted(insts) == sorted(VENUES)
    m, g = insts["mexc"], insts["gateio"]
    assert (m.tick, m.lot, m.min_qty, m.min_notional) == (
        Decimal("0.01"),
        Decimal("0.000001"),
        Decimal("0.000001"),
        Decimal("1"),
    )
    assert (m.maker_fee, m.taker_fee) == (Decimal("0"), Decimal("0.0005"))
    assert (g.tick, g.lot, g.min_qty, g.min_notional) == (
        Decimal("0.1"),
        Decimal("0.000001"),
        Decimal("0.00001"),
        Decimal("3"),
    )
    assert (g.maker_fee, g.taker_fee) == (Decimal("0.001"), Decimal("0.001"))


def test_books_replay_uncrossed_on_grid(sample: tuple[Path, SynthReport]) -> None:
    root, report = sample
    cat = Catalog(root)
    targets = {"mexc": 200, "gateio": 100}
    for venue in VENUES:
        inst = cat.instrument(venue, SYMBOL)
        book = OrderBook(venue, SYMBOL, inst.tick)
        # the cursor raises DataError on any off-grid price, negative latency, bad side
        cur = BookCursor(cat, venue, SYMBOL, book.scale)
        assert cur.next()
        assert cur.flags == FLAG_SNAPSHOT_BEGIN | FLAG_SNAPSHOT_END
        cur.apply(book)
        depth0 = (book.depth(Side.BUY), book.depth(Side.SELL))
        assert depth0 == (targets[venue], targets[venue])
        msgs, last_seq, sizes = 1, cur.seq, []
        while cur.next():
            assert cur.flags == 0
            assert cur.seq > last_seq
            last_seq = cur.seq
            sizes.append(cur.levels)
            cur.apply(book)
            msgs += 1
            assert not book.is_crossed, f"{venue} crossed at seq {cur.seq}"
        assert book.crossed_updates == 0
        assert msgs == report.messages[f"{venue}/book"]
        # levels per message: mostly a few dozen, never an empty message
        assert min(sizes) >= 1 and 5 < float(np.median(sizes)) < 120
        # the book keeps roughly its advertised depth
        for side in Side:
            assert 0.7 * targets[venue] <= book.depth(side) <= 1.3 * targets[venue]
        # independent grid check on the raw column: integer ticks / ticks-per-unit
        price = _table(root, venue, "book").column("price").to_numpy()
        per_unit = int(1 / inst.tick)
        ticks = np.rint(price * per_unit)
        assert np.array_equal(ticks / per_unit, price)


def test_same_seed_same_data_other_seed_differs(tmp_path: Path) -> None:
    a = generate_synthetic(tmp_path / "a", seed=3, duration_s=30.0)
    b = generate_synthetic(tmp_path / "b", seed=3, duration_s=30.0)
    c = generate_synthetic(tmp_path / "c", seed=4, duration_s=30.0)
    assert a.rows == b.rows and a.windows == b.windows
    for venue in VENUES:
        for kind in ("book", "trades"):
            ta = _table(tmp_path / "a", venue, kind)
            assert ta.num_rows > 0
            assert ta.equals(_table(tmp_path / "b", venue, kind))
            assert not ta.equals(_table(tmp_path / "c", venue, kind))
    assert a.rows != c.rows


@dataclass
class _ArbStats:
    total_ns: int = 0
    arb_ns: int = 0
    arb_times: list[int] = field(default_factory=list)
    sizes: list[float] = field(default_factory=list)


def _arb_qty(rich: OrderBook, cheap: OrderBook) -> float:
    """BTC in the top 5 levels sellable on ``rich`` and buyable on ``cheap`` after taker fees."""
    ask = cheap.best_ask
    assert ask is not None
    floor = ask * (1 + FEES)
    bid_qty = sum(lv.size for lv in rich.bids(5) if lv.price > floor)
    bid = rich.best_bid
    assert bid is not None
    ask_qty = sum(lv.size for lv in cheap.asks(5) if lv.price * (1 + FEES) < bid)
    return min(bid_qty, ask_qty)


def _replay_arbs(root: Path) -> _ArbStats:
    cat = Catalog(root)
    books, cursors = _books(cat)
    stats = _ArbStats()
    prev_ts: int | None = None
    in_arb = False
    for cur in merge(cursors):
        assert isinstance(cur, BookCursor)
        if prev_ts is not None:
            stats.total_ns += cur.ts - prev_ts
            if in_arb:
                stats.arb_ns += cur.ts - prev_ts
        cur.apply(books[cur.venue])
        m, g = books["mexc"], books["gateio"]
        if m.best_bid is None or g.best_bid is None:
            continue
        prev_ts = cur.ts
        assert m.best_ask is not None and g.best_ask is not None
        in_arb = False
        for rich, cheap in ((m, g), (g, m)):
            bid, ask = rich.best_bid, cheap.best_ask
            assert bid is not None and ask is not None
            if bid > ask * (1 + FEES):
                in_arb = True
                stats.arb_times.append(cur.ts)
                stats.sizes.append(_arb_qty(rich, cheap))
    return stats


def test_arbitrage_windows_exist_and_are_rare(sample: tuple[Path, SynthReport]) -> None:
    root, report = sample
    stats = _replay_arbs(root)
    assert report.n_windows >= 2
    assert stats.total_ns > 0.95 * DURATION_S * 1e9
    frac = stats.arb_ns / stats.total_ns
    assert 0.0 < frac < 0.10, frac
    # every arbitrage seen lies in a generated window (plus feed latency and the
    # snap-back message): between windows the venues stay inside the fees
    starts = np.array([w.start_ns for w in report.windows])
    ends = np.array([w.end_ns for w in report.windows])
    t = np.array(stats.arb_times)
    j = np.searchsorted(starts, t, side="right") - 1
    assert (j >= 0).all()
    assert (t <= ends[j] + 1_500_000_000).all()
    # most windows are visible from the strategy's side of the feed
    seen = len(np.unique(j))
    assert seen >= 0.8 * report.n_windows, (seen, report.n_windows)
    # with meaningful size: the median opportunity is worth at least 0.01 BTC
    assert float(np.median(stats.sizes)) >= 0.01


def test_window_parameters(sample: tuple[Path, SynthReport]) -> None:
    _, report = sample
    for w in report.windows:
        assert w.venue in VENUES
        assert 30.0 <= abs(w.bps) <= 80.0
        assert 200_000_000 <= w.end_ns - w.start_ns <= 3_000_000_000
    assert {w.venue for w in report.windows} == set(VENUES) or report.n_windows < 4


def test_feed_latency_and_order(sample: tuple[Path, SynthReport]) -> None:
    root, _ = sample
    medians = {}
    for venue in VENUES:
        for kind in ("book", "trades"):
            t = _table(root, venue, kind)
            tsx = t.column("ts_exchange").to_numpy()
            tsl = t.column("ts_local").to_numpy()
            assert (tsl >= tsx).all(), f"{venue} {kind}: negative feed latency"
            assert (np.diff(tsl) >= 0).all(), f"{venue} {kind}: not in ts_local order"
            if kind == "book":
                medians[venue] = float(np.median(tsl - tsx)) / 1e6
    assert 20 < medians["mexc"] < 45
    assert 40 < medians["gateio"] < 90


def test_trades_at_the_touch(sample: tuple[Path, SynthReport]) -> None:
    root, report = sample
    cat = Catalog(root)
    for venue in VENUES:
        inst = cat.instrument(venue, SYMBOL)
        book = OrderBook(venue, SYMBOL, inst.tick)
        # the exchange's view: book and trades ordered by ts_exchange, book first on ties
        bc = BookCursor(cat, venue, SYMBOL, book.scale, key="exchange")
        tc = TradeCursor(cat, venue, SYMBOL, book.scale, key="exchange")
        n = 0
        last_id = -1
        buys = 0
        for cur in merge([bc, tc]):
            if isinstance(cur, BookCursor):
                cur.apply(book)
                continue
            assert isinstance(cur, TradeCursor)
            n += 1
            assert cur.trade_id > last_id
            last_id = cur.trade_id
            touch = book.best_ask_tick if cur.side == 1 else book.best_bid_tick
            assert cur.tick == touch, (venue, cur.trade_id)
            assert cur.size >= float(inst.min_qty)
            assert cur.size * cur.price >= float(inst.min_notional) * (1 - 1e-9)
            buys += cur.side == 1
        assert n == report.rows[f"{venue}/trades"]
        # a few trades a second, both aggressor sides present
        assert 1.0 < n / DURATION_S < 20.0
        assert 0.2 < buys / n < 0.8


def test_refuses_non_empty_root(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate_synthetic(tmp_path, seed=1, duration_s=10.0)
    assert (tmp_path / "x").read_text() == "keep me"


def test_report_lines(sample: tuple[Path, SynthReport]) -> None:
    root, report = sample
    text = "\n".join(report.lines())
    for key in ("mexc/book", "mexc/trades", "gateio/book", "gateio/trades"):
        assert key in text
        assert f"{report.rows[key]:,}" in text
    assert f"{report.n_windows} dislocation windows" in text
    on_disk = sum(p.stat().st_size for p in root.rglob("*.parquet"))
    assert report.bytes_on_disk == on_disk > 0


def test_sample_across_midnight_splits_partitions(tmp_path: Path) -> None:
    midnight = 1_767_657_600 * 10**9  # 2026-01-06T00:00:00Z
    report = generate_synthetic(
        tmp_path / "c", seed=5, duration_s=10.0, start_ns=midnight - 5 * 10**9
    )
    cat = Catalog(tmp_path / "c")
    for venue in VENUES:
        dates = {p.parent.name for p in cat.files(venue, SYMBOL, "book")}
        assert dates == {"date=2026-01-05", "date=2026-01-06"}
    books, cursors = _books(cat)
    n = 0
    for cur in merge(cursors):
        assert isinstance(cur, BookCursor)
        cur.apply(books[cur.venue])
        n += 1
    assert n == report.messages["mexc/book"] + report.messages["gateio/book"]
    assert all(b.crossed_updates == 0 for b in books.values())


def test_more_symbols_leave_btc_unchanged(tmp_path: Path) -> None:
    alone = generate_synthetic(tmp_path / "a", seed=3, duration_s=20.0)
    both = generate_synthetic(tmp_path / "b", seed=3, duration_s=20.0, symbols=[SYMBOL, "ETH/USDT"])
    for venue in VENUES:
        for kind in ("book", "trades"):
            assert _table(tmp_path / "a", venue, kind).equals(_table(tmp_path / "b", venue, kind))
    assert [w for w in both.windows if w.symbol == SYMBOL] == alone.windows
    assert any(w.symbol == "ETH/USDT" for w in both.windows)
    cat = Catalog(tmp_path / "b")
    assert {i.key for i in cat.instruments()} == {
        f"{v}:{s}" for v in VENUES for s in (SYMBOL, "ETH/USDT")
    }
    assert "--symbol ETH/USDT" in cat.info().created_by
    for venue in VENUES:
        inst = cat.instrument(venue, "ETH/USDT")
        assert (inst.base, inst.quote, inst.tick) == ("ETH", "USDT", Decimal("0.01"))
        book = OrderBook(venue, "ETH/USDT", inst.tick)
        cursor = BookCursor(cat, venue, "ETH/USDT", book.scale)
        n = 0
        while cursor.next():
            cursor.apply(book)
            n += 1
        assert n == both.messages[f"{venue} ETH/USDT/book"] and book.crossed_updates == 0
        bid, ask = book.best_bid, book.best_ask
        assert bid is not None and ask is not None and 2_000 < bid < ask < 4_500, (bid, ask)
    text = "\n".join(both.lines())
    assert "BTC/USDT, ETH/USDT on mexc, gateio" in text and "mexc ETH/USDT/book" in text


def test_unknown_symbol_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="DOGE/USDT"):
        generate_synthetic(tmp_path / "c", seed=1, duration_s=10.0, symbols=["DOGE/USDT"])
    assert not (tmp_path / "c").exists()


def test_a_third_venue_and_every_symbol_replay_uncrossed_near_their_price(tmp_path: Path) -> None:
    symbols = [SYMBOL, "ETH/USDT", "SOL/USDT"]
    venues = ["mexc", "gateio", "third"]
    report = generate_synthetic(tmp_path / "c", seed=4, duration_s=30.0, symbols=symbols,
                                venues=venues)  # fmt: skip
    assert report.venues == venues and "on mexc, gateio, third" in report.lines()[0]
    cat = Catalog(tmp_path / "c")
    assert "--venue third" in cat.info().created_by
    assert {w.venue for w in report.windows} <= set(venues)
    price = {SYMBOL: 60_000.0, "ETH/USDT": 3_000.0, "SOL/USDT": 150.0}
    for venue in venues:
        for sym in symbols:
            inst = cat.instrument(venue, sym)
            book = OrderBook(venue, sym, inst.tick)
            cursor = BookCursor(cat, venue, sym, book.scale)
            lowest = float("inf")
            while cursor.next():
                cursor.apply(book)
                levels = book.bids(10**6)
                lowest = min(lowest, levels[-1].price if levels else lowest)
            bid, ask = book.best_bid, book.best_ask
            assert book.crossed_updates == 0, (venue, sym)
            assert bid is not None and ask is not None
            assert 0.8 * price[sym] < bid < ask < 1.2 * price[sym], (venue, sym, bid, ask)
            # the deepest level stays near the price: gaps scale with it
            assert lowest > 0.9 * price[sym], (venue, sym, lowest)


@pytest.mark.parametrize("venues", [["mexc"], ["mexc", "mexc"], ["mexc", "kraken"]])
def test_venues_are_two_or_more_known_ones(tmp_path: Path, venues: list[str]) -> None:
    with pytest.raises(ValueError, match="two or more distinct venues"):
        generate_synthetic(tmp_path / "d", seed=1, duration_s=10.0, venues=venues)
    assert not (tmp_path / "d").exists()


# ------------------------------------------------------------------ a sample that drains
def _mids(cat: Catalog, every_ms: int = 500) -> dict[str, list[tuple[int, float]]]:
    """Each venue's mid, sampled as its book stood every ``every_ms`` of exchange time."""
    books, cursors = _books(cat)
    out: dict[str, list[tuple[int, float]]] = {v: [] for v in VENUES}
    nxt = {v: 0 for v in VENUES}
    for cur in merge(cursors):
        assert isinstance(cur, BookCursor)
        cur.apply(books[cur.venue])
        book = books[cur.venue]
        t = cur.ts_exchange // 1_000_000
        if t >= nxt[cur.venue] and book.best_bid is not None and book.best_ask is not None:
            out[cur.venue].append((t, (book.best_bid + book.best_ask) / 2))
            nxt[cur.venue] = t + every_ms
    return out


def test_a_premium_leans_every_dislocation_and_lifts_the_venue(tmp_path: Path) -> None:
    """``premium_bps``: the windows fall where they would without it, with the same sizes,
    but every window on the rich venue jumps up and every one on the other venue down;
    outside the windows the rich venue's mid sits the premium above the other's."""
    kw: dict[str, Any] = {"seed": 3, "duration_s": 90.0, "dislocations_per_min": 10}
    plain = generate_synthetic(tmp_path / "p", **kw)
    rich = generate_synthetic(tmp_path / "r", premium_bps={"mexc": 12}, **kw)
    assert len(rich.windows) == len(plain.windows) > 10
    signs = {"mexc": 0, "gateio": 0}
    for a, b in zip(plain.windows, rich.windows, strict=True):
        assert (a.venue, a.start_ns, a.end_ns, abs(a.bps)) == (
            b.venue,
            b.start_ns,
            b.end_ns,
            abs(b.bps),
        )
        assert (b.bps > 0) == (b.venue == "mexc"), b
        signs[b.venue] += 1
    assert signs["mexc"] and signs["gateio"]  # windows on both venues, both leaning
    # plain: a few windows went the other way
    assert any((a.bps > 0) != (a.venue == "mexc") for a in plain.windows)

    def gap_bps(root: Path, report: SynthReport) -> float:
        mids = _mids(Catalog(root))
        quiet = [
            (t, m) for t, m in mids["mexc"]
            if not any(w.start_ns - 1e9 <= t * 1_000_000 <= w.end_ns + 1e9
                       for w in report.windows)
        ]  # fmt: skip
        gate = dict(mids["gateio"])
        times = np.array(sorted(gate))
        diffs = []
        for t, m in quiet:
            j = int(np.searchsorted(times, t, side="right")) - 1
            if j >= 0:
                diffs.append((m / gate[int(times[j])] - 1) * 1e4)
        assert len(diffs) > 50
        return float(np.median(diffs))

    lift = gap_bps(tmp_path / "r", rich) - gap_bps(tmp_path / "p", plain)
    assert 10.0 < lift < 14.0, lift
    info = Catalog(tmp_path / "r").info()
    assert "--premium-bps mexc=12" in info.created_by
    assert "persistent premium mexc +12 bps" in info.description


def test_without_a_premium_the_rows_are_the_same(tmp_path: Path) -> None:
    """A zero premium and the default dislocation rate write the plain rows."""
    generate_synthetic(tmp_path / "a", seed=2, duration_s=20.0)
    generate_synthetic(
        tmp_path / "b", seed=2, duration_s=20.0, premium_bps={"gateio": 0.0},
        dislocations_per_min=3.0,
    )  # fmt: skip
    for venue in VENUES:
        for kind in ("book", "trades"):
            assert _table(tmp_path / "a", venue, kind).equals(_table(tmp_path / "b", venue, kind))
    assert Catalog(tmp_path / "a").info().created_by.endswith("--seed 2")
    assert Catalog(tmp_path / "b").info().created_by.endswith("--seed 2")


def test_the_dislocation_rate_is_an_option(tmp_path: Path) -> None:
    few = generate_synthetic(tmp_path / "f", seed=5, duration_s=600.0, dislocations_per_min=0.5)
    many = generate_synthetic(tmp_path / "m", seed=5, duration_s=600.0, dislocations_per_min=6)
    assert 1 <= len(few.windows) <= 12 < 40 <= len(many.windows), (
        len(few.windows),
        len(many.windows),
    )
    assert "--dislocations-per-min 0.5" in Catalog(tmp_path / "f").info().created_by


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"premium_bps": {"kraken": 5.0}}, r"premium_bps: venue 'kraken' is not written"),
        ({"premium_bps": {"mexc": 150.0}}, r"premium_bps\['mexc'\]: .* within \+-100, got 150"),
        ({"premium_bps": {"mexc": float("nan")}}, r"premium_bps\['mexc'\]: .* got nan"),
        ({"premium_bps": {"mexc": "10"}}, r"premium_bps\['mexc'\]: expected a number"),
        ({"dislocations_per_min": 0.0}, r"dislocations_per_min: .* above 0 .* got 0.0"),
        ({"dislocations_per_min": 25}, r"dislocations_per_min: .* at most 20 a minute, got 25"),
    ],
    ids=["venue", "range", "nan", "type", "zero-rate", "high-rate"],
)
def test_drain_options_are_validated_before_writing(
    tmp_path: Path, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        generate_synthetic(tmp_path / "d", seed=1, duration_s=10.0, **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--premium-bps", "mexc"], "expected VENUE=BPS"),
        (["--premium-bps", "mexc=ten"], "expected VENUE=BPS"),
        (["--premium-bps", "mexc=101"], "within +-100"),
        (["--premium-bps", "third=5"], "venue 'third' is not written"),
        (["--premium-bps", "mexc=5", "--premium-bps", "mexc=6"], "has a premium already"),
        (["--dislocations-per-min", "-1"], "above 0 and at most 20"),
    ],
)
def test_the_cli_refuses_bad_drain_options(tmp_path: Path, args: list[str], match: str) -> None:
    from click.testing import CliRunner

    from arbsim.app.cli import main

    target = tmp_path / "c"
    r = CliRunner().invoke(main, ["data", "synth", "--catalog", str(target), "--seed", "1", *args])
    assert r.exit_code == 2 and match in r.output, r.output
    assert not target.exists()


def test_a_drain_sample_is_deterministic(tmp_path: Path) -> None:
    kw: dict[str, Any] = {"duration_s": 15.0, "premium_bps": {"gateio": -8.0}}
    a = generate_synthetic(tmp_path / "a", seed=6, dislocations_per_min=12, **kw)
    b = generate_synthetic(tmp_path / "b", seed=6, dislocations_per_min=12, **kw)
    c = generate_synthetic(tmp_path / "c", seed=7, dislocations_per_min=12, **kw)
    assert a.windows == b.windows and a.windows and a.windows != c.windows
    for venue in VENUES:
        for kind in ("book", "trades"):
            assert _table(tmp_path / "a", venue, kind).equals(_table(tmp_path / "b", venue, kind))
    # gateio cheap: its windows jump down, mexc's up
    assert all((w.bps > 0) == (w.venue == "mexc") for w in a.windows + c.windows)


def test_the_cli_writes_a_drain_sample(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from arbsim.app.cli import main

    target = tmp_path / "c"
    args = ["data", "synth", "--catalog", str(target), "--seed", "4", "--duration", "20"]
    args += ["--premium-bps", "gateio=-7.5", "--dislocations-per-min", "9"]
    r = CliRunner().invoke(main, ["--progress", "off", *args])
    assert r.exit_code == 0, r.output
    info = Catalog(target).info()
    assert info.created_by.endswith("--premium-bps gateio=-7.5 --dislocations-per-min 9")
    assert "~9/min dislocations" in info.description
    assert "persistent premium gateio -7.5 bps" in info.description
