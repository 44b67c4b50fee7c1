"""The columns of a run's records (DESIGN §8), defined once.

A run writes its orders, fills and arbs to ``orders.parquet``, ``fills.parquet`` and
``arbs.parquet`` (the recorder), appends them to ``journal.sqlite`` as they happen
(paper / live), and :mod:`arbsim.analysis` reads them back. Each of those derives its
columns from the :class:`RecordSchema` here: :data:`ORDERS`, :data:`FILLS`, :data:`ARBS`.
A schema is an ordered tuple of :class:`Column`: a name, a logical :class:`Kind`, a
one-line description, how the value is taken from the record, and flags saying who needs
the column. Orders and fills are views of the domain's :class:`~arbsim.core.model.Order`
and :class:`~arbsim.core.model.Fill`, so their columns are listed with a getter each;
:class:`ArbRecord` exists only to be recorded, so each of its fields is a column,
annotated with what it holds.

The logical kinds are storage-neutral; the Arrow types live with the Parquet writer
(:func:`arbsim.runtime.recorder.arrow_type`) and the SQLite types with the journal
(:func:`arbsim.runtime.journal.sql_type`), so the core does not import pyarrow (about
0.4 s, which venue adapters and strategies importing the core do not need).

Conventions the kinds encode: timestamps are integer nanoseconds since the epoch (``0``
= did not happen); exact quantities are decimal strings (``""`` = none); a decimal column
``x`` may have a float twin ``x_f`` in the file (:func:`twin`), and analysis adds the
twins a file does not carry.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from operator import attrgetter
from typing import Annotated, Any, Generic, TypeVar

import msgspec

from arbsim.core.model import Fill, Order

__all__ = [
    "ALGOS",
    "ARBS",
    "FILLS",
    "ORDERS",
    "TRANSFERS",
    "AlgoRecord",
    "ArbRecord",
    "Column",
    "ColumnSpec",
    "Kind",
    "OrderRecord",
    "RecordSchema",
    "TransferRecord",
    "col",
    "struct_schema",
    "twin",
]

R = TypeVar("R")
S = TypeVar("S", bound=msgspec.Struct)


class Kind(enum.StrEnum):
    """The logical type of a column (its storage type is the writer's business)."""

    #: integer nanoseconds since the Unix epoch (UTC); 0 when it did not happen
    TIMESTAMP = "timestamp_ns"
    #: an exact :class:`~decimal.Decimal` as its string; ``""`` for none
    DECIMAL = "decimal"
    #: a float for arithmetic (a twin of a decimal, or a measured price); may be null
    FLOAT = "float"
    #: text, including the values of a string enum
    STRING = "string"
    #: :class:`~arbsim.core.model.Side` as an integer: +1 buy, -1 sell
    SIDE = "side"
    #: a plain integer
    INT = "int"
    #: a list of strings
    STRINGS = "strings"


def _decimal(v: Decimal | str | None) -> str:
    return "" if v is None else str(v)


def _float(v: float | Decimal | None) -> float | None:
    return None if v is None else float(v)


_ENCODE: dict[Kind, Callable[[Any], Any]] = {
    Kind.TIMESTAMP: int,
    Kind.DECIMAL: _decimal,
    Kind.FLOAT: _float,
    Kind.STRING: str,
    Kind.SIDE: int,
    Kind.INT: int,
    Kind.STRINGS: list,
}


def twin(name: str) -> str:
    """The name of the float twin of decimal column ``name`` (``price`` -> ``price_f``)."""
    return f"{name}_f"


@dataclass(frozen=True, kw_only=True)
class ColumnSpec:
    """What a column holds, apart from its name and where its value comes from.

    Attributes
    ----------
    kind:
        Its logical type.
    doc:
        One line saying what it holds.
    required:
        Analysis refuses a file without it (``False`` for columns that are informative
        only, or that older runs did not write).
    nullable:
        The value may be missing (null in Parquet, NULL in SQLite).
    journal:
        Also a column of the journal's table for this record kind.
    row_time:
        The record's time: the analysis frame's ``time`` column is made from it.
    """

    kind: Kind
    doc: str
    required: bool = True
    nullable: bool = False
    journal: bool = False
    row_time: bool = False


@dataclass(frozen=True, kw_only=True)
class Column(ColumnSpec, Generic[R]):
    """One column of a record kind: its ``name`` in every file that has it, and ``get``,
    which takes the value from a record (the kind's encoding is applied after it)."""

    name: str
    get: Callable[[R], Any]

    def value(self, record: R) -> Any:
        """The stored value of this column for ``record``."""
        return _ENCODE[self.kind](self.get(record))


@dataclass(frozen=True)
class RecordSchema(Generic[R]):
    """The ordered columns of one record kind (``orders``, ``fills``, ``arbs``).

    ``name`` is the stem of its Parquet file and the name of its journal table.
    """

    name: str
    doc: str
    columns: tuple[Column[R], ...]

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"{self.name}: columns named twice: {', '.join(dup)}")
        times = [c for c in self.columns if c.row_time]
        if len(times) != 1 or times[0].kind is not Kind.TIMESTAMP:
            raise ValueError(f"{self.name}: needs exactly one row_time column, a timestamp")
        kinds = {c.name: c.kind for c in self.columns}
        for c in self.columns:
            if c.kind is Kind.DECIMAL and kinds.get(twin(c.name), Kind.FLOAT) is not Kind.FLOAT:
                raise ValueError(f"{self.name}: {twin(c.name)} must be the float twin of {c.name}")

    @property
    def file(self) -> str:
        """The Parquet file of a run directory holding these records."""
        return f"{self.name}.parquet"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        """Columns a reader may rely on, in file order."""
        return tuple(c.name for c in self.columns if c.required)

    @property
    def journal(self) -> tuple[Column[R], ...]:
        """Columns the journal keeps for each record, in file order."""
        return tuple(c for c in self.columns if c.journal)

    @property
    def time(self) -> str:
        """The column giving each record's time."""
        return next(c.name for c in self.columns if c.row_time)

    @property
    def missing_twins(self) -> tuple[str, ...]:
        """Decimal columns whose float twin the file does not carry (readers add it)."""
        names = set(self.names)
        return tuple(
            c.name for c in self.columns if c.kind is Kind.DECIMAL and twin(c.name) not in names
        )

    def column(self, name: str) -> Column[R]:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def row(self, record: R) -> dict[str, Any]:
        """The stored values of every column for ``record``, by name in file order."""
        return {c.name: c.value(record) for c in self.columns}


