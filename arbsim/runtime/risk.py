"""Pre-trade risk: a gate in front of execution (a failed check is a denial, not a crash).

Checks: per-asset position, per-venue position and exposure, total exposure, max order
notional, open orders, order rate, daily loss (trips a circuit breaker that stays
tripped), stale market data.
Every denial is counted by reason and kept with its time for the run outputs.
"""

from __future__ import annotations

from collections import Counter, deque
from decimal import Decimal
from typing import Protocol

import msgspec

from arbsim.core.checks import non_negative, non_negative_map, positive
from arbsim.core.errors import ArbsimError
from arbsim.core.ports import VenueHealth


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits, in base units for positions and quote units for money."""

    max_position: dict[str, Decimal] = msgspec.field(default_factory=dict)
    #: per venue and asset: the largest change of the venue's balance of a base asset
    #: since the start, either way (base units)
    max_position_by_venue: dict[str, dict[str, Decimal]] = msgspec.field(default_factory=dict)
    #: per venue: the largest value (quote, at the marks) of the venue's changes of every
    #: base asset since the start, summed as absolute values
    max_notional_by_venue: dict[str, Decimal] = msgspec.field(default_factory=dict)
    max_total_exposure: Decimal = Decimal(100_000)
    max_order_notional: Decimal = Decimal(50_000)
    max_open_orders: int = 10
    max_orders_per_s: float = 10.0
    max_daily_loss: Decimal = Decimal(1_000)
    max_one_sided: Decimal = Decimal("0.5")
    stale_data_s: float = 5.0
    #: an order whose answer never came is queried for this long before it is declared
    #: unresolved (its venue then takes no new entries until it is resolved)
    resolve_timeout_s: float = 30.0
    #: retries of a request that is not an order while the venue fails temporarily
    request_retries: int = 5
    #: a venue whose API failed this many times within the window takes no new entries
    api_failures: int = 5
    api_failure_window_s: float = 60.0

    def __post_init__(self) -> None:
        non_negative_map("max_position", self.max_position)
        for venue, caps in self.max_position_by_venue.items():
            non_negative_map(f"max_position_by_venue.{venue}", caps)
        non_negative_map("max_notional_by_venue", self.max_notional_by_venue)
        non_negative(
            max_total_exposure=self.max_total_exposure,
            max_order_notional=self.max_order_notional,
            max_open_orders=self.max_open_orders,
            max_daily_loss=self.max_daily_loss,
            max_one_sided=self.max_one_sided,
            request_retries=self.request_retries,
        )
        positive(
            max_orders_per_s=self.max_orders_per_s,
            stale_data_s=self.stale_data_s,
            resolve_timeout_s=self.resolve_timeout_s,
            api_failures=self.api_failures,
            api_failure_window_s=self.api_failure_window_s,
        )


class RiskDenied(ArbsimError):
    """Raised by the order gate when a check fails; ``reason`` is the counter key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"risk denied ({reason}): {detail}")
        self.reason = reason
        self.detail = detail


class Denial(msgspec.Struct, frozen=True):
    ts: int
    reason: str
    detail: str


class RiskListener(Protocol):
    """Who hears of each denial and of the breaker tripping (the operations layer of a
    paper / live run; a backtest has none)."""

    def denial(self, denial: Denial) -> None: ...

    def tripped(self, ts: int, reason: str) -> None: ...


class RiskState(msgspec.Struct, kw_only=True):
    """What the risk gate must remember across a restart."""

    breaker_reason: str | None = None
    breaker_ts: int | None = None
    day: int | None = None
    day_start_pnl: float = 0.0


