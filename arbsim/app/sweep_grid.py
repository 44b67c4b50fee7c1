"""The grid file of ``arbsim sweep``: which parameters vary, over what, on which data.

A grid file names config keys by their path in the run configuration
(``strategy.params.min_edge_bps``; ``venues[mexc].latency.entry_ms``, a list item chosen
by its ``name`` or its index; ``risk.max_position.BTC``) and gives each a list of values,
a range ``{from, to, step}`` (exact decimals: ``0.1`` steps never drift to
``0.30000000000000004``) or a distribution (``{distribution: uniform | loguniform | int,
low, high[, step]}``, for the ``random`` and ``optuna`` modes). ``windows`` (time ranges
of the catalog), ``catalogs`` and ``seeds`` (every venue's latency seed) multiply each
parameter set into cells: one backtest each.

Every cell's config is built from the base config's YAML and validated by the normal
config validation (:func:`arbsim.app.config.parse_config`) before any work starts, so a
bad path or value is refused naming the grid entry and the config key. This module runs
no backtest and imports neither dask nor optuna.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import hashlib
import itertools
import json
import math
import operator
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import msgspec

from arbsim.app.backtest import bundled_sample, iso, parse_time
from arbsim.app.config import dump_config, parse_config, resolve_paths
from arbsim.app.registry import Registry
from arbsim.app.sweep_cell import METRICS
from arbsim.core.errors import ArbsimError, ConfigError
from arbsim.data.catalog import Catalog, catalog_location, is_url

SweepMode = Literal["grid", "random", "optuna"]
Direction = Literal["maximize", "minimize"]

#: more cells than this in one sweep is almost certainly a mistake in the grid file
MAX_CELLS = 100_000


class _Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class WindowSpec(_Strict, frozen=True):
    """A time range of the catalog, ISO-8601 (naive means UTC; YAML may read it as a
    timestamp)."""

    start: dt.datetime
    end: dt.datetime


class ObjectiveSpec(_Strict, frozen=True):
    """What the best cell is: an arithmetic expression over the result metrics
    (``net_pnl - 0.5 * max_drawdown``; ``+ - * / **``, ``min``, ``max``, ``abs``)."""

    expression: str = "net_pnl"
    direction: Direction = "maximize"
    #: optuna's sampler: tpe (default) or random
    sampler: Literal["tpe", "random"] = "tpe"


class GridFile(_Strict, frozen=True):
    """The grid file as written (see the module docstring and README)."""

    params: dict[str, Any]
    mode: SweepMode = "grid"
    windows: list[WindowSpec] = msgspec.field(default_factory=list)
    #: catalog directories, relative to the grid file
    catalogs: list[str] = msgspec.field(default_factory=list)
    #: latency seeds: each sets ``latency.seed`` of every venue (the i-th venue: seed + i)
    seeds: list[int] = msgspec.field(default_factory=list)
    #: random mode: parameter sets drawn
    samples: int | None = None
    #: optuna mode: trials asked
    trials: int | None = None
    #: the draws of random mode and optuna's sampler
    seed: int = 0
    objective: ObjectiveSpec = ObjectiveSpec()


# ---------------------------------------------------------------- parameter domains
@dataclass(frozen=True)
class Choices:
    """A list of values (grid: each one; random: one drawn; optuna: categorical)."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    """``{from, to, step}``: exact decimal steps, ``to`` included when on the grid.
    Values are strings when the three were written as strings, integers when all are
    integers, floats otherwise."""

    start: Decimal
    stop: Decimal
    step: Decimal
    form: Literal["str", "int", "float"]

    @property
    def decimals(self) -> list[Decimal]:
        n = int((self.stop - self.start) / self.step) + 1
        return [self.start + i * self.step for i in range(n)]

    def render(self, d: Decimal) -> Any:
        if self.form == "str":
            return str(d)
        if self.form == "int":
            return int(d)
        return float(d)

    @property
    def values(self) -> tuple[Any, ...]:
        return tuple(self.render(d) for d in self.decimals)


@dataclass(frozen=True)
class Distribution:
    """Drawn from (random, optuna); not enumerable, so not in grid mode."""

    kind: Literal["uniform", "loguniform", "int"]
    low: float
    high: float
    step: float | None = None


Domain = Choices | Range | Distribution


class _RangeSpec(_Strict, frozen=True):
    from_: str | int | float = msgspec.field(name="from")
    to: str | int | float
    step: str | int | float


class _DistributionSpec(_Strict, frozen=True):
    distribution: Literal["uniform", "loguniform", "int"]
    low: float
    high: float
    step: float | None = None


def _decimal(value: str | int | float, where: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where}: {value!r} is not a number") from None
    if not d.is_finite():
        raise ConfigError(f"{where}: {value!r} is not a finite number")
    return d


def parse_domain(raw: object, where: str) -> Domain:
    """A grid entry's values (a list, a range or a distribution); ConfigError naming
    ``where`` (``grid.yaml: `params.risk.max_position.BTC```) otherwise."""
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(f"{where}: the list of values is empty")
        return Choices(tuple(raw))
    if isinstance(raw, dict) and "distribution" in raw:
        try:
            d = msgspec.convert(raw, _DistributionSpec)
        except msgspec.ValidationError as e:
            raise ConfigError(f"{where}: {e}") from None
        if not d.low < d.high:
            raise ConfigError(f"{where}: low must be below high, got {d.low} .. {d.high}")
        if d.distribution == "loguniform" and d.low <= 0:
            raise ConfigError(f"{where}: a loguniform distribution needs low > 0, got {d.low}")
        if d.step is not None and d.step <= 0:
            raise ConfigError(f"{where}: step must be > 0, got {d.step}")
        if d.distribution == "int" and not all(
            float(x).is_integer() for x in (d.low, d.high, d.step or 1)
        ):
            raise ConfigError(f"{where}: an int distribution needs integer low, high and step")
        return Distribution(d.distribution, d.low, d.high, d.step)
    if isinstance(raw, dict) and "from" in raw:
        try:
            r = msgspec.convert(raw, _RangeSpec)
        except msgspec.ValidationError as e:
            raise ConfigError(f"{where}: {e}") from None
        start = _decimal(r.from_, f"{where}.from")
        stop = _decimal(r.to, f"{where}.to")
        step = _decimal(r.step, f"{where}.step")
        if step <= 0:
            raise ConfigError(f"{where}.step: must be > 0, got {r.step!r}")
        if stop < start:
            raise ConfigError(f"{where}: `to` ({r.to!r}) is below `from` ({r.from_!r})")
        if (stop - start) / step >= MAX_CELLS:
            raise ConfigError(f"{where}: more than {MAX_CELLS:,} values")
        parts = (r.from_, r.to, r.step)
        form: Literal["str", "int", "float"] = (
            "str"
            if all(isinstance(p, str) for p in parts)
            else "int"
            if all(isinstance(p, int) and not isinstance(p, bool) for p in parts)
            else "float"
        )
        return Range(start, stop, step, form)
    raise ConfigError(
        f"{where}: expected a list of values, a range {{from, to, step}} or "
        f"{{distribution: uniform | loguniform | int, low, high}}, got {raw!r}"
    )


# ---------------------------------------------------------------- config paths
_TOKEN = re.compile(r"(?P<key>[^.\[\]]+)|\[(?P<item>[^\[\]]+)\]|(?P<dot>\.)")


def parse_path(path: str, where: str) -> tuple[tuple[str, str], ...]:
    """``venues[mexc].latency.entry_ms`` -> (("key", "venues"), ("item", "mexc"),
    ("key", "latency"), ("key", "entry_ms"))."""
    steps: list[tuple[str, str]] = []
    pos = 0
    expect_key = True
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None:
            break
        if m["dot"]:
            if expect_key:
                break
            expect_key = True
        elif m["key"] is not None:
            if not expect_key:
                break
            steps.append(("key", m["key"].strip()))
            expect_key = False
        else:
            if expect_key:
                break
            steps.append(("item", m["item"].strip()))
        pos = m.end()
    if pos != len(path) or expect_key or not steps:
        raise ConfigError(
            f"{where}: {path!r} is not a config path (e.g. strategy.params.min_edge_bps, "
            "venues[mexc].latency.entry_ms)"
        )
    return tuple(steps)


def _shown(steps: Sequence[tuple[str, str]]) -> str:
    return "".join(f".{name}" if kind == "key" else f"[{name}]" for kind, name in steps)[1:]


def set_path(doc: dict[str, Any], steps: Sequence[tuple[str, str]], value: Any, where: str) -> None:
    """Set ``value`` at ``steps`` in a config document (a missing mapping on the way is
    created: the config's validation then says whether the key exists)."""
    node: Any = doc
    for i, (kind, name) in enumerate(steps):
        last = i == len(steps) - 1
        here = _shown(steps[: i + 1])
        if kind == "key":
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: `{_shown(steps[:i])}` is not a mapping in the config")
            if last:
                node[name] = value
                return
            if node.get(name) is None:
                if steps[i + 1][0] == "item":
                    raise ConfigError(f"{where}: `{here}` is not a list in the config")
                node[name] = {}
            node = node[name]
        else:
            if not isinstance(node, list):
                raise ConfigError(f"{where}: `{_shown(steps[:i])}` is not a list in the config")
            index = _select(node, name, f"{where}: `{here}`")
            if last:
                node[index] = value
                return
            node = node[index]


def _select(items: list[Any], name: str, where: str) -> int:
    if name.isdigit():
        if int(name) < len(items):
            return int(name)
        raise ConfigError(f"{where}: index {name} is past the list's {len(items)} items")
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == name:
            return i
    names = [str(item.get("name")) for item in items if isinstance(item, dict)]
    raise ConfigError(f"{where}: no item named {name!r} (names: {', '.join(names) or 'none'})")


# ---------------------------------------------------------------- objective
_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {"min": min, "max": max, "abs": abs}
_ALLOWED = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, ast.Call,
    ast.operator, ast.unaryop,
)  # fmt: skip