def col(
    kind: Kind,
    doc: str,
    *,
    required: bool = True,
    nullable: bool = False,
    journal: bool = False,
    row_time: bool = False,
) -> ColumnSpec:
    """The column a Struct field is, for ``Annotated[type, col(...)]`` (see :data:`ARBS`)."""
    return ColumnSpec(
        kind=kind,
        doc=doc,
        required=required,
        nullable=nullable,
        journal=journal,
        row_time=row_time,
    )


def struct_schema(name: str, doc: str, struct: type[S]) -> RecordSchema[S]:
    """The schema of a Struct whose every field is a column: ``Annotated[type, col(...)]``."""
    columns: list[Column[S]] = []
    for f in msgspec.structs.fields(struct):
        specs = [m for m in getattr(f.type, "__metadata__", ()) if isinstance(m, ColumnSpec)]
        if len(specs) != 1:
            raise TypeError(f"{struct.__name__}.{f.name}: annotate it with one col(...)")
        columns.append(Column(name=f.name, get=attrgetter(f.name), **asdict(specs[0])))
    return RecordSchema(name, doc, tuple(columns))


class OrderRecord(msgspec.Struct, kw_only=True):
    """An order as a run records it: the order and what only the sending side knows."""

    order: Order
    #: when this process sent it; 0 when the order was first seen as an update
    ts_sent: int = 0
    #: when the venue's first answer (acceptance or refusal) came back; 0 without one
    ts_ack: int = 0
    #: the code of a refusal the sender saw (the venue's code or the error's type)
    reject_code: str = ""


