"""``VenueServer``: what the simulated venues' aiohttp applications (MEXC, Gate.io) share.

The frame is the same for both: the exchange and its market replay, the fault state, the
request limiter over the venue's rate-limit rows, the WebSocket connections, the native
symbol names, the application (venue middlewares, then REST faults, then rejections
answered in the venue's spelling; the venue's routes; the ``/_sim`` admin API) and its
shutdown. A venue server adds its routes, its handlers and its push formats.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar, TypedDict

from aiohttp import web
from aiohttp.typedefs import Middleware

from arbsim.core.model import Instrument
from arbsim.core.rules import Rejection
from exchanges.sim.errors import SimError, SimReject, reject_response
from exchanges.sim.exchange import PrivateUpdate, SimExchange
from exchanges.sim.faults import FaultState
from exchanges.sim.hub import Connection, Handler, StreamFaulter, add_admin_routes, fault_middleware
from exchanges.sim.market import MarketEvent
from exchanges.simulated.rules import RequestLimiter

__all__ = ["ServerOptions", "VenueServer", "decimal_places", "decimal_text"]


def decimal_text(d: Decimal) -> str:
    """A decimal as the venues write it: plain, without trailing zeros (``"0"`` for zero)."""
    return format(d.normalize(), "f") if d else "0"


def decimal_places(step: Decimal, what: str, venue: str) -> int:
    """``0.01`` -> 2: the places of a power-of-ten step, which is all a venue's precision
    fields can express (anything else is refused with ``ValueError``)."""
    n = step.normalize()
    exp = n.as_tuple().exponent
    if n.as_tuple().digits != (1,) or not isinstance(exp, int):
        raise ValueError(f"{venue} precision needs a power-of-ten {what}, got {step}")
    return -exp


class ServerOptions(TypedDict, total=False):
    """Keyword arguments of every venue server (defaults: :class:`VenueServer`)."""

    rate_limits: bool
    now_ns: Callable[[], int]
    host_ns: Callable[[], int]


class VenueServer(abc.ABC):
    """The aiohttp application of one simulated venue; subclasses add the protocol.

    Parameters
    ----------
    exchange:
        The simulated exchange (accounts, orders, matching) with its market replay.
    faults:
        Injected faults.
    rate_limits:
        Enforce the venue's request limits.
    now_ns:
        The venue's clock: every time the venue emits (the simulator's exchange clock).
    host_ns:
        The host's clock; request timestamps are accepted against either clock (they
        differ at speeds other than 1).
    """

    venue: ClassVar[str]
    """Venue name (its rejection spelling)."""
    order_paths: ClassVar[frozenset[tuple[str, str]]]
    """(method, path) of the REST requests that create orders (REST faults)."""

    def __init__(
        self,
        exchange: SimExchange,
        faults: FaultState,
        *,
        rate_limits: bool = True,
        now_ns: Callable[[], int] = time.time_ns,
        host_ns: Callable[[], int] = time.time_ns,
    ):
        self.exchange = exchange
        self.market = exchange.market
        self.faults = faults
        self.now_ns = now_ns
        self.host_ns = host_ns
        # the rows of exchange.rules (exchanges/<venue>/rules.py) that count order requests
        self.limiter = RequestLimiter(exchange.rules.rate_limits, enforce=rate_limits)
        self.connections: set[Connection] = set()
        #: venue requests received ("METHOD /path" -> count), admin routes aside
        self.requests: dict[str, int] = {}
        self.stream_faults = StreamFaulter(faults)
        self.natives = {self.to_native(s): s for s in self.market.symbols}
        self.market.wire_listeners.append(self.on_market)
        exchange.listeners.append(self.on_private)
        for inst in exchange.instruments.values():
            self.describe(inst)  # refuse instruments the venue cannot describe, at start

    # ------------------------------------------------------------------ protocol
    @staticmethod
    @abc.abstractmethod
    def to_native(symbol: str) -> str:
        """``"BTC/USDT"`` -> the venue's name."""

    @abc.abstractmethod
    def describe(self, inst: Instrument) -> dict[str, Any]:
        """The venue's description of an instrument (its symbol-rules answer)."""

    @abc.abstractmethod
    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register the venue's REST and WebSocket routes."""

    @abc.abstractmethod
    def on_market(self, event: MarketEvent) -> None:
        """Push a market event to the subscribed connections."""

    @abc.abstractmethod
    def on_private(self, update: PrivateUpdate) -> None:
        """Push an account's order, fill or balance update to its connections."""

    def middlewares(self) -> list[Middleware]:
        """The venue's own middlewares, outermost first (before faults and rejections)."""
        return []

    # ------------------------------------------------------------------ app
    def app(self) -> web.Application:
        """Build the application (routes, middlewares, admin)."""
        app = web.Application(
            middlewares=[
                self._settle,
                *self.middlewares(),
                fault_middleware(self.faults, self.order_paths),
                self._errors,
            ]
        )
        self.add_routes(app.router)
        add_admin_routes(app, self.exchange, self.market, self.faults, self.requests)
        app.on_shutdown.append(self._shutdown)
        return app

    @web.middleware
    async def _settle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count the request and bring transfers up to now before it is handled."""
        if not request.path.startswith("/_sim"):
            key = f"{request.method} {request.path}"
            self.requests[key] = self.requests.get(key, 0) + 1
        self.exchange.settle()
        return await handler(request)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except SimReject as e:
            return self._reject(e)

    def _reject(
        self,
        e: SimReject,
        headers: dict[str, str] | None = None,
        *,
        retry_after: float | None = None,
    ) -> web.Response:
        status, body, extra = reject_response(self.venue, e.kind, e.detail, retry_after=retry_after)
        return web.Response(
            body=body,
            status=status,
            headers={**extra, **(headers or {})},
            content_type="application/json",
        )

    async def _shutdown(self, app: web.Application) -> None:
        for conn in list(self.connections):
            await conn.close()
            await conn.ws.close()

    def drop_connections(self) -> None:
        """Fault ``drop_ws``: cut every WebSocket connection."""
        for conn in list(self.connections):
            conn.drop()

    # ------------------------------------------------------------------ helpers
    def clock_times_ns(self) -> tuple[int, ...]:
        """The times a request timestamp may be judged against: the exchange clock and,
        when it differs, the host's."""
        now, host = self.now_ns(), self.host_ns()
        return (now,) if abs(now - host) < 1_000_000 else (now, host)

    def _started(self, native: str | None, param: str) -> str:
        """The simulated symbol of the native name sent as ``param``."""
        if not native:
            raise SimReject(SimError.MISSING_PARAM, param)
        symbol = self.natives.get(native.upper())
        if symbol is None:
            raise SimReject(Rejection.INVALID_SYMBOL, native)
        return symbol
