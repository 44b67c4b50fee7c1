"""arbsim.core.records: the order / fill / arb columns defined once, and the forms derived
from them (Parquet schemas, journal tables and inserts, the analysis' file columns)."""

from __future__ import annotations

import ast
import inspect
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arbsim import analysis as an
from arbsim.analysis import frames
from arbsim.core.errors import DataError, InsufficientBalance
from arbsim.core.model import (
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from arbsim.core.records import (
    ARBS,
    FILLS,
    ORDERS,
    ArbRecord,
    Column,
    Kind,
    OrderRecord,
    RecordSchema,
    col,
    struct_schema,
    twin,
)
from arbsim.runtime import journal, recorder
from arbsim.runtime.journal import Journal, JournalRecorder, JournalTable, sql_type
from arbsim.runtime.recorder import RunRecorder, arrow_schema, arrow_type

SCHEMAS: list[RecordSchema[Any]] = [ORDERS, FILLS, ARBS]
TABLES: dict[str, JournalTable[Any]] = {
    t.records.name: t for t in (journal.ORDERS_TABLE, journal.FILLS_TABLE, journal.ARBS_TABLE)
}
D = Decimal
T0 = 1_767_571_200_000_000_000
CONFIG = "venues:\n- name: mexc\n- name: gateio\n"
SUMMARY: dict[str, dict[str, object]] = {"arbs": {}, "pnl": {}, "window": {}}


def fill(cid: str, trade_id: str, price: str, qty: str, fee: str, ts: int) -> Fill:
    return Fill(
        venue="mexc",
        symbol="BTC/USDT",
        client_order_id=cid,
        order_id="x-" + cid,
        trade_id=trade_id,
        side=Side.BUY,
        price=D(price),
        qty=D(qty),
        fee=D(fee),
        fee_asset="BTC",
        liquidity="taker",
        ts_exchange=ts - 1,
        ts_local=ts,
    )


def record_run(root: Path) -> Path:
    """A paper-style run through a JournalRecorder: a filled order, a refused market order,
    an order first seen as an update, an arb; both the run directory and the journal."""
    j = Journal(root / "journal.sqlite")
    rec = JournalRecorder(j)
    buy = OrderRequest(
        venue="mexc",
        symbol="BTC/USDT",
        side=Side.BUY,
        qty=D("0.0030"),
        price=D("100.10"),
        client_order_id="c1",
        tag="arb1:buy",
    )
    rec.order_sent(buy, T0)
    o = Order.from_request(buy, T0)
    o.order_id, o.arrival_price, o.ts_accepted = "x-c1", 100.05, T0 + 5
    o.transition(OrderStatus.ACCEPTED, T0 + 5)
    rec.order_acked(o, T0 + 6)
    rec.order_update(o, T0 + 6)
    for f in (
        fill("c1", "t1", "100.10", "0.0010", "0.000001", T0 + 8),
        fill("c1", "t2", "100.05", "0.0020", "0", T0 + 9),
    ):
        o.apply_fill(f)
        rec.fill(f)
        rec.order_update(o, f.ts_local)
    sell = OrderRequest(
        venue="gateio",
        symbol="BTC/USDT",
        side=Side.SELL,
        qty=D("1"),
        order_type=OrderType.MARKET,
        client_order_id="c2",
        tag="arb1:sell",
    )
    rec.order_sent(sell, T0 + 1)
    rec.order_rejected(sell, T0 + 3, InsufficientBalance("no BTC", code="BALANCE_NOT_ENOUGH"))
    seen = Order(
        venue="mexc",
        symbol="ETH/USDT",
        side=Side.SELL,
        qty=D("3"),
        price=D("7.5"),
        order_type=OrderType.LIMIT,
        tif=o.tif,
        client_order_id="c3",
        order_id="x-c3",
        ts_created=T0,
        ts_updated=T0,
    )
    seen.transition(OrderStatus.ACCEPTED, T0 + 10)
    rec.order_update(seen, T0 + 10)
    arb = ArbRecord(
        arb_id=1,
        symbol="BTC/USDT",
        buy_venue="mexc",
        sell_venue="gateio",
        ts_trigger=T0 - 1,
        ts_decision=T0,
        qty_target="0.003",
        orders=["c1", "c2"],
    )
    rec.arb_started(arb)
    arb.buy_filled, arb.outcome, arb.reason = "0.003", "exposed", "residual 0.003"
    rec.arb_finished(arb)
    rec.equity(T0 + 20, 1000.0, 0.0, 0.0, 0.0, {})
    latency = pa.table(
        {
            "ts": pa.array([T0], pa.int64()),
            "kind": ["place"],
            "venue": ["mexc"],
            "latency_ns": pa.array([5], pa.int64()),
        }
    )
    rec.write(root / "run", latency, SUMMARY, CONFIG.encode())
    j.close()
    return root


def table_info(db: Path, table: str) -> list[tuple[str, str, bool]]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute(f"PRAGMA table_info({table})").fetchall()
    finally:
        con.close()
    return [(r[1], r[2], bool(r[3])) for r in rows]


def select(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------- the definition
@pytest.mark.parametrize("records", SCHEMAS, ids=lambda r: r.name)
def test_every_column_is_named_once_and_says_what_it_holds(records: RecordSchema[Any]) -> None:
    assert len(set(records.names)) == len(records.names)
    for c in records.columns:
        assert c.doc.strip() and "\n" not in c.doc, c.name
        arrow_type(c.kind)  # every kind has a Parquet type
    assert set(records.required) <= set(records.names)
    assert records.column(records.time).kind is Kind.TIMESTAMP


def test_every_fill_field_is_a_column_and_every_order_field_is_decided() -> None:
    assert set(Fill.__struct_fields__) <= set(FILLS.names)
    # the order's state the file leaves out (the journal's `detail` keeps all of it)
    not_in_file = {
        "ts_created",
        "quote_qty",
        "reject_reason",
        "quote_order_qty",
        "fills",
    }
    assert set(Order.__struct_fields__) - set(ORDERS.names) == not_in_file


def test_row_values_follow_the_kinds() -> None:
    req = OrderRequest(
        venue="gateio",
        symbol="BTC/USDT",
        side=Side.SELL,
        qty=D("1.50"),
        order_type=OrderType.MARKET,
        client_order_id="c",
    )
    row = ORDERS.row(OrderRecord(order=Order.from_request(req, 7), ts_sent=7))
    assert list(row) == list(ORDERS.names)
    assert row["price"] == "" and row["qty"] == "1.50" and row["side"] == -1
    assert row["order_type"] == "market" and row["status"] == "new"
    assert row["avg_price"] is None and row["arrival_price"] is None
    assert row["ts_sent"] == 7 and row["ts_ack"] == 0
    frow = FILLS.row(fill("c", "t", "100.10", "0.0010", "-0.01", 9))
    assert list(frow) == list(FILLS.names)
    assert (frow["price"], frow["qty"], frow["fee"]) == ("100.10", "0.0010", "-0.01")
    assert (frow["price_f"], frow["qty_f"], frow["side"]) == (100.1, 0.001, 1)


def test_inconsistent_definitions_are_refused() -> None:
    ts = Column[Fill](name="ts_local", kind=Kind.TIMESTAMP, doc="t", get=lambda f: 0, row_time=True)
    price = Column[Fill](name="price", kind=Kind.DECIMAL, doc="p", get=lambda f: f.price)
    with pytest.raises(ValueError, match="named twice: price"):
        RecordSchema("x", "", (ts, price, price))
    with pytest.raises(ValueError, match="exactly one row_time"):
        RecordSchema("x", "", (price,))
    bad_twin = Column[Fill](name="price_f", kind=Kind.STRING, doc="p", get=lambda f: "")
    with pytest.raises(ValueError, match="price_f must be the float twin of price"):
        RecordSchema("x", "", (ts, price, bad_twin))

    class Bare(msgspec.Struct):
        ts: Annotated[int, col(Kind.TIMESTAMP, "t", row_time=True)]
        n: int

    with pytest.raises(TypeError, match=r"Bare.n: annotate it with one col"):
        struct_schema("bare", "", Bare)
    with pytest.raises(ValueError, match="list column"):
        sql_type(Kind.STRINGS)


# ---------------------------------------------------------------- the derived forms agree
def test_parquet_files_have_the_schema_columns(tmp_path: Path) -> None:
    run = record_run(tmp_path) / "run"
    for records in SCHEMAS:
        schema = pq.read_schema(run / records.file)
        assert schema.names == list(records.names)
        assert schema == arrow_schema(records)
        for c in records.columns:
            assert schema.field(c.name).type == arrow_type(c.kind), c.name


def test_journal_tables_hold_the_journal_columns(tmp_path: Path) -> None:
    db = record_run(tmp_path) / "journal.sqlite"
    bookkeeping = {"orders": ("seq", "ts", "event", "detail"), "fills": ("seq",)}
    bookkeeping["arbs"] = ("seq", "event", "record")
    for records in SCHEMAS:
        table = TABLES[records.name]
        info = table_info(db, records.name)
        assert table.bookkeeping == bookkeeping[records.name]
        own = [i for i in info if i[0] not in table.bookkeeping]
        assert own == [(c.name, sql_type(c.kind), not c.nullable) for c in records.journal]
        assert [i[0] for i in info if i[0] in table.bookkeeping] == list(table.bookkeeping)
    # the journal keeps every fill column except the float twins (their exact originals)
    fill_twins = {twin(n) for n in FILLS.names}
    assert [c.name for c in FILLS.journal] == [n for n in FILLS.names if n not in fill_twins]


def test_journal_rows_equal_the_parquet_rows(tmp_path: Path) -> None:
    root = record_run(tmp_path)
    db = root / "journal.sqlite"
    for records, key in ((FILLS, "trade_id"), (ORDERS, "client_order_id"), (ARBS, "arb_id")):
        names = [c.name for c in records.journal]
        journaled = select(db, f"SELECT {', '.join(names)} FROM {records.name} ORDER BY seq")
        assert journaled
        # the last event of each record is its final state, as in the run directory
        last = {r[names.index(key)]: r for r in journaled}
        written = pq.read_table(root / "run" / records.file).to_pylist()
        assert [tuple(w[n] for n in names) for w in written] == list(last.values())


def test_analysis_reads_the_schema_columns(tmp_path: Path) -> None:
    run = an.load_run(record_run(tmp_path) / "run")
    for records, df in ((ORDERS, run.orders), (FILLS, run.fills), (ARBS, run.arbs)):
        cols = frames._FILES[records.file]
        assert cols == frames._file_columns(records)
        assert cols.required == records.required and cols.time == records.time
        decimals = [c.name for c in records.columns if c.kind is Kind.DECIMAL]
        assert list(df.columns) == [*records.names, *map(twin, cols.decimals), "time"]
        # every decimal column has its float twin: from the file, or added on reading
        for n in decimals:
            exact = [float(v) if v else None for v in df[n]]
            floats = [None if v != v else v for v in df[twin(n)]]
            assert floats == exact, n


def test_the_writers_do_not_spell_record_column_names() -> None:
    """recorder.py and journal.py take every order / fill / arb column from the schema
    (equity.parquet's own columns may share a name, e.g. fees)."""
    equity = set(RunRecorder().equity_table().schema.names)
    names = set().union(*(r.names for r in SCHEMAS)) - equity
    for module in (recorder, journal):
        tree = ast.parse(inspect.getsource(module))
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)
            and n.body
            and isinstance(n.body[0], ast.Expr)
        }
        literals = {
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
        }
        assert not literals & names, module.__name__