ORDERS: RecordSchema[OrderRecord] = RecordSchema(
    "orders",
    "One row per order of the run, in its last known state.",
    (
        Column(
            name="client_order_id",
            kind=Kind.STRING,
            doc="the order's id given by this process, unique in the run",
            get=lambda r: r.order.client_order_id,
            journal=True,
        ),
        Column(
            name="order_id",
            kind=Kind.STRING,
            doc="the venue's id of the order; empty until the venue answered",
            get=lambda r: r.order.order_id,
            required=False,
            journal=True,
        ),
        Column(
            name="venue",
            kind=Kind.STRING,
            doc="the venue's name in the run configuration",
            get=lambda r: r.order.venue,
            journal=True,
        ),
        Column(
            name="symbol",
            kind=Kind.STRING,
            doc="the instrument, BASE/QUOTE",
            get=lambda r: r.order.symbol,
            journal=True,
        ),
        Column(
            name="side",
            kind=Kind.SIDE,
            doc="+1 buy, -1 sell",
            get=lambda r: r.order.side,
        ),
        Column(
            name="order_type",
            kind=Kind.STRING,
            doc="limit or market",
            get=lambda r: r.order.order_type,
            required=False,
        ),
        Column(
            name="tif",
            kind=Kind.STRING,
            doc="time in force: gtc, ioc, fok or post_only",
            get=lambda r: r.order.tif,
            required=False,
        ),
        Column(
            name="price",
            kind=Kind.DECIMAL,
            doc="the limit price; empty for a market order",
            get=lambda r: r.order.price,
        ),
        Column(
            name="qty",
            kind=Kind.DECIMAL,
            doc="the base quantity asked",
            get=lambda r: r.order.qty,
        ),
        Column(
            name="filled_qty",
            kind=Kind.DECIMAL,
            doc="the base quantity filled so far",
            get=lambda r: r.order.filled_qty,
            journal=True,
        ),
        Column(
            name="avg_price",
            kind=Kind.FLOAT,
            doc="the volume-weighted fill price; null without a fill",
            get=lambda r: r.order.avg_price,
            required=False,
            nullable=True,
        ),
        Column(
            name="fee",
            kind=Kind.DECIMAL,
            doc="fees paid on the fills, in fee_asset (negative for a rebate)",
            get=lambda r: r.order.fee,
            required=False,
        ),
        Column(
            name="fee_asset",
            kind=Kind.STRING,
            doc="the asset the fees are paid in; empty without a fill",
            get=lambda r: r.order.fee_asset,
            required=False,
        ),
        Column(
            name="status",
            kind=Kind.STRING,
            doc="the last known lifecycle state (new, accepted, ..., expired)",
            get=lambda r: r.order.status,
            journal=True,
        ),
        Column(
            name="reject_code",
            kind=Kind.STRING,
            doc="why the order was refused (the venue's code); empty if it was not",
            get=lambda r: r.reject_code or r.order.reject_code,
        ),
        Column(
            name="tag",
            kind=Kind.STRING,
            doc="the strategy's label, e.g. arb7:hedge0",
            get=lambda r: r.order.tag,
        ),
        Column(
            name="ts_sent",
            kind=Kind.TIMESTAMP,
            doc="when this process sent it; 0 when first seen as an update",
            get=lambda r: r.ts_sent,
            row_time=True,
        ),
        Column(
            name="ts_ack",
            kind=Kind.TIMESTAMP,
            doc="when the venue's first answer came back",
            get=lambda r: r.ts_ack,
        ),
        Column(
            name="ts_updated",
            kind=Kind.TIMESTAMP,
            doc="the time of the last state change",
            get=lambda r: r.order.ts_updated,
            required=False,
        ),
        Column(
            name="ts_accepted",
            kind=Kind.TIMESTAMP,
            doc="when the venue accepted the order",
            get=lambda r: r.order.ts_accepted,
            required=False,
        ),
        Column(
            name="arrival_price",
            kind=Kind.FLOAT,
            doc="the touch on the order's side when it reached the venue; null if unknown",
            get=lambda r: r.order.arrival_price or None,
            required=False,
            nullable=True,
        ),
    ),
)


