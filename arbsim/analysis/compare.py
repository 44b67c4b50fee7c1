"""`arbsim compare RUN_A RUN_B`: the same strategy in two runs, decision by decision.

Typical use: a backtest (A) and a paper session (B) over the same market window, or
two backtests that differ in one setting. Arb decisions are matched by direction (buy
venue, sell venue, symbol) and decision time within a tolerance, greedily nearest
first; the PnL gap between the runs is then split into what explains it:

- ``fill prices (latency / slippage)``: matched arbs that traded in both runs but at
  different prices per unit (prices moved between decision and fill);
- ``fill ratio (queue / depth)``: matched arbs that traded different quantities;
- ``rejections / denials``: matched arbs where one run's attempt was denied by risk or
  had a leg rejected by a venue;
- ``balance skips (inventory)``: matched arbs that one run skipped for lack of balance
  (its inventory had drifted differently);
- ``decisions not in common``: arbs decided in only one of the runs;
- ``other``: the rest of the net PnL gap (inventory marked to market, activity
  outside the common window).

pandas is imported inside the functions, so that importing this module (the CLI reads
its default tolerance) costs nothing for the other ``arbsim`` commands.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from arbsim.analysis.frames import Run

__all__ = [
    "DEFAULT_TOLERANCE_MS",
    "compare_runs",
    "derived_tolerance_ms",
    "format_comparison",
    "match_arbs",
]

#: Decisions further apart than this are different decisions. The bundled strategy
#: waits ``cooldown_s`` (250 ms) between attempts in one direction, so 100 ms cannot
#: pair a decision with its neighbour.
DEFAULT_TOLERANCE_MS = 100.0

# outcomes in which no order was sent because the run itself said no
_NOT_TRADED = ("skipped", "denied")

CAUSES = (
    "fill prices (latency / slippage)",
    "fill ratio (queue / depth)",
    "rejections / denials",
    "balance skips (inventory)",
    "decisions not in common",
    "other (marking, outside the common window)",
)


def match_arbs(a: pd.DataFrame, b: pd.DataFrame, tolerance_ns: int) -> pd.DataFrame:
    """Pair arb decisions of two runs: same direction, decision times within tolerance.

    Pairs are taken greedily, nearest in time first (ties: earlier decision of A, then
    of B); each decision is used at most once.

    Parameters
    ----------
    a, b:
        Frames with at least ``arb_id``, ``symbol``, ``buy_venue``, ``sell_venue`` and
        ``ts_decision`` (``Run.arbs``).
    tolerance_ns:
        Largest allowed ``|ts_decision(b) - ts_decision(a)|``.

    Returns
    -------
    pandas.DataFrame
        ``arb_id_a``, ``arb_id_b``, ``dt_ns`` (B minus A), sorted by A's decision time.
    """
    import numpy as np
    import pandas as pd

    keys = ["symbol", "buy_venue", "sell_venue"]
    cand: list[tuple[int, int, int, int, int]] = []
    b_groups = {k: g for k, g in b.groupby(keys, sort=False)}
    for k, ga in a.groupby(keys, sort=False):
        gb = b_groups.get(k)
        if gb is None:
            continue
        gb = gb.sort_values("ts_decision", kind="stable")
        tb = gb["ts_decision"].to_numpy(dtype=np.int64)
        ib = gb["arb_id"].to_numpy(dtype=np.int64)
        for ta, ia in zip(
            ga["ts_decision"].to_numpy(dtype=np.int64),
            ga["arb_id"].to_numpy(dtype=np.int64),
            strict=True,
        ):
            lo = int(np.searchsorted(tb, ta - tolerance_ns, side="left"))
            hi = int(np.searchsorted(tb, ta + tolerance_ns, side="right"))
            for j in range(lo, hi):
                cand.append((abs(int(tb[j]) - int(ta)), int(ta), int(tb[j]), int(ia), int(ib[j])))
    cand.sort()
    used_a: set[int] = set()
    used_b: set[int] = set()
    rows: list[tuple[int, int, int, int]] = []
    for _, ta, tb_, ia, ib_ in cand:
        if ia in used_a or ib_ in used_b:
            continue
        used_a.add(ia)
        used_b.add(ib_)
        rows.append((ta, ia, ib_, tb_ - ta))
    rows.sort()
    out = pd.DataFrame(
        [(ia, ib_, d) for _, ia, ib_, d in rows], columns=["arb_id_a", "arb_id_b", "dt_ns"]
    )
    return out.astype("int64")


def _in_window(arbs: pd.DataFrame, lo: int, hi: int) -> pd.DataFrame:
    return arbs[(arbs["ts_decision"] >= lo) & (arbs["ts_decision"] <= hi)]


def _traded_qty(arbs: pd.DataFrame) -> pd.Series:
    # the quantity that entered the arb on either leg; hedges complete the other side
    return arbs[["buy_filled_f", "sell_filled_f"]].max(axis=1)


def _rejected(arbs: pd.DataFrame) -> pd.Series:
    return (arbs["outcome"] == "denied") | arbs["reason"].str.contains(
        "rejected:|risk:", regex=True
    )


def _skipped(arbs: pd.DataFrame) -> pd.Series:
    return arbs["outcome"] == "skipped"


def _f(x: Any) -> float | None:
    """A JSON-safe float (NaN becomes null)."""
    v = float(x)
    return None if math.isnan(v) or math.isinf(v) else v


def _ticks(*runs: Run) -> dict[tuple[str, str], float]:
    """Instrument ticks by (venue, symbol), from the runs' catalogs: a session's own
    recording (``RUN/catalog``) or the catalog a backtest read (``summary.catalog``)."""
    from pathlib import Path

    from arbsim.core.errors import DataError
    from arbsim.data.catalog import Catalog

    for run in runs:
        for root in (run.path / "catalog", run.summary.get("catalog")):
            if root is None or not (Path(root) / "catalog.json").is_file():
                continue
            try:
                return {(i.venue, i.symbol): float(i.tick) for i in Catalog(root).instruments()}
            except DataError:
                continue
    return {}


def derived_tolerance_ms(run_a: Run, run_b: Run) -> tuple[float, str]:
    """The default matching tolerance: twice the median feed latency the runs measured
    (two runs of the same data decide at most about one feed latency apart), between
    10 ms and 500 ms; :data:`DEFAULT_TOLERANCE_MS` without feed measurements. Also says
    how it was derived."""
    import numpy as np

    samples = [
        r.latency.loc[r.latency.kind == "feed_sample", "latency_ns"].to_numpy()
        for r in (run_a, run_b)
        if "kind" in r.latency
    ]
    feed = np.concatenate(samples) if samples else np.array([])
    if not len(feed):
        return DEFAULT_TOLERANCE_MS, "the default: no feed latency measured"
    median_ms = float(np.median(feed)) / 1e6
    tol = round(min(500.0, max(10.0, 2 * median_ms)), 1)
    return tol, f"2 x the median feed latency {median_ms:.1f} ms, within 10..500 ms"


def compare_runs(run_a: Run, run_b: Run, *, tolerance_ms: float | None = None) -> dict[str, Any]:
    """Compare two runs' arb decisions over their common time window.

    Parameters
    ----------
    run_a, run_b:
        Loaded runs (:func:`arbsim.analysis.frames.load_run`); B is compared against A.
    tolerance_ms:
        Largest decision-time difference for two decisions to be the same one
        (``None``: derived from the runs' feed latency, :func:`derived_tolerance_ms`).

    Returns
    -------
    dict
        JSON-ready: ``runs``, ``window`` (common, ns and ISO), ``decisions`` (counts,
        matched, shares in common), ``timing`` (decision-time offsets of matched pairs),
        ``fill_prices`` (per leg: mean / median cost of B's fill price relative to A's,
        in bps, positive = B worse), ``fill_ratio``, ``outcomes`` (matched pairs by
        outcome in A and in B), ``pnl`` (net PnL of both runs, the gap, and the gap
        split by cause, with the main cause) and ``context`` (each run's latency
        configuration, order round-trip p50, rejections and denials).
    """
    import numpy as np
    import pandas as pd

    if tolerance_ms is None:
        tolerance_ms, tolerance_why = derived_tolerance_ms(run_a, run_b)
    else:
        tolerance_why = "given"
    a0, a1 = run_a.window_ns()
    b0, b1 = run_b.window_ns()
    lo, hi = max(a0, b0), min(a1, b1)
    arbs_a = _in_window(run_a.arbs, lo, hi) if hi >= lo else run_a.arbs.iloc[0:0]
    arbs_b = _in_window(run_b.arbs, lo, hi) if hi >= lo else run_b.arbs.iloc[0:0]
    pairs = match_arbs(arbs_a, arbs_b, int(tolerance_ms * 1e6))
    n_a, n_b, n_m = len(arbs_a), len(arbs_b), len(pairs)

    ia = arbs_a.set_index("arb_id")
    ib = arbs_b.set_index("arb_id")
    pa_ = ia.loc[pairs["arb_id_a"]].reset_index()
    pb_ = ib.loc[pairs["arb_id_b"]].reset_index()

    # -- fill prices of matched pairs where both runs filled the leg
    fill_prices: dict[str, Any] = {}
    ticks = _ticks(run_b, run_a)
    legs_both = legs_close = 0
    for leg, side in (("buy", 1.0), ("sell", -1.0)):
        fa = pa_[f"{leg}_avg"].to_numpy(dtype=np.float64)
        fb = pb_[f"{leg}_avg"].to_numpy(dtype=np.float64)
        both = (pa_[f"{leg}_filled_f"].to_numpy() > 0) & (pb_[f"{leg}_filled_f"].to_numpy() > 0)
        bps = side * (fb[both] - fa[both]) / fa[both] * 1e4
        if ticks:
            tick = np.array(
                [
                    ticks.get((v, sym), np.nan)
                    for v, sym in zip(pa_[f"{leg}_venue"], pa_["symbol"], strict=True)
                ],
                dtype=np.float64,
            )
            legs_both += int(both.sum())
            legs_close += int((np.abs(fb - fa)[both] <= tick[both] * (1 + 1e-9)).sum())
        fill_prices[leg] = {
            "pairs_both_filled": int(both.sum()),
            "mean_bps": _f(bps.mean()) if bps.size else None,
            "median_bps": _f(np.median(bps)) if bps.size else None,
            "max_abs_bps": _f(np.abs(bps).max()) if bps.size else None,
        }

    # -- PnL gap by cause
    qa = _traded_qty(pa_).to_numpy(dtype=np.float64)
    qb = _traded_qty(pb_).to_numpy(dtype=np.float64)
    ra = pa_["realized_pnl"].fillna(0.0).to_numpy(dtype=np.float64)
    rb = pb_["realized_pnl"].fillna(0.0).to_numpy(dtype=np.float64)
    rej = (_rejected(pa_) | _rejected(pb_)).to_numpy()
    skip = (_skipped(pa_) | _skipped(pb_)).to_numpy() & ~rej
    other = rej | skip
    target_a = pa_["qty_target_f"].to_numpy(dtype=np.float64)
    # PnL per unit in A; where A traded nothing, its expectation per unit stands in, so
    # that B trading more counts as fill ratio and B's price on that extra as price
    with np.errstate(divide="ignore", invalid="ignore"):
        unit_a = np.where(
            qa > 0,
            ra / qa,
            np.where(target_a > 0, pa_["expected_pnl"].to_numpy(np.float64) / target_a, 0.0),
        )
    qty_effect = np.where(other, 0.0, (qb - qa) * unit_a)
    # qty_effect + price_effect == rb - ra: B's extra (or missing) quantity valued at A's
    # PnL per unit, the rest is how B's units did against A's
    price_effect = np.where(other, 0.0, (rb - ra) - qty_effect)
    rej_effect = np.where(rej, rb - ra, 0.0)
    skip_effect = np.where(skip, rb - ra, 0.0)
    only_a = arbs_a[~arbs_a["arb_id"].isin(pairs["arb_id_a"])]
    only_b = arbs_b[~arbs_b["arb_id"].isin(pairs["arb_id_b"])]
    unmatched = float(only_b["realized_pnl"].fillna(0.0).sum()) - float(
        only_a["realized_pnl"].fillna(0.0).sum()
    )
    net_a = float((run_a.summary.get("pnl") or {}).get("net", 0.0))
    net_b = float((run_b.summary.get("pnl") or {}).get("net", 0.0))
    gap = net_b - net_a
    parts = [
        float(price_effect.sum()),
        float(qty_effect.sum()),
        float(rej_effect.sum()),
        float(skip_effect.sum()),
        unmatched,
    ]
    parts.append(gap - sum(parts))
    causes = dict(zip(CAUSES, parts, strict=True))
    main_cause = max(causes, key=lambda k: abs(causes[k])) if abs(gap) > 0 or any(parts) else None

    # -- outcomes and fill ratios
    cross = pd.crosstab(pa_["outcome"], pb_["outcome"]) if n_m else pd.DataFrame()
    outcomes = {
        str(oa): {str(ob): int(cross.loc[oa, ob]) for ob in cross.columns if cross.loc[oa, ob]}
        for oa in cross.index
    }

    def fill_ratio(arbs: pd.DataFrame) -> float | None:
        att = arbs[~arbs["outcome"].isin(_NOT_TRADED)]
        tgt = float(att["qty_target_f"].sum())
        both = np.minimum(att["buy_filled_f"], att["sell_filled_f"])
        return _f(float(both.sum()) / tgt) if tgt > 0 else None

    same = int((pa_["outcome"].to_numpy() == pb_["outcome"].to_numpy()).sum()) if n_m else 0
    fill_prices["within_one_tick"] = {
        "legs": legs_both,
        "within": legs_close,
        "share": _f(legs_close / legs_both) if legs_both else None,
    }
    dt_ms = pairs["dt_ns"].to_numpy(dtype=np.float64) / 1e6
    return {
        "runs": {"a": str(run_a.path), "b": str(run_b.path)},
        "tolerance_ms": tolerance_ms,
        "tolerance_from": tolerance_why,
        "window": {
            "start_ns": lo,
            "end_ns": hi,
            "start": pd.Timestamp(lo, unit="ns", tz="UTC").isoformat(),
            "end": pd.Timestamp(hi, unit="ns", tz="UTC").isoformat(),
            "overlaps": hi >= lo,
        },
        "decisions": {
            "a": n_a,
            "b": n_b,
            "matched": n_m,
            "only_a": n_a - n_m,
            "only_b": n_b - n_m,
            "share_of_a": _f(n_m / n_a) if n_a else None,
            "share_of_b": _f(n_m / n_b) if n_b else None,
            "share_in_common": _f(n_m / (n_a + n_b - n_m)) if n_a + n_b else None,
            "share_of_larger": _f(n_m / max(n_a, n_b)) if n_a + n_b else None,
            "same_outcome": same,
            "same_outcome_share": _f(same / n_m) if n_m else None,
        },
        "timing": {
            "mean_dt_ms": _f(dt_ms.mean()) if n_m else None,
            "max_abs_dt_ms": _f(np.abs(dt_ms).max()) if n_m else None,
        },
        "fill_prices": fill_prices,
        "fill_ratio": {"a": fill_ratio(arbs_a), "b": fill_ratio(arbs_b)},
        "outcomes": outcomes,
        "pnl": {
            "net_a": net_a,
            "net_b": net_b,
            "gap": gap,
            "arbs_realized_a": float(arbs_a["realized_pnl"].fillna(0.0).sum()),
            "arbs_realized_b": float(arbs_b["realized_pnl"].fillna(0.0).sum()),
            "causes": causes,
            "main_cause": main_cause,
        },
        "context": {"a": _context(run_a), "b": _context(run_b)},
    }


def _context(run: Run) -> dict[str, Any]:
    lat = run.latency
    place = lat[lat["kind"] == "place"].groupby("venue")["latency_ns"].median() / 1e6
    s = run.summary
    return {
        "venues": {k: v.get("latency") for k, v in (s.get("venues") or {}).items()},
        "place_p50_ms": {str(k): float(v) for k, v in place.items()},
        "rejections": int(sum((s.get("rejections") or {}).values())),
        "risk_denials": int(sum(((s.get("risk") or {}).get("denials") or {}).values())),
    }


def format_comparison(result: dict[str, Any]) -> str:
    """The comparison as a plain-text table for a terminal."""

    def num(v: Any, fmt: str = "{:,.4f}") -> str:
        return "-" if v is None else fmt.format(v)

    d = result["decisions"]
    p = result["pnl"]
    lines = [
        "arbsim compare",
        f"  A           {result['runs']['a']}",
        f"  B           {result['runs']['b']}",
        f"  window      {result['window']['start']} -> {result['window']['end']}"
        + ("" if result["window"]["overlaps"] else "  (the runs do not overlap)"),
        f"  tolerance   {result['tolerance_ms']:g} ms ({result.get('tolerance_from', 'given')})",
        "",
        f"  {'decisions':<36}{'A':>14}{'B':>14}",
        f"  {'in the common window':<36}{d['a']:>14}{d['b']:>14}",
        f"  {'matched':<36}{d['matched']:>14}{d['matched']:>14}",
        f"  {'share matched':<36}{num(d['share_of_a'], '{:.1%}'):>14}"
        f"{num(d['share_of_b'], '{:.1%}'):>14}",
        f"  {'share in common (of the union)':<36}{num(d['share_in_common'], '{:.1%}'):>14}",
        f"  {'fill ratio (attempted)':<36}{num(result['fill_ratio']['a'], '{:.1%}'):>14}"
        f"{num(result['fill_ratio']['b'], '{:.1%}'):>14}",
        f"  {'mean decision offset B-A (ms)':<36}"
        f"{num(result['timing']['mean_dt_ms'], '{:.3f}'):>14}",
        "",
        f"  {'same outcome (of matched)':<36}{num(d.get('same_outcome_share'), '{:.1%}'):>14}",
        "",
        "  fill prices of matched legs, B vs A (bps, positive = B worse)",
    ]
    for leg in ("buy", "sell"):
        v = result["fill_prices"][leg]
        lines.append(
            f"    {leg:<6} pairs {v['pairs_both_filled']:>5}  mean {num(v['mean_bps']):>9}  "
            f"median {num(v['median_bps']):>9}  max |.| {num(v['max_abs_bps']):>9}"
        )
    tick = result["fill_prices"].get("within_one_tick") or {}
    if tick.get("legs"):
        lines.append(
            f"    legs both runs filled within one tick: {tick['within']} of {tick['legs']} "
            f"({num(tick['share'], '{:.1%}')})"
        )
    lines += [
        "",
        f"  {'net pnl':<36}{num(p['net_a']):>14}{num(p['net_b']):>14}",
        f"  {'gap B - A':<36}{num(p['gap']):>14}",
        "  gap by cause",
    ]
    for k, v in p["causes"].items():
        mark = "  <- main" if k == p["main_cause"] else ""
        lines.append(f"    {k:<44}{num(v):>14}{mark}")
    ctx = result["context"]
    lines.append("")
    for key in ("a", "b"):
        c = ctx[key]
        place = ", ".join(f"{k} {v:g} ms" for k, v in c["place_p50_ms"].items()) or "-"
        lines.append(
            f"  {key.upper()} context   place p50: {place}; rejections {c['rejections']}, "
            f"risk denials {c['risk_denials']}"
        )
    return "\n".join(lines)