@dataclass(frozen=True)
class Objective:
    """A checked objective expression over a cell's metrics."""

    expression: str
    direction: Direction
    tree: ast.Expression = field(repr=False, compare=False)

    @classmethod
    def parse(cls, spec: ObjectiveSpec, where: str) -> Objective:
        try:
            tree = ast.parse(spec.expression, mode="eval")
        except SyntaxError as e:
            raise ConfigError(
                f"{where}: {spec.expression!r} is not an expression ({e.msg})"
            ) from None
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id not in METRICS and node.id not in _FUNCTIONS:
                raise ConfigError(
                    f"{where}: unknown metric {node.id!r} in {spec.expression!r} "
                    f"(metrics: {', '.join(METRICS)})"
                )
            ok = isinstance(node, _ALLOWED)
            if isinstance(node, ast.Call):
                ok = isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            if isinstance(node, ast.BinOp):
                ok = type(node.op) in _BINARY
            if isinstance(node, ast.UnaryOp):
                ok = isinstance(node.op, ast.USub | ast.UAdd)
            if isinstance(node, ast.Constant):
                ok = isinstance(node.value, int | float) and not isinstance(node.value, bool)
            if not ok:
                raise ConfigError(
                    f"{where}: {ast.unparse(node)!r} is not allowed in an objective "
                    "(numbers, metrics, + - * / **, min, max, abs)"
                )
        return cls(spec.expression, spec.direction, tree)

    def __call__(self, metrics: Mapping[str, Any]) -> float:
        """The objective of one cell's metrics (NaN where a metric is missing)."""

        def ev(node: ast.AST) -> float:
            if isinstance(node, ast.Expression):
                return ev(node.body)
            if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
                return float(node.value)
            if isinstance(node, ast.Name):
                v = metrics.get(node.id)
                return math.nan if v is None else float(v)
            if isinstance(node, ast.UnaryOp):
                return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
            if isinstance(node, ast.BinOp):
                a, b = ev(node.left), ev(node.right)
                try:
                    return _BINARY[type(node.op)](a, b)
                except ZeroDivisionError:
                    return math.nan
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                return float(_FUNCTIONS[node.func.id](*(ev(a) for a in node.args)))
            raise AssertionError(ast.dump(node))

        return ev(self.tree)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b


