"""How often, and how fast, a resting quote at the touch fills under each queue model.

    python bench/fill_calibration.py --data CATALOG [--venue NAME] [--every 5] [--horizon 60]

Every ``--every`` seconds a buy is placed at the best bid and a sell at the best ask
(``--qty`` each) through the shared matching engine, on the exchange-side book; the
recorded trades and book updates then fill them — or not — under each queue model.
An order is given up after ``--horizon`` seconds, or as soon as the market has moved
``--away`` ticks away from it (a quote nobody would leave there). Prints the fill ratio
(share of the quoted quantity filled) and time-to-fill percentiles per model.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from arbsim.core.book import OrderBook
from arbsim.core.model import Order, OrderStatus, OrderType, Side, TimeInForce
from arbsim.data.catalog import Catalog
from arbsim.data.feed import BookCursor, TradeCursor, merge
from exchanges.simulated.matching import Account, MatchingEngine, QueueModel

MODELS: dict[str, QueueModel] = {
    "risk_averse": QueueModel("risk_averse"),
    "prob_power(2)": QueueModel("prob_power", power=2.0),
    "prob_power(3)": QueueModel("prob_power", power=3.0),
    "prob_log": QueueModel("prob_log"),
}


def calibrate(
    catalog: Catalog,
    venue: str,
    symbol: str,
    model: QueueModel,
    every_s: float,
    horizon_s: float,
    qty: Decimal,
    away_ticks: int,
) -> dict[str, Any]:
    inst = catalog.instrument(venue, symbol)
    book = OrderBook(venue, symbol, inst.tick)
    big = Decimal(10) ** 12
    acct = Account(venue, {inst.base: big, inst.quote: big})
    eng = MatchingEngine(inst, book, acct, queue=model)
    bc = BookCursor(catalog, venue, symbol, book.scale, key="exchange")
    tc = TradeCursor(catalog, venue, symbol, book.scale, key="exchange")
    ids = itertools.count(1)
    placed: dict[str, tuple[int, Order]] = {}
    fill_times: list[float] = []
    quoted = Decimal(0)
    filled = Decimal(0)
    next_quote: int | None = None
    every = int(every_s * 1e9)
    horizon = int(horizon_s * 1e9)

    def settle(cid: str, ts: int) -> None:
        nonlocal filled
        t0, o = placed.pop(cid)
        filled += o.filled_qty
        if o.status is OrderStatus.FILLED:
            fill_times.append((o.ts_updated - t0) / 1e9)
        if o.is_open:
            eng.cancel(cid, ts)

    for cur in merge([bc, tc]):
        ts = cur.ts
        if cur is bc:
            bc.apply(book)
            eng.on_book(ts)
        else:
            eng.on_trade(tc.side, tc.tick, tc.size, ts)
        for cid in [c for c, (_, o) in placed.items() if not o.is_open]:
            settle(cid, ts)
        bid, ask = book.best_bid_tick, book.best_ask_tick
        for cid, (t0, o) in list(placed.items()):
            tick = int(o.price / inst.tick) if o.price is not None else 0
            drift = (bid - tick) if o.side is Side.BUY and bid else (tick - ask) if ask else 0
            if ts - t0 > horizon or drift > away_ticks:
                settle(cid, ts)
        if bid is None or ask is None or book.is_crossed:
            continue
        if next_quote is None:
            next_quote = ts
        if ts >= next_quote:
            next_quote = ts + every
            for side, tick in ((Side.BUY, bid), (Side.SELL, ask)):
                o = Order(
                    venue=venue,
                    symbol=symbol,
                    side=side,
                    qty=qty,
                    price=book.scale.decimal(tick),
                    order_type=OrderType.LIMIT,
                    tif=TimeInForce.GTC,
                    client_order_id=f"cal{next(ids)}",
                )
                eng.submit(o, ts)
                placed[o.client_order_id] = (ts, o)
                quoted += qty
    for cid in list(placed):
        settle(cid, placed[cid][0] + horizon)
    times = np.array(fill_times) if fill_times else np.array([np.nan])
    return {
        "quotes": int(quoted / qty),
        "fill_ratio": round(float(filled / quoted), 4) if quoted else None,
        "fully_filled": len(fill_times),
        "time_to_fill_s": {
            "p50": round(float(np.nanpercentile(times, 50)), 3),
            "p90": round(float(np.nanpercentile(times, 90)), 3),
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--venue", help="default: every venue in the catalog")
    ap.add_argument("--symbol", default="BTC/USDT")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between quotes")
    ap.add_argument("--horizon", type=float, default=60.0, help="seconds a quote may wait")
    ap.add_argument("--qty", default="0.01")
    ap.add_argument("--away", type=int, default=50, help="give up when this many ticks away")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    catalog = Catalog(args.data)
    venues = (
        [args.venue]
        if args.venue
        else sorted({i.venue for i in catalog.instruments() if i.symbol == args.symbol})
    )
    out: dict[str, dict[str, Any]] = {}
    for venue in venues:
        out[venue] = {
            name: calibrate(
                catalog,
                venue,
                args.symbol,
                model,
                args.every,
                args.horizon,
                Decimal(args.qty),
                args.away,
            )
            for name, model in MODELS.items()
        }
    if args.json:
        print(json.dumps(out))
        return 0
    print(
        f"resting quotes at the touch every {args.every:g} s, {args.qty} each, "
        f"horizon {args.horizon:g} s"
    )
    print(
        f"{'venue':<14} {'model':<14} {'quotes':>7} {'fill ratio':>10} {'filled':>7} "
        f"{'ttf p50 s':>10} {'ttf p90 s':>10}"
    )
    for venue, rows in out.items():
        for name, r in rows.items():
            print(
                f"{venue:<14} {name:<14} {r['quotes']:>7} {r['fill_ratio']:>10} "
                f"{r['fully_filled']:>7} {r['time_to_fill_s']['p50']:>10} "
                f"{r['time_to_fill_s']['p90']:>10}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
