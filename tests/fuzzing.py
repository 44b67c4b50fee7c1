"""Property-based fuzzing of the live adapters' decoders and book-sync pipelines.

Every :class:`Target` is one property over one pipeline: its inputs come from a hypothesis
strategy (mutations of real recorded frames from ``../shared/realdata``, and generated
structure), and its check raises when the property fails:

* an exception escapes that is not one of the project's own (:class:`ArbsimError`), or a
  stream handler caught one that it did not foresee (``malformed.internal``);
* an invariant breaks: a book that is crossed or differs from what its sync machine holds,
  a stream that does not sync again after garbage, a fill the order could not take.

The same targets run in CI (``tests/exchanges/test_fuzz.py``, a couple of hundred cases
each) and at volume (``bench/fuzz.py``, 10,000 cases and more each).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
import math
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiohttp
import msgspec
from google.protobuf import json_format
from hypothesis import strategies as st

from arbsim.core.book import OrderBook
from arbsim.core.errors import ArbsimError, MalformedMessage, VenueError
from arbsim.core.model import OrderRequest, Side
from exchanges.gateio import booksync as gate_booksync
from exchanges.gateio import errors as gate_errors
from exchanges.gateio import rest as gate_rest
from exchanges.gateio import ws as gate_ws
from exchanges.gateio import wsapi
from exchanges.gateio.stream import GateMarketDialect, GateUserStream
from exchanges.gateio.venue import GateVenue
from exchanges.live.booksync import BookDiff, BookSnapshot, DiffBookSync, Level
from exchanges.live.credentials import Credentials
from exchanges.live.errors import ErrorSpec
from exchanges.live.http import Endpoint, Prepared, RateLimiter, Response, RestTransport
from exchanges.live.stream import MarketStream, apply_sync_events
from exchanges.mexc import booksync as mexc_booksync
from exchanges.mexc import errors as mexc_errors
from exchanges.mexc import rest as mexc_rest
from exchanges.mexc import ws as mexc_ws
from exchanges.mexc.messages import AggreDepth
from exchanges.mexc.pb.mexc_push_pb2 import PushDataV3ApiWrapper
from exchanges.mexc.push import decode_depth_levels, decode_push, encode_push
from exchanges.mexc.stream import MexcMarketDialect, MexcUserStream, parse_control
from exchanges.mexc.venue import MexcVenue

__all__ = ["REALDATA", "TARGETS", "Corpus", "Target", "corpus"]

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, Any]], Any]
"""Runs a coroutine to its end on the caller's event loop (``asyncio.Runner.run``)."""


class PropertyFailed(AssertionError):
    """An input broke a property (the message says which)."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise PropertyFailed(what)


def project_errors_only(call: Callable[[], T]) -> T | None:
    """``call()``; None when it raised one of the project's errors (the property allows
    that); any other exception propagates and fails the property."""
    try:
        return call()
    except ArbsimError:
        return None


# --------------------------------------------------------------------------------------------
# Corpus: real recorded frames and answers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """Seeds, by the pipeline they feed (empty lists when ../shared/realdata is absent)."""

    mexc_push: list[dict[str, Any]]
    """MEXC push frames in protobuf's JSON mapping (hummingbot, decoded from the wire)."""
    mexc_control: list[bytes]
    gate_ws: list[bytes]
    gate_private: list[bytes]
    gate_api_replies: list[bytes]
    mexc_rest: dict[str, list[bytes]]
    gate_rest: dict[str, list[bytes]]

    @property
    def available(self) -> bool:
        return bool(self.mexc_push)


def _read(rel: str) -> str:
    return (REALDATA / rel).read_text()


def _placeholders(text: str) -> str:
    """jkorf examples write templated values as ``|1|``: make them plain numbers."""
    return re.sub(r'"?\|(\d+)\|"?', r"\1", text)


def _jkorf_frames(rel: str) -> list[bytes]:
    """Received frames of a jkorf socket example: ``<`` lines and the ``=`` JSON blob."""
    text = _placeholders(_read(rel))
    frames = [line[1:].strip() for line in text.splitlines() if line.startswith("<")]
    if "\n=" in text:
        frames.append(text.split("\n=", 1)[1].strip())
    out = []
    for frame in frames:
        try:
            out.append(msgspec.json.encode(json.loads(frame)))
        except ValueError:
            continue
    return out


def _jkorf_body(rel: str) -> list[bytes]:
    """The answer of a jkorf endpoint example (lines: method, path, signed, JSON)."""
    lines = _placeholders(_read(rel)).splitlines()
    try:
        return [msgspec.json.encode(json.loads("\n".join(lines[3:])))]
    except ValueError:
        return []


def _dump(obj: Any) -> bytes:
    return msgspec.json.encode(obj)


