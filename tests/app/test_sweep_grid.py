"""The grid file of `arbsim sweep`: cells, exact ranges, paths, validation before work.

No cluster here: these build and validate cells only (tests/app/test_sweep.py runs them).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from arbsim.app.backtest import default_config_path
from arbsim.app.config import parse_config
from arbsim.app.registry import Registry
from arbsim.app.sweep_grid import Objective, ObjectiveSpec, load_sweep
from arbsim.core.errors import ConfigError

BASE = default_config_path()
MIN1 = "{start: 2026-01-05T00:00:00Z, end: 2026-01-05T00:01:00Z}"
MIN2 = "{start: 2026-01-05T00:01:00Z, end: 2026-01-05T00:02:00Z}"


def _grid(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


def test_grid_is_the_cartesian_product_with_exact_decimal_ranges(tmp_path: Path) -> None:
    grid = _grid(
        tmp_path,
        f"""
params:
  strategy.params.min_edge_bps: {{from: 0.1, to: 0.3, step: 0.1}}
  strategy.params.max_qty: {{from: "0.05", to: "0.25", step: "0.1"}}
  venues[gateio].latency.entry_ms: [10, 40]
windows: [{MIN1}, {MIN2}]
""",
    )
    sweep = load_sweep(BASE, grid)
    cells = sweep.cells()
    assert len(cells) == 3 * 3 * 2 * 2
    edges = sorted({c.params["strategy.params.min_edge_bps"] for c in cells})
    assert edges == [0.1, 0.2, 0.3]  # not 0.30000000000000004
    assert sorted({c.params["strategy.params.max_qty"] for c in cells}) == ["0.05", "0.15", "0.25"]
    assert {(c.start, c.end) for c in cells} == {
        ("2026-01-05T00:00:00+00:00", "2026-01-05T00:01:00+00:00"),
        ("2026-01-05T00:01:00+00:00", "2026-01-05T00:02:00+00:00"),
    }
    assert len({c.key for c in cells}) == len(cells)
    # each cell's config holds its values, its window and the catalog; venues by name
    cell = next(
        c
        for c in cells
        if c.params["venues[gateio].latency.entry_ms"] == 40
        and c.params["strategy.params.max_qty"] == "0.15"
    )
    cfg = parse_config(cell.config_text)
    assert cfg.strategy.params["max_qty"] == "0.15"
    by_name = {v.name: v for v in cfg.venues}
    assert by_name["gateio"].latency.entry_ms == 40  # type: ignore[attr-defined]
    assert by_name["mexc"].latency.entry_ms == 8  # type: ignore[attr-defined]
    assert cfg.data.catalog == cell.catalog and Path(cell.catalog).is_dir()
    assert cfg.data.start == cell.start


def test_random_mode_draws_the_same_cells_for_the_same_seed(tmp_path: Path) -> None:
    text = """
mode: random
samples: 6
seed: 3
params:
  strategy.params.min_edge_bps: {distribution: uniform, low: 2, high: 9}
  strategy.params.max_levels: {distribution: int, low: 5, high: 30}
  strategy.params.max_qty: ["0.1", "0.2"]