# ---------------------------------------------------------------- cells
@dataclass(frozen=True)
class Param:
    path: str
    steps: tuple[tuple[str, str], ...]
    domain: Domain


@dataclass(frozen=True)
class Cell:
    """One backtest of a sweep: its parameters, data and validated config."""

    #: a digest of the cell's config (which holds its catalog and window) and trial
    key: str
    params: dict[str, Any]
    catalog: str
    start: str | None
    end: str | None
    seed: int | None
    #: the validated config, YAML, with ``data.catalog`` / ``start`` / ``end`` set
    config_text: bytes
    trial: int | None = None


def _label(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items()) or "the base config"


@dataclass
class Sweep:
    """A loaded grid file on its base config: :meth:`cells` (grid, random) or
    :meth:`cells_for` (an optuna trial's parameters)."""

    grid_path: Path
    base_path: Path
    grid: GridFile
    params: list[Param]
    objective: Objective
    catalogs: list[str | Path]
    windows: list[tuple[str | None, str | None]]
    seeds: list[int | None]
    base_doc: dict[str, Any]
    registry: Registry

    @property
    def mode(self) -> SweepMode:
        return self.grid.mode

    def param_sets(self) -> list[dict[str, Any]]:
        """grid: the cartesian product; random: ``samples`` seeded draws."""
        if self.mode == "grid":
            domains = [p.domain for p in self.params]
            lists = [d.values for d in domains if not isinstance(d, Distribution)]
            return [
                dict(zip((p.path for p in self.params), combo, strict=True))
                for combo in itertools.product(*lists)
            ]
        if self.mode == "random":
            rng = random.Random(self.grid.seed)
            sets = [
                {p.path: _draw(p.domain, rng) for p in self.params}
                for _ in range(self.grid.samples or 0)
            ]
            unique = {json.dumps(s, sort_keys=True, default=str): s for s in sets}
            return list(unique.values())
        raise ConfigError(f"{self.grid_path}: an optuna sweep asks its parameter sets")

    def cells(self) -> list[Cell]:
        """Every cell of a grid or random sweep, each validated (the first bad one
        raises ConfigError naming its parameters and the config key)."""
        sets = self.param_sets()
        total = len(sets) * len(self.catalogs) * len(self.windows) * len(self.seeds)
        if total > MAX_CELLS:
            raise ConfigError(f"{self.grid_path}: {total:,} cells, more than {MAX_CELLS:,}")
        out: list[Cell] = []
        for values in sets:
            out += self.cells_for(values)
        return out

    def cells_for(self, values: Mapping[str, Any], trial: int | None = None) -> list[Cell]:
        """The cells of one parameter set: one per catalog, window and seed."""
        cells = []
        for catalog, (start, end), seed in itertools.product(
            self.catalogs, self.windows, self.seeds
        ):
            text = self.config_text(values, catalog, start, end, seed)
            # two optuna trials may ask the same values: each has its own cells
            salt = b"" if trial is None else f"\ntrial {trial}".encode()
            cells.append(
                Cell(
                    key=hashlib.sha256(text + salt).hexdigest()[:16],
                    params=dict(values),
                    catalog=str(catalog),
                    start=start,
                    end=end,
                    seed=seed,
                    config_text=text,
                    trial=trial,
                )
            )
        return cells

    def config_text(
        self,
        values: Mapping[str, Any],
        catalog: str | Path,
        start: str | None,
        end: str | None,
        seed: int | None,
    ) -> bytes:
        """The base config with ``values`` set, validated; its resolved YAML."""
        label = _label(values)
        where = f"{self.grid_path}: {label}"
        doc = copy.deepcopy(self.base_doc)
        for p in self.params:
            if p.path in values:
                set_path(doc, p.steps, values[p.path], f"{where} (`params.{p.path}`)")
        data = doc.get("data")
        data = dict(data) if isinstance(data, dict) else {}
        data.update(catalog=str(catalog), start=start, end=end)
        doc["data"] = data
        if seed is not None:
            for i, venue in enumerate(doc.get("venues") or []):
                if isinstance(venue, dict):
                    latency = venue.get("latency")
                    latency = dict(latency) if isinstance(latency, dict) else {}
                    latency["seed"] = seed + i
                    venue["latency"] = latency
        source = f"{self.base_path} with {label} (grid {self.grid_path})"
        cfg = parse_config(msgspec.yaml.encode(doc), source, "backtest", self.registry)
        return dump_config(resolve_paths(cfg, self.base_path.resolve().parent))

    def check_space(self) -> None:
        """optuna: the base config with each parameter at each end of its domain (every
        value of a list), one at a time; ConfigError for the first bad one."""
        for p in self.params:
            d = p.domain
            ends = (
                d.values
                if isinstance(d, Choices)
                else (d.values[0], d.values[-1])
                if isinstance(d, Range)
                else _bounds(d)
            )
            for v in ends:
                self.cells_for({p.path: v})


