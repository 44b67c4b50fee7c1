"""Arrow columns built from Python values without pyarrow's pandas check.

``pa.array``, ``pa.Table.from_pylist`` and their kin ask whether their input is
"array-like" by importing pandas (about 40 MB of resident memory, and a second of start-up
on a cold cache) even for a list of ints. A backtest writes its outputs with these
builders instead, so a run never loads pandas. They take the types the run outputs use
(signed integers, float64, string, list of string; every value may be None) and give the
same arrays ``pa.array`` gives: one chunk, no validity buffer when nothing is null.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

_NUMPY = {
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.float64(): np.float64,
}


def _buffer(data: np.ndarray[Any, Any]) -> pa.Buffer:
    """An Arrow buffer over a NumPy array's memory (no copy; it keeps the array alive)."""
    return pa.py_buffer(data.data)


def _validity(values: Sequence[Any]) -> tuple[pa.Buffer | None, int]:
    """The validity bitmap of ``values`` (None when none is null) and the null count."""
    valid = np.fromiter((v is not None for v in values), dtype=np.bool_, count=len(values))
    nulls = len(values) - int(valid.sum())
    if nulls == 0:
        return None, 0
    return _buffer(np.packbits(valid, bitorder="little")), nulls


def numeric_array(values: np.ndarray[Any, Any], dtype: pa.DataType) -> pa.Array[Any]:
    """A numeric NumPy column as an Arrow array of ``dtype`` (no nulls)."""
    data = np.ascontiguousarray(values, dtype=_NUMPY[dtype])
    return pa.Array.from_buffers(dtype, len(data), [None, _buffer(data)])


def _strings(values: Sequence[Any], dtype: pa.DataType) -> pa.Array[Any]:
    validity, nulls = _validity(values)
    encoded = []
    for v in values:
        if v is None:
            encoded.append(b"")
        elif isinstance(v, str):
            encoded.append(v.encode())
        else:
            raise TypeError(f"expected a str or None in a {dtype} column, got {type(v).__name__}")
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    data = pa.py_buffer(b"".join(encoded))
    return pa.Array.from_buffers(
        dtype, len(values), [validity, _buffer(offsets), data], null_count=nulls
    )


def _lists(values: Sequence[Any], dtype: pa.ListType[Any]) -> pa.Array[Any]:
    validity, nulls = _validity(values)
    items: list[Any] = []
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    for i, v in enumerate(values):
        if v is not None:
            items.extend(v)
        offsets[i + 1] = len(items)
    child = array(items, dtype.value_type)
    return pa.Array.from_buffers(
        dtype, len(values), [validity, _buffer(offsets)], null_count=nulls, children=[child]
    )


def array(values: Sequence[Any], dtype: pa.DataType) -> pa.Array[Any]:
    """``pa.array(values, dtype)`` for the types above, without importing pandas."""
    if pa.types.is_string(dtype):
        return _strings(values, dtype)
    if pa.types.is_list(dtype):
        return _lists(values, dtype)
    if dtype not in _NUMPY:
        raise TypeError(f"no column builder for {dtype}")
    validity, nulls = _validity(values)
    if nulls:
        zero = 0.0 if pa.types.is_floating(dtype) else 0
        values = [zero if v is None else v for v in values]
    if pa.types.is_integer(dtype) and any(isinstance(v, float) for v in values):
        raise TypeError(f"expected ints in a {dtype} column, got a float")
    data = np.array(values, dtype=_NUMPY[dtype])
    return pa.Array.from_buffers(dtype, len(values), [validity, _buffer(data)], null_count=nulls)


def table(columns: Mapping[str, pa.Array[Any]], schema: pa.Schema | None = None) -> pa.Table:
    """A table of prepared arrays (``pa.table`` on arrays does not check for pandas)."""
    if schema is None:
        return pa.Table.from_arrays(list(columns.values()), names=list(columns))
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def from_rows(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """``pa.Table.from_pylist(rows, schema=schema)`` without importing pandas: a missing
    key is a null, as there."""
    return table({f.name: array([r.get(f.name) for r in rows], f.type) for f in schema}, schema)
