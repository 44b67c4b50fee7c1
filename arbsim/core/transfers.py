"""The simulated transfer network of a run: withdrawals between simulated venue accounts.

One :class:`TransferNetwork` is shared by the simulated venues of a run (replay venues on
the backtest's virtual time, paper venues on the wall clock). Each venue joins it with its
exact account and its withdrawal routes (config ``venues[].transfers``: per asset and
network a :class:`TransferRoute` — fee, minimum, step, enabled — and a
:class:`DelayConfig`, the distribution the time in flight is drawn from, seeded so that a
backtest is deterministic). A venue implements
:class:`~arbsim.core.ports.TransferVenue` on top of it:

- ``withdraw`` is refused like a venue refuses (disabled route, amount off the step
  grid or below the minimum, an address no account of the network owns, not enough
  free balance); accepted, the source account pays ``amount + fee`` at once (status
  ``sent``) and the funds are in flight, in no account;
- after the drawn delay (a timer on the run's clock) the destination account is credited
  ``amount`` and the transfer is ``arrived``; the destination lists it as a deposit.

A deposit address exists for every account and every (asset, network) some venue of the
network has a route for. The withdrawal request itself takes no modelled latency.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Protocol

import msgspec

from arbsim.core.checks import non_negative, positive
from arbsim.core.errors import BelowMinimum, InsufficientBalance, InvalidOrder, PrecisionError
from arbsim.core.model import (
    ZERO,
    Deposit,
    Transfer,
    TransferStatus,
    WithdrawalTerms,
    WithdrawRequest,
)
from arbsim.core.ports import Clock

__all__ = [
    "DelayConfig",
    "TransferAccount",
    "TransferNetwork",
    "TransferRoute",
    "UnknownWithdrawal",
]


class DelayConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How long a withdrawal is in flight, in seconds: ``fixed`` (``seconds``),
    ``uniform`` (between ``low_s`` and ``high_s``), ``lognormal`` (median ``median_s``,
    shape ``sigma``) or ``empirical`` (drawn from ``samples_s``). Draws are seeded by
    ``seed`` and the route (venue, asset, network)."""

    kind: Literal["fixed", "uniform", "lognormal", "empirical"] = "fixed"
    seconds: float = 60.0
    low_s: float = 0.0
    high_s: float = 0.0
    median_s: float = 60.0
    sigma: float = 0.5
    samples_s: list[float] = msgspec.field(default_factory=list)
    seed: int = 0

    def __post_init__(self) -> None:
        non_negative(seconds=self.seconds, low_s=self.low_s, sigma=self.sigma)
        positive(median_s=self.median_s)
        if self.kind == "uniform" and self.high_s < self.low_s:
            raise ValueError(f"high_s: must be >= low_s ({self.low_s}), got {self.high_s}")
        if self.kind == "empirical":
            if not self.samples_s:
                raise ValueError("samples_s: an empirical delay needs at least one sample")
            bad = [s for s in self.samples_s if not s >= 0]
            if bad:
                raise ValueError(f"samples_s: must be >= 0 each, got {bad[0]}")

    def sampler(self, key: str) -> Callable[[], int]:
        """A seeded draw of the delay in ns (``key``: the route, so routes differ)."""
        rng = random.Random(f"{self.seed}:{key}")
        if self.kind == "fixed":
            ns = round(self.seconds * 1e9)
            return lambda: ns
        if self.kind == "uniform":
            lo, hi = self.low_s, self.high_s
            return lambda: round(rng.uniform(lo, hi) * 1e9)
        if self.kind == "lognormal":
            mu, sigma = math.log(self.median_s), self.sigma
            return lambda: round(rng.lognormvariate(mu, sigma) * 1e9)
        samples = list(self.samples_s)
        return lambda: round(rng.choice(samples) * 1e9)

    def describe(self) -> str:
        match self.kind:
            case "fixed":
                return f"fixed({self.seconds:g}s)"
            case "uniform":
                return f"uniform({self.low_s:g}-{self.high_s:g}s)"
            case "lognormal":
                return f"lognormal(median={self.median_s:g}s, sigma={self.sigma:g})"
            case _:
                return f"empirical({len(self.samples_s)} samples)"


