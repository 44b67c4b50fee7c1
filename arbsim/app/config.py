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

import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, cast

import msgspec

from arbsim.app.alerts import AlertConfig
from arbsim.app.registry import Registry
from arbsim.core.checks import ConfigPath, at_most, non_negative, positive
from arbsim.core.errors import ConfigError
from arbsim.core.ports import MODES, Mode, VenueConfig
from arbsim.runtime.risk import RiskLimits
from arbsim.runtime.strategy import Strategy

#: the kind of a venue entry that does not name one, per mode (live: the venue's name)
DEFAULT_KIND: dict[Mode, str | None] = {"backtest": "replay", "paper": "paper", "live": None}
#: the simulated kinds, whose configs carry over between backtest and paper
_SIMULATED = frozenset({"replay", "paper"})
T = TypeVar("T")


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
    #: relative to the config file
    catalog: ConfigPath | None = None
    start: str | None = None
    end: str | None = None


class RunConfig(Strict, frozen=True):
    drain_s: float = 1.0
    equity_interval_s: float = 1.0
    id_prefix: str = "x"
    #: how long the end of a run may take to learn every unknown order outcome (a venue
    #: may accept a late request until its expiry, Gate's 60 s) and cancel its orders
    shutdown_s: float = 90.0
    #: paper / live: seconds between heartbeat log records (0: none)
    heartbeat_s: float = 10.0

    def __post_init__(self) -> None:
        non_negative(drain_s=self.drain_s, shutdown_s=self.shutdown_s, heartbeat_s=self.heartbeat_s)
        positive(equity_interval_s=self.equity_interval_s)


class OpsConfig(Strict, frozen=True):
    """Paper / live: the operations server (``/metrics``, ``/health``, ``/events``)."""

    #: where it listens (127.0.0.1: this host only)
    host: str = "127.0.0.1"
    #: its port; 0: an ephemeral port (printed at start); null: no server
    port: int | None = 0
    #: how often each venue's REST API is asked for the server time (REST up, clock
    #: skew); 0: never
    probe_interval_s: float = 5.0
    #: a venue whose clock is further than this from ours (ms) is unhealthy
    max_clock_skew_ms: float = 1000.0
    #: events kept for followers of /events that connect late or reconnect
    events_kept: int = 10_000

    def __post_init__(self) -> None:
        if not self.host.strip():
            raise ValueError(f"host: must be an address, got {self.host!r}")
        non_negative(port=self.port, probe_interval_s=self.probe_interval_s)
        at_most("port", self.port, 65535)
        positive(max_clock_skew_ms=self.max_clock_skew_ms, events_kept=self.events_kept)


class Config(Strict, frozen=True):
    venues: list[VenueConfig]
    strategy: StrategyConfig = StrategyConfig()
    risk: RiskLimits = RiskLimits()
    data: DataConfig = DataConfig()
    run: RunConfig = RunConfig()
    ops: OpsConfig = OpsConfig()
    alerts: AlertConfig = AlertConfig()


class Document(Strict, frozen=True):
    """The file as written: venue entries stay raw until their kind is known."""

    venues: list[dict[str, Any]]
    strategy: StrategyConfig = StrategyConfig()
    risk: RiskLimits = RiskLimits()
    data: DataConfig = DataConfig()
    run: RunConfig = RunConfig()
    ops: OpsConfig = OpsConfig()
    alerts: AlertConfig = AlertConfig()


_AT = re.compile(r"^(?P<text>.*) - at `(?P<path>\$[^`]*)`$", re.S)
#: a range check's message names its key first (arbsim.core.checks): ``max_qty: ...``
_KEYED = re.compile(r"^(?P<key>[A-Za-z_][\w]*(?:\.[\w/.-]+)?): (?P<rest>must be .*)$", re.S)
_STEP = re.compile(r"\.(?P<field>[A-Za-z_]\w*)|\[(?P<index>\d+)\]|\[\.\.\.\]")


def _validation_message(
    e: msgspec.MsgspecError,
    prefix: str = "",
    raw: object = None,
    target: object = None,
) -> str:
    """msgspec's message with the key path rooted at ``prefix`` (``$.venues[0]...``).
    A map key msgspec leaves out (``balances[...]``) is found in ``raw`` (the data that
    was converted to ``target``) and named with the value it holds; the key of a range
    check (``max_qty: must be > 0, got -1``, :mod:`arbsim.core.checks`) joins the path."""
    text = str(e)
    match = _AT.match(text)
    path, what = (match["path"], match["text"]) if match else ("$", text)
    if "[...]" in path and raw is not None and target is not None:
        path, value = _locate(raw, target, path)
        if value is not None and not isinstance(value, dict | list):
            what = f"{what}, got {value!r}"
    keyed = _KEYED.match(what)
    if keyed:
        path = f"{path}.{keyed['key']}"
        what = keyed["rest"]
    if prefix:
        path = f"$.{prefix}{path[1:]}"
    return f"{what} - at `{path}`"


