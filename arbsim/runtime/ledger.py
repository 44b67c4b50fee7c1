"""The engine's own exact ledger: start balances plus every fill and transfer, per venue
and asset.

It is kept from order updates and transfers, the same way in every mode, and reconciled
against the venues' fresh balances at the end of a run (they must agree to the last
unit). A transfer debits its source ``amount + fee`` when it is sent and credits its
destination ``amount`` when it arrives; in between the amount is *in flight*: in no
venue's balances, but still the run's (counted in positions and value).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from arbsim.core.model import ZERO, Balances, Fill, Instrument, Side


class Ledger:
    def __init__(self) -> None:
        self.start: dict[str, dict[str, Decimal]] = {}
        self.balances: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        self.fees: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        self.volume_quote: dict[str, Decimal] = defaultdict(Decimal)
        self.fills = 0
        #: transfer client id -> (destination, asset, amount) sent and not arrived yet
        self.in_flight: dict[str, tuple[str, str, Decimal]] = {}
        #: withdrawal fees paid, per source venue and asset
        self.transfer_fees: dict[str, dict[str, Decimal]] = defaultdict(
            lambda: defaultdict(Decimal)
        )

    def set_start(self, balances: Balances) -> None:
        snap = {a: b.total for a, b in balances.assets.items()}
        self.start[balances.venue] = dict(snap)
        bal = self.balances[balances.venue]
        bal.clear()
        bal.update(snap)

    def apply(self, inst: Instrument, fill: Fill) -> None:
        bal = self.balances[inst.venue]
        notional = fill.price * fill.qty
        if fill.side is Side.BUY:
            bal[inst.base] += fill.qty
            bal[inst.quote] -= notional
        else:
            bal[inst.base] -= fill.qty
            bal[inst.quote] += notional
        bal[fill.fee_asset] -= fill.fee
        self.fees[inst.venue][fill.fee_asset] += fill.fee
        self.volume_quote[inst.venue] += notional
        self.fills += 1

    def sent(
        self,
        client_id: str,
        source: str,
        destination: str,
        asset: str,
        amount: Decimal,
        fee: Decimal,
    ) -> None:
        """A transfer left ``source``: it paid ``amount + fee``; ``amount`` is in flight."""
        if client_id in self.in_flight:
            return
        self.balances[source][asset] -= amount + fee
        self.transfer_fees[source][asset] += fee
        self.in_flight[client_id] = (destination, asset, amount)

    def returned(self, client_id: str, source: str, asset: str, fee: Decimal) -> None:
        """A transfer sent was cancelled by its source, which gave ``amount + fee`` back."""
        entry = self.in_flight.pop(client_id, None)
        if entry is not None:
            self.balances[source][asset] += entry[2] + fee
            self.transfer_fees[source][asset] -= fee

    def arrived(self, client_id: str) -> None:
        """A transfer in flight was credited to its destination."""
        entry = self.in_flight.pop(client_id, None)
        if entry is not None:
            destination, asset, amount = entry
            self.balances[destination][asset] += amount

    def in_flight_total(self, asset: str) -> Decimal:
        return sum((a for _, x, a in self.in_flight.values() if x == asset), ZERO)

    def incoming(self, venue: str, asset: str) -> Decimal:
        """What is in flight to ``venue`` in ``asset``."""
        return sum((a for v, x, a in self.in_flight.values() if v == venue and x == asset), ZERO)

    def position(self, asset: str) -> Decimal:
        """Net change of ``asset`` across all venues since the start (what is in flight
        between them included)."""
        total = ZERO
        for venue, bal in self.balances.items():
            total += bal.get(asset, ZERO) - self.start.get(venue, {}).get(asset, ZERO)
        if self.in_flight:
            total += self.in_flight_total(asset)
        return total

    def assets(self) -> set[str]:
        out: set[str] = set()
        for bal in self.balances.values():
            out.update(bal)
        for bal in self.start.values():
            out.update(bal)
        out.update(asset for _, asset, _ in self.in_flight.values())
        return out

    def value(self, marks: dict[str, float], quote: str, which: str = "now") -> float:
        """Value of all venues' balances in ``quote`` at ``marks`` (asset -> price in quote),
        now with what is in flight between them."""
        src = self.balances if which == "now" else self.start
        total = 0.0
        for bal in src.values():
            for asset, qty in bal.items():
                if asset == quote:
                    total += float(qty)
                elif asset in marks:
                    total += float(qty) * marks[asset]
        if which == "now":
            for _, asset, qty in self.in_flight.values():
                if asset == quote:
                    total += float(qty)
                elif asset in marks:
                    total += float(qty) * marks[asset]
        return total

    def reconcile(self, fresh: Balances) -> dict[str, str]:
        """Differences (asset -> ledger minus venue) against a venue's fresh balances."""
        bal = self.balances.get(fresh.venue, {})
        diffs: dict[str, str] = {}
        for asset in set(bal) | set(fresh.assets):
            d = bal.get(asset, ZERO) - fresh.total(asset)
            if d != 0:
                diffs[asset] = str(d)
        return diffs
