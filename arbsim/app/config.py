"""The run configuration: one YAML file, validated by msgspec, unknown keys rejected.

A config is read for one mode (``backtest``, ``paper`` or ``live``). Each entry of
``venues`` is a tagged union: its ``kind`` names a registered venue kind (default:
``replay`` in a backtest, ``paper`` in paper trading, the venue's own name live) and the
rest is validated against that kind's config type, so a live venue carrying balances or a
latency model is refused instead of silently ignored. Strategy parameters are validated by
the strategy's own ``Params`` type. Errors name the file, the key path
(``$.venues[1].latency``) and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from arbsim.app.registry import Registry
from arbsim.core.errors import ConfigError
from arbsim.core.ports import MODES, Mode, VenueConfig
from arbsim.runtime.risk import RiskLimits
from arbsim.runtime.strategy import Strategy

#: the kind of a venue entry that does not name one, per mode (live: the venue's name)
DEFAULT_KIND: dict[Mode, str | None] = {"backtest": "replay", "paper": "paper", "live": None}
#: the simulated kinds, whose configs carry over between backtest and paper
_SIMULATED = frozenset({"replay", "paper"})


class Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every config section: immutable, unknown keys rejected."""


class StrategyConfig(Strict, frozen=True):
    """A registered strategy by ``name``, or explicitly the ``class`` (``module:Class``,
    a :class:`~arbsim.runtime.strategy.Strategy` subclass); ``params`` are checked by
    the strategy's ``Params`` type."""

    name: str = "cross_exchange"
    class_: str | None = msgspec.field(default=None, name="class")
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class DataConfig(Strict, frozen=True):
    catalog: str | None = None
    start: str | None = None
    end: str | None = None


class RunConfig(Strict, frozen=True):
    drain_s: float = 1.0
    equity_interval_s: float = 1.0
    id_prefix: str = "x"
    #: how long the end of a run may take to learn every unknown order outcome (a venue
    #: may accept a late request until its expiry, Gate's 60 s) and cancel its orders
    shutdown_s: float = 90.0


class Config(Strict, frozen=True):
    venues: list[VenueConfig]
    strategy: StrategyConfig = StrategyConfig()
    risk: RiskLimits = RiskLimits()
    data: DataConfig = DataConfig()
    run: RunConfig = RunConfig()


class Document(Strict, frozen=True):
    """The file as written: venue entries stay raw until their kind is known."""

    venues: list[dict[str, Any]]
    strategy: StrategyConfig = StrategyConfig()
    risk: RiskLimits = RiskLimits()
    data: DataConfig = DataConfig()
    run: RunConfig = RunConfig()


def _validation_message(e: msgspec.MsgspecError, prefix: str = "") -> str:
    """msgspec's message with the key path rooted at ``prefix`` (``$.venues[0]...``)."""
    text = str(e)
    root = f"$.{prefix}" if prefix else "$"
    if " - at `$" in text:
        return text.replace(" - at `$", f" - at `{root}")
    return f"{text} - at `{root}`"


def load_config(
    path: str | Path, mode: Mode = "backtest", registry: Registry | None = None
) -> Config:
    """Read and validate a YAML config file for ``mode``."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config ({e.strerror})") from e
    return parse_config(raw, str(p), mode, registry)


def parse_config(
    raw: bytes,
    source: str = "<config>",
    mode: Mode = "backtest",
    registry: Registry | None = None,
) -> Config:
    """Validate a YAML document as a config for ``mode`` (ConfigError naming the key)."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    reg = registry or Registry.from_entry_points()
    try:
        doc = msgspec.yaml.decode(raw, type=Document)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{source}: {_validation_message(e)}") from e
    except msgspec.DecodeError as e:
        raise ConfigError(f"{source}: not valid YAML ({e})") from e
    return config_from_document(doc, source, mode, reg)


def config_from_document(
    doc: Document, source: str, mode: Mode, registry: Registry | None = None
) -> Config:
    """A decoded document's venues resolved by kind, and its strategy checked."""
    reg = registry or Registry.from_entry_points()
    if not doc.venues:
        raise ConfigError(f"{source}: `$.venues` is empty; at least one venue is needed")
    venues = [_venue(entry, i, mode, reg, source) for i, entry in enumerate(doc.venues)]
    names = [v.name for v in venues]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: `$.venues` names must be unique, got {names}")
    cfg = Config(venues=venues, strategy=doc.strategy, risk=doc.risk, data=doc.data, run=doc.run)
    strategy_params(cfg, reg, source)
    return cfg


def _venue(entry: dict[str, Any], i: int, mode: Mode, reg: Registry, source: str) -> VenueConfig:
    where = f"{source}: `$.venues[{i}]"
    kind = entry.get("kind")
    if kind is None:
        kind = DEFAULT_KIND[mode] or entry.get("name")
        entry = {"kind": kind, **entry}
    if not isinstance(kind, str):
        raise ConfigError(f"{where}.kind`: expected a venue kind name, got {kind!r}")
    plugin = reg.venue_kind(kind, f"{where}.kind`")
    target = DEFAULT_KIND[mode]
    if mode not in plugin.modes and kind in _SIMULATED and target in _SIMULATED:
        # a paper run's config backtests its own recording and vice versa: both venue kinds
        # simulate fills the same way; only where the market data comes from differs
        plugin = reg.venue_kind(target, f"{where}.kind`")
        known = set(plugin.config.__struct_fields__)
        entry = {k: v for k, v in entry.items() if k in known or k == "kind"}
        entry["kind"] = kind = target
    if mode not in plugin.modes:
        modes = " / ".join(m for m in MODES if m in plugin.modes)
        raise ConfigError(
            f"{where}.kind`: a {kind!r} venue runs in {modes}, not in {mode}"
            + (" (its settings would be ignored)" if mode == "live" else "")
        )
    try:
        return msgspec.convert(entry, type=plugin.config, strict=False)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{source}: {_validation_message(e, f'venues[{i}]')}") from e


def dump_config(cfg: Config) -> bytes:
    return msgspec.yaml.encode(cfg)


def strategy_class(
    cfg: Config, registry: Registry | None = None, source: str = "<config>"
) -> type[Strategy]:
    reg = registry or Registry.from_entry_points()
    return reg.strategy(cfg.strategy.name, cfg.strategy.class_, f"{source}: `$.strategy`")


def strategy_params(
    cfg: Config, registry: Registry | None = None, source: str = "<config>"
) -> object:
    """``strategy.params`` validated by the strategy's ``Params`` type."""
    cls = strategy_class(cfg, registry, source)
    if cls.Params is None:
        if cfg.strategy.params:
            raise ConfigError(
                f"{source}: `$.strategy.params`: strategy {cls.name!r} takes no parameters"
            )
        return None
    try:
        return msgspec.convert(cfg.strategy.params, type=cls.Params, strict=False)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{source}: {_validation_message(e, 'strategy.params')}") from e


def build_strategy(cfg: Config, registry: Registry | None = None) -> Strategy:
    """The configured strategy, built from its validated parameters."""
    reg = registry or Registry.from_entry_points()
    return strategy_class(cfg, reg)(strategy_params(cfg, reg))
