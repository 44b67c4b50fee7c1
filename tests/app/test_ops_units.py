"""The pieces of operating a session on their own: redaction, the logging set-up, alert
thresholds and their repeat limit, the event hub, the CLI's options and the config's
``ops`` / ``alerts`` sections, and ``arbsim record``'s metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from arbsim.app import logs
from arbsim.app.alerts import AlertConfig, Alerts
from arbsim.app.cli import main
from arbsim.app.logs import JsonFormatter, RedactingFilter, TextFormatter, run_log, setup_logging
from arbsim.app.realtime import VenueUrls
from arbsim.app.record import record_async
from arbsim.app.telemetry import EventHub
from arbsim.core.redact import redact, register_secret
from exchanges.live.credentials import Credentials
from exchanges.sim import SimConfig, run_simulator
from exchanges.sim import VenueConfig as SimVenueConfig


def invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.output


@pytest.fixture
def fresh_logging() -> Iterator[None]:
    """Leave the root logger as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in root.handlers:
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


# ---------------------------------------------------------------------- redaction
def test_credentials_and_named_secrets_are_redacted() -> None:
    creds = Credentials("k3y-for-redaction-test", "s3cret-for-redaction-test")
    assert repr(creds) == "Credentials(api_key=***, api_secret=***)"
    text = (
        "GET /api/v3/order?symbol=BTCUSDT&timestamp=1&signature=abcdef0123456789 "
        "key k3y-for-redaction-test secret s3cret-for-redaction-test "
        'wss://x/ws?listenKey=LK0123456789abc {"SIGN": "fffeee111", "api_key": "zz-top-999"}'
    )
    shown = redact(text)
    for secret in ("abcdef0123456789", "k3y-for-redaction-test", "s3cret-for-redaction-test",
                   "LK0123456789abc", "fffeee111", "zz-top-999"):  # fmt: skip
        assert secret not in shown, secret
    assert "symbol=BTCUSDT&timestamp=1&signature=***" in shown
    # ordinary text is left alone; short values are not registered (they would mask words)
    register_secret("abc")
    assert redact("abc order filled, sort key: price") == "abc order filled, sort key: price"


def test_every_log_record_is_redacted_in_json_and_text(tmp_path: Path, fresh_logging: None) -> None:
    register_secret("very-secret-value-123")
    log_file = tmp_path / "x.log"
    setup_logging("debug", "json", log_file)
    log = logging.getLogger("arbsim.test")
    log.info(
        "connecting with %s", "very-secret-value-123",
        extra={"venue": "mexc", "symbol": "BTC/USDT", "event": "t", "url": "a?signature=beef1234"},
    )  # fmt: skip
    try:
        raise RuntimeError("failed with very-secret-value-123")
    except RuntimeError:
        log.exception("boom")
    with run_log(tmp_path / "run" / "log.jsonl", "run-7"):
        log.debug("in the run", extra={"venue": "gateio"})
    log.info("after the run")
    text = log_file.read_text()
    assert "very-secret-value-123" not in text and "beef1234" not in text
    records = [json.loads(line) for line in text.splitlines()]
    first = records[0]
    assert first["level"] == "INFO" and first["component"] == "arbsim.test"
    assert first["venue"] == "mexc" and first["symbol"] == "BTC/USDT" and first["event"] == "t"
    assert first["message"] == "connecting with ***" and first["url"] == "a?signature=***"
    assert first["time"].endswith("Z") and first["run_id"] == ""
    assert "exception" in records[1] and "***" in records[1]["exception"]
    assert records[2]["run_id"] == "run-7" and records[3]["run_id"] == ""
    in_run = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["message"] for r in in_run] == ["in the run"]
    # text: one line, venue and symbol shown, secrets masked
    args = ("very-secret-value-123",)
    record = logging.LogRecord("arbsim.x", logging.WARNING, __file__, 1, "key %s", args, None)
    record.venue, record.symbol = "mexc", "BTC/USDT"
    RedactingFilter().filter(record)
    line = TextFormatter().format(record)
    assert line.endswith("WARNING arbsim.x [mexc BTC/USDT]: key ***"), line
    assert json.loads(JsonFormatter().format(record))["message"] == "key ***"


def test_run_log_records_info_even_when_the_terminal_shows_warnings(
    tmp_path: Path, fresh_logging: None
) -> None:
    setup_logging("warning", "text", tmp_path / "terminal.log")
    with run_log(tmp_path / "log.jsonl", "r"):
        logging.getLogger("arbsim.orders").info("order x: filled", extra={"event": "order"})
    assert "order x" not in (tmp_path / "terminal.log").read_text()
    (rec,) = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert rec["event"] == "order" and rec["run_id"] == "r"


