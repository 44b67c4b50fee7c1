"""Gate.io WebSocket order entry (PROTOCOLS.md B6): ``spot.login`` then order requests.

One connection to ``wss://api.gateio.ws/ws/v4/`` (the market-data URL) carries
``event: "api"`` requests::

    {"time": 1700000000, "channel": "spot.order_place", "event": "api",
     "payload": {"req_id": "ob-3", "req_param": {...Gate Order...}}}

and their replies ``{request_id, ack, header: {status, ...}, data: {result | errs}}``.

Decisions
---------
* Login signs exactly the ``req_param`` it sends: ``{}`` (PROTOCOLS B6 warns that the doc's
  empty string is not what real clients sign). Later requests ride on the login and are
  not signed again.
* ``spot.order_place`` first answers ``ack: true``; a request is complete only with its
  result (or ``errs``). The ack is remembered to make a timeout message more useful.
* Errors ``{label, message}`` with ``header.status`` go through
  :func:`exchanges.gateio.errors.error_from_response` exactly like REST answers, so a
  rejection carries the same class and code (``BALANCE_NOT_ENOUGH``...) on both transports.
* Which requests are *order* requests (a timeout or a lost connection after sending is
  :class:`~arbsim.core.errors.OutcomeUnknown`, never a failure) and what they cost on the
  client-side rate limiter is data: :data:`CHANNELS`. The limiter can be the REST client's
  so both transports share Gate's per-UID budgets.
* The connection is kept by a task: connect, log in, read; on loss every waiting request
  is answered (OutcomeUnknown / NetworkError) and the task reconnects and logs in again
  with backoff. A refused login (:class:`~arbsim.core.errors.AuthError`) ends the task: a wrong
  key does not get better by retrying, and every later request raises that error.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from typing import Protocol

import aiohttp
import msgspec

from arbsim.core.errors import (
    AuthError,
    MalformedMessage,
    NetworkError,
    OutcomeUnknown,
    VenueError,
)
from exchanges.gateio import errors, signing, ws
from exchanges.gateio.rest import ENDPOINTS, GateOrder
from exchanges.live.credentials import Credentials
from exchanges.live.errors import decode_body, order_answer_error
from exchanges.live.http import RateLimiter
from exchanges.live.stream import Backoff, StreamTask

__all__ = [
    "CANCEL",
    "CHANNELS",
    "LOGIN",
    "LOGIN_REQ_PARAM",
    "PLACE",
    "STATUS",
    "ApiChannel",
    "ApiData",
    "ApiErrs",
    "ApiHeader",
    "ApiPayload",
    "ApiReply",
    "ApiRequest",
    "GateWsApi",
    "LoginResult",
    "OrderEntry",
    "OrderRef",
    "api_request",
    "decode_reply",
    "login_request",
    "order_result",
    "reply_error",
]

log = logging.getLogger(__name__)

VENUE = "gateio"
LOGIN = "spot.login"
PLACE = "spot.order_place"
CANCEL = "spot.order_cancel"
STATUS = "spot.order_status"
LOGIN_REQ_PARAM = b"{}"
"""What a login sends as ``req_param`` and signs (B6: real clients sign ``{}``)."""


class ApiChannel(msgspec.Struct, frozen=True, kw_only=True):
    """One WebSocket API channel as data.

    Attributes
    ----------
    order:
        Creates or cancels an order: after the request left, a timeout or a lost
        connection is :class:`OutcomeUnknown`.
    costs:
        ``(limit family, cost)`` charged to the client-side limiter (per-market families
        take the request's market); the same as the REST endpoints
        (:data:`exchanges.gateio.rest.ENDPOINTS`).
    """

    order: bool = False
    costs: tuple[tuple[str, float], ...] = ()


CHANNELS: dict[str, ApiChannel] = {
    LOGIN: ApiChannel(),
    PLACE: ApiChannel(order=True, costs=ENDPOINTS["place"].costs),
    CANCEL: ApiChannel(order=True, costs=ENDPOINTS["cancel"].costs),
    STATUS: ApiChannel(costs=ENDPOINTS["get_order"].costs),
}
"""Channel -> behaviour (order request or not, rate-limit costs)."""


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


class ApiPayload(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``payload`` of a request; ``api_key``/``signature``/``timestamp`` only on a login.

    ``req_param`` is raw JSON, written byte for byte: what is signed is what is sent.
    """

    req_id: str
    req_param: msgspec.Raw
    api_key: str = ""
    signature: str = ""
    timestamp: str = ""


class ApiRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One ``event: "api"`` request frame."""

    time: int
    channel: str
    event: str
    payload: ApiPayload


class OrderRef(msgspec.Struct, frozen=True, kw_only=True):
    """``req_param`` of ``spot.order_cancel`` / ``spot.order_status`` (id or ``t-`` text)."""

    order_id: str
    currency_pair: str
    account: str = "spot"


class ApiHeader(msgspec.Struct, frozen=True, kw_only=True):
    """``header`` of a reply (``status`` is an HTTP-like status, sent as a string)."""

    status: int = 0
    channel: str = ""
    event: str = ""
    response_time: int | str = 0
    x_in_time: int | str = 0
    x_out_time: int | str = 0
    conn_id: str = ""
    trace_id: str = ""
    client_id: str = ""


class ApiErrs(msgspec.Struct, frozen=True, kw_only=True):
    """``data.errs`` of a refused request (the REST error body)."""

    label: str = ""
    message: str = ""


class ApiData(msgspec.Struct, frozen=True, kw_only=True):
    """``data`` of a reply: ``result`` (raw JSON, decoded per channel) or ``errs``."""

    result: msgspec.Raw = msgspec.Raw(b"")
    errs: ApiErrs | None = None

    @property
    def has_result(self) -> bool:
        """Whether ``result`` is present and not ``null``."""
        raw = bytes(self.result).strip()
        return bool(raw) and raw != b"null"


class ApiReply(msgspec.Struct, frozen=True, kw_only=True):
    """A WebSocket API reply; frames of other kinds (``spot.pong``) have no ``request_id``."""

    request_id: str | None = None
    ack: bool = False
    header: ApiHeader = msgspec.field(default_factory=ApiHeader)
    data: ApiData = msgspec.field(default_factory=ApiData)


class LoginResult(msgspec.Struct, frozen=True, kw_only=True):
    """``data.result`` of a successful ``spot.login``."""

    api_key: str = ""
    uid: str = ""


_encoder = msgspec.json.Encoder()
_reply_decoder = msgspec.json.Decoder(ApiReply, strict=False)
_order_decoder = msgspec.json.Decoder(GateOrder, strict=False)
_login_decoder = msgspec.json.Decoder(LoginResult, strict=False)


def api_request(channel: str, req_id: str, req_param: bytes, time_s: int) -> bytes:
    """An unsigned request frame (after a login)."""
    payload = ApiPayload(req_id=req_id, req_param=msgspec.Raw(req_param))
    return _encoder.encode(ApiRequest(time=time_s, channel=channel, event="api", payload=payload))


def login_request(api_key: str, secret: str, req_id: str, time_s: int) -> bytes:
    """The ``spot.login`` frame, signed over the ``req_param`` it carries."""
    timestamp = str(time_s)
    payload = ApiPayload(
        req_id=req_id,
        req_param=msgspec.Raw(LOGIN_REQ_PARAM),
        api_key=api_key,
        signature=signing.sign_ws_api(secret, LOGIN, LOGIN_REQ_PARAM.decode(), timestamp),
        timestamp=timestamp,
    )
    return _encoder.encode(ApiRequest(time=time_s, channel=LOGIN, event="api", payload=payload))


def decode_reply(frame: str | bytes) -> ApiReply:
    """Decode one frame of the connection.

    Raises
    ------
    MalformedMessage
        Not a JSON object of the reply's shape.
    """
    return decode_body(_reply_decoder, frame, venue=VENUE, channel="api")


def order_result(channel: str, result: bytes) -> GateOrder:
    """The order in a reply's ``data.result``.

    Raises
    ------
    OutcomeUnknown
        An order request's result cannot be read: the request may have taken effect.
    MalformedMessage
        Another request's result cannot be read.
    """
    try:
        return decode_body(_order_decoder, result, venue=VENUE, channel=channel)
    except MalformedMessage as exc:
        if CHANNELS.get(channel, ApiChannel()).order:
            raise order_answer_error(exc) from exc
        raise


def reply_error(reply: ApiReply, *, order_request: bool) -> VenueError | None:
    """The arbsim error of a refused request (None when the reply is a success).

    ``header.status`` plays the HTTP status and ``errs`` the body, through the same mapper
    as REST: labels -> classes, 401 -> AuthError, 5xx -> OutcomeUnknown for orders.
    """
    status = reply.header.status
    errs = reply.data.errs
    if errs is None and (status < 400 if status else reply.data.has_result):
        return None
    body = _encoder.encode(errs) if errs is not None else b""
    return errors.error_from_response(
        status if status >= 400 else 400, body, {}, order_request=order_request
    )


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------


class OrderEntry(Protocol):
    """What :class:`exchanges.gateio.venue.GateVenue` needs to place, cancel and query
    (satisfied by :class:`~exchanges.gateio.rest.GateRestClient` and :class:`GateWsApi`)."""

    async def place_order(self, pair: str, body: bytes) -> GateOrder: ...

    async def cancel_order(self, pair: str, order_id: str) -> GateOrder: ...

    async def get_order(self, pair: str, order_id: str) -> GateOrder: ...


class _Pending:
    __slots__ = ("acked", "channel", "future")

    def __init__(self, channel: str, future: asyncio.Future[ApiReply]) -> None:
        self.channel = channel
        self.future = future
        self.acked = False


class GateWsApi(StreamTask):
    """Gate's WebSocket API for order entry, on the venue's ``aiohttp.ClientSession``.

    Parameters
    ----------
    session:
        Returns the session (the REST transport's).
    credentials:
        Key and secret of the login.
    url:
        ``wss://api.gateio.ws/ws/v4/`` by default (tests: 127.0.0.1).
    timeout_s:
        How long a request waits for its result (ack alone does not count).
    ready_timeout_s:
        How long a request waits for a (re)connected, logged-in connection before it is
        refused with :class:`NetworkError` (nothing was sent).
    limiter:
        Client-side rate limiter (share the REST client's: same per-UID budgets).
    backoff:
        Reconnect delays.
    ping_interval_s:
        ``spot.ping`` period.
    clock_s:
        Seconds for ``time`` / login ``timestamp`` (injectable).

    Notes
    -----
    No I/O in the constructor; :meth:`start` (or the first request) connects.
    """

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        credentials: Credentials,
        *,
        url: str = ws.URL,
        timeout_s: float = 10.0,
        ready_timeout_s: float = 10.0,
        limiter: RateLimiter | None = None,
        backoff: Backoff | None = None,
        ping_interval_s: float = 15.0,
        clock_s: Callable[[], float] = time.time,
        venue: str = VENUE,
    ) -> None:
        self._session = session
        self.credentials = credentials
        self.url = url
        self.timeout_s = timeout_s
        self.ready_timeout_s = ready_timeout_s
        self.limiter = limiter
        self.clock_s = clock_s
        self._init_task(venue, "WebSocket API", backoff=backoff, ping_interval_s=ping_interval_s)
        self.connections = 0
        self.logins = 0
        self.uid = ""
        self.sent: dict[str, int] = {}
        """Requests sent per channel (logins included)."""
        self._stopped = False
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> asyncio.Task[None]:
        """Run the connection in a task (reconnecting until :meth:`stop`)."""
        if self._task is None or self._task.done():
            self.error = None
            self._stopped = False
        return super().start()

    async def stop(self) -> None:
        """Close the connection and end the task; waiting requests get their error."""
        self._stopped = True
        await super().stop()
        self._fail_pending("client stopped")

    # ---------------------------------------------------------------- requests
    async def place(self, pair: str, body: bytes) -> GateOrder:
        """``spot.order_place`` of one Gate order (the JSON of
        :func:`exchanges.gateio.rest.order_body`) -> the placed order.

        Raises
        ------
        VenueError
            The venue's refusal (label as ``code``); :class:`OutcomeUnknown` when the
            result did not come back (timeout, lost connection, 5xx).
        """
        return order_result(PLACE, await self.request(PLACE, body, market=pair))

    async def cancel(self, pair: str, order_id: str) -> GateOrder:
        """``spot.order_cancel`` by venue id or ``t-`` text -> the cancelled order."""
        param = _encoder.encode(OrderRef(order_id=order_id, currency_pair=pair))
        return order_result(CANCEL, await self.request(CANCEL, param, market=pair))

    async def status(self, pair: str, order_id: str) -> GateOrder:
        """``spot.order_status`` by venue id or ``t-`` text -> the order."""
        param = _encoder.encode(OrderRef(order_id=order_id, currency_pair=pair))
        return order_result(STATUS, await self.request(STATUS, param, market=pair))

    # The REST client's names (:class:`OrderEntry`): the venue swaps transports as data.
    place_order = place
    cancel_order = cancel
    get_order = status

    async def request(self, channel: str, req_param: bytes, *, market: str = "") -> bytes:
        """Send one request on the logged-in connection; return its raw ``data.result``.

        Raises
        ------
        NetworkError
            No usable connection (the request was not sent), or a non-order request
            without an answer.
        OutcomeUnknown
            An order request that was sent but not answered.
        VenueError
            The venue's refusal, mapped through :mod:`exchanges.gateio.errors`.
        """
        spec = CHANNELS.get(channel, ApiChannel())
        if self.limiter is not None:
            await self.limiter.acquire(spec.costs, market=market)
        conn = await self._connected()
        req_id = self._next_id()
        frame = api_request(channel, req_id, req_param, int(self.clock_s()))
        reply = await self._exchange(conn, channel, req_id, frame, spec)
        error = reply_error(reply, order_request=spec.order)
        if error is not None:
            log.info("%s %s %s refused: %s", self.venue, channel, req_id, error)
            raise error
        result = reply.data.result
        if result is None:
            raise VenueError(f"{channel}: reply without result", code="no_result", venue=self.venue)
        return bytes(result)

    # ---------------------------------------------------------------- plumbing
    def _next_id(self) -> str:
        return f"arb-{next(self._ids)}"

    async def _connected(self) -> aiohttp.ClientWebSocketResponse:
        if self.error is not None:
            raise self.error
        if self._stopped:
            raise NetworkError(
                f"{self.venue}: WebSocket API stopped", code="stopped", venue=self.venue
            )
        if self._task is None or self._task.done() or not self.ready.is_set():
            await self.wait_ready(self.ready_timeout_s)
        conn = self._ws
        if conn is None or conn.closed:
            raise NetworkError(
                f"{self.venue}: WebSocket API not connected", code="not_connected", venue=self.venue
            )
        return conn

    async def _exchange(
        self,
        conn: aiohttp.ClientWebSocketResponse,
        channel: str,
        req_id: str,
        frame: bytes,
        spec: ApiChannel,
    ) -> ApiReply:
        """Send ``frame`` and wait for the final (non-ack) reply to ``req_id``."""
        future: asyncio.Future[ApiReply] = asyncio.get_running_loop().create_future()
        pending = self._pending[req_id] = _Pending(channel, future)
        try:
            try:
                await conn.send_str(frame.decode())
                self.sent[channel] = self.sent.get(channel, 0) + 1
            except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
                # The frame did not reach the socket: not even an order can exist.
                raise NetworkError(
                    f"{channel}: not sent ({type(exc).__name__})", code="not_sent", venue=self.venue
                ) from None
            try:
                return await asyncio.wait_for(future, self.timeout_s)
            except TimeoutError:
                what = "acknowledged but no result" if pending.acked else "no answer"
                cls: type[VenueError] = OutcomeUnknown if spec.order else NetworkError
                log.warning(
                    "%s %s %s: %s in %.3fs", self.venue, channel, req_id, what, self.timeout_s
                )
                raise cls(
                    f"{channel}: {what} in {self.timeout_s}s", code="timeout", venue=self.venue
                ) from None
        finally:
            self._pending.pop(req_id, None)

    def _fail_pending(self, reason: str) -> None:
        for req_id, pending in list(self._pending.items()):
            if pending.future.done():
                continue
            spec = CHANNELS.get(pending.channel, ApiChannel())
            cls: type[VenueError] = OutcomeUnknown if spec.order else NetworkError
            pending.future.set_exception(
                cls(
                    f"{pending.channel} {req_id}: {reason}",
                    code="connection_lost",
                    venue=self.venue,
                )
            )
        self._pending.clear()

    async def run(self) -> None:
        """Connect, log in and read; reconnect (and log in again) with backoff on any loss."""
        try:
            await self._reconnect_forever(
                self._connection, fatal=(AuthError,), closed="closed by the venue"
            )
        finally:
            self.ready.clear()

    async def _connection(self) -> None:
        async with self._session().ws_connect(self.url, autoping=True) as conn:
            self._ws = conn
            self.connections += 1
            reader = asyncio.create_task(self._read(conn))
            pinger: asyncio.Task[None] | None = None
            try:
                await self._login(conn)
                self._usable()
                pinger = asyncio.create_task(
                    self._pinger(conn, lambda: ws.ping_request(int(self.clock_s())).decode())
                )
                await reader
            finally:
                self.ready.clear()
                self._ws = None
                for task in (reader, pinger):
                    if task is not None:
                        task.cancel()
                self._fail_pending("connection lost after the request was sent")

    async def _login(self, conn: aiohttp.ClientWebSocketResponse) -> None:
        creds = self.credentials
        req_id = self._next_id()
        frame = login_request(creds.api_key, creds.api_secret, req_id, int(self.clock_s()))
        reply = await self._exchange(conn, LOGIN, req_id, frame, CHANNELS[LOGIN])
        error = reply_error(reply, order_request=False)
        if error is not None:
            if not isinstance(error, AuthError):
                # A login refused for any reason is an authentication failure.
                error = AuthError(
                    str(error.args[0]) if error.args else "login refused",
                    code=error.code,
                    venue=self.venue,
                )
            log.error("%s WebSocket API login refused: %s", self.venue, error)
            raise error
        data = reply.data
        self.uid = (
            decode_body(_login_decoder, bytes(data.result), venue=self.venue, channel=LOGIN).uid
            if data.has_result
            else ""
        )
        self.logins += 1

    async def _read(self, conn: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in conn:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._on_frame(msg.data)
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    break
        finally:
            self._fail_pending("connection lost after the request was sent")

    def _on_frame(self, data: str) -> None:
        """Route one reply to its request. A frame that cannot be decoded is counted: a
        request it answered times out (an order request then is OutcomeUnknown)."""
        try:
            reply = decode_reply(data)
        except MalformedMessage as exc:
            self.malformed.record(exc)
            return
        if reply.request_id is None:
            return  # spot.pong and other non-API frames
        pending = self._pending.get(reply.request_id)
        if pending is None or pending.future.done():
            log.debug("%s: reply to unknown or expired request %s", self.venue, reply.request_id)
            return
        if reply.ack:
            pending.acked = True
            return
        pending.future.set_result(reply)