def _bounds(d: Distribution) -> tuple[Any, Any]:
    if d.kind == "int":
        return int(d.low), int(d.high)
    return d.low, d.high


def _draw(d: Domain, rng: random.Random) -> Any:
    if isinstance(d, Choices):
        return rng.choice(d.values)
    if isinstance(d, Range):
        return rng.choice(d.values)
    if d.kind == "int":
        return rng.randrange(int(d.low), int(d.high) + 1, int(d.step or 1))
    if d.kind == "loguniform":
        x = math.exp(rng.uniform(math.log(d.low), math.log(d.high)))
    else:
        x = rng.uniform(d.low, d.high)
    if d.step:
        x = min(d.high, d.low + round((x - d.low) / d.step) * d.step)
    return x


def load_sweep(
    base_path: Path,
    grid_path: Path,
    data: str | Path | None = None,
    registry: Registry | None = None,
) -> Sweep:
    """Read the grid file and the base config; check the grid's entries, windows and
    catalogs (ConfigError / DataError naming the entry). Cells are built (and each
    validated) by :meth:`Sweep.cells` / :meth:`Sweep.cells_for`."""
    reg = registry or Registry.from_entry_points()
    try:
        raw_grid = grid_path.read_bytes()
    except OSError as e:
        raise ConfigError(f"--grid {grid_path}: cannot read ({e.strerror or e})") from None
    try:
        # strict=False: a quoted time is read as a time (YAML reads a bare one as one)
        grid = msgspec.yaml.decode(raw_grid, type=GridFile, strict=False)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{grid_path}: {e}") from None
    except msgspec.DecodeError as e:
        raise ConfigError(f"{grid_path}: not valid YAML ({e})") from None
    try:
        raw_base = base_path.read_bytes()
    except OSError as e:
        raise ConfigError(f"--config {base_path}: cannot read ({e.strerror or e})") from None
    base_cfg = resolve_paths(
        parse_config(raw_base, str(base_path), "backtest", reg), base_path.resolve().parent
    )
    base_doc = msgspec.yaml.decode(raw_base)
    if not isinstance(base_doc, dict):
        raise ConfigError(f"{base_path}: a config is a mapping")

    if not grid.params:
        raise ConfigError(f"{grid_path}: `params` is empty; name at least one config key")
    params = []
    for path, raw in grid.params.items():
        where = f"{grid_path}: `params.{path}`"
        steps = parse_path(path, where)
        domain = parse_domain(raw, where)
        if grid.mode == "grid" and isinstance(domain, Distribution):
            raise ConfigError(
                f"{where}: a distribution cannot be enumerated in grid mode; give a list or "
                "a range {from, to, step}, or use mode: random / optuna"
            )
        # the path exists in the config's shape (values are checked per cell)
        set_path(copy.deepcopy(base_doc), steps, None, where)
        params.append(Param(path, steps, domain))
    if grid.mode == "random" and not grid.samples:
        raise ConfigError(f"{grid_path}: `samples` (how many draws) is needed in random mode")
    if grid.mode == "optuna" and not grid.trials:
        raise ConfigError(f"{grid_path}: `trials` (how many) is needed in optuna mode")
    counts = (("samples", grid.samples, "random"), ("trials", grid.trials, "optuna"))
    for name, value, mode in counts:
        if value is not None and grid.mode != mode:
            raise ConfigError(f"{grid_path}: `{name}` is for {mode} mode, not {grid.mode}")
        if value is not None and value <= 0:
            raise ConfigError(f"{grid_path}: `{name}` must be > 0, got {value}")
    objective = Objective.parse(grid.objective, f"{grid_path}: `objective.expression`")

    if grid.catalogs and data is not None:
        raise ConfigError(f"{grid_path}: `catalogs` and --data {data}: give one or the other")
    if grid.catalogs:
        catalogs: list[str | Path] = [
            c if is_url(c) else grid_path.resolve().parent / Path(c).expanduser()
            for c in grid.catalogs
        ]
    elif data is not None:
        catalogs = [data if isinstance(data, str) else data.resolve()]
    elif base_cfg.data.catalog:
        catalogs = [catalog_location(base_cfg.data.catalog)]
    else:
        catalogs = [bundled_sample().resolve()]
    if grid.windows:
        windows: list[tuple[str | None, str | None]] = [
            (_iso_text(w.start), _iso_text(w.end)) for w in grid.windows
        ]
    else:
        windows = [(base_cfg.data.start, base_cfg.data.end)]
    _check_data(grid_path, catalogs, windows, bool(grid.catalogs))
    seeds: list[int | None] = list(grid.seeds) or [None]
    return Sweep(
        grid_path=grid_path,
        base_path=base_path,
        grid=grid,
        params=params,
        objective=objective,
        catalogs=catalogs,
        windows=windows,
        seeds=seeds,
        base_doc=base_doc,
        registry=reg,
    )