# ---------------------------------------------------------------- a new column
class WideArb(ArbRecord, kw_only=True):
    route: Annotated[str, col(Kind.STRING, "which route the arb took", journal=True)] = ""


NEW_COLUMN: list[tuple[RecordSchema[Any], str, Any]] = [
    (
        RecordSchema(
            ORDERS.name,
            ORDERS.doc,
            (
                *ORDERS.columns,
                Column[OrderRecord](
                    name="quote_qty",
                    kind=Kind.DECIMAL,
                    doc="quote quantity filled",
                    get=lambda r: r.order.quote_qty,
                    journal=True,
                ),
            ),
        ),
        "quote_qty",
        OrderRecord(
            order=Order(
                venue="mexc",
                symbol="BTC/USDT",
                side=Side.BUY,
                qty=D("1"),
                price=D("2"),
                order_type=OrderType.LIMIT,
                tif=TimeInForce.GTC,
                client_order_id="c",
                quote_qty=D("1.5"),
            ),
            ts_sent=T0,
        ),
    ),
    (
        RecordSchema(
            FILLS.name,
            FILLS.doc,
            (
                *FILLS.columns,
                Column[Fill](
                    name="fee_rate",
                    kind=Kind.DECIMAL,
                    doc="fee over notional",
                    get=lambda f: f.fee / (f.price * f.qty),
                    journal=True,
                ),
            ),
        ),
        "fee_rate",
        fill("c", "t", "100", "2", "0.5", T0),
    ),
    (
        struct_schema(ARBS.name, ARBS.doc, WideArb),
        "route",
        WideArb(
            arb_id=1, symbol="BTC/USDT", buy_venue="a", sell_venue="b", ts_trigger=0, ts_decision=T0
        ),
    ),
]


