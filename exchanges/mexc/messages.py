"""Decoded MEXC push frames (PROTOCOLS.md A6), one Struct per ``PushDataV3ApiWrapper`` body.

Each Struct carries the wrapper's fields (``channel``, ``symbol``, ``symbol_id``,
``create_time``, ``send_time``) next to the body's, so a consumer needs one object.
Prices and quantities stay decimal strings as sent. Version fields are strings on the wire
and ints here (they are compared, never printed). ``None`` marks an absent ``optional``
field; plain proto3 fields read as ``""`` / ``0`` when absent, exactly like protobuf.
Times are milliseconds, as sent.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "AggreBookTicker",
    "AggreDeal",
    "AggreDeals",
    "AggreDepth",
    "LimitDepth",
    "MexcPush",
    "PrivateAccount",
    "PrivateDeal",
    "PrivateOrder",
    "PushFrame",
    "UnknownPush",
]

Level = tuple[str, str]


class PushFrame(msgspec.Struct, frozen=True, kw_only=True):
    """Fields of ``PushDataV3ApiWrapper`` shared by every body."""

    channel: str = ""
    symbol: str | None = None
    symbol_id: str | None = None
    create_time: int | None = None
    send_time: int | None = None


class AggreDepth(PushFrame, frozen=True, kw_only=True):
    """``publicAggreDepths`` (313): incremental depth, absolute quantities, "0" deletes."""

    asks: list[Level] = []
    bids: list[Level] = []
    event_type: str = ""
    from_version: int = 0
    to_version: int = 0
    last_order_create_time: int = 0


class LimitDepth(PushFrame, frozen=True, kw_only=True):
    """``publicLimitDepths`` (303): top-N book."""

    asks: list[Level] = []
    bids: list[Level] = []
    event_type: str = ""
    version: int = 0
    last_order_create_time: int = 0


class AggreDeal(msgspec.Struct, frozen=True, kw_only=True):
    """One trade of ``publicAggreDeals``; ``trade_type`` 1 buy, 2 sell (taker side)."""

    price: str = ""
    quantity: str = ""
    trade_type: int = 0
    time: int = 0
    trade_id: str = ""


class AggreDeals(PushFrame, frozen=True, kw_only=True):
    """``publicAggreDeals`` (314)."""

    deals: list[AggreDeal] = []
    event_type: str = ""


class AggreBookTicker(PushFrame, frozen=True, kw_only=True):
    """``publicAggreBookTicker`` (315): best bid/ask."""

    bid_price: str = ""
    bid_quantity: str = ""
    ask_price: str = ""
    ask_quantity: str = ""
    version: int = 0
    last_order_create_time: int = 0


class PrivateOrder(PushFrame, frozen=True, kw_only=True):
    """``privateOrders`` (304).

    ``order_type``: 1 limit, 2 post-only, 3 IOC, 4 FOK, 5 market, 100 stop. ``status``: 1 new,
    2 filled, 3 partially filled, 4 canceled, 5 partially canceled.
    """

    id: str = ""
    client_id: str = ""
    price: str = ""
    quantity: str = ""
    amount: str = ""
    avg_price: str = ""
    order_type: int = 0
    trade_type: int = 0
    is_maker: bool = False
    remain_amount: str = ""
    remain_quantity: str = ""
    last_deal_quantity: str | None = None
    cumulative_quantity: str = ""
    cumulative_amount: str = ""
    status: int = 0
    order_create_time: int = 0
    """``createTime`` of the order (field 16), not the wrapper's ``create_time``."""


class PrivateDeal(PushFrame, frozen=True, kw_only=True):
    """``privateDeals`` (306): one own fill."""

    price: str = ""
    quantity: str = ""
    amount: str = ""
    trade_type: int = 0
    is_maker: bool = False
    is_self_trade: bool = False
    trade_id: str = ""
    client_order_id: str = ""
    order_id: str = ""
    fee_amount: str = ""
    fee_currency: str = ""
    time: int = 0


class PrivateAccount(PushFrame, frozen=True, kw_only=True):
    """``privateAccount`` (307): one balance change."""

    vcoin_name: str = ""
    coin_id: str = ""
    balance_amount: str = ""
    balance_amount_change: str = ""
    frozen_amount: str = ""
    frozen_amount_change: str = ""
    type: str = ""
    time: int = 0


class UnknownPush(PushFrame, frozen=True, kw_only=True):
    """A wrapper whose body this layer does not model (``body_field`` 0 = no body)."""

    body_field: int = 0


MexcPush = (
    AggreDepth
    | LimitDepth
    | AggreDeals
    | AggreBookTicker
    | PrivateOrder
    | PrivateDeal
    | PrivateAccount
    | UnknownPush
)
