"""The transfer network the simulated venues of one simulator share: deposit addresses,
withdrawals and deposits.

Every account of every venue has one deposit address per configured route (asset and
network, :class:`~exchanges.sim.config.TransferRoute`). A withdrawal follows the venues'
own convention: its ``amount`` includes the fee. Its life, on the exchange clock:

1. accepted (``held``): ``amount`` moves from free to locked at the source; it can be
   cancelled (the funds come back);
2. after the route's ``send_s`` it leaves (``sent``): the locked ``amount`` is debited at
   the source; a deposit of ``amount - fee`` appears, not yet credited, at the account
   that owns the address;
3. after the route's delay (drawn from the simulator's seeded generator when the
   withdrawal is accepted) it arrives (``arrived``): the destination is credited.

Funds in flight are in neither account. A withdrawal to an address no simulated account
owns leaves the source and never arrives anywhere, as to an external wallet.

State moves lazily: :meth:`TransferNetwork.advance` applies every step due by the
exchange clock, in time order; the venue servers call it before every request, so every
answer (and ``/_sim/ledger``) sees the network as of its own time.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Literal

import msgspec

from arbsim.core.model import ZERO
from arbsim.core.rules import Rejection, SimError
from exchanges.sim.config import DelayConfig, TransferRoute
from exchanges.sim.errors import SimReject
from exchanges.simulated.matching import Account

__all__ = ["SimDeposit", "SimWithdrawal", "Stage", "TransferNetwork", "draw_delay_s"]

Stage = Literal["held", "sent", "arrived", "cancelled"]

_S = 1_000_000_000


def draw_delay_s(delay: DelayConfig, rng: random.Random) -> float:
    """One delay (seconds) from ``delay``'s distribution."""
    if delay.kind == "fixed":
        return delay.seconds
    if delay.kind == "uniform":
        return rng.uniform(delay.low_s, delay.high_s)
    return delay.median_s * math.exp(rng.gauss(0.0, delay.sigma))


class SimWithdrawal(msgspec.Struct, kw_only=True):
    """A withdrawal as the source venue keeps it (times: exchange-clock ns)."""

    wid: int
    venue: str
    api_key: str
    client_id: str | None
    remark: str
    asset: str
    network: str
    address: str
    memo: str
    amount: Decimal
    """The venue's amount: debited at the source, fee included."""
    fee: Decimal
    ts_apply: int
    ts_send: int
    ts_arrive: int
    tx_id: str
    stage: Stage = "held"
    ts_updated: int = 0
    dest_venue: str | None = None
    dest_key: str | None = None

    @property
    def received(self) -> Decimal:
        """What the address receives."""
        return self.amount - self.fee


class SimDeposit(msgspec.Struct, kw_only=True):
    """A deposit as the destination venue keeps it (appears when the withdrawal leaves)."""

    did: int
    venue: str
    api_key: str
    asset: str
    network: str
    address: str
    memo: str
    amount: Decimal
    tx_id: str
    wid: int
    ts_seen: int
    ts_credit: int
    credited: bool = False


