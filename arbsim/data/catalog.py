"""The Parquet data catalog (DESIGN §6).

Layout::

    <root>/catalog.json                                   catalog-wide metadata
    <root>/<venue>/<BASE-QUOTE>/instrument.json           tick, lot, minimums, fees
    <root>/<venue>/<BASE-QUOTE>/<kind>/date=YYYY-MM-DD/part-NNNN.parquet

``kind`` is ``book`` or ``trades``. Rows are in ``ts_local`` order. Every file carries
``arbsim.schema_version`` and ``arbsim.kind`` in its Parquet metadata; readers refuse
files without them (foreign files) or with an unknown version.

book rows: ts_exchange, ts_local (int64 ns), seq (int64 venue update id), side (int8:
1 bid, -1 ask), price, size (float64, absolute; 0 deletes), flags (uint8, FLAG_*).
All rows of one venue message share ``ts_local`` and ``seq``.

trades rows: ts_exchange, ts_local, trade_id (int64), side (int8 aggressor: 1 buy,
-1 sell), price, size.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from arbsim.core.errors import DataError
from arbsim.core.model import Instrument

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})

FLAG_SNAPSHOT_BEGIN = 1
FLAG_SNAPSHOT_END = 2
FLAG_GAP = 4  # the venue's update-id chain broke just before this message
FLAG_REPAIR = 8  # rows synthesised by an importer to remove stale levels

Kind = Literal["book", "trades"]
KINDS: tuple[Kind, ...] = ("book", "trades")


def _fields(fields: list[Any]) -> list[pa.Field[Any]]:
    """Typed field list (the stubs cannot infer a list of mixed field types)."""
    return fields


BOOK_SCHEMA = pa.schema(
    _fields(
        [
            pa.field("ts_exchange", pa.int64()),
            pa.field("ts_local", pa.int64()),
            pa.field("seq", pa.int64()),
            pa.field("side", pa.int8()),
            pa.field("price", pa.float64()),
            pa.field("size", pa.float64()),
            pa.field("flags", pa.uint8()),
        ]
    )
)
TRADES_SCHEMA = pa.schema(
    _fields(
        [
            pa.field("ts_exchange", pa.int64()),
            pa.field("ts_local", pa.int64()),
            pa.field("trade_id", pa.int64()),
            pa.field("side", pa.int8()),
            pa.field("price", pa.float64()),
            pa.field("size", pa.float64()),
        ]
    )
)
SCHEMAS: dict[str, pa.Schema] = {"book": BOOK_SCHEMA, "trades": TRADES_SCHEMA}


class CatalogInfo(msgspec.Struct, kw_only=True):
    """Catalog-wide metadata kept in ``catalog.json``."""

    schema_version: int = SCHEMA_VERSION
    synthetic: bool = False
    description: str = ""
    created_by: str = ""
    notes: list[str] = msgspec.field(default_factory=list)
    #: ``venue:symbol`` -> the clock offset an importer applied to its receive times
    #: (an import appended later reuses it: same recorder, same clock)
    clock_offsets_ns: dict[str, int] = msgspec.field(default_factory=dict)


def symbol_dir(symbol: str) -> str:
    return symbol.replace("/", "-")


def dir_symbol(name: str) -> str:
    return name.replace("-", "/")


_DAY_NS = 86_400_000_000_000
#: a stream with no row for this long between two parts has a gap (``Catalog.ranges``)
GAP_NS = 60_000_000_000


def _date_of(ts_ns: int) -> str:
    # integer days: float seconds would round 23:59:59.999999999 up to the next day
    return (dt.date(1970, 1, 1) + dt.timedelta(days=ts_ns // _DAY_NS)).isoformat()


class PartitionWriter:
    """Streams rows of one ``(venue, symbol, kind)`` into date-partitioned files.

    Rows must arrive in ``ts_local`` order (checked). Call :meth:`close` (or use the
    writer as a context manager) to finish the last file.
    """

    def __init__(self, directory: Path, kind: Kind, venue: str, symbol: str):
        self.directory = directory
        self.kind = kind
        self.schema = SCHEMAS[kind].with_metadata(
            {
                "arbsim.schema_version": str(SCHEMA_VERSION),
                "arbsim.kind": kind,
                "arbsim.venue": venue,
                "arbsim.symbol": symbol,
            }
        )
        self._writer: pq.ParquetWriter | None = None
        self._date: str | None = None
        self._last_ts = -(2**63)
        self.rows = 0

    def write(self, columns: Mapping[str, Any]) -> None:
        """Append rows given as a mapping of column name -> array-like."""
        table = pa.table(
            {f.name: pa.array(columns[f.name], type=f.type) for f in SCHEMAS[self.kind]},
        )
        if not table.num_rows:
            return
        ts = table.column("ts_local").to_numpy()
        if ts[0] < self._last_ts or (len(ts) > 1 and bool(np.any(np.diff(ts) < 0))):
            raise DataError(f"{self.directory}: rows are not in ts_local order")
        dates = np.array([_date_of(int(x)) for x in (ts[0], ts[-1])])
        if dates[0] == dates[1]:
            self._write_date(str(dates[0]), table)
        else:
            day = (ts // _DAY_NS).astype(np.int64)
            cuts = np.flatnonzero(np.diff(day)) + 1
            bounds = [0, *cuts.tolist(), len(ts)]
            for a, b in itertools.pairwise(bounds):
                self._write_date(_date_of(int(ts[a])), table.slice(a, b - a))
        self._last_ts = int(ts[-1])
        self.rows += table.num_rows

    def _write_date(self, date: str, table: pa.Table) -> None:
        if date != self._date:
            self._close_file()
            part_dir = self.directory / f"date={date}"
            part_dir.mkdir(parents=True, exist_ok=True)
            n = len(list(part_dir.glob("part-*.parquet")))
            self._writer = pq.ParquetWriter(
                part_dir / f"part-{n:04d}.parquet", self.schema, compression="zstd"
            )
            self._date = date
        assert self._writer is not None
        self._writer.write_table(table.cast(self.schema), row_group_size=65_536)

    def _close_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._date = None

    def close(self) -> None:
        self._close_file()

    def __enter__(self) -> PartitionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Catalog:
    """A catalog root: read instruments, list streams, stream record batches."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # -------------------------------------------------------------- writing
    def create(self, info: CatalogInfo) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "catalog.json").write_bytes(msgspec.json.format(msgspec.json.encode(info)))

    def write_instrument(self, inst: Instrument) -> None:
        d = self.root / inst.venue / symbol_dir(inst.symbol)
        d.mkdir(parents=True, exist_ok=True)
        (d / "instrument.json").write_bytes(msgspec.json.format(msgspec.json.encode(inst)))

    def writer(self, venue: str, symbol: str, kind: Kind) -> PartitionWriter:
        return PartitionWriter(self.root / venue / symbol_dir(symbol) / kind, kind, venue, symbol)

    # -------------------------------------------------------------- reading
    def info(self) -> CatalogInfo:
        path = self.root / "catalog.json"
        if not self.root.is_dir():
            raise DataError(f"catalog {self.root} does not exist")
        if not path.is_file():
            raise DataError(f"{path}: missing; {self.root} is not an arbsim catalog")
        try:
            info = msgspec.json.decode(path.read_bytes(), type=CatalogInfo)
        except msgspec.DecodeError as e:
            raise DataError(f"{path}: {e}") from e
        if info.schema_version not in SUPPORTED_VERSIONS:
            raise DataError(
                f"{path}: schema_version {info.schema_version} is not supported "
                f"(this arbsim reads {sorted(SUPPORTED_VERSIONS)})"
            )
        return info

    def instruments(self) -> list[Instrument]:
        """Every instrument in the catalog, sorted by venue then symbol."""
        self.info()
        out = []
        for path in sorted(self.root.glob("*/*/instrument.json")):
            out.append(self._load_instrument(path))
        return out

    def instrument(self, venue: str, symbol: str) -> Instrument:
        path = self.root / venue / symbol_dir(symbol) / "instrument.json"
        if not path.is_file():
            known = ", ".join(i.key for i in self.instruments()) or "none"
            raise DataError(f"{self.root}: no instrument {venue}:{symbol} (catalog has: {known})")
        return self._load_instrument(path)

    @staticmethod
    def _load_instrument(path: Path) -> Instrument:
        try:
            return msgspec.json.decode(path.read_bytes(), type=Instrument)
        except msgspec.DecodeError as e:
            raise DataError(f"{path}: {e}") from e

    def files(self, venue: str, symbol: str, kind: Kind) -> list[Path]:
        d = self.root / venue / symbol_dir(symbol) / kind
        return sorted(d.glob("date=*/*.parquet"))

    def time_range(self, venue: str, symbol: str) -> tuple[int, int] | None:
        """First and last ``ts_local`` of a venue's book stream (from Parquet statistics)."""
        lo: int | None = None
        hi: int | None = None
        for path in self.files(venue, symbol, "book"):
            meta = open_parquet(path, "book").metadata
            col = meta.schema.names.index("ts_local")
            for rg in range(meta.num_row_groups):
                st = meta.row_group(rg).column(col).statistics
                if st is None or not st.has_min_max or st.min is None or st.max is None:
                    continue
                lo = int(st.min) if lo is None else min(lo, int(st.min))
                hi = int(st.max) if hi is None else max(hi, int(st.max))
        return None if lo is None or hi is None else (lo, hi)

    def ranges(self, venue: str, symbol: str, max_gap_ns: int = GAP_NS) -> list[tuple[int, int]]:
        """The stream's stretches of data: the ``ts_local`` ranges of its book and trade
        parts (from Parquet statistics), merged where less than ``max_gap_ns`` apart.
        Several ranges mean gaps between them (e.g. days imported with days missing)."""
        spans: list[tuple[int, int]] = []
        for kind in KINDS:
            for path in self.files(venue, symbol, kind):
                meta = open_parquet(path, kind).metadata
                col = meta.schema.names.index("ts_local")
                for rg in range(meta.num_row_groups):
                    st = meta.row_group(rg).column(col).statistics
                    if st is None or not st.has_min_max or st.min is None or st.max is None:
                        continue
                    spans.append((int(st.min), int(st.max)))
        out: list[tuple[int, int]] = []
        for lo, hi in sorted(spans):
            if out and lo - out[-1][1] < max_gap_ns:
                out[-1] = (out[-1][0], max(out[-1][1], hi))
            else:
                out.append((lo, hi))
        return out

    def batches(
        self, venue: str, symbol: str, kind: Kind, batch_size: int = 65_536
    ) -> Iterator[tuple[Path, pa.RecordBatch]]:
        """Record batches of a stream in file order, each checked against the schema."""
        files = self.files(venue, symbol, kind)
        for path in files:
            pf = open_parquet(path, kind)
            try:
                for batch in pf.iter_batches(batch_size=batch_size, use_threads=False):
                    yield path, batch
            except (OSError, pa.ArrowException) as e:
                raise DataError(f"{path}: corrupt Parquet data ({e})") from e


