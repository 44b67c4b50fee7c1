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

A catalog is read from a directory or a URL (``s3://bucket/prefix``: read-only, see
:class:`Catalog`). :meth:`Catalog.seek` says where a stream's reading may start for a
window (fast windows: a book from its latest snapshot before the window).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePath
from typing import Any, Literal, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.fs as pafs
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


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(location: str | PurePath) -> bool:
    """Whether a catalog location is a URL (``s3://bucket/prefix``, ``file:///data``)."""
    return isinstance(location, str) and bool(_URL.match(location))


def catalog_location(value: str | PurePath) -> str | Path:
    """A catalog named on the command line or in a config: a URL as it is, else a local
    path (a URL must not go through ``Path``, which would fold its ``//``)."""
    return value if isinstance(value, str) and is_url(value) else Path(value)


def _filesystem(url: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem of a catalog URL and the root's path in it.

    ``s3://bucket/prefix``: pyarrow's own S3 filesystem; the endpoint of an S3-compatible
    store from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, the region from
    ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, credentials the AWS way (environment,
    config files, instance role); none of them is ever logged. Other schemes pyarrow
    knows (``file``, ``gs``, ``hdfs``, ``abfs``) through ``FileSystem.from_uri``; any
    other through fsspec (when installed) wrapped in ``FSSpecHandler``."""
    scheme = url.split("://", 1)[0].lower()
    try:
        if scheme in ("s3", "s3a"):
            rest = url.split("://", 1)[1]
            if "?" in rest:
                return pafs.FileSystem.from_uri("s3://" + rest)
            env = os.environ
            endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
            region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
            fs = pafs.S3FileSystem(endpoint_override=endpoint, region=region)
            return fs, rest.strip("/")
        try:
            return pafs.FileSystem.from_uri(url)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        try:
            import fsspec  # type: ignore[import-untyped]
        except ImportError:
            raise DataError(
                f"catalog {url}: pyarrow has no filesystem for {scheme}:// and fsspec is not "
                "installed (pip install fsspec and the package of that scheme)"
            ) from None
        ffs, path = fsspec.core.url_to_fs(url)
        handler = pafs.FSSpecHandler(ffs)  # type: ignore[abstract]
        return pafs.PyFileSystem(handler), str(path).rstrip("/")
    except DataError:
        raise
    except (OSError, ValueError, ImportError, pa.ArrowException) as e:
        raise DataError(f"catalog {url}: cannot open its filesystem ({e})") from None


class Catalog:
    """A catalog root: read instruments, list streams, stream record batches.

    ``root`` is a local directory or a URL (``s3://bucket/prefix``, ``file:///dir``, any
    scheme pyarrow or fsspec can open, see :func:`_filesystem`). A remote catalog is
    read-only; its files are listed once, when first needed, and each is opened once (a
    catalog being written while read is a local one). For a remote catalog
    :meth:`files` gives paths in its filesystem, opened by :meth:`parquet`;
    ``location`` is the URL."""

    def __init__(self, root: str | Path):
        self.fs: pafs.FileSystem | None = None
        self._listing: list[str] | None = None
        self._opened: dict[tuple[str, str], pq.ParquetFile] = {}
        if isinstance(root, str) and is_url(root):
            fs, base = _filesystem(root)
            if isinstance(fs, pafs.LocalFileSystem):
                self.root = Path(base)
                self.location = str(self.root)
            else:
                self.fs = fs
                self.root = Path(base)
                self.location = root.rstrip("/")
                self._scheme = root.split("://", 1)[0]
        else:
            self.root = Path(root)
            self.location = str(self.root)

    def _read_only(self, what: str) -> None:
        if self.fs is not None:
            raise DataError(f"catalog {self.location}: a remote catalog is read-only ({what})")

    def _name(self, path: PurePath) -> str:
        """How errors name a file of the catalog (with the URL scheme when remote)."""
        return str(path) if self.fs is None else f"{self._scheme}://{path}"

    def _remote_files(self) -> list[str]:
        assert self.fs is not None
        if self._listing is None:
            base = str(self.root)
            try:
                infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True))
            except FileNotFoundError:
                raise DataError(f"catalog {self.location} does not exist") from None
            except (OSError, pa.ArrowException) as e:
                raise DataError(f"catalog {self.location}: cannot list it ({e})") from None
            self._listing = sorted(i.path for i in infos if i.type == pafs.FileType.File)
        return self._listing

    def _read_bytes(self, path: Path) -> bytes:
        if self.fs is None:
            return path.read_bytes()
        try:
            with self.fs.open_input_stream(str(path)) as f:
                data: bytes = f.read()
                return data
        except (OSError, pa.ArrowException) as e:
            raise DataError(f"{self._name(path)}: cannot read it ({e})") from None

    def _is_file(self, path: Path) -> bool:
        if self.fs is None:
            return path.is_file()
        return str(path) in self._remote_files()

    def parquet(self, path: Path, kind: Kind) -> pq.ParquetFile:
        """Open one of the catalog's files (:func:`open_parquet`'s checks)."""
        if self.fs is None:
            return open_parquet(path, kind)
        # a remote file is opened once per catalog: each open costs requests (its size,
        # its footer) and a run opens a file to frame the window, to seek and to read
        key = (str(path), kind)
        pf = self._opened.get(key)
        if pf is None:
            try:
                source = self.fs.open_input_file(str(path))
            except (OSError, pa.ArrowException) as e:
                raise DataError(f"{self._name(path)}: cannot open it ({e})") from None
            pf = self._opened[key] = open_parquet(path, kind, source, self._name(path))
        return pf

    # -------------------------------------------------------------- writing
    def create(self, info: CatalogInfo) -> None:
        self._read_only("create")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "catalog.json").write_bytes(msgspec.json.format(msgspec.json.encode(info)))

    def write_instrument(self, inst: Instrument) -> None:
        self._read_only("write_instrument")
        d = self.root / inst.venue / symbol_dir(inst.symbol)
        d.mkdir(parents=True, exist_ok=True)
        (d / "instrument.json").write_bytes(msgspec.json.format(msgspec.json.encode(inst)))

    def writer(self, venue: str, symbol: str, kind: Kind) -> PartitionWriter:
        self._read_only("writer")
        return PartitionWriter(self.root / venue / symbol_dir(symbol) / kind, kind, venue, symbol)

    # -------------------------------------------------------------- reading
    def info(self) -> CatalogInfo:
        path = self.root / "catalog.json"
        if self.fs is None and not self.root.is_dir():
            raise DataError(f"catalog {self.root} does not exist")
        if not self._is_file(path):
            raise DataError(
                f"{self._name(path)}: missing; {self.location} is not an arbsim catalog"
            )
        try:
            info = msgspec.json.decode(self._read_bytes(path), type=CatalogInfo)
        except msgspec.DecodeError as e:
            raise DataError(f"{self._name(path)}: {e}") from e
        if info.schema_version not in SUPPORTED_VERSIONS:
            raise DataError(
                f"{self._name(path)}: schema_version {info.schema_version} is not supported "
                f"(this arbsim reads {sorted(SUPPORTED_VERSIONS)})"
            )
        return info

    def instruments(self) -> list[Instrument]:
        """Every instrument in the catalog, sorted by venue then symbol."""
        self.info()
        if self.fs is None:
            paths = sorted(self.root.glob("*/*/instrument.json"))
        else:
            depth = len(self.root.parts) + 3
            paths = [
                Path(p)
                for p in self._remote_files()
                if p.endswith("/instrument.json") and len(Path(p).parts) == depth
            ]
        return [self._load_instrument(path) for path in paths]

    def instrument(self, venue: str, symbol: str) -> Instrument:
        path = self.root / venue / symbol_dir(symbol) / "instrument.json"
        if not self._is_file(path):
            known = ", ".join(i.key for i in self.instruments()) or "none"
            raise DataError(
                f"{self.location}: no instrument {venue}:{symbol} (catalog has: {known})"
            )
        return self._load_instrument(path)

    def _load_instrument(self, path: Path) -> Instrument:
        try:
            return msgspec.json.decode(self._read_bytes(path), type=Instrument)
        except msgspec.DecodeError as e:
            raise DataError(f"{self._name(path)}: {e}") from e

    def files(self, venue: str, symbol: str, kind: Kind) -> list[Path]:
        d = self.root / venue / symbol_dir(symbol) / kind
        if self.fs is None:
            return sorted(d.glob("date=*/*.parquet"))
        depth = len(d.parts) + 2
        return [
            Path(p)
            for p in self._remote_files()
            if p.startswith(f"{d}/date=") and p.endswith(".parquet") and len(Path(p).parts) == depth
        ]

    def time_range(self, venue: str, symbol: str) -> tuple[int, int] | None:
        """First and last ``ts_local`` of a venue's book stream (from Parquet statistics)."""
        lo: int | None = None
        hi: int | None = None
        for path in self.files(venue, symbol, "book"):
            meta = self.parquet(path, "book").metadata
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
                meta = self.parquet(path, kind).metadata
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
        self,
        venue: str,
        symbol: str,
        kind: Kind,
        batch_size: int = 65_536,
        seek: Seek | None = None,
    ) -> Iterator[tuple[Path, pa.RecordBatch]]:
        """Record batches of a stream in file order, each checked against the schema.

        With ``seek`` (see :meth:`seek`) reading starts at its row of its file; earlier
        files are not opened. Batches start at the same rows as without it: files are
        read in batches of ``batch_size`` rows counted from each file's first row."""
        files = self.files(venue, symbol, kind)
        first, row = (0, 0) if seek is None else (seek.file, seek.row)
        for i in range(first, len(files)):
            path = files[i]
            pf = self.parquet(path, kind)
            try:
                if i == first and row:
                    yield from ((path, b) for b in _batches_from(pf, row, batch_size))
                    continue
                for batch in pf.iter_batches(batch_size=batch_size, use_threads=False):
                    yield path, batch
            except (OSError, pa.ArrowException) as e:
                raise DataError(f"{self._name(path)}: corrupt Parquet data ({e})") from e

    def seek(self, venue: str, symbol: str, kind: Kind, before_ns: int, batch_size: int) -> Seek:
        """Where reading a stream may start when only its state at ``before_ns`` matters
        (the warm-up of a backtest window: fast windows).

        Book: the latest message flagged ``FLAG_SNAPSHOT_BEGIN`` received before
        ``before_ns`` (a snapshot message replaces the whole book, so what came before it
        cannot change the book after it); with none, the stream's first row. Trades: the
        first trade received at or after ``before_ns`` (earlier trades change no state).
        The row is moved back to a multiple of ``batch_size`` so that the batches read from
        there are the very batches a read from the file's start would give. Only the footers
        of the files around ``before_ns`` and the ``ts_local`` / ``seq`` / ``flags`` columns
        of the row groups searched are read; files of later dates are not opened."""
        files = self.files(venue, symbol, kind)
        day = f"date={_date_of(before_ns)}"
        # the date directories bound the rows of their files: files of a later date are
        # never needed by the search, files of an earlier date hold no row at or after it
        if kind == "trades":
            found = self._first_trade_at(files, day, before_ns)
            if found is None:  # every trade is earlier: nothing to read
                return Seek(len(files), 0)
        else:
            earlier = [i for i, p in enumerate(files) if p.parent.name <= day]
            found = self._last_snapshot_before(files, earlier, before_ns)
            if found is None:
                return Seek(0, 0)
        file, row = found
        return Seek(file, row - row % batch_size)

    def _first_trade_at(
        self, files: list[Path], day: str, before_ns: int
    ) -> tuple[int, int] | None:
        for i, path in enumerate(files):
            if path.parent.name < day:
                continue
            if path.parent.name > day:
                return i, 0
            pf = self.parquet(path, "trades")
            meta = pf.metadata
            col = meta.schema.names.index("ts_local")
            offset = 0
            for rg in range(meta.num_row_groups):
                n = meta.row_group(rg).num_rows
                span = _span(meta, rg, col)
                if span is not None and span[1] < before_ns:
                    offset += n
                    continue
                tsl = _read_columns(path, pf, rg, ("ts_local",))["ts_local"]
                j = int(np.searchsorted(tsl, before_ns, side="left"))
                if j < n:
                    return i, offset + j
                offset += n
        return None

    def _last_snapshot_before(
        self, files: list[Path], candidates: list[int], before_ns: int
    ) -> tuple[int, int] | None:
        for i in reversed(candidates):
            pf = self.parquet(files[i], "book")
            meta = pf.metadata
            names = meta.schema.names
            tcol, fcol = names.index("ts_local"), names.index("flags")
            starts = np.cumsum(
                [0] + [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
            )
            for rg in reversed(range(meta.num_row_groups)):
                span = _span(meta, rg, tcol)
                if span is not None and span[0] >= before_ns:
                    continue
                flagged = _span(meta, rg, fcol)
                if flagged is not None and flagged[1] == 0:
                    continue  # no flagged row at all
                cols = _read_columns(files[i], pf, rg, ("ts_local", "seq", "flags"))
                hit = np.flatnonzero(
                    (cols["flags"] & FLAG_SNAPSHOT_BEGIN).astype(bool)
                    & (cols["ts_local"] < before_ns)
                )
                if not len(hit):
                    continue
                g, j = _message_start(files[i], pf, rg, int(hit[-1]), cols)
                if (
                    g == 0
                    and j == 0
                    and i > 0
                    and self._ends_at(files[i - 1], int(cols["ts_local"][hit[-1]]))
                ):
                    continue  # it may have begun in the previous part: look further back
                return i, int(starts[g]) + j
        return None

    def _ends_at(self, path: Path, ts_local: int) -> bool:
        """Whether the last row of a book file may have been received at ``ts_local``
        (then the next file's first message may continue its last one)."""
        meta = self.parquet(path, "book").metadata
        if not meta.num_row_groups:
            return False
        span = _span(meta, meta.num_row_groups - 1, meta.schema.names.index("ts_local"))
        return span is None or span[1] >= ts_local


class Seek(NamedTuple):
    """Where a stream's reading starts: the index of its file in
    :meth:`Catalog.files` and a row of that file."""

    file: int
    row: int


_NUMERIC: dict[pa.DataType, np.dtype[np.generic]] = {
    t: np.dtype(d)
    for t, d in (
        (pa.int8(), np.int8),
        (pa.int16(), np.int16),
        (pa.int32(), np.int32),
        (pa.int64(), np.int64),
        (pa.uint8(), np.uint8),
        (pa.uint16(), np.uint16),
        (pa.uint32(), np.uint32),
        (pa.uint64(), np.uint64),
        (pa.float32(), np.float32),
        (pa.float64(), np.float64),
    )
}


def numpy_column(batch: pa.RecordBatch, name: str) -> npt.NDArray[np.generic]:
    """A column as a NumPy array. A numeric column without nulls is read straight from
    its Arrow buffer (``Array.to_numpy`` would load pandas into the process, on the
    first batch of a replay: half a second and tens of megabytes); others convert."""
    arr = batch.column(batch.schema.get_field_index(name))
    dtype = _NUMERIC.get(arr.type)
    if dtype is not None and arr.null_count == 0:
        buf = arr.buffers()[1]
        if buf is not None:
            view = memoryview(buf)
            return np.frombuffer(
                view, dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize
            )
    out: npt.NDArray[np.generic] = arr.to_numpy(zero_copy_only=False)
    return out


def _read_columns(
    path: Path, pf: pq.ParquetFile, rg: int, names: tuple[str, ...]
) -> dict[str, npt.NDArray[Any]]:
    try:
        table = pf.read_row_group(rg, columns=list(names), use_threads=False)
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"{path}: corrupt Parquet data ({e})") from e
    batch = table.combine_chunks().to_batches()
    if not batch:
        return {n: np.empty(0, np.int64) for n in names}
    return {n: numpy_column(batch[0], n) for n in names}


