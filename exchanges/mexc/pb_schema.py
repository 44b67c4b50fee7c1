"""The MEXC protobuf schema as data (PROTOCOLS.md A6), shared by both codecs.

One table drives the hand-written wire codec (:mod:`exchanges.mexc.pb_wire`) and the
descriptor-built ``protobuf`` classes (:mod:`exchanges.mexc.pb_upb`), so the two cannot
drift apart; the tests cross-check them byte for byte.
"""

from __future__ import annotations

from enum import Enum

import msgspec

from exchanges.mexc.messages import (
    AggreBookTicker,
    AggreDeal,
    AggreDeals,
    AggreDepth,
    LimitDepth,
    PrivateAccount,
    PrivateDeal,
    PrivateOrder,
    PushFrame,
)

__all__ = [
    "BODIES",
    "BODY_BY_CLASS",
    "BODY_BY_NUMBER",
    "PACKAGE",
    "UNMODELLED_BODIES",
    "WRAPPER",
    "Kind",
    "PbField",
    "PbMessage",
]

PACKAGE = "arbsim.mexc"


class Kind(Enum):
    """Wire types as used by the schema (``STRINT``: a string on the wire, int in Python)."""

    STRING = "string"
    STRINT = "strint"
    INT32 = "int32"
    INT64 = "int64"
    BOOL = "bool"
    MESSAGE = "message"


class PbField(msgspec.Struct, frozen=True):
    """One protobuf field and the Python attribute it maps to."""

    number: int
    name: str
    attr: str
    kind: Kind
    repeated: bool = False
    optional: bool = False
    message: PbMessage | None = None


class PbMessage(msgspec.Struct, frozen=True):
    """One protobuf message.

    ``build`` is the Python type made from it: a Struct class (keyword arguments by ``attr``)
    or ``tuple`` for the two-field depth items, which become ``(price, quantity)``.
    """

    name: str
    fields: tuple[PbField, ...]
    build: type

    @property
    def is_pair(self) -> bool:
        """Items decoded as a plain ``(price, quantity)`` tuple."""
        return self.build is tuple


S, SI, I32, I64, B, M = Kind.STRING, Kind.STRINT, Kind.INT32, Kind.INT64, Kind.BOOL, Kind.MESSAGE


AGGRE_DEPTH_ITEM = PbMessage(
    "PublicAggreDepthV3ApiItem",
    (PbField(1, "price", "0", S), PbField(2, "quantity", "1", S)),
    tuple,
)
LIMIT_DEPTH_ITEM = PbMessage(
    "PublicLimitDepthV3ApiItem",
    (PbField(1, "price", "0", S), PbField(2, "quantity", "1", S)),
    tuple,
)
AGGRE_DEAL_ITEM = PbMessage(
    "PublicAggreDealsV3ApiItem",
    (
        PbField(1, "price", "price", S),
        PbField(2, "quantity", "quantity", S),
        PbField(3, "tradeType", "trade_type", I32),
        PbField(4, "time", "time", I64),
        PbField(5, "tradeId", "trade_id", S),
    ),
    AggreDeal,
)

