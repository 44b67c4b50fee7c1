"""Kill -9 `arbsim live` at random moments and resume it: the run must match the venue.

Starts `arbsim exchange-sim` (MEXC and Gate.io on 127.0.0.1), then runs the
cross-exchange strategy with `arbsim live` against it and, trial after trial:

1. `arbsim live --resume RUN` (the first trial: `--out RUN`) is killed with SIGKILL after
   a random delay while it trades;
2. `arbsim live --resume RUN --duration D` reconciles the journal with both venues and
   trades on for D seconds, then stops cleanly and writes the run;
3. the run is judged against the simulator's own record of the account
   (`GET /_sim/ledger`): every order the venue has is in the run with the same status
   and filled quantity, every fill the venue made is in the run once (trade ids), no
   order the run says was never placed exists at the venue, and the ledger reconciles
   exactly with the venue's balances.

It also reports what each kill interrupted (from the journal at the moment of the kill):
requests sent without an answer, and arbitrages started but not finished.

    python bench/crash_resume.py --trials 20
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

CONFIG = """
strategy:
  name: cross_exchange
  params: {{symbol: BTC/USDT, venues: [mexc, gateio], max_qty: "0.05", min_edge_bps: 0.5,
           cooldown_s: 0.05, leg_timeout_s: 2.0}}
venues:
  - name: mexc
  - name: gateio
risk: {{max_position: {{BTC: "1"}}, max_one_sided: "1", max_total_exposure: "200000",
       max_order_notional: "30000", max_open_orders: 20, max_orders_per_s: 20,
       max_daily_loss: "100000", stale_data_s: {stale}}}
