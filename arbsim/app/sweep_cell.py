"""One cell of a sweep, as a worker runs it: a backtest of a config text, and its metrics.

What travels to a worker is a :class:`CellTask` (the cell's validated config YAML, which
names the catalog path and the window, and where to write the run); what comes back is
a small dict of builtins (status, error, metrics, summary). The catalog is read by the
worker from its path: no market data goes through the scheduler. This module imports
neither dask nor optuna: a worker only needs arbsim.
"""

from __future__ import annotations

import functools
import math
import shutil
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from arbsim.app.registry import Registry

#: the arbitrage outcomes counted per cell (see `arbsim backtest`'s summary)
OUTCOMES = (
    "completed",
    "partial",
    "hedged",
    "unwound",
    "exposed",
    "missed",
    "failed",
    "unresolved",
    "skipped",
    "denied",
)
#: of the summary's session statistics (``stats``): the net PnL curve's, in quote
#: (drawdown) or as ratios, and the arbitrages'
_CURVE_STATS = ("max_drawdown", "sharpe", "sortino", "return_on_capital", "turnover")
_ARB_STATS = ("win_rate", "profit_factor", "edge_capture")
#: the numeric result of each cell: a column of results.parquet, a name an objective uses
METRICS = (
    "net_pnl",
    "gross_pnl",
    "fees",
    "attempts",
    "decisions",
    *OUTCOMES,
    "orders",
    "fills",
    "fill_ratio",
    *_CURVE_STATS,
    *_ARB_STATS,
    "events",
    "events_per_s",
    "wall_seconds",
)


class CellTask(msgspec.Struct, frozen=True, kw_only=True):
    """What a worker is sent for one cell."""

    key: str
    #: the validated config (YAML) with data.catalog, data.start and data.end set
    config_text: bytes
    #: the cell's run directory; None: a temporary one, only the summary is kept
    out_dir: str | None


def dask_setup(worker: object) -> None:
    """Run by each worker of a sweep's own LocalCluster as it starts (its ``preload``).

    Ctrl-C in a terminal signals the whole process group: the sweep process cancels
    the cells and closes the cluster itself, so a worker ignores SIGINT instead of
    dying with a traceback (and having its cells recomputed elsewhere)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@functools.cache
def _registry() -> Registry:
    """The plug-ins, found once per worker process: scanning the installed packages'
    entry points takes about as long as replaying a one-minute cell."""
    from arbsim.app.registry import Registry

    return Registry.from_entry_points()


def run_cell(task: bytes) -> dict[str, Any]:
    """Run one cell (``task``: a msgpack-encoded :class:`CellTask`) and return
    ``{key, status, error, metrics, summary}``. A failing cell is an ``error`` status
    with the error's text, never an exception: the sweep goes on."""
    from arbsim.app.backtest import run_backtest
    from arbsim.app.config import parse_config
    from arbsim.data.catalog import catalog_location

    cell = msgspec.msgpack.decode(task, type=CellTask)
    out: dict[str, Any] = {"key": cell.key, "status": "error", "error": None, "metrics": {}}
    tmp = None if cell.out_dir is not None else tempfile.mkdtemp(prefix="arbsim-cell-")
    run_dir = Path(cell.out_dir if cell.out_dir is not None else str(tmp))
    try:
        # a cell re-run after an interrupted sweep starts from an empty directory
        if cell.out_dir is not None and run_dir.exists():
            shutil.rmtree(run_dir)
        cfg = parse_config(cell.config_text, f"cell {cell.key}", registry=_registry())
        if cfg.data.catalog is None:
            raise ValueError("the cell's config names no data.catalog")
        result = run_backtest(
            cfg,
            catalog_path=catalog_location(cfg.data.catalog),
            out_dir=run_dir,
            config_source=f"sweep cell {cell.key}",
            registry=_registry(),
        )
        out["summary"] = result.summary
        out["metrics"] = cell_metrics(result.summary, run_dir)
        out["status"] = "ok"
    except Exception as e:  # recorded in the results: one bad cell never stops a sweep
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def cell_metrics(summary: dict[str, Any], run_dir: Path) -> dict[str, float]:
    """The :data:`METRICS` of one run: the summary's figures and session statistics
    (``stats``: drawdown, Sharpe and Sortino of the net PnL curve, return on capital,
    turnover, the arbitrages' win rate, profit factor and edge capture; NaN where
    undefined) and the fill ratio (filled over ordered quantity, every order)."""
    import numpy as np
    import pyarrow.parquet as pq

    arbs = summary.get("arbs") or {}
    pnl = summary.get("pnl") or {}
    stats = summary.get("stats") or {}
    arb_stats = stats.get("arbs") or {}

    def number(value: object) -> float:
        return math.nan if value is None else float(str(value))

    metrics: dict[str, float] = {
        "net_pnl": float(pnl.get("net", 0.0)),
        "gross_pnl": float(pnl.get("gross", 0.0)),
        "fees": float(pnl.get("fees", 0.0)),
        "attempts": float(arbs.get("attempted", 0)),
        "decisions": float(arbs.get("decisions", 0)),
        **{k: float(arbs.get(k, 0)) for k in OUTCOMES},
        "orders": float(summary.get("orders", 0)),
        "fills": float(summary.get("fills", 0)),
        **{k: number(stats.get(k)) for k in _CURVE_STATS},
        **{k: number(arb_stats.get(k)) for k in _ARB_STATS},
        "events": float(summary.get("events", 0)),
        "events_per_s": float(summary.get("events_per_s") or 0.0),
        "wall_seconds": float(summary.get("wall_seconds", 0.0)),
    }
    orders = pq.read_table(run_dir / "orders.parquet", columns=["qty", "filled_qty"])
    qty = np.asarray(orders.column("qty").to_pylist(), dtype=np.float64)
    filled = np.asarray(orders.column("filled_qty").to_pylist(), dtype=np.float64)
    metrics["fill_ratio"] = float(filled.sum() / qty.sum()) if qty.sum() > 0 else math.nan
    return metrics
