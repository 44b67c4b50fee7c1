"""Run outputs (DESIGN §8): orders, fills, arbs, latency, equity, the summary, and the
execution algorithms and transfers when there are any.

The columns of orders, fills and arbs are those of :mod:`arbsim.core.records` (exact
quantities as decimal strings, with float twins where analysis needs arithmetic); this
module maps their logical kinds to Arrow types.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, assert_never

import pyarrow as pa
import pyarrow.parquet as pq

from arbsim.core.errors import VenueError
from arbsim.core.model import Fill, Order, OrderRequest, OrderStatus
from arbsim.core.records import (
    ALGOS,
    ARBS,
    FILLS,
    ORDERS,
    TRANSFERS,
    AlgoRecord,
    Kind,
    OrderRecord,
    RecordSchema,
    TransferRecord,
)
from arbsim.core.records import ArbRecord as ArbRecord  # re-exported: it was defined here
from arbsim.runtime import columns
from arbsim.runtime.risk import RiskState


def _fields(fields: list[Any]) -> list[pa.Field[Any]]:
    """Typed field list (the stubs cannot infer a list of mixed field types)."""
    return fields


def arrow_type(kind: Kind) -> pa.DataType:
    """The Parquet (Arrow) type a column of ``kind`` is stored as."""
    match kind:
        case Kind.TIMESTAMP | Kind.INT:
            return pa.int64()
        case Kind.DECIMAL | Kind.STRING:
            return pa.string()
        case Kind.FLOAT:
            return pa.float64()
        case Kind.SIDE:
            return pa.int8()
        case Kind.STRINGS:
            return pa.list_(pa.string())
        case _:
            assert_never(kind)


def arrow_schema(records: RecordSchema[Any]) -> pa.Schema:
    """The Arrow schema of a record kind's Parquet file (every field nullable)."""
    return pa.schema(_fields([pa.field(c.name, arrow_type(c.kind)) for c in records.columns]))