FILLS: RecordSchema[Fill] = RecordSchema(
    "fills",
    "One row per execution, in the order this process learned of them.",
    (
        Column(
            name="venue",
            kind=Kind.STRING,
            doc="the venue's name in the run configuration",
            get=lambda f: f.venue,
            journal=True,
        ),
        Column(
            name="symbol",
            kind=Kind.STRING,
            doc="the instrument, BASE/QUOTE",
            get=lambda f: f.symbol,
            journal=True,
        ),
        Column(
            name="client_order_id",
            kind=Kind.STRING,
            doc="the filled order's id given by this process",
            get=lambda f: f.client_order_id,
            journal=True,
        ),
        Column(
            name="order_id",
            kind=Kind.STRING,
            doc="the venue's id of the filled order",
            get=lambda f: f.order_id,
            required=False,
            journal=True,
        ),
        Column(
            name="trade_id",
            kind=Kind.STRING,
            doc="the venue's id of the execution",
            get=lambda f: f.trade_id,
            required=False,
            journal=True,
        ),
        Column(
            name="side",
            kind=Kind.SIDE,
            doc="the order's side: +1 buy, -1 sell",
            get=lambda f: f.side,
            journal=True,
        ),
        Column(
            name="price",
            kind=Kind.DECIMAL,
            doc="the execution price",
            get=lambda f: f.price,
            journal=True,
        ),
        Column(
            name="qty",
            kind=Kind.DECIMAL,
            doc="the base quantity executed",
            get=lambda f: f.qty,
            journal=True,
        ),
        Column(
            name="price_f",
            kind=Kind.FLOAT,
            doc="price as a float",
            get=lambda f: f.price,
        ),
        Column(
            name="qty_f",
            kind=Kind.FLOAT,
            doc="qty as a float",
            get=lambda f: f.qty,
        ),
        Column(
            name="fee",
            kind=Kind.DECIMAL,
            doc="the fee charged, in fee_asset (negative for a rebate)",
            get=lambda f: f.fee,
            journal=True,
        ),
        Column(
            name="fee_asset",
            kind=Kind.STRING,
            doc="the asset the fee is charged in",
            get=lambda f: f.fee_asset,
            journal=True,
        ),
        Column(
            name="liquidity",
            kind=Kind.STRING,
            doc="maker or taker",
            get=lambda f: f.liquidity,
            required=False,
            journal=True,
        ),
        Column(
            name="ts_exchange",
            kind=Kind.TIMESTAMP,
            doc="the venue's time of the execution",
            get=lambda f: f.ts_exchange,
            journal=True,
        ),
        Column(
            name="ts_local",
            kind=Kind.TIMESTAMP,
            doc="when this process learned of it",
            get=lambda f: f.ts_local,
            journal=True,
            row_time=True,
        ),
    ),
)


# Shorthands for the field annotations of ArbRecord.
_INT, _TS, _DEC, _FLOAT, _STR = Kind.INT, Kind.TIMESTAMP, Kind.DECIMAL, Kind.FLOAT, Kind.STRING


