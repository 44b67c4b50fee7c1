"""Analysis of run outputs: typed frames (``load_run`` and its helpers), the HTML
report and the comparison of two runs. Reads only the files of a run directory."""

from arbsim.analysis.frames import (
    LEG_KINDS,
    Run,
    arb_edges,
    fill_ratios,
    inventory,
    latency_percentiles,
    leg_slippage,
    load_run,
    order_legs,
    pnl_over_time,
    slippage_summary,
    time_to_fill,
)

__all__ = [
    "LEG_KINDS",
    "Run",
    "arb_edges",
    "fill_ratios",
    "inventory",
    "latency_percentiles",
    "leg_slippage",
    "load_run",
    "order_legs",
    "pnl_over_time",
    "slippage_summary",
    "time_to_fill",
]
