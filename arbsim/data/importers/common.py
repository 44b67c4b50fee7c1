"""What every importer shares: the row buffer, tick/lot inference from decimals, the
append rules of a catalog stream (a new range must start after the data there) and the
clean-up that leaves nothing half-written behind when an import fails."""

from __future__ import annotations

import datetime as dt
import shutil
from array import array
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from arbsim.core.errors import DataError
from arbsim.core.model import Instrument
from arbsim.data.catalog import KINDS, Catalog, CatalogInfo, PartitionWriter, symbol_dir

__all__ = [
    "Columns",
    "Existing",
    "check_new_range",
    "check_same_instrument",
    "existing_stream",
    "file_size",
    "grid_dp",
    "iso",
    "rollback_on_failure",
    "stream_range",
]

_MAX_DP = 12


def grid_dp(values: npt.NDArray[np.float64], d: int) -> int:
    """Smallest ``n >= d`` with every value a multiple of ``10**-n`` (up to float noise)."""
    while d < _MAX_DP:
        y = values * 10.0**d
        if bool(np.all(np.abs(y - np.rint(y)) <= 1e-6 + np.abs(y) * 1e-14)):
            return d
        d += 1
    return d


def iso(ns: int) -> str:
    """``ns`` since the epoch as ISO-8601 UTC with milliseconds."""
    t = dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.UTC)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{ns % 1_000_000_000 // 1_000_000:03d}Z"


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def stream_range(catalog: Catalog, venue: str, symbol: str) -> tuple[int, int] | None:
    """First and last ``ts_local`` over a stream's book and trade rows."""
    spans = catalog.ranges(venue, symbol)
    return (spans[0][0], spans[-1][1]) if spans else None


@dataclass(frozen=True, slots=True)
class Existing:
    """What a catalog already holds for the stream an import writes."""

    info: CatalogInfo | None
    """The catalog's metadata; None when the catalog does not exist yet."""
    instrument: Instrument | None
    """The stream's instrument when the catalog has rows of it (the import appends)."""
    range: tuple[int, int] | None
    """First and last ``ts_local`` of those rows."""


def existing_stream(catalog: Catalog, venue: str, symbol: str) -> Existing:
    """Read what ``catalog`` holds of ``venue``/``symbol``; a synthetic catalog is refused."""
    if not (catalog.root / "catalog.json").exists():
        return Existing(None, None, None)
    info = catalog.info()
    if info.synthetic:
        raise DataError(f"{catalog.root}: is a synthetic catalog; real recordings go in their own")
    if not any(catalog.files(venue, symbol, k) for k in KINDS):
        return Existing(info, None, None)
    return Existing(info, catalog.instrument(venue, symbol), stream_range(catalog, venue, symbol))


def check_same_instrument(
    catalog: Catalog,
    prior: Instrument,
    tick: Decimal | None,
    lot: Decimal | None,
    maker_fee: Decimal | None,
    taker_fee: Decimal | None,
) -> None:
    """An import appended to a stream keeps its instrument: a given value that differs
    is refused."""
    for what, given, have in (
        ("tick", tick, prior.tick),
        ("lot", lot, prior.lot),
        ("maker fee", maker_fee, prior.maker_fee),
        ("taker fee", taker_fee, prior.taker_fee),
    ):
        if given is not None and given != have:
            raise DataError(
                f"{catalog.root}: {prior.venue} {prior.symbol} has {what} {have}; an import "
                f"appended to it cannot change it to {given}"
            )


def check_new_range(
    catalog: Catalog, venue: str, symbol: str, held: tuple[int, int] | None, lo: int, hi: int
) -> None:
    """Refuse new data ``lo..hi`` (``ts_local``) that overlaps or precedes ``held``."""
    if held is None:
        return
    old = f"{iso(held[0])} -> {iso(held[1])}"
    new = f"{iso(lo)} -> {iso(hi)}"
    if lo <= held[1] and hi >= held[0]:
        raise DataError(
            f"{catalog.root}: {venue} {symbol}: the new data ({new}) overlaps the data "
            f"already in the catalog ({old}); nothing was written"
        )
    if hi < held[0]:
        raise DataError(
            f"{catalog.root}: {venue} {symbol}: the new data ({new}) comes before the "
            f"data already in the catalog ({old}); import the days in order (or into "
            "a new catalog); nothing was written"
        )


@contextmanager
def rollback_on_failure(catalog: Catalog, streams: list[tuple[str, str]]) -> Iterator[None]:
    """Undo what an import wrote when it fails (or is interrupted) part-way.

    The Parquet parts it created are removed, and so are the stream directories and the
    ``catalog.json`` it created; a re-run then finds the catalog as it was (its overlap
    check would otherwise refuse the half-written range).
    """
    catalog_json = catalog.root / "catalog.json"
    had_root = catalog.root.exists()
    had_info = catalog_json.read_bytes() if catalog_json.exists() else None
    stream_dirs = [catalog.root / v / symbol_dir(s) for v, s in streams]
    had_dirs = {d for d in stream_dirs if d.exists()}
    before = {p for d in had_dirs for p in d.glob("*/date=*/*.parquet")}
    try:
        yield
    except BaseException:
        for d in stream_dirs:
            if d not in had_dirs:
                shutil.rmtree(d, ignore_errors=True)
                continue
            for p in d.glob("*/date=*/*.parquet"):
                if p not in before:
                    p.unlink(missing_ok=True)
        if had_info is None:
            catalog_json.unlink(missing_ok=True)
        else:
            catalog_json.write_bytes(had_info)
        if not had_root:
            shutil.rmtree(catalog.root, ignore_errors=True)
        raise


_DTYPES = {
    "tsx": np.int64,
    "tsl": np.int64,
    "key": np.int64,
    "side": np.int8,
    "price": np.float64,
    "size": np.float64,
    "flags": np.uint8,
}


class Columns:
    """Row buffer of one catalog stream, flushed to its writer in chunks."""

    def __init__(self, writer: PartitionWriter, book: bool):
        self.writer = writer
        self.book = book
        self._reset()

    def _reset(self) -> None:
        self.tsx = array("q")
        self.tsl = array("q")
        self.key = array("q")  # seq (book) or trade_id (trades)
        self.side = array("b")
        self.price = array("d")
        self.size = array("d")
        self.flags = array("B")

    def __len__(self) -> int:
        return len(self.tsl)

    def extend(self, rows: Mapping[str, npt.NDArray[Any]]) -> None:
        """Append rows given as arrays named like the buffer's fields (``flags`` for book
        streams only)."""
        for name, dtype in _DTYPES.items():
            if name in rows:
                getattr(self, name).frombytes(np.ascontiguousarray(rows[name], dtype).tobytes())

    def flush(self) -> None:
        if not len(self.tsl):
            return
        cols = {
            "ts_exchange": np.frombuffer(self.tsx, np.int64),
            "ts_local": np.frombuffer(self.tsl, np.int64),
            "side": np.frombuffer(self.side, np.int8),
            "price": np.frombuffer(self.price, np.float64),
            "size": np.frombuffer(self.size, np.float64),
        }
        if self.book:
            cols["seq"] = np.frombuffer(self.key, np.int64)
            cols["flags"] = np.frombuffer(self.flags, np.uint8)
        else:
            cols["trade_id"] = np.frombuffer(self.key, np.int64)
        self.writer.write(cols)
        self._reset()
