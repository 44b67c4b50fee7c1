"""The cryptofeed Gate.io capture importer: the real 2021 capture (10 pairs) and small
synthetic captures written to ``tmp_path`` (gaps, malformed lines, appends)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from arbsim.app.cli import main
from arbsim.app.registry import Registry
from arbsim.core.book import OrderBook
from arbsim.core.errors import ConfigError, DataError
from arbsim.data.catalog import FLAG_GAP, FLAG_SNAPSHOT_BEGIN, Catalog
from arbsim.data.feed import BookCursor
from exchanges.gateio.cryptofeed import CryptofeedReport, import_cryptofeed

PAIRS = [
    "BTC/USDC", "DIS/USDT", "FAST/USDT", "HAI/ETH", "INK/USDT", "NANO/USDT", "NEO/BTC",
    "OMG/USDT", "QTUM3S/USDT", "ZKS/ETH",
]  # fmt: skip


def replay(cat: Catalog, symbol: str) -> tuple[int, int, list[int], tuple[Any, Any]]:
    """Messages, crossed states, the seq of every message and the last best bid / ask."""
    book = OrderBook("gateio", symbol, cat.instrument("gateio", symbol).tick)
    cur = BookCursor(cat, "gateio", symbol, book.scale)
    seqs = []
    crossed = 0
    while cur.next():
        cur.apply(book, FLAG_SNAPSHOT_BEGIN)
        seqs.append(cur.seq)
        crossed += book.is_crossed
    return len(seqs), crossed, seqs, (book.best_bid, book.best_ask)


@pytest.fixture(scope="module")
def real(
    realdata: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Catalog, CryptofeedReport]:
    cat = Catalog(tmp_path_factory.mktemp("cf") / "cat")
    rep = import_cryptofeed(realdata / "gateio" / "cryptofeed_GATEIO", catalog=cat)
    return cat, rep


@pytest.mark.realdata
def test_real_capture_all_pairs_chain_from_their_snapshot(
    real: tuple[Catalog, CryptofeedReport],
) -> None:
    cat, rep = real
    assert [p.symbol for p in rep.pairs] == PAIRS
    assert [i.symbol for i in cat.instruments()] == PAIRS
    assert sum(p.diffs for p in rep.pairs) == 172  # the data README's count
    for p in rep.pairs:
        assert p.snapshots == 1 and p.gaps == 0 and p.crossed == 0, p
        assert p.continues_snapshot, p
        messages, crossed, seqs, _ = replay(cat, p.symbol)
        assert crossed == 0, p.symbol
        # the snapshot, then one message per applied diff, ids strictly increasing
        assert messages == 1 + p.applied
        assert seqs[0] == p.snapshot_ids[0] and seqs[-1] == p.last_id
        assert all(b > a for a, b in itertools.pairwise(seqs))
        if p.applied:
            ((sid, first, last),) = p.continued
            assert sid == p.snapshot_ids[0] and first <= sid + 1 <= last
    # INK_USDT and BTC_USDC got no diff newer than their snapshot in the 32 s captured
    assert {p.symbol for p in rep.pairs if not p.applied} == {"INK/USDT", "BTC/USDC"}
    assert sum(p.applied for p in rep.pairs) == 159
    assert sum(p.trades for p in rep.pairs) == rep.trade_rows == 9
    # the HAI_ETH book ends where the booksync test of the same capture says
    assert replay(cat, "HAI/ETH")[3] == (0.00010324, 0.00010397)
    # instruments from the recorded currency_pairs answer (fee 0.2 % -> 0.002); ZKS_ETH
    # holds bids finer than its listed precision 6: the grid follows the data
    omg = cat.instrument("gateio", "OMG/USDT")
    assert (str(omg.tick), str(omg.lot), str(omg.taker_fee)) == ("0.001", "0.001", "0.002")
    assert str(cat.instrument("gateio", "ZKS/ETH").tick) == "1E-8"
    r = next(cat.batches("gateio", "OMG/USDT", "book"))[1]
    tsx, tsl = r.column("ts_exchange").to_numpy(), r.column("ts_local").to_numpy()
    assert np.all(tsl >= tsx) and int(tsl[0]) > 1_619_093_532 * 10**9


@pytest.mark.realdata
def test_real_capture_symbols_and_append(realdata: Path, tmp_path: Path) -> None:
    prefix = realdata / "gateio" / "cryptofeed_GATEIO"
    cat = Catalog(tmp_path / "cat")
    rep = import_cryptofeed(prefix, catalog=cat, symbols=["NEO/BTC", "OMG/USDT"])
    assert [p.symbol for p in rep.pairs] == ["NEO/BTC", "OMG/USDT"]
    assert [i.symbol for i in cat.instruments()] == ["NEO/BTC", "OMG/USDT"]
    before = sorted(cat.root.rglob("*.parquet"))
    with pytest.raises(DataError, match="overlaps the data already in the catalog"):
        import_cryptofeed(prefix, catalog=cat, symbols=["OMG/USDT"])
    assert sorted(cat.root.rglob("*.parquet")) == before
    with pytest.raises(DataError, match="holds no ABC/USDT"):
        import_cryptofeed(prefix, catalog=cat, symbols=["ABC/USDT"])


@pytest.mark.realdata
def test_cli_imports_through_the_plugin(realdata: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(main, [
        "--progress", "off", "data", "import", "cryptofeed",
        str(realdata / "gateio" / "cryptofeed_GATEIO"), "--venue", "gateio",
        "--symbol", "DIS/USDT", "--catalog", str(tmp_path / "cat"),
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "DIS/USDT" in res.output and "continues the snapshot" in res.output


def test_the_importer_is_a_plugin() -> None:
    plugin = Registry.from_entry_points().importer("cryptofeed", "gateio")
    assert plugin.name == "cryptofeed.gateio"
    with pytest.raises(ConfigError, match="for: gateio"):
        Registry.from_entry_points().importer("cryptofeed", "mexc")


# --------------------------------------------------------------------------- synthetic
S0 = 1_700_000_000


def snap_line(
    pair: str, at: float, book_id: int, bids: list[list[str]], asks: list[list[str]]
) -> str:
    url = (
        f"https://api.gateio.ws/api/v4/spot/order_book?currency_pair={pair}&limit=100&with_id=true"
    )
    body = {"id": book_id, "current": int(at * 1000), "update": int(at * 1000), "asks": asks,
            "bids": bids}  # fmt: skip
    return f"{url} -> {at}: {json.dumps(body)}"


def diff_line(
    pair: str, at: float, first: int, last: int, b: list[list[str]], a: list[list[str]]
) -> str:
    frame = {
        "time": int(at), "channel": "spot.order_book_update", "event": "update",
        "result": {"t": int(at * 1000) - 5, "e": "depthUpdate", "E": int(at), "s": pair,
                   "U": first, "u": last, "b": b, "a": a},
    }  # fmt: skip
    return f"{at}: {json.dumps(frame)}"


def capture(tmp_path: Path, http: list[str], sockets: list[str]) -> Path:
    (tmp_path / "rec.http.0.0").write_text("\n".join(http) + "\n")
    (tmp_path / "rec.ws.1.0").write_text(
        "\n".join([f"wss://api.gateio.ws/ws/v4/ <-> {S0}", *sockets]) + "\n"
    )
    return tmp_path / "rec"


def test_a_real_id_jump_is_a_gap_and_the_next_snapshot_is_flagged(tmp_path: Path) -> None:
    bids, asks = [["10.0", "1"], ["9.9", "2"]], [["10.2", "1"], ["10.3", "2"]]
    prefix = capture(
        tmp_path,
        [
            snap_line("ABC_USDT", S0 + 1.0, 100, bids, asks),
            snap_line("ABC_USDT", S0 + 5.0, 120, [["10.1", "1"]], [["10.2", "3"]]),
        ],
        [
            diff_line("ABC_USDT", S0 + 0.5, 95, 99, [["9.8", "1"]], []),  # older: dropped
            diff_line("ABC_USDT", S0 + 1.5, 100, 101, [["10.0", "0"]], []),  # straddles 101
            diff_line("ABC_USDT", S0 + 2.0, 102, 103, [], [["10.4", "1"]]),
            diff_line("ABC_USDT", S0 + 2.1, 102, 103, [], [["10.4", "1"]]),  # duplicate: stale
            diff_line("ABC_USDT", S0 + 3.0, 110, 111, [["9.7", "1"]], []),  # jump: 104..109 lost
            diff_line("ABC_USDT", S0 + 4.0, 112, 119, [["9.6", "1"]], []),  # before snapshot 120
            diff_line("ABC_USDT", S0 + 6.0, 121, 121, [["10.05", "1"]], []),
        ],
    )
    cat = Catalog(tmp_path / "cat")
    rep = import_cryptofeed(prefix, catalog=cat)
    (p,) = rep.pairs
    assert (p.snapshots, p.diffs, p.applied, p.gaps) == (2, 7, 3, 1)
    assert p.gap_at[0].startswith(f"{tmp_path / 'rec.ws.1.0'}:6:") and "gap" in p.gap_at[0]
    assert p.continued == [(100, 100, 101), (120, 121, 121)] and p.last_id == 121
    assert "inferred from the data's decimals" in "\n".join(rep.lines())
    _messages, crossed, seqs, last = replay(cat, "ABC/USDT")
    assert seqs == [100, 101, 103, 120, 121] and crossed == 0
    assert last == (10.1, 10.2)
    r = next(cat.batches("gateio", "ABC/USDT", "book"))[1]
    gap_seqs = set(r.column("seq").to_numpy()[(r.column("flags").to_numpy() & FLAG_GAP) > 0])
    assert gap_seqs == {120}  # only the snapshot after the real jump
    assert str(cat.instrument("gateio", "ABC/USDT").tick) == "0.01"


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("not a line", r"rec\.ws\.1\.0:3: expected '<seconds>: <frame>'"),
        (f"{S0 + 2}: {{not json", r"rec\.ws\.1\.0:3: .*"),
        (f"{S0 + 2}: " + json.dumps({"channel": "spot.order_book_update", "event": "update",
         "result": {"t": 1, "s": "ABC_USDT", "U": 101, "u": 101, "b": [["x", "1"]], "a": []}}),
         r"rec\.ws\.1\.0:3: .*bid level"),
        ("abc: {}", r"rec\.ws\.1\.0:3: receipt time 'abc' is not seconds"),
    ],
)  # fmt: skip
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: str, match: str) -> None:
    prefix = capture(
        tmp_path,
        [snap_line("ABC_USDT", S0 + 1.0, 100, [["10.0", "1"]], [["10.2", "1"]])],
        [diff_line("ABC_USDT", S0 + 1.5, 101, 101, [["10.0", "2"]], []), line],
    )
    cat_dir = tmp_path / "cat"
    with pytest.raises(DataError, match=match):
        import_cryptofeed(prefix, catalog=Catalog(cat_dir))
    assert not cat_dir.exists()
    res = CliRunner().invoke(main, [
        "--progress", "off", "data", "import", "cryptofeed", str(prefix), "--venue", "gateio",
        "--catalog", str(cat_dir),
    ])  # fmt: skip
    assert res.exit_code == 2 and "rec.ws.1.0:3:" in res.output, res.output
    assert not cat_dir.exists()
