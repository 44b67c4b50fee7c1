"""The report of a parameter sweep: one self-contained HTML file over ``results.parquet``.

The best cells by the sweep's objective, the failed cells with their errors, a heatmap
of the objective for each pair of parameters and the metrics against each parameter.
Plots are embedded PNGs (as in ``arbsim report``), each beside a table of its numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from arbsim.analysis.report import _esc, _figure, _img, _table, html_page

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["render_sweep_report", "write_sweep_report"]

#: the metrics plotted against each parameter
_PLOTTED = ("objective", "net_pnl", "max_drawdown", "fill_ratio", "attempts")
#: the columns of the best-cells table besides the parameters
_BEST_COLUMNS = (
    "objective",
    "net_pnl",
    "fees",
    "attempts",
    "fill_ratio",
    "max_drawdown",
    "sharpe",
    "events_per_s",
)
_TOP = 10
#: heatmaps for at most this many pairs of parameters (the first parameters' pairs)
_MAX_PAIRS = 15


def _numeric(col: pd.Series) -> pd.Series:
    """A parameter's values as numbers when they all are (``"0.25"`` included)."""
    import pandas as pd

    converted = pd.to_numeric(col, errors="coerce")
    return converted if converted.notna().all() else col.astype(str)


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    if "status" not in df:
        return df.iloc[0:0]
    return df[df["status"] == "ok"]


def _header(df: pd.DataFrame, params: Sequence[str], objective: str, direction: str) -> str:
    ok = _ok(df)
    failed = len(df) - len(ok)
    windows = len(df[["start", "end"]].drop_duplicates()) if {"start", "end"} <= set(df) else 1
    rows = [
        ("cells", f"{len(df):,} ({len(ok):,} ok, {failed:,} failed)"),
        ("parameters", ", ".join(params)),
        ("windows", f"{windows}"),
        ("objective", f"{direction} {objective}"),
    ]
    if "events" in ok and "wall_seconds" in ok and ok["wall_seconds"].sum() > 0:
        rows.append(
            ("backtest speed", f"{ok['events'].sum() / ok['wall_seconds'].sum():,.0f} events/s")
        )
    body = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _best(df: pd.DataFrame, params: Sequence[str], direction: str) -> str:
    ok = _ok(df)
    if ok.empty:
        return '<p class="note">No cell finished ok.</p>'
    best = ok.sort_values("objective", ascending=direction == "minimize", na_position="last")
    cols = [
        c
        for c in ("cell", "trial", *params, "start", "seed", *_BEST_COLUMNS)
        if c in best and best[c].notna().any()
    ]
    return _table(best.head(_TOP)[cols], index=False)


def _failed(df: pd.DataFrame, params: Sequence[str]) -> str:
    if "status" not in df:
        return ""
    bad = df[df["status"] != "ok"]
    if bad.empty:
        return '<p class="note">No cell failed.</p>'
    cols = [c for c in ("cell", *params, "start", "error") if c in bad]
    return _table(bad.head(50)[cols], index=False)


