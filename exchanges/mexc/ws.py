"""MEXC WebSocket JSON control frames and topic names (PROTOCOLS.md A5, A7).

Data frames are binary protobuf (:mod:`exchanges.mexc.push`); everything else is JSON text:
subscribe/unsubscribe requests, ``PING``, and replies ``{"id":0,"code":0,"msg":...}``.

MEXC answers ``code 0`` even when it refuses a topic (``msg`` is then
``Not Subscribed successfully! [topic]. Reason： Blocked!``), so a subscription is confirmed
only when ``msg`` names the topic itself: :func:`subscription_result` compares them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

import msgspec

from exchanges.live.errors import decode_body

__all__ = [
    "MARKET_URL",
    "PRIVATE_URL",
    "TOPICS",
    "ControlReply",
    "SubscriptionResult",
    "TopicKind",
    "ack_frame",
    "blocked_frame",
    "decode_control",
    "is_invalid_listen_key",
    "is_pong",
    "ping_frame",
    "pong_frame",
    "subscribe_frame",
    "subscription_result",
    "topic",
    "unsubscribe_frame",
]

MARKET_URL = "wss://wbs-api.mexc.com/ws"
PRIVATE_URL = "wss://wbs-api.mexc.com/ws?listenKey={listen_key}"
MAX_SUBSCRIPTIONS = 30


class TopicKind(StrEnum):
    """Streams this layer decodes."""

    AGGRE_DEPTH = "aggre_depth"
    AGGRE_DEALS = "aggre_deals"
    AGGRE_BOOK_TICKER = "aggre_book_ticker"
    LIMIT_DEPTH = "limit_depth"
    PRIVATE_ORDERS = "private_orders"
    PRIVATE_DEALS = "private_deals"
    PRIVATE_ACCOUNT = "private_account"


TOPICS: dict[TopicKind, str] = {
    TopicKind.AGGRE_DEPTH: "spot@public.aggre.depth.v3.api.pb@{interval}@{symbol}",
    TopicKind.AGGRE_DEALS: "spot@public.aggre.deals.v3.api.pb@{interval}@{symbol}",
    TopicKind.AGGRE_BOOK_TICKER: "spot@public.aggre.bookTicker.v3.api.pb@{interval}@{symbol}",
    TopicKind.LIMIT_DEPTH: "spot@public.limit.depth.v3.api.pb@{symbol}@{levels}",
    TopicKind.PRIVATE_ORDERS: "spot@private.orders.v3.api.pb",
    TopicKind.PRIVATE_DEALS: "spot@private.deals.v3.api.pb",
    TopicKind.PRIVATE_ACCOUNT: "spot@private.account.v3.api.pb",
}
"""Topic templates; ``interval`` is ``100ms`` or ``10ms``, ``levels`` 5, 10 or 20."""

_INTERVALS = frozenset({"100ms", "10ms"})
_LEVELS = frozenset({5, 10, 20})


def topic(kind: TopicKind, symbol: str = "", *, interval: str = "100ms", levels: int = 20) -> str:
    """Build a topic name (symbols are upper-cased: MEXC refuses lowercase ones)."""
    if interval not in _INTERVALS:
        raise ValueError(f"interval must be one of {sorted(_INTERVALS)}, got {interval!r}")
    if levels not in _LEVELS:
        raise ValueError(f"levels must be one of {sorted(_LEVELS)}, got {levels!r}")
    template = TOPICS[kind]
    if "{symbol}" in template and not symbol:
        raise ValueError(f"{kind} needs a symbol")
    return template.format(symbol=symbol.upper(), interval=interval, levels=levels)


class _Request(msgspec.Struct, frozen=True, omit_defaults=True):
    method: str
    params: list[str] | None = None
    id: int | None = None


class ControlReply(msgspec.Struct, frozen=True, kw_only=True):
    """A JSON reply: subscription ack/refusal or PONG."""

    id: int = 0
    code: int = 0
    msg: str = ""


_encoder = msgspec.json.Encoder()
_reply_decoder = msgspec.json.Decoder(ControlReply)


def subscribe_frame(topics: list[str], request_id: int | None = None) -> bytes:
    """``{"method":"SUBSCRIPTION","params":[...]}`` (at most 30 topics per connection)."""
    if not topics or len(topics) > MAX_SUBSCRIPTIONS:
        raise ValueError(f"1..{MAX_SUBSCRIPTIONS} topics per connection, got {len(topics)}")
    return _encoder.encode(_Request("SUBSCRIPTION", list(topics), request_id))


def unsubscribe_frame(topics: list[str], request_id: int | None = None) -> bytes:
    """``{"method":"UNSUBSCRIPTION","params":[...]}``."""
    return _encoder.encode(_Request("UNSUBSCRIPTION", list(topics), request_id))


def ping_frame() -> bytes:
    """``{"method":"PING"}``."""
    return _encoder.encode(_Request("PING"))


def decode_control(frame: str | bytes) -> ControlReply:
    """Decode a JSON reply frame.

    Raises
    ------
    MalformedMessage
        Not a JSON object of that shape (``channel`` ``"control"``).
    """
    return decode_body(_reply_decoder, frame, venue="mexc", channel=CONTROL_CHANNEL)


CONTROL_CHANNEL = "control"
"""What :class:`~arbsim.core.errors.MalformedMessage` names as the channel of a text frame."""


def is_pong(reply: ControlReply) -> bool:
    """The answer to ``PING``."""
    return reply.msg == "PONG"


SubscriptionResult = Literal["ack", "refused", "unrelated"]


def subscription_result(reply: ControlReply, topic_name: str) -> SubscriptionResult:
    """Whether ``reply`` confirms, refuses or does not concern ``topic_name``.

    Confirmed only when ``msg`` is the topic itself (or a comma-separated list naming it, as
    for multi-topic requests): a refusal also has ``code 0``.
    """
    if reply.code == 0 and topic_name in reply.msg.split(","):
        return "ack"
    if topic_name in reply.msg:
        return "refused"
    return "unrelated"


def is_invalid_listen_key(frame: str | bytes) -> bool:
    """The private stream's text answer to a bad listenKey (an authentication error)."""
    text = frame.decode(errors="replace") if isinstance(frame, bytes) else frame
    return "Invalid listen key" in text


# Frames a simulator sends -------------------------------------------------------------------


def ack_frame(topic_name: str) -> bytes:
    """The venue's acknowledgement of a subscription."""
    return _encoder.encode(ControlReply(msg=topic_name))


def blocked_frame(topic_name: str) -> bytes:
    """The venue's refusal of a topic (note: code 0 and a full-width colon, as MEXC sends)."""
    return _encoder.encode(
        ControlReply(msg=f"Not Subscribed successfully! [{topic_name}]. Reason： Blocked!")
    )


def pong_frame() -> bytes:
    """The venue's answer to ``PING``."""
    return _encoder.encode(ControlReply(msg="PONG"))
