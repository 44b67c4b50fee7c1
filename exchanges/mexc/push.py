"""MEXC binary push frames: the codec the adapters and the simulator use.

Frames are ``PushDataV3ApiWrapper`` messages (PROTOCOLS.md A6), written once in
``exchanges/mexc/proto/mexc_push.proto``; :mod:`exchanges.mexc.pb_upb` decodes and encodes
them with the protoc-generated classes (``protobuf`` runtime, upb backend) and converts to
and from the Structs of :mod:`exchanges.mexc.messages`. ``decode_depth_levels`` is the
book-building fast path. ``bench/decode_mexc.py`` measures the codec.
"""

from __future__ import annotations

from exchanges.mexc.messages import (
    AggreBookTicker,
    AggreDeal,
    AggreDeals,
    AggreDepth,
    LimitDepth,
    MexcPush,
    PrivateAccount,
    PrivateDeal,
    PrivateOrder,
    PushFrame,
    UnknownPush,
)
from exchanges.mexc.pb_upb import (
    DepthLevels,
    ProtobufDecodeError,
    decode_depth_levels,
    decode_push,
    encode_push,
)

__all__ = [
    "AggreBookTicker",
    "AggreDeal",
    "AggreDeals",
    "AggreDepth",
    "DepthLevels",
    "LimitDepth",
    "MexcPush",
    "PrivateAccount",
    "PrivateDeal",
    "PrivateOrder",
    "ProtobufDecodeError",
    "PushFrame",
    "UnknownPush",
    "decode_depth_levels",
    "decode_push",
    "encode_push",
]
