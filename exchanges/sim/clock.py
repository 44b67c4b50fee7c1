"""The simulator's one replay clock: catalog time -> host time (pacing) and exchange time.

Every venue of a simulator replays on this clock, so the inter-venue timing of the
catalog is reproduced (no venue runs ahead of another). With ``start`` the catalog time
that opens the replay window, ``speed`` ``s`` and ``origin`` the host time at which the
replay starts (rounded so that ``offset`` is a whole number of milliseconds)::

    offset          = origin - start                          (constant, a multiple of 1 ms)
    release(key)    = origin + (key - start) / s              (host time a message goes out)
    catalog_now     = start + s * (host_now - origin)
    exchange_now    = catalog_now + offset                    (= origin + s * (host_now - origin))
    exchange stamp  = ts_exchange + offset (+ lap * lap_ns)   (every emitted market-data time)

``key`` is a message's ``ts_exchange`` (the running maximum over its stream, so that a
stream never goes back) or, for the wire in pace ``local``, its ``ts_local``; in lap ``k``
add ``k * lap_ns``. At speed 1 the exchange clock is the host clock (within the
< 0.5 ms rounding of ``offset``); at speed ``s`` it runs ``s`` times as fast from the
origin. With ``loop`` lap ``k`` (0 first) replays the window again ``k * lap_ns`` later.
Speed 0 (manual stepping): the exchange clock is the host clock and only market-data
stamps follow the catalog (``ts_exchange + offset``).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from arbsim.core.errors import ConfigError, DataError
from arbsim.data.catalog import Catalog, Kind, open_parquet
from exchanges.sim.config import Pace

__all__ = [
    "MS",
    "Extent",
    "SimClock",
    "catalog_extent",
    "ceil_ms",
    "check_window",
    "iso",
    "lap_length",
    "parse_time",
]

MS = 1_000_000


def parse_time(value: str, what: str) -> int:
    """ISO-8601 (``2026-01-05T00:05:00Z``, ``...00:05:00.250+00:00``; naive means UTC) ->
    ns since the epoch (microsecond precision)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{what}: {value!r} is not an ISO-8601 time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def iso(ts_ns: int) -> str:
    """ns since the epoch -> ISO-8601 UTC with microseconds."""
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ts_ns // 1000)
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


class Extent(msgspec.Struct, frozen=True, kw_only=True):
    """Time span of catalog streams: first/last ``ts_exchange`` and last ``ts_local``."""

    first_exchange: int
    last_exchange: int
    last_local: int

    def last_key(self, pace: Pace) -> int:
        """The last release key of the span under ``pace``."""
        return self.last_local if pace == "local" else self.last_exchange

    @staticmethod
    def union(extents: Iterable[Extent | None]) -> Extent | None:
        """The span covering all of ``extents`` (None when none has data)."""
        real = [e for e in extents if e is not None]
        if not real:
            return None
        return Extent(
            first_exchange=min(e.first_exchange for e in real),
            last_exchange=max(e.last_exchange for e in real),
            last_local=max(e.last_local for e in real),
        )


def _column_range(path: Path, kind: Kind, column: str) -> tuple[int, int] | None:
    """Min and max of an integer column, from the row groups' statistics (read when a row
    group has none)."""
    meta = open_parquet(path, kind).metadata
    idx = meta.schema.names.index(column)
    lo: int | None = None
    hi: int | None = None
    for rg in range(meta.num_row_groups):
        st = meta.row_group(rg).column(idx).statistics
        if st is None or not st.has_min_max or st.min is None or st.max is None:
            try:
                values = pq.read_table(path, columns=[column]).column(0).to_numpy()
            except (OSError, pa.ArrowException) as e:
                raise DataError(f"{path}: corrupt Parquet data ({e})") from e
            return (int(values.min()), int(values.max())) if len(values) else None
        lo = int(st.min) if lo is None else min(lo, int(st.min))
        hi = int(st.max) if hi is None else max(hi, int(st.max))
    return None if lo is None or hi is None else (lo, hi)


def catalog_extent(catalog: Catalog, venue: str, symbols: Iterable[str]) -> Extent | None:
    """The span of a catalog venue's book and trade streams (None: no market data)."""
    spans: list[Extent] = []
    for symbol in symbols:
        for kind in _KINDS:
            for path in catalog.files(venue, symbol, kind):
                tsx = _column_range(path, kind, "ts_exchange")
                tsl = _column_range(path, kind, "ts_local")
                if tsx is not None and tsl is not None:
                    spans.append(
                        Extent(first_exchange=tsx[0], last_exchange=tsx[1], last_local=tsl[1])
                    )
    return Extent.union(spans)


_KINDS: tuple[Kind, ...] = ("book", "trades")


def ceil_ms(ns: int) -> int:
    """``ns`` rounded up to a whole millisecond."""
    return -(-ns // MS) * MS


def check_window(extent: Extent | None, start: int | None, end: int | None, where: str) -> None:
    """Refuse a window that holds no message of the catalog (``where`` names the catalog)."""
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"the window ends ({iso(end)}) before it starts ({iso(start)})")
    if extent is None:
        if start is not None or end is not None:
            raise ConfigError(f"{where}: no market data, so no window can be replayed")
        return
    span = f"the catalog spans {iso(extent.first_exchange)} .. {iso(extent.last_exchange)}"
    if start is not None and start > extent.last_exchange:
        raise ConfigError(
            f"start {iso(start)} is after the catalog's last message ({where}: {span})"
        )
    if end is not None and end <= extent.first_exchange:
        raise ConfigError(
            f"end {iso(end)} is not after the catalog's first message ({where}: {span})"
        )


