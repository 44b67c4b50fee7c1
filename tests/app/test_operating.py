"""Operating arbsim: nothing lost and clear errors (interrupted backtests, unwritable or
clashing run directories, bad time windows, a busy simulator port, a wrong venue URL or
secret, interrupted synth, report paths, the README's commands), run ids, progress."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from arbsim.app.backtest import bundled_sample
from arbsim.app.cli import main
from arbsim.core.book import OrderBook
from arbsim.runtime.context import Context
from arbsim.runtime.strategy import Strategy

ROOT = Path(__file__).resolve().parents[2]
SHORT = "2026-01-05T00:02:00Z"  # the sample's first two minutes
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


class Slow(Strategy):
    """Takes its time over every book (so that a signal lands mid-replay) and says when
    the replay has started (``ARBSIM_TEST_STARTED`` names a file to create)."""

    Params = None

    def __init__(self, params: object = None) -> None:
        self.said = False

    def subscriptions(self, venues: Sequence[str]) -> dict[str, list[str]]:
        return {v: ["BTC/USDT"] for v in venues}

    def on_book(self, ctx: Context, venue: str, book: OrderBook) -> None:
        if not self.said:
            self.said = True
            Path(os.environ["ARBSIM_TEST_STARTED"]).write_text("started")
        time.sleep(0.0003)


def slow_config(tmp_path: Path) -> Path:
    text = (ROOT / "arbsim/app/defaults/backtest.yaml").read_text()
    venues = text.split("\nvenues:", 1)[1]
    path = tmp_path / "slow.yaml"
    path.write_text(
        "strategy: {class: 'tests.app.test_operating:Slow'}\nvenues:" + venues.split("\nrisk:")[0]
    )
    return path


def blocked() -> None:
    """What a parent that blocks the stop signals around a spawn leaves a child with: a
    blocked signal is never delivered, whatever handler the child installs."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def start_backtest(
    tmp_path: Path, *, ignore_sigint: bool = False, block: bool = False
) -> tuple[subprocess.Popen[str], Path]:
    """A slow backtest in a subprocess, once its replay has started."""
    out = tmp_path / "run"
    started = tmp_path / "started"
    cmd = [sys.executable, "-m", "arbsim.app.cli", "backtest", "--config"]
    cmd += [str(slow_config(tmp_path)), "--out", str(out)]

    def background() -> None:  # what a shell does to a job started with `&`
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, "ARBSIM_TEST_STARTED": str(started)},
        preexec_fn=blocked if block else background if ignore_sigint else None,
    )
    end = time.monotonic() + 60
    while not started.exists():
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"the backtest did not start: {proc.communicate()}")
        time.sleep(0.05)
    time.sleep(0.3)
    return proc, out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code", "background", "block"),
    [
        (signal.SIGINT, 130, False, False),
        (signal.SIGTERM, 143, False, False),
        (signal.SIGINT, 130, True, False),
        (signal.SIGTERM, 143, False, True),
    ],
    ids=["ctrl-c", "sigterm", "sigint-in-background", "sigterm-started-blocked"],
)
def test_an_interrupted_backtest_writes_the_partial_run(
    tmp_path: Path, sig: signal.Signals, code: int, background: bool, block: bool
) -> None:
    proc, out = start_backtest(tmp_path, ignore_sigint=background, block=block)
    proc.send_signal(sig)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and f"interrupted by {sig.name}" in stderr
    assert "INTERRUPTED" in stdout
    s = json.loads((out / "summary.json").read_text())
    assert s["interrupted"] is True and s["status"] == "interrupted"
    assert s["interrupted_by"] == sig.name
    assert s["window"]["end"] < "2026-01-05T00:19"  # stopped well before the data's end
    for name in ("config.yaml", "orders.parquet", "fills.parquet", "arbs.parquet"):
        assert (out / name).is_file()


