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

from arbsim.core.ports import VenueConfig
from arbsim.runtime.latency import LatencyConfig


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A config section: immutable, unknown keys rejected."""


class FeeRates(_Section, frozen=True):
    maker_fee: Decimal
    taker_fee: Decimal


class FeeConfig(_Section, frozen=True):
    """Fee rates overriding the instrument's: directly, or by naming one of ``tiers``."""

    maker_fee: Decimal | None = None
    taker_fee: Decimal | None = None
    tier: str | None = None
    tiers: dict[str, FeeRates] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
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


class QueueConfig(_Section, frozen=True):
    """Queue position of resting orders: ``risk_averse`` | ``prob_power`` | ``prob_log``."""

    model: Literal["risk_averse", "prob_power", "prob_log"] = "risk_averse"
    power: float = 2.0
    stochastic: bool = False
    seed: int = 0


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


class ReplayConfig(SimulatedFills, frozen=True, tag="replay"):
    """A venue replayed from the backtest's catalog (data under the venue's name)."""


class PaperConfig(SimulatedFills, frozen=True, tag="paper"):
    """Simulated fills on the live public data of ``exchange`` (default: the venue's
    name), e.g. ``mexc`` or ``gateio``, from its real endpoints unless given."""

    exchange: str | None = None
    rest_url: str | None = None
    ws_url: str | None = None
