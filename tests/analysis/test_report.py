"""arbsim report: the HTML of a real sample run, checked as text and rendered in Chromium."""

from __future__ import annotations

import asyncio
import base64
import html
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner
from test_analysis import make_run

from arbsim.analysis import bundled_session, load_run
from arbsim.analysis.compare import compare_runs
from arbsim.app.cli import report

CHROMIUM = Path("/usr/bin/chromium")
SECTIONS = (
    "summary",
    "pnl",
    "stats",
    "inventory",
    "transfers",
    "arbs",
    "slippage",
    "fills",
    "latency",
    "risk",
    "against",
)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh backtest of the bundled sample (about two seconds)."""
    out = tmp_path_factory.mktemp("report") / "run"
    subprocess.run(
        [sys.executable, "-m", "arbsim.app.cli", "backtest", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def sample_html(sample_run: Path) -> Path:
    r = CliRunner().invoke(report, [str(sample_run)])
    assert r.exit_code == 0, r.output
    path = sample_run / "report.html"
    assert f"report written: {path}" in r.output
    return path


def test_report_is_self_contained(sample_html: Path) -> None:
    text = sample_html.read_text(encoding="utf-8")
    for key in SECTIONS:
        assert f'id="{key}"' in text or f"id='{key}'" in text, key
    # nothing to fetch: no script, no external stylesheet or image, no URL at all
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", text)
    assert "http://" not in text and "https://" not in text
    srcs = re.findall(r'<img alt="[^"]+" src="data:image/png;base64,([^"]+)">', text)
    assert len(srcs) == text.count("<img")
    assert len(srcs) >= 7  # pnl, inventory, arbs, 2 x slippage, fills, latency
    for s in srcs:
        assert base64.b64decode(s, validate=True).startswith(b"\x89PNG\r\n\x1a\n")
    # tables carry the numbers without the plots
    assert text.count("<table") >= 10
    for label in ("delay_bps", "impact_bps", "fill_ratio", "p99", "reconciled exactly"):
        assert label in text


@pytest.fixture(scope="module")
def session_backtest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The backtest of the kept paper session's recording, with its latencies."""
    run = bundled_session()
    out = tmp_path_factory.mktemp("report") / "bt"
    subprocess.run(
        [sys.executable, "-m", "arbsim.app.cli", "backtest", "--data", str(run / "catalog"),
         "--config", str(run / "config.yaml"), "--latency-from", str(run), "--out", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


def test_backtest_vs_paper_section(session_backtest: Path, tmp_path: Path) -> None:
    run = bundled_session()
    r = CliRunner().invoke(
        report, [str(run), "--against", str(session_backtest), "--out", str(tmp_path / "r.html")]
    )
    assert r.exit_code == 0, r.output
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    section = text[text.index('id="against"') :]
    c = compare_runs(load_run(session_backtest), load_run(run))
    d, tick = c["decisions"], c["fill_prices"]["within_one_tick"]
    assert d["a"] > 10 and d["matched"] > 0 and tick["legs"] > 0
    assert f"<td>{d['a']} / {d['b']} / {d['matched']}</td>" in section
    assert f"{tick['within']} of {tick['legs']}" in section
    assert f"<b>Main cause: {html.escape(c['pnl']['main_cause'])}</b>" in section
    assert section.count("<img") == 1
    assert "place round trip p50" in section and "session(" in section
    # without --against: how to make the comparison, or (a backtest) what to compare with
    r = CliRunner().invoke(report, [str(run), "--out", str(tmp_path / "s.html")])
    assert r.exit_code == 0, r.output
    alone = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert f"--latency-from {run} --out BACKTEST" in alone
    assert not (run / "report.html").exists()
    r = CliRunner().invoke(report, [str(session_backtest), "--out", str(tmp_path / "b.html")])
    assert "report the session with <code>--against</code>" in (tmp_path / "b.html").read_text()
    r = CliRunner().invoke(
        report, [str(run), "--against", str(tmp_path / "none"), "--out", str(tmp_path / "x.html")]
    )
    assert r.exit_code == 2 and f"{tmp_path / 'none'}: run directory does not exist" in r.output


def test_report_out_option_and_errors(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "r.html"
    r = CliRunner().invoke(report, [str(make_run(tmp_path / "run")), "--out", str(out)])
    assert r.exit_code == 2 and "does not exist (create it first)" in r.output
    assert not out.parent.exists()  # a mistyped directory is not created
    out.parent.mkdir()
    r = CliRunner().invoke(report, [str(make_run(tmp_path / "run2")), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    r = CliRunner().invoke(report, [str(tmp_path / "none")])
    assert r.exit_code == 2
    assert f"error: {tmp_path / 'none'}: run directory does not exist" in r.output


def test_report_of_an_empty_run(tmp_path: Path) -> None:
    root = make_run(tmp_path / "run")
    r = CliRunner().invoke(report, [str(root)])
    assert r.exit_code == 0, r.output
    text = (root / "report.html").read_text(encoding="utf-8")
    assert "No arb decisions in this run." in text
    assert "No filled arb legs in this run." in text
    # only the start balances are there to plot
    assert text.count("<img") == 1
    assert 'alt="Balances per venue over time"' in text


# ---------------------------------------------------------------- Chromium
class DevTools:
    """A minimal Chrome DevTools Protocol client over aiohttp's websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        mid = self._id
        await self.ws.send_json({"id": mid, "method": method, "params": params})
        while True:
            msg: dict[str, Any] = await self.ws.receive_json()
            if msg.get("id") == mid:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg["result"]
                return result
            self.events.append(msg)

    async def wait_event(self, method: str) -> dict[str, Any]:
        for e in self.events:
            if e.get("method") == method:
                return e
        while True:
            msg: dict[str, Any] = await self.ws.receive_json()
            self.events.append(msg)
            if msg.get("method") == method:
                return msg


def _devtools_port(profile: Path, proc: subprocess.Popen[bytes]) -> int:
    # Chromium writes the port it picked for --remote-debugging-port=0 into the profile
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if marker.is_file():
            lines = marker.read_text().splitlines()
            if lines and lines[0].isdigit():
                return int(lines[0])
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited with {proc.returncode}")
        time.sleep(0.05)
    raise AssertionError("chromium did not open its DevTools port within 30 s")


async def _render(html: Path, profile: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    log = (profile.parent / "chromium.log").open("wb")
    proc = subprocess.Popen(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        port = _devtools_port(profile, proc)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            page = next(t for t in targets if t["type"] == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                cdp = DevTools(ws)
                for domain in ("Page", "Runtime", "Log"):
                    await cdp.call(f"{domain}.enable")
                await cdp.call("Page.navigate", url=html.as_uri())
                await asyncio.wait_for(cdp.wait_event("Page.loadEventFired"), 30)
                probe = await cdp.call(
                    "Runtime.evaluate",
                    expression=(
                        "({images: document.images.length,"
                        " loaded: Array.from(document.images).filter("
                        "i => i.complete && i.naturalWidth > 0).length,"
                        " tables: document.querySelectorAll('table').length,"
                        " title: document.title,"
                        " sections: Array.from(document.querySelectorAll('h2')).map(h => h.id)})"
                    ),
                    returnByValue=True,
                )
                # let late console messages (after load) arrive
                await asyncio.sleep(0.3)
                await cdp.call("Runtime.evaluate", expression="1")
                return probe["result"]["value"], cdp.events
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.exceptionThrown":
            out.append(str(p["exceptionDetails"]))
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(str(p.get("args")))
        elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
            out.append(f"{p['entry'].get('source')}: {p['entry'].get('text')}")
    return out


async def test_report_renders_in_chromium(sample_html: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (Debian package chromium; .ci/run installs it)")
    page, events = await _render(sample_html, tmp_path / "profile")
    assert page["images"] >= 7
    assert page["loaded"] == page["images"], page
    assert page["tables"] >= 10
    assert page["title"] == f"arbsim report: {sample_html.parent.name}"
    assert page["sections"] == list(SECTIONS)
    assert _errors(events) == []


async def test_chromium_check_sees_broken_images_and_errors(tmp_path: Path) -> None:
    """The render check itself: a broken image and a console error are caught."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (Debian package chromium; .ci/run installs it)")
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><link rel='icon' href='data:,'><title>t</title></head>"
        "<body><img alt='x' src='data:image/png;base64,AAAA'>"
        "<script>console.error('boom')</script></body></html>"
    )
    page, events = await _render(bad, tmp_path / "profile")
    assert page["images"] == 1
    assert page["loaded"] == 0
    assert any("boom" in e for e in _errors(events))