"""
    a = load_sweep(BASE, _grid(tmp_path, text)).cells()
    b = load_sweep(BASE, _grid(tmp_path, text)).cells()
    assert [c.key for c in a] == [c.key for c in b] and len(a) == 6
    for c in a:
        assert 2 <= c.params["strategy.params.min_edge_bps"] <= 9
        assert isinstance(c.params["strategy.params.max_levels"], int)
    other = load_sweep(BASE, _grid(tmp_path, text.replace("seed: 3", "seed: 4"))).cells()
    assert [c.key for c in other] != [c.key for c in a]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        # a list item that is not there: the entry and the names there are
        (
            "venues[okx].latency.entry_ms: [5]",
            ["`params.venues[okx].latency.entry_ms`", "'okx'", "mexc, gateio"],
        ),
        # a bad value in the second cell: the entry's value and the config key
        (
            "strategy.params.max_qty: ['0.1', '-1']",
            ['strategy.params.max_qty="-1"', "got -1 - at `$.strategy.params.max_qty`"],
        ),
        # a key the config does not have
        ("risk.max_positon.BTC: ['0.1']", ["risk.max_positon.BTC", "`max_positon` - at `$.risk`"]),
        ("venues[mexc].latency.entry_ms: [-3]", ["entry_ms=-3", "`$.venues[0].latency"]),
        ("strategy..min_edge_bps: [1]", ["'strategy..min_edge_bps' is not a config path"]),
        ("strategy.params.max_qty: {from: 1, to: 0, step: 1}", ["below `from`"]),
        ("strategy.params.max_qty: {distribution: uniform, low: 1, high: 2}", ["grid mode"]),
        ("strategy.params.max_qty: []", ["empty"]),
    ],
)
def test_a_bad_entry_fails_before_any_work_naming_it(
    tmp_path: Path, params: str, named: list[str]
) -> None:
    grid = _grid(tmp_path, f"params:\n  {params}\n")
    with pytest.raises(ConfigError) as e:
        load_sweep(BASE, grid).cells()
    for text in named:
        assert text in str(e.value), str(e.value)
    assert str(grid) in str(e.value)


def test_windows_outside_the_data_and_bad_objectives_are_refused(tmp_path: Path) -> None:
    late = "{start: 2026-02-01T00:00:00Z, end: 2026-02-01T00:01:00Z}"
    grid = _grid(
        tmp_path, f"params: {{strategy.params.max_qty: ['0.1']}}\nwindows: [{MIN1}, {late}]"
    )
    with pytest.raises(ConfigError, match=r"`windows\[1\]`.*outside the data"):
        load_sweep(BASE, grid)
    grid = _grid(
        tmp_path,
        "params: {strategy.params.max_qty: ['0.1']}\nobjective: {expression: net_pnl - risk}",
    )
    with pytest.raises(ConfigError, match=r"objective.expression.*unknown metric 'risk'"):
        load_sweep(BASE, grid)
    grid = _grid(tmp_path, "mode: optuna\nparams: {strategy.params.max_qty: ['0.1']}")
    with pytest.raises(ConfigError, match="`trials`"):
        load_sweep(BASE, grid)


def test_objective_is_arithmetic_over_metrics_only() -> None:
    objective = Objective.parse(
        ObjectiveSpec(expression="net_pnl - 0.5 * max_drawdown + min(fees, 1) / 2"), "x"
    )
    assert objective({"net_pnl": 10.0, "max_drawdown": 4.0, "fees": 3.0}) == 8.5
    assert math.isnan(objective({"net_pnl": 10.0}))
    assert objective.better(2.0, 1.0)
    for bad in ("__import__('os')", "net_pnl.real", "[net_pnl]", "net_pnl if fees else 1"):
        with pytest.raises(ConfigError):
            Objective.parse(ObjectiveSpec(expression=bad), "x")


def test_the_registry_loads_plugins_once_dask_installed_importlib_metadata() -> None:
    # dask imports the importlib_metadata backport, whose finder then answers
    # importlib.metadata.entry_points() with its own EntryPoint objects
    pytest.importorskip("importlib_metadata")
    import importlib_metadata  # noqa: F401

    reg = Registry.from_entry_points()
    assert reg.venue_kind("replay", "x").modes
    assert reg.strategy("cross_exchange", None, "x").name == "cross_exchange"
    cfg = parse_config(default_config_path().read_bytes(), registry=reg)
    assert [v.name for v in cfg.venues] == ["mexc", "gateio"]


def test_the_readme_grid_example_validates(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## `arbsim sweep`") :]
    start = section.index("```yaml\n") + len("```yaml\n")
    example = section[start : section.index("```", start)]
    cells = load_sweep(BASE, _grid(tmp_path, example)).cells()
    assert len(cells) == 3 * 3 * 3 * 2 * 2