class RunRecorder:
    """Collects the records of one run and writes the run directory."""

    def __init__(self) -> None:
        self._orders: dict[str, OrderRecord] = {}
        self._fills: list[Fill] = []
        self.arbs: list[ArbRecord] = []
        #: execution-algorithm parents (``algos.parquet``, written when there are any)
        self.algos: list[AlgoRecord] = []
        #: transfers between venues (``transfers.parquet``, written when there are any)
        self.transfers: list[TransferRecord] = []
        self._equity: list[dict[str, Any]] = []
        self.rejections: dict[str, int] = {}

    # ------------------------------------------------------------ collecting
    def order_sent(self, req: OrderRequest, ts: int) -> None:
        order = Order.from_request(req, ts)
        self._orders[req.client_order_id] = OrderRecord(order=order, ts_sent=ts)

    def order_rejected(self, req: OrderRequest, ts: int, err: VenueError) -> None:
        row = self._orders.get(req.client_order_id)
        if row is None:
            return
        row.ts_ack = ts
        row.reject_code = err.code or type(err).__name__
        key = f"{req.venue}:{row.reject_code}"
        self.rejections[key] = self.rejections.get(key, 0) + 1
        if row.order.is_open and not row.order.order_id:
            row.order.reject_code = row.reject_code
            row.order.reject_reason = str(err)
            if row.order.status is OrderStatus.NEW:
                # refused (or never placed): the venue has no such order
                row.order.transition(OrderStatus.REJECTED, ts)

    def order_acked(self, order: Order, ts: int) -> None:
        row = self._orders.get(order.client_order_id)
        if row is not None:
            row.ts_ack = row.ts_ack or ts

    def order_update(self, order: Order, ts: int) -> None:
        row = self._orders.get(order.client_order_id)
        if row is None:
            self._orders[order.client_order_id] = OrderRecord(order=order.snapshot(), ts_sent=0)
        else:
            row.order = order.snapshot()
            if order.status.value == "rejected":
                row.ts_ack = row.ts_ack or ts

    def arb_started(self, rec: ArbRecord) -> None:
        """A two-leg attempt was decided (the record is filled in as it proceeds)."""
        self.arbs.append(rec)

    def arb_finished(self, rec: ArbRecord) -> None:
        """The attempt reached its outcome (a journaling recorder persists it now)."""

    def fill(self, fill: Fill) -> None:
        self._fills.append(fill)

    def transfer_requested(self, rec: TransferRecord) -> None:
        """A transfer was asked for (the record is updated as it proceeds)."""
        self.transfers.append(rec)

    def transfer_update(self, rec: TransferRecord) -> None:
        """A transfer was sent, arrived or failed (a journaling recorder persists it)."""

    def start_balances(self, start: dict[str, dict[str, Decimal]]) -> None:
        """The run's start balances per venue (a journaling recorder keeps them)."""

    def risk_state(self, state: RiskState) -> None:
        """The risk gate's state changed (a journaling recorder keeps it)."""

    def restore(
        self,
        orders: list[OrderRecord],
        fills: list[Fill],
        arbs: list[ArbRecord],
        equity: list[dict[str, Any]],
    ) -> None:
        """Take back what an earlier process of the same run recorded (``--resume``)."""
        for row in orders:
            self._orders[row.order.client_order_id] = row
            if row.reject_code:
                key = f"{row.order.venue}:{row.reject_code}"
                self.rejections[key] = self.rejections.get(key, 0) + 1
        self._fills.extend(fills)
        self.arbs.extend(arbs)
        self._equity.extend(equity)

    def equity(
        self,
        ts: int,
        value: float,
        net: float,
        gross: float,
        fees: float,
        positions: dict[str, float],
    ) -> None:
        self._equity.append(
            {
                "ts": ts,
                "equity": value,
                "net_pnl": net,
                "gross_pnl": gross,
                "fees": fees,
                "positions": json.dumps(positions, sort_keys=True),
            }
        )

    @property
    def fills(self) -> list[Fill]:
        return list(self._fills)

    def sent_at(self, client_order_id: str) -> int:
        """When the order was sent (0 when this run did not send it)."""
        row = self._orders.get(client_order_id)
        return row.ts_sent if row is not None else 0

    def order(self, client_order_id: str) -> Order | None:
        row = self._orders.get(client_order_id)
        return row.order if row is not None else None

    def orders(self) -> list[Order]:
        return [r.order for r in self._orders.values()]

    # ------------------------------------------------------------ writing
    def orders_table(self) -> pa.Table:
        rows = [ORDERS.row(r) for r in self._orders.values()]
        return columns.from_rows(rows, schema=arrow_schema(ORDERS))

    def fills_table(self) -> pa.Table:
        rows = [FILLS.row(f) for f in self._fills]
        return columns.from_rows(rows, schema=arrow_schema(FILLS))

    def arbs_table(self) -> pa.Table:
        rows = [ARBS.row(a) for a in self.arbs]
        return columns.from_rows(rows, schema=arrow_schema(ARBS))

    def equity_samples(self) -> list[dict[str, Any]]:
        """The equity samples so far (ts, equity, net_pnl, gross_pnl, fees, positions)."""
        return list(self._equity)

    def equity_table(self) -> pa.Table:
        schema = pa.schema(
            _fields(
                [
                    pa.field("ts", pa.int64()),
                    pa.field("equity", pa.float64()),
                    pa.field("net_pnl", pa.float64()),
                    pa.field("gross_pnl", pa.float64()),
                    pa.field("fees", pa.float64()),
                    pa.field("positions", pa.string()),
                ]
            )
        )
        return columns.from_rows(self._equity, schema=schema)

    def write(
        self, out: Path, latency: pa.Table, summary: dict[str, Any], config_yaml: bytes
    ) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_bytes(config_yaml)
        pq.write_table(self.orders_table(), out / "orders.parquet")
        pq.write_table(self.fills_table(), out / "fills.parquet")
        pq.write_table(self.arbs_table(), out / "arbs.parquet")
        if self.algos:
            rows = [ALGOS.row(a) for a in self.algos]
            table = columns.from_rows(rows, schema=arrow_schema(ALGOS))
            pq.write_table(table, out / "algos.parquet")
        if self.transfers:
            rows = [TRANSFERS.row(t) for t in self.transfers]
            table = columns.from_rows(rows, schema=arrow_schema(TRANSFERS))
            pq.write_table(table, out / "transfers.parquet")
        pq.write_table(latency, out / "latency.parquet")
        pq.write_table(self.equity_table(), out / "equity.parquet")
        (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