def _locate(raw: object, target: object, path: str) -> tuple[str, object]:
    """``path`` with each ``[...]`` (a map key msgspec leaves out) replaced by the key
    whose value ``target`` (the type converted at ``$``) refuses, and that value when the
    path ends there; ``(path, None)`` if not found."""
    node, tp = raw, target
    done = "$"
    value: object = None
    for step in _STEP.finditer(path[1:]):
        tp = _unwrap(tp, node)
        value = None
        if step["field"] is not None:
            name = step["field"]
            if not isinstance(node, dict) or not isinstance(tp, type):
                return path, None
            node = node.get(name)
            tp = _field_type(tp, name)
            done += f".{name}"
        elif step["index"] is not None:
            i = int(step["index"])
            if not isinstance(node, list) or i >= len(node):
                return path, None
            node = node[i]
            tp = typing.get_args(tp)[0] if typing.get_args(tp) else object
            done += f"[{i}]"
        else:
            if not isinstance(node, dict):
                return path, None
            value_type = typing.get_args(tp)[-1] if typing.get_args(tp) else object
            for key, item in node.items():
                try:
                    msgspec.convert(item, type=value_type, strict=False)
                except msgspec.ValidationError:
                    node, tp, value = item, value_type, item
                    done += f".{key}"
                    break
            else:
                return path, None
    return done, value


def _unwrap(tp: object, node: object) -> object:
    """The member of an Optional / Union / Annotated type that ``node`` goes to."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            structs = [a for a in members if isinstance(a, type) and issubclass(a, msgspec.Struct)]
            tp = structs[0] if isinstance(node, dict) and structs else members[0]
        else:
            return tp


def _field_type(struct: type, name: str) -> object:
    """The annotation of the field a struct encodes as ``name``."""
    if not issubclass(struct, msgspec.Struct):
        return object
    hints = typing.get_type_hints(struct, include_extras=True)
    for attr, encoded in zip(
        struct.__struct_fields__, struct.__struct_encode_fields__, strict=True
    ):
        if encoded == name:
            return hints.get(attr, object)
    return object


def resolve_paths(obj: T, base: Path) -> T:
    """``obj`` (a config struct) with every relative :data:`ConfigPath` value made
    relative to ``base`` (the config file's directory), at any depth."""
    if isinstance(obj, msgspec.Struct):
        hints = typing.get_type_hints(type(obj), include_extras=True)
        changes: dict[str, Any] = {}
        for attr in type(obj).__struct_fields__:
            value = getattr(obj, attr)
            if isinstance(value, str) and _is_path(hints.get(attr)):
                if _URL.match(value):  # a catalog URL (s3://bucket/prefix): not a file path
                    continue
                p = Path(value).expanduser()
                if not p.is_absolute():
                    changes[attr] = str(base / p)
            else:
                new = resolve_paths(value, base)
                if new is not value:
                    changes[attr] = new
        return msgspec.structs.replace(obj, **changes) if changes else obj
    if isinstance(obj, list):
        items = [resolve_paths(v, base) for v in obj]
        return cast(T, items) if any(a is not b for a, b in zip(items, obj, strict=True)) else obj
    if isinstance(obj, dict):
        values = {k: resolve_paths(v, base) for k, v in obj.items()}
        changed = any(values[k] is not obj[k] for k in obj)
        return cast(T, values) if changed else obj
    return obj


#: a URL (``s3://bucket/prefix``, ``file:///dir``) where a path may be given
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _is_path(tp: object) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return any(
            isinstance(m, msgspec.Meta) and bool((m.extra or {}).get("config_path"))
            for m in getattr(tp, "__metadata__", ())
        )
    if origin in (typing.Union, types.UnionType):
        return any(_is_path(a) for a in typing.get_args(tp))
    return False


def load_config(
    path: str | Path, mode: Mode = "backtest", registry: Registry | None = None
) -> Config:
    """Read and validate a YAML config file for ``mode``."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config ({e.strerror})") from e
    # paths in the file (data.catalog, a latency source) are relative to the file
    return resolve_paths(parse_config(raw, str(p), mode, registry), p.resolve().parent)


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
        try:
            data: object = msgspec.yaml.decode(raw)
        except msgspec.DecodeError:
            data = None
        raise ConfigError(f"{source}: {_validation_message(e, raw=data, target=Document)}") from e
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
    for key in ("max_position_by_venue", "max_notional_by_venue"):
        for name in getattr(doc.risk, key):
            if name not in names:
                raise ConfigError(
                    f"{source}: `$.risk.{key}.{name}`: not a configured venue "
                    f"(venues: {', '.join(names)})"
                )
    cfg = Config(
        venues=venues, strategy=doc.strategy, risk=doc.risk, data=doc.data, run=doc.run,
        ops=doc.ops, alerts=doc.alerts,
    )  # fmt: skip
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
        message = _validation_message(e, f"venues[{i}]", raw=entry, target=plugin.config)
        raise ConfigError(f"{source}: {message}") from e


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
        message = _validation_message(
            e, "strategy.params", raw=cfg.strategy.params, target=cls.Params
        )
        raise ConfigError(f"{source}: {message}") from e


def build_strategy(cfg: Config, registry: Registry | None = None) -> Strategy:
    """The configured strategy, built from its validated parameters."""
    reg = registry or Registry.from_entry_points()
    return strategy_class(cfg, reg)(strategy_params(cfg, reg))
