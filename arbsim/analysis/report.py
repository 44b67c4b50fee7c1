"""`arbsim report RUN_DIR`: one self-contained HTML page about a run.

The page embeds its plots as base64 PNG and its style inline: it opens from a file, an
e-mail or an archive with no network and no script. Every plot has a table next to
it holding the same numbers, so the page still reads where images are stripped.

pandas and matplotlib are imported inside the functions that need them, so that
importing this module (the CLI registers its command) costs nothing for the other
``arbsim`` commands.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from arbsim.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from arbsim.analysis.frames import Run

__all__ = ["html_page", "render_report", "write_report"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #1a1a1a; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
.note { color: #555; font-size: 0.9em; }
.warn { background: #fff3cd; border: 1px solid #e0c36a; padding: 0.4em 0.8em; }
nav a { margin-right: 1em; }
"""

_SECTIONS = (
    ("pnl", "PnL over time"),
    ("stats", "Session statistics"),
    ("inventory", "Inventory per venue"),
    ("transfers", "Transfers between venues"),
    ("arbs", "Arbs: expected vs realised edge"),
    ("slippage", "Slippage per leg and venue"),
    ("fills", "Fill ratio and time to fill"),
    ("latency", "Latency"),
    ("risk", "Risk denials and rejections"),
    ("against", "Backtest vs paper"),
)

#: what each cause of a PnL gap between a backtest (A) and a session (B) usually means
_CAUSE_MEANING = {
    "fill prices (latency / slippage)": (
        "both runs traded the same decisions but at different prices: their orders met the "
        "book at different exchange times (the order latency, or the feed latency that "
        "sets when a decision is taken) or met it differently (depth consumed, impact)."
    ),
    "fill ratio (queue / depth)": (
        "both runs traded the same decisions but different quantities: the queue model of "
        "resting orders, or liquidity the other run's earlier orders had taken."
    ),
    "rejections / denials": (
        "one run's attempt was refused (a venue rejection or a risk limit) where the other "
        "traded: look at the runs' rejection and denial counts."
    ),
    "balance skips (inventory)": (
        "one run skipped an arbitrage for lack of balance: its inventory had drifted "
        "differently after an earlier difference."
    ),
    "decisions not in common": (
        "one run decided an arbitrage the other did not (or more than the tolerance "
        "later). In a chain of attempts (each waits for the last one to finish plus the "
        "cool-down) a few milliseconds of extra order latency move the next decision onto "
        "a later market update: compare each venue's order round trips below; a backtest "
        "with --latency-from SESSION replays the session's own."
    ),
    "other (marking, outside the common window)": (
        "the rest: inventory marked to market at different prices, and activity outside "
        "the window both runs cover."
    ),
}

# matplotlib's default cycle, named so that outcomes keep their colour across plots
_OUTCOME_COLOURS = {
    "completed": "#2ca02c",
    "hedged": "#1f77b4",
    "partial": "#17becf",
    "unwound": "#ff7f0e",
    "exposed": "#d62728",
    "missed": "#7f7f7f",
    "failed": "#9467bd",
    "skipped": "#bcbd22",
    "denied": "#8c564b",
}


# ---------------------------------------------------------------- html helpers
def _esc(x: object) -> str:
    return html.escape(str(x))


def _table(df: pd.DataFrame, *, index: bool = True, digits: int = 3) -> str:
    if df.empty:
        return '<p class="note">no rows</p>'

    def fmt(v: float) -> str:
        # float noise (-3e-15 left of a full sale) would print as "-0.000"
        return f"{v + 0.0 if abs(v) >= 0.5 * 10**-digits else 0.0:,.{digits}f}"

    text: str = df.to_html(
        index=index, float_format=fmt, na_rep="–", border=0, escape=True, justify="center"
    )
    return text


def _dict_table(rows: Sequence[tuple[str, object]], header: tuple[str, str]) -> str:
    if not rows:
        return '<p class="note">none</p>'
    body = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f"<table><tr><th>{_esc(header[0])}</th><th>{_esc(header[1])}</th></tr>{body}</table>"


