"""The bench scripts keep working (each is run on a small input; timings not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize(
    "extra", [["--strategy", "cross_exchange"], ["--strategy", "maker", "--queue", "prob_power"]]
)
def test_replay_bench_runs(extra: list[str]) -> None:
    out = bench(
        "bench/replay.py", "--data", "data/sample", "--end", "2026-01-05T00:01:00Z", "--json",
        *extra,
    )  # fmt: skip
    result = json.loads(out)
    assert result["events"] > 10_000 and result["peak_rss_mb"] > 0


def test_mexc_decode_bench_runs() -> None:
    out = bench("bench/decode_mexc.py", "0.05")
    assert "decode_push" in out and "msg/s" in out


def test_sweep_bench_runs() -> None:
    out = bench(
        "bench/sweep.py", "--cells", "2", "--window-s", "10", "--workers", "1", "--no-warmup",
        "--json",
    )  # fmt: skip
    (row,) = json.loads(out)
    assert row["cells"] == 2 and row["failed"] == 0 and row["events_per_s"] > 0


@pytest.mark.realdata
def test_import_tardis_bench_runs(realdata: Path) -> None:
    out = bench(
        "bench/import_tardis.py", "--recording",
        str(realdata / "binance" / "spot_btcusdt_20240808.gz"), "--copies", "1,2", "--json",
    )  # fmt: skip
    one, two = json.loads(out)
    assert two["rows"] == 2 * one["rows"] and one["rows_per_s"] > 0 and one["peak_rss_mb"] > 0
    # the second copy starts with its own snapshot, after the first copy's deltas
    assert (one["resyncs"], two["resyncs"], two["crossed_states"]) == (0, 1, 0)


def test_seek_bench_runs(tmp_path: Path) -> None:
    out = bench(
        "bench/seek.py", "--make", str(tmp_path / "cat"), "--hours", "0.05",
        "--snapshot-every", "20", "--window-s", "30", "--json",
    )  # fmt: skip
    result = json.loads(out)
    seek, full = result["runs"]
    assert all(result["identical"].values()), result["identical"]
    # the last 30 s plus the warm-up since the latest snapshot (and one read batch)
    assert seek["events"] <= result["window_events"] + result["warmup_events"]
    assert seek["events"] < full["events"] == result["events_to_end"]
