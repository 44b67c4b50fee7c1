"""`arbsim config new / validate / show`, range checks naming key and value, paths
relative to the config file, `backtest --data` without a config, the confirmation before
live trading, progress lines and the backtest summary table."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from arbsim.app.backtest import bundled_sample, default_config_path
from arbsim.app.cli import confirm_live, main, real_venues
from arbsim.app.config import load_config, parse_config
from arbsim.core.errors import ConfigError

SHORT = "2026-01-05T00:02:00Z"


def invoke(*args: str, input: str | None = None) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), input=input)
    return r.exit_code, r.output


@pytest.mark.parametrize("mode", ["backtest", "paper", "live"])
def test_config_new_writes_a_commented_config_that_validates(tmp_path: Path, mode: str) -> None:
    code, text = invoke("config", "new", "--mode", mode)
    assert code == 0 and text.startswith("#") and "venues:" in text
    path = tmp_path / f"{mode}.yaml"
    code, out = invoke("config", "new", "--mode", mode, "--out", str(path))
    assert code == 0 and path.read_text() == text, out
    code, out = invoke("config", "validate", str(path), "--mode", mode)
    assert code == 0, out
    assert f"valid {mode} config" in out and "mexc" in out and "gateio" in out
    code, out = invoke("config", "new", "--mode", mode, "--out", str(path))
    assert code == 2 and "exists" in out


def _venues(first: str) -> str:
    return (
        f"venues:\n  - name: mexc\n    {first}\n"
        '  - name: gateio\n    balances: {BTC: "1", USDT: "1000"}\n'
    )


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        (_venues('balances: {BTC: "-1", USDT: "1000"}'), "$.venues[0].balances.BTC", "-1"),
        (_venues('balances: {BTC: "abc", USDT: "1000"}'), "$.venues[0].balances.BTC", "'abc'"),
        (
            _venues('balances: {BTC: "1"}\n    fees: {taker_fee: "-0.001"}'),
            "$.venues[0].fees.taker_fee",
            "-0.001",
        ),
        (
            'strategy: {params: {max_qty: "-0.5"}}\n' + _venues('balances: {BTC: "1"}'),
            "$.strategy.params.max_qty",
            "-0.5",
        ),
        (
            'risk: {max_position: {BTC: "-2"}}\n' + _venues('balances: {BTC: "1"}'),
            "$.risk.max_position.BTC",
            "-2",
        ),
        ("run: {equity_interval_s: 0}\n" + _venues('balances: {BTC: "1"}'), "$.run", "0"),
        (
            _venues('balances: {BTC: "1"}\n    latency: {entry_ms: -3}'),
            "$.venues[0].latency.entry_ms",
            "-3",
        ),
    ],
    ids=["negative-balance", "abc-balance", "taker-fee", "max-qty", "max-position", "run", "lat"],
)
def test_values_are_range_checked_naming_key_and_value(
    tmp_path: Path, text: str, key: str, value: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    for args in (["config", "validate", str(path)], ["backtest", "--config", str(path)]):
        code, out = invoke(*args)
        assert code == 2, out
        assert f"`{key}" in out and f"got {value}" in out, out


def test_config_show_prints_the_effective_config(tmp_path: Path) -> None:
    code, out = invoke("config", "show")
    assert code == 0, out
    shown = out.split("\n", 1)[1]
    # every default is filled in, the strategy's parameters included
    for key in ("max_hedge_attempts: 2", "shutdown_s: 90.0", "queue:", "kind: replay"):
        assert key in shown, key
    again = tmp_path / "shown.yaml"
    again.write_text(shown)
    assert load_config(again) == load_config(default_config_path())
    code, out = invoke("config", "show", "--mode", "paper")
    assert code == 0 and "kind: paper" in out
    code, out = invoke("config", "show", "--mode", "live")
    assert code == 2 and "--config" in out
    code, out = invoke("config", "show", "--config", str(again), "--mode", "live")
    assert code == 2 and "live" in out  # a simulated venue cannot run live


def test_paths_in_a_config_are_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = tmp_path / "configs"
    sub.mkdir()
    shutil.copytree(bundled_sample(), sub / "sample")
    (sub / "lat.csv").write_text("latency_ms\n5\n7\n9\n")
    text = default_config_path().read_text()
    text = text.replace("catalog: null", "catalog: sample")
    text = text.replace(
        "latency: {entry_ms: 8.0, response_ms: 8.0}",
        "latency: {model: empirical, source: lat.csv}",
    )
    (sub / "c.yaml").write_text(text)
    cfg = load_config(sub / "c.yaml")
    assert cfg.data.catalog == str(sub / "sample")
    assert cfg.venues[0].latency.source == str(sub / "lat.csv")  # type: ignore[attr-defined]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "run"
    code, text_out = invoke(
        "backtest", "--config", str(sub / "c.yaml"), "--out", str(out), "--end", SHORT
    )
    assert code == 0, text_out
    s = json.loads((out / "summary.json").read_text())
    assert s["catalog"] == str(sub / "sample")
    assert s["venues"]["mexc"]["latency"].startswith("empirical")


def test_backtest_data_without_config_uses_the_default_config_and_says_so(
    tmp_path: Path,
) -> None:
    r = CliRunner().invoke(
        main, ["backtest", "--data", str(bundled_sample()), "--out", str(tmp_path / "a")]
    )
    assert r.exit_code == 0, r.output
    assert "no --config: the default config's strategy, risk and latency" in r.output
    assert "venues mexc, gateio" in r.output
    code, out = invoke("backtest", "--out", str(tmp_path / "b"))
    assert code == 0, out
    a = json.loads((tmp_path / "a" / "summary.json").read_text())
    b = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert a["pnl"] == b["pnl"] and a["arbs"] == b["arbs"]
    assert a["venues"]["mexc"]["latency"] == b["venues"]["mexc"]["latency"]
    cfg = (tmp_path / "a" / "config.yaml").read_text()
    assert "max_qty: '0.25'" in cfg or 'max_qty: "0.25"' in cfg  # the default's strategy


def test_backtest_data_without_config_maps_other_venue_names(tmp_path: Path) -> None:
    from builders import MS, T0, VenueData, instrument, write_catalog

    def data(name: str) -> VenueData:
        v = VenueData(instrument(name))
        v.message(T0, T0 + MS, [(100.0, 1.0)], [(100.5, 1.0)], snapshot=True)
        for i in range(1, 50):
            v.message(T0 + i * 100 * MS, T0 + i * 100 * MS + MS, [(100.0, 1.0 + i)])
        return v

    write_catalog(tmp_path / "cat", [data("alpha"), data("beta")])
    r = CliRunner().invoke(
        main, ["backtest", "--data", str(tmp_path / "cat"), "--out", str(tmp_path / "r")]
    )
    assert r.exit_code == 0, r.output
    assert "venues alpha (as mexc), beta (as gateio)" in r.output
    cfg = load_config(tmp_path / "r" / "config.yaml")
    assert [v.name for v in cfg.venues] == ["alpha", "beta"]
    assert cfg.venues[1].latency.entry_ms == 15.0  # type: ignore[attr-defined]
    assert cfg.risk == load_config(default_config_path()).risk


LIVE = b"venues:\n  - name: mexc\n  - name: gateio\n"


def test_live_asks_before_trading_real_money_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = parse_config(LIVE, mode="live")
    assert real_venues(cfg) == ["mexc", "gateio"]
    confirm_live(cfg, yes=True, interactive=True)  # --yes: no question
    confirm_live(cfg, yes=False, interactive=False)  # nobody to ask (scripts, CI)
    local = parse_config(
        LIVE.replace(
            b"- name: mexc\n",
            b"- name: mexc\n    rest_url: http://127.0.0.1:1\n    ws_url: ws://127.0.0.1:1/ws\n",
        ).replace(
            b"- name: gateio\n",
            b"- name: gateio\n    rest_url: http://127.0.0.1:2\n    ws_url: ws://127.0.0.1:2/w\n",
        ),
        mode="live",
    )
    assert real_venues(local) == []
    confirm_live(local, yes=False, interactive=True)  # the simulator: no question
    path = tmp_path / "live.yaml"
    path.write_bytes(LIVE)
    monkeypatch.setattr("arbsim.app.cli._stdin_is_terminal", lambda: True)
    r = CliRunner().invoke(
        main, ["live", "--config", str(path), "--out", str(tmp_path / "r")], input="no\n"
    )
    assert r.exit_code == 2, r.output
    assert "REAL money on mexc, gateio" in r.output and "not confirmed" in r.output
    assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match="not confirmed"):
        monkeypatch.setattr("click.prompt", lambda *a, **k: "y")
        confirm_live(cfg, yes=False, interactive=True)


LINES = ("--progress", "lines", "--progress-every", "0")


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main,
        [*LINES, "backtest", "--out", str(tmp_path / "r"), "--end", SHORT],
    )
    assert r.exit_code == 0, r.output
    lines = [x for x in r.output.splitlines() if x.startswith("backtest: ")]
    assert lines, r.output
    assert re.match(
        r"backtest: \d+\.\d% \([\d,]+ / [\d,]+ events\) [\d,.]+ events/s, ETA \d+:\d\d:\d\d",
        lines[-1],
    ), lines[-1]
    r = CliRunner().invoke(
        main,
        [*LINES, "data", "synth", "--catalog", str(tmp_path / "c"), "--seed", "2", "--duration=6"],
    )
    assert r.exit_code == 0 and re.search(r"synth .*: \d+\.\d% \(\d+ / 7 steps\)", r.output)
    r = CliRunner().invoke(
        main, ["--progress", "lines", "--progress-every", "0", "report", str(tmp_path / "r")]
    )
    assert r.exit_code == 0 and re.search(r"report .*: 100\.0% \((\d+) / \1 sections\)", r.output)
    r = CliRunner().invoke(
        main, ["--progress", "off", "backtest", "--out", str(tmp_path / "q"), "--end", SHORT]
    )
    assert r.exit_code == 0 and "events/s, ETA" not in r.output


def test_the_summary_is_a_table_naming_config_data_and_outcomes(tmp_path: Path) -> None:
    code, out = invoke("backtest", "--out", str(tmp_path / "r"), "--end", SHORT)
    assert code == 0, out
    assert re.search(r"^  config\s+.*defaults/backtest\.yaml$", out, re.M)
    assert re.search(r"^  data\s+.*data/sample$", out, re.M)
    assert re.search(r"^    outcome\s+count\s+meaning$", out, re.M)
    assert re.search(r"^    completed\s+\d+\s+both legs filled in full$", out, re.M)
    assert re.search(r"^  latency \(ms\)\s+p50\s+p90\s+p99$", out, re.M)
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["interrupted"] is False and s["config"].endswith("backtest.yaml")


def test_help_texts_show_defaults() -> None:
    for args, needle in (
        (["backtest", "--help"], "[default: runs/bt-"),
        (["--help"], "[default: auto]"),
        (["data", "synth", "--help"], "[default: 1200.0]"),
        (["report", "--help"], "[default: RUN_DIR/report.html]"),
        (["config", "show", "--help"], "[default: backtest]"),
        (["paper", "--help"], "[default: the real venue's]"),
    ):
        code, out = invoke(*args)
        assert code == 0 and needle in " ".join(out.split()), (args, out)