class RiskManager:
    """Holds limits and the running state the checks need.

    ``positions`` and ``exposure`` are provided by the caller from the engine's
    ledger (fresh from fills), so the manager never caches venue state itself.
    """

    def __init__(self, limits: RiskLimits, listener: RiskListener | None = None):
        self.limits = limits
        self.listener = listener
        self.denials: list[Denial] = []
        self.counts: Counter[str] = Counter()
        self.breaker_reason: str | None = None
        self.breaker_ts: int | None = None
        self._order_times: deque[int] = deque()
        self.open_orders = 0
        self._day: int | None = None
        self._day_start_pnl = 0.0
        #: venue -> why it takes no new entries (orders whose outcome is unknown)
        self.blocked: dict[str, dict[str, str]] = {}
        self._failures: dict[str, deque[int]] = {}

    @property
    def tripped(self) -> bool:
        return self.breaker_reason is not None

    def deny(self, ts: int, reason: str, detail: str) -> Denial:
        d = Denial(ts, reason, detail)
        self.denials.append(d)
        self.counts[reason] += 1
        if self.listener is not None:
            self.listener.denial(d)
        return d

    def trip(self, ts: int, reason: str) -> None:
        """Open the circuit breaker: nothing new is traded until the run ends."""
        if self.breaker_reason is None:
            self.breaker_reason = reason
            self.breaker_ts = ts
            if self.listener is not None:
                self.listener.tripped(ts, reason)

    # ------------------------------------------------------------ venue health
    def api_failure(self, venue: str, ts: int) -> None:
        """Count a failed API call (5xx, timeout, lost connection, rate limit)."""
        self._failures.setdefault(venue, deque()).append(ts)

    def _recent_failures(self, venue: str, ts: int) -> int:
        q = self._failures.get(venue)
        if not q:
            return 0
        while q and q[0] <= ts - int(self.limits.api_failure_window_s * 1e9):
            q.popleft()
        return len(q)

    def block(self, venue: str, key: str, reason: str) -> None:
        """No new entries on ``venue`` until :meth:`unblock` of ``key``."""
        self.blocked.setdefault(venue, {})[key] = reason

    def unblock(self, venue: str, key: str) -> None:
        reasons = self.blocked.get(venue, {})
        reasons.pop(key, None)
        if not reasons:
            self.blocked.pop(venue, None)

    def check_venue(self, ts: int, venue: str, health: VenueHealth) -> Denial | None:
        """A venue with a stream down, an unresolved order or too many recent API failures
        is unhealthy: no new entries there."""
        if not health.ok:
            return self.deny(ts, "venue_down", f"{venue}: {health.detail or 'stream down'}")
        if venue in self.blocked:
            why = "; ".join(self.blocked[venue].values())
            return self.deny(ts, "venue_blocked", f"{venue}: {why}")
        n = self._recent_failures(venue, ts)
        if n >= self.limits.api_failures:
            return self.deny(
                ts,
                "venue_failing",
                f"{venue}: {n} API failures in {self.limits.api_failure_window_s:g}s",
            )
        return None

    # ------------------------------------------------------------ checks
    def check_data(self, ts: int, book_ts_local: int, venue: str) -> Denial | None:
        age_s = (ts - book_ts_local) / 1e9
        if age_s > self.limits.stale_data_s:
            return self.deny(ts, "stale_data", f"{venue} book is {age_s:.3f}s old")
        return None

    def check_trade(
        self,
        ts: int,
        *,
        asset: str,
        position_after: Decimal,
        exposure_after: Decimal,
    ) -> Denial | None:
        """Checks before committing to a two-leg trade."""
        if self.tripped:
            return self.deny(ts, "circuit_breaker", f"tripped: {self.breaker_reason}")
        cap = self.limits.max_position.get(asset)
        if cap is not None and abs(position_after) > cap:
            return self.deny(ts, "position", f"{asset} position {position_after} > {cap}")
        if exposure_after > self.limits.max_total_exposure:
            return self.deny(
                ts, "exposure", f"exposure {exposure_after:.2f} > {self.limits.max_total_exposure}"
            )
        return None

    def check_venue_trade(
        self,
        ts: int,
        *,
        venue: str,
        asset: str,
        position_after: Decimal,
        notional_after: Decimal,
    ) -> Denial | None:
        """The per-venue limits: ``venue``'s change of ``asset`` since the start, and the
        value of all its changes, after the order."""
        cap = self.limits.max_position_by_venue.get(venue, {}).get(asset)
        if cap is not None and abs(position_after) > cap:
            return self.deny(
                ts, "venue_position", f"{venue} {asset} position {position_after} > {cap}"
            )
        limit = self.limits.max_notional_by_venue.get(venue)
        if limit is not None and notional_after > limit:
            return self.deny(
                ts, "venue_exposure", f"{venue} exposure {notional_after:.2f} > {limit}"
            )
        return None

    def check_order(self, ts: int, notional: Decimal, *, reducing: bool = False) -> None:
        """The order gate: raises :class:`RiskDenied`. Risk-reducing orders (hedges,
        unwinds) pass the breaker and exposure checks but still respect the order rate."""
        lim = self.limits
        if self.tripped and not reducing:
            d = self.deny(ts, "circuit_breaker", f"tripped: {self.breaker_reason}")
            raise RiskDenied(d.reason, d.detail)
        if notional > lim.max_order_notional and not reducing:
            d = self.deny(ts, "order_notional", f"{notional:.2f} > {lim.max_order_notional}")
            raise RiskDenied(d.reason, d.detail)
        if self.open_orders >= lim.max_open_orders:
            d = self.deny(ts, "open_orders", f"{self.open_orders} open >= {lim.max_open_orders}")
            raise RiskDenied(d.reason, d.detail)
        window = 1_000_000_000
        q = self._order_times
        while q and q[0] <= ts - window:
            q.popleft()
        if len(q) >= lim.max_orders_per_s:
            d = self.deny(ts, "order_rate", f"{len(q)} orders in the last second")
            raise RiskDenied(d.reason, d.detail)
        q.append(ts)

    def state(self) -> RiskState:
        return RiskState(
            breaker_reason=self.breaker_reason,
            breaker_ts=self.breaker_ts,
            day=self._day,
            day_start_pnl=self._day_start_pnl,
        )

    def restore(self, state: RiskState) -> None:
        """The breaker, the daily-loss baseline of an earlier process of this run: a
        crash and restart does not reset them."""
        self.breaker_reason = state.breaker_reason
        self.breaker_ts = state.breaker_ts
        self._day = state.day
        self._day_start_pnl = state.day_start_pnl

    def on_pnl(self, ts: int, pnl: float) -> None:
        """Feed the running net PnL; trips the breaker past the daily loss limit."""
        day = ts // 86_400_000_000_000
        if day != self._day:
            self._day = day
            self._day_start_pnl = pnl
        loss = self._day_start_pnl - pnl
        if loss > float(self.limits.max_daily_loss):
            self.trip(ts, f"daily loss {loss:.2f} > {self.limits.max_daily_loss}")
