"""`arbsim sweep` end to end on a real Dask LocalCluster (2 processes on 127.0.0.1) over
short windows of the bundled sample: results, equality with a plain backtest, resume,
interruption, failing cells, optuna, the report and the command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from arbsim.app.backtest import bundled_sample, default_config_path, run_backtest
from arbsim.app.cli import main
from arbsim.app.config import parse_config
from arbsim.app.sweep import best, format_sweep, run_sweep
from arbsim.core.errors import ConfigError

distributed = pytest.importorskip("distributed")
pytest.importorskip("optuna")

BASE = default_config_path()
W1 = "{start: 2026-01-05T00:00:00Z, end: 2026-01-05T00:00:40Z}"
W2 = "{start: 2026-01-05T00:00:40Z, end: 2026-01-05T00:01:20Z}"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """One 2-process cluster for the module (a cluster takes a second or two to start)."""
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False},
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def _grid(tmp_path: Path, text: str, name: str = "grid.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GRID = f"""
params:
  strategy.params.max_qty: {{from: "0.05", to: "0.25", step: "0.2"}}
  venues[gateio].latency.entry_ms: [5, 60]
windows: [{W1}]
objective: {{expression: net_pnl - 0.5 * max_drawdown}}
"""


def test_grid_cells_run_as_plain_backtests_and_resume_skips_them(
    tmp_path: Path, scheduler: str
) -> None:
    out = tmp_path / "sweep"
    df = run_sweep(BASE, _grid(tmp_path, GRID), out=out, scheduler=scheduler)
    assert len(df) == 4 and (df["status"] == "ok").all(), df["error"].tolist()
    assert sorted(set(df["strategy.params.max_qty"])) == ["0.05", "0.25"]
    assert sorted(set(df["venues[gateio].latency.entry_ms"])) == [5, 60]
    stored = pd.read_parquet(out / "results.parquet")
    assert sorted(stored["cell"]) == sorted(df["cell"])
    for column in ("net_pnl", "fees", "attempts", "fill_ratio", "max_drawdown", "sharpe"):
        assert column in stored
    assert (stored["events"] > 0).all() and (stored["events_per_s"] > 0).all()
    assert df["net_pnl"].nunique() > 1  # the parameters change the outcome

    # a cell is exactly the backtest of its own config
    row = df.sort_values("objective").iloc[-1]
    cell_dir = out / row["run_dir"]
    cfg = parse_config((cell_dir / "config.yaml").read_bytes())
    plain = run_backtest(
        cfg, catalog_path=bundled_sample(), out_dir=tmp_path / "plain", start=cfg.data.start,
        end=cfg.data.end,
    )  # fmt: skip
    summary = json.loads((cell_dir / "summary.json").read_text())
    assert plain.summary["pnl"] == summary["pnl"]
    assert plain.summary["pnl"]["net"] == row["net_pnl"]
    assert plain.summary["arbs"]["attempted"] == row["attempts"]
    assert plain.summary["stats"]["max_drawdown"] == row["max_drawdown"]
    for name in ("orders.parquet", "fills.parquet", "arbs.parquet", "equity.parquet"):
        assert (cell_dir / name).read_bytes() == (tmp_path / "plain" / name).read_bytes(), name
    assert best(df).iloc[0]["cell"] == row["cell"]

    # resume with one more value: only the new cells run, the old ones are untouched
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*/summary.json")}
    seen: list[tuple[int, int]] = []
    bigger = GRID.replace("[5, 60]", "[5, 60, 30]")
    df2 = run_sweep(
        BASE,
        _grid(tmp_path, bigger),
        out=out,
        scheduler=scheduler,
        resume=True,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (2, 2)
    assert len(df2) == 6 and (df2["status"] == "ok").all()
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert len((out / "results.jsonl").read_text().splitlines()) == 6

    # the report: best cells, a heatmap for the pair of parameters, images inline
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3
    assert "Best cells" in html and "heatmap" in html and "<script" not in html

    # an out directory in use is refused without --resume, before any work
    with pytest.raises(ConfigError, match="not empty; use --resume"):
        run_sweep(BASE, _grid(tmp_path, GRID), out=out, scheduler=scheduler)


def test_a_failing_cell_is_recorded_and_the_sweep_goes_on(tmp_path: Path, scheduler: str) -> None:
    grid = _grid(
        tmp_path,
        f"""
params:
  venues[mexc].latency:
    - {{entry_ms: 8.0}}
    - {{model: empirical, source: {tmp_path / "missing.csv"}}}
windows: [{W1}]
""",
    )
    df = run_sweep(BASE, grid, out=tmp_path / "sweep", scheduler=scheduler, keep="summary")
    assert sorted(df["status"]) == ["error", "ok"]
    failed = df[df["status"] == "error"].iloc[0]
    assert "missing.csv" in failed["error"] and "DataError" in failed["error"]
    ok = df[df["status"] == "ok"].iloc[0]
    # --keep summary: the cell's summary only
    assert [p.name for p in (tmp_path / "sweep" / ok["run_dir"]).iterdir()] == ["summary.json"]
    assert "1 failed" in format_sweep(df)


def test_an_interrupted_sweep_keeps_finished_cells_and_resumes(
    tmp_path: Path, scheduler: str
) -> None:
    grid = _grid(
        tmp_path,
        f"""
