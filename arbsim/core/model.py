"""Domain model: instruments, orders and their lifecycle, fills, balances, market events.

Timestamps are integer nanoseconds since the Unix epoch (UTC): ``ts_exchange`` is the
venue's event time, ``ts_local`` the time this process received (or, in a backtest,
is deemed to receive) the event. Everything that becomes an order or a ledger entry
is a :class:`~decimal.Decimal` on the instrument's tick / lot grid (DESIGN §7).
"""

from __future__ import annotations

import enum
import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import msgspec

from arbsim.core.errors import IllegalTransition

ZERO = Decimal(0)


class Side(enum.IntEnum):
    """Order side / book side / trade aggressor. ``BUY`` is the bid side."""

    BUY = 1
    SELL = -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(enum.StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    POST_ONLY = "post_only"


class OrderStatus(enum.StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)

_ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset({OrderStatus.ACCEPTED, OrderStatus.REJECTED}),
    OrderStatus.ACCEPTED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
}


def parse_symbol(symbol: str) -> tuple[str, str]:
    """Split ``"BTC/USDT"`` into ``("BTC", "USDT")`` with a clear error otherwise."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote or "/" in quote:
        raise ValueError(f"symbol {symbol!r} is not of the form BASE/QUOTE")
    return base, quote


def to_decimal(value: float | int | str | Decimal) -> Decimal:
    """Exact decimal of a float's shortest repr (``0.1`` -> ``Decimal('0.1')``)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """A tradable spot pair on one venue, with its precision and fee rules.

    ``tick`` is the price increment, ``lot`` the quantity increment; ``min_qty`` and
    ``min_notional`` are minimums (not steps). Fees are rates (``0.001`` = 10 bps);
    a negative maker fee is a rebate.
    """

    venue: str
    symbol: str
    base: str
    quote: str
    tick: Decimal
    lot: Decimal
    min_qty: Decimal = ZERO
    min_notional: Decimal = ZERO
    maker_fee: Decimal = ZERO
    taker_fee: Decimal = ZERO
    market: str = "spot"  # "spot" or "perpetual": said wherever the two are compared

    @property
    def key(self) -> str:
        """Venue-qualified id, e.g. ``"mexc:BTC/USDT"``."""
        return f"{self.venue}:{self.symbol}"

    def round_price(self, price: float | Decimal, side: Side | None = None) -> Decimal:
        """Snap ``price`` to the tick grid.

        With ``side`` the rounding is conservative for a taker limit: a buy rounds up
        (willing to pay up to the next tick), a sell rounds down. Without a side the
        nearest tick is taken.
        """
        d = to_decimal(price)
        steps = d / self.tick
        if side is Side.BUY:
            n = steps.to_integral_value(rounding=ROUND_CEILING)
        elif side is Side.SELL:
            n = steps.to_integral_value(rounding=ROUND_FLOOR)
        else:
            n = steps.to_integral_value()
        return (n * self.tick).quantize(self.tick)

    def round_qty(self, qty: float | Decimal) -> Decimal:
        """Snap a quantity DOWN to the lot grid (never more than asked)."""
        d = to_decimal(qty)
        n = (d / self.lot).to_integral_value(rounding=ROUND_FLOOR)
        return (n * self.lot).quantize(self.lot)

    def on_tick(self, price: Decimal) -> bool:
        return price > 0 and (price / self.tick) == (price / self.tick).to_integral_value()

    def on_lot(self, qty: Decimal) -> bool:
        return qty > 0 and (qty / self.lot) == (qty / self.lot).to_integral_value()


def common_lot(a: Decimal, b: Decimal) -> Decimal:
    """The smallest quantity step valid on two lot grids (their least common multiple)."""
    exp = min(a.as_tuple().exponent, b.as_tuple().exponent)
    assert isinstance(exp, int)
    scale = Decimal(1).scaleb(exp)
    ia, ib = int(a / scale), int(b / scale)
    return (Decimal(math.lcm(ia, ib)) * scale).normalize()


def lots_of(size: float, lot: float) -> int:
    """A float size (book processing) as a whole number of ``lot``: where book and trade sizes
    become exact (DESIGN §7).

    The one rounding rule: a size within a billionth (relative) of a lot multiple is that
    multiple (float noise: ``0.1 + 0.2``, ``0.3 / 0.001 = 299.99999999999994``); any other
    size is floored to the lot, never more than displayed. Negative sizes count as 0.
    """
    x = size / lot
    n = round(x)
    if abs(x - n) <= 1e-9 * max(1.0, x):
        return n if n > 0 else 0
    return math.floor(x) if x > 0.0 else 0


def floor_to(qty: Decimal, step: Decimal) -> Decimal:
    """``qty`` rounded down to a multiple of ``step``."""
    return (qty / step).to_integral_value(rounding=ROUND_FLOOR) * step


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What a strategy asks a venue to do. Prices/quantities must be on the grid."""

    venue: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal | None = None
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.IOC
    client_order_id: str = ""
    tag: str = ""
    #: market buys sized in quote currency (Gate requires it, MEXC's quoteOrderQty)
    quote_order_qty: Decimal | None = None


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One execution of an order. ``fee`` is in ``fee_asset``; ``liquidity`` is maker/taker."""

    venue: str
    symbol: str
    client_order_id: str
    order_id: str
    trade_id: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: str
    ts_exchange: int
    ts_local: int


class Order(msgspec.Struct, kw_only=True):
    """An order as the client knows it. Mutable only through :meth:`transition` / fills."""

    venue: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal | None
    order_type: OrderType
    tif: TimeInForce
    client_order_id: str
    order_id: str = ""
    status: OrderStatus = OrderStatus.NEW
    filled_qty: Decimal = ZERO
    quote_qty: Decimal = ZERO
    fee: Decimal = ZERO
    fee_asset: str = ""
    reject_code: str = ""
    reject_reason: str = ""
    tag: str = ""
    quote_order_qty: Decimal | None = None
    ts_created: int = 0
    ts_updated: int = 0
    ts_accepted: int = 0
    arrival_price: float = 0.0
    fills: list[Fill] = msgspec.field(default_factory=list)

    @classmethod
    def from_request(cls, req: OrderRequest, ts: int) -> Order:
        # every field of a request is a field of the order it becomes
        return cls(**msgspec.structs.asdict(req), ts_created=ts, ts_updated=ts)

    def request(self) -> OrderRequest:
        """The request this order was sent as."""
        return OrderRequest(**{f: getattr(self, f) for f in OrderRequest.__struct_fields__})

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def avg_price(self) -> Decimal | None:
        return self.quote_qty / self.filled_qty if self.filled_qty else None

    @property
    def is_open(self) -> bool:
        return not self.status.is_terminal

    def transition(self, status: OrderStatus, ts: int) -> None:
        """Move to ``status``; raise :class:`IllegalTransition` when the lifecycle forbids it."""
        if status not in _ALLOWED[self.status]:
            raise IllegalTransition(
                f"order {self.client_order_id}: {self.status.value} -> {status.value} "
                "is not a legal transition"
            )
        self.status = status
        self.ts_updated = ts

    def apply_fill(self, fill: Fill) -> None:
        """Record a fill and move to PARTIALLY_FILLED / FILLED accordingly."""
        if fill.qty <= 0:
            raise IllegalTransition(f"order {self.client_order_id}: fill qty {fill.qty} <= 0")
        if self.filled_qty + fill.qty > self.qty:
            raise IllegalTransition(
                f"order {self.client_order_id}: fill of {fill.qty} exceeds remaining "
                f"{self.remaining}"
            )
        self.fills.append(fill)
        self.filled_qty += fill.qty
        self.quote_qty += fill.qty * fill.price
        self.fee += fill.fee
        self.fee_asset = fill.fee_asset
        done = self.filled_qty == self.qty
        # an exchange-side order has no local time yet: its clock is the exchange's
        ts = fill.ts_local or fill.ts_exchange
        self.transition(OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED, ts)

    def snapshot(self) -> Order:
        """An independent copy (fills list copied) for handing out to callers."""
        copy = msgspec.structs.replace(self)
        copy.fills = list(self.fills)
        return copy


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    asset: str
    free: Decimal
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


class Balances(msgspec.Struct, frozen=True, kw_only=True):
    """A venue's balances as of ``ts`` (a fresh answer, never a cache)."""

    venue: str
    ts: int
    assets: dict[str, Balance]

    def free(self, asset: str) -> Decimal:
        b = self.assets.get(asset)
        return b.free if b else ZERO

    def total(self, asset: str) -> Decimal:
        b = self.assets.get(asset)
        return b.total if b else ZERO


