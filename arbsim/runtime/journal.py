"""``journal.sqlite``: the crash-safe record of a paper / live run (DESIGN §8)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import msgspec

from arbsim.core.errors import VenueError
from arbsim.core.model import Fill, Order, OrderRequest
from arbsim.runtime.recorder import ArbRecord, RunRecorder

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    event TEXT NOT NULL,
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    status TEXT NOT NULL,
    filled_qty TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    trade_id TEXT NOT NULL,
    side INTEGER NOT NULL,
    price TEXT NOT NULL,
    qty TEXT NOT NULL,
    fee TEXT NOT NULL,
    fee_asset TEXT NOT NULL,
    liquidity TEXT NOT NULL,
    ts_exchange INTEGER NOT NULL,
    ts_local INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS arbs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    arb_id INTEGER NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    record TEXT NOT NULL
);
"""


class Journal:
    """The crash-safe record of a paper / live run (``journal.sqlite``, DESIGN §8).

    Every order event (sent, acked, rejected, each update) and every fill is appended
    as its own committed transaction the moment it happens (SQLite WAL mode, stdlib
    ``sqlite3``), so a crash of the process keeps every record already written.
    ``synchronous=NORMAL``: commits do not wait for an fsync (an order is never delayed
    by the disk); an OS crash or power loss may lose the last few transactions.
    Exact quantities are decimal strings.
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
        self._db.execute(
            "INSERT INTO orders (ts, event, venue, symbol, client_order_id, order_id, status,"
            " filled_qty, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ts,
                event,
                order.venue,
                order.symbol,
                order.client_order_id,
                order.order_id,
                order.status.value,
                str(order.filled_qty),
                detail,
            ),
        )

    def arb(self, event: str, rec: ArbRecord) -> None:
        self._db.execute(
            "INSERT INTO arbs (arb_id, event, outcome, record) VALUES (?, ?, ?, ?)",
            (rec.arb_id, event, rec.outcome, msgspec.json.encode(rec).decode()),
        )

    def fill(self, f: Fill) -> None:
        self._db.execute(
            "INSERT INTO fills (venue, symbol, client_order_id, order_id, trade_id, side, price,"
            " qty, fee, fee_asset, liquidity, ts_exchange, ts_local)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                f.venue,
                f.symbol,
                f.client_order_id,
                f.order_id,
                f.trade_id,
                int(f.side),
                str(f.price),
                str(f.qty),
                str(f.fee),
                f.fee_asset,
                f.liquidity,
                f.ts_exchange,
                f.ts_local,
            ),
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