class TransferNetwork:
    """Deposit addresses, withdrawals and deposits of every simulated venue.

    Parameters
    ----------
    routes:
        The configured routes (asset, network) with fee, minimum, step and delays.
    now_ns:
        The exchange clock.
    seed:
        Seed of the delay generator.
    """

    def __init__(self, routes: list[TransferRoute], now_ns: Callable[[], int], seed: int = 0):
        self.routes = {(r.asset, r.network): r for r in routes}
        self.now_ns = now_ns
        self.rng = random.Random(seed)
        self.accounts: dict[str, dict[str, Account]] = {}
        self.withdrawals: list[SimWithdrawal] = []
        self.deposits: list[SimDeposit] = []
        self._owners: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._wids = itertools.count(1)
        self._dids = itertools.count(1)

    # ------------------------------------------------------------------ set-up
    def register(self, venue: str, accounts: dict[str, Account]) -> None:
        """Give every account of ``venue`` its deposit addresses."""
        self.accounts[venue] = accounts
        for api_key in accounts:
            for asset, network in self.routes:
                address = self.address(venue, api_key, asset, network)
                self._owners[(asset, network, address)] = (venue, api_key)

    @staticmethod
    def address(venue: str, api_key: str, asset: str, network: str) -> str:
        """The deposit address of an account for ``asset`` on ``network`` (stable: a
        digest of the four; the API key cannot be read back from it)."""
        digest = hashlib.sha256(f"{venue}|{api_key}|{asset}|{network}".encode()).hexdigest()
        return f"sim{network.lower()}{digest[:32]}"

    def route(self, asset: str, network: str) -> TransferRoute:
        """The route of ``asset`` on ``network`` or an UNKNOWN_ASSET rejection."""
        route = self.routes.get((asset, network))
        if route is None:
            raise SimReject(SimError.UNKNOWN_ASSET, f"{asset} on {network or '(no network)'}")
        return route

    def networks(self, asset: str) -> list[TransferRoute]:
        """The routes of ``asset``."""
        return [r for (a, _), r in self.routes.items() if a == asset]

    def default_network(self, asset: str) -> str:
        """The first configured network of ``asset`` (a request without one uses it)."""
        routes = self.networks(asset)
        if not routes:
            raise SimReject(SimError.UNKNOWN_ASSET, asset)
        return routes[0].network

    def owner(self, asset: str, network: str, address: str) -> tuple[str, str] | None:
        """(venue, api key) of the account owning a deposit address, if simulated."""
        return self._owners.get((asset, network, address))

    # ------------------------------------------------------------------ requests
    def withdraw(
        self,
        venue: str,
        api_key: str,
        *,
        asset: str,
        network: str,
        address: str,
        amount: Decimal,
        memo: str = "",
        client_id: str | None = None,
        remark: str = "",
    ) -> SimWithdrawal:
        """Accept a withdrawal (``amount`` includes the fee) or raise :class:`SimReject`."""
        self.advance()
        route = self.route(asset, network)
        if not address:
            raise SimReject(SimError.MISSING_PARAM, "address")
        if amount % route.step != 0:
            raise SimReject(Rejection.PRECISION, f"amount {amount} (step {route.step})")
        if amount < route.minimum or amount <= route.fee:
            raise SimReject(
                Rejection.BELOW_MINIMUM,
                f"amount {amount} (minimum {route.minimum}, fee {route.fee})",
            )
        if client_id and any(
            w.client_id == client_id and w.venue == venue and w.api_key == api_key
            for w in self.withdrawals
        ):
            raise SimReject(SimError.BAD_PARAM, f"duplicate withdrawal id {client_id}")
        own = self.address(venue, api_key, asset, network)
        if address == own:
            raise SimReject(SimError.BAD_PARAM, "address (the account's own deposit address)")
        account = self._account(venue, api_key)
        if account.get_free(asset) < amount:
            raise SimReject(Rejection.INSUFFICIENT_BALANCE, asset)
        account.lock(asset, amount)
        now = self.now_ns()
        send = now + round(route.send_s * _S)
        arrive = send + round(draw_delay_s(route.delay, self.rng) * _S)
        wid = next(self._wids)
        owner = self.owner(asset, network, address)
        tx = hashlib.sha256(f"tx|{venue}|{wid}".encode()).hexdigest()
        w = SimWithdrawal(
            wid=wid,
            venue=venue,
            api_key=api_key,
            client_id=client_id or None,
            remark=remark,
            asset=asset,
            network=network,
            address=address,
            memo=memo,
            amount=amount,
            fee=route.fee,
            ts_apply=now,
            ts_send=send,
            ts_arrive=arrive,
            tx_id=tx,
            ts_updated=now,
            dest_venue=owner[0] if owner else None,
            dest_key=owner[1] if owner else None,
        )
        self.withdrawals.append(w)
        self.advance()  # send_s 0: it leaves at once
        return w

    def cancel(self, venue: str, api_key: str, wid: int) -> SimWithdrawal:
        """Cancel a withdrawal that has not left yet (its funds come back)."""
        self.advance()
        w = self.find(venue, api_key, wid)
        if w is None:
            raise SimReject(SimError.WITHDRAWAL_NOT_FOUND, str(wid))
        if w.stage != "held":
            raise SimReject(SimError.WITHDRAWAL_NOT_CANCELLABLE, str(wid))
        self._account(venue, api_key).unlock(w.asset, w.amount)
        w.stage = "cancelled"
        w.ts_updated = self.now_ns()
        return w

    def find(self, venue: str, api_key: str, wid: int) -> SimWithdrawal | None:
        """A withdrawal of the account by its id."""
        for w in self.withdrawals:
            if w.wid == wid and w.venue == venue and w.api_key == api_key:
                return w
        return None

    def of(self, venue: str, api_key: str) -> list[SimWithdrawal]:
        """The account's withdrawals, oldest first."""
        self.advance()
        return [w for w in self.withdrawals if w.venue == venue and w.api_key == api_key]

    def deposits_of(self, venue: str, api_key: str) -> list[SimDeposit]:
        """The account's deposits (credited or on their way), oldest first."""
        self.advance()
        return [d for d in self.deposits if d.venue == venue and d.api_key == api_key]

    # ------------------------------------------------------------------ time
    def advance(self) -> None:
        """Apply every step due by now, in time order (ties: withdrawal order)."""
        now = self.now_ns()
        while True:
            due: list[tuple[int, int, SimWithdrawal]] = []
            for w in self.withdrawals:
                if w.stage == "held" and w.ts_send <= now:
                    due.append((w.ts_send, w.wid, w))
                elif w.stage == "sent" and w.ts_arrive <= now:
                    due.append((w.ts_arrive, w.wid, w))
            if not due:
                return
            _, _, w = min(due, key=lambda d: (d[0], d[1]))
            if w.stage == "held":
                self._send(w)
            else:
                self._arrive(w)

    def _send(self, w: SimWithdrawal) -> None:
        self._account(w.venue, w.api_key).spend_locked(w.asset, w.amount)
        w.stage = "sent"
        w.ts_updated = w.ts_send
        if w.dest_venue is not None and w.dest_key is not None:
            self.deposits.append(
                SimDeposit(
                    did=next(self._dids),
                    venue=w.dest_venue,
                    api_key=w.dest_key,
                    asset=w.asset,
                    network=w.network,
                    address=w.address,
                    memo=w.memo,
                    amount=w.received,
                    tx_id=w.tx_id,
                    wid=w.wid,
                    ts_seen=w.ts_send,
                    ts_credit=w.ts_arrive,
                )
            )

    def _arrive(self, w: SimWithdrawal) -> None:
        w.stage = "arrived"
        w.ts_updated = w.ts_arrive
        if w.dest_venue is None or w.dest_key is None:
            return  # an external wallet: the funds left the simulation
        self._account(w.dest_venue, w.dest_key).add(w.asset, w.received)
        for d in self.deposits:
            if d.wid == w.wid:
                d.credited = True

    def _account(self, venue: str, api_key: str) -> Account:
        return self.accounts[venue][api_key]

    # ------------------------------------------------------------------ judging
    def ledger(self, venue: str, api_key: str) -> dict[str, list[dict[str, object]]]:
        """The account's withdrawals and deposits as the simulator keeps them (for
        ``GET /_sim/ledger``)."""
        return {
            "withdrawals": [
                {
                    "id": str(w.wid),
                    "client_id": w.client_id or "",
                    "asset": w.asset,
                    "network": w.network,
                    "address": w.address,
                    "amount": _text(w.amount),
                    "fee": _text(w.fee),
                    "received": _text(w.received),
                    "stage": w.stage,
                    "destination": (
                        f"{w.dest_venue}:{_masked(w.dest_key)}" if w.dest_venue else "external"
                    ),
                    "ts_apply": w.ts_apply,
                    "ts_send": w.ts_send,
                    "ts_arrive": w.ts_arrive,
                    "tx_id": w.tx_id,
                }
                for w in self.of(venue, api_key)
            ],
            "deposits": [
                {
                    "id": str(d.did),
                    "asset": d.asset,
                    "network": d.network,
                    "address": d.address,
                    "amount": _text(d.amount),
                    "credited": d.credited,
                    "tx_id": d.tx_id,
                    "withdrawal": str(d.wid),
                    "ts_seen": d.ts_seen,
                    "ts_credit": d.ts_credit,
                }
                for d in self.deposits_of(venue, api_key)
            ],
        }

    def in_flight(self, asset: str) -> Decimal:
        """What has left a source and not yet arrived (for judging conservation)."""
        self.advance()
        return sum(
            (w.received for w in self.withdrawals if w.stage == "sent" and w.asset == asset),
            ZERO,
        )


def _text(d: Decimal) -> str:
    """A decimal as the ledger writes it: plain, without trailing zeros."""
    return format(d.normalize(), "f") if d else "0"


def _masked(api_key: str | None) -> str:
    """An account named without its API key."""
    if not api_key:
        return ""
    return hashlib.sha256(api_key.encode()).hexdigest()[:8]
