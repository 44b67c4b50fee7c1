"""Latency measurement, the same code in every mode (DESIGN §3).

Three kinds are measured: feed latency (``ts_local - ts_exchange`` of each market
message), order round trips (request sent -> answer received, per request kind) and
tick-to-trade (``ts_local`` of the triggering event -> the order leaving).

Feed latency is seen on every message, so it is kept in a bounded, deterministic
sample: every ``stride``-th value, with the stride doubling (and every other kept
value dropped) whenever the buffer fills. Memory stays constant however long the run.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from arbsim.core.checks import ConfigPath, at_least, at_most, non_negative
from arbsim.core.errors import DataError
from arbsim.runtime import columns

#: request kinds a venue distinguishes; ``push`` is an unsolicited private update
REQUEST_KINDS = ("place", "cancel", "fetch_order", "fetch_balances", "open_orders", "push")


class LatencySpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One latency model. ``constant``: ``entry_ms`` / ``response_ms`` exactly;
    ``lognormal``: those are the medians and ``sigma`` the shape; ``empirical``: round
    trips resampled from ``source`` (a run's latency.parquet, this venue's rows of
    ``source_kinds``, or a CSV with a latency_ms column), split by ``entry_share``;
    ``session``: the latencies a paper or live session measured (``source``: its run
    directory), replayed in order (:class:`SessionLatency`)."""

    model: Literal["constant", "lognormal", "empirical", "session"] = "constant"
    entry_ms: float = 10.0
    response_ms: float = 10.0
    sigma: float = 0.25
    source: ConfigPath | None = None
    source_kinds: list[str] = msgspec.field(default_factory=lambda: ["place"])
    entry_share: float = 0.5

    def __post_init__(self) -> None:
        if self.model in ("empirical", "session") and not self.source:
            raise ValueError(f"model {self.model!r} needs `source`")
        non_negative(entry_ms=self.entry_ms, response_ms=self.response_ms, sigma=self.sigma)
        at_least("entry_share", self.entry_share, 0)
        at_most("entry_share", self.entry_share, 1)


class LatencyConfig(LatencySpec, frozen=True):
    """A venue's latency: a default model, optional per-request-kind overrides
    (place, cancel, fetch_order, fetch_balances, open_orders, push), and a seed."""

    per_kind: dict[str, LatencySpec] = msgspec.field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = sorted(set(self.per_kind) - set(REQUEST_KINDS))
        if unknown:
            raise ValueError(
                f"per_kind: unknown request kind {unknown[0]!r} (known: {', '.join(REQUEST_KINDS)})"
            )


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

    def forget_feed(self) -> None:
        """Drop the feed latencies seen so far (a backtest's warm-up is not its window)."""
        self._feed.clear()

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
        return columns.table(
            {
                "ts": columns.array(ts, pa.int64()),
                "kind": columns.array(kinds, pa.string()),
                "venue": columns.array(venues, pa.string()),
                "latency_ns": columns.array(ns, pa.int64()),
            }
        )


class LatencyModel(Protocol):
    """Order-path latency of one venue: ``sample(kind)`` gives ``(entry_ns, response_ns)``
    for one request (client -> exchange, exchange -> client)."""

    def sample(self, kind: str) -> tuple[int, int]: ...

    def describe(self) -> str: ...


class ConstantLatency:
    """The same entry and response latency for every request."""

    __slots__ = ("entry_ns", "response_ns")

    def __init__(self, entry_ns: int, response_ns: int):
        if entry_ns < 0 or response_ns < 0:
            raise ValueError("latencies must be >= 0")
        self.entry_ns = entry_ns
        self.response_ns = response_ns

    def sample(self, kind: str) -> tuple[int, int]:
        return self.entry_ns, self.response_ns

    def describe(self) -> str:
        return f"constant(entry={self.entry_ns / 1e6:g}ms, response={self.response_ns / 1e6:g}ms)"


class LognormalLatency:
    """Lognormal latencies with the given medians and shape ``sigma`` (seeded)."""

    def __init__(self, entry_median_ns: int, response_median_ns: int, sigma: float, seed: int):
        if entry_median_ns < 0 or response_median_ns < 0 or sigma < 0:
            raise ValueError("medians and sigma must be >= 0")
        self.entry_median_ns = entry_median_ns
        self.response_median_ns = response_median_ns
        self.sigma = sigma
        self._rng = np.random.default_rng(seed)

    def sample(self, kind: str) -> tuple[int, int]:
        z = self._rng.standard_normal(2) * self.sigma
        return (
            int(self.entry_median_ns * math.exp(z[0])),
            int(self.response_median_ns * math.exp(z[1])),
        )

    def describe(self) -> str:
        return (
            f"lognormal(entry median={self.entry_median_ns / 1e6:g}ms, response "
            f"median={self.response_median_ns / 1e6:g}ms, sigma={self.sigma:g})"
        )