@functools.cache
def corpus() -> Corpus:
    """The seeds (loaded once)."""
    if not REALDATA.is_dir():
        return Corpus([], [], [], [], [], {}, {})
    # MEXC ----------------------------------------------------------------------------------
    bodies = (
        "publicAggreDepths",
        "publicAggreDeals",
        "privateOrders",
        "privateDeals",
        "privateAccount",
    )
    hb = json.loads(_read("mexc/hummingbot_mexc_payloads.json"))
    mexc_push = [
        e["payload"]
        for e in hb
        if isinstance(e["payload"], dict) and set(bodies) & e["payload"].keys()
    ]
    control: list[bytes] = [
        mexc_ws.pong_frame(),
        mexc_ws.ack_frame("x"),
        mexc_ws.blocked_frame("x"),
    ]
    for path in sorted((REALDATA / "mexc/jkorf_examples/Subscriptions/SpotApi").glob("*.txt")):
        text = _placeholders(path.read_text())
        control += [line[1:].strip().encode() for line in text.splitlines() if line.startswith("<")]
    routes = json.loads(_read("mexc/gocryptotrader_mexc_v3_http_recording.json"))["routes"]
    info = next(r for r in routes["/api/v3/exchangeInfo"]["GET"] if r["queryString"])["data"]
    ccxt = json.loads(_read("mexc/mexc_response_static.json"))["methods"]
    t = "mexc/jkorf_examples/Endpoints/SpotApi/"
    mexc_rest_seeds = {
        "time": [_dump(routes["/api/v3/time"]["GET"][0]["data"])],
        "exchange_info": [_dump({**info, "symbols": info["symbols"][:3]})],
        "depth": [_dump(routes["/api/v3/depth"]["GET"][0]["data"])],
        "account": _jkorf_body(t + "Account/GetAccountInfo.txt"),
        "my_trades": [
            _dump(ccxt["fetchMyTrades"][0]["httpResponse"]),
            *_jkorf_body(t + "Trading/GetUserTrades.txt"),
        ],
        "open_orders": [
            _dump(ccxt["fetchOrders"][0]["httpResponse"]),
            *_jkorf_body(t + "Trading/GetOpenOrders.txt"),
        ],
        "query": _jkorf_body(t + "Trading/GetOrder.txt"),
        "cancel": _jkorf_body(t + "Trading/CancelOrder.txt"),
        "place": _jkorf_body(t + "Trading/PlaceOrder.txt"),
        "listen_key_create": _jkorf_body(t + "Account/StartUserStream.txt"),
    }
    # Gate ----------------------------------------------------------------------------------
    frames: list[bytes] = []
    for line in _read("gateio/cryptofeed_GATEIO.ws.1.0").splitlines():
        _, sep, payload = line.partition(": {")
        if sep:
            frames.append(("{" + payload).encode())
    for name in ("gateio_spot_v4_messages.json", "gateio_spot_obu_v2_messages.json"):
        frames += [_dump(f) for f in json.loads(_read(f"gateio/{name}"))]
    for line in _read("gateio/crypto_msg_parser_gate_raw.jsonl").splitlines():
        raw = json.loads(line)["raw"]
        if raw.lstrip().startswith("{"):
            frames.append(raw.encode())
    gate_hb = json.loads(_read("gateio/hummingbot_gate_io_payloads.json"))
    private: list[bytes] = []
    for e in gate_hb:
        payload = e["payload"]
        if isinstance(payload, dict) and "channel" in payload and "auth" not in payload:
            frame = _dump(payload)
            frames.append(frame)
            if payload["channel"] in ("spot.orders", "spot.usertrades", "spot.balances"):
                private.append(frame)
    for path in sorted((REALDATA / "gateio/jkorf_examples/Subscriptions/Spot").glob("*.txt")):
        rel = str(path.relative_to(REALDATA))
        got = _jkorf_frames(rel)
        frames += got
        if any(k in path.name for k in ("Order", "UserTrade", "Balance")):
            private += got
    replies: list[bytes] = []
    for path in sorted((REALDATA / "gateio/jkorf_examples/Socket/SpotApi").glob("*.txt")):
        replies += _jkorf_frames(str(path.relative_to(REALDATA)))
    g_routes = json.loads(_read("gateio/gocryptotrader_gateio_http_recording.json"))["routes"]
    g_ccxt = json.loads(_read("gateio/gate_response_static_spot.json"))["methods"]
    pairs = json.loads(_read("gateio/gate.spot.2025-05-08.currency_pairs.json"))
    snapshots = [
        line.partition(": ")[2].encode()
        for line in _read("gateio/cryptofeed_GATEIO.http.0.0").splitlines()
        if ": {" in line
    ][:3]
    g = "gateio/jkorf_examples/Endpoints/Spot/"
    gate_rest_seeds = {
        "time": [b'{"server_time": 1597026383085}'],
        "currency_pairs": [_dump(pairs[:3]), *_jkorf_body(g + "ExchangeData/GetSymbols.txt")],
        "order_book": [
            _dump(g_routes["/api/v4/spot/order_book"]["GET"][0]["data"]),
            *snapshots,
            *_jkorf_body(g + "ExchangeData/GetOrderBook.txt"),
        ],
        "my_trades": [
            _dump(g_ccxt["fetchMyTrades"][0]["httpResponse"]),
            *_jkorf_body(g + "Trading/GetUserTrades.txt"),
        ],
        "open_orders": [
            _dump(g_ccxt["fetchOpenOrders"][0]["httpResponse"]),
            *_jkorf_body(g + "Trading/GetOpenOrders.txt"),
        ],
        "accounts": _jkorf_body(g + "Account/GetBalances.txt"),
        "get_order": _jkorf_body(g + "Trading/GetOrder.txt"),
        "cancel": _jkorf_body(g + "Trading/CancelOrder.txt"),
        "place": _jkorf_body(g + "Trading/PlaceOrder.txt"),
    }
    return Corpus(
        mexc_push=mexc_push,
        mexc_control=control,
        gate_ws=frames,
        gate_private=private,
        gate_api_replies=replies,
        mexc_rest={k: v for k, v in mexc_rest_seeds.items() if v},
        gate_rest={k: v for k, v in gate_rest_seeds.items() if v},
    )


# --------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------

WEIRD_TEXT = [
    "",
    " ",
    "0",
    "-0",
    "-1",
    "1e999999",
    "-1e999999",
    "1e-999999",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-inf",
    "0x10",
    "1_000",
    "١٢٣",
    "²",
    "1.2.3",
    "abc",
    "1e308",
    "1e309",
    "99999999999999999999999999999999999",
    "0.000000000000000000000000000000001",
    "100.005",
    "\x00",
    "t-",
    "<order.price>",
    "9" * 400,
    "true",
    "null",
    "[]",
    "{}",
    "1,5",
    " 7 ",
]
"""Text that breaks naive parsers: not numbers, numbers out of any range, unicode digits."""

WEIRD_NUMBERS: list[int | float] = [
    0,
    -1,
    1,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63),
    -(2**64),
    1.5,
    -0.0,
    1e308,
    math.inf,
    math.nan,
]

_json_leaf = st.one_of(
    st.sampled_from(WEIRD_TEXT),
    st.sampled_from(WEIRD_NUMBERS),
    st.text(max_size=12),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
)
JSON_VALUES = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)

