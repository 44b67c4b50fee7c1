"""Run outputs (DESIGN §8): orders, fills, arbs, latency, equity and the summary.

Exact quantities are written as decimal strings (``*_exact`` columns would double
every file; instead prices and quantities are strings and analysis code converts);
float columns are given where analysis needs arithmetic.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from arbsim.core.errors import VenueError
from arbsim.core.model import Fill, Order, OrderRequest, OrderStatus


def _fields(fields: list[Any]) -> list[pa.Field[Any]]:
    """Typed field list (the stubs cannot infer a list of mixed field types)."""
    return fields


class _OrderRow(msgspec.Struct, kw_only=True):
    order: Order
    ts_sent: int
    ts_ack: int = 0
    reject_code: str = ""


class ArbRecord(msgspec.Struct, kw_only=True):
    """One two-leg attempt, from the decision to its outcome."""

    arb_id: int
    symbol: str
    buy_venue: str
    sell_venue: str
    ts_trigger: int
    ts_decision: int
    ts_done: int = 0
    qty_target: str = "0"
    buy_limit: str = "0"
    sell_limit: str = "0"
    decision_buy_price: float = 0.0
    decision_sell_price: float = 0.0
    expected_buy_avg: float = 0.0
    expected_sell_avg: float = 0.0
    expected_edge_bps: float = 0.0
    expected_pnl: float = 0.0
    buy_filled: str = "0"
    sell_filled: str = "0"
    buy_avg: float = 0.0
    sell_avg: float = 0.0
    buy_arrival_price: float = 0.0
    sell_arrival_price: float = 0.0
    realized_edge_bps: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0
    #: exact flows of all its orders, fees included: quote received minus paid, base
    #: bought minus sold (valued at one mark, the arbs add up to the ledger's net)
    quote_flow: str = "0"
    base_flow: str = "0"
    hedge_qty: str = "0"
    unwind_qty: str = "0"
    residual_qty: str = "0"
    outcome: str = "pending"
    reason: str = ""
    orders: list[str] = msgspec.field(default_factory=list)


def _dec(x: Decimal | None) -> str:
    return "" if x is None else str(x)


class RunRecorder:
    """Collects the records of one run and writes the run directory."""

    def __init__(self) -> None:
        self._orders: dict[str, _OrderRow] = {}
        self._fills: list[Fill] = []
        self.arbs: list[ArbRecord] = []
        self._equity: list[dict[str, Any]] = []
        self.rejections: dict[str, int] = {}

    # ------------------------------------------------------------ collecting
    def order_sent(self, req: OrderRequest, ts: int) -> None:
        order = Order.from_request(req, ts)
        self._orders[req.client_order_id] = _OrderRow(order=order, ts_sent=ts)

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
            self._orders[order.client_order_id] = _OrderRow(order=order.snapshot(), ts_sent=0)
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
        rows = []
        for cid, r in self._orders.items():
            o = r.order
            rows.append(
                {
                    "client_order_id": cid,
                    "order_id": o.order_id,
                    "venue": o.venue,
                    "symbol": o.symbol,
                    "side": int(o.side),
                    "order_type": o.order_type.value,
                    "tif": o.tif.value,
                    "price": _dec(o.price),
                    "qty": _dec(o.qty),
                    "filled_qty": _dec(o.filled_qty),
                    "avg_price": float(o.avg_price) if o.avg_price is not None else None,
                    "fee": _dec(o.fee),
                    "fee_asset": o.fee_asset,
                    "status": o.status.value,
                    "reject_code": r.reject_code or o.reject_code,
                    "tag": o.tag,
                    "ts_sent": r.ts_sent,
                    "ts_ack": r.ts_ack,
                    "ts_updated": o.ts_updated,
                    "ts_accepted": o.ts_accepted,
                    "arrival_price": o.arrival_price or None,
                }
            )
        schema = pa.schema(
            _fields(
                [
                    pa.field("client_order_id", pa.string()),
                    pa.field("order_id", pa.string()),
                    pa.field("venue", pa.string()),
                    pa.field("symbol", pa.string()),
                    pa.field("side", pa.int8()),
                    pa.field("order_type", pa.string()),
                    pa.field("tif", pa.string()),
                    pa.field("price", pa.string()),
                    pa.field("qty", pa.string()),
                    pa.field("filled_qty", pa.string()),
                    pa.field("avg_price", pa.float64()),
                    pa.field("fee", pa.string()),
                    pa.field("fee_asset", pa.string()),
                    pa.field("status", pa.string()),
                    pa.field("reject_code", pa.string()),
                    pa.field("tag", pa.string()),
                    pa.field("ts_sent", pa.int64()),
                    pa.field("ts_ack", pa.int64()),
                    pa.field("ts_updated", pa.int64()),
                    pa.field("ts_accepted", pa.int64()),
                    pa.field("arrival_price", pa.float64()),
                ]
            )
        )
        return pa.Table.from_pylist(rows, schema=schema)

    def fills_table(self) -> pa.Table:
        schema = pa.schema(
            _fields(
                [
                    pa.field("venue", pa.string()),
                    pa.field("symbol", pa.string()),
                    pa.field("client_order_id", pa.string()),
                    pa.field("order_id", pa.string()),
                    pa.field("trade_id", pa.string()),
                    pa.field("side", pa.int8()),
                    pa.field("price", pa.string()),
                    pa.field("qty", pa.string()),
                    pa.field("price_f", pa.float64()),
                    pa.field("qty_f", pa.float64()),
                    pa.field("fee", pa.string()),
                    pa.field("fee_asset", pa.string()),
                    pa.field("liquidity", pa.string()),
                    pa.field("ts_exchange", pa.int64()),
                    pa.field("ts_local", pa.int64()),
                ]
            )
        )
        rows = [
            {
                "venue": f.venue,
                "symbol": f.symbol,
                "client_order_id": f.client_order_id,
                "order_id": f.order_id,
                "trade_id": f.trade_id,
                "side": int(f.side),
                "price": str(f.price),
                "qty": str(f.qty),
                "price_f": float(f.price),
                "qty_f": float(f.qty),
                "fee": str(f.fee),
                "fee_asset": f.fee_asset,
                "liquidity": f.liquidity,
                "ts_exchange": f.ts_exchange,
                "ts_local": f.ts_local,
            }
            for f in self._fills
        ]
        return pa.Table.from_pylist(rows, schema=schema)

    def arbs_table(self) -> pa.Table:
        fields = ArbRecord.__struct_fields__
        types: dict[Any, pa.DataType] = {
            int: pa.int64(),
            float: pa.float64(),
            str: pa.string(),
        }
        hints = msgspec.structs.fields(ArbRecord)
        cols: list[pa.Field[Any]] = []
        for f in hints:
            if f.name == "orders":
                cols.append(pa.field(f.name, pa.list_(pa.string())))
            else:
                cols.append(pa.field(f.name, types[f.type]))
        rows = [{k: getattr(a, k) for k in fields} for a in self.arbs]
        return pa.Table.from_pylist(rows, schema=pa.schema(_fields(cols)))

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
        return pa.Table.from_pylist(self._equity, schema=schema)

    def write(
        self, out: Path, latency: pa.Table, summary: dict[str, Any], config_yaml: bytes
    ) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_bytes(config_yaml)
        pq.write_table(self.orders_table(), out / "orders.parquet")
        pq.write_table(self.fills_table(), out / "fills.parquet")
        pq.write_table(self.arbs_table(), out / "arbs.parquet")
        pq.write_table(latency, out / "latency.parquet")
        pq.write_table(self.equity_table(), out / "equity.parquet")
        (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
