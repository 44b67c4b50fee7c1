"""``journal.sqlite``: the crash-safe record of a paper / live run (DESIGN §8)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Generic, TypeVar, assert_never

import msgspec

from arbsim.core.errors import VenueError
from arbsim.core.model import Fill, Order, OrderRequest
from arbsim.core.records import (
    ARBS,
    FILLS,
    ORDERS,
    ArbRecord,
    Kind,
    OrderRecord,
    RecordSchema,
)
from arbsim.runtime.recorder import RunRecorder

R = TypeVar("R")


def sql_type(kind: Kind) -> str:
    """The SQLite type a column of ``kind`` is stored as (decimals stay exact as text)."""
    match kind:
        case Kind.TIMESTAMP | Kind.INT | Kind.SIDE:
            return "INTEGER"
        case Kind.DECIMAL | Kind.STRING:
            return "TEXT"
        case Kind.FLOAT:
            return "REAL"
        case Kind.STRINGS:
            raise ValueError("a list column cannot be a journal column")
        case _:
            assert_never(kind)


class JournalTable(Generic[R]):
    """A journal table: a record kind's journal columns between bookkeeping columns.

    Every table starts with ``seq`` (the append order); ``head`` and ``tail`` are the
    table's own columns (name, SQL declaration) before and after the record's columns.
    ``ddl`` creates the table, ``insert`` appends a row given :meth:`values`.
    """

    def __init__(
        self,
        records: RecordSchema[R],
        head: tuple[tuple[str, str], ...] = (),
        tail: tuple[tuple[str, str], ...] = (),
    ):
        self.records = records
        self.columns = records.journal
        self.head, self.tail = head, tail
        own = [("seq", "INTEGER PRIMARY KEY AUTOINCREMENT"), *head]
        record = [
            (c.name, sql_type(c.kind) + ("" if c.nullable else " NOT NULL")) for c in self.columns
        ]
        decls = [*own, *record, *tail]
        #: the journal's bookkeeping columns, not the record's
        self.bookkeeping = tuple(name for name, _ in (*own, *tail))
        body = ",\n".join(f"    {name} {decl}" for name, decl in decls)
        self.ddl = f"CREATE TABLE IF NOT EXISTS {records.name} (\n{body}\n);\n"
        names = [name for name, _ in decls[1:]]
        self.insert = (
            f"INSERT INTO {records.name} ({', '.join(names)})"
            f" VALUES ({', '.join('?' * len(names))})"
        )

    def values(
        self, record: R, head: tuple[object, ...] = (), tail: tuple[object, ...] = ()
    ) -> tuple[object, ...]:
        """The INSERT parameters: ``head``, the record's journal columns, ``tail``."""
        return (*head, *(c.value(record) for c in self.columns), *tail)


ORDERS_TABLE = JournalTable(
    ORDERS,
    head=(("ts", "INTEGER NOT NULL"), ("event", "TEXT NOT NULL")),
    tail=(("detail", "TEXT NOT NULL"),),
)
FILLS_TABLE = JournalTable(FILLS)
ARBS_TABLE = JournalTable(
    ARBS, head=(("event", "TEXT NOT NULL"),), tail=(("record", "TEXT NOT NULL"),)
)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
    + ORDERS_TABLE.ddl
    + FILLS_TABLE.ddl
    + ARBS_TABLE.ddl
)


class Journal:
    """The crash-safe record of a paper / live run (``journal.sqlite``, DESIGN §8).

    Every order event (sent, acked, rejected, each update) and every fill is appended
    as its own committed transaction the moment it happens (SQLite WAL mode, stdlib
    ``sqlite3``), so a crash of the process keeps every record already written.
    ``synchronous=NORMAL``: commits do not wait for an fsync (an order is never delayed
    by the disk); an OS crash or power loss may lose the last few transactions.
    Exact quantities are decimal strings. The tables' record columns are those
    :mod:`arbsim.core.records` marks ``journal`` (:data:`ORDERS_TABLE`,
    :data:`FILLS_TABLE`, :data:`ARBS_TABLE`); an arb's full record is kept as JSON, an
    order's as the ``detail`` of each event.
    """

    def __init__(self, path: Path):
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def order(self, event: str, order: Order, ts: int, detail: str = "") -> None:
        if not detail:
            detail = msgspec.json.encode(msgspec.structs.replace(order, fills=[])).decode()
        row = OrderRecord(order=order)
        self._db.execute(ORDERS_TABLE.insert, ORDERS_TABLE.values(row, (ts, event), (detail,)))

    def arb(self, event: str, rec: ArbRecord) -> None:
        record = msgspec.json.encode(rec).decode()
        self._db.execute(ARBS_TABLE.insert, ARBS_TABLE.values(rec, (event,), (record,)))

    def fill(self, f: Fill) -> None:
        self._db.execute(FILLS_TABLE.insert, FILLS_TABLE.values(f))

    def close(self) -> None:
        self._db.close()


class JournalRecorder(RunRecorder):
    """A :class:`RunRecorder` that also appends every order event and fill to a
    :class:`Journal` as it happens."""

    def __init__(self, journal: Journal):
        super().__init__()
        self.journal = journal

    def order_sent(self, req: OrderRequest, ts: int) -> None:
        super().order_sent(req, ts)
        self.journal.order("sent", Order.from_request(req, ts), ts)

    def order_rejected(self, req: OrderRequest, ts: int, err: VenueError) -> None:
        super().order_rejected(req, ts, err)
        order = self.order(req.client_order_id) or Order.from_request(req, ts)
        detail = json.dumps({"code": err.code or type(err).__name__, "error": str(err)})
        self.journal.order("rejected", order, ts, detail)

    def order_acked(self, order: Order, ts: int) -> None:
        super().order_acked(order, ts)
        self.journal.order("acked", order, ts)

    def order_update(self, order: Order, ts: int) -> None:
        super().order_update(order, ts)
        self.journal.order("update", order, ts)

    def arb_started(self, rec: ArbRecord) -> None:
        super().arb_started(rec)
        self.journal.arb("started", rec)

    def arb_finished(self, rec: ArbRecord) -> None:
        super().arb_finished(rec)
        self.journal.arb("finished", rec)

    def fill(self, fill: Fill) -> None:
        super().fill(fill)
        self.journal.fill(fill)
