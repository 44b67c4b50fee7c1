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
    "max_drawdown",
    "sharpe",
    "events",
    "events_per_s",
    "wall_seconds",
)
_SECONDS_PER_YEAR = 365.0 * 24 * 3600


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
            catalog_path=Path(cfg.data.catalog),
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
    """The :data:`METRICS` of one run: the summary's figures, the fill ratio (filled over
    ordered quantity, every order) and the maximum drawdown (quote) and Sharpe ratio
    (mean over standard deviation of the per-interval returns, annualised from the
    sampling interval; NaN for a flat or too short curve) of the strategy's equity
    curve: starting capital plus net PnL, sampled as ``equity.parquet``."""
    import numpy as np
    import pyarrow.parquet as pq

    arbs = summary.get("arbs") or {}
    pnl = summary.get("pnl") or {}
    metrics: dict[str, float] = {
        "net_pnl": float(pnl.get("net", 0.0)),
        "gross_pnl": float(pnl.get("gross", 0.0)),
        "fees": float(pnl.get("fees", 0.0)),
        "attempts": float(arbs.get("attempted", 0)),
        "decisions": float(arbs.get("decisions", 0)),
        **{k: float(arbs.get(k, 0)) for k in OUTCOMES},
        "orders": float(summary.get("orders", 0)),
        "fills": float(summary.get("fills", 0)),
        "events": float(summary.get("events", 0)),
        "events_per_s": float(summary.get("events_per_s") or 0.0),
        "wall_seconds": float(summary.get("wall_seconds", 0.0)),
    }
    orders = pq.read_table(run_dir / "orders.parquet", columns=["qty", "filled_qty"])
    qty = np.asarray(orders.column("qty").to_pylist(), dtype=np.float64)
    filled = np.asarray(orders.column("filled_qty").to_pylist(), dtype=np.float64)
    metrics["fill_ratio"] = float(filled.sum() / qty.sum()) if qty.sum() > 0 else math.nan
    table = pq.read_table(run_dir / "equity.parquet", columns=["ts", "equity", "net_pnl"])
    ts = table.column("ts").to_numpy().astype(np.int64)
    equity = table.column("equity").to_numpy().astype(np.float64)
    net = table.column("net_pnl").to_numpy().astype(np.float64)
    # the strategy's equity: the starting capital plus its net PnL. The marked equity
    # also moves with the price of the inventory held from the start, a market move
    # that would swamp an arbitrage's drawdown and Sharpe ratio
    curve = equity[0] - net[0] + net if equity.size else equity
    metrics["max_drawdown"] = max_drawdown(curve)
    metrics["sharpe"] = sharpe(curve, ts)
    return metrics


def max_drawdown(equity: Any) -> float:
    """The largest fall of ``equity`` from an earlier peak (0 for an empty curve)."""
    import numpy as np

    values = np.asarray(equity, dtype=np.float64)
    if values.size == 0:
        return 0.0
    return float(np.max(np.maximum.accumulate(values) - values))


def sharpe(equity: Any, ts_ns: Any) -> float:
    """Annualised Sharpe ratio of an equity curve sampled at ``ts_ns`` (NaN when it has
    fewer than three points or does not move)."""
    import numpy as np

    values = np.asarray(equity, dtype=np.float64)
    if values.size < 3:
        return math.nan
    returns = np.diff(values) / values[:-1]
    sd = float(np.std(returns, ddof=1))
    if not sd > 0:
        return math.nan
    interval_s = float(np.median(np.diff(np.asarray(ts_ns, dtype=np.int64)))) / 1e9
    if not interval_s > 0:
        return math.nan
    return float(np.mean(returns) / sd * math.sqrt(_SECONDS_PER_YEAR / interval_s))
