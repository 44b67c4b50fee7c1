"""Decode speed of a MEXC aggre-depth frame (20 levels): hand-written codec vs protobuf (upb).

Run: ``python bench/decode_mexc.py [seconds-per-codec]``. Prints messages/s for each codec;
:mod:`exchanges.mexc.protobuf` uses the faster one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from exchanges.mexc import pb_upb, pb_wire
from exchanges.mexc.messages import AggreDepth, MexcPush


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
    data = pb_wire.encode_push(frame)
    assert pb_upb.decode_push(data) == pb_wire.decode_push(data) == frame
    return data


def rate(decode: Callable[[bytes], MexcPush], data: bytes, seconds: float) -> float:
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
    codecs = (("hand-written wire", pb_wire), ("protobuf upb", pb_upb))
    for name, codec in codecs:
        print(f"decode {name:>18}: {rate(codec.decode_push, data, seconds):>10,.0f} msg/s")
    frame = pb_wire.decode_push(data)
    assert isinstance(frame, AggreDepth)
    for name, codec in codecs:
        print(f"encode {name:>18}: {encode_rate(codec.encode_push, frame, seconds):>10,.0f} msg/s")


if __name__ == "__main__":
    main()
