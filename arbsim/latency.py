"""Latency measurement, the same code in every mode (DESIGN §3).

Three kinds are measured: feed latency (``ts_local - ts_exchange`` of each market
message), order round trips (request sent -> answer received, per request kind) and
tick-to-trade (``ts_local`` of the triggering event -> the order leaving).

Feed latency is seen on every message, so it is kept in a bounded, deterministic
sample: every ``stride``-th value, with the stride doubling (and every other kept
value dropped) whenever the buffer fills. Memory stays constant however long the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa


@dataclass
class _Decimated:
    capacity: int = 8192
    stride: int = 1
    seen: int = 0
    values: list[int] = field(default_factory=list)
    lo: int | None = None
    hi: int | None = None

    def add(self, v: int) -> None:
        self.seen += 1
        if self.lo is None or v < self.lo:
            self.lo = v
        if self.hi is None or v > self.hi:
            self.hi = v
        if self.seen % self.stride:
            return
        self.values.append(v)
        if len(self.values) >= self.capacity:
            self.values = self.values[::2]
            self.stride *= 2


def percentiles(
    values: list[int] | np.ndarray, ps: tuple[int, ...] = (50, 90, 99)
) -> dict[str, float]:
    """Percentiles in milliseconds (empty dict when there are no values)."""
    if len(values) == 0:
        return {}
    arr = np.asarray(values, dtype=np.float64) / 1e6
    out = {f"p{p}": round(float(np.percentile(arr, p)), 4) for p in ps}
    out["n"] = float(len(arr))
    return out


class LatencyRecorder:
    """Collects latency samples; ``table()`` gives the rows of ``latency.parquet``."""

    def __init__(self) -> None:
        self._feed: dict[str, _Decimated] = {}
        self._rows_ts: list[int] = []
        self._rows_kind: list[str] = []
        self._rows_venue: list[str] = []
        self._rows_ns: list[int] = []

    def feed(self, venue: str, ts_exchange: int, ts_local: int) -> None:
        d = self._feed.get(venue)
        if d is None:
            d = self._feed[venue] = _Decimated()
        d.add(ts_local - ts_exchange)

    def record(self, kind: str, venue: str, ts: int, latency_ns: int) -> None:
        """One measured latency of ``kind`` (``place``, ``cancel``, ``tick_to_trade``...)."""
        self._rows_ts.append(ts)
        self._rows_kind.append(kind)
        self._rows_venue.append(venue)
        self._rows_ns.append(latency_ns)

    def of_kind(self, kind: str, venue: str | None = None) -> list[int]:
        return [
            v
            for k, ve, v in zip(self._rows_kind, self._rows_venue, self._rows_ns, strict=True)
            if k == kind and (venue is None or ve == venue)
        ]

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for venue, d in sorted(self._feed.items()):
            s = percentiles(d.values)
            if d.lo is not None and d.hi is not None:
                s["min"] = d.lo / 1e6
                s["max"] = d.hi / 1e6
                s["messages"] = float(d.seen)
            out[f"feed.{venue}"] = s
        for kind in sorted(set(self._rows_kind)):
            out[kind] = percentiles(self.of_kind(kind))
        return out

    def table(self) -> pa.Table:
        kinds = list(self._rows_kind)
        venues = list(self._rows_venue)
        ts = list(self._rows_ts)
        ns = list(self._rows_ns)
        for venue, d in sorted(self._feed.items()):
            # the bounded sample of feed latencies, marked as such by its kind
            kinds += ["feed_sample"] * len(d.values)
            venues += [venue] * len(d.values)
            ts += [0] * len(d.values)
            ns += d.values
        return pa.table(
            {
                "ts": pa.array(ts, pa.int64()),
                "kind": pa.array(kinds, pa.string()),
                "venue": pa.array(venues, pa.string()),
                "latency_ns": pa.array(ns, pa.int64()),
            }
        )


class ConstantLatency:
    """Order-path latency of one venue: ``entry`` (client -> exchange) and
    ``response`` (exchange -> client), in nanoseconds, the same for every request."""

    __slots__ = ("entry_ns", "response_ns")

    def __init__(self, entry_ns: int, response_ns: int):
        if entry_ns < 0 or response_ns < 0:
            raise ValueError("latencies must be >= 0")
        self.entry_ns = entry_ns
        self.response_ns = response_ns

    def describe(self) -> str:
        return f"constant(entry={self.entry_ns / 1e6:g}ms, response={self.response_ns / 1e6:g}ms)"