class EmpiricalLatency:
    """Round trips resampled (seeded) from recorded ones; each is split into entry and
    response by ``entry_share``."""

    def __init__(self, round_trips_ns: np.ndarray, entry_share: float, seed: int, source: str):
        rt = np.asarray(round_trips_ns, dtype=np.int64)
        if not len(rt):
            raise ValueError(f"{source}: no recorded round trips to resample")
        if (rt < 0).any():
            raise ValueError(f"{source}: negative round trips")
        if not 0.0 <= entry_share <= 1.0:
            raise ValueError(f"entry_share must be within [0, 1], got {entry_share}")
        self.round_trips = rt
        self.entry_share = entry_share
        self.source = source
        self._rng = np.random.default_rng(seed)

    @classmethod
    def from_file(
        cls,
        path: Path,
        kinds: tuple[str, ...],
        entry_share: float,
        seed: int,
        venue: str | None = None,
    ) -> EmpiricalLatency:
        """Recorded round trips from a run's ``latency.parquet`` (rows of the given kinds,
        and of ``venue`` when given) or from a CSV with a ``latency_ms`` column."""
        if not path.is_file():
            raise DataError(f"{path}: latency source file not found")
        try:
            if path.suffix == ".csv":
                table = pacsv.read_csv(path)
                if "latency_ms" not in table.column_names:
                    raise DataError(f"{path}: a latency CSV needs a 'latency_ms' column")
                values = (table.column("latency_ms").to_numpy() * 1e6).astype(np.int64)
            else:
                table = pq.read_table(path)
                missing = {"kind", "latency_ns"} - set(table.column_names)
                if missing:
                    raise DataError(f"{path}: not a run's latency.parquet (missing {missing})")
                kind = table.column("kind").to_numpy(zero_copy_only=False)
                keep = np.isin(kind, list(kinds))
                if venue is not None and "venue" in table.column_names:
                    venues = table.column("venue").to_numpy(zero_copy_only=False)
                    if not (venues == venue).any():
                        raise DataError(
                            f"{path}: no latencies of venue {venue!r} "
                            f"(it has {', '.join(sorted(set(map(str, venues))))})"
                        )
                    keep &= venues == venue
                values = table.column("latency_ns").to_numpy()[keep]
        except (OSError, pa.ArrowException) as e:
            raise DataError(f"{path}: cannot read latency samples ({e})") from e
        return cls(values, entry_share, seed, str(path))

    def sample(self, kind: str) -> tuple[int, int]:
        rt = int(self.round_trips[self._rng.integers(len(self.round_trips))])
        entry = int(rt * self.entry_share)
        return entry, rt - entry

    def describe(self) -> str:
        p50 = float(np.median(self.round_trips)) / 1e6
        return (
            f"empirical({len(self.round_trips)} round trips from {self.source}, "
            f"median {p50:g}ms, entry share {self.entry_share:g})"
        )