def open_parquet(path: Path, kind: Kind) -> pq.ParquetFile:
    """Open a catalog file, refusing foreign, corrupt or mis-schema files with a clear error.

    Batches are read row group by row group (``pre_buffer=False``): Arrow's default reads
    the whole file into memory at the first batch, which would make a replay's memory
    grow with the size of the files it reads."""
    try:
        pf = pq.ParquetFile(path, pre_buffer=False)
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"{path}: not a readable Parquet file ({e})") from e
    meta = pf.schema_arrow.metadata or {}
    version = meta.get(b"arbsim.schema_version")
    if version is None:
        raise DataError(
            f"{path}: no arbsim.schema_version in the file metadata; "
            "this is not a file written by arbsim's catalog writer"
        )
    if not version.isdigit() or int(version) not in SUPPORTED_VERSIONS:
        raise DataError(
            f"{path}: arbsim.schema_version {version.decode(errors='replace')!r} is not "
            f"supported (expected one of {sorted(SUPPORTED_VERSIONS)})"
        )
    file_kind = meta.get(b"arbsim.kind", b"").decode(errors="replace")
    if file_kind != kind:
        raise DataError(f"{path}: holds {file_kind!r} rows where {kind!r} rows were expected")
    expected = SCHEMAS[kind]
    got = pf.schema_arrow
    for field in expected:
        idx = got.get_field_index(field.name)
        if idx < 0:
            raise DataError(f"{path}: column {field.name!r} ({field.type}) is missing")
        if got.field(idx).type != field.type:
            raise DataError(
                f"{path}: column {field.name!r} has type {got.field(idx).type}, "
                f"expected {field.type}"
            )
    return pf


