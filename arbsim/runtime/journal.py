"""``journal.sqlite``: the crash-safe record of a paper / live run (DESIGN §8)."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar, assert_never

import msgspec

from arbsim.core.errors import VenueError
from arbsim.core.model import ZERO, Fill, Order, OrderRequest, OrderStatus
from arbsim.core.records import (
    ARBS,
    FILLS,
    ORDERS,
    TRANSFERS,
    ArbRecord,
    Kind,
    OrderRecord,
    RecordSchema,
    TransferRecord,
)
from arbsim.runtime.recorder import RunRecorder
from arbsim.runtime.risk import RiskState

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
TRANSFERS_TABLE = JournalTable(
    TRANSFERS,
    head=(("ts", "INTEGER NOT NULL"), ("event", "TEXT NOT NULL")),
    tail=(("record", "TEXT NOT NULL"),),
)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS equity (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " ts INTEGER NOT NULL, sample TEXT NOT NULL);\n"
    + ORDERS_TABLE.ddl
    + FILLS_TABLE.ddl
    + ARBS_TABLE.ddl
    + TRANSFERS_TABLE.ddl
)


class JournalState(msgspec.Struct, kw_only=True):
    """Everything a journal holds, read back for ``--resume``.

    ``orders`` are in the order they were first journalled, each with its latest state
    and the fills the journal has for it; ``finished`` holds the ids of the arbitrages
    that reached an outcome (the others were in flight).
    """

    mode: str = ""
    orders: list[OrderRecord] = msgspec.field(default_factory=list)
    fills: list[Fill] = msgspec.field(default_factory=list)
    arbs: list[ArbRecord] = msgspec.field(default_factory=list)
    finished: set[int] = msgspec.field(default_factory=set)
    start: dict[str, dict[str, Decimal]] = msgspec.field(default_factory=dict)
    risk: RiskState = msgspec.field(default_factory=RiskState)
    prefixes: list[str] = msgspec.field(default_factory=list)
    equity: list[dict[str, Any]] = msgspec.field(default_factory=list)
    #: every transfer in its latest journalled state, in the order asked for
    transfers: list[TransferRecord] = msgspec.field(default_factory=list)


class Journal:
    """The crash-safe record of a paper / live run (``journal.sqlite``, DESIGN §8).

    Every order event (sent, acked, rejected, each update) and every fill is appended
    as its own committed transaction the moment it happens (SQLite WAL mode, stdlib
    ``sqlite3``), so a crash of the process keeps every record already written.
    ``synchronous=NORMAL``: commits do not wait for an fsync (an order is never delayed
    by the disk); an OS crash or power loss may lose the last few transactions.
    Exact quantities are decimal strings. The tables' record columns are those
    :mod:`arbsim.core.records` marks ``journal`` (:data:`ORDERS_TABLE`,
    :data:`FILLS_TABLE`, :data:`ARBS_TABLE`, :data:`TRANSFERS_TABLE`); an arb's and a
    transfer's full record is kept as JSON with each event, an order's as its ``detail``.
    """

    def __init__(self, path: Path):
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def equity(self, ts: int, sample: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO equity (ts, sample) VALUES (?, ?)", (ts, msgspec.json.encode(sample))
        )

    def add_prefix(self, prefix: str) -> None:
        """Record a client-order-id prefix this run uses (one per process start)."""
        prefixes = msgspec.json.decode(self.get_meta("prefixes") or "[]", type=list[str])
        self.meta("prefixes", msgspec.json.encode([*prefixes, prefix]).decode())

    def load(self) -> JournalState:
        """Read the whole journal back (for ``--resume``)."""
        db = self._db
        state = JournalState(mode=self.get_meta("mode") or "")
        if (start := self.get_meta("start_balances")) is not None:
            state.start = msgspec.json.decode(start, type=dict[str, dict[str, Decimal]])
        if (risk := self.get_meta("risk")) is not None:
            state.risk = msgspec.json.decode(risk, type=RiskState)
        state.prefixes = msgspec.json.decode(self.get_meta("prefixes") or "[]", type=list[str])
        rows: dict[str, OrderRecord] = {}
        for ts, event, cid, detail in db.execute(
            "SELECT ts, event, client_order_id, detail FROM orders ORDER BY seq"
        ):
            row = rows.get(cid)
            if event == "rejected":
                if row is None:
                    continue
                info = json.loads(detail)
                row.ts_ack = row.ts_ack or ts
                row.reject_code = str(info.get("code", ""))
                if row.order.is_open and not row.order.order_id:
                    row.order.reject_code = row.reject_code
                    row.order.reject_reason = str(info.get("error", ""))
                    if row.order.status is OrderStatus.NEW:
                        row.order.transition(OrderStatus.REJECTED, ts)
                continue
            order = msgspec.json.decode(detail, type=Order)
            if row is None:
                rows[cid] = row = OrderRecord(order=order, ts_sent=ts if event == "sent" else 0)
            else:
                row.order = order
            if event == "acked":
                row.ts_ack = row.ts_ack or ts
        names = ", ".join(c.name for c in FILLS_TABLE.columns)
        for values in db.execute(f"SELECT {names} FROM fills ORDER BY seq"):
            fill = msgspec.convert(
                dict(zip((c.name for c in FILLS_TABLE.columns), values, strict=True)),
                type=Fill,
                strict=False,
            )
            state.fills.append(fill)
        by_order: dict[str, list[Fill]] = {}
        for f in state.fills:
            by_order.setdefault(f.client_order_id, []).append(f)
        for cid, row in rows.items():
            # fills are journalled before the update that counts them: the journal's
            # fills are the order's
            fills = by_order.get(cid, [])
            if len(fills) > len(row.order.fills):
                row.order.fills = list(fills)
                row.order.filled_qty = sum((f.qty for f in fills), ZERO)
                row.order.quote_qty = sum((f.qty * f.price for f in fills), ZERO)
        state.orders = list(rows.values())
        arbs: dict[int, ArbRecord] = {}
        for arb_id, event, record in db.execute(
            "SELECT arb_id, event, record FROM arbs ORDER BY seq"
        ):
            arbs[arb_id] = msgspec.json.decode(record, type=ArbRecord)
            if event == "finished":
                state.finished.add(arb_id)
        state.arbs = list(arbs.values())
        transfers: dict[str, TransferRecord] = {}
        for (record,) in db.execute("SELECT record FROM transfers ORDER BY seq"):
            rec = msgspec.json.decode(record, type=TransferRecord)
            transfers[rec.client_id] = rec
        state.transfers = list(transfers.values())
        state.equity = [
            msgspec.json.decode(sample)
            for (sample,) in db.execute("SELECT sample FROM equity ORDER BY seq")
        ]
        return state

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

    def transfer(self, event: str, rec: TransferRecord, ts: int) -> None:
        record = msgspec.json.encode(rec).decode()
        self._db.execute(
            TRANSFERS_TABLE.insert, TRANSFERS_TABLE.values(rec, (ts, event), (record,))
        )

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

    def transfer_requested(self, rec: TransferRecord) -> None:
        super().transfer_requested(rec)
        self.journal.transfer("requested", rec, rec.ts_requested)

    def transfer_update(self, rec: TransferRecord) -> None:
        super().transfer_update(rec)
        ts = rec.ts_arrived or rec.ts_sent or rec.ts_requested
        self.journal.transfer(rec.status, rec, ts)

    def start_balances(self, start: dict[str, dict[str, Decimal]]) -> None:
        super().start_balances(start)
        self.journal.meta("start_balances", msgspec.json.encode(start).decode())

    def risk_state(self, state: RiskState) -> None:
        self.journal.meta("risk", msgspec.json.encode(state).decode())

    def equity(
        self,
        ts: int,
        value: float,
        net: float,
        gross: float,
        fees: float,
        positions: dict[str, float],
    ) -> None:
        super().equity(ts, value, net, gross, fees, positions)
        self.journal.equity(ts, self._equity[-1])