Path_ = tuple[str | int, ...]


def _paths(obj: Any, prefix: Path_ = (), limit: int = 400) -> list[Path_]:
    """Paths of every node below the root (breadth first, at most ``limit``)."""
    out: list[Path_] = []
    queue: list[tuple[Any, Path_]] = [(obj, prefix)]
    while queue and len(out) < limit:
        node, path = queue.pop(0)
        items: Sequence[tuple[str | int, Any]] = (
            list(node.items())
            if isinstance(node, dict)
            else list(enumerate(node))
            if isinstance(node, list)
            else []
        )
        for key, child in items:
            out.append((*path, key))
            queue.append((child, (*path, key)))
    return out


def _parent(obj: Any, path: Path_) -> Any:
    for key in path[:-1]:
        obj = obj[key]
    return obj


def _same_kind(draw: st.DrawFn, old: Any) -> Any:
    """A weird value of the same JSON kind as ``old`` (a protobuf field keeps its type)."""
    if isinstance(old, bool):
        return draw(st.booleans())
    if isinstance(old, int):
        return draw(st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, -1, 2**62])))
    if isinstance(old, str):
        return draw(st.one_of(st.sampled_from(WEIRD_TEXT), st.text(max_size=12)))
    return old


def mutate_tree(draw: st.DrawFn, obj: Any, *, typed: bool = False) -> Any:
    """``obj`` (a JSON document) with one node replaced, deleted or duplicated; ``typed``
    keeps every leaf's JSON type (for protobuf's JSON mapping)."""
    paths = _paths(obj)
    if not paths:
        return draw(JSON_VALUES) if not typed else obj
    path = draw(st.sampled_from(paths))
    parent = _parent(obj, path)
    key = path[-1]
    op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "duplicate"]))
    if op == "delete":
        del parent[key]
    elif op == "duplicate" and isinstance(parent, list) and isinstance(key, int):
        parent.insert(key, copy.deepcopy(parent[key]))
    elif typed:
        old = parent[key]
        if isinstance(old, list) and old:
            parent[key] = old[: draw(st.integers(0, len(old)))]
        else:
            parent[key] = _same_kind(draw, old)
    else:
        parent[key] = draw(JSON_VALUES)
    return obj