def _iso(ts_ns: int) -> str:
    t = dt.datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=dt.UTC)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{ts_ns % 1_000_000_000 // 1_000_000:03d}Z"


def catalog_summary(catalog: Catalog) -> dict[str, Any]:
    """A JSON-able description of a catalog (instruments, rows, time ranges: ``range``
    in ns since the epoch, ``start`` / ``end`` the same as ISO-8601 UTC; ``ranges``: the
    stretches of data of a stream that grew by appends, ``gaps``: the holes between them).

    Raises DataError for a catalog that holds no instrument (only ``catalog.json``: what
    an interrupted write leaves), so it is not taken for a usable one."""
    info = catalog.info()
    out: dict[str, Any] = {
        "root": str(catalog.root),
        "synthetic": info.synthetic,
        "description": info.description,
        "streams": [],
    }
    instruments = catalog.instruments()
    if not instruments:
        raise DataError(
            f"{catalog.root}: holds no data, only catalog.json (an interrupted write?); "
            "remove it and write the catalog again"
        )
    for inst in instruments:
        rows = {
            kind: sum(
                open_parquet(p, kind).metadata.num_rows
                for p in catalog.files(inst.venue, inst.symbol, kind)
            )
            for kind in KINDS
        }
        rng = catalog.time_range(inst.venue, inst.symbol)
        ranges = catalog.ranges(inst.venue, inst.symbol)
        out["streams"].append(
            {
                "venue": inst.venue,
                "symbol": inst.symbol,
                "market": inst.market,
                "tick": str(inst.tick),
                "lot": str(inst.lot),
                "rows": rows,
                "range": rng,
                "start": None if rng is None else _iso(rng[0]),
                "end": None if rng is None else _iso(rng[1]),
                "seconds": None if rng is None else round((rng[1] - rng[0]) / 1e9, 3),
                "ranges": [
                    {"start": _iso(lo), "end": _iso(hi), "range": [lo, hi]} for lo, hi in ranges
                ],
                "gaps": [
                    {
                        "after": _iso(a[1]),
                        "before": _iso(b[0]),
                        "seconds": round((b[0] - a[1]) / 1e9, 3),
                    }
                    for a, b in itertools.pairwise(ranges)
                ],
            }
        )
    return out
