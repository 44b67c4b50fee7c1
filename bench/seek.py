"""Fast windows: a short window at the end of a long catalog, with and without seek.

    python bench/seek.py [--data CATALOG | --make DIR --hours 4 --snapshot-every 60]
                         [--window-s 60] [--json]

Runs the default config (on the catalog's two venues) over the last ``--window-s``
seconds of the catalog twice, each run in a process of its own (so the peak RSS is the
run's): ``seek`` (each book stream read from its latest snapshot received before the
window, each trade stream from the window's start) and ``full`` (the warm-up replays
every message from the catalog's start: the code path before seek). Prints per run the
events replayed (book level changes and trades, warm-up included), the wall time of
the whole ``run_backtest`` call, events/s and the peak RSS; then the events inside the
window and in the warm-up since the latest snapshot (what seek may replay at most,
plus one read batch per stream), and whether the two runs' orders, fills, arbs,
equity and latency files are byte-identical.

``--make DIR`` writes a synthetic catalog there first (``arbsim data synth`` with
periodic snapshots; kept, reused when it exists).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

OUTPUTS = ("orders.parquet", "fills.parquet", "arbs.parquet", "equity.parquet", "latency.parquet")
BATCH = 16_384  # the replay venue's read batch


def _one(args: argparse.Namespace) -> None:
    """One run (in the child process)."""
    from arbsim.app.backtest import catalog_config, default_config_path, run_backtest
    from arbsim.app.config import load_config
    from arbsim.data.catalog import Catalog

    cfg, _ = catalog_config(Catalog(args.data), load_config(default_config_path()))
    t0 = time.perf_counter()
    res = run_backtest(
        cfg,
        catalog_path=Path(args.data),
        out_dir=Path(args.out),
        start=args.start,
        end=args.end,
        seek=args.one == "seek",
    )
    wall = time.perf_counter() - t0
    s = res.summary
    print(
        json.dumps(
            {
                "mode": args.one,
                "events": s["events"],
                "messages": s["messages"],
                "wall_s": round(wall, 3),
                "events_per_s": round(s["events"] / wall),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "arbs": s["arbs"],
            }
        )
    )


def _rows(data: Path, start_ns: int, end_ns: int) -> dict[str, int]:
    """Rows (events) of every stream inside the window and since each stream's seek."""
    from arbsim.data.catalog import Catalog

    cat = Catalog(data)
    inside = warmup = total = 0
    for inst in cat.instruments():
        for kind in ("book", "trades"):
            files = cat.files(inst.venue, inst.symbol, kind)
            seek = cat.seek(inst.venue, inst.symbol, kind, start_ns, BATCH)
            for i, path in enumerate(files):
                tsl = pq.read_table(path, columns=["ts_local"]).column(0).to_numpy()
                total += int(np.count_nonzero(tsl < end_ns))
                inside += int(np.count_nonzero((tsl >= start_ns) & (tsl < end_ns)))
                if i >= seek.file:
                    part = tsl[seek.row :] if i == seek.file else tsl
                    warmup += int(np.count_nonzero(part < start_ns))
    return {"window_events": inside, "warmup_events": warmup, "events_to_end": total}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="catalog (with periodic snapshots to gain)")
    ap.add_argument("--make", type=Path, help="write a synthetic catalog here first")
    ap.add_argument("--hours", type=float, default=4.0, help="--make: hours of data")
    ap.add_argument("--snapshot-every", type=float, default=60.0, help="--make: seconds")
    ap.add_argument("--window-s", type=float, default=60.0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--one", choices=["seek", "full"], help=argparse.SUPPRESS)
    ap.add_argument("--start", help=argparse.SUPPRESS)
    ap.add_argument("--end", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        _one(args)
        return

    from arbsim.app.backtest import iso
    from arbsim.data.catalog import Catalog
    from arbsim.data.synth import generate_synthetic

    if args.make is not None:
        if not (args.make / "catalog.json").exists():
            t0 = time.perf_counter()
            generate_synthetic(
                args.make,
                seed=7,
                duration_s=args.hours * 3600,
                snapshot_every_s=args.snapshot_every,
            )
            print(f"wrote {args.make} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        data = args.make
    elif args.data is not None:
        data = args.data
    else:
        ap.error("give --data CATALOG or --make DIR")
    cat = Catalog(data)
    ranges = [cat.time_range(i.venue, i.symbol) for i in cat.instruments()]
    end_ns = min(r[1] for r in ranges if r is not None)
    start_ns = end_ns - int(args.window_s * 1e9)
    start, end = iso(start_ns), iso(end_ns)
    rows = _rows(data, start_ns, end_ns)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="arbsim-bench-seek-") as tmp:
        for mode in ("seek", "full"):
            out = Path(tmp) / mode
            cmd = [sys.executable, __file__, "--one", mode, "--data", str(data)]
            cmd += ["--start", start, "--end", end, "--out", str(out)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"{mode} run failed:\n{done.stderr}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        same = {
            f: filecmp.cmp(Path(tmp) / "seek" / f, Path(tmp) / "full" / f, False) for f in OUTPUTS
        }
    report = {
        "catalog": str(data),
        "window": [start, end],
        **rows,
        "runs": results,
        "identical": same,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"catalog {data}, window {start} -> {end}")
    print(
        f"  events in the window {rows['window_events']:,}, in the warm-up since the "
        f"latest snapshots {rows['warmup_events']:,}, from the catalog's start to the "
        f"window's end {rows['events_to_end']:,}"
    )
    for r in results:
        print(
            f"  {r['mode']:<5} {r['events']:>12,} events  {r['wall_s']:8.2f} s  "
            f"{r['events_per_s']:>10,} ev/s  peak RSS {r['peak_rss_mb']:,.0f} MB"
        )
    seek, full = results
    differ = [f for f, ok in same.items() if not ok]
    print(
        f"  seek: {seek['events'] / full['events']:.1%} of the events, "
        f"{seek['wall_s'] / full['wall_s']:.1%} of the time; "
        + (f"outputs DIFFER: {', '.join(differ)}" if differ else "outputs byte-identical")
    )


if __name__ == "__main__":
    main()
