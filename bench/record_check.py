"""Recording acceptance: `arbsim record` against the simulator, both venues, two symbols.

On 127.0.0.1: a synthetic BTC/USDT + ETH/USDT catalog is written; `arbsim exchange-sim`
replays it at ``--speed``; `arbsim record` records both venues' books and trades for
``--minutes`` of catalog time while the simulator skips depth updates (a sequence gap)
and drops every WebSocket, several times each; `arbsim record` is stopped by SIGINT.
Then:

- the recorded catalog is read by `arbsim data info` and backtested;
- each venue and symbol has its resyncs flagged (``FLAG_GAP``);
- every recorded update carries the simulator's exchange time (catalog time + the offset
  ``GET /_sim/state`` reports) and the simulator's book (top 20 levels) after it; every
  recorded state (snapshots included) is the simulator's book at some message, in order.
  A REST snapshot holds the venue's top N levels (Gate.io: the 100 arbsim asks for), so a
  level deeper than the last snapshot reached that no update has touched since is unknown
  to any client: when a sweep lifts such a level into the top 20, the books are compared
  above that depth, and the count of those updates is printed.

Printed: messages, gaps and resyncs per stream, updates checked, mismatches.

    python bench/record_check.py --minutes 5 --speed 1
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crash_resume import Drain, Sim

from arbsim.app.backtest import default_config_path
from arbsim.core.book import OrderBook
from arbsim.core.model import BookLevel
from arbsim.data.catalog import FLAG_GAP, FLAG_SNAPSHOT_BEGIN, FLAG_SNAPSHOT_END, Catalog
from arbsim.data.feed import BookCursor

SYMBOLS = ("BTC/USDT", "ETH/USDT")
VENUES = ("mexc", "gateio")
State = tuple[list[BookLevel], list[BookLevel]]
Cover = tuple[float, float]


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "arbsim.app.cli", *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"arbsim {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def replay(root: Path, venue: str, symbol: str) -> list[tuple[int, int, State, Cover]]:
    """(ts_exchange, flags, top 20 levels, depth of the last snapshot) after every message
    of one stream."""
    catalog = Catalog(root)
    book = OrderBook(venue, symbol, catalog.instrument(venue, symbol).tick)
    cursor = BookCursor(catalog, venue, symbol, book.scale, key="exchange")
    out = []
    cover: Cover = (float("-inf"), float("inf"))
    while cursor.next():
        cursor.apply(book)
        if cursor.flags & FLAG_SNAPSHOT_END:
            # a snapshot holds the venue's top N levels only: a deeper level that no
            # update has touched since is one no client of the venue can know
            bids, asks = book.bids(10**6), book.asks(10**6)
            cover = (
                bids[-1].price if bids else float("-inf"),
                asks[-1].price if asks else float("inf"),
            )
        out.append((cursor.ts_exchange, cursor.flags, (book.bids(20), book.asks(20)), cover))
    return out


def known(state: State, cover: Cover) -> State:
    """The levels of ``state`` within the depth the last snapshot covered."""
    bids, asks = state
    return (
        [lv for lv in bids if lv.price >= cover[0]],
        [lv for lv in asks if lv.price <= cover[1]],
    )


def fault(sim: Sim, kind: str, **extra: object) -> None:
    for v in sim.venues.values():
        rule = json.dumps({"kind": kind, **extra}).encode()
        req = urllib.request.Request(f"{v['admin']}/_sim/faults", data=rule, method="POST")
        urllib.request.urlopen(req, timeout=10).close()


def offset_ns(sim: Sim) -> int:
    with urllib.request.urlopen(f"{sim.venues['mexc']['admin']}/_sim/state", timeout=10) as r:
        return int(json.loads(r.read())["clock"]["offset_ns"])


def check(source: Path, recorded: Path, offset: int) -> bool:
    ok = True
    for venue in VENUES:
        for symbol in SYMBOLS:
            src = replay(source, venue, symbol)
            at = {ts + offset: state for ts, _, state, _ in src}
            rec = replay(recorded, venue, symbol)
            timed = wrong = snaps = gaps = deep = 0
            for ts, flags, state, cover in rec:
                gaps += bool(flags & FLAG_GAP)
                if flags & (FLAG_SNAPSHOT_BEGIN | FLAG_SNAPSHOT_END | FLAG_GAP):
                    snaps += 1
                    continue
                timed += 1
                theirs = at.get(ts)
                wrong_here = theirs is None or known(theirs, cover) != known(state, cover)
                wrong += wrong_here
                deep += theirs is not None and theirs != state and not wrong_here
            it = iter(state for _, _, state, _ in src)
            shown = [(s, c) for _, _, s, c in rec if s != ([], [])]
            in_order = all(any(known(r, c) == known(s, c) for r in it) for s, c in shown)
            good = wrong == 0 and in_order and gaps > 0 and timed > 0
            ok &= good
            print(
                f"  {venue:<7} {symbol:<9} {len(rec):>7,} messages  {timed:>7,} updates "
                f"checked, {wrong} differ from the simulator's book (and {deep} only in levels "
                f"deeper than the last snapshot reached); {snaps} snapshot messages, "
                f"{gaps} flagged as gaps; states in order: {in_order}"
                f"  {'OK' if good else 'FAIL'}"
            )
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="catalog minutes to record")
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument("--faults", type=int, default=3, help="gaps and drops, each")
    ap.add_argument("--keep", type=Path, help="keep the catalogs here")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="record-check-"))
    work.mkdir(parents=True, exist_ok=True)
    source, recorded = work / "source", work / "recorded"
    seconds = args.minutes * 60 / args.speed
    run("data", "synth", "--catalog", str(source), "--seed", "5",
        "--duration", str(args.minutes * 60 + 90), *[f"--symbol={s}" for s in SYMBOLS])  # fmt: skip
    sim = Sim(args.speed, "--data", str(source), "--no-loop")
    try:
        offset = offset_ns(sim)
        urls = [f"--venue-url={n}={v['rest']},{v['ws']}" for n, v in sim.venues.items()]
        rec = subprocess.Popen(
            [sys.executable, "-m", "arbsim.app.cli", "record",
             *[f"--venue={v}" for v in VENUES], *[f"--symbol={s}" for s in SYMBOLS],
             "--catalog", str(recorded), "--heartbeat", "30", *urls],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        drained = Drain(rec)
        t0 = time.monotonic()
        step = seconds / (2 * args.faults + 1)
        for i in range(2 * args.faults):
            time.sleep(max(0.0, t0 + step * (i + 1) - time.monotonic()))
            fault(sim, *(("skip_seq",) if i % 2 == 0 else ("drop_ws",)), count=3)
        time.sleep(max(0.0, t0 + seconds - time.monotonic()))
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=60)
        print(drained.text().rstrip())
        print(f"arbsim record exited {rec.returncode}")
    finally:
        sim.stop()
    print(run("data", "info", str(recorded)).rstrip())
    bt = work / "backtest"
    run("backtest", "--config", str(default_config_path()), "--data", str(recorded),
        "--out", str(bt))  # fmt: skip
    summary = json.loads((bt / "summary.json").read_text())
    print(f"backtest of the recording: {summary['events']:,} events")
    ok = check(source, recorded, offset) and rec.returncode == 0
    print("record check:", "OK" if ok else "FAIL")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