def _blocked_stderr(monkeypatch: pytest.MonkeyPatch) -> tuple[int, Any]:
    """A stderr that is a pipe nobody reads: it takes 64 KiB, then every write waits."""
    r, w = os.pipe()
    stream = os.fdopen(w, "w", buffering=1)
    monkeypatch.setattr(sys, "stderr", stream)
    return r, stream


def _unblock(r: int, stream: Any) -> None:
    """Read the pipe until the log's thread has written everything it held, then close."""
    got = [0]

    def read() -> None:
        while chunk := os.read(r, 1 << 16):
            got[0] += len(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen = -1
    while seen != got[0]:  # quiet for a while: the queue is empty
        seen = got[0]
        time.sleep(0.5)
    with contextlib.suppress(OSError):
        stream.close()
    reader.join(5)
    os.close(r)


def _session(path: Path, n: int) -> threading.Event:
    done = threading.Event()
    log = logging.getLogger("arbsim.orders")

    def run() -> None:
        with run_log(path, "r1"):
            for i in range(n):
                log.info("order %d: filled", i, extra={"event": "order"})
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done


def test_a_session_never_waits_for_a_stderr_nobody_reads(
    tmp_path: Path, fresh_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    r, stream = _blocked_stderr(monkeypatch)
    try:
        setup_logging("info", "text")
        n = 5_000  # ~150 KB of text: far more than the pipe takes
        done = _session(tmp_path / "log.jsonl", n)
        assert done.wait(30), "the session waited for a full stderr pipe"
        lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
        # the run's own log has its own thread: it got every record, in order
        assert [x["message"] for x in lines] == [f"order {i}: filled" for i in range(n)]
        assert {x["run_id"] for x in lines} == {"r1"}
    finally:
        _unblock(r, stream)
        setup_logging("info", "text")


def test_records_a_log_cannot_keep_are_dropped_and_counted(
    tmp_path: Path, fresh_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # queues of 50 records: a loop logging as fast as it can outruns the writers
    monkeypatch.setattr(logs, "QUEUE_RECORDS", 50)
    try:
        setup_logging("info", "text", tmp_path / "terminal.log")
        n = 20_000
        done = _session(tmp_path / "log.jsonl", n)
        assert done.wait(60)
        total_dropped = 0
        for path in (tmp_path / "log.jsonl", tmp_path / "terminal.log"):
            text = path.read_text()
            kept = text.count("order ")
            dropped = sum(int(d) for d in re.findall(r"(\d+) log records were dropped", text))
            assert kept + dropped == n and kept > 0, (path, kept, dropped)
            total_dropped += dropped
        assert total_dropped > 0
    finally:
        setup_logging("info", "text")


# ---------------------------------------------------------------------- alerts
class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_alert_thresholds_and_repeat_limit(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    sent: list[dict[str, Any]] = []
    alerts = Alerts(AlertConfig(repeat_s=60, min_requests=10), emit=sent.append, clock=clock)
    caplog.set_level(logging.INFO, "arbsim.alerts")
    ms = 1_000_000
    alerts.request("fetch_balances", "mexc", 40 * ms)  # under 50 ms
    alerts.request("place", "mexc", 90 * ms)  # under 100 ms
    alerts.request("tick_to_trade", "mexc", 900 * ms)  # not a request
    assert sent == []
    alerts.request("fetch_balances", "mexc", 51 * ms)
    alerts.request("place", "gateio", 101 * ms)
    assert [(a["alert"], a["venue"], a["level"]) for a in sent] == [
        ("balance_latency", "mexc", "WARNING"),
        ("request_latency", "gateio", "WARNING"),
    ]
    # the same alert again within repeat_s is held back, and counted when it next goes out
    for _ in range(3):
        alerts.request("fetch_balances", "mexc", 80 * ms)
    assert len(sent) == 2
    alerts.request("fetch_balances", "gateio", 80 * ms)  # another venue: its own alert
    assert len(sent) == 3
    clock.t += 61
    alerts.request("fetch_balances", "mexc", 80 * ms)
    assert sent[-1]["alert"] == "balance_latency" and sent[-1]["suppressed"] == 3
    assert alerts.counts["balance_latency"] == 6
    # error rate: 1 failure in 9 requests is too few requests to judge; in 10 it is 10% > 1%
    for _ in range(4):
        alerts.request("fetch_order", "okx", 1 * ms)
    alerts.failure("okx", RuntimeError("HTTP 502"))
    assert not any(a["alert"] == "error_rate" for a in sent)
    for _ in range(6):
        alerts.request("fetch_order", "okx", 1 * ms)
    rate = [a for a in sent if a["alert"] == "error_rate"]
    assert len(rate) == 1 and rate[0]["level"] == "ERROR" and rate[0]["requests"] == 10
    # ... and the failures leave the window
    clock.t += 120
    for _ in range(20):
        alerts.request("fetch_order", "okx", 1 * ms)
    assert len([a for a in sent if a["alert"] == "error_rate"]) == 1
    # the breaker always alerts, at ERROR
    alerts.breaker(5, "daily loss 3.00 > 2")
    assert sent[-1]["alert"] == "circuit_breaker" and sent[-1]["level"] == "ERROR"
    levels = {r.getMessage().split(":")[0]: r.levelname for r in caplog.records}
    assert levels["circuit breaker tripped"] == "ERROR"
    assert any(r.levelname == "WARNING" and "balance request took" in r.getMessage()
               for r in caplog.records)  # fmt: skip


# ---------------------------------------------------------------------- events
async def test_event_hub_keeps_resumes_filters_and_cuts_off_slow_followers() -> None:
    hub = EventHub("r", keep=5, queue_size=3)
    for i in range(7):
        hub.publish("fill" if i % 2 else "order", n=i)
    kept = hub.subscribe(since=0)  # the last 5 kept: seq 3..7, then cut off (queue 3)
    assert kept.overflowed
    late = hub.subscribe(since=5)
    got = [await late.next() for _ in range(2)]
    assert [g[0] for g in got if g is not None] == [6, 7]
    fills = hub.subscribe(since=7, types=["fill"])
    hub.publish("order", n=8)
    hub.publish("fill", n=9)
    item = await fills.next()
    assert item is not None and item[:2] == (9, "fill")
    assert json.loads(item[2]) == {"seq": 9, "type": "fill", "ts": json.loads(item[2])["ts"],
                                   "run_id": "r", "n": 9}  # fmt: skip
    hub.close()
    assert await fills.next() is None
    assert await hub.subscribe().next() is not None  # a late follower still gets the kept ones


# ---------------------------------------------------------------------- CLI and config
def test_help_texts_show_the_new_options_and_defaults() -> None:
    for args, needles in (
        (["--help"], ["--log-level", "[default: info]", "--log-format", "[default: text]",
                      "--log-file", "[default: stderr]"]),
        (["paper", "--help"], ["--metrics-port", "[default: the config's ops.port, 0]"]),
        (["live", "--help"], ["--metrics-port", "ephemeral"]),
        (["record", "--help"], ["--metrics-port", "[default: 0]", "[default: 10.0;"]),
    ):  # fmt: skip
        code, out = invoke(*args)
        flat = " ".join(out.split())
        assert code == 0
        for needle in needles:
            assert needle in flat, (args, needle, out)


def test_bad_log_and_port_options_exit_2(tmp_path: Path) -> None:
    code, out = invoke("--log-level", "loud", "config", "show")
    assert code == 2 and "--log-level" in out
    code, out = invoke("--log-format", "xml", "config", "show")
    assert code == 2 and "--log-format" in out
    code, out = invoke("--log-file", str(tmp_path / "nodir" / "sub"), "config", "show")
    assert code == 0  # its directory is made
    (tmp_path / "ro").mkdir()
    code, out = invoke("--log-file", str(tmp_path / "ro"), "config", "show")
    assert code == 2 and "--log-file" in out
    code, out = invoke("paper", "--metrics-port", "http", "--duration", "1")
    assert code == 2 and "--metrics-port" in out and "not a port number" in out
    code, out = invoke("record", "--venue", "mexc", "--symbol", "BTC/USDT", "--catalog",
                       str(tmp_path / "c"), "--metrics-port", "70000")  # fmt: skip
    assert code == 2 and "70000 is not a port number" in out


def _venues() -> str:
    return 'venues:\n  - name: mexc\n    balances: {BTC: "1"}\n'


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("ops: {port: 70000}\n", "$.ops.port", "70000"),
        ("ops: {port: -1}\n", "$.ops.port", "-1"),
        ("ops: {host: ' '}\n", "$.ops.host", "' '"),
        ("ops: {max_clock_skew_ms: 0}\n", "$.ops.max_clock_skew_ms", "0"),
        ("alerts: {error_rate: 2}\n", "$.alerts.error_rate", "2"),
        ("alerts: {balance_latency_ms: -5}\n", "$.alerts.balance_latency_ms", "-5"),
        ("alerts: {webhook_url: 'ftp://x/hook'}\n", "$.alerts.webhook_url", "'ftp://x/hook'"),
        ("run: {heartbeat_s: -1}\n", "$.run.heartbeat_s", "-1"),
    ],
    ids=["port-hi", "port-neg", "host", "skew", "error-rate", "latency", "webhook", "beat"],
)
def test_ops_and_alerts_config_is_checked_naming_key_and_value(
    tmp_path: Path, text: str, key: str, value: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(_venues() + text)
    code, out = invoke("config", "validate", str(path), "--mode", "paper")
    assert code == 2, out
    assert f"`{key}`" in out and f"got {value}" in out, out


def test_a_busy_metrics_port_exits_2_and_leaves_no_run(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(_venues())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = tmp_path / "run"
        code, text = invoke(
            "paper", "--config", str(cfg), "--out", str(out), "--duration", "1",
            "--metrics-port", str(port), "--venue-url", "mexc=http://127.0.0.1:9,ws://127.0.0.1:9/ws",
        )  # fmt: skip
    assert code == 2, text
    assert f"cannot listen on 127.0.0.1:{port}" in text and "address already in use" in text
    assert not out.exists()


def test_config_show_lists_the_ops_and_alerts_defaults() -> None:
    code, out = invoke("config", "show", "--mode", "paper")
    assert code == 0
    for key in ("heartbeat_s: 10.0", "ops:", "host: 127.0.0.1", "port: 0",
                "probe_interval_s: 5.0", "alerts:", "balance_latency_ms: 50.0",
                "request_latency_ms: 100.0", "error_rate: 0.01", "webhook_url: null"):  # fmt: skip
        assert key in out, key


# ---------------------------------------------------------------------- record
async def test_record_serves_metrics_and_health_and_logs_to_the_catalog(tmp_path: Path) -> None:
    listening: list[str] = []
    scraped: dict[str, Any] = {}
    stop = asyncio.Event()
    async with run_simulator(SimConfig(venues=[SimVenueConfig(venue="mexc")], speed=1)) as sim:
        v = sim.venues["mexc"]

        async def scrape() -> None:
            while not listening:
                await asyncio.sleep(0.02)
            async with aiohttp.ClientSession() as s:
                for _ in range(100):
                    async with s.get(listening[0] + "/health") as resp:
                        scraped["health"] = (resp.status, await resp.json())
                    if resp.status == 200:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.5)
                async with s.get(listening[0] + "/metrics") as resp:
                    scraped["metrics"] = await resp.text()
            stop.set()

        task = asyncio.create_task(scrape())
        result = await record_async(
            ["mexc"], ["BTC/USDT"], tmp_path / "cat", duration_s=20.0,
            urls={"mexc": VenueUrls(v.base_url, v.ws_url)}, stop_event=stop, heartbeat_s=0.5,
            say=lambda line: None, on_ops=listening.append,
        )  # fmt: skip
        await task
    status, health = scraped["health"]
    assert status == 200 and health["venues"]["mexc"]["market_stream"] is True
    assert health["mode"] == "record"
    samples = {
        s.name: s.value
        for f in text_string_to_metric_families(scraped["metrics"])
        for s in f.samples
        if s.labels.get("venue") == "mexc" and s.labels.get("kind") in (None, "book")
    }
    assert samples["arbsim_messages_total"] > 10
    assert samples["arbsim_messages_total"] <= result.book_messages["mexc BTC/USDT"]
    assert samples["arbsim_book_age_seconds"] < 5 and "arbsim_reconnects_total" in samples
    (log_file,) = (tmp_path / "cat" / "logs").glob("record-*.jsonl")
    records = [json.loads(x) for x in log_file.read_text().splitlines()]
    assert any(r.get("event") == "heartbeat" and r["rates"]["mexc"] > 0 for r in records)
    assert all(r["run_id"] == log_file.stem for r in records)


def test_a_backtest_loads_no_operations_code(tmp_path: Path) -> None:
    """The backtest path stays free of the server, the HTTP client and the metrics."""
    code = f"""
import sys
from click.testing import CliRunner
from arbsim.app.cli import main
r = CliRunner().invoke(main, ["backtest", "--out", {str(tmp_path / "bt")!r},
                              "--end", "2026-01-05T00:01:00Z"])
assert r.exit_code == 0, r.output
loaded = [m for m in sys.modules if m.split(".")[0] in ("aiohttp", "prometheus_client")
          or m in ("arbsim.app.ops", "arbsim.app.telemetry", "arbsim.app.alerts")]
print(loaded)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['arbsim.app.alerts']"  # the config's alerts section
