"""The engine's own exact ledger: start balances plus every fill, per venue and asset.

It is kept from order updates, the same way in every mode, and reconciled against
the venues' fresh balances at the end of a run (they must agree to the last unit).
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

    def position(self, asset: str) -> Decimal:
        """Net change of ``asset`` across all venues since the start."""
        total = ZERO
        for venue, bal in self.balances.items():
            total += bal.get(asset, ZERO) - self.start.get(venue, {}).get(asset, ZERO)
        return total

    def assets(self) -> set[str]:
        out: set[str] = set()
        for bal in self.balances.values():
            out.update(bal)
        for bal in self.start.values():
            out.update(bal)
        return out

    def value(self, marks: dict[str, float], quote: str, which: str = "now") -> float:
        """Value of all venues' balances in ``quote`` at ``marks`` (asset -> price in quote)."""
        src = self.balances if which == "now" else self.start
        total = 0.0
        for bal in src.values():
            for asset, qty in bal.items():
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