class TransferStatus(enum.StrEnum):
    """Where a withdrawal is: asked for, on its way, credited, or refused / cancelled."""

    PENDING = "pending"
    """Accepted by the source venue, not yet sent (funds already held there)."""
    SENT = "sent"
    """Left the source venue: debited there, in flight, not yet credited."""
    ARRIVED = "arrived"
    """Credited to the destination account."""
    FAILED = "failed"
    """Refused or cancelled after acceptance; the source venue gave the funds back."""

    @property
    def is_terminal(self) -> bool:
        return self in (TransferStatus.ARRIVED, TransferStatus.FAILED)


class WithdrawalTerms(msgspec.Struct, frozen=True, kw_only=True):
    """What moving ``asset`` off a venue over ``network`` costs and needs."""

    venue: str
    asset: str
    network: str
    fee: Decimal
    """Charged by the source venue on top of the amount sent, in ``asset``."""
    minimum: Decimal
    """The smallest ``amount`` the venue accepts."""
    step: Decimal = Decimal("1e-8")
    """Amounts are whole multiples of this."""
    enabled: bool = True


class WithdrawRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A withdrawal: ``amount`` arrives at ``address``; the source pays ``amount + fee``.

    ``client_id`` is ours: a venue keeps it with the withdrawal (MEXC
    ``withdrawOrderId``, Gate.io ``withdraw_order_id``), so a withdrawal whose answer
    was lost can be found again instead of being sent twice.
    """

    client_id: str
    asset: str
    amount: Decimal
    network: str
    address: str
    memo: str | None = None


class Transfer(msgspec.Struct, kw_only=True):
    """A withdrawal as the source venue reports it (every mode)."""

    client_id: str
    venue: str
    asset: str
    amount: Decimal
    fee: Decimal
    network: str
    address: str
    status: TransferStatus
    ts_requested: int
    ts_updated: int
    venue_id: str | None = None
    tx_id: str | None = None
    memo: str | None = None


class Deposit(msgspec.Struct, frozen=True, kw_only=True):
    """Funds credited (or on their way) to a venue account."""

    venue: str
    asset: str
    amount: Decimal
    network: str
    address: str
    tx_id: str
    credited: bool
    ts: int


class BookLevel(msgspec.Struct, frozen=True, array_like=True):
    price: float
    size: float


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    """A public trade; ``side`` is the aggressor's side."""

    venue: str
    symbol: str
    ts_exchange: int
    ts_local: int
    trade_id: int
    side: Side
    price: float
    size: float
