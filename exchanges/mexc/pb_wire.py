"""Hand-written protobuf wire codec for the MEXC push frames.

Driven by the schema table in :mod:`exchanges.mexc.pb_schema`. Follows proto3 rules:
implicit-presence fields equal to their default are not written, ``optional`` fields are
written whenever set, fields go out in field-number order (as protobuf's own serializer
does), unknown fields are skipped on decode.
"""

from __future__ import annotations

from typing import Any

from exchanges.mexc.messages import MexcPush, PushFrame, UnknownPush
from exchanges.mexc.pb_schema import (
    BODIES,
    BODY_BY_CLASS,
    UNMODELLED_BODIES,
    WRAPPER,
    Kind,
    PbField,
    PbMessage,
)

__all__ = ["ProtobufDecodeError", "decode_push", "encode_push"]

_WT_VARINT, _WT_I64, _WT_LEN, _WT_I32 = 0, 1, 2, 5
_U64 = 1 << 64
_I64_SIGN = 1 << 63
_INT_KINDS = (Kind.INT32, Kind.INT64)


class ProtobufDecodeError(ValueError):
    """The bytes are not a well-formed frame of the expected schema."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufDecodeError("varint longer than 10 bytes")


def _skip(buf: bytes, pos: int, wire_type: int) -> int:
    if wire_type == _WT_VARINT:
        return _varint(buf, pos)[1]
    if wire_type == _WT_LEN:
        length, pos = _varint(buf, pos)
        return pos + length
    if wire_type == _WT_I64:
        return pos + 8
    if wire_type == _WT_I32:
        return pos + 4
    raise ProtobufDecodeError(f"unsupported wire type {wire_type}")


def _fields(buf: bytes, pos: int, end: int, msg: PbMessage) -> dict[str, Any]:
    by_number = _BY_NUMBER[msg.name]
    out: dict[str, Any] = {}
    while pos < end:
        key, pos = _varint(buf, pos)
        field = by_number.get(key >> 3)
        wire_type = key & 7
        if field is None:
            pos = _skip(buf, pos, wire_type)
            continue
        value: Any
        if wire_type == _WT_LEN:
            length, pos = _varint(buf, pos)
            stop = pos + length
            if stop > end:
                raise ProtobufDecodeError(f"{msg.name}.{field.name}: length past the end")
            kind = field.kind
            if kind is Kind.MESSAGE:
                assert field.message is not None
                value = _build(buf, pos, stop, field.message)
            elif kind is Kind.STRINT:
                text = buf[pos:stop]
                value = int(text) if text else 0
            elif kind is Kind.STRING:
                value = buf[pos:stop].decode()
            else:
                raise ProtobufDecodeError(f"{msg.name}.{field.name}: unexpected length field")
            pos = stop
        elif wire_type == _WT_VARINT:
            value, pos = _varint(buf, pos)
            if field.kind is Kind.BOOL:
                value = value != 0
            elif field.kind in _INT_KINDS:
                if value & _I64_SIGN:
                    value -= _U64
            else:
                raise ProtobufDecodeError(f"{msg.name}.{field.name}: unexpected varint")
        else:
            pos = _skip(buf, pos, wire_type)
            continue
        if field.repeated:
            out.setdefault(field.attr, []).append(value)
        else:
            out[field.attr] = value
    if pos != end:
        raise ProtobufDecodeError(f"{msg.name}: truncated")
    return out


def _build(buf: bytes, pos: int, end: int, msg: PbMessage) -> Any:
    values = _fields(buf, pos, end, msg)
    if msg.is_pair:
        return (values.get("0", ""), values.get("1", ""))
    return msg.build(**values)


def decode_push(data: bytes) -> MexcPush:
    """Decode one binary ``PushDataV3ApiWrapper`` frame.

    Returns
    -------
    MexcPush
        The body's Struct (with the wrapper fields), or :class:`UnknownPush` for bodies this
        layer does not model.

    Raises
    ------
    ProtobufDecodeError
        Malformed bytes.
    """
    try:
        return _decode_push(data)
    except IndexError as exc:
        raise ProtobufDecodeError("truncated frame") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, ProtobufDecodeError):
            raise
        raise ProtobufDecodeError(str(exc)) from exc


def _decode_push(data: bytes) -> MexcPush:
    wrapper_fields = _BY_NUMBER[WRAPPER.name]
    values: dict[str, Any] = {}
    body: tuple[int, int, int] | None = None
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number in _BODY_NUMBERS and wire_type == _WT_LEN:
            length, pos = _varint(data, pos)
            body = (number, pos, pos + length)
            pos += length
            continue
        field = wrapper_fields.get(number)
        if field is None:
            if wire_type == _WT_LEN and number in UNMODELLED_BODIES:
                body = (number, pos, pos)
            pos = _skip(data, pos, wire_type)
            continue
        if wire_type == _WT_LEN:
            length, pos = _varint(data, pos)
            values[field.attr] = data[pos : pos + length].decode()
            pos += length
        elif wire_type == _WT_VARINT:
            raw, pos = _varint(data, pos)
            values[field.attr] = raw - _U64 if raw & _I64_SIGN else raw
        else:
            pos = _skip(data, pos, wire_type)
    if pos != end:
        raise ProtobufDecodeError("PushDataV3ApiWrapper: truncated")
    if body is None:
        return UnknownPush(**values)
    number, start, stop = body
    entry = BODIES.get(number)
    if entry is None:
        return UnknownPush(body_field=number, **values)
    msg = entry[1]
    values.update(_fields(data, start, stop, msg))
    result: MexcPush = msg.build(**values)
    return result


# --------------------------------------------------------------------------------------------


def _put_varint(out: bytearray, value: int) -> None:
    if value < 0:
        value += _U64
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_len(out: bytearray, number: int, payload: bytes) -> None:
    _put_varint(out, (number << 3) | _WT_LEN)
    _put_varint(out, len(payload))
    out += payload


def _put_value(out: bytearray, field: PbField, value: Any) -> None:
    kind = field.kind
    if kind is Kind.STRING:
        _put_len(out, field.number, value.encode())
    elif kind is Kind.STRINT:
        _put_len(out, field.number, str(value).encode())
    elif kind is Kind.MESSAGE:
        assert field.message is not None
        _put_len(out, field.number, _encode_message(field.message, value))
    else:
        _put_varint(out, field.number << 3)
        _put_varint(out, int(value))


def _put_fields(out: bytearray, msg: PbMessage, obj: Any) -> None:
    pair = msg.is_pair
    for field in msg.fields:
        value = obj[int(field.attr)] if pair else getattr(obj, field.attr)
        if field.repeated:
            for item in value:
                _put_value(out, field, item)
        elif field.optional:
            if value is not None:
                _put_value(out, field, value)
        elif value:  # proto3: a default value is not written
            _put_value(out, field, value)


def _encode_message(msg: PbMessage, obj: Any) -> bytes:
    out = bytearray()
    _put_fields(out, msg, obj)
    return bytes(out)


def encode_push(frame: PushFrame) -> bytes:
    """Encode a push Struct as a binary ``PushDataV3ApiWrapper`` frame.

    Raises
    ------
    TypeError
        For :class:`UnknownPush` or a plain :class:`PushFrame` (no body to write).
    """
    number = BODY_BY_CLASS.get(type(frame))
    if number is None:
        raise TypeError(f"cannot encode {type(frame).__name__}: no modelled body")
    body_msg = BODIES[number][1]
    out = bytearray()
    # Field-number order as protobuf writes it: 1, 3, 4, 5, 6, then the body (3xx).
    _put_fields(out, WRAPPER, frame)
    _put_len(out, number, _encode_message(body_msg, frame))
    return bytes(out)


def _index(msg: PbMessage, table: dict[str, dict[int, PbField]]) -> None:
    table[msg.name] = {f.number: f for f in msg.fields}
    for f in msg.fields:
        if f.message is not None:
            _index(f.message, table)


_BY_NUMBER: dict[str, dict[int, PbField]] = {}
_index(WRAPPER, _BY_NUMBER)
for _name, _msg in BODIES.values():
    _index(_msg, _BY_NUMBER)
_BODY_NUMBERS = frozenset(BODIES)
