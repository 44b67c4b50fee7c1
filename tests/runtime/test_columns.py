"""The column builders give the arrays ``pa.array`` / ``pa.Table.from_pylist`` give, and
the same Parquet bytes, without loading pandas."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arbsim.runtime import columns

CASES: list[tuple[list[Any], pa.DataType]] = [
    ([1, -2, 3, 2**62], pa.int64()),
    ([1, None, 3], pa.int64()),
    ([], pa.int64()),
    ([None, None], pa.int64()),
    ([1, -1, None], pa.int8()),
    ([0.5, float("nan"), None, -1e300], pa.float64()),
    ([1, 2.5], pa.float64()),
    (["a", "", None, "ünïcode", "0.00012345"], pa.string()),
    ([], pa.string()),
    ([None], pa.string()),
    ([["a", "b"], [], None, ["", "c"]], pa.list_(pa.string())),
    ([[None, "x"]], pa.list_(pa.string())),
]


@pytest.mark.parametrize(("values", "dtype"), CASES)
def test_array_equals_pa_array(values: list[Any], dtype: pa.DataType) -> None:
    got: Any = columns.array(values, dtype)
    want: Any = pa.array(values, dtype)
    got.validate(full=True)
    assert got.type == want.type
    assert got.null_count == want.null_count
    assert got.to_pylist() == want.to_pylist() or (
        # NaN != NaN: compare the rest and the NaN positions
        [v for v in got.to_pylist() if v == v] == [v for v in want.to_pylist() if v == v]
    )
    assert got.equals(want) or dtype == pa.float64()


def test_rows_write_the_same_parquet_bytes() -> None:
    fields: list[Any] = [
        pa.field("ts", pa.int64()),
        pa.field("side", pa.int8()),
        pa.field("price", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("tags", pa.list_(pa.string())),
    ]
    schema = pa.schema(fields)
    rows: list[dict[str, Any]] = [
        {"ts": 1, "side": 1, "price": "100.5", "value": 1.25, "tags": ["a"]},
        {"ts": 2, "side": -1, "price": None, "value": None, "tags": None},
        {"ts": 3, "price": "7", "value": 0.0, "tags": [], "extra": "ignored"},
    ]

    def parquet(table: pa.Table) -> bytes:
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()

    got = columns.from_rows(rows, schema)
    want = pa.Table.from_pylist(rows, schema=schema)
    assert got.equals(want)
    assert parquet(got) == parquet(want)
    assert parquet(columns.from_rows([], schema)) == parquet(
        pa.Table.from_pylist([], schema=schema)
    )


def test_numeric_array_from_numpy() -> None:
    data = np.array([3, 1, 2], dtype=np.int32)
    got = columns.numeric_array(data, pa.int64())
    assert got.equals(pa.array([3, 1, 2], pa.int64()))


def test_wrong_values_are_refused() -> None:
    with pytest.raises(TypeError, match="expected a str"):
        columns.array([1], pa.string())
    with pytest.raises(TypeError, match="got a float"):
        columns.array([1.5], pa.int64())
    with pytest.raises(TypeError, match="no column builder"):
        columns.array([True], pa.bool_())


def test_builders_do_not_load_pandas() -> None:
    code = """
import sys
import pyarrow as pa
from arbsim.runtime import columns
schema = pa.schema([pa.field("a", pa.int64()), pa.field("b", pa.string())])
columns.from_rows([{"a": 1, "b": "x"}, {"a": None, "b": None}], schema)
columns.array([["x"], None], pa.list_(pa.string()))
print("pandas" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