def _heatmaps(df: pd.DataFrame, params: Sequence[str], objective: str) -> str:
    import numpy as np

    ok = _ok(df)
    pairs = list(itertools.combinations(params, 2))[:_MAX_PAIRS]
    if ok.empty or not pairs:
        return '<p class="note">A heatmap needs two parameters and cells that finished ok.</p>'
    out = []
    for x, y in pairs:
        frame = ok.assign(_x=_numeric(ok[x]), _y=_numeric(ok[y]))
        grid = frame.pivot_table(index="_y", columns="_x", values="objective", aggfunc="mean")
        grid = grid.sort_index().sort_index(axis=1)
        fig = _figure(width=7.0, height=4.5)
        ax = fig.axes[0]
        values = grid.to_numpy(dtype=np.float64)
        image = ax.imshow(values, aspect="auto", origin="lower", cmap="viridis")
        ax.set_xticks(range(len(grid.columns)), [str(c) for c in grid.columns], rotation=45)
        ax.set_yticks(range(len(grid.index)), [str(i) for i in grid.index])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        if values.size <= 150:
            finite = values[np.isfinite(values)]
            middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
            for (i, j), v in np.ndenumerate(values):
                if np.isfinite(v):
                    # dark text on the bright end of viridis, light on the dark end
                    colour = "k" if v > middle else "w"
                    ax.text(j, i, f"{v:,.1f}", ha="center", va="center", fontsize=8, color=colour)
        fig.colorbar(image, ax=ax, label=f"mean {objective}")
        table = grid.rename_axis(index=y, columns=x)
        out.append(
            f"<h3>{_esc(y)} vs {_esc(x)}</h3>"
            f'<p class="note">mean {_esc(objective)} over windows and other parameters</p>'
            f"{_img(fig, f'heatmap {y} vs {x}')}{_table(table)}"
        )
    return "".join(out)


def _versus(df: pd.DataFrame, params: Sequence[str]) -> str:
    ok = _ok(df)
    if ok.empty:
        return '<p class="note">No cell finished ok.</p>'
    metrics = [m for m in _PLOTTED if m in ok]
    out = []
    for p in params:
        frame = ok.assign(_p=_numeric(ok[p]))
        means = frame.groupby("_p")[metrics].mean().sort_index().rename_axis(p)
        fig = _figure(width=10.0, height=2.6, rows=(len(metrics) + 1) // 2, cols=2)
        axes = fig.axes
        for ax, m in zip(axes, metrics, strict=False):
            many = len(means) > 25
            # few distinct values (a grid): the mean per value, a line; many (random,
            # optuna): every cell, a scatter
            if many:
                ax.scatter(frame["_p"], frame[m], s=10, alpha=0.6)
            else:
                xs = list(range(len(means))) if means.index.dtype == object else means.index
                ax.plot(xs, means[m], marker="o")
                if means.index.dtype == object:
                    ax.set_xticks(xs, [str(i) for i in means.index])
            ax.set_xlabel(p)
            ax.set_ylabel(m)
        for ax in axes[len(metrics) :]:
            ax.set_visible(False)
        out.append(
            f"<h3>metrics vs {_esc(p)}</h3>{_img(fig, f'metrics vs {p}')}{_table(means.head(40))}"
        )
    return "".join(out)


def render_sweep_report(
    df: pd.DataFrame,
    *,
    params: Sequence[str],
    objective: str,
    direction: str,
    title: str = "arbsim sweep",
) -> str:
    """The HTML of a sweep's results (``df``: one row per cell, as ``run_sweep``
    returns and ``results.parquet`` holds)."""
    sections = [
        ("best", f"Best cells by {objective}", _best(df, params, direction)),
        ("failed", "Failed cells", _failed(df, params)),
        ("heatmaps", "Heatmaps per pair of parameters", _heatmaps(df, params, objective)),
        ("versus", "Metrics vs each parameter", _versus(df, params)),
    ]
    nav = " ".join(f'<a href="#{key}">{_esc(name)}</a>' for key, name, _ in sections)
    body = [
        f"<h1>{_esc(title)}</h1>",
        _header(df, params, objective, direction),
        f"<nav>{nav}</nav>",
    ]
    body += [f'<h2 id="{key}">{_esc(name)}</h2>{html}' for key, name, html in sections]
    return html_page(title, "".join(body), "arbsim sweep")


def write_sweep_report(
    df: pd.DataFrame,
    out: Path,
    *,
    params: Sequence[str],
    objective: str,
    direction: str,
    title: str = "arbsim sweep",
) -> Path:
    """Render the sweep report and write it to ``out``."""
    text = render_sweep_report(
        df, params=params, objective=objective, direction=direction, title=title
    )
    out.write_text(text, encoding="utf-8")
    return out
