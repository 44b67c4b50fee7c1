"""Gate.io Spot v4 WebSocket messages (PROTOCOLS.md B5, B7) with a two-stage decode.

Every frame is JSON ``{time, time_ms, channel, event, error, result}``. :func:`decode` reads
the small :class:`Envelope` first (``channel``, ``event``), then decodes the whole frame with
the decoder registered for that channel in :data:`CHANNEL_RESULTS` (a table, not branches).
Subscription replies (``event`` subscribe/unsubscribe) decode as :class:`SubscriptionReply`.
Unmodelled channels come back as their :class:`Envelope`.

Prices and sizes stay decimal strings as sent; ``*_ms`` times that Gate sends as strings with
decimals (``"1682689046123.0"``) are kept as sent and converted by :func:`ms_to_ns`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Generic, TypeVar

import msgspec

from arbsim.core.errors import MalformedMessage
from exchanges.live.errors import decode_body

__all__ = [
    "CHANNEL_RESULTS",
    "URL",
    "Balance",
    "BookTicker",
    "Envelope",
    "GateOrder",
    "GateTrade",
    "GateWsMessage",
    "Obu",
    "OrderBookSnapshot",
    "OrderBookUpdate",
    "Push",
    "SubscriptionReply",
    "SubscriptionStatus",
    "Trade",
    "WsError",
    "decode",
    "decode_order_book_snapshot",
    "ms_to_ns",
    "obu_stream",
    "parse_obu_stream",
    "ping_request",
    "subscribe_request",
    "unsubscribe_request",
]

URL = "wss://api.gateio.ws/ws/v4/"

Level = tuple[str, str]
Millis = int | float | str
T = TypeVar("T")


_MAX_MS = Decimal(2**63 // 1_000_000)


def ms_to_ns(value: Millis) -> int:
    """A Gate millisecond time (int, float or decimal string) as integer nanoseconds.

    Raises
    ------
    MalformedMessage
        Not a finite number of milliseconds that fits a 64-bit nanosecond time.
    """
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_MS:
        return value * 1_000_000
    try:
        # Decimal, not float: "1605176741123.456" must not pick up binary rounding.
        ms = Decimal(str(value))
        ok = ms.is_finite() and 0 <= ms <= _MAX_MS
    except ArithmeticError:
        ok = False
    if not ok:
        raise MalformedMessage(f"time {str(value)[:40]!r} is not milliseconds", venue="gateio")
    return int(ms * 1_000_000)


class WsError(msgspec.Struct, frozen=True, kw_only=True):
    """``error`` of a reply: code 1 bad body, 2 bad argument, 3 server error, 4 auth failed."""

    code: int
    message: str = ""


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """The first decode stage: what kind of frame this is."""

    channel: str = ""
    event: str = ""
    time: int = 0
    time_ms: int = 0
    error: WsError | None = None


class SubscriptionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """``result`` of a subscription reply."""

    status: str = ""


class SubscriptionReply(msgspec.Struct, frozen=True, kw_only=True):
    """Answer to subscribe/unsubscribe; ``ok`` when no error and status ``success``."""

    channel: str
    event: str
    time: int = 0
    time_ms: int = 0
    id: int | None = None
    error: WsError | None = None
    result: SubscriptionStatus | None = None
    payload: list[str] | None = None

    @property
    def ok(self) -> bool:
        """Whether the subscription took effect."""
        return self.error is None and self.result is not None and self.result.status == "success"


class Push(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """A data frame (``event`` update/all) with its typed ``result``."""

    channel: str
    event: str
    time: int = 0
    time_ms: int = 0
    error: WsError | None = None
    result: T


class OrderBookUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """``spot.order_book_update`` result: diffs ``U..u`` (sizes absolute, "0" deletes)."""

    t: int
    symbol: str = msgspec.field(name="s")
    first_id: int = msgspec.field(name="U")
    last_id: int = msgspec.field(name="u")
    bids: list[Level] = msgspec.field(name="b")
    asks: list[Level] = msgspec.field(name="a")
    e: str = ""
    E: int = 0
    full: bool = False


class Obu(msgspec.Struct, frozen=True, kw_only=True):
    """``spot.obu`` result: a full book (``full``, no ``U``) or an incremental ``U..u``."""

    t: int
    stream: str = msgspec.field(name="s")
    last_id: int = msgspec.field(name="u")
    first_id: int | None = msgspec.field(default=None, name="U")
    bids: list[Level] = msgspec.field(default_factory=list, name="b")
    asks: list[Level] = msgspec.field(default_factory=list, name="a")
    full: bool = False


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    """``spot.trades`` result; ``side`` is the taker side."""

    id: int
    create_time: int
    create_time_ms: Millis
    side: str
    currency_pair: str
    amount: str
    price: str
    range: str = ""


class BookTicker(msgspec.Struct, frozen=True, kw_only=True):
    """``spot.book_ticker`` result: best bid/ask and the book update id ``u``."""

    t: int
    update_id: int = msgspec.field(name="u")
    symbol: str = msgspec.field(name="s")
    bid_price: str = msgspec.field(name="b")
    bid_size: str = msgspec.field(name="B")
    ask_price: str = msgspec.field(name="a")
    ask_size: str = msgspec.field(name="A")


class GateOrder(msgspec.Struct, frozen=True, kw_only=True):
    """A spot order: REST answers (place / get / cancel / list), the WebSocket API's
    answers and the items of a ``spot.orders`` push are the same object (a push adds
    ``event`` put/update/finish; only REST answers carry ``status``). Fields in the order
    of Gate's documentation."""

    id: str
    text: str = ""
    create_time_ms: Millis = 0
    update_time_ms: Millis = 0
    event: str = ""
    status: str = "open"
    currency_pair: str
    type: str = "limit"
    account: str = "spot"
    side: str = "buy"
    amount: str = "0"
    price: str = "0"
    time_in_force: str = "gtc"
    left: str = "0"
    filled_amount: str | None = None
    filled_total: str = "0"
    avg_deal_price: str | None = None
    fee: str = "0"
    fee_currency: str = ""
    point_fee: str = "0"
    gt_fee: str = "0"
    rebated_fee: str = "0"
    finish_as: str = ""

    def filled_base(self) -> Decimal:
        """Base quantity filled (a market buy's ``amount``/``left`` are quote)."""
        if self.filled_amount is not None:
            return Decimal(self.filled_amount)
        if self.type == "market" and self.side == "buy":
            avg = Decimal(self.avg_deal_price or "0")
            return Decimal(self.filled_total) / avg if avg else Decimal(0)
        return Decimal(self.amount) - Decimal(self.left or "0")


