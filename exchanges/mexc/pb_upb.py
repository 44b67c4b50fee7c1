"""MEXC push frames through the ``protobuf`` runtime, with descriptors built at import time.

``protoc`` is not needed: the ``FileDescriptorProto`` is assembled from the schema table in
:mod:`exchanges.mexc.pb_schema`, so these classes and the hand-written codec
(:mod:`exchanges.mexc.pb_wire`) describe the same messages.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from exchanges.mexc.messages import AggreDepth, MexcPush, PushFrame, UnknownPush
from exchanges.mexc.pb_schema import (
    BODIES,
    BODY_BY_CLASS,
    PACKAGE,
    UNMODELLED_BODIES,
    WRAPPER,
    Kind,
    PbMessage,
)
from exchanges.mexc.pb_wire import ProtobufDecodeError

__all__ = ["WRAPPER_CLASS", "decode_push", "encode_push", "file_descriptor"]

_FDP = descriptor_pb2.FieldDescriptorProto
_TYPES = {
    Kind.STRING: _FDP.TYPE_STRING,
    Kind.STRINT: _FDP.TYPE_STRING,
    Kind.INT32: _FDP.TYPE_INT32,
    Kind.INT64: _FDP.TYPE_INT64,
    Kind.BOOL: _FDP.TYPE_BOOL,
    Kind.MESSAGE: _FDP.TYPE_MESSAGE,
}


_UNMODELLED = "UnmodelledBody"


def _add_message(
    file: descriptor_pb2.FileDescriptorProto, msg: PbMessage, seen: set[str], *, body: bool
) -> None:
    if msg.name in seen:
        return
    seen.add(msg.name)
    for field in msg.fields:
        if field.message is not None:
            _add_message(file, field.message, seen, body=False)
    proto = file.message_type.add(name=msg.name)
    if body:
        # Unmodelled bodies share one empty message so that WhichOneof still names them.
        file.message_type.add(name=_UNMODELLED)
        proto.oneof_decl.add(name="body")
        for number, name in sorted(UNMODELLED_BODIES.items()):
            proto.field.add(
                name=name,
                number=number,
                type=_FDP.TYPE_MESSAGE,
                type_name=f".{PACKAGE}.{_UNMODELLED}",
                label=_FDP.LABEL_OPTIONAL,
                oneof_index=0,
            )
        for number, (name, body_msg) in sorted(BODIES.items()):
            _add_message(file, body_msg, seen, body=False)
            proto.field.add(
                name=name,
                number=number,
                type=_FDP.TYPE_MESSAGE,
                type_name=f".{PACKAGE}.{body_msg.name}",
                label=_FDP.LABEL_OPTIONAL,
                oneof_index=0,
            )
    for field in msg.fields:
        entry = proto.field.add(
            name=field.name,
            number=field.number,
            type=_TYPES[field.kind],
            label=_FDP.LABEL_REPEATED if field.repeated else _FDP.LABEL_OPTIONAL,
        )
        if field.message is not None:
            entry.type_name = f".{PACKAGE}.{field.message.name}"
        if field.optional:
            # proto3 `optional` is a synthetic one-field oneof placed after the real ones.
            entry.proto3_optional = True
            entry.oneof_index = len(proto.oneof_decl)
            proto.oneof_decl.add(name=f"_{field.name}")


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The ``.proto`` file of the schema as a descriptor (what protoc would produce)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="arbsim_mexc_push.proto", package=PACKAGE, syntax="proto3"
    )
    _add_message(file, WRAPPER, set(), body=True)
    return file


_pool = descriptor_pool.DescriptorPool()
_pool.Add(file_descriptor())
WRAPPER_CLASS: type[Message] = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName(f"{PACKAGE}.{WRAPPER.name}")
)


def _to_python(msg: PbMessage, pb: Any) -> Any:
    if msg.is_pair:
        return (pb.price, pb.quantity)
    return msg.build(**_values(msg, pb))


def _values(msg: PbMessage, pb: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in msg.fields:
        if field.optional:
            if pb.HasField(field.name):
                out[field.attr] = getattr(pb, field.name)
            continue
        value = getattr(pb, field.name)
        if field.kind is Kind.MESSAGE:
            assert field.message is not None
            sub = field.message
            if sub.is_pair:
                value = [(item.price, item.quantity) for item in value]
            else:
                value = [_to_python(sub, item) for item in value]
        elif field.kind is Kind.STRINT:
            value = int(value) if value else 0
        out[field.attr] = value
    return out


def _aggre_depth(pb: Any) -> AggreDepth:
    """The hot channel, read field by field (the generic walk costs 3x as much)."""
    d = pb.publicAggreDepths
    return AggreDepth(
        channel=pb.channel,
        symbol=pb.symbol if pb.HasField("symbol") else None,
        symbol_id=pb.symbolId if pb.HasField("symbolId") else None,
        create_time=pb.createTime if pb.HasField("createTime") else None,
        send_time=pb.sendTime if pb.HasField("sendTime") else None,
        asks=[(i.price, i.quantity) for i in d.asks],
        bids=[(i.price, i.quantity) for i in d.bids],
        event_type=d.eventType,
        from_version=int(d.fromVersion) if d.fromVersion else 0,
        to_version=int(d.toVersion) if d.toVersion else 0,
        last_order_create_time=d.lastOrderCreateTime,
    )


DepthLevels = tuple[list[tuple[float, float]], list[tuple[float, float]], int, int, int]


def decode_depth_levels(data: bytes) -> DepthLevels | None:
    """The book-building fast path: an ``aggre.depth`` frame straight to floats.

    Returns ``(bids, asks, from_version, to_version, send_time_ms)`` with the levels as
    ``(price, quantity)`` float pairs, or None when the frame carries another channel
    (decode those with :func:`decode_push`). Same values as :func:`decode_push`, without
    building the string-typed :class:`AggreDepth` first.
    """
    try:
        pb: Any = WRAPPER_CLASS.FromString(data)
    except DecodeError as exc:
        raise ProtobufDecodeError(str(exc)) from exc
    if not pb.HasField("publicAggreDepths"):
        return None
    d = pb.publicAggreDepths
    # one pass per repeated field: every iteration builds upb item wrappers
    return (
        [(float(i.price), float(i.quantity)) for i in d.bids],
        [(float(i.price), float(i.quantity)) for i in d.asks],
        int(d.fromVersion) if d.fromVersion else 0,
        int(d.toVersion) if d.toVersion else 0,
        pb.sendTime,
    )


def decode_push(data: bytes) -> MexcPush:
    """Decode one binary ``PushDataV3ApiWrapper`` frame (same contract as
    :func:`exchanges.mexc.pb_wire.decode_push`)."""
    try:
        pb: Any = WRAPPER_CLASS.FromString(data)
    except DecodeError as exc:
        raise ProtobufDecodeError(str(exc)) from exc
    which = pb.WhichOneof("body")
    if which == "publicAggreDepths":
        return _aggre_depth(pb)
    values = _values(WRAPPER, pb)
    if which is None:
        return UnknownPush(**values)
    number = pb.DESCRIPTOR.fields_by_name[which].number
    entry = BODIES.get(number)
    if entry is None:
        return UnknownPush(body_field=number, **values)
    body_msg = entry[1]
    values.update(_values(body_msg, getattr(pb, which)))
    result: MexcPush = body_msg.build(**values)
    return result


def _fill(msg: PbMessage, pb: Any, obj: Any) -> None:
    for field in msg.fields:
        value = obj[int(field.attr)] if msg.is_pair else getattr(obj, field.attr)
        if field.kind is Kind.MESSAGE:
            assert field.message is not None
            container = getattr(pb, field.name)
            for item in value:
                _fill(field.message, container.add(), item)
        elif field.optional:
            if value is not None:
                setattr(pb, field.name, value)
        elif field.kind is Kind.STRINT:
            if value:
                setattr(pb, field.name, str(value))
        else:
            setattr(pb, field.name, value)


def encode_push(frame: PushFrame) -> bytes:
    """Encode a push Struct (same contract as :func:`exchanges.mexc.pb_wire.encode_push`)."""
    number = BODY_BY_CLASS.get(type(frame))
    if number is None:
        raise TypeError(f"cannot encode {type(frame).__name__}: no modelled body")
    name, body_msg = BODIES[number]
    pb: Any = WRAPPER_CLASS()
    _fill(WRAPPER, pb, frame)
    body = getattr(pb, name)
    body.SetInParent()  # an empty body still selects the oneof
    _fill(body_msg, body, frame)
    data: bytes = pb.SerializeToString()
    return data
