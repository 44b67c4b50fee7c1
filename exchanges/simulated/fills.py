"""How a simulated venue fills orders: one object built from a :class:`SimulatedFills`
config, shared by the replay and paper venues (and the only place that builds their
matching engines)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.errors import ConfigError
from arbsim.core.model import Instrument
from arbsim.core.rules import GENERIC_RULES, VenueRules
from arbsim.runtime.latency import ConstantLatency, LatencyModel, build_latency
from exchanges.simulated.config import FaultConfig, SimulatedFills
from exchanges.simulated.matching import Account, MatchingEngine, QueueModel

Fault = Literal["lost_answer", "timeout"]


class FaultModel:
    """Draws, per request, whether its answer is lost or it times out (seeded)."""

    def __init__(self, cfg: FaultConfig | None = None) -> None:
        self.cfg = cfg or FaultConfig()
        self._rng = random.Random(self.cfg.seed)

    def draw(self, kind: str) -> Fault | None:
        lost = self.cfg.lost_answer.get(kind, 0.0)
        timeout = self.cfg.timeout.get(kind, 0.0)
        if lost == 0.0 and timeout == 0.0:
            return None
        r = self._rng.random()
        if r < lost:
            return "lost_answer"
        if r < lost + timeout:
            return "timeout"
        return None


@dataclass
class FillModel:
    """Balances, latency, order rules, queue model and liquidity options of one
    simulated venue.

    Attributes
    ----------
    balances:
        The account's start balances.
    latency:
        Order-path latency per request kind.
    rules:
        The venue's order rules (codes, post-only, fee currency, rate limits).
    queue:
        Queue position of resting orders (one seeded model per venue).
    consume_liquidity, max_open_orders, impact:
        As in the venue config (``impact``: bps per depth share, decay ns, levels).
    fee_overrides:
        ``maker_fee`` / ``taker_fee`` replacing the instrument's rates.
    feed_offset_ns:
        Added to the recorded feed latency of the strategy's view.
    faults:
        Requests whose answer is lost or that time out (unknown outcomes).
    """

    balances: Mapping[str, Decimal]
    latency: LatencyModel = field(default_factory=lambda: ConstantLatency(0, 0))
    rules: VenueRules = GENERIC_RULES
    queue: QueueModel = field(default_factory=QueueModel)
    consume_liquidity: bool = True
    max_open_orders: int | None = None
    impact: tuple[float, int, int] = (0.0, 0, 10)
    fee_overrides: Mapping[str, Decimal] = field(default_factory=dict)
    feed_offset_ns: int = 0
    faults: FaultModel = field(default_factory=FaultModel)
    _order_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    @classmethod
    def from_config(cls, cfg: SimulatedFills, rules: VenueRules) -> FillModel:
        """The fill model a venue config describes (ConfigError naming the venue)."""
        try:
            latency = build_latency(cfg.latency, cfg.name)
        except ValueError as e:
            raise ConfigError(f"venue {cfg.name}: latency: {e}") from e
        q = cfg.queue
        return cls(
            balances=cfg.balances,
            latency=latency,
            rules=rules,
            queue=QueueModel(q.model, q.power, q.stochastic, q.seed),
            consume_liquidity=cfg.consume_liquidity,
            max_open_orders=cfg.max_open_orders,
            impact=(cfg.impact.bps_per_depth, int(cfg.impact.decay_ms * 1e6), cfg.impact.levels),
            fee_overrides=cfg.fees.overrides(),
            feed_offset_ns=int(cfg.feed_offset_ms * 1e6),
            faults=FaultModel(cfg.faults),
        )

    def account(self, venue: str) -> Account:
        return Account(venue, self.balances)

    def instrument(self, inst: Instrument, venue: str) -> Instrument:
        """``inst`` with the configured fee rates, named after ``venue``."""
        return msgspec.structs.replace(inst, venue=venue, **dict(self.fee_overrides))

    def engine(self, inst: Instrument, book: OrderBook, account: Account) -> MatchingEngine:
        """The matching engine of one instrument, on the exchange-side ``book``."""
        return MatchingEngine(
            inst,
            book,
            account,
            codes=self.rules.codes,
            order_ids=self._order_ids,
            consume_liquidity=self.consume_liquidity,
            post_only_cross=self.rules.post_only_cross,
            fee_currency=self.rules.fee_currency,
            market_buy_in_quote=self.rules.market_buy_in_quote,
            max_open_orders=self.max_open_orders,
            queue=self.queue,
            impact_bps_per_depth=self.impact[0],
            impact_decay_ns=self.impact[1],
            impact_levels=self.impact[2],
        )

    def describe(self) -> dict[str, str]:
        return {
            "latency": self.latency.describe(),
            "rules": self.rules.name,
            "queue": self.queue.describe(),
        }