def test_an_unwritable_out_is_refused_before_the_replay(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = CliRunner().invoke(main, ["backtest", "--out", str(blocker / "run"), "--end", SHORT])
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "cannot write" in r.output and str(blocker / "run") in r.output
    assert "Traceback" not in r.output


def test_an_end_before_the_data_is_refused(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main, ["backtest", "--out", str(tmp_path / "r"), "--end", "2025-01-01T00:00:00Z"]
    )
    assert r.exit_code == 2, r.output
    assert "--end 2025-01-01T00:00:00Z is not after the data's start 2026-01-05" in r.output
    assert not (tmp_path / "r" / "summary.json").exists()


class _Frozen(dt.datetime):
    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> _Frozen:
        return cls(2026, 1, 5, 12, 0, 0, tzinfo=dt.UTC)


class _FrozenNow:
    """A ``datetime`` module whose now() is always the same second."""

    UTC = dt.UTC
    datetime = _Frozen


def test_two_runs_started_in_the_same_second_get_their_own_run_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    import arbsim.app.cli as cli

    monkeypatch.setattr(cli, "dt", _FrozenNow, raising=False)
    try:
        rundir = importlib.import_module("arbsim.app.rundir")
        monkeypatch.setattr(rundir, "dt", _FrozenNow)
    except ImportError:
        pass
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        r = CliRunner().invoke(main, ["backtest", "--end", SHORT])
        assert r.exit_code == 0, r.output
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 2, runs
    assert all(n.startswith("bt-20260105-120000") for n in runs)
    for n in runs:
        assert (tmp_path / "runs" / n / "summary.json").is_file()


def test_run_ids_of_paper_and_live_are_unique_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from arbsim.app import rundir

    monkeypatch.setattr(rundir, "dt", _FrozenNow)
    made = [rundir.new_run_dir(mode, tmp_path) for mode in ("paper", "paper", "live", "live")]
    assert len({p.name for p in made}) == 4
    assert all(p.is_dir() and p.name.split("-")[1] == "20260105" for p in made)


# ----------------------------------------------------------------- the exchange simulator
def test_exchange_sim_on_a_busy_port_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from exchanges.sim.cli import main as sim_main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = sim_main(["--venue", "mexc", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0] and "in use" in lines[0]


@pytest.fixture
def two_venue_sim() -> Iterator[dict[str, tuple[str, str, str, str]]]:
    """MEXC and Gate.io simulators on their own loop in a thread: name -> (rest, ws,
    api key, api secret)."""
    from exchanges.sim import SimConfig, run_simulator
    from exchanges.sim import VenueConfig as SimVenueConfig

    info: dict[str, tuple[str, str, str, str]] = {}
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    halt: list[asyncio.Event] = []

    async def serve() -> None:
        halt.append(asyncio.Event())
        cfg = SimConfig(
            venues=[SimVenueConfig(venue="mexc"), SimVenueConfig(venue="gateio")], speed=20
        )
        async with run_simulator(cfg) as s:
            for name, v in s.venues.items():
                rest = v.base_url if name == "mexc" else v.api_url
                info[name] = (rest, v.ws_url, v.api_key, v.api_secret)
            ready.set()
            await halt[0].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(20)
    try:
        yield info
    finally:
        loop.call_soon_threadsafe(halt[0].set)
        thread.join(20)
        loop.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


LIVE_CONFIG = "venues:\n  - name: mexc\n  - name: gateio\nrun: {drain_s: 0.05, shutdown_s: 5}\n"


def _live(
    tmp_path: Path,
    urls: dict[str, tuple[str, str]],
    secrets: dict[str, tuple[str, str]],
    mode: str = "live",
) -> tuple[int, str]:
    cfg = tmp_path / "c.yaml"
    if mode == "live":
        cfg.write_text(LIVE_CONFIG)
    else:
        cfg.write_text(
            "venues:\n"
            + "".join(f'  - name: {n}\n    balances: {{BTC: "1", USDT: "1000"}}\n' for n in urls)
            + "run: {drain_s: 0.05}\n"
        )
    env = {}
    for name, (key, secret) in secrets.items():
        env[f"ARBSIM_{name.upper()}_API_KEY"] = key
        env[f"ARBSIM_{name.upper()}_API_SECRET"] = secret
    args = [mode, "--config", str(cfg), "--duration", "1", "--out", str(tmp_path / "run")]
    for name, (rest, ws) in urls.items():
        args += ["--venue-url", f"{name}={rest},{ws}"]
    r = CliRunner().invoke(main, args, env=env)
    return r.exit_code, r.output


@pytest.mark.slow
def test_a_wrong_venue_url_names_the_venue_its_url_and_the_error(
    tmp_path: Path, two_venue_sim: dict[str, tuple[str, str, str, str]]
) -> None:
    port = _free_port()
    bad = f"http://127.0.0.1:{port}/api/v4"
    urls = {
        "mexc": two_venue_sim["mexc"][:2],
        "gateio": (bad, f"ws://127.0.0.1:{port}/ws/v4/"),
    }
    code, out = _live(tmp_path, urls, {}, mode="paper")
    assert code == 1, out
    assert "was not started" not in out
    assert "venue gateio" in out and bad in out and "cannot connect" in out


@pytest.mark.slow
def test_a_wrong_rest_path_names_the_http_status(
    tmp_path: Path, two_venue_sim: dict[str, tuple[str, str, str, str]]
) -> None:
    rest, ws = two_venue_sim["mexc"][:2]
    urls = {"mexc": (rest + "/nothing-here", ws), "gateio": two_venue_sim["gateio"][:2]}
    secrets = {n: two_venue_sim[n][2:] for n in ("mexc", "gateio")}
    code, out = _live(tmp_path, urls, secrets)
    assert code == 1, out
    assert "was not started" not in out
    assert "venue mexc" in out and "HTTP 404" in out and rest + "/nothing-here" in out


@pytest.mark.slow
def test_a_wrong_secret_names_the_venue_and_what_it_answered(
    tmp_path: Path, two_venue_sim: dict[str, tuple[str, str, str, str]]
) -> None:
    urls = {n: two_venue_sim[n][:2] for n in ("mexc", "gateio")}
    secrets = {n: two_venue_sim[n][2:] for n in ("mexc", "gateio")}
    secrets["gateio"] = (secrets["gateio"][0], "not-the-secret")
    code, out = _live(tmp_path, urls, secrets)
    assert code == 1, out
    assert "was not started" not in out
    assert "venue gateio" in out and urls["gateio"][0] in out
    assert re.search(r"auth|signature|key", out, re.I), out
    assert "not-the-secret" not in out


# ----------------------------------------------------------------- data
@pytest.mark.slow
@pytest.mark.parametrize("block", [False, True], ids=["plain", "started-with-signals-blocked"])
def test_an_interrupted_synth_leaves_nothing_that_blocks_a_rerun(
    tmp_path: Path, block: bool
) -> None:
    target = tmp_path / "cat"
    cmd = [sys.executable, "-m", "arbsim.app.cli", "data", "synth", "--catalog", str(target)]
    proc = subprocess.Popen(
        [*cmd, "--seed", "3", "--duration", "7200"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=blocked if block else None,
    )
    end = time.monotonic() + 120
    # the catalog (or the directory it is written in) exists: the writing has begun
    while not ((target / "catalog.json").exists() or list(tmp_path.glob(".cat.partial-*"))):
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not target.exists() or not any(target.iterdir())
    assert not list(tmp_path.glob(".cat.partial-*"))
    r = CliRunner().invoke(
        main, ["data", "synth", "--catalog", str(target), "--seed", "3", "--duration", "10"]
    )
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["data", "info", str(target)])
    assert r.exit_code == 0 and "mexc" in r.output and "gateio" in r.output


def test_data_info_refuses_a_catalog_without_data(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "catalog.json").write_text('{"schema_version": 1, "synthetic": true}')
    r = CliRunner().invoke(main, ["data", "info", str(tmp_path / "cat")])
    assert r.exit_code == 2, r.output
    assert "holds no data" in r.output


def test_synth_replaces_a_catalog_an_interrupted_synth_left(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "catalog.json").write_text('{"schema_version": 1, "synthetic": true}')
    r = CliRunner().invoke(
        main,
        ["data", "synth", "--catalog", str(tmp_path / "cat"), "--seed", "1", "--duration", "6"],
    )
    assert r.exit_code == 0, r.output


def test_data_info_prints_a_table_and_json_on_request() -> None:
    r = CliRunner().invoke(main, ["data", "info", str(bundled_sample())])
    assert r.exit_code == 0, r.output
    assert "[SYNTHETIC]" in r.output
    assert re.search(r"mexc\s+BTC/USDT\s+spot\s+0\.01", r.output), r.output
    assert "2026-01-05 00:00:00" in r.output and "20m00s" in r.output
    assert not re.search(r"\d{19}", r.output)  # no nanosecond integers
    r = CliRunner().invoke(main, ["data", "info", "--json", str(bundled_sample())])
    data = json.loads(r.output)
    mexc = next(s for s in data["streams"] if s["venue"] == "mexc")
    assert mexc["start"].startswith("2026-01-05T00:00:00") and isinstance(mexc["range"][0], int)


def test_report_refuses_an_out_in_a_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "nonexistent" / "dir" / "r.html"
    r = CliRunner().invoke(main, ["report", str(bundled_sample()), "--out", str(target)])
    assert r.exit_code == 2, r.output
    assert "does not exist" in r.output and str(target.parent) in r.output
    assert not (tmp_path / "nonexistent").exists()


# ----------------------------------------------------------------- the README
def _readme_block(after: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(after)
    block = text[text.index("```bash", start) + len("```bash") :]
    return block[: block.index("```")]


@pytest.mark.realdata
@pytest.mark.slow
def test_the_readme_import_example_works_from_the_repository_root(
    realdata: Path, tmp_path: Path
) -> None:
    script = _readme_block("## Real data")
    assert "import binance-hftbacktest" in script
    catalog = tmp_path / "binance"
    script = re.sub(r"(?<![\w/])data/binance", str(catalog), script)
    run = tmp_path / "r"
    script = script.replace("arbsim backtest --data", f"arbsim backtest --out {run} --data")
    proc = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=ROOT,  # as written: from the repository root
        capture_output=True,
        text=True,
        env={**ENV, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert (tmp_path / "r" / "summary.json").is_file()


def test_the_readme_notebook_command_works_in_the_dev_environment() -> None:
    block = _readme_block("## Analysis")
    command = next(line for line in block.splitlines() if line.startswith("jupyter"))
    argv = shlex.split(command.split("#")[0])
    jupyter = Path(sys.executable).parent / "jupyter"
    assert jupyter.exists(), "jupyter is not installed by the dev extra"
    # the subcommand exists (e.g. `jupyter notebook`): its --help answers
    proc = subprocess.run(
        [str(jupyter), argv[1], "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (ROOT / argv[2]).is_dir()