def _figure(width: float = 10.0, height: float = 3.6, rows: int = 1, cols: int = 1) -> Figure:
    from matplotlib.figure import Figure

    # a bare Figure (no pyplot) renders with Agg and leaves no global state behind
    fig = Figure(figsize=(width, height * rows), dpi=96, layout="constrained")
    fig.subplots(rows, cols, squeeze=False)
    return fig


def _img(fig: Figure, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _time_axis(ax: Axes) -> None:
    ax.set_xlabel("time (UTC)")


def _hists(ax: Axes, groups: Sequence[tuple[str, pd.Series]], bins: int = 40) -> None:
    """Overlaid histograms on shared bins, cut at the 99.5th percentile of all values.

    Shared bins keep a venue whose values are all equal (constant simulated latency)
    visible next to another's; the cut keeps a long tail from squeezing the body.
    """
    import numpy as np

    values = [g.dropna().to_numpy(dtype=np.float64) for _, g in groups]
    every = np.concatenate(values) if values else np.empty(0)
    if every.size == 0:
        return
    lo, hi = float(every.min()), float(np.quantile(every, 0.995))
    if hi - lo < 1e-9:
        pad = max(abs(lo) * 0.05, 0.5)
        lo, hi = lo - pad, hi + pad
    edges = np.linspace(lo, hi, bins + 1)
    for (label, _), v in zip(groups, values, strict=True):
        ax.hist(np.clip(v, lo, hi), bins=edges.tolist(), alpha=0.6, label=label)
    ax.legend(fontsize="small")


def _no_data(what: str) -> str:
    return f'<p class="note">No {_esc(what)} in this run.</p>'


# ---------------------------------------------------------------- sections
def _header(run: Run) -> str:
    s = run.summary
    win = s.get("window") or {}
    rows: list[tuple[str, object]] = [
        ("run directory", str(run.path)),
        ("status", s.get("status", "?") + (f" ({s['error']})" if s.get("error") else "")),
        ("data", s.get("catalog", "?")),
        ("window", f"{win.get('start', '?')} → {win.get('end', '?')}"),
    ]
    for name, v in (s.get("venues") or {}).items():
        # whatever the summary says of a venue (latency, markets, rules, queue model...)
        text = "; ".join(
            f"{k} {','.join(map(str, x)) if isinstance(x, list) else x}" for k, x in v.items()
        )
        rows.append((f"venue {name}", text))
    pnl = s.get("pnl") or {}
    rows.append(
        (
            "pnl (quote)",
            f"gross {pnl.get('gross', 0):,.4f}  fees {pnl.get('fees', 0):,.4f}  "
            f"net {pnl.get('net', 0):,.4f}",
        )
    )
    arbs = s.get("arbs") or {}
    rows.append(
        (
            "arbs",
            f"attempted {arbs.get('attempted', 0)} of {arbs.get('decisions', 0)} decisions: "
            + (
                ", ".join(
                    f"{k} {v}" for k, v in arbs.items() if k not in ("attempted", "decisions")
                )
                or "none"
            ),
        )
    )
    rows.append(("orders / fills", f"{s.get('orders', 0)} / {s.get('fills', 0)}"))
    rows.append(
        (
            "ledger",
            "reconciled exactly with venue balances"
            if s.get("reconciled_exactly")
            else f"NOT reconciled: {s.get('reconciliation')}",
        )
    )
    warn = ""
    if s.get("synthetic_data"):
        warn = '<p class="warn">This run used SYNTHETIC sample data.</p>'
    nav = "".join(f'<a href="#{k}">{_esc(t)}</a>' for k, t in _SECTIONS)
    return (
        f"<h1>arbsim run report: {_esc(run.name)}</h1>{warn}<nav>{nav}</nav>"
        f"<h2 id='summary'>Summary</h2>{_dict_table(rows, ('', ''))}"
    )


def _pnl(run: Run) -> str:
    from arbsim.analysis.frames import pnl_over_time

    p = pnl_over_time(run)
    if p.empty:
        return _no_data("equity samples")
    fig = _figure()
    ax = fig.axes[0]
    ax.plot(p["time"], p["gross"], label="gross", color="#1f77b4")
    ax.plot(p["time"], p["fees"], label="fees", color="#d62728")
    ax.plot(p["time"], p["net"], label="net", color="#2ca02c", linewidth=2)
    ax.plot(p["time"], p["arb_realized"], label="arbs realised", color="#7f7f7f", ls="--")
    ax.set_ylabel("quote currency")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.legend(loc="upper left")
    _time_axis(ax)
    # a handful of rows gives the shape of the curve without the image
    import numpy as np

    pick = np.unique(np.linspace(0, len(p) - 1, num=min(len(p), 11)).astype(int))
    tab = p.iloc[pick][["time", "gross", "fees", "net", "arb_realized"]].copy()
    tab["time"] = tab["time"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return (
        '<p class="note">From the equity samples (marked to market). "arbs realised" is '
        "the cumulative realised PnL of finished arbs.</p>"
        + _img(fig, "PnL over time: gross, fees, net")
        + _table(tab, index=False, digits=4)
    )


def _stats(run: Run) -> str:
    import pandas as pd

    from arbsim.analysis.frames import session_stats

    st = session_stats(run)
    a = st["arbs"]

    def num(v: object, fmt: str, none: str = "n/a") -> str:
        return none if v is None else format(v, fmt)

    rows: list[tuple[str, object]] = [
        ("starting capital (quote)", num(st["capital"], ",.2f")),
        ("return on capital", num(st["return_on_capital"], ".3%")),
        ("max drawdown (quote)", num(st["max_drawdown"], ",.4f")),
        ("max drawdown, share of equity at its peak", num(st["max_drawdown_pct"], ".4%")),
        (
            "max drawdown duration",
            f"{st['max_drawdown_duration_s']:,.1f} s"
            + ("" if st["max_drawdown_recovered"] else " (not recovered by the end)"),
        ),
        ("Sharpe (annualised)", num(st["sharpe"], ",.2f")),
        ("Sortino (annualised)", num(st["sortino"], ",.2f")),
        ("PnL samples, interval", f"{st['samples']:,}, {num(st['sample_interval_s'], 'g')} s"),
        ("arbitrages that traded", f"{a['traded']:,} ({a['wins']:,} won, {a['losses']:,} lost)"),
        ("win rate", num(a["win_rate"], ".1%")),
        ("profit factor", num(a["profit_factor"], ",.2f", "no losing arbitrage")),
        ("average PnL per traded arbitrage", num(a["avg_pnl"], ",.4f")),
        (
            "edge expected / captured (bps)",
            f"{num(a['avg_expected_edge_bps'], '.2f')} / {num(a['avg_captured_edge_bps'], '.2f')}",
        ),
        ("captured share of the expected PnL", num(a["edge_capture"], ".1%")),
        ("turnover (filled notional / capital)", num(st["turnover"], ",.2f")),
    ]
    if st.get("rebalance_orders"):
        rows.append(("inventory rebalancing orders", f"{st['rebalance_orders']:,}"))
    if "other_pnl" in st:
        rows.append(
            ("PnL outside arbitrages (rebalancing, algorithms)", num(st["other_pnl"], ",.4f"))
        )
    for asset, qty in sorted((st.get("inventory_drift") or {}).items()):
        rows.append((f"largest net {asset} excursion", f"{qty:,.8g}"))
    html = (
        '<p class="note">The ratios are computed on the net PnL curve (balances changed since '
        "the start, valued at each sample's marks: the starting inventory's price moves are "
        "left out) and annualised from its sampling interval; the drawdown is a share of "
        "the equity at the peak it fell from.</p>" + _dict_table(rows, ("statistic", "value"))
    )
    held = st.get("positions") or []
    if held:
        df = pd.DataFrame(held)[
            ["venue", "asset", "qty_start", "qty", "avg_price", "mark", "realized", "unrealized"]
        ]
        html += (
            '<p class="note">Positions at average cost: the starting inventory enters at '
            "its first mark of the run; realised plus unrealised PnL of all positions is the "
            "change of the account's value from the start marks to the end marks.</p>"
            + _table(df, index=False, digits=6)
        )
    return html


def _inventory(run: Run) -> str:
    from arbsim.analysis.frames import inventory

    inv = inventory(run)
    if inv.empty:
        return _no_data("balances")
    assets = sorted(inv["asset"].unique())
    fig = _figure(rows=len(assets), height=2.6)
    for ax, asset in zip(fig.axes, assets, strict=True):
        for venue, g in inv[inv["asset"] == asset].groupby("venue", sort=True):
            ax.step(g["time"], g["balance"], where="post", label=str(venue))
        ax.set_ylabel(asset)
        ax.legend(loc="upper left")
        _time_axis(ax)
    tab = inv.groupby(["venue", "asset"], sort=True).agg(
        start=("balance", "first"),
        end=("balance", "last"),
        min=("balance", "min"),
        max=("balance", "max"),
    )
    return (
        '<p class="note">Start balances from the run configuration plus every fill '
        "(fees included) and transfer.</p>"
        + _img(fig, "Balances per venue over time")
        + _table(tab, digits=6)
    )


def _transfers(run: Run) -> str:
    from arbsim.analysis.frames import transfers

    t = transfers(run)
    if t.empty:
        return _no_data("transfers between venues")
    done = t[t["status"].isin(["sent", "arrived"])]
    arrived = t[t["status"] == "arrived"]
    rows: list[tuple[str, object]] = [
        ("transfers asked for", f"{len(t):,}"),
        (
            "sent / arrived / failed",
            f"{len(done):,} / {len(arrived):,} / {int((t['status'] == 'failed').sum()):,}",
        ),
        ("withdrawal fees (quote, at each send's mark)", f"{done['fee_quote'].sum():,.4f}"),
    ]
    for asset, g in done.groupby("asset", sort=True):
        rows.append(
            (f"{asset} moved / fees", f"{g['amount_f'].sum():,.8g} / {g['fee_f'].sum():,.8g}")
        )
    if len(arrived):
        rows.append(
            (
                "delay in flight: mean / max (s)",
                f"{arrived['delay_s'].mean():,.2f} / {arrived['delay_s'].max():,.2f}",
            )
        )
    flight = t[t["status"] == "sent"]
    for asset, g in flight.groupby("asset", sort=True):
        rows.append((f"{asset} in flight at the end", f"{g['amount_f'].sum():,.8g}"))
    cols = ["time", "venue", "destination", "asset", "network", "amount", "fee", "delay_s"]
    cols.append("status")
    listing = t[cols].copy()
    listing["time"] = listing["time"].dt.strftime("%H:%M:%S.%f").str[:-3]
    return (
        '<p class="note">Withdrawals between the venues: the source pays amount + fee when '
        "it is sent, the destination is credited the amount when it arrives; in between "
        "it is in flight (counted in the run's value, in no venue's balance). Their fees "
        "are part of the PnL outside arbitrages.</p>"
        + _dict_table(rows, ("transfers", "value"))
        + _table(listing.set_index("time"), digits=6)
    )


def _arbs(run: Run) -> str:
    from arbsim.analysis.frames import arb_edges

    e = arb_edges(run)
    if e.empty:
        return _no_data("arb decisions")
    fig = _figure(rows=2, height=3.2)
    ax1, ax2 = fig.axes
    att = e[e["attempted"]]
    ax1.scatter(
        e["time"], e["expected_edge_bps"], s=10, color="#bbbbbb", label="expected (all decisions)"
    )
    for outcome, g in att.groupby("outcome", sort=True):
        ax1.scatter(
            g["time"],
            g["realized_edge_bps"],
            s=14,
            color=_OUTCOME_COLOURS.get(str(outcome), "black"),
            label=f"realised: {outcome}",
        )
    ax1.set_ylabel("edge (bps)")
    ax1.axhline(0, color="black", linewidth=0.6)
    ax1.legend(loc="upper left", fontsize="small", ncols=3)
    _time_axis(ax1)
    ax2.hist(att["edge_gap_bps"].dropna(), bins=40, color="#1f77b4")
    ax2.set_xlabel("realised − expected edge (bps), attempted arbs")
    ax2.set_ylabel("arbs")
    tab = e.groupby("outcome", sort=True).agg(
        decisions=("arb_id", "size"),
        expected_edge_bps=("expected_edge_bps", "mean"),
        realized_edge_bps=("realized_edge_bps", "mean"),
        fill_ratio=("fill_ratio", "mean"),
        expected_pnl=("expected_pnl", "sum"),
        realized_pnl=("realized_pnl", "sum"),
        fees=("fees", "sum"),
    )
    by_dir = e[e["attempted"]].groupby(["buy_venue", "sell_venue"], sort=True)
    tab_dir = by_dir.agg(
        attempted=("arb_id", "size"),
        expected_edge_bps=("expected_edge_bps", "mean"),
        realized_edge_bps=("realized_edge_bps", "mean"),
        realized_pnl=("realized_pnl", "sum"),
    )
    return (
        '<p class="note">Expected edge: at the decision, after taker fees, over the '
        "planned size. Realised edge: every order of the arb (hedges and unwinds "
        "included), fees included, residual marked at the decision mid.</p>"
        + _img(fig, "Arb timeline: expected vs realised edge")
        + "<h3>By outcome (means per decision, PnL summed)</h3>"
        + _table(tab)
        + "<h3>By direction (attempted arbs)</h3>"
        + _table(tab_dir)
    )


def _slippage(run: Run) -> str:
    from arbsim.analysis.frames import leg_slippage, slippage_summary

    s = leg_slippage(run)
    if s.empty:
        return _no_data("filled arb legs")
    groups = list(s.groupby(["leg", "venue"], sort=False))
    order = {"buy": 0, "sell": 1, "hedge": 2, "unwind": 3}
    groups.sort(key=lambda kv: (order.get(str(kv[0][0]), 9), str(kv[0][1])))
    main = [(k, g) for k, g in groups if k[0] in ("buy", "sell")]
    repair = [(k, g) for k, g in groups if k[0] not in ("buy", "sell")]
    parts = [
        '<p class="note">Cost in basis points of the decision price; positive = worse '
        "(bought above / sold below). delay: decision → arrival (the touch when the "
        "order reached the venue); impact: arrival → fill (depth walked); total: "
        "decision → fill. Hedges and unwinds are measured against the decision price of "
        "the venue they trade on (their arrival price is not recorded).</p>"
    ]
    if main:
        fig = _figure(rows=len(main), cols=3, height=2.4)
        axes = fig.axes
        for i, ((leg, venue), g) in enumerate(main):
            for j, comp in enumerate(("delay_bps", "impact_bps", "total_bps")):
                ax = axes[i * 3 + j]
                ax.hist(g[comp].dropna(), bins=30, color=("#9467bd", "#ff7f0e", "#1f77b4")[j])
                ax.axvline(0, color="black", linewidth=0.6)
                ax.set_title(f"{leg} leg on {venue}: {comp[:-4]}", fontsize="small")
                if j == 0:
                    ax.set_ylabel("legs")
        parts.append(_img(fig, "Slippage histograms of the planned legs"))
    if repair:
        fig = _figure(cols=len(repair), width=10.0, height=2.6)
        for ax, ((leg, venue), g) in zip(fig.axes, repair, strict=True):
            ax.hist(g["total_bps"].dropna(), bins=20, color="#d62728")
            ax.axvline(0, color="black", linewidth=0.6)
            ax.set_title(f"{leg} on {venue}: total", fontsize="small")
            ax.set_xlabel("bps")
        parts.append(_img(fig, "Slippage histograms of hedges and unwinds"))
    parts.append("<h3>Quantity-weighted means per leg and venue</h3>" + _table(slippage_summary(s)))
    worst = s.nlargest(10, "cost_quote")[
        ["arb_id", "leg", "venue", "qty", "decision_price", "fill_price", "total_bps", "cost_quote"]
    ]
    parts.append("<h3>Ten costliest legs</h3>" + _table(worst, index=False))
    return "".join(parts)


def _fills(run: Run) -> str:
    from arbsim.analysis.frames import LEG_KINDS, fill_ratios, time_to_fill

    fr = fill_ratios(run)
    ttf = time_to_fill(run)
    if fr.empty:
        return _no_data("arb orders")
    fig = _figure(cols=2, height=3.4)
    ax1, ax2 = fig.axes
    labels = [f"{leg}\n{venue}" for leg, venue in fr.index]
    ax1.bar(labels, fr["fill_ratio"].fillna(0.0), color="#1f77b4")
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("filled / asked")
    ax1.set_title("fill ratio", fontsize="small")
    ax1.tick_params(axis="x", labelsize="small")
    if not ttf.empty:
        by_venue = ttf.groupby("venue", sort=True)["to_first_fill_ms"]
        _hists(ax2, [(str(v), g) for v, g in by_venue], bins=30)
    ax2.set_xlabel("ms from sending to the first fill reported")
    ax2.set_title("time to fill", fontsize="small")
    parts = [_img(fig, "Fill ratio and time to fill"), "<h3>Fill ratio</h3>", _table(fr)]
    if not ttf.empty:
        tab = ttf.groupby(["leg", "venue"], sort=True).agg(
            orders=("client_order_id", "size"),
            fills_per_order=("n_fills", "mean"),
            at_venue_p50_ms=("to_exchange_fill_ms", "median"),
            first_fill_p50_ms=("to_first_fill_ms", "median"),
            first_fill_p90_ms=("to_first_fill_ms", lambda x: x.quantile(0.9)),
            last_fill_max_ms=("to_last_fill_ms", "max"),
        )
        rank = {k: i for i, k in enumerate(LEG_KINDS)}
        tab = tab.reindex(sorted(tab.index, key=lambda k: (rank.get(k[0], len(rank)), k[1])))
        parts.append(
            "<h3>Time to fill</h3><p class='note'>at venue: sent → first fill at the "
            "exchange; first fill: sent → the client learning of it.</p>" + _table(tab)
        )
    return "".join(parts)


def _latency(run: Run) -> str:
    from arbsim.analysis.frames import latency_percentiles

    lat = run.latency
    if lat.empty:
        return _no_data("latency samples")
    panels = [
        ("feed_sample", "feed (exchange → local)"),
        ("tick_to_trade", "tick to trade"),
        ("place", "order round trip (place)"),
    ]
    present = [(k, t) for k, t in panels if (lat["kind"] == k).any()]
    parts: list[str] = []
    if present:
        fig = _figure(cols=len(present), height=3.2)
        for ax, (kind, title) in zip(fig.axes, present, strict=True):
            sub = lat[lat["kind"] == kind]
            _hists(
                ax, [(str(v), g / 1e6) for v, g in sub.groupby("venue", sort=True)["latency_ns"]]
            )
            ax.set_title(title, fontsize="small")
            ax.set_xlabel("ms (cut at p99.5)")
        parts.append(_img(fig, "Latency distributions: feed, tick to trade, order round trip"))
    parts.append(
        "<h3>Percentiles (ms) by kind and venue</h3>"
        '<p class="note">feed_sample is a bounded, evenly decimated sample of every '
        "message's feed latency; tick_to_trade is listed under the buy venue.</p>"
        + _table(latency_percentiles(run))
    )
    return "".join(parts)


def _risk(run: Run) -> str:
    s = run.summary
    risk = s.get("risk") or {}
    denials: dict[str, int] = dict(risk.get("denials") or {})
    rejections: dict[str, int] = dict(s.get("rejections") or {})
    parts: list[str] = []
    if risk.get("circuit_breaker"):
        parts.append(
            f'<p class="warn">Circuit breaker tripped: {_esc(risk["circuit_breaker"])}</p>'
        )
    else:
        parts.append('<p class="note">Circuit breaker: not tripped.</p>')
    if denials or rejections:
        items = [(f"denied: {k}", v) for k, v in denials.items()]
        items += [(f"rejected: {k}", v) for k, v in rejections.items()]
        fig = _figure(height=max(1.6, 0.35 * len(items) + 0.8))
        ax = fig.axes[0]
        ax.barh([k for k, _ in items], [v for _, v in items], color="#8c564b")
        ax.invert_yaxis()
        ax.set_xlabel("count")
        parts.append(_img(fig, "Risk denials and venue rejections by reason"))
    parts.append("<h3>Risk denials by reason</h3>")
    parts.append(_dict_table(sorted(denials.items()), ("reason", "count")))
    parts.append("<h3>Venue rejections (venue:code)</h3>")
    parts.append(_dict_table(sorted(rejections.items()), ("venue:code", "count")))
    not_traded = run.arbs[run.arbs["outcome"].isin(["skipped", "denied", "failed"])]
    counts = not_traded.groupby(["outcome", "reason"], sort=True).size().reset_index(name="n")
    rows = [
        (f"{o}: {r or '-'}", int(n))
        for o, r, n in zip(counts["outcome"], counts["reason"], counts["n"], strict=True)
    ]
    parts.append("<h3>Arb decisions not traded, by reason</h3>")
    parts.append(_dict_table(rows, ("outcome: reason", "decisions")))
    return "".join(parts)


def _against(run: Run, other: Run | None) -> str:
    """Backtest (``other``, A) against the session (``run``, B); without ``other``, how
    to get the comparison."""
    if other is None:
        if (run.path / "catalog").is_dir():
            p = str(run.path)
            return (
                '<p class="note">This session recorded the market data it received in '
                f"{_esc(p)}/catalog. Backtest that recording with this run's config and its "
                "measured latencies, then report this run against it:</p><pre>"
                f"arbsim backtest --data {_esc(p)}/catalog --config {_esc(p)}/config.yaml "
                f"--latency-from {_esc(p)} --out BACKTEST\narbsim report {_esc(p)} --against "
                "BACKTEST</pre>"
            )
        return (
            '<p class="note">A backtest predicts a session: to check it, run a paper session '
            "on the same data (the simulator replays a catalog at speed 1) and report the "
            "session with <code>--against</code> this run.</p>"
        )
    import numpy as np
    import pandas as pd

    from arbsim.analysis.compare import compare_runs, match_arbs

    c = compare_runs(other, run)
    d, p, tick = c["decisions"], c["pnl"], c["fill_prices"]["within_one_tick"]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1%}"

    gap_share = abs(p["gap"]) / abs(p["net_b"]) if p["net_b"] else None
    rows: list[tuple[str, object]] = [
        ("A (backtest)", c["runs"]["a"]),
        ("B (this run)", c["runs"]["b"]),
        ("common window", f"{c['window']['start']} → {c['window']['end']}"),
        ("tolerance", f"{c['tolerance_ms']:g} ms ({c['tolerance_from']})"),
        ("decisions A / B / matched", f"{d['a']} / {d['b']} / {d['matched']}"),
        ("decisions in common (of the larger count)", pct(d["share_of_larger"])),
        ("same outcome (of matched)", pct(d["same_outcome_share"])),
        ("fill ratio A / B", f"{pct(c['fill_ratio']['a'])} / {pct(c['fill_ratio']['b'])}"),
        (
            "matched legs filled within one tick",
            f"{tick['within']} of {tick['legs']} ({pct(tick['share'])})"
            if tick["legs"]
            else "- (no catalog with the instruments' ticks)",
        ),
        ("net PnL A / B", f"{p['net_a']:,.4f} / {p['net_b']:,.4f}"),
        ("gap B - A", f"{p['gap']:,.4f} ({pct(gap_share)} of B)"),
    ]
    parts = [_dict_table(rows, ("", ""))]
    causes = pd.Series(p["causes"], dtype=np.float64)
    fig = _figure(cols=2, height=3.2)
    ax1, ax2 = fig.axes
    ax1.barh(list(causes.index), causes.to_numpy(), color="#1f77b4")
    ax1.axvline(0.0, color="black", lw=0.6)
    ax1.set_title("net PnL gap B - A by cause", fontsize="small")
    ax1.tick_params(axis="y", labelsize="x-small")
    pairs = match_arbs(other.arbs, run.arbs, int(c["tolerance_ms"] * 1e6))
    if len(pairs):
        ax2.hist(pairs["dt_ns"].to_numpy(dtype=np.float64) / 1e6, bins=40, color="#ff7f0e")
    ax2.set_title("decision time B - A of matched decisions", fontsize="small")
    ax2.set_xlabel("ms")
    parts.append(_img(fig, "PnL gap by cause; decision-time offsets of matched decisions"))
    main = p["main_cause"]
    cause_rows: list[tuple[str, object]] = [
        (str(k), f"{v:,.4f}" + ("  (main)" if k == main else "")) for k, v in causes.items()
    ]
    parts.append("<h3>The gap by cause</h3>" + _dict_table(cause_rows, ("cause", "B - A")))
    if main is not None:
        parts.append(
            f"<p><b>Main cause: {_esc(main)}</b> ({p['causes'][main]:,.4f} of "
            f"{p['gap']:,.4f}): {_esc(_CAUSE_MEANING.get(main, ''))}</p>"
        )
    ctx_rows: list[tuple[str, object]] = []
    for key, label in (("a", "A"), ("b", "B")):
        ctx = c["context"][key]
        for venue, model in (ctx["venues"] or {}).items():
            p50 = ctx["place_p50_ms"].get(venue)
            measured = "-" if p50 is None else f"{p50:.2f} ms"
            ctx_rows.append(
                (f"{label} {venue}", f"latency {model}; place round trip p50 {measured}")
            )
        ctx_rows.append(
            (f"{label} refusals", f"rejections {ctx['rejections']}, denials {ctx['risk_denials']}")
        )
    parts.append("<h3>What each run assumed and measured</h3>" + _dict_table(ctx_rows, ("", "")))
    return "".join(parts)


def render_report(
    run: Run,
    progress: Callable[[int, int], None] | None = None,
    against: Run | None = None,
) -> str:
    """The report of ``run`` as one self-contained HTML document.

    Parameters
    ----------
    run:
        A run loaded with :func:`arbsim.analysis.frames.load_run`.
    progress:
        Told ``(sections done, sections in all)`` as each is rendered.
    against:
        A backtest of the same market window (typically of this session's recording):
        the "Backtest vs paper" section compares the two decision by decision and
        explains the PnL gap; without it, the section says how to make one.

    Returns
    -------
    str
        HTML with every image inline (``data:`` URIs), inline CSS and no script.
    """
    makers: dict[str, Callable[[Run], str]] = {
        "pnl": _pnl,
        "stats": _stats,
        "inventory": _inventory,
        "transfers": _transfers,
        "arbs": _arbs,
        "slippage": _slippage,
        "fills": _fills,
        "latency": _latency,
        "risk": _risk,
        "against": lambda r: _against(r, against),
    }
    body = [_header(run)]
    for i, (key, title) in enumerate(_SECTIONS):
        body.append(f'<h2 id="{key}">{_esc(title)}</h2>{makers[key](run)}')
        if progress is not None:
            progress(i + 1, len(_SECTIONS))
    return html_page(f"arbsim report: {run.name}", "".join(body), "arbsim report")


def html_page(title: str, body: str, made_by: str) -> str:
    """A self-contained HTML document: ``body`` (HTML), inline style, no script, and a
    closing line saying ``made_by`` made it and when."""
    made = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        # an empty inline icon: without it a browser asks the origin for /favicon.ico
        "<link rel='icon' href='data:,'>"
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head>"
        f'<body>{body}<p class="note">Generated by {_esc(made_by)} at {made}.</p>'
        "</body></html>\n"
    )


def write_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    against: str | Path | None = None,
) -> Path:
    """Load ``run_dir``, render its report and write it.

    Parameters
    ----------
    run_dir:
        The run directory.
    out:
        The HTML file to write (default: ``run_dir/report.html``); its directory must
        exist (a mistyped path is refused, not created).
    progress:
        Told ``(sections done, sections in all)``.
    against:
        A backtest run directory to compare this run with (see :func:`render_report`).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    arbsim.core.errors.DataError
        The run directory or one of its files is missing or unreadable, or the
        directory of ``out`` does not exist or ``out`` is a directory (checked first).
    """
    from arbsim.analysis.frames import load_run

    target = Path(out) if out is not None else Path(run_dir) / "report.html"
    if out is not None:
        if target.is_dir():
            raise DataError(f"--out {target} is a directory; give the HTML file to write")
        if not target.parent.is_dir():
            raise DataError(
                f"--out {target}: directory {target.parent} does not exist (create it first)"
            )
    run = load_run(run_dir)
    other = load_run(against) if against is not None else None
    text = render_report(run, progress, other)
    target.write_text(text, encoding="utf-8")
    return target