AGGRE_DEPTHS = PbMessage(
    "PublicAggreDepthsV3Api",
    (
        PbField(1, "asks", "asks", M, repeated=True, message=AGGRE_DEPTH_ITEM),
        PbField(2, "bids", "bids", M, repeated=True, message=AGGRE_DEPTH_ITEM),
        PbField(3, "eventType", "event_type", S),
        PbField(4, "fromVersion", "from_version", SI),
        PbField(5, "toVersion", "to_version", SI),
        PbField(6, "lastOrderCreateTime", "last_order_create_time", I64),
    ),
    AggreDepth,
)
LIMIT_DEPTHS = PbMessage(
    "PublicLimitDepthsV3Api",
    (
        PbField(1, "asks", "asks", M, repeated=True, message=LIMIT_DEPTH_ITEM),
        PbField(2, "bids", "bids", M, repeated=True, message=LIMIT_DEPTH_ITEM),
        PbField(3, "eventType", "event_type", S),
        PbField(4, "version", "version", SI),
        PbField(5, "lastOrderCreateTime", "last_order_create_time", I64),
    ),
    LimitDepth,
)
AGGRE_DEALS = PbMessage(
    "PublicAggreDealsV3Api",
    (
        PbField(1, "deals", "deals", M, repeated=True, message=AGGRE_DEAL_ITEM),
        PbField(2, "eventType", "event_type", S),
    ),
    AggreDeals,
)
AGGRE_BOOK_TICKER = PbMessage(
    "PublicAggreBookTickerV3Api",
    (
        PbField(1, "bidPrice", "bid_price", S),
        PbField(2, "bidQuantity", "bid_quantity", S),
        PbField(3, "askPrice", "ask_price", S),
        PbField(4, "askQuantity", "ask_quantity", S),
        PbField(5, "version", "version", SI),
        PbField(6, "lastOrderCreateTime", "last_order_create_time", I64),
    ),
    AggreBookTicker,
)
PRIVATE_ORDERS = PbMessage(
    "PrivateOrdersV3Api",
    (
        PbField(1, "id", "id", S),
        PbField(2, "clientId", "client_id", S),
        PbField(3, "price", "price", S),
        PbField(4, "quantity", "quantity", S),
        PbField(5, "amount", "amount", S),
        PbField(6, "avgPrice", "avg_price", S),
        PbField(7, "orderType", "order_type", I32),
        PbField(8, "tradeType", "trade_type", I32),
        PbField(9, "isMaker", "is_maker", B),
        PbField(10, "remainAmount", "remain_amount", S),
        PbField(11, "remainQuantity", "remain_quantity", S),
        PbField(12, "lastDealQuantity", "last_deal_quantity", S, optional=True),
        PbField(13, "cumulativeQuantity", "cumulative_quantity", S),
        PbField(14, "cumulativeAmount", "cumulative_amount", S),
        PbField(15, "status", "status", I32),
        PbField(16, "createTime", "order_create_time", I64),
    ),
    PrivateOrder,
)
PRIVATE_ACCOUNT = PbMessage(
    "PrivateAccountV3Api",
    (
        PbField(1, "vcoinName", "vcoin_name", S),
        PbField(2, "coinId", "coin_id", S),
        PbField(3, "balanceAmount", "balance_amount", S),
        PbField(4, "balanceAmountChange", "balance_amount_change", S),
        PbField(5, "frozenAmount", "frozen_amount", S),
        PbField(6, "frozenAmountChange", "frozen_amount_change", S),
        PbField(7, "type", "type", S),
        PbField(8, "time", "time", I64),
    ),
    PrivateAccount,
)
PRIVATE_DEALS = PbMessage(
    "PrivateDealsV3Api",
    (
        PbField(1, "price", "price", S),
        PbField(2, "quantity", "quantity", S),
        PbField(3, "amount", "amount", S),
        PbField(4, "tradeType", "trade_type", I32),
        PbField(5, "isMaker", "is_maker", B),
        PbField(6, "isSelfTrade", "is_self_trade", B),
        PbField(7, "tradeId", "trade_id", S),
        PbField(8, "clientOrderId", "client_order_id", S),
        PbField(9, "orderId", "order_id", S),
        PbField(10, "feeAmount", "fee_amount", S),
        PbField(11, "feeCurrency", "fee_currency", S),
        PbField(12, "time", "time", I64),
    ),
    PrivateDeal,
)

# Wrapper body field number -> (wrapper field name, body message).
BODIES: dict[int, tuple[str, PbMessage]] = {
    303: ("publicLimitDepths", LIMIT_DEPTHS),
    304: ("privateOrders", PRIVATE_ORDERS),
    306: ("privateDeals", PRIVATE_DEALS),
    307: ("privateAccount", PRIVATE_ACCOUNT),
    313: ("publicAggreDepths", AGGRE_DEPTHS),
    314: ("publicAggreDeals", AGGRE_DEALS),
    315: ("publicAggreBookTicker", AGGRE_BOOK_TICKER),
}
BODY_BY_NUMBER = BODIES

UNMODELLED_BODIES: dict[int, str] = {
    301: "publicDeals",
    302: "publicIncreaseDepths",
    305: "publicBookTicker",
    308: "publicSpotKline",
    309: "publicMiniTicker",
    310: "publicMiniTickers",
    311: "publicBookTickerBatch",
    312: "publicIncreaseDepthsBatch",
}
"""Other members of the ``body`` oneof: recognised (reported as ``UnknownPush``), not decoded."""
BODY_BY_CLASS: dict[type, int] = {msg.build: num for num, (_, msg) in BODIES.items()}

WRAPPER = PbMessage(
    "PushDataV3ApiWrapper",
    (
        PbField(1, "channel", "channel", S),
        PbField(3, "symbol", "symbol", S, optional=True),
        PbField(4, "symbolId", "symbol_id", S, optional=True),
        PbField(5, "createTime", "create_time", I64, optional=True),
        PbField(6, "sendTime", "send_time", I64, optional=True),
    ),
    PushFrame,
)
"""Wrapper fields outside the ``body`` oneof (the bodies are in :data:`BODIES`)."""