def _check_data(
    grid_path: Path,
    catalogs: Sequence[str | Path],
    windows: Sequence[tuple[str | None, str | None]],
    from_grid: bool,
) -> None:
    """Each catalog opens and holds data; each window is a time range inside each
    catalog's data."""
    spans = []
    for i, path in enumerate(catalogs):
        where = f"{grid_path}: `catalogs[{i}]`" if from_grid else "catalog"
        try:
            catalog = Catalog(path)
            ranges = [catalog.time_range(x.venue, x.symbol) for x in catalog.instruments()]
        except ArbsimError as e:
            raise type(e)(f"{where} {path}: {e}") from None
        found = [r for r in ranges if r is not None]
        if not found:
            raise ConfigError(f"{where} {path}: holds no data")
        spans.append((path, min(r[0] for r in found), max(r[1] for r in found)))
    for i, (start, end) in enumerate(windows):
        where = f"{grid_path}: `windows[{i}]`"
        lo = parse_time(start, f"{where}.start") if start else None
        hi = parse_time(end, f"{where}.end") if end else None
        if lo is not None and hi is not None and hi <= lo:
            raise ConfigError(f"{where}: end {end} is not after start {start}")
        for path, first, last in spans:
            if (lo is not None and lo > last) or (hi is not None and hi <= first):
                raise ConfigError(
                    f"{where} ({start} -> {end}) is outside the data of {path} "
                    f"({iso(first)} -> {iso(last)})"
                )


def _iso_text(t: dt.datetime) -> str:
    return (t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)).isoformat()