class ArbRecord(msgspec.Struct, kw_only=True):
    """One two-leg attempt, from the decision to its outcome (a row of ``arbs.parquet``).

    Every field is a column (:data:`ARBS`); the annotations say what each holds.
    """

    arb_id: Annotated[int, col(_INT, "the attempt's number in the run, from 1", journal=True)]
    symbol: Annotated[str, col(_STR, "the instrument, BASE/QUOTE")]
    buy_venue: Annotated[str, col(_STR, "the venue the arb buys on")]
    sell_venue: Annotated[str, col(_STR, "the venue the arb sells on")]
    ts_trigger: Annotated[
        int, col(_TS, "local time of the market data that showed the edge", required=False)
    ]
    ts_decision: Annotated[int, col(_TS, "when the strategy decided", row_time=True)]
    ts_done: Annotated[int, col(_TS, "when the attempt reached its outcome", required=False)] = 0
    qty_target: Annotated[str, col(_DEC, "the base quantity each leg aims at")] = "0"
    buy_limit: Annotated[str, col(_DEC, "the buy leg's limit price", required=False)] = "0"
    sell_limit: Annotated[str, col(_DEC, "the sell leg's limit price", required=False)] = "0"
    decision_buy_price: Annotated[float, col(_FLOAT, "the buy venue's ask at the decision")] = 0.0
    decision_sell_price: Annotated[float, col(_FLOAT, "the sell venue's bid at the decision")] = 0.0
    expected_buy_avg: Annotated[
        float, col(_FLOAT, "the buy price expected from the book", required=False)
    ] = 0.0
    expected_sell_avg: Annotated[
        float, col(_FLOAT, "the sell price expected from the book", required=False)
    ] = 0.0
    expected_edge_bps: Annotated[float, col(_FLOAT, "the edge expected after fees, bps")] = 0.0
    expected_pnl: Annotated[float, col(_FLOAT, "the PnL expected, in quote currency")] = 0.0
    buy_filled: Annotated[str, col(_DEC, "the base quantity the buy leg filled")] = "0"
    sell_filled: Annotated[str, col(_DEC, "the base quantity the sell leg filled")] = "0"
    buy_avg: Annotated[
        float, col(_FLOAT, "the buy leg's average fill price; 0 without a fill", required=False)
    ] = 0.0
    sell_avg: Annotated[
        float, col(_FLOAT, "the sell leg's average fill price; 0 without a fill", required=False)
    ] = 0.0
    buy_arrival_price: Annotated[
        float, col(_FLOAT, "the buy venue's ask when the buy leg arrived; 0 if unknown")
    ] = 0.0
    sell_arrival_price: Annotated[
        float, col(_FLOAT, "the sell venue's bid when the sell leg arrived; 0 if unknown")
    ] = 0.0
    realized_edge_bps: Annotated[
        float, col(_FLOAT, "realized_pnl over the quote spent buying, bps")
    ] = 0.0
    realized_pnl: Annotated[
        float,
        col(
            _FLOAT,
            "cash flows of its orders less fees (each valued at its fill), residual at the mid",
        ),
    ] = 0.0
    fees: Annotated[
        float, col(_FLOAT, "the fees of all its orders in quote, each at its fill's price")
    ] = 0.0
    quote_flow: Annotated[
        str,
        col(
            _DEC,
            "exact quote received minus paid by its orders, quote fees included",
            required=False,
        ),
    ] = "0"
    base_flow: Annotated[
        str,
        col(_DEC, "exact base bought minus sold by its orders, base fees included", required=False),
    ] = "0"
    hedge_qty: Annotated[
        str, col(_DEC, "base quantity traded to complete a one-sided fill", required=False)
    ] = "0"
    unwind_qty: Annotated[
        str, col(_DEC, "base quantity traded back where it was opened", required=False)
    ] = "0"
    residual_qty: Annotated[
        str, col(_DEC, "one-sided base quantity left (bought minus sold)", required=False)
    ] = "0"
    outcome: Annotated[
        str,
        col(
            _STR,
            "pending, completed, partial, hedged, unwound, exposed, unresolved, ...",
            journal=True,
        ),
    ] = "pending"
    reason: Annotated[str, col(_STR, "why it ended so; empty when completed")] = ""
    orders: Annotated[
        list[str], col(Kind.STRINGS, "its client order ids: buy, sell, then hedges, unwinds")
    ] = msgspec.field(default_factory=list)


ARBS: RecordSchema[ArbRecord] = struct_schema(
    "arbs", "One row per two-leg attempt, in the order they were decided.", ArbRecord
)


