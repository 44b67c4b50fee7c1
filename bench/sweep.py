"""Sweep throughput: cells/s and aggregate backtest events/s with 1, 2, ... Dask workers.

    python bench/sweep.py [--data data/sample] [--cells 16] [--window-s 60]
                          [--workers 1,2] [--no-warmup] [--json]

Every cell is the default config on the same window (the first ``--window-s`` seconds
of the catalog) with its own ``strategy.params.min_edge_bps``, so cells cost the same
and the figures compare worker counts, not windows. For each worker count a
LocalCluster on 127.0.0.1 is started (its start-up is timed apart), warmed by one cell
per worker (imports, first catalog read), then the sweep is timed from submission to
the last result. ``overhead/cell`` is the time a worker spent per cell beyond the
backtest's own replay (``wall * workers / cells - mean replay``): scheduling, the
config check, writing the cell's summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from distributed import LocalCluster

from arbsim.app.backtest import default_config_path, iso
from arbsim.app.sweep import run_sweep
from arbsim.data.catalog import Catalog


def _grid(path: Path, cells: int, start: str, end: str) -> Path:
    edges = ", ".join(str(Decimal("3.0") + Decimal("0.25") * i) for i in range(cells))
    path.write_text(
        f"params:\n  strategy.params.min_edge_bps: [{edges}]\n"
        f"windows: [{{start: '{start}', end: '{end}'}}]\n"
    )
    return path


def _measure(workers: int, args: argparse.Namespace, start: str, end: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="arbsim-bench-sweep-") as tmp:
        t0 = time.perf_counter()
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.ERROR,
        )
        startup = time.perf_counter() - t0
        try:
            config = default_config_path()
            common = {
                "data": args.data,
                "scheduler": cluster.scheduler_address,
                "keep": "summary",
                "report": False,
            }
            if not args.no_warmup:
                warm = _grid(Path(tmp) / "warm.yaml", workers, start, end)
                run_sweep(config, warm, out=Path(tmp) / "warm", **common)
            grid = _grid(Path(tmp) / "grid.yaml", args.cells, start, end)
            t0 = time.perf_counter()
            df = run_sweep(config, grid, out=Path(tmp) / "sweep", **common)
            wall = time.perf_counter() - t0
        finally:
            cluster.close()
    ok = df[df["status"] == "ok"]
    replay = float(ok["wall_seconds"].mean())
    return {
        "workers": workers,
        "cells": len(df),
        "failed": int((df["status"] != "ok").sum()),
        "cluster_start_s": round(startup, 2),
        "wall_s": round(wall, 2),
        "cells_per_s": round(len(df) / wall, 3),
        "events_per_s": round(float(ok["events"].sum()) / wall),
        "events_per_cell": round(float(ok["events"].mean())),
        "replay_s_per_cell": round(replay, 3),
        "overhead_s_per_cell": round(wall * workers / len(df) - replay, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/sample"))
    parser.add_argument("--cells", type=int, default=16)
    parser.add_argument("--window-s", type=float, default=60.0)
    parser.add_argument("--workers", default="1,2", help="worker counts, comma separated")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    catalog = Catalog(args.data)
    first = min(
        r[0]
        for x in catalog.instruments()
        if (r := catalog.time_range(x.venue, x.symbol)) is not None
    )
    start, end = iso(first), iso(first + int(args.window_s * 1e9))
    rows = [_measure(int(n), args, start, end) for n in args.workers.split(",")]
    base = rows[0]["cells_per_s"]
    for r in rows:
        r["speedup"] = round(r["cells_per_s"] / base, 2) if base else None
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"sweep bench: {args.cells} cells of {args.window_s:g} s ({start} ->) on {args.data}")
    head = ("workers", "cells/s", "speedup", "events/s", "replay s/cell", "overhead s/cell")
    print("  ".join(f"{h:>15}" for h in head))
    for r in rows:
        cols = (
            r["workers"],
            f"{r['cells_per_s']:.2f}",
            f"{r['speedup']:.2f}x",
            f"{r['events_per_s']:,}",
            f"{r['replay_s_per_cell']:.3f}",
            f"{r['overhead_s_per_cell']:.3f}",
        )
        print("  ".join(f"{c:>15}" for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
