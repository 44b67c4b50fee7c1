"""The run configuration: one YAML file, validated by msgspec, unknown keys rejected.

Errors name the file, the key path (``$.risk.max_order_notional``) and what was
expected. Strategy parameters are validated by the strategy's own ``Params`` type.
"""

from __future__ import annotations

import importlib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import msgspec

from arbsim.core.errors import ConfigError
from arbsim.core.rules import VenueRules
from arbsim.runtime.risk import RiskLimits

#: short strategy names -> "module:Class" (a full "module:Class" path is accepted too)
STRATEGIES = {"cross_exchange": "strategies.cross_exchange:CrossExchangeArb"}
#: venue kinds -> "module:Class"
VENUE_KINDS = {"replay": "exchanges.simulated.replay:ReplayVenue"}
#: order-rule names a venue's ``rules`` may give -> "module:VenueRules" (each venue's table)
VENUE_RULES = {
    "generic": "exchanges.simulated.rules:GENERIC_RULES",
    "mexc": "exchanges.mexc.rules:MEXC_RULES",
    "gateio": "exchanges.gateio.rules:GATEIO_RULES",
}


#: request kinds a venue distinguishes; ``push`` is an unsolicited private update
REQUEST_KINDS = ("place", "cancel", "fetch_order", "fetch_balances", "open_orders", "push")


class Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every config section: immutable, unknown keys rejected."""


class LatencySpec(Strict, frozen=True):
    """One latency model. ``constant``: ``entry_ms`` / ``response_ms`` exactly;
    ``lognormal``: those are the medians and ``sigma`` the shape; ``empirical``: round
    trips resampled from ``source`` (a run's latency.parquet, rows of ``source_kinds``,
    or a CSV with a latency_ms column), split by ``entry_share``."""

    model: Literal["constant", "lognormal", "empirical"] = "constant"
    entry_ms: float = 10.0
    response_ms: float = 10.0
    sigma: float = 0.25
    source: str | None = None
    source_kinds: list[str] = msgspec.field(default_factory=lambda: ["place"])
    entry_share: float = 0.5


class LatencyConfig(LatencySpec, frozen=True):
    """A venue's latency: a default model, optional per-request-kind overrides
    (place, cancel, fetch_order, fetch_balances, open_orders, push), and a seed."""

    per_kind: dict[str, LatencySpec] = msgspec.field(default_factory=dict)
    seed: int = 0


class FeeRates(Strict, frozen=True):
    maker_fee: Decimal
    taker_fee: Decimal


class FeeConfig(Strict, frozen=True):
    """Fee rates overriding the catalog's: directly, or by naming one of ``tiers``."""

    maker_fee: Decimal | None = None
    taker_fee: Decimal | None = None
    tier: str | None = None
    tiers: dict[str, FeeRates] = msgspec.field(default_factory=dict)

    def overrides(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        if self.tier is not None:
            rates = self.tiers[self.tier]
            out = {"maker_fee": rates.maker_fee, "taker_fee": rates.taker_fee}
        if self.maker_fee is not None:
            out["maker_fee"] = self.maker_fee
        if self.taker_fee is not None:
            out["taker_fee"] = self.taker_fee
        return out


class ImpactConfig(Strict, frozen=True):
    """Temporary market impact of our own takers (off while ``bps_per_depth`` is 0):
    taking a share q of the top ``levels``' displayed depth moves that side away by
    ``bps_per_depth * q`` bps for ``decay_ms``."""

    bps_per_depth: float = 0.0
    decay_ms: float = 0.0
    levels: int = 10


class QueueConfig(Strict, frozen=True):
    """Queue position of resting orders: ``risk_averse`` | ``prob_power`` | ``prob_log``."""

    model: Literal["risk_averse", "prob_power", "prob_log"] = "risk_averse"
    power: float = 2.0
    stochastic: bool = False
    seed: int = 0


class VenueConfig(Strict, frozen=True):
    name: str
    balances: dict[str, Decimal]
    latency: LatencyConfig = LatencyConfig()
    fees: FeeConfig = FeeConfig()
    #: shifts the recorded feed latency: a strategy running further away sees data later
    feed_offset_ms: float = 0.0
    #: order rules and rejection codes: mexc | gateio | generic (default: the venue's own
    #: when its name is one of those, else generic)
    rules: str | None = None
    queue: QueueConfig = QueueConfig()
    #: our taker fills hide the displayed size they took until the data refreshes it
    consume_liquidity: bool = True
    max_open_orders: int | None = None
    impact: ImpactConfig = ImpactConfig()


class StrategyConfig(Strict, frozen=True):
    name: str = "cross_exchange"
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class DataConfig(Strict, frozen=True):
    catalog: str | None = None
    start: str | None = None
    end: str | None = None


class RunConfig(Strict, frozen=True):
    drain_s: float = 1.0
    equity_interval_s: float = 1.0
    id_prefix: str = "x"


class Config(Strict, frozen=True):
    venues: list[VenueConfig]
    strategy: StrategyConfig = StrategyConfig()
    risk: RiskLimits = RiskLimits()
    data: DataConfig = DataConfig()
    run: RunConfig = RunConfig()


def _validation_message(e: msgspec.MsgspecError, prefix: str = "") -> str:
    """msgspec's message with the key path rooted at ``prefix`` (``$.strategy.params...``)."""
    text = str(e)
    root = f"$.{prefix}" if prefix else "$"
    if " - at `$" in text:
        return text.replace(" - at `$", f" - at `{root}")
    return f"{text} - at `{root}`"


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config ({e.strerror})") from e
    return parse_config(raw, str(p))


def parse_config(raw: bytes, source: str = "<config>") -> Config:
    try:
        cfg = msgspec.yaml.decode(raw, type=Config)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{source}: {_validation_message(e)}") from e
    except msgspec.DecodeError as e:
        raise ConfigError(f"{source}: not valid YAML ({e})") from e
    for i, v in enumerate(cfg.venues):
        _check_latency(v.latency, f"{source}: `$.venues[{i}].latency")
        if v.fees.tier is not None and v.fees.tier not in v.fees.tiers:
            raise ConfigError(
                f"{source}: `$.venues[{i}].fees.tier`: {v.fees.tier!r} is not one of "
                f"`tiers` ({', '.join(v.fees.tiers) or 'none defined'})"
            )
        if v.rules is not None and v.rules not in VENUE_RULES:
            raise ConfigError(
                f"{source}: `$.venues[{i}].rules`: unknown rules {v.rules!r} "
                f"(known: {', '.join(VENUE_RULES)})"
            )
    names = [v.name for v in cfg.venues]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: `$.venues` names must be unique, got {names}")
    if not names:
        raise ConfigError(f"{source}: `$.venues` is empty; at least one venue is needed")
    strategy_params(cfg, source)
    return cfg


def _check_latency(lat: LatencyConfig, where: str) -> None:
    for kind in lat.per_kind:
        if kind not in REQUEST_KINDS:
            known = ", ".join(REQUEST_KINDS)
            raise ConfigError(f"{where}.per_kind`: unknown request kind {kind!r} (known: {known})")
    for name, spec in [("", lat), *((f".per_kind.{k}", s) for k, s in lat.per_kind.items())]:
        if spec.model == "empirical" and not spec.source:
            raise ConfigError(f"{where}{name}`: model 'empirical' needs `source`")
        if min(spec.entry_ms, spec.response_ms, spec.sigma) < 0:
            raise ConfigError(f"{where}{name}`: latencies and sigma must be >= 0")


def dump_config(cfg: Config) -> bytes:
    return msgspec.yaml.encode(cfg)


def load_object(path: str, what: str) -> Any:
    """Import ``"module:attr"`` (how arbsim finds venues and strategies without importing
    them statically: dependencies point inward)."""
    module, sep, attr = path.partition(":")
    if not sep:
        raise ConfigError(f"{what} {path!r} is not of the form 'module:Name'")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"{what} {path!r}: cannot import {module} ({e})") from e
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise ConfigError(f"{what} {path!r}: {module} has no {attr}") from None