@pytest.mark.parametrize(("wide", "new", "record"), NEW_COLUMN, ids=[r.name for r in SCHEMAS])
def test_a_new_column_reaches_every_form(
    tmp_path: Path, wide: RecordSchema[Any], new: str, record: Any
) -> None:
    narrow = {r.name: r for r in SCHEMAS}[wide.name]
    kind = wide.column(new).kind
    # Parquet: the writer's schema and rows
    schema = arrow_schema(wide)
    assert schema.names == [*narrow.names, new] and schema.field(new).type == arrow_type(kind)
    path = tmp_path / wide.file
    pq.write_table(pa.Table.from_pylist([wide.row(record)], schema=schema), path)
    # the journal: table, insert, the value read back
    table = JournalTable(wide, TABLES[wide.name].head, TABLES[wide.name].tail)
    con = sqlite3.connect(tmp_path / "j.sqlite")
    con.executescript(table.ddl)
    info = [(r[1], r[2], bool(r[3])) for r in con.execute(f"PRAGMA table_info({wide.name})")]
    assert [i for i in info if i[0] not in table.bookkeeping] == [
        *((c.name, sql_type(c.kind), True) for c in narrow.journal),
        (new, sql_type(kind), True),
    ]
    head = tuple(0 for _ in table.head)
    tail = tuple("" for _ in table.tail)
    con.execute(table.insert, table.values(record, head, tail))
    (stored,) = con.execute(f"SELECT {new} FROM {wide.name}").fetchone()
    con.close()
    assert stored == wide.row(record)[new] == pq.read_table(path).column(new)[0].as_py()
    # analysis: required, twinned when decimal, and refused when a file lacks it
    cols = frames._file_columns(wide)
    assert new in cols.required
    assert (new in cols.decimals) is (kind is Kind.DECIMAL)
    df = frames._read_table(path, cols)
    assert df[new].tolist() == [stored]
    if kind is Kind.DECIMAL:
        assert df[twin(new)].tolist() == [float(stored)]
    old = tmp_path / "old" / wide.file
    old.parent.mkdir()
    pq.write_table(pa.Table.from_pylist([], schema=arrow_schema(narrow)), old)
    with pytest.raises(DataError, match=rf"missing columns: {new}\)"):
        frames._read_table(old, cols)


