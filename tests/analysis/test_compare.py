"""arbsim compare: decision matching and the PnL gap on hand-built runs."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from builders import instrument
from click.testing import CliRunner
from test_analysis import MS, T0, arb, make_run

from arbsim import analysis as an
from arbsim.analysis.compare import (
    CAUSES,
    compare_runs,
    derived_tolerance_ms,
    format_comparison,
    match_arbs,
)
from arbsim.app.cli import compare
from arbsim.data.catalog import Catalog, CatalogInfo
from arbsim.runtime.recorder import ArbRecord


def decisions(*rows: tuple[int, str, str, int]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"arb_id": i, "symbol": "BTC/USDT", "buy_venue": b, "sell_venue": s, "ts_decision": t}
            for i, b, s, t in rows
        ]
    )


def test_greedy_nearest_matching() -> None:
    a = decisions((1, "x", "y", T0), (2, "x", "y", T0 + 100 * MS))
    b = decisions((10, "x", "y", T0 + 60 * MS), (11, "x", "y", T0 + 130 * MS))
    pairs = match_arbs(a, b, 100 * MS)
    # the closest pair (2, 11: 30 ms) is taken first, so 1 pairs with 10 (60 ms), not
    # 2 with 10 (40 ms), which would leave 1 without a partner
    assert pairs.to_dict("records") == [
        {"arb_id_a": 1, "arb_id_b": 10, "dt_ns": 60 * MS},
        {"arb_id_a": 2, "arb_id_b": 11, "dt_ns": 30 * MS},
    ]


def test_each_decision_used_once() -> None:
    a = decisions((1, "x", "y", T0), (2, "x", "y", T0 + 10 * MS))
    b = decisions((10, "x", "y", T0 + 5 * MS))
    pairs = match_arbs(a, b, 100 * MS)
    # equal distances: the earlier decision of A wins
    assert pairs.to_dict("records") == [{"arb_id_a": 1, "arb_id_b": 10, "dt_ns": 5 * MS}]


def test_direction_and_tolerance() -> None:
    a = decisions((1, "x", "y", T0), (2, "x", "y", T0 + 1000 * MS))
    b = decisions((10, "y", "x", T0), (11, "x", "y", T0 + 1100 * MS + 1))
    assert match_arbs(a, b, 100 * MS).empty
    assert len(match_arbs(a, b, 100 * MS + 1)) == 1


def test_empty_inputs() -> None:
    a = decisions((1, "x", "y", T0))
    empty = a.iloc[0:0]
    assert match_arbs(a, empty, MS).empty
    assert match_arbs(empty, a, MS).empty


def traded(
    arb_id: int, t_ms: int, qty: str, buy: float, sell: float, pnl: float, **kw: Any
) -> ArbRecord:
    return arb(
        arb_id,
        ts_decision=T0 + t_ms * MS,
        ts_done=T0 + (t_ms + 50) * MS,
        buy_filled=qty,
        sell_filled=qty,
        buy_avg=buy,
        sell_avg=sell,
        expected_pnl=1.0,
        realized_pnl=pnl,
        **kw,
    )


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    a = [
        traded(1, 1000, "1", 100.0, 101.0, 1.0),  # B: same qty, worse prices
        traded(2, 2000, "1", 100.0, 101.0, 1.0),  # B: half the qty, same unit PnL
        traded(3, 3000, "1", 100.0, 101.0, 1.0),  # B: denied by risk
        traded(4, 4000, "1", 100.0, 101.0, 1.0),  # only in A
        traded(7, 7000, "1", 100.0, 101.0, 1.0),  # B: skipped for balance
    ]
    b = [
        traded(1, 1010, "1", 100.1, 100.95, 0.5),
        traded(2, 1990, "0.5", 100.0, 101.0, 0.5),
        arb(3, ts_decision=T0 + 3020 * MS, outcome="denied", reason="max_position"),
        traded(5, 5000, "1", 100.0, 101.0, 0.25),  # only in B
        arb(7, ts_decision=T0 + 7030 * MS, outcome="skipped", reason="balance"),
        traded(6, 61_000, "1", 100.0, 101.0, 9.0),  # after A's window: not compared
    ]
    ra = make_run(tmp_path / "a", arbs=a, summary={"pnl": {"gross": 0, "fees": 0, "net": 5.0}})
    rb = make_run(
        tmp_path / "b",
        arbs=b,
        summary={
            "pnl": {"gross": 0, "fees": 0, "net": 10.0},
            "window": {
                "start": "2026-01-05T00:00:00.000+00:00",
                "end": "2026-01-05T00:02:00.000+00:00",
            },
        },
    )
    return ra, rb


def test_compare_runs(two_runs: tuple[Path, Path]) -> None:
    res = compare_runs(an.load_run(two_runs[0]), an.load_run(two_runs[1]))
    d = res["decisions"]
    assert (d["a"], d["b"], d["matched"]) == (5, 5, 4)
    assert d["share_of_a"] == pytest.approx(0.8)
    assert d["share_in_common"] == pytest.approx(4 / 6)
    # B bought 10 bps higher and sold ~4.95 bps lower on arb 1: both are B-worse costs
    assert res["fill_prices"]["buy"]["pairs_both_filled"] == 2
    assert res["fill_prices"]["buy"]["max_abs_bps"] == pytest.approx(10.0)
    assert res["fill_prices"]["buy"]["mean_bps"] == pytest.approx(5.0)
    assert res["fill_prices"]["sell"]["mean_bps"] == pytest.approx(0.05 / 101.0 * 1e4 / 2)
    c = res["pnl"]["causes"]
    assert list(c) == list(CAUSES)
    assert c["fill prices (latency / slippage)"] == pytest.approx(-0.5)
    assert c["fill ratio (queue / depth)"] == pytest.approx(-0.5)
    assert c["rejections / denials"] == pytest.approx(-1.0)
    assert c["balance skips (inventory)"] == pytest.approx(-1.0)
    assert c["decisions not in common"] == pytest.approx(0.25 - 1.0)
    # the causes add up to the net PnL gap; the rest is "other"
    assert res["pnl"]["gap"] == 5.0
    assert sum(c.values()) == pytest.approx(5.0)
    assert c[CAUSES[-1]] == pytest.approx(5.0 + 3.75)
    assert res["pnl"]["main_cause"] == CAUSES[-1]
    assert res["outcomes"]["completed"] == {"completed": 2, "denied": 1, "skipped": 1}
    json.dumps(res, allow_nan=False)


def test_legs_within_one_tick_use_the_sessions_catalog(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    res = compare_runs(an.load_run(a), an.load_run(b))
    assert res["decisions"]["same_outcome"] == 2  # arbs 1, 2; not 3 (denied), 7 (skipped)
    assert res["decisions"]["same_outcome_share"] == pytest.approx(0.5)
    assert res["fill_prices"]["within_one_tick"] == {"legs": 0, "within": 0, "share": None}
    # B's recording says venue a trades in cents: its 0.1 worse buy is ten ticks away
    cat = Catalog(b / "catalog")
    cat.create(CatalogInfo(synthetic=True, description="session recording"))
    cat.write_instrument(instrument("a", tick=Decimal("0.01")))
    cat.write_instrument(instrument("b"))
    res = compare_runs(an.load_run(a), an.load_run(b))
    assert res["fill_prices"]["within_one_tick"] == {"legs": 4, "within": 3, "share": 0.75}
    assert "within one tick: 3 of 4 (75.0%)" in format_comparison(res)
    assert "same outcome (of matched)                    50.0%" in format_comparison(res)


def test_a_shifted_run_lines_up_again(two_runs: tuple[Path, Path]) -> None:
    a, b = an.load_run(two_runs[0]), an.load_run(two_runs[1])
    later = b.shifted(3_600 * 10**9)  # the same session an hour later
    assert compare_runs(a, later)["decisions"]["matched"] == 0
    assert later.arbs["ts_decision"].iloc[0] == b.arbs["ts_decision"].iloc[0] + 3_600 * 10**9
    assert later.window_ns() == tuple(t + 3_600 * 10**9 for t in b.window_ns())
    back = later.shifted(-3_600 * 10**9)
    assert compare_runs(a, back) == compare_runs(a, b)


def test_cli_table_and_json_file(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    r = CliRunner().invoke(compare, [str(a), str(b)])
    assert r.exit_code == 0, r.output
    assert "share matched" in r.output
    assert "decisions not in common" in r.output
    written = json.loads((b / "compare.json").read_text())
    assert written["decisions"]["matched"] == 4
    assert written["runs"] == {"a": str(a), "b": str(b)}


def test_cli_json_prints_and_writes_nothing(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    r = CliRunner().invoke(compare, [str(a), str(b), "--json", "--tolerance-ms", "5"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["tolerance_ms"] == 5.0
    assert out["decisions"]["matched"] == 0  # every pair is 10 ms or more apart
    assert not (b / "compare.json").exists()


def test_cli_bad_run_dir(tmp_path: Path, two_runs: tuple[Path, Path]) -> None:
    r = CliRunner().invoke(compare, [str(two_runs[0]), str(tmp_path / "missing")])
    assert r.exit_code == 2
    assert f"{tmp_path / 'missing'}: run directory does not exist" in r.output


def test_default_tolerance_comes_from_the_measured_feed_latency(tmp_path: Path) -> None:
    feed = [(T0 + i * MS, "feed_sample", "mexc", (20 + i) * MS) for i in range(21)]  # median 30
    a = make_run(tmp_path / "a", arbs=[arb(1, ts_decision=T0 + 10 * MS)], latency=feed)
    b = make_run(tmp_path / "b", arbs=[arb(1, ts_decision=T0 + 70 * MS)], latency=feed)
    ra, rb = an.load_run(a), an.load_run(b)
    assert derived_tolerance_ms(ra, rb) == (
        60.0,
        "2 x the median feed latency 30.0 ms, within 10..500 ms",
    )
    result = compare_runs(ra, rb)
    assert result["tolerance_ms"] == 60.0
    assert result["decisions"]["matched"] == 1  # 60 ms apart: the same decision
    bare = make_run(tmp_path / "c", arbs=[arb(1)])
    assert derived_tolerance_ms(an.load_run(bare), an.load_run(bare))[0] == 100.0