run: {{drain_s: 0.2, equity_interval_s: 0.5}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Drain:
    """Reads a child's output as it comes: a pipe nobody reads fills up, and the child's
    next write (a log line) then blocks its event loop, trading and all."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        if proc.stdout is not None:
            for line in proc.stdout:
                self.lines.append(line)

    def text(self, timeout_s: float = 10.0) -> str:
        """Everything the child wrote (waits for the end of its output, bounded)."""
        self._thread.join(timeout_s)
        return "".join(self.lines)


_DRAINS: dict[int, Drain] = {}


def output(proc: subprocess.Popen[str]) -> str:
    """What a child started by :func:`live` wrote (stdout and stderr)."""
    return _DRAINS[proc.pid].text()


class Sim:
    """`arbsim exchange-sim` as a subprocess; its URLs and demo credentials."""

    def __init__(self, speed: float, *extra: str) -> None:
        port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "arbsim.app.cli", "exchange-sim", "--port", str(port),
             "--speed", str(speed), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.venues: dict[str, dict[str, str]] = {}
        #: (venue, asset, network) -> the deposit address of the venue's account
        self.addresses: dict[tuple[str, str, str], str] = {}
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            m = re.match(r"(\w+): REST (\S+)\s+WS (\S+)\s+api_key=(\S+) api_secret=(\S+)", line)
            deposit = re.match(r"(\w+): deposit (\S+) on (\S+) to (\S+) ", line)
            if deposit:
                venue, asset, network, address = deposit.groups()
                self.addresses[venue, asset, network] = address
            if m:
                name, rest, ws, key, secret = m.groups()
                base = rest.removesuffix("/api/v3") if name == "mexc" else rest
                admin = rest.split("/api/")[0]
                self.venues[name] = dict(rest=base, ws=ws, key=key, secret=secret, admin=admin)
            if line.startswith("catalog"):
                break
        if set(self.venues) != {"mexc", "gateio"}:
            raise SystemExit(f"simulator did not start: {self.venues}")
        self.drain = Drain(self.proc)  # the rest of its log

    def slow_orders(self, delay_s: float) -> None:
        """Order requests are answered late (processed at once; Gate's twice as late as
        MEXC's), so that one leg can be answered while the other is not."""
        paths = {"mexc": "/api/v3/order", "gateio": "/api/v4/spot/orders"}
        for name, v in self.venues.items():
            rule = {"kind": "slow", "count": 10**9, "path": paths[name], "method": "POST",
                    "delay_s": delay_s * (2 if name == "gateio" else 1)}  # fmt: skip
            req = urllib.request.Request(
                f"{v['admin']}/_sim/faults", data=json.dumps(rule).encode(), method="POST"
            )
            urllib.request.urlopen(req, timeout=10).close()

    def ledger(self, venue: str) -> dict[str, Any]:
        v = self.venues[venue]
        with urllib.request.urlopen(f"{v['admin']}/_sim/ledger", timeout=10) as r:
            data: dict[str, Any] = json.loads(r.read())
        return data[v["key"]]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


def sim_env(sim: Sim) -> dict[str, str]:
    """The environment of an `arbsim live` trading on the simulator's demo accounts."""
    env = dict(os.environ)
    for name, prefix in (("mexc", "ARBSIM_MEXC"), ("gateio", "ARBSIM_GATEIO")):
        env[f"{prefix}_API_KEY"] = sim.venues[name]["key"]
        env[f"{prefix}_API_SECRET"] = sim.venues[name]["secret"]
    return env


def live(sim: Sim, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    urls = [f"--venue-url={n}={v['rest']},{v['ws']}" for n, v in sim.venues.items()]
    proc = subprocess.Popen(
        [sys.executable, "-m", "arbsim.app.cli", "live", *args, *urls],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    _DRAINS[proc.pid] = Drain(proc)
    return proc


def in_flight(journal: Path) -> tuple[int, int, bool]:
    """(orders sent without an answer yet, arbs started but not finished, whether an
    unfinished arb had one order answered and another not) in the journal."""
    if not journal.exists():
        return 0, 0, False
    db = sqlite3.connect(journal, timeout=5)
    try:
        # an order is between its request and its answer until the venue's answer (acked,
        # or a refusal) is journalled; private pushes may have come meanwhile
        events: dict[str, set[str]] = {}
        status: dict[str, str] = {}
        for cid, event, state in db.execute(
            "SELECT client_order_id, event, status FROM orders ORDER BY seq"
        ):
            events.setdefault(cid, set()).add(event)
            status[cid] = state
        final = {"filled", "canceled", "expired", "rejected"}
        waiting = {
            c
            for c, ev in events.items()
            if not ev & {"acked", "rejected"} and status[c] not in final
        }
        records = {
            arb_id: json.loads(record)
            for arb_id, record in db.execute("SELECT arb_id, record FROM arbs ORDER BY seq")
        }
        done = {r[0] for r in db.execute("SELECT arb_id FROM arbs WHERE event='finished'")}
        open_arbs = [r for a, r in records.items() if a not in done]
        split = any(
            {c in waiting for c in r["orders"] if c in events} == {True, False} for r in open_arbs
        )
        return len(waiting), len(open_arbs), split
    except sqlite3.OperationalError:  # the tables are not there yet
        return 0, 0, False
    finally:
        db.close()


def kill_when(proc: subprocess.Popen[str], journal: Path, mode: str, deadline: float) -> None:
    """Wait for the moment ``mode`` asks for (``request``: an order sent without its
    answer yet; ``arb``: an arbitrage between its decision and its outcome, its legs or
    repairs in flight; ``random``: the deadline), then SIGKILL; at the deadline in any
    case."""
    while time.monotonic() < deadline and mode != "random":
        unanswered, arbs_open, _ = in_flight(journal)
        if (mode == "request" and unanswered) or (mode == "arb" and arbs_open):
            break
        time.sleep(0.005)
    else:
        time.sleep(max(0.0, deadline - time.monotonic()))
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _state(status: str) -> str:
    """An order's state as both sides can see it: an IOC remainder the venue expired is
    canceled in its API answers."""
    return "closed" if status in ("canceled", "expired") else status


def judge(sim: Sim, run: Path) -> list[str]:
    """Differences between the run's records and the simulator's (empty: they agree)."""
    problems: list[str] = []
    summary = json.loads((run / "summary.json").read_text())
    if not summary["reconciled_exactly"]:
        problems.append(f"ledger not reconciled: {summary['reconciliation']}")
    orders = pq.read_table(run / "orders.parquet").to_pylist()
    fills = pq.read_table(run / "fills.parquet").to_pylist()
    for venue in ("mexc", "gateio"):
        ledger = sim.ledger(venue)
        mine = {o["client_order_id"]: o for o in orders if o["venue"] == venue}
        for o in ledger["orders"]:
            cid = o["client_id"].removeprefix("t-")
            got = mine.get(cid)
            if got is None:
                problems.append(f"{venue}: order {cid} at the venue is not in the run")
            elif (_state(got["status"]), Decimal(got["filled_qty"])) != (
                _state(o["status"]),
                Decimal(o["filled_qty"]),
            ):
                problems.append(
                    f"{venue}: order {cid}: run {got['status']} {got['filled_qty']}, "
                    f"venue {o['status']} {o['filled_qty']}"
                )
        at_venue = {o["client_id"].removeprefix("t-") for o in ledger["orders"]}
        for cid, o in mine.items():
            if o["reject_code"] == "not_placed" and cid in at_venue:
                problems.append(f"{venue}: order {cid} said never placed is at the venue")
        venue_trades = sorted(
            (f["trade_id"], Decimal(f["qty"]), Decimal(f["price"])) for f in ledger["fills"]
        )
        run_trades = sorted(
            (f["trade_id"].rsplit("-", 1)[-1], Decimal(f["qty"]), Decimal(f["price"]))
            for f in fills
            if f["venue"] == venue
        )
        if venue_trades != run_trades:
            problems.append(
                f"{venue}: fills differ: venue {len(venue_trades)}, run {len(run_trades)} "
                f"(only at venue: {sorted(set(venue_trades) - set(run_trades))[:3]}, "
                f"only in run: {sorted(set(run_trades) - set(venue_trades))[:3]})"
            )
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--speed", type=float, default=5.0, help="simulator replay speed")
    ap.add_argument("--min-s", type=float, default=3.0, help="earliest kill after start")
    ap.add_argument("--max-s", type=float, default=8.0, help="latest random kill")
    ap.add_argument("--verify-s", type=float, default=2.0, help="clean resumed run length")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--order-delay-s", type=float, default=0.3, help="late order answers")
    ap.add_argument("--keep", help="directory for the run (default: a temporary one)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(args.keep or tempfile.mkdtemp(prefix="arbsim-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    run = work / "run"
    cfg = work / "live.yaml"
    cfg.write_text(CONFIG.format(stale=60))
    sim = Sim(args.speed)
    rows = []
    failed = 0
    try:
        sim.slow_orders(args.order_delay_s)
        env = sim_env(sim)
        for trial in range(1, args.trials + 1):
            first = not run.exists()
            proc = live(sim, ["--config", str(cfg), "--out", str(run)] if first
                        else ["--resume", str(run)], env)  # fmt: skip
            mode = ("random", "request", "arb")[trial % 3]
            started = time.monotonic()
            time.sleep(args.min_s)
            if proc.poll() is not None:
                raise SystemExit(
                    f"trial {trial}: arbsim live ended before the kill:\n{output(proc)}"
                )
            limit = started + (rng.uniform(args.min_s, args.max_s) if mode == "random" else 20)
            kill_when(proc, run / "journal.sqlite", mode, limit)
            delay = time.monotonic() - started
            unanswered, arbs_open, _ = in_flight(run / "journal.sqlite")
            check = live(sim, ["--resume", str(run), "--duration", str(args.verify_s)], env)
            check.wait(timeout=120)
            out = output(check)
            if check.returncode != 0:
                raise SystemExit(f"trial {trial}: resume failed ({check.returncode}):\n{out}")
            summary = json.loads((run / "summary.json").read_text())
            resumed = summary.get("resumed", {})
            problems = judge(sim, run)
            failed += bool(problems)
            rows.append(
                (trial, delay, unanswered, arbs_open, len(resumed.get("orders_read_back", [])),
                 resumed.get("fills_found_after_the_crash", 0), summary["orders"],
                 summary["fills"], "ok" if not problems else "; ".join(problems))
            )  # fmt: skip
            print(
                f"trial {trial:2d}: {mode:<7} kill at {delay:4.1f}s  in flight: {unanswered} "
                f"requests, {arbs_open} arbs  read back {rows[-1][4]} orders, "
                f"{rows[-1][5]} fills found  run {summary['orders']} orders "
                f"{summary['fills']} fills  -> {rows[-1][8]}",
                flush=True,
            )
    finally:
        sim.stop()
    hit_requests = sum(1 for r in rows if r[2])
    hit_arbs = sum(1 for r in rows if r[3])
    print()
    print(f"trials: {len(rows)}; matching the venue after resume: {len(rows) - failed}")
    print(f"kills between a request and its answer: {hit_requests}; "
          f"with an arbitrage in flight: {hit_arbs}")  # fmt: skip
    print(f"run directory: {run}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
