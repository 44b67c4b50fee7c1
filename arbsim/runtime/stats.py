"""Session statistics: what a desk reads off a run besides its net PnL.

Pure functions over a run's own records, used by the run summary (``summary.json``, the
terminal table) and by the report, in every mode:

- :func:`curve_stats` — return on starting capital, maximum drawdown (size, share of the
  equity at its peak, duration, recovered or not), Sharpe and Sortino ratios of the PnL
  curve, annualised from its sampling interval;
- :func:`arb_stats` — win rate and profit factor of the arbitrages that traded, expected
  against captured edge;
- :func:`positions` — positions per venue and asset at average cost: average entry price,
  realised and unrealised PnL. The starting inventory enters at the first mark of its
  asset, so the realised plus unrealised PnL of every position add up, exactly, to the
  change of the account's value from the start marks to the end marks (cash included);
- :func:`inventory_drift` — the largest excursion of each asset's net position.

The PnL curve is the ``net_pnl`` column of ``equity.parquet``: the change of the balances
since the start, valued at each sample's marks. It leaves out the revaluation of the
inventory the run started with (a price move of held coins is not the strategy's doing);
:func:`positions` includes it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

import msgspec

from arbsim.core.model import ZERO, Fill, Side

SECONDS_PER_YEAR = 365 * 86_400  # crypto venues trade every day


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def curve_stats(ts_ns: Sequence[int], pnl: Sequence[float], capital: float) -> dict[str, object]:
    """Statistics of a PnL curve sampled at ``ts_ns`` (quote), against ``capital`` (the
    account's value at the start, quote).

    ``return_on_capital`` is the last PnL over the capital. The drawdown is measured on
    the equity ``capital + pnl``: ``max_drawdown`` in quote, ``max_drawdown_pct`` as a
    share of the equity at the peak it fell from, ``max_drawdown_duration_s`` from that
    peak to the first sample back at it (to the end when it never recovered). Sharpe and
    Sortino use the per-sample returns ``Δpnl / capital`` (Sortino's downside deviation:
    root mean square of the negative returns, target 0), annualised by the square root
    of the samples per year at the median sampling interval; None when undefined (fewer
    than three samples, no variation, no losing sample for Sortino)."""
    n = len(pnl)
    out: dict[str, object] = {
        "samples": n,
        "capital": round(capital, 6),
        "return_on_capital": None,
        "max_drawdown": 0.0,
        "max_drawdown_pct": 0.0,
        "max_drawdown_duration_s": 0.0,
        "max_drawdown_recovered": True,
        "sharpe": None,
        "sortino": None,
        "sample_interval_s": None,
    }
    if n == 0:
        return out
    if capital > 0:
        out["return_on_capital"] = pnl[-1] / capital
    peak_i = 0
    worst, worst_peak, worst_trough = 0.0, 0, 0
    for i in range(1, n):
        if pnl[i] > pnl[peak_i]:
            peak_i = i
        dd = pnl[peak_i] - pnl[i]
        if dd > worst:
            worst, worst_peak, worst_trough = dd, peak_i, i
    if worst > 0:
        peak_value = pnl[worst_peak]
        back = next((i for i in range(worst_trough + 1, n) if pnl[i] >= peak_value), None)
        end_i = n - 1 if back is None else back
        out["max_drawdown"] = worst
        equity_at_peak = capital + peak_value
        out["max_drawdown_pct"] = worst / equity_at_peak if equity_at_peak > 0 else None
        out["max_drawdown_duration_s"] = (ts_ns[end_i] - ts_ns[worst_peak]) / 1e9
        out["max_drawdown_recovered"] = back is not None
    if n < 3 or capital <= 0:
        return out
    steps = sorted(b - a for a, b in itertools.pairwise(ts_ns))
    interval = steps[len(steps) // 2] / 1e9
    out["sample_interval_s"] = interval
    if interval <= 0:
        return out
    rets = [(b - a) / capital for a, b in itertools.pairwise(pnl)]
    mean = _mean(rets)
    scale = math.sqrt(SECONDS_PER_YEAR / interval)
    var = sum((r - mean) ** 2 for r in rets) / (len(rets) - 1)
    if var > 0:
        out["sharpe"] = mean / math.sqrt(var) * scale
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in rets) / len(rets))
    if downside > 0:
        out["sortino"] = mean / downside * scale
    return out


class ArbResult(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`arb_stats` needs of one arbitrage attempt."""

    traded: bool  # any of its orders filled
    pnl: float  # realised, quote
    expected_pnl: float
    expected_edge_bps: float
    realized_edge_bps: float


def arb_stats(results: Iterable[ArbResult]) -> dict[str, object]:
    """Win rate and profit factor of the arbitrages that traded (any fill), their average
    expected and captured edge (bps), and the captured share of the expected PnL.

    ``profit_factor`` is the gains over the losses (None without a losing attempt);
    ``edge_capture`` the realised PnL over the expected PnL of the same attempts."""
    traded = [r for r in results if r.traded]
    wins = [r.pnl for r in traded if r.pnl > 0]
    losses = [r.pnl for r in traded if r.pnl < 0]
    expected = sum(r.expected_pnl for r in traded)
    return {
        "traded": len(traded),
        "wins": len(wins),
        "losses": len(losses),
        "win_rate": len(wins) / len(traded) if traded else None,
        "profit_factor": sum(wins) / -sum(losses) if losses else None,
        "avg_pnl": _mean([r.pnl for r in traded]) if traded else None,
        "avg_expected_edge_bps": _mean([r.expected_edge_bps for r in traded]) if traded else None,
        "avg_captured_edge_bps": _mean([r.realized_edge_bps for r in traded]) if traded else None,
        "edge_capture": sum(r.pnl for r in traded) / expected if expected > 0 else None,
    }


class Position(msgspec.Struct, kw_only=True):
    """One asset held on one venue, at average cost (quote per unit)."""

    venue: str
    asset: str
    qty_start: Decimal
    qty: Decimal
    avg_price: Decimal
    realized: Decimal = ZERO
    mark: Decimal | None = None

    @property
    def unrealized(self) -> Decimal:
        """``qty × (mark − average price)``; zero without a mark."""
        if self.mark is None:
            return ZERO
        return self.qty * (self.mark - self.avg_price)

    def trade(self, side: Side, qty: Decimal, price: Decimal) -> None:
        """A buy adds at ``price`` (a short is covered first), a sell realises against
        the average price (a long is closed first, the rest opens a short at ``price``)."""
        signed = qty if side is Side.BUY else -qty
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            total = self.qty + signed
            self.avg_price = (self.qty * self.avg_price + signed * price) / total
            self.qty = total
            return
        closing = min(abs(signed), abs(self.qty))
        direction = 1 if self.qty > 0 else -1
        self.realized += closing * (price - self.avg_price) * direction
        self.qty += signed
        if self.qty == 0:
            self.avg_price = ZERO
        elif (self.qty > 0) != (direction > 0):  # crossed zero: the rest opens at price
            self.avg_price = price

    def pay_fee(self, qty: Decimal) -> None:
        """A fee taken from this asset: the quantity goes at its cost, realised as a loss."""
        self.realized -= qty * self.avg_price
        self.qty -= qty

    def as_dict(self) -> dict[str, object]:
        return {
            "venue": self.venue,
            "asset": self.asset,
            "qty_start": str(self.qty_start),
            "qty": str(self.qty),
            "avg_price": float(self.avg_price),
            "mark": None if self.mark is None else float(self.mark),
            "realized": float(self.realized),
            "unrealized": float(self.unrealized),
        }


def positions(
    start: Mapping[str, Mapping[str, Decimal]],
    fills: Iterable[tuple[Fill, str, str]],
    quote: str,
    start_marks: Mapping[str, Decimal],
    end_marks: Mapping[str, Decimal],
) -> list[Position]:
    """Positions per venue and non-quote asset after ``fills`` (each with its
    instrument's base and quote asset, in the order they happened), from the ``start``
    balances (venue -> asset -> quantity) entered at ``start_marks``, marked at
    ``end_marks`` (asset -> price in ``quote``).

    Quote-asset fees are realised on the traded asset's position; a fee in the traded
    asset reduces it at its average cost. A first fill before any mark of its asset sets
    the starting inventory's price. Fills in another quote currency than ``quote`` (a
    run mixing quote currencies) are left out of this accounting."""
    book: dict[tuple[str, str], Position] = {}

    def get(venue: str, asset: str, price: Decimal) -> Position:
        key = (venue, asset)
        if key not in book:
            held = start.get(venue, {}).get(asset, ZERO)
            basis = start_marks.get(asset, price)
            book[key] = Position(
                venue=venue, asset=asset, qty_start=held, qty=held, avg_price=basis
            )
        return book[key]

    for venue, bal in start.items():
        for asset, held in bal.items():
            if asset != quote and asset in start_marks and held != 0:
                get(venue, asset, start_marks[asset])
    for fill, base, fill_quote in fills:
        if fill_quote != quote:
            continue
        pos = get(fill.venue, base, fill.price)
        pos.trade(fill.side, fill.qty, fill.price)
        if fill.fee_asset == quote:
            pos.realized -= fill.fee
        elif fill.fee_asset == base:
            pos.pay_fee(fill.fee)
        else:  # a fee in a third asset (e.g. a venue token) is that asset's position
            get(fill.venue, fill.fee_asset, start_marks.get(fill.fee_asset, ZERO)).pay_fee(fill.fee)
    for pos in book.values():
        pos.mark = end_marks.get(pos.asset)
    return sorted(book.values(), key=lambda p: (p.venue, p.asset))


def inventory_drift(samples: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Per asset, the net position change (all venues) furthest from zero over the run,
    with its sign: how far inventory wandered from where it started."""
    out: dict[str, float] = {}
    for sample in samples:
        for asset, qty in sample.items():
            if abs(qty) > abs(out.get(asset, 0.0)):
                out[asset] = qty
            else:
                out.setdefault(asset, 0.0)
    return out