def test_a_journal_with_the_earlier_column_order_still_takes_records(tmp_path: Path) -> None:
    """New journals put the record's columns in file order; one created before that
    (orders: venue, symbol, client_order_id, ...; arbs: arb_id before event) is appended
    to by column name."""
    path = tmp_path / "journal.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE orders (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL,
            event TEXT NOT NULL, venue TEXT NOT NULL, symbol TEXT NOT NULL,
            client_order_id TEXT NOT NULL, order_id TEXT NOT NULL, status TEXT NOT NULL,
            filled_qty TEXT NOT NULL, detail TEXT NOT NULL);
        CREATE TABLE arbs (seq INTEGER PRIMARY KEY AUTOINCREMENT, arb_id INTEGER NOT NULL,
            event TEXT NOT NULL, outcome TEXT NOT NULL, record TEXT NOT NULL);
        """
    )
    con.close()
    j = Journal(path)
    req = OrderRequest(
        venue="mexc",
        symbol="BTC/USDT",
        side=Side.BUY,
        qty=D("1"),
        price=D("2"),
        client_order_id="c1",
    )
    j.order("sent", Order.from_request(req, 5), 5)
    j.arb("started", ArbRecord(arb_id=3, symbol="s", buy_venue="a", sell_venue="b",
                               ts_trigger=1, ts_decision=2))  # fmt: skip
    j.close()
    assert select(path, "SELECT * FROM orders")[0][:9] == (
        1, 5, "sent", "mexc", "BTC/USDT", "c1", "", "new", "0",
    )  # fmt: skip
    assert select(path, "SELECT seq, arb_id, event, outcome FROM arbs") == [
        (1, 3, "started", "pending")
    ]