class SessionLatency:
    """What a paper or live session measured, replayed in order, per request kind.

    ``place``: one ``(entry, response)`` per order of this venue, in the order they were
    sent (``orders.parquet``): entry = accepted - sent, response = first answer -
    accepted. A backtest decides at the market event that triggered an arbitrage and acts
    at once; the session spent time there (compute, waits for the event loop, the journal
    write). So a request an arbitrage made before its legs (its balance fetches) carries
    the session's time from the trigger to the request leaving, and each entry leg the
    time from the last of those answers to the leg leaving. Without an accepted time
    (a live venue that reports none) the round trip is split by ``entry_share``.
    Other kinds: this venue's round trips of that kind from ``latency.parquet``, split
    by ``entry_share``; a kind the session never measured uses the ``place`` ones.
    When the backtest asks for more than the session measured, the replay starts over.

    A backtest of the session's own recording (``arbsim backtest --data RUN/catalog
    --config RUN/config.yaml --latency-from RUN``) then meets every order at the
    exchange time the session's order met, as long as both place the same orders.
    """

    def __init__(self, samples: dict[str, list[tuple[int, int]]], source: str, venue: str) -> None:
        if not samples.get("place"):
            raise ValueError(f"{source}: venue {venue!r} placed no order to replay")
        self.samples = samples
        self.source = source
        self.venue = venue
        self._next: dict[str, int] = {}

    @classmethod
    def from_run(cls, run_dir: Path, venue: str, entry_share: float) -> SessionLatency:
        """Read a run directory's ``orders.parquet``, ``arbs.parquet`` and
        ``latency.parquet`` (DataError naming the file when one is missing or unreadable)."""

        def read(name: str, columns: list[str]) -> pa.Table:
            path = run_dir / name
            if not path.is_file():
                raise DataError(f"{path}: missing; `session` latency needs a run directory")
            try:
                return pq.read_table(path, columns=columns)
            except (OSError, pa.ArrowException, KeyError) as e:
                raise DataError(f"{path}: cannot read {', '.join(columns)} ({e})") from e

        orders = read(
            "orders.parquet", ["client_order_id", "venue", "ts_sent", "ts_accepted", "ts_ack"]
        ).to_pylist()
        arbs = read("arbs.parquet", ["ts_trigger", "ts_done", "orders"]).to_pylist()
        lat = read("latency.parquet", ["ts", "kind", "venue", "latency_ns"]).to_pylist()
        sent_of = {o["client_order_id"]: int(o["ts_sent"] or 0) for o in orders}
        # each arbitrage from its trigger to its legs leaving (to its end without legs):
        # the backtest does at the trigger what the session did in that span
        spans = sorted(
            (
                int(a["ts_trigger"]),
                min(
                    [sent_of[c] for c in (a["orders"] or [])[:2] if sent_of.get(c)]
                    or [int(a["ts_done"] or a["ts_trigger"])]
                ),
            )
            for a in arbs
        )
        triggers = [t for t, _ in spans]

        def lead(ts: int) -> tuple[int, int] | None:
            """(trigger, ts - trigger) when ``ts`` falls in an arbitrage's span."""
            k = bisect.bisect_right(triggers, ts) - 1
            if k >= 0 and ts <= spans[k][1]:
                return triggers[k], ts - triggers[k]
            return None

        # requests other than orders: one that an arbitrage made before its legs is
        # replayed from the trigger, so it carries the session's time up to its start
        samples: dict[str, list[tuple[int, int]]] = {}
        answered: dict[int, int] = {}  # trigger -> when its last such request was answered
        for row in sorted(lat, key=lambda r: int(r["ts"])):
            kind = str(row["kind"])
            if kind not in REQUEST_KINDS or kind == "place":
                continue
            ts, rt = int(row["ts"]), max(0, int(row["latency_ns"]))
            span = lead(ts)
            if span is not None:
                answered[span[0]] = max(answered.get(span[0], 0), ts + rt)
            if row["venue"] != venue:
                continue
            entry = int(rt * entry_share)
            samples.setdefault(kind, []).append((entry + (span[1] if span else 0), rt - entry))
        trigger_of = {c: int(a["ts_trigger"]) for a in arbs for c in (a["orders"] or [])[:2]}
        place: list[tuple[int, int, int]] = []
        for o in orders:
            sent, ack = o["ts_sent"] or 0, o["ts_ack"] or 0
            if o["venue"] != venue or not sent or not ack or ack < sent:
                continue
            extra = 0
            trigger = trigger_of.get(o["client_order_id"])
            if trigger is not None and trigger <= sent:
                # the backtest sends the legs once its replayed requests are answered
                extra = max(0, sent - answered.get(trigger, trigger))
            accepted = o["ts_accepted"] or 0
            entry = accepted - sent if sent <= accepted <= ack else int((ack - sent) * entry_share)
            place.append((sent, extra + entry, ack - sent - entry))
        samples["place"] = [(e, r) for _, e, r in sorted(place)]
        return cls(samples, str(run_dir), venue)

    def sample(self, kind: str) -> tuple[int, int]:
        key = kind if self.samples.get(kind) else "place"
        got = self.samples[key]
        i = self._next.get(key, 0)
        self._next[key] = i + 1
        return got[i % len(got)]

    def describe(self) -> str:
        n = ", ".join(f"{len(v)} {k}" for k, v in sorted(self.samples.items()))
        return f"session({self.venue} latencies of {self.source} replayed in order: {n})"


class PerKindLatency:
    """A default model with overrides for some request kinds."""

    def __init__(self, default: LatencyModel, per_kind: dict[str, LatencyModel]):
        self.default = default
        self.per_kind = per_kind

    def sample(self, kind: str) -> tuple[int, int]:
        return self.per_kind.get(kind, self.default).sample(kind)

    def describe(self) -> str:
        if not self.per_kind:
            return self.default.describe()
        extra = "; ".join(f"{k}: {m.describe()}" for k, m in sorted(self.per_kind.items()))
        return f"{self.default.describe()}; {extra}"


def build_latency(cfg: LatencyConfig, venue: str | None = None) -> LatencyModel:
    """The latency model a venue config describes (seeded: same config, same draws).

    ``venue``: whose rows a recorded source (``empirical``, ``session``) provides;
    ``session`` needs it."""

    def one(spec: LatencySpec, seed: int) -> LatencyModel:
        if spec.model == "constant":
            return ConstantLatency(int(spec.entry_ms * 1e6), int(spec.response_ms * 1e6))
        if spec.model == "lognormal":
            return LognormalLatency(
                int(spec.entry_ms * 1e6), int(spec.response_ms * 1e6), spec.sigma, seed
            )
        assert spec.source is not None
        if spec.model == "session":
            if venue is None:
                raise ValueError("model 'session' needs the venue's name")
            return SessionLatency.from_run(Path(spec.source), venue, spec.entry_share)
        return EmpiricalLatency.from_file(
            Path(spec.source), tuple(spec.source_kinds), spec.entry_share, seed, venue
        )

    per_kind = {
        kind: one(spec, cfg.seed + 1 + i)
        for i, (kind, spec) in enumerate(sorted(cfg.per_kind.items()))
    }
    return PerKindLatency(one(cfg, cfg.seed), per_kind)
