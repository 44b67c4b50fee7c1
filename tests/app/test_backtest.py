"""End-to-end: `arbsim backtest` on the bundled sample and on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from builders import MS, T0, VenueData, instrument, write_catalog
from click.testing import CliRunner

from arbsim.app.backtest import bundled_sample, default_config_path, run_backtest
from arbsim.app.cli import main
from arbsim.app.config import load_config
from arbsim.core.model import Trade
from arbsim.runtime.context import Context
from arbsim.runtime.strategy import Strategy

OUTPUTS = [
    "config.yaml",
    "orders.parquet",
    "fills.parquet",
    "arbs.parquet",
    "latency.parquet",
    "equity.parquet",
    "summary.json",
]
SHORT = "2026-01-05T00:04:00Z"  # first four minutes of the sample


def test_default_command_runs_on_the_sample(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "arbsim.app.cli", "backtest", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "SYNTHETIC" in proc.stdout and str(out) in proc.stdout
    # no progress bar when stderr is not a terminal: at most plain progress lines
    assert all(line.startswith("backtest: ") for line in proc.stderr.splitlines()), proc.stderr
    assert "\r" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "ok" and s["synthetic_data"] is True
    assert s["arbs"].get("completed", 0) > 10  # real arbitrage windows get traded
    assert s["reconciled_exactly"] is True
    assert s["events"] > 800_000
    arbs = pq.read_table(out / "arbs.parquet").to_pandas()
    done = arbs[arbs.outcome == "completed"]
    assert (done.expected_edge_bps >= 5.0).all()
    fills = pq.read_table(out / "fills.parquet").to_pandas()
    assert set(fills.venue) == {"mexc", "gateio"}


def test_two_identical_runs_write_identical_fills(tmp_path: Path) -> None:
    cfg = load_config(default_config_path())
    tables = []
    for name in ("a", "b"):
        run_backtest(cfg, catalog_path=bundled_sample(), out_dir=tmp_path / name, end=SHORT)
        tables.append(
            {
                f: pq.read_table(tmp_path / name / f)
                for f in ("fills.parquet", "orders.parquet", "arbs.parquet", "equity.parquet")
            }
        )
    assert tables[0]["fills.parquet"].num_rows > 0
    for f in tables[0]:
        assert tables[0][f].equals(tables[1][f]), f


def test_latency_from_a_run_replays_its_latencies(tmp_path: Path) -> None:
    """A backtest's own timings (no compute time, no journal) replayed give it back."""
    args = ["backtest", "--end", SHORT]
    first = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    again = [*args, "--latency-from", str(tmp_path / "a"), "--out", str(tmp_path / "b")]
    second = CliRunner().invoke(main, again)
    assert second.exit_code == 0, second.output
    config = (tmp_path / "b" / "config.yaml").read_text()
    assert "model: session" in config and f"source: {tmp_path / 'a'}" in config
    for f in ("orders.parquet", "fills.parquet", "arbs.parquet"):
        assert pq.read_table(tmp_path / "a" / f).equals(pq.read_table(tmp_path / "b" / f)), f
    assert pq.read_table(tmp_path / "a" / "orders.parquet").num_rows > 0
    # replaying other timings changes the run
    (tmp_path / "c.yaml").write_text(
        (tmp_path / "a" / "config.yaml").read_text().replace("entry_ms: 8.0", "entry_ms: 30.0")
    )
    slow = CliRunner().invoke(
        main, [*args, "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "c")]
    )
    assert slow.exit_code == 0, slow.output
    replayed = CliRunner().invoke(
        main, [*args, "--latency-from", str(tmp_path / "c"), "--out", str(tmp_path / "d")]
    )
    assert replayed.exit_code == 0, replayed.output
    c, d = (pq.read_table(tmp_path / x / "orders.parquet") for x in "cd")
    assert c.column("ts_accepted").equals(d.column("ts_accepted"))
    assert not c.column("ts_accepted").equals(
        pq.read_table(tmp_path / "a" / "orders.parquet").column("ts_accepted")
    )
    bad = CliRunner().invoke(
        main, [*args, "--latency-from", str(tmp_path), "--out", str(tmp_path / "e")]
    )
    assert bad.exit_code == 2 and "not a run directory (no orders.parquet)" in bad.output
    assert not (tmp_path / "e").exists()


def test_window_flags_limit_the_replay(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main,
        [
            "backtest",
            "--out",
            str(tmp_path / "r"),
            "--start",
            "2026-01-05T00:01:00Z",
            "--end",
            SHORT,
        ],
    )
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["window"]["start"].startswith("2026-01-05T00:01:00")
    assert s["window"]["end"] < "2026-01-05T00:04:00.001"
    assert not readers()  # the streams read ahead stopped with the window, mid-file


def readers() -> list[str]:
    """Threads reading a stream ahead that are still alive."""
    return [t.name for t in threading.enumerate() if t.name.startswith("read ")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "yesterday"], "not an ISO-8601 time"),
        (["--start", "2026-01-05T00:05:00Z", "--end", "2026-01-05T00:01:00Z"], "is not after"),
        (["--start", "2027-01-01"], "after the data's end"),
        (["--data", "/nonexistent/catalog"], "does not exist"),
        (["--bogus"], "No such option"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    r = CliRunner().invoke(main, ["backtest", "--out", str(tmp_path / "r"), *args])
    assert r.exit_code == 2
    assert message in r.output
    assert not (tmp_path / "r").exists()


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    base = default_config_path().read_text()
    cases = {
        "unknown.yaml": (
            base.replace("  max_open_orders: 10", "  max_open_order: 10"),
            "unknown field `max_open_order` - at `$.risk`",
        ),
        "params.yaml": (
            base.replace("min_edge_bps: 5.0", "min_edge_bps: lots"),
            "`$.strategy.params.min_edge_bps`",
        ),
        "strategy.yaml": (
            base.replace("name: cross_exchange", "name: nope"),
            "unknown strategy 'nope'",
        ),
        "yaml.yaml": ("venues: [", "not valid YAML"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        r = CliRunner().invoke(
            main, ["backtest", "--config", str(path), "--out", str(tmp_path / f"out-{name}")]
        )
        assert r.exit_code == 2, (name, r.output)
        assert message in r.output, (name, r.output)
        assert str(path) in r.output


def test_existing_run_directory_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    r = CliRunner().invoke(main, ["backtest", "--out", str(out)])
    assert r.exit_code == 2 and "not empty" in r.output
    assert (out / "keep.txt").read_text() == "precious"


def _tiny(tmp_path: Path, venues: tuple[str, ...]) -> Path:
    data = []
    for name in venues:
        v = VenueData(instrument(name))
        v.message(T0, T0 + MS, bids=[(100.0, 1)], asks=[(100.1, 1)], snapshot=True)
        v.message(T0 + 100 * MS, T0 + 101 * MS, bids=[(100.0, 2)])
        data.append(v)
    write_catalog(tmp_path / "cat", data)
    return tmp_path / "cat"


def test_data_without_config_picks_the_pair_or_lists_choices(tmp_path: Path) -> None:
    cat = _tiny(tmp_path / "two", ("x", "y"))
    r = CliRunner().invoke(main, ["backtest", "--data", str(cat), "--out", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    cfg = (tmp_path / "r" / "config.yaml").read_text()
    assert "name: x" in cfg and "name: y" in cfg
    cat3 = _tiny(tmp_path / "three", ("x", "y", "z"))
    r = CliRunner().invoke(main, ["backtest", "--data", str(cat3), "--out", str(tmp_path / "r3")])
    assert r.exit_code == 2
    assert "BTC/USDT: x, y, z" in r.output
    cat1 = _tiny(tmp_path / "one", ("x",))
    r = CliRunner().invoke(main, ["backtest", "--data", str(cat1), "--out", str(tmp_path / "r1")])
    assert r.exit_code == 2 and "no symbol is held by two venues" in r.output


class Exploding(Strategy):
    """Raises on the 5th trade it sees."""

    Params = None

    def __init__(self, params: object) -> None:
        self.seen = 0

    def on_trade(self, ctx: Context, venue: str, trade: Trade) -> None:
        self.seen += 1
        if self.seen == 5:
            raise ZeroDivisionError("boom")


def test_strategy_exception_exits_1_and_keeps_outputs(tmp_path: Path) -> None:
    cfg_text = (
        default_config_path()
        .read_text()
        .replace("name: cross_exchange", "class: test_backtest:Exploding")
    )
    path = tmp_path / "c.yaml"
    path.write_text(cfg_text.split("  params:")[0] + "venues:" + cfg_text.split("\nvenues:")[1])
    r = CliRunner().invoke(main, ["backtest", "--config", str(path), "--out", str(tmp_path / "r")])
    assert r.exit_code == 1, r.output
    assert "boom" in r.output
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["status"] == "error" and "ZeroDivisionError" in s["error"]
    assert (tmp_path / "r" / "fills.parquet").exists()
    assert not readers()  # a failed run ends its read-ahead threads too


def test_progress_bar_when_stderr_is_a_terminal(tmp_path: Path) -> None:
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "arbsim.app.cli",
                "backtest",
                "--out",
                str(tmp_path / "r"),
                "--end",
                SHORT,
            ],
            stdout=subprocess.PIPE,
            stderr=slave,
            timeout=300,
            check=False,
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    err = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "%" in err and "events" in err and "ETA" in err  # the bar was drawn on the terminal


def test_random_models_are_deterministic_by_seed(tmp_path: Path) -> None:
    text = (
        default_config_path()
        .read_text()
        .replace(
            "latency: {entry_ms: 8.0, response_ms: 8.0}",
            "latency: {model: lognormal, entry_ms: 8.0, response_ms: 8.0, sigma: 0.6, seed: 5}\n"
            "    queue: {model: prob_power, power: 2, stochastic: true, seed: 9}",
        )
    )
    assert "lognormal" in text
    path = tmp_path / "c.yaml"
    path.write_text(text)
    cfg = load_config(path)
    fills = []
    for name in ("a", "b"):
        run_backtest(cfg, catalog_path=bundled_sample(), out_dir=tmp_path / name, end=SHORT)
        fills.append(pq.read_table(tmp_path / name / "fills.parquet"))
    assert fills[0].num_rows > 0 and fills[0].equals(fills[1])
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["venues"]["mexc"]["latency"].startswith("lognormal")
    assert s["venues"]["mexc"]["queue"].startswith("prob_power")


class Lingering(Strategy):
    """Leaves a task sleeping past the end of the data and a resting order."""

    Params = None

    def __init__(self, params: object = None) -> None:
        self.stopped = False

    async def on_start(self, ctx: Context) -> None:
        import asyncio
        from decimal import Decimal

        from arbsim.core.model import OrderRequest, Side, TimeInForce

        ctx.spawn(asyncio.sleep(10_000), name="forever")
        await ctx.place_order(
            OrderRequest(
                venue="x",
                symbol="BTC/USDT",
                side=Side.BUY,
                qty=Decimal("0.1"),
                price=Decimal("90.0"),
                tif=TimeInForce.GTC,
                client_order_id="rest1",
            )
        )

    async def on_stop(self, ctx: Context) -> None:
        self.stopped = True


def test_shutdown_cancels_what_is_in_flight_and_records_it(tmp_path: Path) -> None:
    from arbsim.app.config import parse_config

    cat = _tiny(tmp_path, ("x", "y"))
    cfg = parse_config(
        b'venues:\n  - name: x\n    balances: {USDT: "100"}\n'
        b'  - name: y\n    balances: {USDT: "100"}\n'
    )
    s = Lingering()
    out = run_backtest(cfg, catalog_path=cat, out_dir=tmp_path / "r", strategy=s)
    assert s.stopped
    assert out.summary["cancelled_at_shutdown"] == ["forever", "order x:rest1"]
    orders = pq.read_table(tmp_path / "r" / "orders.parquet").to_pylist()
    assert [(o["client_order_id"], o["status"]) for o in orders] == [("rest1", "canceled")]


def test_a_backtest_never_imports_pandas(tmp_path: Path) -> None:
    """pandas costs ~40 MB of resident memory; reading the catalog, replaying and writing
    every output go through Arrow buffers and the column builders, never through it."""
    code = f"""
import sys
from click.testing import CliRunner
from arbsim.app.cli import main
r = CliRunner().invoke(main, ["backtest", "--out", {str(tmp_path / "bt")!r},
                              "--end", "2026-01-05T00:04:00Z"])
assert r.exit_code == 0, r.output
print(sorted(m for m in sys.modules if m.split(".")[0] == "pandas")[:3])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert (tmp_path / "bt" / "fills.parquet").exists()
    assert pq.read_table(tmp_path / "bt" / "fills.parquet").num_rows > 0
