"""Replay throughput: events/s through both books, the matching engine and a strategy.

    python bench/replay.py --data CATALOG [--strategy noop|cross_exchange] [--baseline] [--json]

Events are L2 level changes plus trades. Every venue message is applied to the
exchange-side book (at ts_exchange, where the matching engine works) and to the local
book (at ts_local), and the strategy is called once per message. ``--baseline`` also
times a bare dict book with a Python callback per message over the same events, in the
same process, so the ratio holds on a noisy machine: once with the callback per venue
message (as arbsim calls the strategy) and once per level change (as a strategy called
per delta would be). Peak RSS is the process maximum.
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
    """Keeps a small GTC bid and ask at the touch of every venue, re-quoting each second:
    resting orders make the matching engine track queues on every message."""

    name = "maker"

    def __init__(self) -> None:
        self.live: dict[str, list[str]] = {}
        self.busy = False

    async def on_start(self, ctx: Context) -> None:
        ctx.every(1.0, lambda: self._requote(ctx))

    def _requote(self, ctx: Context) -> None:
        if not self.busy:
            self.busy = True
            ctx.spawn(self._cycle(ctx))

    async def _cycle(self, ctx: Context) -> None:
        try:
            for venue, cids in self.live.items():
                for cid in cids:
                    sym = ctx.venues[venue].instrument(SYMBOL).symbol
                    with contextlib.suppress(VenueError):  # it may have filled meanwhile
                        await ctx.cancel_order(venue, sym, cid)
            self.live = {}
            for venue in ctx.venues:
                inst = ctx.instrument(venue, SYMBOL)
                book = ctx.book(venue, SYMBOL)
                if book.best_bid is None or book.best_ask is None:
                    continue
                qty = inst.round_qty(max(float(inst.min_qty), 20.0 / book.best_bid))
                for side, price in ((Side.BUY, book.best_bid), (Side.SELL, book.best_ask)):
                    req = OrderRequest(
                        venue=venue,
                        symbol=SYMBOL,
                        side=side,
                        qty=qty,
                        price=inst.round_price(price),
                        tif=TimeInForce.GTC,
                    )
                    try:
                        order = await ctx.place_order(req)
                    except VenueError:
                        continue
                    if order.is_open:
                        self.live.setdefault(venue, []).append(order.client_order_id)
        finally:
            self.busy = False


SYMBOL = "BTC/USDT"


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
        result = run_backtest(
            cfg,
            catalog_path=args.data,
            out_dir=Path(tmp) / "run",
            end=args.end,
            strategy=strategy,
        )
        total = time.perf_counter() - t0
    s = result.summary
    out: dict[str, Any] = {
        "events": s["events"],
        "messages": s["messages"],
        "seconds": s["wall_seconds"],
        "events_per_s": s["events_per_s"],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "strategy": args.strategy,
        "total_seconds_incl_setup_and_outputs": round(total, 3),
        "arbs": s["arbs"],
    }
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
