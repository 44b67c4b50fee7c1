"""Config of the simulated venues: what a replay (backtest) or paper venue is told about
balances, latency, fees, queue position, liquidity, impact and the venue's order rules.

Both kinds share :class:`SimulatedFills`; a replay venue adds nothing, a paper venue names
the exchange whose public market data it matches against and, optionally, its endpoints.
Validation lives in the types (``__post_init__``), so an error names its key path.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from arbsim.core.checks import at_least, at_most, non_negative, non_negative_map, positive
from arbsim.core.ports import VenueConfig
from arbsim.core.transfers import TransferRoute
from arbsim.runtime.latency import REQUEST_KINDS, LatencyConfig


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A config section: immutable, unknown keys rejected."""


def _check_fees(maker_fee: Decimal | None, taker_fee: Decimal | None) -> None:
    """A taker pays (0 <= taker < 1); a maker may get a rebate (-1 < maker < 1)."""
    at_least("taker_fee", taker_fee, 0)
    at_most("taker_fee", taker_fee, 1, strict=True)
    at_least("maker_fee", maker_fee, -1, strict=True)
    at_most("maker_fee", maker_fee, 1, strict=True)


class FeeRates(_Section, frozen=True):
    maker_fee: Decimal
    taker_fee: Decimal

    def __post_init__(self) -> None:
        _check_fees(self.maker_fee, self.taker_fee)


class FeeConfig(_Section, frozen=True):
    """Fee rates overriding the instrument's: directly, or by naming one of ``tiers``."""

    maker_fee: Decimal | None = None
    taker_fee: Decimal | None = None
    tier: str | None = None
    tiers: dict[str, FeeRates] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_fees(self.maker_fee, self.taker_fee)
        if self.tier is not None and self.tier not in self.tiers:
            known = ", ".join(self.tiers) or "none defined"
            raise ValueError(f"tier {self.tier!r} is not one of `tiers` ({known})")

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


class ImpactConfig(_Section, frozen=True):
    """Temporary market impact of our own takers (off while ``bps_per_depth`` is 0):
    taking a share q of the top ``levels``' displayed depth moves that side away by
    ``bps_per_depth * q`` bps for ``decay_ms``."""

    bps_per_depth: float = 0.0
    decay_ms: float = 0.0
    levels: int = 10

    def __post_init__(self) -> None:
        non_negative(bps_per_depth=self.bps_per_depth, decay_ms=self.decay_ms)
        positive(levels=self.levels)


class QueueConfig(_Section, frozen=True):
    """Queue position of resting orders: ``risk_averse`` | ``prob_power`` | ``prob_log``."""

    model: Literal["risk_averse", "prob_power", "prob_log"] = "risk_averse"
    power: float = 2.0
    stochastic: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        positive(power=self.power)


class FaultConfig(_Section, frozen=True):
    """Requests whose answer the client never gets (off by default), per request kind
    (place, cancel, fetch_order, fetch_balances, open_orders): with probability
    ``lost_answer[kind]`` the request reaches the exchange and takes effect but its answer
    is lost (the private stream still reports what happened); with probability
    ``timeout[kind]`` it is lost on the way and the client gives up after ``timeout_s``.
    Either way the client sees an unknown outcome and must query. Seeded."""

    lost_answer: dict[str, float] = msgspec.field(default_factory=dict)
    timeout: dict[str, float] = msgspec.field(default_factory=dict)
    timeout_s: float = 2.0
    seed: int = 0
    #: the private stream reports what a request with a lost answer did (false: it
    #: misses those too, and only a query can tell)
    witness: bool = True

    def __post_init__(self) -> None:
        kinds = set(REQUEST_KINDS) - {"push"}
        for name, table in (("lost_answer", self.lost_answer), ("timeout", self.timeout)):
            for kind, prob in table.items():
                if kind not in kinds:
                    raise ValueError(
                        f"{name}: unknown request kind {kind!r} (known: {', '.join(sorted(kinds))})"
                    )
                if not 0.0 <= prob <= 1.0:
                    raise ValueError(f"{name}.{kind}: must be in [0, 1], got {prob}")
        for kind in set(self.lost_answer) | set(self.timeout):
            if self.lost_answer.get(kind, 0.0) + self.timeout.get(kind, 0.0) > 1.0:
                raise ValueError(f"{kind}: lost_answer + timeout exceeds 1")
        positive(timeout_s=self.timeout_s)


class SimulatedFills(VenueConfig, frozen=True):
    """What every simulated venue is configured with (field order is the config's)."""

    balances: dict[str, Decimal]
    latency: LatencyConfig = LatencyConfig()
    fees: FeeConfig = FeeConfig()
    #: shifts the recorded feed latency: a strategy running further away sees data later
    feed_offset_ms: float = 0.0
    #: order rules and rejection codes: generic, or an exchange's own (mexc, gateio, ...);
    #: default: the venue's own when an exchange of its name is known, else generic
    rules: str | None = None
    queue: QueueConfig = QueueConfig()
    #: our taker fills hide the displayed size they took until the data refreshes it
    consume_liquidity: bool = True
    max_open_orders: int | None = None
    impact: ImpactConfig = ImpactConfig()
    #: unknown outcomes (lost answers, timeouts) to exercise their resolution
    faults: FaultConfig = FaultConfig()
    #: withdrawal routes on the run's simulated transfer network: asset -> network ->
    #: fee, minimum, step, enabled, delay (none: this venue sends no withdrawals)
    transfers: dict[str, dict[str, TransferRoute]] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        non_negative_map("balances", self.balances)
        for asset, nets in self.transfers.items():
            if not asset or not nets:
                raise ValueError(f"transfers.{asset}: must be one network or more, got none")
        positive(max_open_orders=self.max_open_orders)


class ReplayConfig(SimulatedFills, frozen=True, tag="replay"):
    """A venue replayed from the backtest's catalog (data under the venue's name)."""


class PaperConfig(SimulatedFills, frozen=True, tag="paper"):
    """Simulated fills on the live public data of ``exchange`` (default: the venue's
    name), e.g. ``mexc`` or ``gateio``, from its real endpoints unless given."""

    exchange: str | None = None
    rest_url: str | None = None
    ws_url: str | None = None
