"""The generated MEXC protobuf classes: in step with the .proto, the runtime floor and A6."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from google.protobuf.descriptor import FieldDescriptor

from exchanges.mexc.pb import mexc_push_pb2
from exchanges.mexc.proto import regenerate

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_checked_in_code_is_what_protoc_makes_of_the_proto(tmp_path: Path) -> None:
    for made in regenerate.generate(tmp_path):
        checked_in = regenerate.OUT_DIR / made.name
        assert checked_in.read_text() == made.read_text(), (
            f"{checked_in} is stale: run python -m exchanges.mexc.proto.regenerate"
        )


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_protobuf_floor_admits_the_generated_code() -> None:
    # The generated module refuses a protobuf runtime older than the protoc that made it.
    source = (regenerate.OUT_DIR / "mexc_push_pb2.py").read_text()
    match = re.search(r"Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),", source)
    assert match is not None
    gencode = tuple(int(g) for g in match.groups())
    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in deps if re.match(r"protobuf\b", d)]
    floor = re.search(r">=\s*([\d.]+)", spec)
    assert floor is not None
    assert _version(floor.group(1)) >= gencode, (spec, gencode)


def test_body_oneof_is_a6() -> None:
    wrapper = mexc_push_pb2.PushDataV3ApiWrapper.DESCRIPTOR
    body = {f.number: f.name for f in wrapper.oneofs_by_name["body"].fields}
    assert body == {
        301: "publicDeals", 302: "publicIncreaseDepths", 303: "publicLimitDepths",
        304: "privateOrders", 305: "publicBookTicker", 306: "privateDeals",
        307: "privateAccount", 308: "publicSpotKline", 309: "publicMiniTicker",
        310: "publicMiniTickers", 311: "publicBookTickerBatch",
        312: "publicIncreaseDepthsBatch", 313: "publicAggreDepths", 314: "publicAggreDeals",
        315: "publicAggreBookTicker",
    }  # fmt: skip
    optional = {
        f.number: (f.name, f.type)
        for f in wrapper.fields
        if f.containing_oneof is not None and f.containing_oneof.name != "body"
    }
    assert optional == {
        3: ("symbol", FieldDescriptor.TYPE_STRING),
        4: ("symbolId", FieldDescriptor.TYPE_STRING),
        5: ("createTime", FieldDescriptor.TYPE_INT64),
        6: ("sendTime", FieldDescriptor.TYPE_INT64),
    }
    assert wrapper.fields_by_number[1].name == "channel"


def test_messages_are_named_as_mexc_names_them() -> None:
    assert set(mexc_push_pb2.DESCRIPTOR.message_types_by_name) >= {
        "PushDataV3ApiWrapper", "PublicAggreDepthsV3Api", "PublicAggreDealsV3Api",
        "PublicAggreBookTickerV3Api", "PublicLimitDepthsV3Api", "PrivateOrdersV3Api",
        "PrivateDealsV3Api", "PrivateAccountV3Api",
    }  # fmt: skip
