"""`arbsim backtest` on the real Binance recordings (spot vs USD-M perpetual)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from arbsim.app.cli import main
from arbsim.data.catalog import Catalog, catalog_summary

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def binance_catalog(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cat = tmp_path_factory.mktemp("binance") / "cat"
    b = realdata / "binance"
    runner = CliRunner()
    for venue, files in (
        ("binance_spot", ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"]),
        ("binance_usdm", ["usdm_btcusdt_20240808.gz"]),
    ):
        r = runner.invoke(
            main,
            [
                "data",
                "import",
                "binance-hftbacktest",
                *[str(b / f) for f in files],
                "--venue",
                venue,
                "--symbol",
                "BTC/USDT",
                "--catalog",
                str(cat),
            ],
        )
        assert r.exit_code == 0, r.output
        assert "shifted by +127" in r.output  # the recorder's clock offset was removed
    return cat


def test_import_labels_markets_and_fees(binance_catalog: Path, realdata: Path) -> None:
    cat = Catalog(binance_catalog)
    spot = cat.instrument("binance_spot", "BTC/USDT")
    perp = cat.instrument("binance_usdm", "BTC/USDT")
    assert (spot.market, perp.market) == ("spot", "perpetual")
    assert (str(spot.tick), str(perp.tick)) == ("0.01", "0.1")
    assert perp.taker_fee < spot.taker_fee
    r = CliRunner().invoke(
        main,
        [
            "data",
            "import",
            "binance-hftbacktest",
            str(realdata / "binance" / "spot_btcusdt_20240809.gz"),
            "--venue",
            "binance_spot",
            "--symbol",
            "BTC/USDT",
            "--catalog",
            str(binance_catalog),
        ],
    )
    # the same day again: appending it would overlap the data already there
    assert r.exit_code == 2 and "binance_spot BTC/USDT: the new data" in r.output
    assert "overlaps the data already in the catalog (2024-08-08T23:54" in r.output


def test_backtest_on_the_real_two_venue_window(binance_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["backtest", "--data", str(binance_catalog), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "binance_spot (spot) vs binance_usdm (perpetual)" in r.output
    assert "not a spot-spot spread" in r.output
    assert "SYNTHETIC" not in r.output
    s = json.loads((out / "summary.json").read_text())
    rows = catalog_summary(Catalog(binance_catalog))["streams"]
    assert s["events"] == sum(st["rows"]["book"] + st["rows"]["trades"] for st in rows)
    assert s["reconciled_exactly"] is True
    assert s["window"]["start"].startswith("2024-08-08T23:54")
    feed = s["latency_ms"]["feed.binance_spot"]
    assert feed["min"] >= 0.0  # never negative after the clock-offset removal