def _flip_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(out)))
        op = draw(st.integers(0, 4))
        if op == 0 and out:
            out[min(pos, len(out) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            del out[pos : pos + draw(st.integers(1, 8))]
        elif op == 2:
            out[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == 3:
            out[pos:pos] = out[pos : pos + draw(st.integers(1, 16))]
        else:
            del out[pos:]
    return bytes(out)


@st.composite
def mutated_json(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    """A seed JSON document mutated 1-3 times as a tree, sometimes also as bytes."""
    doc = json.loads(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        doc = mutate_tree(draw, doc)
    data = json.dumps(doc).encode()
    if draw(st.integers(0, 7)) == 0:
        data = _flip_bytes(draw, data)
    if draw(st.integers(0, 24)) == 0 and data[:1] == b"{":
        # nesting deeper than any decoder's recursion limit, in a field of its own
        depth = draw(st.integers(100, 100_000))
        data = b'{"x":' + b"[" * depth + b"]" * depth + b"," + data[1:]
    return data


@st.composite
def mutated_bytes(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    return _flip_bytes(draw, draw(st.sampled_from(seeds)))


def _pb(doc: Mapping[str, Any]) -> bytes:
    return json_format.ParseDict(dict(doc), PushDataV3ApiWrapper()).SerializeToString()


@st.composite
def mutated_push(draw: st.DrawFn, seeds: Sequence[Mapping[str, Any]]) -> bytes:
    """A MEXC push frame: a real frame's fields mutated within the schema (garbage in the
    strings), then sometimes its bytes too."""
    seed = draw(st.sampled_from(seeds))
    doc = copy.deepcopy(dict(seed))
    for _ in range(draw(st.integers(1, 3))):
        doc = mutate_tree(draw, doc, typed=True)
    try:
        data = _pb(doc)
    except (json_format.ParseError, ValueError, TypeError):
        data = _pb(seed)
    if draw(st.integers(0, 3)) == 0:
        data = _flip_bytes(draw, data)
    return data


PRICE_TEXT = st.one_of(
    st.sampled_from(WEIRD_TEXT),
    st.floats().map(str),
    st.integers(-(10**20), 10**20).map(str),
    st.text(max_size=10),
)
LEVELS = st.lists(st.tuples(PRICE_TEXT, PRICE_TEXT), max_size=3)


@st.composite
def generated_depth(draw: st.DrawFn) -> bytes:
    """An aggre.depth frame built from scratch: any strings where numbers belong."""
    version = st.one_of(st.integers(0, 2**63 - 1), st.just(0))
    frame = AggreDepth(
        channel=draw(st.sampled_from(["spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT", ""])),
        symbol=draw(st.one_of(st.none(), st.just("BTCUSDT"))),
        send_time=draw(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))),
        bids=draw(LEVELS),
        asks=draw(LEVELS),
        from_version=draw(version),
        to_version=draw(version),
    )
    try:
        return encode_push(frame)
    except ValueError:  # a string protobuf cannot carry (lone surrogate)
        return encode_push(msgspec.structs.replace(frame, bids=[], asks=[]))


# --------------------------------------------------------------------------------------------
# Checks: decoders
# --------------------------------------------------------------------------------------------


def check_mexc_push(data: bytes, run: Run) -> None:
    full = project_errors_only(lambda: decode_push(data))
    fast = project_errors_only(lambda: decode_depth_levels(data))
    if fast is not None:
        bids, asks, _first, _last, _ts = fast
        expect(
            all(math.isfinite(v) and v >= 0 for side in (bids, asks) for lv in side for v in lv),
            "decode_depth_levels gave a level that is not two finite non-negative numbers",
        )
        expect(isinstance(full, AggreDepth), "the fast path read a frame decode_push refused")
        assert isinstance(full, AggreDepth)
        expect(
            [(float(p), float(q)) for p, q in full.bids] == bids,
            "the fast path and decode_push disagree",
        )
    dialect = MexcMarketDialect(mexc_rest.MexcRestClient(NOWHERE), {"BTCUSDT": "BTC/USDT"})
    project_errors_only(lambda: dialect.parse(data, 1))


def check_mexc_control(data: bytes, run: Run) -> None:
    topics = [mexc_ws.topic(mexc_ws.TopicKind.AGGRE_DEPTH, "BTCUSDT")]
    project_errors_only(lambda: parse_control(data, topics))
    project_errors_only(lambda: parse_control(data.decode(errors="replace"), topics))
    dialect = MexcMarketDialect(mexc_rest.MexcRestClient(NOWHERE), {"BTCUSDT": "BTC/USDT"})
    project_errors_only(lambda: dialect.parse(data.decode(errors="replace"), 1))


def check_gate_ws(data: bytes, run: Run) -> None:
    project_errors_only(lambda: gate_ws.decode(data))
    gate_ws.decode_book_update(data)  # None or levels, never an exception
    for dialect in (
        GateMarketDialect(gate_rest.GateRestClient(NOWHERE), {"BTC_USDT": "BTC/USDT"}),
        GateMarketDialect(
            gate_rest.GateRestClient(NOWHERE), {"BTC_USDT": "BTC/USDT"}, book_channel="obu"
        ),
    ):
        with contextlib.suppress(ArbsimError):
            dialect.parse(data, 1)


def check_gate_api_reply(data: bytes, run: Run) -> None:
    reply = project_errors_only(lambda: wsapi.decode_reply(data))
    if reply is not None:
        wsapi.reply_error(reply, order_request=True)  # an error to raise, never raises
        wsapi.reply_error(reply, order_request=False)
        result = bytes(reply.data.result)
        for channel in (wsapi.PLACE, wsapi.CANCEL, wsapi.STATUS):
            with contextlib.suppress(ArbsimError):
                gate_rest.to_order(wsapi.order_result(channel, result), "BTC/USDT")
    client = wsapi.GateWsApi(_no_session, Credentials("k", "s"))
    client._on_frame(data.decode(errors="replace"))
    expect(client.malformed.internal == 0, "the WS-API reader broke on a reply")


# --------------------------------------------------------------------------------------------
# Checks: REST answers
# --------------------------------------------------------------------------------------------

NOWHERE = "http://127.0.0.1:9"


def _no_session() -> aiohttp.ClientSession:
    raise AssertionError("no network in the fuzz targets")


def _no_mapper(
    http_status: int, body: bytes, headers: Mapping[str, str], *, order_request: bool = False
) -> Any:
    raise AssertionError("canned answers are 200")


class CannedTransport(RestTransport):
    """A transport answering every request with one canned body (no I/O)."""

    def __init__(self, venue: str, body: bytes) -> None:
        super().__init__(venue, NOWHERE, _no_mapper, RateLimiter([]))
        self.body = body

    async def send(
        self,
        endpoint: Endpoint,
        prepare: Callable[[], Prepared],
        *,
        path: str | None = None,
        market: str = "",
    ) -> Response:
        prepare()
        return Response(status=200, body=self.body, headers={})


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never waits (a client over :class:`CannedTransport`)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coro.close()
    raise PropertyFailed("the client waited on a canned answer")


TICK = Decimal("0.01")
_MEXC_CALLS: dict[str, Callable[[mexc_rest.MexcRestClient], Coroutine[Any, Any, Any]]] = {
    "time": lambda c: c.server_time(),
    "exchange_info": lambda c: c.exchange_info(["BTCUSDT"]),
    "depth": lambda c: c.depth("BTCUSDT"),
    "account": lambda c: c.account(),
    "my_trades": lambda c: c.my_trades("BTCUSDT"),
    "open_orders": lambda c: c.open_orders("BTCUSDT"),
    "query": lambda c: c.query_order("BTCUSDT", order_id="1"),
    "cancel": lambda c: c.cancel_order("BTCUSDT", order_id="1"),
    "place": lambda c: c.place_order([("symbol", "BTCUSDT")]),
    "listen_key_create": lambda c: c.create_listen_key(),
}


def _convert_mexc(name: str, answer: Any) -> None:
    """What the venue and the stream do with an answer."""
    if name == "exchange_info":
        for info in answer:
            book = OrderBook("mexc", info.symbol, info.to_instrument("mexc").tick)
            expect(book.scale.tick > 0, "a tick that is not positive")
    elif name == "depth":
        sync = mexc_booksync.new_book_sync("BTCUSDT", TICK)
        sync.on_snapshot(mexc_booksync.snapshot_from_depth(answer))
    elif name == "account":
        mexc_rest.to_balances(answer, 0)
    elif name == "my_trades":
        for trade in answer:
            mexc_rest.to_fill(trade, "BTC/USDT", "", ts_local=1)
    elif name == "open_orders":
        for order in answer:
            mexc_rest.to_order(order, "BTC/USDT")
    elif name in ("query", "cancel"):
        mexc_rest.to_order(answer, "BTC/USDT")


def _error_answer(spec: ErrorSpec, status: int, body: bytes, order: bool) -> None:
    """An error answer always maps to a venue error (it is raised, never raises)."""
    error = spec.error_from_response(status, body, {"Retry-After": "x"}, order_request=order)
    expect(isinstance(error, VenueError), "an error answer did not map to a VenueError")


def check_mexc_rest(case: RestCase, run: Run) -> None:
    name, body, status = case
    _error_answer(mexc_errors.ERROR_SPEC, status, body, name in ("place", "cancel"))
    client = mexc_rest.MexcRestClient(NOWHERE, Credentials("k", "s"))
    client.transport = CannedTransport("mexc", body)
    project_errors_only(lambda: _convert_mexc(name, drive(_MEXC_CALLS[name](client))))


_GATE_CALLS: dict[str, Callable[[gate_rest.GateRestClient], Coroutine[Any, Any, Any]]] = {
    "time": lambda c: c.server_time(),
    "currency_pairs": lambda c: c.currency_pairs(),
    "order_book": lambda c: c.order_book("BTC_USDT"),
    "my_trades": lambda c: c.my_trades("BTC_USDT"),
    "open_orders": lambda c: c.open_orders(),
    "accounts": lambda c: c.accounts(),
    "get_order": lambda c: c.get_order("BTC_USDT", "1"),
    "cancel": lambda c: c.cancel_order("BTC_USDT", "1"),
    "place": lambda c: c.place_order("BTC_USDT", b"{}"),
}


def _convert_gate(name: str, answer: Any) -> None:
    if name == "currency_pairs":
        for info in answer:
            OrderBook("gateio", info.symbol, info.to_instrument("gateio").tick)
    elif name == "order_book":
        sync = gate_booksync.new_order_book_update_sync("BTC_USDT", TICK)
        sync.on_snapshot(gate_booksync.snapshot_from_rest(answer))
    elif name == "accounts":
        gate_rest.to_balances(answer, 0)
    elif name == "my_trades":
        for trade in answer:
            gate_rest.to_fill(trade, "BTC/USDT", "", ts_local=1)
    elif name == "open_orders":
        for order in answer:
            gate_rest.to_order(order, "BTC/USDT")
    elif name in ("get_order", "cancel", "place"):
        gate_rest.to_order(answer, "BTC/USDT")


def check_gate_rest(case: RestCase, run: Run) -> None:
    name, body, status = case
    _error_answer(gate_errors.ERROR_SPEC, status, body, name in ("place", "cancel"))
    client = gate_rest.GateRestClient(NOWHERE + "/api/v4", Credentials("k", "s"))
    client.transport = CannedTransport("gateio", body)
    project_errors_only(lambda: _convert_gate(name, drive(_GATE_CALLS[name](client))))


RestCase = tuple[str, bytes, int]
"""Endpoint name, answer body, and the HTTP status of the same body as an error answer."""


@st.composite
def rest_case(draw: st.DrawFn, seeds: Mapping[str, Sequence[bytes]]) -> RestCase:
    name = draw(st.sampled_from(sorted(seeds)))
    status = draw(st.sampled_from([400, 401, 403, 404, 418, 429, 500, 502, 503, 504]))
    return name, draw(mutated_json(seeds[name])), status


# --------------------------------------------------------------------------------------------
# Checks: private pushes
# --------------------------------------------------------------------------------------------


def _tracked_orders_are_sound(venue: MexcVenue | GateVenue) -> None:
    for order in venue.tracker.orders.values():
        fills = sum((f.qty for f in order.fills), Decimal(0))
        expect(Decimal(0) <= order.filled_qty <= order.qty, "an order filled beyond its size")
        expect(fills == order.filled_qty, "fills do not add up to the filled quantity")
        expect(
            all(f.qty > 0 and f.price > 0 and f.price.is_finite() for f in order.fills),
            "a fill that is not a positive quantity at a positive price",
        )


def _track(venue: MexcVenue | GateVenue, cids: Sequence[str], order_ids: Sequence[str]) -> None:
    for i, cid in enumerate(cids):
        venue.tracker.register(
            OrderRequest(
                venue=venue.name,
                symbol="BTC/USDT",
                side=Side.BUY,
                qty=Decimal("3"),
                price=Decimal("100"),
                client_order_id=cid,
            )
        )
        if i < len(order_ids):
            venue.tracker.accepted(cid, order_ids[i])


def check_mexc_private(frames: list[bytes], run: Run) -> None:
    venue = MexcVenue(Credentials("k", "s"), rest_url=NOWHERE)
    # the client / order ids of the hummingbot frames
    _track(venue, ["OID1", "OID2", "OID3"], ["EOID1", "EOID2", "EOID3"])
    stream = MexcUserStream(venue.rest, on_order=venue._on_push_order, on_deal=venue._on_push_deal)
    for data in frames:
        stream._on_push(data)
    expect(stream.malformed.internal == 0, f"a push broke the handler: {stream.malformed.last}")
    _tracked_orders_are_sound(venue)


def check_gate_private(frames: list[bytes], run: Run) -> None:
    venue = GateVenue(Credentials("k", "s"), rest_url=NOWHERE)
    _track(venue, ["apiv4", "abc123", "t-123"], ["30784428", "1852454420"])
    stream = GateUserStream(
        _no_session,
        Credentials("k", "s"),
        ["BTC_USDT"],
        on_order=venue._on_push_order,
        on_trade=venue._on_push_trade,
    )
    for data in frames:
        # a refused subscription or the venue's "reconnect" raise: the stream's to act on
        with contextlib.suppress(ArbsimError):
            stream._on_frame(data.decode(errors="replace"), set())
    expect(stream.malformed.internal == 0, f"a push broke the handler: {stream.malformed.last}")
    _tracked_orders_are_sound(venue)


# --------------------------------------------------------------------------------------------
# Checks: the book-sync machine
# --------------------------------------------------------------------------------------------

SYNC_TICK = Decimal("0.05")
GRID = ["99.80", "99.85", "99.90", "99.95", "100.00", "100.05", "100.10", "100.15", "100.2"]
SYNC_PRICES = st.one_of(st.sampled_from(GRID), st.sampled_from(["100.01", "100.025"]), PRICE_TEXT)
SYNC_SIZES = st.one_of(st.sampled_from(["0", "1", "2.5", "0.000", "3"]), PRICE_TEXT)
SYNC_LEVELS = st.lists(st.tuples(SYNC_PRICES, SYNC_SIZES), max_size=4)
IDS = st.integers(-2, 40)

Op = tuple[Literal["snapshot"], BookSnapshot] | tuple[Literal["diff"], BookDiff]


@st.composite
def sync_ops(draw: st.DrawFn) -> list[Op]:
    ops: list[Op] = []
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.integers(0, 4)) == 0:
            ops.append(
                (
                    "snapshot",
                    BookSnapshot(last_id=draw(IDS), bids=draw(SYNC_LEVELS), asks=draw(SYNC_LEVELS)),
                )
            )
        else:
            first = draw(IDS)
            last = draw(st.one_of(st.just(first), IDS, st.integers(first, first + 3)))
            ops.append(
                (
                    "diff",
                    BookDiff(
                        first_id=first,
                        last_id=last,
                        bids=draw(SYNC_LEVELS),
                        asks=draw(SYNC_LEVELS),
                        full=draw(st.booleans()),
                    ),
                )
            )
    return ops


SyncKind = Literal["mexc", "gate_update", "gate_obu"]


def _new_sync(kind: SyncKind) -> DiffBookSync:
    if kind == "mexc":
        return mexc_booksync.new_book_sync("BTCUSDT", SYNC_TICK)
    if kind == "gate_update":
        return gate_booksync.new_order_book_update_sync("BTC_USDT", SYNC_TICK)
    return gate_booksync.new_obu_sync("ob.BTC_USDT.400", SYNC_TICK)


def _held(book: OrderBook) -> tuple[dict[float, float], dict[float, float]]:
    return (
        {lv.price: lv.size for lv in book.bids(1000)},
        {lv.price: lv.size for lv in book.asks(1000)},
    )


def _sync_levels(sync: DiffBookSync) -> tuple[dict[float, float], dict[float, float]]:
    return (
        {float(p): float(s) for p, s in sync.book.bids.items()},
        {float(p): float(s) for p, s in sync.book.asks.items()},
    )


def _feed(sync: DiffBookSync, book: OrderBook, op: Op) -> None:
    """One input through the machine and into a book, as the market stream does."""
    try:
        events = sync.on_snapshot(op[1]) if op[0] == "snapshot" else sync.on_diff(op[1])
    except MalformedMessage:
        book.clear()
        return
    _applied, resyncs = apply_sync_events(book, events, 1)
    if resyncs:
        book.clear()
    expect(_held(book) == _sync_levels(sync), "the book differs from the sync machine's")
    if sync.synced:
        expect(not sync.book.is_crossed() and not book.is_crossed, "a crossed book kept")
    else:
        expect(not sync.book.bids and not sync.book.asks, "levels kept while not synced")


def check_sync(kind: SyncKind) -> Callable[[list[Op], Run], None]:
    def check(ops: list[Op], run: Run) -> None:
        sync = _new_sync(kind)
        book = OrderBook("x", "BTC/USDT", SYNC_TICK)
        for op in ops:
            _feed(sync, book, op)
        # then a clean venue: the book must sync again and hold exactly the venue's levels
        base = 1000
        bids = [("99.90", "1"), ("99.85", "2")]
        asks = [("100.10", "1"), ("100.15", "4")]
        step1 = BookDiff(first_id=base + 1, last_id=base + 1, bids=[("99.95", "5")], asks=[])
        step2 = BookDiff(
            first_id=base + 2, last_id=base + 3, bids=[("99.90", "0")], asks=[("100.05", "7")]
        )
        if kind == "gate_obu":
            clean: list[Op] = [
                ("diff", BookDiff(first_id=base, last_id=base, bids=bids, asks=asks, full=True)),
                ("diff", step1),
                ("diff", step2),
            ]
        else:
            clean = [
                ("diff", step1),
                ("snapshot", BookSnapshot(last_id=base, bids=bids, asks=asks)),
                ("diff", step2),
            ]
        for op in clean:
            _feed(sync, book, op)
        want = ({99.95: 5.0, 99.85: 2.0}, {100.05: 7.0, 100.10: 1.0, 100.15: 4.0})
        expect(sync.synced and sync.local_id == base + 3, "did not sync again after garbage")
        expect(_held(book) == want, "the book differs from the venue's after syncing again")

    return check


# --------------------------------------------------------------------------------------------
# Checks: the market stream's message handler
# --------------------------------------------------------------------------------------------

VERSION0 = 7_777_777_777_777
"""The stream harness's update ids: far from any id in the corpus or in WEIRD_NUMBERS, so a
mutated real frame can never pass for the next update of the harness's book."""
StreamKind = Literal["mexc", "gate_update", "gate_obu"]
_NATIVE = {"mexc": "ARBUSDT", "gate_update": "ARB_USDT", "gate_obu": "ARB_USDT"}
"""Symbols absent from the corpus (real frames never pass for the harness's book's)."""


class _Venue:
    """The venue's book and the frames that change it."""

    def __init__(self) -> None:
        self.version = VERSION0
        self.bids = {f"{99 + i / 10:.2f}": "1" for i in range(10)}
        self.asks = {f"{100.1 + i / 10:.2f}": "2" for i in range(10)}
        self.before = self.snapshot()

    def snapshot(self) -> BookSnapshot:
        return BookSnapshot(
            last_id=self.version, bids=list(self.bids.items()), asks=list(self.asks.items())
        )

    def change(self, bids: dict[str, str], asks: dict[str, str]) -> int:
        self.before = self.snapshot()
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, s in levels.items():
                if Decimal(s) == 0:
                    side.pop(p, None)
                else:
                    side[p] = s
        self.version += 1
        return self.version

    def levels(self) -> tuple[dict[float, float], dict[float, float]]:
        return (
            {float(p): float(s) for p, s in self.bids.items()},
            {float(p): float(s) for p, s in self.asks.items()},
        )


class _MexcHarnessDialect(MexcMarketDialect):
    def __init__(self, venue: _Venue) -> None:
        super().__init__(mexc_rest.MexcRestClient(NOWHERE), {"ARBUSDT": "ARB/USDT"})
        self.venue = venue

    async def snapshot(self, native: str) -> BookSnapshot:
        # a REST snapshot lags the stream: the book as it was one update ago
        return self.venue.before


class _GateHarnessDialect(GateMarketDialect):
    def __init__(self, venue: _Venue, obu: bool) -> None:
        super().__init__(
            gate_rest.GateRestClient(NOWHERE),
            {"ARB_USDT": "ARB/USDT"},
            book_channel="obu" if obu else "order_book_update",
        )
        self.venue = venue

    async def snapshot(self, native: str) -> BookSnapshot:
        return self.venue.before


def _frame(
    kind: StreamKind,
    first: int,
    last: int,
    bids: Sequence[Level],
    asks: Sequence[Level],
    *,
    full: bool = False,
) -> str | bytes:
    native = _NATIVE[kind]
    if kind == "mexc":
        return encode_push(
            AggreDepth(
                channel=f"spot@public.aggre.depth.v3.api.pb@100ms@{native}",
                symbol=native,
                send_time=1736411507002,
                from_version=first,
                to_version=last,
                bids=list(bids),
                asks=list(asks),
            )
        )
    if kind == "gate_update":
        result: dict[str, Any] = {
            "t": 1,
            "s": native,
            "U": first,
            "u": last,
            "b": [list(x) for x in bids],
            "a": [list(x) for x in asks],
        }
        channel = "spot.order_book_update"
    else:
        result = {
            "t": 1,
            "s": gate_ws.obu_stream(native, 400),
            "u": last,
            "b": [list(x) for x in bids],
            "a": [list(x) for x in asks],
        }
        if full:
            result["full"] = True
        else:
            result["U"] = first
        channel = "spot.obu"
    return _dump({"time": 1, "channel": channel, "event": "update", "result": result}).decode()


class StreamHarness:
    """A market stream fed frame by frame (no connection) over a venue it must mirror."""

    def __init__(self, kind: StreamKind) -> None:
        self.kind = kind
        self.venue = _Venue()
        self.native = _NATIVE[kind]
        self.book = OrderBook(kind, "ARB/USDT", TICK)
        dialect: MexcMarketDialect | GateMarketDialect = (
            _MexcHarnessDialect(self.venue)
            if kind == "mexc"
            else _GateHarnessDialect(self.venue, kind == "gate_obu")
        )
        self.stream = MarketStream(
            dialect, _no_session, {self.native: self.book}, venue=kind, resync_delay_s=0.0
        )
        self.pending = dict(dialect.subscribe_frames([self.native], 0))

    def feed(self, data: str | bytes) -> None:
        """One frame; only a refused subscription or a request to reconnect may raise."""
        try:
            self.stream._on_frame(data, self.pending)
        except ArbsimError as exc:
            if type(exc).__name__ not in ("SubscriptionRefused", "NetworkError"):
                raise
        expect(
            self.stream.malformed.internal == 0,
            f"a frame broke the handler: {self.stream.malformed.last}",
        )

    async def settle(self) -> None:
        """Let resync tasks run; a ``spot.obu`` book gets the full push a resubscribe brings."""
        for _ in range(20):
            if self.stream.ready.is_set():
                return
            if self.kind == "gate_obu" and not self.stream.syncs[self.native].synced:
                self.feed(self.full())
            await asyncio.sleep(0)

    def full(self) -> str | bytes:
        snap = self.venue.snapshot()
        return _frame(self.kind, snap.last_id, snap.last_id, snap.bids, snap.asks, full=True)

    async def start(self) -> None:
        for topic in list(self.pending):
            if self.kind == "mexc":
                ack: str = mexc_ws.ack_frame(topic).decode()
            else:
                ack = _dump(
                    {
                        "time": 1,
                        "channel": topic.split(":")[0],
                        "event": "subscribe",
                        "result": {"status": "success"},
                    }
                ).decode()
            self.feed(ack)
        await self.settle()
        expect(self.stream.ready.is_set(), "the harness did not sync")

    def change(self, bids: dict[str, str], asks: dict[str, str]) -> str | bytes:
        version = self.venue.change(bids, asks)
        return _frame(self.kind, version, version, list(bids.items()), list(asks.items()))

    def lost(self, n: int) -> str | bytes:
        """The venue's next frame after ``n`` that never arrived (a gap)."""
        for i in range(n):
            self.venue.change({f"98.{i}0": "1"}, {})
        return self.change({"98.90": "2"}, {})

    def stale(self, back: int) -> str | bytes:
        v = max(VERSION0 - 5, self.venue.version - back)
        return _frame(self.kind, v, v, [("98.50", "1")], [])


BAD_PRICES = [
    "abc",
    "",
    "NaN",
    "-1",
    "0",
    "100.005",
    "1e999999",
    "Infinity",
    "1.2.3",
    "0x10",
    "1e30",
    "-0",
    " ",
    "sNaN",
    "1e-999999",
    "١٠٠.٠٠٠١",
]
BAD_SIZES = ["-1", "NaN", "1e999", "abc", "1e31", "1e-31", "-0.5", "Infinity"]


@st.composite
def _bad_levels(draw: st.DrawFn) -> tuple[list[Level], list[Level]]:
    if draw(st.booleans()):
        bad = (draw(st.sampled_from(BAD_PRICES)), "1")
    else:
        bad = ("99.50", draw(st.sampled_from(BAD_SIZES)))
    good = [("99.40", "1")] if draw(st.booleans()) else []
    levels = [*good, bad] if draw(st.booleans()) else [bad, *good]
    return (levels, []) if draw(st.booleans()) else ([], levels)


StreamStep = tuple[str, Any]


def stream_steps(kind: StreamKind) -> st.SearchStrategy[list[StreamStep]]:
    c = corpus()
    garbage: list[st.SearchStrategy[StreamStep]] = [
        st.tuples(st.just("bad_levels"), _bad_levels()),
        st.tuples(st.just("backwards"), st.integers(1, 3)),
        st.tuples(st.just("stale"), st.integers(0, 3)),
        st.tuples(st.just("lost"), st.integers(1, 3)),
        st.tuples(st.just("move"), st.sampled_from(["99.70", "99.80", "100.60", "100.70"])),
    ]
    if kind == "mexc" and c.mexc_push:
        garbage.append(
            st.tuples(
                st.just("raw"),
                st.one_of(
                    mutated_push(c.mexc_push),
                    mutated_bytes([_pb(d) for d in c.mexc_push]),
                    mutated_json(c.mexc_control).map(lambda b: b.decode(errors="replace")),
                ),
            )
        )
    if kind != "mexc" and c.gate_ws:
        garbage.append(st.tuples(st.just("raw"), mutated_json(c.gate_ws)))
    return st.lists(st.one_of(*garbage), min_size=1, max_size=6)


def check_stream(kind: StreamKind) -> Callable[[list[StreamStep], Run], None]:
    async def scenario(steps: list[StreamStep]) -> None:
        h = StreamHarness(kind)
        await h.start()
        for step, arg in steps:
            before = h.stream.malformed.total
            if step == "bad_levels":
                bids, asks = arg
                h.feed(_frame(kind, h.venue.version + 1, h.venue.version + 1, bids, asks))
                expect(h.stream.malformed.total == before + 1, "bad levels were not refused")
                expect(not h.stream.ready.is_set(), "ready while the book is being synced")
            elif step == "backwards":
                v = h.venue.version
                h.feed(_frame(kind, v + 1 + arg, v + 1, [("99.45", "1")], []))
                expect(h.stream.malformed.total == before + 1, "backwards ids were accepted")
            elif step == "stale":
                h.feed(h.stale(arg))
            elif step == "lost":
                h.feed(h.lost(arg))
            elif step == "move":  # a real update in the middle of the garbage
                bid = Decimal(arg) < 100
                h.feed(h.change({arg: "3"} if bid else {}, {} if bid else {arg: "3"}))
            else:
                h.feed(arg)
            expect(h.stream.malformed.total - before <= 1, "one frame counted twice")
        # the venue moves on; the stream must catch up and mirror it
        h.feed(h.change({"99.55": "4"}, {}))
        await h.settle()
        h.feed(h.change({}, {"100.15": "6"}))
        await h.settle()
        expect(h.stream.ready.is_set(), "the stream did not sync again after garbage")
        expect(_held(h.book) == h.venue.levels(), "the book differs from the venue's")
        h.stream._cancel_snapshots()

    def check(steps: list[StreamStep], run: Run) -> None:
        run(scenario(steps))

    return check


# --------------------------------------------------------------------------------------------
# The targets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One fuzzed property: ``strategy(corpus)`` gives inputs (None: nothing to fuzz with,
    e.g. without the real data), ``check(input, run)`` raises when the property fails."""

    name: str
    strategy: Callable[[Corpus], st.SearchStrategy[Any] | None]
    check: Callable[[Any, Run], None]
    what: str


def _push_inputs(c: Corpus) -> st.SearchStrategy[bytes]:
    generated: list[st.SearchStrategy[bytes]] = [generated_depth(), st.binary(max_size=64)]
    if not c.mexc_push:
        return st.one_of(*generated)
    raw = [_pb(d) for d in c.mexc_push]
    return st.one_of(mutated_push(c.mexc_push), mutated_bytes(raw), *generated)


def _private_mexc(c: Corpus) -> st.SearchStrategy[list[bytes]] | None:
    private = [d for d in c.mexc_push if not any(k.startswith("public") for k in d)]
    if not private:
        return None
    return st.lists(
        st.one_of(mutated_push(private), st.sampled_from([_pb(d) for d in private])),
        min_size=1,
        max_size=5,
    )


def _private_gate(c: Corpus) -> st.SearchStrategy[list[bytes]] | None:
    if not c.gate_private:
        return None
    return st.lists(
        st.one_of(mutated_json(c.gate_private), st.sampled_from(c.gate_private)),
        min_size=1,
        max_size=5,
    )


TARGETS: list[Target] = [
    Target(
        "mexc.push",
        _push_inputs,
        check_mexc_push,
        "MEXC protobuf push decode, decode_depth_levels, market dialect",
    ),
    Target(
        "mexc.control",
        lambda c: mutated_json(c.mexc_control) if c.mexc_control else None,
        check_mexc_control,
        "MEXC JSON control replies",
    ),
    Target(
        "gate.ws",
        lambda c: mutated_json(c.gate_ws) if c.gate_ws else None,
        check_gate_ws,
        "Gate WS envelope/body decode (order_book_update, obu, trades...), market dialect",
    ),
    Target(
        "gate.wsapi",
        lambda c: mutated_json(c.gate_api_replies) if c.gate_api_replies else None,
        check_gate_api_reply,
        "Gate WS-API replies",
    ),
    Target(
        "mexc.rest",
        lambda c: rest_case(c.mexc_rest) if c.mexc_rest else None,
        check_mexc_rest,
        "MEXC REST answers and their conversions",
    ),
    Target(
        "gate.rest",
        lambda c: rest_case(c.gate_rest) if c.gate_rest else None,
        check_gate_rest,
        "Gate REST answers and their conversions",
    ),
    Target(
        "mexc.private",
        _private_mexc,
        check_mexc_private,
        "MEXC private pushes into the order tracker",
    ),
    Target(
        "gate.private",
        _private_gate,
        check_gate_private,
        "Gate spot.orders / usertrades / balances pushes into the order tracker",
    ),
    Target(
        "booksync.mexc",
        lambda c: sync_ops(),
        check_sync("mexc"),
        "DiffBookSync, strict policy (MEXC aggre.depth)",
    ),
    Target(
        "booksync.gate_update",
        lambda c: sync_ops(),
        check_sync("gate_update"),
        "DiffBookSync, overlapping policy (Gate order_book_update)",
    ),
    Target(
        "booksync.gate_obu",
        lambda c: sync_ops(),
        check_sync("gate_obu"),
        "DiffBookSync, no-snapshot policy (Gate spot.obu)",
    ),
    Target(
        "stream.mexc",
        lambda c: stream_steps("mexc"),
        check_stream("mexc"),
        "MarketStream handler, MEXC dialect",
    ),
    Target(
        "stream.gate_update",
        lambda c: stream_steps("gate_update"),
        check_stream("gate_update"),
        "MarketStream handler, Gate order_book_update",
    ),
    Target(
        "stream.gate_obu",
        lambda c: stream_steps("gate_obu"),
        check_stream("gate_obu"),
        "MarketStream handler, Gate spot.obu",
    ),
]
"""Every fuzzed property."""