class GateTrade(msgspec.Struct, frozen=True, kw_only=True):
    """An own fill: a ``GET /spot/my_trades`` element or an item of a ``spot.usertrades``
    push (REST sends ``id`` as a string, the push as a number)."""

    id: str | int
    order_id: str
    currency_pair: str = ""
    create_time_ms: Millis = 0
    side: str = "buy"
    role: str = "taker"
    amount: str = "0"
    price: str = "0"
    fee: str = "0"
    fee_currency: str = ""
    point_fee: str = "0"
    gt_fee: str = "0"
    text: str = ""


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    """One item of a ``spot.balances`` push."""

    currency: str
    timestamp_ms: Millis = 0
    change: str = ""
    total: str = ""
    available: str = ""
    freeze: str = ""
    change_type: str = ""


class OrderBookSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /spot/order_book?with_id=true`` answer (``current``/``update`` in ms)."""

    id: int
    asks: list[Level]
    bids: list[Level]
    current: int = 0
    update: int = 0


CHANNEL_RESULTS: dict[str, Any] = {
    "spot.order_book_update": OrderBookUpdate,
    "spot.obu": Obu,
    "spot.trades": Trade,
    "spot.book_ticker": BookTicker,
    "spot.orders": list[GateOrder],
    "spot.usertrades": list[GateTrade],
    "spot.balances": list[Balance],
}
"""Channel -> type of ``result`` in its data frames."""

_SUBSCRIPTION_EVENTS = frozenset({"subscribe", "unsubscribe"})
_envelope_decoder = msgspec.json.Decoder(Envelope)
_reply_decoder = msgspec.json.Decoder(SubscriptionReply)
_push_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    channel: msgspec.json.Decoder(Push[result])  # type: ignore[valid-type]  # runtime table
    for channel, result in CHANNEL_RESULTS.items()
}
_snapshot_decoder = msgspec.json.Decoder(OrderBookSnapshot)

GateWsMessage = Push[Any] | SubscriptionReply | Envelope


def decode(frame: bytes | str) -> GateWsMessage:
    """Decode one WebSocket frame.

    Returns
    -------
    GateWsMessage
        :class:`SubscriptionReply` for (un)subscribe answers; ``Push[R]`` with ``R`` from
        :data:`CHANNEL_RESULTS` for data frames of modelled channels; otherwise the
        :class:`Envelope` (e.g. ``spot.pong``, ``spot.tickers``, ``event: upgrade``).

    Raises
    ------
    MalformedMessage
        Not JSON, not an object, or a modelled frame missing required fields or with a
        field of the wrong type (``channel`` is the frame's, when it could be read).
    """
    envelope = decode_body(_envelope_decoder, frame, venue="gateio", channel="")
    channel = envelope.channel
    if envelope.event in _SUBSCRIPTION_EVENTS:
        return decode_body(_reply_decoder, frame, venue="gateio", channel=channel)
    decoder = _push_decoders.get(channel)
    if decoder is None or envelope.event != "update":
        return envelope
    message: Push[Any] = decode_body(decoder, frame, venue="gateio", channel=channel)
    return message


class BookUpdateLevels(msgspec.Struct, frozen=True, kw_only=True):
    """``spot.order_book_update`` result with levels as floats (for book building)."""

    t: int
    symbol: str = msgspec.field(name="s")
    first_id: int = msgspec.field(name="U")
    last_id: int = msgspec.field(name="u")
    bids: list[tuple[float, float]] = msgspec.field(name="b")
    asks: list[tuple[float, float]] = msgspec.field(name="a")
    full: bool = False


class _BookUpdatePush(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    event: str
    result: BookUpdateLevels


# lax mode turns the venue's decimal strings into floats inside the decoder
_book_update_decoder = msgspec.json.Decoder(_BookUpdatePush, strict=False)


def decode_book_update(frame: bytes) -> BookUpdateLevels | None:
    """The book-building fast path: a ``spot.order_book_update`` push in one decoding
    pass with float levels; None for any other frame (decode those with :func:`decode`)."""
    if b"spot.order_book_update" not in frame or b'"update"' not in frame:
        return None
    try:
        push = _book_update_decoder.decode(frame)
    except (msgspec.DecodeError, RecursionError):
        return None
    if push.channel != "spot.order_book_update" or push.event != "update":
        return None
    return push.result


def decode_order_book_snapshot(body: bytes | str) -> OrderBookSnapshot:
    """Decode a REST ``/spot/order_book?with_id=true`` answer (:class:`MalformedMessage`
    when it is not one)."""
    return decode_body(_snapshot_decoder, body, venue="gateio", channel="/spot/order_book")


def obu_stream(pair: str, depth: int = 400) -> str:
    """``spot.obu`` payload item: ``ob.<PAIR>.<50|400>``."""
    if depth not in (50, 400):
        raise ValueError(f"spot.obu depth is 50 or 400, got {depth}")
    return f"ob.{pair}.{depth}"


def parse_obu_stream(stream: str) -> tuple[str, int]:
    """``"ob.BTC_USDT.400"`` -> ``("BTC_USDT", 400)``."""
    prefix, _, rest = stream.partition(".")
    pair, _, depth = rest.rpartition(".")
    if prefix != "ob" or not pair or not depth.isdigit():
        raise ValueError(f"not a spot.obu stream name: {stream!r}")
    return pair, int(depth)


class _Request(msgspec.Struct, frozen=True, omit_defaults=True):
    time: int
    channel: str
    event: str | None = None
    payload: list[str] | None = None
    id: int | None = None
    auth: dict[str, str] | None = None


_encoder = msgspec.json.Encoder()


def subscribe_request(
    channel: str,
    payload: list[str],
    time: int,
    *,
    request_id: int | None = None,
    auth: dict[str, str] | None = None,
) -> bytes:
    """A subscribe frame; ``auth`` is ``{"method": "api_key", "KEY": ..., "SIGN": ...}`` for
    private channels (see :func:`exchanges.gateio.signing.sign_channel_auth`)."""
    return _encoder.encode(_Request(time, channel, "subscribe", payload, request_id, auth))


def unsubscribe_request(
    channel: str,
    payload: list[str],
    time: int,
    *,
    request_id: int | None = None,
    auth: dict[str, str] | None = None,
) -> bytes:
    """An unsubscribe frame (same fields as :func:`subscribe_request`)."""
    return _encoder.encode(_Request(time, channel, "unsubscribe", payload, request_id, auth))


def ping_request(time: int) -> bytes:
    """Application-level ping ``{"time":..,"channel":"spot.ping"}`` (answered by spot.pong)."""
    return _encoder.encode(_Request(time, "spot.ping"))