def _message_start(
    path: Path, pf: pq.ParquetFile, rg: int, row: int, cols: dict[str, npt.NDArray[Any]]
) -> tuple[int, int]:
    """The row group and row where the message holding ``row`` of row group ``rg``
    begins (its rows share ``ts_local`` and ``seq``), going back across row groups."""
    tsl, seq = int(cols["ts_local"][row]), int(cols["seq"][row])
    while True:
        same = (cols["ts_local"][: row + 1] == tsl) & (cols["seq"][: row + 1] == seq)
        other = np.flatnonzero(~same)
        if len(other):
            return rg, int(other[-1]) + 1
        if rg == 0:
            return 0, 0
        rg -= 1
        cols = _read_columns(path, pf, rg, ("ts_local", "seq"))
        row = len(cols["ts_local"]) - 1


def _span(meta: pq.FileMetaData, rg: int, col: int) -> tuple[int, int] | None:
    """A row group's minimum and maximum of an integer column from its statistics
    (``None`` when the file has none)."""
    st = meta.row_group(rg).column(col).statistics
    if st is None or not st.has_min_max or st.min is None or st.max is None:
        return None
    return int(st.min), int(st.max)


def _batches_from(pf: pq.ParquetFile, row: int, batch_size: int) -> Iterator[pa.RecordBatch]:
    """The file's rows from ``row`` (a multiple of ``batch_size``) in batches of
    ``batch_size`` rows: the batches ``iter_batches`` gives for the whole file, from that
    row on (it batches across row groups, so the row groups read are re-cut)."""
    meta = pf.metadata
    first = 0
    skip = row
    while first < meta.num_row_groups and skip >= meta.row_group(first).num_rows:
        skip -= meta.row_group(first).num_rows
        first += 1
    if first == meta.num_row_groups:
        return
    pending: list[pa.RecordBatch] = []
    held = 0
    groups = list(range(first, meta.num_row_groups))
    for batch in pf.iter_batches(batch_size=batch_size, row_groups=groups, use_threads=False):
        if skip:
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            batch = batch.slice(skip)
            skip = 0
        pending.append(batch)
        held += batch.num_rows
        while held >= batch_size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, batch_size).combine_chunks().to_batches()[0]
            rest = table.slice(batch_size)
            pending = rest.combine_chunks().to_batches() if rest.num_rows else []
            held -= batch_size
    if held:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def open_parquet(
    path: Path, kind: Kind, source: pa.NativeFile | None = None, name: str | None = None
) -> pq.ParquetFile:
    """Open a catalog file, refusing foreign, corrupt or mis-schema files with a clear error
    (``source``: the file already opened on a remote filesystem, ``name`` its URL)."""
    shown = name or str(path)
    try:
        # row group by row group (``pre_buffer=False``): Arrow's default reads the whole
        # file into memory at the first batch, so a replay's memory would grow with the
        # size of the files it reads
        pf = pq.ParquetFile(path if source is None else source, pre_buffer=False)
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"{shown}: not a readable Parquet file ({e})") from e
    meta = pf.schema_arrow.metadata or {}
    version = meta.get(b"arbsim.schema_version")
    if version is None:
        raise DataError(
            f"{shown}: no arbsim.schema_version in the file metadata; "
            "this is not a file written by arbsim's catalog writer"
        )
    if not version.isdigit() or int(version) not in SUPPORTED_VERSIONS:
        raise DataError(
            f"{shown}: arbsim.schema_version {version.decode(errors='replace')!r} is not "
            f"supported (expected one of {sorted(SUPPORTED_VERSIONS)})"
        )
    file_kind = meta.get(b"arbsim.kind", b"").decode(errors="replace")
    if file_kind != kind:
        raise DataError(f"{shown}: holds {file_kind!r} rows where {kind!r} rows were expected")
    expected = SCHEMAS[kind]
    got = pf.schema_arrow
    for field in expected:
        idx = got.get_field_index(field.name)
        if idx < 0:
            raise DataError(f"{shown}: column {field.name!r} ({field.type}) is missing")
        if got.field(idx).type != field.type:
            raise DataError(
                f"{shown}: column {field.name!r} has type {got.field(idx).type}, "
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
        "root": catalog.location,
        "synthetic": info.synthetic,
        "description": info.description,
        "streams": [],
    }
    instruments = catalog.instruments()
    if not instruments:
        raise DataError(
            f"{catalog.location}: holds no data, only catalog.json (an interrupted write?); "
            "remove it and write the catalog again"
        )
    for inst in instruments:
        rows = {
            kind: sum(
                catalog.parquet(p, kind).metadata.num_rows
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
