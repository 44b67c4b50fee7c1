"""bench/fill_calibration.py on the real Binance recording."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from arbsim.app.cli import main

pytestmark = pytest.mark.realdata
ROOT = Path(__file__).resolve().parents[1]


def test_calibration_report_on_real_trades(realdata: Path, tmp_path: Path) -> None:
    cat = tmp_path / "cat"
    r = CliRunner().invoke(
        main,
        [
            "data",
            "import",
            "binance-hftbacktest",
            str(realdata / "binance" / "usdm_btcusdt_20240808.gz"),
            "--venue",
            "binance_usdm",
            "--symbol",
            "BTC/USDT",
            "--catalog",
            str(cat),
        ],
    )
    assert r.exit_code == 0, r.output
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fill_calibration.py"), "--data", str(cat), "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    import json

    rows = json.loads(proc.stdout)["binance_usdm"]
    ratios = {name: row["fill_ratio"] for name, row in rows.items()}
    assert all(0.0 < v < 1.0 for v in ratios.values()), ratios
    # the probabilistic models only ever move a quote forward more than risk_averse does
    assert ratios["prob_log"] >= ratios["risk_averse"]
    assert ratios["prob_power(2)"] >= ratios["risk_averse"]
    assert rows["risk_averse"]["quotes"] > 100
