"""How the application composes a run: no import strings of project modules, plug-ins
through entry points, configs that cannot run code, venue configs validated per mode."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from arbsim.app.cli import main
from arbsim.app.config import parse_config
from arbsim.app.registry import Registry
from arbsim.core.errors import ConfigError
from exchanges.simulated.config import PaperConfig, ReplayConfig

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("arbsim", "exchanges", "strategies")


def _module_named(text: str) -> str | None:
    """The project module a string names (``pkg.mod`` or ``pkg.mod:attr``), if any."""
    module = text.partition(":")[0]
    if not module.startswith(tuple(p + "." for p in PROJECT)) or not module.isascii():
        return None
    if not all(part.isidentifier() for part in module.split(".")):
        return None
    try:
        return module if importlib.util.find_spec(module) is not None else None
    except ModuleNotFoundError:
        return None


def test_no_import_string_of_a_project_module_in_arbsim() -> None:
    found = []
    for path in sorted((ROOT / "arbsim").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                module = _module_named(node.value)
                if module is not None:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert found == []


def test_the_import_string_check_sees_one() -> None:
    assert _module_named("exchanges.simulated.replay:ReplayVenue") == "exchanges.simulated.replay"
    assert _module_named("arbsim.runtime.engine") == "arbsim.runtime.engine"
    assert _module_named("arbsim.schema_version") is None  # a metadata key, not a module


def test_only_the_registry_imports_by_name() -> None:
    users = []
    for path in sorted((ROOT / "arbsim").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
                if name in ("import_module", "__import__"):
                    users.append(str(path.relative_to(ROOT)))
    assert users == ["arbsim/app/registry.py"]


def test_built_in_plugins_are_registered_through_entry_points() -> None:
    reg = Registry.from_entry_points()
    assert {"replay", "paper", "mexc", "gateio"} <= set(reg.venue_kinds)
    assert "cross_exchange" in reg.strategy_names
    assert reg.venue_kind("replay", "t").config is ReplayConfig
    assert reg.venue_kind("paper", "t").config is PaperConfig
    assert reg.rules(None, "mexc").name == "mexc"
    assert reg.rules(None, "someplace").name == "generic"
    with pytest.raises(ConfigError, match=r"unknown rules 'nasdaq' \(known: generic, gateio, mexc"):
        reg.rules("nasdaq", "v")


# ----------------------------------------------------------------------------- configs
BACKTEST = b"""
venues:
  - name: mexc
    balances: {BTC: "1", USDT: "1000"}
  - name: gateio
    balances: {BTC: "1", USDT: "1000"}
"""


def test_a_venue_without_kind_takes_the_mode_default() -> None:
    cfg = parse_config(BACKTEST, "<t>", "backtest")
    assert [type(v) for v in cfg.venues] == [ReplayConfig, ReplayConfig]
    cfg = parse_config(BACKTEST, "<t>", "paper")
    assert [type(v) for v in cfg.venues] == [PaperConfig, PaperConfig]


def test_a_live_venue_refuses_simulation_settings() -> None:
    with pytest.raises(ConfigError, match=r"unknown field `balances` - at `\$.venues\[0\]`"):
        parse_config(BACKTEST, "<t>", "live")
    cfg = parse_config(b"venues: [{name: mexc}, {name: gateio, order_entry: ws}]", "<t>", "live")
    assert [v.name for v in cfg.venues] == ["mexc", "gateio"]


def test_a_venue_kind_out_of_its_mode_is_refused() -> None:
    text = b"venues: [{name: mexc, kind: replay, balances: {BTC: '1'}}]"
    with pytest.raises(ConfigError, match=r"venues\[0\].kind`: a 'replay' venue runs in backtest"):
        parse_config(text, "<t>", "live")


def test_a_paper_config_backtests_its_recording_and_back() -> None:
    paper = b"venues: [{name: mexc, kind: paper, ws_url: 'ws://x', balances: {BTC: '1'}}]"
    (v,) = parse_config(paper, "<t>", "backtest").venues
    assert isinstance(v, ReplayConfig) and v.balances == {"BTC": 1}
    replay = b"venues: [{name: mexc, kind: replay, balances: {BTC: '1'}}]"
    (w,) = parse_config(replay, "<t>", "paper").venues
    assert isinstance(w, PaperConfig) and w.ws_url is None
    with pytest.raises(ConfigError, match=r"unknown venue kind 'binance' \(known: gateio, mexc"):
        parse_config(b"venues: [{name: x, kind: binance}]", "<t>", "live")


def test_an_unregistered_strategy_is_refused_naming_the_known_ones() -> None:
    text = BACKTEST + b"strategy: {name: 'subprocess:Popen', params: {args: [true]}}\n"
    with pytest.raises(ConfigError, match=r"unknown strategy 'subprocess:Popen' \(registered: "):
        parse_config(text, "<t>", "backtest")


def test_a_config_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        BACKTEST.decode()
        + f"strategy: {{class: 'subprocess:Popen', params: {{args: [touch, '{marker}']}}}}\n"
    )
    res = CliRunner().invoke(main, ["backtest", "--config", str(cfg), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2, res.output
    assert "'subprocess:Popen' is not a subclass of arbsim.runtime.strategy.Strategy" in res.output
    assert not marker.exists()
    assert not (tmp_path / "r").exists()


def test_strategy_params_are_checked_by_the_strategy() -> None:
    text = BACKTEST + b"strategy: {name: cross_exchange, params: {min_edge: 3}}\n"
    with pytest.raises(ConfigError, match=r"unknown field `min_edge` - at `\$.strategy.params`"):
        parse_config(text, "<t>", "backtest")


# ----------------------------------------------------------------------------- plug-ins
PLUGIN = '''
"""A third-party venue kind and strategy, installed as its own distribution."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import msgspec

