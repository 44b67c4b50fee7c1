"""Replay throughput: events/s through both books, the matching engine and a strategy.

    python bench/replay.py --data CATALOG [--strategy noop|cross_exchange|maker] [--baseline]
        [--profile] [--out RUN_DIR] [--json]

Events are L2 level changes plus trades. Every venue message reaches the local book (at
ts_local) and the exchange-side book (at ts_exchange, where the matching engine works:
held back and applied in bulk while nothing rests there), and the strategy is called once
per book message (and per trade when it wants trades). ``--strategy maker`` rests
post-only quotes on every venue and re-quotes on top-of-book moves, so the exchange-side
books, queues and matching stay live; ``--reference`` runs the straightforward path (every
message through the merge and the Python book), which writes the same outputs.
``cpu_seconds_incl_setup_and_outputs`` is the process CPU time of the timed run,
steadier than wall time on a shared machine. ``--baseline`` also
times a bare dict book with a Python callback per message over the same events, in the
same process, so the ratio holds on a noisy machine: once with the callback per venue
message (as arbsim calls the strategy) and once per level change (as a strategy called
per delta would be). Peak RSS is the process maximum.

``--profile`` runs the backtest a second time under cProfile and splits its time into
decode (reading and walking record batches: pyarrow, ``arbsim.data``), apply (putting
messages on books: ``arbsim.core.book`` updates and the compiled kernels), matching
(``exchanges.simulated`` order entry and matching engine), strategy (the strategy, the
arbitrage finder, context, risk and ledger) and engine (the replay driver, the replay
venue's dispatch, the virtual-time loop and asyncio, latency records), plus other
(set-up, outputs). Each function's own time goes to the category of its module; a
built-in (a NumPy or list method, a compiled kernel) or a book query takes the category
of its callers, shared in proportion to the time each caller spent in it. cProfile adds a
fixed cost per Python call, so the profiled run is slower than the timed one and the
split favours call-heavy code; the timed figures are from the unprofiled run (the peak RSS
then includes the profiled run).
``--out`` keeps the timed run's directory.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq

from arbsim.app.backtest import auto_config, run_backtest
from arbsim.app.config import load_config
from arbsim.core.book import OrderBook
from arbsim.core.errors import VenueError
from arbsim.core.model import OrderRequest, Side, TimeInForce, Trade
from arbsim.data.catalog import Catalog
from arbsim.runtime.context import Context
from arbsim.runtime.risk import RiskDenied
from arbsim.runtime.strategy import Strategy
from exchanges.simulated.config import QueueConfig


class Noop(Strategy):
    """Receives every callback and does nothing with it."""

    name = "noop"

    def on_book(self, ctx: Context, venue: str, book: OrderBook) -> None:
        return None

    def on_trade(self, ctx: Context, venue: str, trade: Trade) -> None:
        return None


class Maker(Strategy):
    """Rests a small post-only bid and ask at the touch of every venue and re-quotes a
    venue when its top of book moved away from the quotes (at most every
    ``REQUOTE_S``): resting orders keep the exchange-side books, queues and matching
    live for the whole replay."""

    name = "maker"

    def __init__(self) -> None:
        self.live: dict[str, list[str]] = {}
        self.quoted: dict[str, tuple[float | None, float | None]] = {}
        self.busy: set[str] = set()
        self.next_ok: dict[str, int] = {}
        self.cycles = 0

    def on_book(self, ctx: Context, venue: str, book: OrderBook) -> None:
        if venue in self.busy or book.symbol != SYMBOL:
            return
        if self.quoted.get(venue) == (book.best_bid, book.best_ask):
            return
        if ctx.now_ns() < self.next_ok.get(venue, 0):
            return
        self.busy.add(venue)
        self.next_ok[venue] = ctx.now_ns() + int(REQUOTE_S * 1e9)
        ctx.spawn(self._cycle(ctx, venue))

    async def _cycle(self, ctx: Context, venue: str) -> None:
        try:
            self.cycles += 1
            for cid in self.live.pop(venue, []):
                with contextlib.suppress(VenueError, RiskDenied):  # it may have filled
                    await ctx.cancel_order(venue, SYMBOL, cid)
            inst = ctx.instrument(venue, SYMBOL)
            book = ctx.book(venue, SYMBOL)
            bid, ask = book.best_bid, book.best_ask
            self.quoted[venue] = (bid, ask)
            if bid is None or ask is None:
                return
            qty = inst.round_qty(max(float(inst.min_qty), 20.0 / bid))
            for side, price in ((Side.BUY, bid), (Side.SELL, ask)):
                req = OrderRequest(
                    venue=venue,
                    symbol=SYMBOL,
                    side=side,
                    qty=qty,
                    price=inst.round_price(price),
                    tif=TimeInForce.POST_ONLY,
                )
                try:
                    order = await ctx.place_order(req)
                except (VenueError, RiskDenied):  # crossed meanwhile, or a stale book
                    continue
                if order.is_open:
                    self.live.setdefault(venue, []).append(order.client_order_id)
        finally:
            self.busy.discard(venue)

    def summary(self) -> dict[str, Any]:
        return {"requotes": self.cycles}


SYMBOL = "BTC/USDT"
REQUOTE_S = 0.2


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def baseline(
    catalog: Catalog, venues: list[tuple[str, str]], per_event: bool = False
) -> dict[str, float]:
    """A bare dict book per venue and a Python callback per venue message (or, with
    ``per_event``, per level change and trade), over the same events."""
    calls = 0

    def callback(book: dict[float, float]) -> None:
        nonlocal calls
        calls += 1

    t0 = time.perf_counter()
    events = 0
    for venue, symbol in venues:
        bids: dict[float, float] = {}
        asks: dict[float, float] = {}
        for path in catalog.files(venue, symbol, "book"):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
                cols = batch.to_pydict()
                ts, side, price, size = cols["ts_local"], cols["side"], cols["price"], cols["size"]
                prev = None
                for i in range(len(ts)):
                    book = bids if side[i] == 1 else asks
                    if size[i]:
                        book[price[i]] = size[i]
                    else:
                        book.pop(price[i], None)
                    if per_event or ts[i] != prev:
                        callback(book)
                        prev = ts[i]
                events += len(ts)
        for path in catalog.files(venue, symbol, "trades"):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
                cols = batch.to_pydict()
                for _ in cols["price"]:
                    callback(bids)
                events += len(cols["price"])
    seconds = time.perf_counter() - t0
    return {"events": events, "seconds": round(seconds, 4), "events_per_s": round(events / seconds)}


CATEGORIES = ("decode", "apply", "matching", "strategy", "engine", "other")
_APPLY = ("apply", "apply_pairs", "apply_ticks", "apply_hinted", "apply_run", "clear")


def _category(key: tuple[str, int, str]) -> str | None:
    """The category of a function's own time; None: its callers' (built-ins, queries)."""
    path, _, func = key
    path = path.replace("\\", "/")
    if path == "~" or path.startswith("<"):
        return None
    if "/arbsim/core/book.py" in path:
        return "apply" if func in _APPLY or func.startswith("_") else None
    if "/arbsim/core/kernels.py" in path:
        return "apply"
    if "/arbsim/data/feed.py" in path:
        return "apply" if func in ("apply", "apply_fast", "touched", "catch_up") else "decode"
    if "/arbsim/data/" in path or "/pyarrow/" in path:
        return "decode"
    if "/exchanges/simulated/replay.py" in path:
        return "engine"
    if "/exchanges/simulated/" in path:
        return "matching"
    if "/strategies/" in path or "/bench/" in path:
        return "strategy"
    for mod in ("arbitrage", "context", "risk", "strategy", "ledger", "execution"):
        if f"/arbsim/runtime/{mod}.py" in path:
            return "strategy"
    for mod in ("engine", "loop", "latency", "recorder", "observe"):
        if f"/arbsim/runtime/{mod}.py" in path:
            return "engine"
    if "/asyncio/" in path or "heapq" in path:
        return "engine"
    return "other"


def profile_split(prof: cProfile.Profile) -> dict[str, float]:
    """Seconds per category of a profiled run (see the module docstring)."""
    stats: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    memo: dict[Any, dict[str, float]] = {}

    def shares(key: Any, depth: int = 0) -> dict[str, float]:
        """How a function's own time divides into categories (1.0 in all)."""
        if key in memo:
            return memo[key]
        cat = _category(key)
        if cat is not None:
            out = {cat: 1.0}
        else:
            callers = stats[key][4] if key in stats else {}
            total = sum(v[3] for v in callers.values())
            out = {}
            if depth < 8 and total > 0:
                for caller, v in callers.items():
                    for c, share in shares(caller, depth + 1).items():
                        out[c] = out.get(c, 0.0) + share * v[3] / total
            if not out:
                out = {"other": 1.0}
        memo[key] = out
        return out

    split = dict.fromkeys(CATEGORIES, 0.0)
    for key, (_, _, tt, _, _) in stats.items():
        for c, share in shares(key).items():
            split[c] += tt * share
    return {c: round(v, 4) for c, v in split.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="catalog directory")
    ap.add_argument("--config", type=Path, help="run config (default: picked from the catalog)")
    ap.add_argument(
        "--strategy", choices=["noop", "cross_exchange", "maker"], default="cross_exchange"
    )
    ap.add_argument("--baseline", action="store_true", help="also time a bare dict-book loop")
    ap.add_argument(
        "--queue",
        choices=["risk_averse", "prob_power", "prob_log"],
        help="queue model for every venue (default: the config's)",
    )
    ap.add_argument("--end", help="stop at this ISO time (to check memory vs replay length)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument(
        "--profile", action="store_true", help="also split the time by component (cProfile)"
    )
    ap.add_argument("--out", type=Path, help="keep the run directory here")
    ap.add_argument(
        "--reference",
        action="store_true",
        help="replay on the straightforward (reference) path, for comparison",
    )
    args = ap.parse_args(argv)

    catalog = Catalog(args.data)
    cfg = load_config(args.config) if args.config else auto_config(catalog)
    if args.queue:
        venues = [
            msgspec.structs.replace(v, queue=QueueConfig(model=args.queue)) for v in cfg.venues
        ]
        cfg = msgspec.structs.replace(cfg, venues=venues)
    strategies: dict[str, Strategy | None] = {
        "noop": Noop(),
        "maker": Maker(),
        "cross_exchange": None,
    }
    strategy = strategies[args.strategy]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        c0 = time.process_time()
        result = run_backtest(
            cfg,
            catalog_path=args.data,
            out_dir=args.out or Path(tmp) / "run",
            end=args.end,
            strategy=strategy,
            reference_replay=args.reference,
        )
        total = time.perf_counter() - t0
        cpu = time.process_time() - c0
        profile: dict[str, float] | None = None
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            run_backtest(
                cfg,
                catalog_path=args.data,
                out_dir=Path(tmp) / "profiled",
                end=args.end,
                strategy=None if strategy is None else type(strategy)(),
                reference_replay=args.reference,
            )
            prof.disable()
            profile = profile_split(prof)
    s = result.summary
    out: dict[str, Any] = {
        "events": s["events"],
        "messages": s["messages"],
        "seconds": s["wall_seconds"],
        "events_per_s": s["events_per_s"],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "strategy": args.strategy,
        "total_seconds_incl_setup_and_outputs": round(total, 3),
        # CPU time of the same (steadier than wall time on a shared machine)
        "cpu_seconds_incl_setup_and_outputs": round(cpu, 3),
        "arbs": s["arbs"],
        "strategy_summary": s["strategy"],
    }
    if profile is not None:
        out["profile_seconds"] = profile
        total_p = sum(profile.values()) or 1.0
        out["profile_share"] = {c: round(v / total_p, 3) for c, v in profile.items()}
    if args.baseline:
        venues = [(v.name, cfg.strategy.params.get("symbol", "BTC/USDT")) for v in cfg.venues]
        b = baseline(catalog, venues)
        out["baseline"] = b
        out["ratio_vs_baseline"] = round(s["events_per_s"] / b["events_per_s"], 3)
        e = baseline(catalog, venues, per_event=True)
        out["baseline_callback_per_event"] = e
        out["ratio_vs_baseline_per_event"] = round(s["events_per_s"] / e["events_per_s"], 3)
    if args.json:
        print(json.dumps(out, default=str))
    else:
        for k, v in out.items():
            print(f"{k:>38}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
