"""Backtest against paper: does a backtest of a paper session's own recording predict it?

On 127.0.0.1: the simulator replays a window of the bundled sample at speed 1 (both
venues on one clock); `arbsim paper` trades the cross-exchange strategy against it with
the default config (recording what it receives into RUN/catalog); then `arbsim backtest
--data RUN/catalog --config RUN/config.yaml --latency-from RUN` replays that recording
with the same config and the session's measured latencies, and the two runs are compared
decision by decision. The same backtest without ``--latency-from`` (the config's latency
model alone) is shown beside it. Printed per run:

- decisions in common at 100 ms (matched / the larger count);
- fill ratio of each run;
- matched legs filled within one tick (both runs filled the leg; average prices at most
  one tick apart);
- same outcome (matched decisions that ended alike);
- the net PnL gap relative to the paper run.

``--noise`` also runs a second paper session on the same window and compares the two
paper runs: the floor the backtest cannot be expected to beat.

    python bench/fidelity.py --runs 3 --noise
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crash_resume import Sim

from arbsim.analysis import Run, load_run
from arbsim.analysis.compare import compare_runs
from arbsim.app.backtest import default_config_path

DAY = "2026-01-05"


def arbsim(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "arbsim.app.cli", *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"arbsim {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def paper(work: Path, name: str, start: str, end: str, seconds: float) -> tuple[Path, int]:
    """A paper session on the simulator's window; its run and the simulator's clock offset
    (exchange time = catalog time + offset)."""
    sim = Sim(1.0, "--start", start, "--end", end, "--no-loop")
    try:
        with urllib.request.urlopen(f"{sim.venues['mexc']['admin']}/_sim/state") as r:
            offset = int(json.loads(r.read())["clock"]["offset_ns"])
        run = work / name
        urls = [f"--venue-url={n}={v['rest']},{v['ws']}" for n, v in sim.venues.items()]
        arbsim("paper", "--config", str(default_config_path()), "--out", str(run),
               "--duration", str(seconds), *urls)  # fmt: skip
        return run, offset
    finally:
        sim.stop()


def measure(a: Run, b: Run) -> dict[str, Any]:
    """B (a paper session) against A (its backtest, or another session)."""
    c = compare_runs(a, b, tolerance_ms=100.0)
    d, tick = c["decisions"], c["fill_prices"]["within_one_tick"]
    net_b = c["pnl"]["net_b"]
    return {
        "decisions": (d["a"], d["b"]),
        "in_common": d["share_of_larger"] or 0.0,
        "fill_ratio": (c["fill_ratio"]["a"] or 0.0, c["fill_ratio"]["b"] or 0.0),
        "legs_within_tick": tick["share"] if tick["share"] is not None else float("nan"),
        "legs": tick["legs"],
        "same_outcome": d["same_outcome_share"] or float("nan"),
        "pnl": (c["pnl"]["net_a"], net_b),
        "pnl_gap": abs(c["pnl"]["gap"]) / abs(net_b) if net_b else float("nan"),
    }


def show(label: str, m: dict[str, Any]) -> None:
    print(
        f"{label:<22} decisions {m['decisions'][0]:>4} / {m['decisions'][1]:>4}  "
        f"in common {m['in_common']:6.1%}  fill ratio {m['fill_ratio'][0]:.3f} / "
        f"{m['fill_ratio'][1]:.3f}  legs within a tick {m['legs_within_tick']:6.1%} "
        f"(of {m['legs']})  same outcome {m['same_outcome']:6.1%}  net "
        f"{m['pnl'][0]:,.2f} / {m['pnl'][1]:,.2f}  gap {m['pnl_gap']:6.1%}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=4.0, help="length of each window")
    ap.add_argument("--noise", action="store_true", help="also paper against paper")
    ap.add_argument("--keep", help="directory for the runs (default: a temporary one)")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="arbsim-fidelity-"))
    work.mkdir(parents=True, exist_ok=True)
    for i in range(args.runs):
        m0 = 1 + i * (args.minutes + 0.5)
        start = f"{DAY}T00:{int(m0):02d}:{int(m0 % 1 * 60):02d}Z"
        m1 = m0 + args.minutes
        end = f"{DAY}T00:{int(m1):02d}:{int(m1 % 1 * 60):02d}Z"
        seconds = args.minutes * 60 + 2
        run, offset = paper(work, f"paper{i}", start, end, seconds)
        bt, bt_cfg = work / f"backtest{i}", work / f"backtest{i}-config-latency"
        arbsim("backtest", "--data", str(run / "catalog"), "--config",
               str(run / "config.yaml"), "--latency-from", str(run), "--out", str(bt))  # fmt: skip
        arbsim("backtest", "--data", str(run / "catalog"), "--config",
               str(run / "config.yaml"), "--out", str(bt_cfg))  # fmt: skip
        show(f"window {start[11:16]}-{end[11:16]}", measure(load_run(bt), load_run(run)))
        show("  config latency only", measure(load_run(bt_cfg), load_run(run)))
        if args.noise and i == 0:
            again, offset2 = paper(work, "paper0-again", start, end, seconds)
            # the second session ran later: move it onto the first one's exchange time
            moved = load_run(again).shifted(offset - offset2)
            show("  noise: paper/paper", measure(moved, load_run(run)))
    print(f"runs in {work}")


if __name__ == "__main__":
    main()