from arbsim.core.model import OrderRequest, Side, TimeInForce
from arbsim.core.ports import Venue, VenueConfig, VenuePlugin, VenueSetup
from arbsim.core.rules import GENERIC_RULES
from arbsim.data.catalog import Catalog
from arbsim.runtime.context import Context
from arbsim.runtime.loop import VirtualTimeLoop
from arbsim.runtime.strategy import Strategy
from exchanges.simulated.fills import FillModel
from exchanges.simulated.replay import ReplayVenue

TINY_RULES = msgspec.structs.replace(GENERIC_RULES, name="tiny", fee_currency="received")


class TinyConfig(VenueConfig, frozen=True, tag="tiny"):
    cash: Decimal


def build(cfg: TinyConfig, setup: VenueSetup) -> Venue:
    assert setup.catalog is not None and isinstance(setup.loop, VirtualTimeLoop)
    fills = FillModel(balances={"USDT": cfg.cash, "BTC": Decimal(0)}, rules=TINY_RULES)
    return ReplayVenue(cfg.name, Catalog(setup.catalog), loop=setup.loop, fills=fills)


def tiny() -> VenuePlugin[TinyConfig]:
    return VenuePlugin(config=TinyConfig, modes=frozenset({"backtest"}), build=build,
                       rules=TINY_RULES)


class BuyOnceParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    venue: str
    qty: Decimal


class BuyOnce(Strategy):
    name = "buy_once"
    Params = BuyOnceParams

    def __init__(self, params: BuyOnceParams) -> None:
        self.p = params
        self.filled = ""

    def subscriptions(self, venues: Sequence[str]) -> dict[str, list[str]]:
        return {self.p.venue: ["BTC/USDT"]}

    async def on_start(self, ctx: Context) -> None:
        book = ctx.book(self.p.venue, "BTC/USDT")
        assert book.best_ask is not None
        inst = ctx.instrument(self.p.venue, "BTC/USDT")
        req = OrderRequest(venue=self.p.venue, symbol="BTC/USDT", side=Side.BUY, qty=self.p.qty,
                           price=inst.round_price(book.best_ask * 1.01, Side.BUY),
                           tif=TimeInForce.IOC)
        order = await ctx.place_order(req)
        self.filled = str(order.filled_qty)

    def summary(self) -> dict[str, object]:
        return {"filled": self.filled}
'''

SETUP = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "tinyplug"
version = "0.1"

[project.entry-points."arbsim.venues"]
tiny = "tinyplug:tiny"

[project.entry-points."arbsim.strategies"]
buy_once = "tinyplug:BuyOnce"
"""


@pytest.mark.slow
def test_a_third_party_venue_and_strategy_plug_in_through_entry_points(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "tinyplug").mkdir(parents=True)
    (src / "tinyplug" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    (src / "pyproject.toml").write_text(SETUP)
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    done = subprocess.run([*pip, "--target", str(site), str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "strategy: {name: buy_once, params: {venue: mexc, qty: '0.01'}}\n"
        "venues:\n"
        "  - {name: mexc, kind: tiny, cash: '5000'}\n"
        "  - {name: gateio, rules: tiny, balances: {USDT: '1000'}}\n"
    )
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    run = subprocess.run(
        [sys.executable, "-m", "arbsim.app.cli", "backtest", "--config", str(cfg), "--out",
         str(out), "--end", "2026-01-05T00:01:00Z"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr + run.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["strategy"] == {"filled": "0.01"}
    assert summary["venues"]["mexc"]["rules"] == "tiny"
    assert summary["venues"]["gateio"]["rules"] == "tiny"  # a replay venue with the plug-in's rules
    assert summary["reconciled_exactly"] is True
    assert summary["fills"] >= 1


def test_the_readme_live_config_is_a_valid_live_config() -> None:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Paper and live trading") :]
    block = section[
        section.index("```yaml") + len("```yaml") : section.index(
            "```", section.index("```yaml") + 7
        )
    ]
    cfg = parse_config(block.encode(), "README.md", "live")
    assert [v.name for v in cfg.venues] == ["mexc", "gateio"]