def venue_rules(name: str | None, venue: str) -> VenueRules:
    """The order rules called ``name`` (:data:`VENUE_RULES`), or (``None``) the venue's own
    when its name is one of them, else the generic rules."""
    key = name or (venue if venue in VENUE_RULES else "generic")
    if key not in VENUE_RULES:
        raise ConfigError(f"unknown venue rules {key!r} (known: {', '.join(VENUE_RULES)})")
    rules: VenueRules = load_object(VENUE_RULES[key], "venue rules")
    return rules


def strategy_class(cfg: Config, source: str = "<config>") -> Any:
    target = STRATEGIES.get(cfg.strategy.name, cfg.strategy.name)
    if ":" not in target:
        known = ", ".join(sorted(STRATEGIES))
        raise ConfigError(
            f"{source}: `$.strategy.name`: unknown strategy {cfg.strategy.name!r} "
            f"(known: {known}, or give 'module:Class')"
        )
    try:
        return load_object(target, "strategy")
    except ConfigError as e:
        raise ConfigError(f"{source}: `$.strategy.name`: {e}") from e


def strategy_params(cfg: Config, source: str = "<config>") -> Any:
    cls = strategy_class(cfg, source)
    params_type = getattr(cls, "Params", None)
    if params_type is None:
        return cfg.strategy.params
    try:
        return msgspec.convert(cfg.strategy.params, type=params_type, strict=False)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{source}: {_validation_message(e, 'strategy.params')}") from e