params:
  strategy.params.max_qty: ["0.05", "0.1", "0.15", "0.2", "0.25", "0.3"]
windows: [{W1}]
""",
    )
    out = tmp_path / "sweep"
    finished: list[int] = []
    df = run_sweep(
        BASE,
        grid,
        out=out,
        scheduler=scheduler,
        progress=lambda done, total: finished.append(done),
        should_stop=lambda: "SIGINT" if finished and finished[-1] >= 1 else None,
        report=False,
    )
    assert df.attrs["interrupted"] == "SIGINT"
    assert 1 <= len(df) < 6 and (df["status"] == "ok").all()
    kept = set(df["cell"])
    assert set(pd.read_parquet(out / "results.parquet")["cell"]) == kept
    again = run_sweep(BASE, grid, out=out, scheduler=scheduler, resume=True, report=False)
    assert len(again) == 6 and again.attrs["interrupted"] is None
    assert len((out / "results.jsonl").read_text().splitlines()) == 6  # none ran twice


def test_optuna_runs_the_trials_in_parallel_and_reports_the_best(
    tmp_path: Path, scheduler: str
) -> None:
    grid = _grid(
        tmp_path,
        f"""
mode: optuna
trials: 6
seed: 1
params:
  strategy.params.max_qty: {{from: "0.05", to: "0.3", step: "0.05"}}
  strategy.params.cooldown_s: {{distribution: uniform, low: 0.0, high: 2.0}}
windows: [{W1}, {W2}]
objective: {{expression: net_pnl - 0.5 * max_drawdown, direction: maximize}}
""",
    )
    df = run_sweep(BASE, grid, out=tmp_path / "sweep", scheduler=scheduler)
    assert len(df) == 12 and (df["status"] == "ok").all()
    assert sorted(df["trial"].unique()) == list(range(6))
    # range values keep the step's decimals
    assert set(df["strategy.params.max_qty"]) <= {"0.05", "0.10", "0.15", "0.20", "0.25", "0.30"}
    per_trial = df.groupby("trial")["objective"].mean()
    top = best(df, 1).iloc[0]
    assert top["objective"] == df["objective"].max()
    text = format_sweep(df)
    best_trial = int(per_trial.sort_values().index[-1])
    assert f"best trial {best_trial} of 6: objective {per_trial.max():,.4f}" in text
    assert "heatmap" in (tmp_path / "sweep" / "report.html").read_text()

    # resumed with more trials: the finished ones are told to the study, not run again
    grid.write_text(grid.read_text().replace("trials: 6", "trials: 8"))
    again = run_sweep(BASE, grid, out=tmp_path / "sweep", scheduler=scheduler, resume=True)
    assert len(again) == 16 and sorted(again["trial"].unique()) == list(range(8))
    assert len((tmp_path / "sweep" / "results.jsonl").read_text().splitlines()) == 16


def test_a_bad_value_fails_before_any_work(tmp_path: Path) -> None:
    grid = _grid(tmp_path, "params:\n  venues[mexc].latency.entry_ms: [5, -1]\n")
    out = tmp_path / "sweep"
    with pytest.raises(ConfigError, match=r"entry_ms=-1.*`\$\.venues\[0\]\.latency"):
        run_sweep(BASE, grid, out=out, workers=1)
    assert not out.exists()


def test_the_command_runs_a_sweep_on_its_own_local_cluster(tmp_path: Path) -> None:
    grid = _grid(tmp_path, f"params:\n  strategy.params.max_qty: ['0.1', '0.2']\nwindows: [{W1}]\n")
    out = tmp_path / "sweep"
    args = [
        "--progress",
        "lines",
        "--progress-every",
        "0",
        "sweep",
        "--config",
        str(BASE),
        "--grid",
        str(grid),
    ]
    r = CliRunner().invoke(main, [*args, "--out", str(out), "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert "2 cells, 2 ok, 0 failed" in r.stdout
    assert "2 workers" in r.stderr and "sweep: 100.0% (2 / 2 cells)" in r.stderr
    assert (out / "report.html").is_file() and (out / "results.parquet").is_file()
    r = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert r.exit_code == 2 and "--resume" in r.stderr
    bad = _grid(tmp_path, "params:\n  venues[okx].fees.taker_fee: ['0.001']\n", "bad.yaml")
    r = CliRunner().invoke(main, ["sweep", "--config", str(BASE), "--grid", str(bad)])
    assert r.exit_code == 2 and "no item named 'okx'" in r.stderr


def test_ctrl_c_stops_the_command_cleanly_keeping_finished_cells(tmp_path: Path) -> None:
    values = ", ".join(f'"{q / 100:.2f}"' for q in range(5, 29))
    window = "{start: 2026-01-05T00:00:00Z, end: 2026-01-05T00:01:00Z}"
    grid = _grid(tmp_path, f"params:\n  strategy.params.max_qty: [{values}]\nwindows: [{window}]\n")
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "arbsim.app.cli", "sweep", "--config", str(BASE)]
    proc = subprocess.Popen(
        [*cmd, "--grid", str(grid), "--out", str(out), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while not (results.is_file() and results.read_text().count("\n") >= 1):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the sweep and its workers
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "INTERRUPTED by SIGINT" in stdout
    done = results.read_text().splitlines()
    assert 1 <= len(done) < 24
    assert len(pd.read_parquet(out / "results.parquet")) == len(done)