class AlgoRecord(msgspec.Struct, kw_only=True):
    """One execution-algorithm order (TWAP, VWAP, iceberg), the parent of its child
    orders (a row of ``algos.parquet``). Slippage is a cost in bps: positive when the
    fills were worse for the order's side than the benchmark."""

    algo_id: Annotated[int, col(_INT, "the parent order's number in the run, from 1")]
    kind: Annotated[str, col(_STR, "twap, vwap or iceberg")]
    venue: Annotated[str, col(_STR, "the venue it trades on")]
    symbol: Annotated[str, col(_STR, "the instrument, BASE/QUOTE")]
    side: Annotated[int, col(Kind.SIDE, "+1 buy, -1 sell")]
    qty: Annotated[str, col(_DEC, "the base quantity to execute")]
    ts_start: Annotated[int, col(_TS, "when it started", row_time=True)]
    ts_done: Annotated[int, col(_TS, "when it ended", required=False)] = 0
    filled: Annotated[str, col(_DEC, "the base quantity its children filled")] = "0"
    avg_price: Annotated[float, col(_FLOAT, "the average fill price (0 without fills)")] = 0.0
    fees_quote: Annotated[float, col(_FLOAT, "its children's fees valued in quote")] = 0.0
    arrival_price: Annotated[float, col(_FLOAT, "the mid when it started")] = 0.0
    interval_vwap: Annotated[
        float,
        col(_FLOAT, "the market's VWAP on the venue while it ran (0 without trades)"),
    ] = 0.0
    market_qty: Annotated[float, col(_FLOAT, "the market volume traded while it ran")] = 0.0
    slippage_arrival_bps: Annotated[
        float, col(_FLOAT, "avg_price against arrival_price, as a cost in bps")
    ] = 0.0
    slippage_vwap_bps: Annotated[
        float, col(_FLOAT, "avg_price against interval_vwap, as a cost in bps")
    ] = 0.0
    children: Annotated[
        list[str], col(Kind.STRINGS, "its child orders' client order ids, in order")
    ] = msgspec.field(default_factory=list)
    outcome: Annotated[str, col(_STR, "done, partial (time ran out) or failed")] = "pending"
    reason: Annotated[str, col(_STR, "why it ended short; empty when done")] = ""


ALGOS: RecordSchema[AlgoRecord] = struct_schema(
    "algos", "One row per execution-algorithm parent order, in the order they started.", AlgoRecord
)


class TransferRecord(msgspec.Struct, kw_only=True):
    """One withdrawal between two venues of the run, from the request to its arrival
    (a row of ``transfers.parquet``). The source pays ``amount + fee`` when it is sent;
    the destination is credited ``amount`` when it arrives; in between it is in flight."""

    client_id: Annotated[str, col(_STR, "our id of the withdrawal", journal=True)]
    venue: Annotated[str, col(_STR, "the source venue (pays amount + fee)")]
    destination: Annotated[str, col(_STR, "the venue credited with amount")]
    asset: Annotated[str, col(_STR, "the asset moved")]
    network: Annotated[str, col(_STR, "the network it travels on")]
    amount: Annotated[str, col(_DEC, "the amount credited at the destination")]
    fee: Annotated[str, col(_DEC, "the withdrawal fee the source charged, in the asset")] = "0"
    fee_quote: Annotated[
        float, col(_FLOAT, "the fee valued in quote at the mark when it was sent")
    ] = 0.0
    ts_requested: Annotated[int, col(_TS, "when it was asked for", row_time=True)] = 0
    ts_sent: Annotated[int, col(_TS, "when the source debited it (0: not sent)")] = 0
    ts_arrived: Annotated[int, col(_TS, "when the destination credited it (0: not yet)")] = 0
    delay_s: Annotated[float, col(_FLOAT, "seconds in flight (arrived minus sent; 0 if not)")] = 0.0
    status: Annotated[
        str, col(_STR, "pending, sent (in flight), arrived or failed", journal=True)
    ] = "pending"
    reason: Annotated[str, col(_STR, "why it failed; what it is for otherwise")] = ""
    address: Annotated[str, col(_STR, "the destination's deposit address", required=False)] = ""
    tx_id: Annotated[str, col(_STR, "the transaction id the venues report", required=False)] = ""


TRANSFERS: RecordSchema[TransferRecord] = struct_schema(
    "transfers",
    "One row per withdrawal between venues, in the order they were asked for.",
    TransferRecord,
)