class TransferRoute(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Withdrawing one asset over one network from a simulated venue (config
    ``venues[].transfers.<ASSET>.<NETWORK>``): ``fee`` (in the asset, on top of the
    amount), ``minimum`` amount, amounts a whole number of ``step``, ``enabled``, and the
    ``delay`` in flight."""

    fee: Decimal = ZERO
    minimum: Decimal = ZERO
    step: Decimal = Decimal("1e-8")
    enabled: bool = True
    delay: DelayConfig = DelayConfig()

    def __post_init__(self) -> None:
        non_negative(fee=self.fee, minimum=self.minimum)
        positive(step=self.step)


class TransferAccount(Protocol):
    """The exact account a simulated venue matches on (free balances)."""

    def get_free(self, asset: str) -> Decimal: ...

    def add(self, asset: str, amount: Decimal) -> None: ...


class UnknownWithdrawal(InvalidOrder):
    """No withdrawal with that client id at this venue."""


@dataclass
class _Member:
    account: TransferAccount
    routes: Mapping[str, Mapping[str, TransferRoute]]
    draws: dict[tuple[str, str], Callable[[], int]] = field(default_factory=dict)
    withdrawals: dict[str, Transfer] = field(default_factory=dict)
    deposits: list[Deposit] = field(default_factory=list)


class TransferNetwork:
    """The accounts of a run's simulated venues and the withdrawals between them.

    ``schedule(ts_ns, fn)`` runs ``fn`` at ``ts_ns`` on the run's clock (the app builds
    it for the run's loop: :func:`arbsim.runtime.loop.scheduler`).
    """

    def __init__(self, clock: Clock, schedule: Callable[[int, Callable[[], None]], object]):
        self.clock = clock
        self.schedule = schedule
        self._members: dict[str, _Member] = {}
        self._owners: dict[str, tuple[str, str, str]] = {}
        self._ids = 0

    # ---------------------------------------------------------------- membership
    def join(
        self,
        venue: str,
        account: TransferAccount,
        routes: Mapping[str, Mapping[str, TransferRoute]],
    ) -> None:
        """Add ``venue``'s account with its withdrawal routes (asset -> network -> route)."""
        if venue in self._members:
            raise ValueError(f"venue {venue!r} joined the transfer network twice")
        self._members[venue] = _Member(account, routes)

    @property
    def venues(self) -> list[str]:
        return list(self._members)

    def _member(self, venue: str) -> _Member:
        try:
            return self._members[venue]
        except KeyError:
            raise InvalidOrder(
                f"{venue} is not on the run's transfer network", code="no_transfers", venue=venue
            ) from None

    def _route(self, venue: str, asset: str, network: str) -> TransferRoute:
        member = self._member(venue)
        route = member.routes.get(asset, {}).get(network)
        if route is None:
            known = [f"{a}/{n}" for a, nets in member.routes.items() for n in nets]
            raise InvalidOrder(
                f"{venue} has no withdrawal route for {asset} on {network} "
                f"(configured: {', '.join(known) or 'none'})",
                code="no_route",
                venue=venue,
            )
        return route

    # ---------------------------------------------------------------- venue side
    def terms(self, venue: str, asset: str, network: str) -> WithdrawalTerms:
        route = self._route(venue, asset, network)
        return WithdrawalTerms(
            venue=venue,
            asset=asset,
            network=network,
            fee=route.fee,
            minimum=route.minimum,
            step=route.step,
            enabled=route.enabled,
        )

    def address(self, venue: str, asset: str, network: str) -> str:
        """``venue``'s deposit address for ``asset`` on ``network``."""
        self._member(venue)
        if not any(network in m.routes.get(asset, {}) for m in self._members.values()):
            raise InvalidOrder(
                f"no venue of the network withdraws {asset} on {network}: no deposit address",
                code="no_route",
                venue=venue,
            )
        addr = f"sim:{venue}:{asset}:{network}"
        self._owners[addr] = (venue, asset, network)
        return addr

    def withdraw(self, venue: str, req: WithdrawRequest) -> Transfer:
        """Send a withdrawal from ``venue`` (refused as a venue refuses it)."""
        member = self._member(venue)
        known = member.withdrawals.get(req.client_id)
        if known is not None:  # the same client id again: the venue's own record
            return msgspec.structs.replace(known)
        route = self._route(venue, req.asset, req.network)
        if not route.enabled:
            raise InvalidOrder(
                f"{venue}: withdrawals of {req.asset} on {req.network} are disabled",
                code="withdraw_disabled",
                venue=venue,
            )
        if req.amount <= 0 or req.amount % route.step != 0:
            raise PrecisionError(
                f"{venue}: amount {req.amount} is not a positive multiple of {route.step}",
                code="withdraw_step",
                venue=venue,
            )
        if req.amount < route.minimum:
            raise BelowMinimum(
                f"{venue}: amount {req.amount} {req.asset} is below the minimum {route.minimum}",
                code="withdraw_minimum",
                venue=venue,
            )
        owner = self._owners.get(req.address)
        if owner is None or owner[1:] != (req.asset, req.network):
            raise InvalidOrder(
                f"{venue}: {req.address!r} is not a {req.asset} address on {req.network}",
                code="unknown_address",
                venue=venue,
            )
        if owner[0] == venue:
            raise InvalidOrder(
                f"{venue}: a withdrawal to the same account", code="unknown_address", venue=venue
            )
        total = req.amount + route.fee
        free = member.account.get_free(req.asset)
        if free < total:
            raise InsufficientBalance(
                f"{venue}: {total} {req.asset} (amount + fee {route.fee}) > free {free}",
                code="withdraw_balance",
                venue=venue,
            )
        now = self.clock.now_ns()
        member.account.add(req.asset, -total)
        self._ids += 1
        draw = member.draws.get((req.asset, req.network))
        if draw is None:
            draw = route.delay.sampler(f"{venue}:{req.asset}:{req.network}")
            member.draws[req.asset, req.network] = draw
        due = now + max(0, draw())
        tr = Transfer(
            client_id=req.client_id,
            venue=venue,
            asset=req.asset,
            amount=req.amount,
            fee=route.fee,
            network=req.network,
            address=req.address,
            status=TransferStatus.SENT,
            ts_requested=now,
            ts_updated=now,
            venue_id=f"w{self._ids}",
            tx_id=f"simtx{self._ids}",
            memo=req.memo,
        )
        member.withdrawals[req.client_id] = tr
        self.schedule(due, lambda: self._arrive(tr, owner[0], due))
        return msgspec.structs.replace(tr)

    def _arrive(self, tr: Transfer, destination: str, ts: int) -> None:
        dst = self._members[destination]
        dst.account.add(tr.asset, tr.amount)
        dst.deposits.append(
            Deposit(
                venue=destination,
                asset=tr.asset,
                amount=tr.amount,
                network=tr.network,
                address=tr.address,
                tx_id=tr.tx_id or "",
                credited=True,
                ts=ts,
            )
        )
        tr.status = TransferStatus.ARRIVED
        tr.ts_updated = ts

    def withdrawal(self, venue: str, client_id: str) -> Transfer:
        tr = self._member(venue).withdrawals.get(client_id)
        if tr is None:
            raise UnknownWithdrawal(
                f"{venue}: no withdrawal {client_id!r}", code="withdraw_not_found", venue=venue
            )
        return msgspec.structs.replace(tr)

    def deposits(self, venue: str, asset: str | None, since_ns: int) -> list[Deposit]:
        return [
            d
            for d in self._member(venue).deposits
            if d.ts >= since_ns and (asset is None or d.asset == asset)
        ]

    def in_flight(self) -> list[Transfer]:
        """Every withdrawal sent and not arrived yet."""
        return [
            msgspec.structs.replace(t)
            for m in self._members.values()
            for t in m.withdrawals.values()
            if t.status is TransferStatus.SENT
        ]

    def describe(self, venue: str) -> str:
        """``venue``'s routes in a line ("" when it has none)."""
        member = self._members.get(venue)
        if member is None:
            return ""
        parts = [
            f"{a}/{n} fee {r.fee} min {r.minimum} {r.delay.describe()}"
            for a, nets in member.routes.items()
            for n, r in nets.items()
        ]
        return "; ".join(parts)
