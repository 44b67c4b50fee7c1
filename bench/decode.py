"""Depth-message throughput: decode + apply to an order book, per venue, on one core.

    python bench/decode.py [--seconds 2] [--json]

MEXC: binary protobuf ``aggre.depth`` frames (the real wire format), decoded with
:func:`exchanges.mexc.push.decode_push`. Gate: JSON ``spot.order_book_update`` messages,
decoded with :func:`exchanges.gateio.ws.decode`. Each decoded message is applied to an
:class:`arbsim.core.book.OrderBook`. Frames carry a realistic number of level changes (the
recorded Gate stream averages 7.8 per message; MEXC's 100 ms aggregate a few) and a
20-level variant is measured too.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from arbsim.core.book import OrderBook
from exchanges.gateio.ws import BookUpdateLevels, OrderBookUpdate, Push, decode, decode_book_update
from exchanges.mexc.messages import AggreDepth
from exchanges.mexc.push import decode_depth_levels, encode_push


def mexc_frames(levels: int, n: int = 512, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    version = 10589632359
    for _ in range(n):
        half = max(1, levels // 2)
        bids = [
            (f"{60000 - rng.randint(0, 500) / 100:.2f}", f"{rng.random():.6f}") for _ in range(half)
        ]
        asks = [
            (f"{60000.01 + rng.randint(0, 500) / 100:.2f}", f"{rng.random():.6f}")
            for _ in range(levels - half)
        ]
        out.append(
            encode_push(
                AggreDepth(
                    channel="spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT",
                    symbol="BTCUSDT",
                    send_time=1736411507002,
                    bids=bids,
                    asks=asks,
                    event_type="spot@public.aggre.depth.v3.api.pb@100ms",
                    from_version=version + 1,
                    to_version=version + levels,
                )
            )
        )
        version += levels
    return out


def gate_messages(levels: int, n: int = 512, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    uid = 1_500_000_000
    for i in range(n):
        half = max(1, levels // 2)
        b = [
            [f"{60000 - rng.randint(0, 500) / 100:.2f}", f"{rng.random():.6f}"] for _ in range(half)
        ]
        a = [
            [f"{60000.01 + rng.randint(0, 500) / 100:.2f}", f"{rng.random():.6f}"]
            for _ in range(levels - half)
        ]
        msg = {
            "time": 1736411507,
            "time_ms": 1736411507002 + i,
            "channel": "spot.order_book_update",
            "event": "update",
            "result": {
                "t": 1736411507002 + i,
                "e": "depthUpdate",
                "E": 1736411507,
                "s": "BTC_USDT",
                "U": uid + 1,
                "u": uid + levels,
                "b": b,
                "a": a,
            },
        }
        uid += levels
        out.append(json.dumps(msg, separators=(",", ":")).encode())
    return out


REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def gate_recorded() -> tuple[list[bytes], dict[str, Decimal]] | None:
    """The recorded ``spot.order_book_update`` stream (10 pairs, 2021) and each pair's
    tick, from ../shared/realdata; None when absent."""
    rec = REALDATA / "gateio" / "cryptofeed_GATEIO.ws.1.0"
    pairs = REALDATA / "gateio" / "cryptofeed_GATEIO.0"
    if not rec.is_file() or not pairs.is_file():
        return None
    frames = []
    for line in rec.read_text().splitlines():
        if "order_book_update" in line and '"update"' in line:
            frames.append(line.split(": ", 1)[1].encode())
    ticks: dict[str, Decimal] = {}
    for line in pairs.read_text().splitlines():
        if "currency_pairs" in line and "->" in line:
            for p in json.loads(line.split(": ", 1)[1]):
                ticks[p["id"]] = Decimal(1).scaleb(-int(p["precision"]))
    return frames, ticks


def _gate_step(r: BookUpdateLevels, book: OrderBook) -> None:
    book.apply_pairs(
        r.bids, r.asks, ts_exchange=r.t * 1_000_000, ts_local=r.t * 1_000_000, seq=r.last_id
    )


def gate_apply_many(books: dict[str, OrderBook]) -> Callable[[bytes], None]:
    def step(raw: bytes) -> None:
        r = decode_book_update(raw)
        assert r is not None
        _gate_step(r, books[r.symbol])

    return step


def mexc_apply(book: OrderBook) -> Callable[[bytes], None]:
    def step(frame: bytes) -> None:
        levels = decode_depth_levels(frame)
        assert levels is not None
        bids, asks, _, to_version, send_ms = levels
        book.apply_pairs(
            bids,
            asks,
            ts_exchange=send_ms * 1_000_000,
            ts_local=send_ms * 1_000_000,
            seq=to_version,
        )

    return step


def gate_apply(book: OrderBook) -> Callable[[bytes], None]:
    def step(raw: bytes) -> None:
        r = decode_book_update(raw)
        assert r is not None
        _gate_step(r, book)

    return step


def rate(step: Callable[[bytes], None], frames: list[bytes], seconds: float) -> float:
    n = 0
    start = time.perf_counter()
    while True:
        for f in frames:
            step(f)
        n += len(frames)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out: dict[str, float] = {}
    # MEXC's recorded aggre.depth pushes (hummingbot sample) carry one bid and one ask
    book = OrderBook("mexc", "BTC/USDT", Decimal("0.01"))
    out["mexc_aggre_depth_2_levels_per_s"] = round(
        rate(mexc_apply(book), mexc_frames(2), args.seconds)
    )
    recorded = gate_recorded()
    if recorded is not None:
        frames, ticks = recorded
        books = {}
        for raw in frames:
            m = decode(raw)
            assert isinstance(m, Push) and isinstance(m.result, OrderBookUpdate)
            sym = m.result.symbol
            books.setdefault(sym, OrderBook("gateio", sym, ticks[sym]))
        out["gate_recorded_stream_per_s"] = round(
            rate(gate_apply_many(books), frames, args.seconds)
        )
    for levels in (4, 8, 20):
        book = OrderBook("mexc", "BTC/USDT", Decimal("0.01"))
        out[f"mexc_aggre_depth_{levels}_levels_per_s"] = round(
            rate(mexc_apply(book), mexc_frames(levels), args.seconds)
        )
        book = OrderBook("gateio", "BTC/USDT", Decimal("0.01"))
        out[f"gate_order_book_update_{levels}_levels_per_s"] = round(
            rate(gate_apply(book), gate_messages(levels), args.seconds)
        )
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>42}: {v:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
