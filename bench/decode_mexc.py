"""Speed of the MEXC codec (:mod:`exchanges.mexc.push`) on an aggre-depth frame (20 levels).

Run: ``python bench/decode_mexc.py [seconds-per-measure]``. Prints messages/s for the full
decode to :class:`AggreDepth`, the book-building fast path (``decode_depth_levels``) and the
encode.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from exchanges.mexc.messages import AggreDepth
from exchanges.mexc.push import decode_depth_levels, decode_push, encode_push


def sample_frame(levels_per_side: int = 10) -> bytes:
    """A realistic BTCUSDT aggre-depth frame with ``2 * levels_per_side`` levels."""
    frame = AggreDepth(
        channel="spot@public.aggre.depth.v3.api.pb@10ms@BTCUSDT",
        symbol="BTCUSDT",
        send_time=1736411507002,
        bids=[(f"{92877.58 - i * 0.37:.2f}", f"0.{i + 1:06d}") for i in range(levels_per_side)],
        asks=[(f"{92878.01 + i * 0.41:.2f}", f"1.{i + 3:06d}") for i in range(levels_per_side)],
        event_type="spot@public.aggre.depth.v3.api.pb@10ms",
        from_version=10589632359,
        to_version=10589632380,
    )
    data = encode_push(frame)
    assert decode_push(data) == frame
    return data


def rate(decode: Callable[[bytes], Any], data: bytes, seconds: float) -> float:
    """Messages per second decoding ``data`` repeatedly for about ``seconds``."""
    n, batch = 0, 2000
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            decode(data)
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def encode_rate(encode: Callable[[AggreDepth], bytes], frame: AggreDepth, seconds: float) -> float:
    """Frames per second encoding ``frame`` repeatedly for about ``seconds``."""
    n, batch = 0, 2000
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            encode(frame)
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    data = sample_frame()
    print(f"aggre-depth frame: {len(data)} bytes, 20 levels")
    print(f"decode_push        : {rate(decode_push, data, seconds):>10,.0f} msg/s")
    print(f"decode_depth_levels: {rate(decode_depth_levels, data, seconds):>10,.0f} msg/s")
    frame = decode_push(data)
    assert isinstance(frame, AggreDepth)
    print(f"encode_push        : {encode_rate(encode_push, frame, seconds):>10,.0f} msg/s")


if __name__ == "__main__":
    main()