def lap_length(extent: Extent | None, start: int, end: int | None, pace: Pace) -> int:
    """How much later each lap replays the window (whole milliseconds, at least 1 ms):
    ``end - start``, or up to 1 ms after the catalog's last release key."""
    if end is None:
        end = extent.last_key(pace) + MS if extent is not None else start + 1000 * MS
    return ceil_ms(max(end - start, MS))


class SimClock:
    """The replay clock shared by every venue of a simulator (module docstring).

    Parameters
    ----------
    speed:
        Catalog seconds per host second (0: manual stepping).
    pace:
        ``exchange``: messages go out at their ``ts_exchange``; ``local``: the book moves at
        ``ts_exchange`` and the wire carries each message at its recorded ``ts_local``.
    loop:
        Replay the window again when it ends.
    host_ns:
        The host's clock.
    """

    def __init__(
        self,
        speed: float,
        pace: Pace = "exchange",
        *,
        loop: bool = True,
        host_ns: Callable[[], int] = time.time_ns,
    ):
        self.speed = speed
        self.pace = pace
        self.loop = loop
        self.host_ns = host_ns
        self.start_ns = 0
        self.end_ns: int | None = None
        self.lap_ns = 1000 * MS
        self.offset_ns = 0
        self.origin_ns = 0
        self.started = False
        self._last = 0
        self._event: int | None = None
        self._due: dict[int, float] = {}

    def set_window(self, start_ns: int, end_ns: int | None, lap_ns: int) -> None:
        """The catalog window to replay and the lap length (before :meth:`start`)."""
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.lap_ns = lap_ns

    def start(self) -> None:
        """Fix the origin: catalog ``start_ns`` is now (to the nearest millisecond of offset)."""
        host = self.host_ns()
        self.offset_ns = (host - self.start_ns + MS // 2) // MS * MS
        self.origin_ns = self.start_ns + self.offset_ns
        self.started = True

    # ------------------------------------------------------------------ mapping
    def stamp_ns(self, ts_exchange: int, lap: int = 0) -> int:
        """The exchange time of catalog time ``ts_exchange`` in lap ``lap``."""
        return ts_exchange + self.offset_ns + lap * self.lap_ns

    def release_ns(self, key: int) -> float:
        """Host time at which lap-adjusted catalog time ``key`` is due."""
        return self.origin_ns + (key - self.start_ns) / self.speed

    def delay_s(self, key: int) -> float:
        """Seconds until ``key`` is due (negative: overdue)."""
        return (self.release_ns(key) - self.host_ns()) / 1e9

    def plan(self, who: object, due_ns: float) -> None:
        """``who`` (a venue's replay) has its next message due at host time ``due_ns``."""
        self._due[id(who)] = due_ns

    def idle_s(self) -> float:
        """Seconds until any venue's next message is due (work that fits may run now)."""
        if not self._due:
            return math.inf
        return (min(self._due.values()) - self.host_ns()) / 1e9

    def catalog_now_ns(self) -> int:
        """Lap-adjusted catalog time now (speed 0: the host clock minus the offset)."""
        host = self.host_ns()
        if not self.started:
            return self.start_ns
        if self.speed <= 0:
            return host - self.offset_ns
        return self.start_ns + math.floor((host - self.origin_ns) * self.speed)

    def now_ns(self) -> int:
        """The exchange clock: never goes back; while a market message is being applied it
        is that message's exchange time (so fills it causes carry its time)."""
        if not self.started:
            return self.host_ns()
        if self._event is not None and self.speed > 0:
            t = self._event
        else:
            t = self.catalog_now_ns() + self.offset_ns
        if t > self._last:
            self._last = t
        return self._last

    def enter(self, stamp_ns: int) -> None:
        """A market message with exchange time ``stamp_ns`` is being applied."""
        self._event = stamp_ns

    def leave(self) -> None:
        """The message is applied."""
        self._event = None

    def to_catalog(self, exchange_ns: int) -> tuple[int, int]:
        """(catalog time, lap) of an exchange time emitted by the simulator."""
        t = exchange_ns - self.offset_ns
        lap = max(0, (t - self.start_ns) // self.lap_ns) if self.loop else 0
        return t - lap * self.lap_ns, lap

    def state(self) -> dict[str, object]:
        """What ``GET /_sim/state`` reports under ``clock``."""
        return {
            "speed": self.speed,
            "pace": self.pace,
            "loop": self.loop,
            "start": iso(self.start_ns),
            "start_ns": self.start_ns,
            "end": iso(self.end_ns) if self.end_ns is not None else None,
            "end_ns": self.end_ns,
            "lap_ns": self.lap_ns,
            "offset_ns": self.offset_ns,
            "offset_ms": self.offset_ns // MS,
            "origin_ns": self.origin_ns,
            "catalog_now_ns": self.catalog_now_ns(),
            "exchange_now_ms": self.now_ns() // MS,
            "mapping": (
                "exchange_ms = ts_exchange_ns // 1e6 + offset_ms + lap * lap_ns // 1e6; "
                "exchange_now = origin_ns + speed * (host_now - origin_ns)"
            ),
        }
