"""The client's view of its orders: REST answers and private pushes merged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

from arbsim.core.errors import OutcomeUnknown, VenueError
from arbsim.core.model import Fill, Order, OrderRequest, OrderStatus


class OrderTracker:
    """The client's view of its orders on one venue, fed by REST answers and pushes.

    Pushes and REST answers race (a fill can be pushed before the place request returns,
    an order's "canceled" before its last fill), so:

    * an order is registered (NEW) *before* its request is sent;
    * any sign of life from the venue moves it to ACCEPTED first;
    * fills are de-duplicated by trade id and drive PARTIALLY_FILLED / FILLED;
    * a terminal state reported while fills are still missing is held back until they
      arrive (or a REST reconciliation supplies them).

    Every change is handed to ``on_order`` as an independent snapshot.
    """

    def __init__(self, venue: str, clock: Callable[[], int] = time.time_ns) -> None:
        self.venue = venue
        self.clock = clock
        self.on_order: Callable[[Order], None] | None = None
        self.orders: dict[str, Order] = {}
        self._by_order_id: dict[str, str] = {}
        self._trades: dict[str, set[str]] = {}
        self._held: dict[str, tuple[OrderStatus, Decimal]] = {}
        self._closed: dict[str, asyncio.Event] = {}

    # ---------------------------------------------------------------- lookup
    def get(self, client_order_id: str) -> Order | None:
        """The tracked order, if any."""
        return self.orders.get(client_order_id)

    def client_id(self, order_id: str, client_order_id: str = "") -> str | None:
        """Resolve a push to a tracked client id (by client id, else by venue id)."""
        if client_order_id and client_order_id in self.orders:
            return client_order_id
        return self._by_order_id.get(order_id)

    def snapshot(self, client_order_id: str) -> Order:
        """An independent copy of a tracked order."""
        return self.orders[client_order_id].snapshot()

    # ---------------------------------------------------------------- lifecycle
    def register(self, req: OrderRequest) -> Order:
        """Track a new order (NEW) before its request leaves."""
        order = Order.from_request(req, self.clock())
        self.orders[req.client_order_id] = order
        self._trades[req.client_order_id] = set()
        self._closed[req.client_order_id] = asyncio.Event()
        return order

    def adopt(self, order: Order) -> None:
        """Track an order learnt from the venue (e.g. placed before a restart)."""
        cid = order.client_order_id
        if cid and cid not in self.orders:
            self.orders[cid] = order
            self._trades[cid] = {f.trade_id for f in order.fills}
            self._closed[cid] = asyncio.Event()
            if order.order_id:
                self._by_order_id[order.order_id] = cid
            if not order.is_open:
                self._closed[cid].set()

    def accepted(self, client_order_id: str, order_id: str, ts: int = 0) -> None:
        """The venue acknowledged the order under ``order_id``."""
        order = self.orders[client_order_id]
        if order_id:
            order.order_id = order_id
            self._by_order_id[order_id] = client_order_id
        if order.status is OrderStatus.NEW:
            now = ts or self.clock()
            order.ts_accepted = now
            order.transition(OrderStatus.ACCEPTED, now)
            self._notify(order)

    def rejected(self, client_order_id: str, error: VenueError) -> None:
        """The venue refused the order."""
        order = self.orders[client_order_id]
        if order.status is OrderStatus.NEW:
            order.reject_code = error.code or ""
            order.reject_reason = str(error.args[0]) if error.args else ""
            order.transition(OrderStatus.REJECTED, self.clock())
            self._closed[client_order_id].set()
            self._notify(order)

    def fill(self, client_order_id: str, fill: Fill) -> bool:
        """Apply one fill (ignored when its trade id was seen). Returns True if applied."""
        order = self.orders[client_order_id]
        seen = self._trades[client_order_id]
        if fill.trade_id in seen or (not order.is_open and order.status is not OrderStatus.NEW):
            return False
        if order.status is OrderStatus.NEW:
            self.accepted(client_order_id, fill.order_id, fill.ts_local)
        seen.add(fill.trade_id)
        order.apply_fill(fill)
        held = self._held.get(client_order_id)
        if held is not None and order.filled_qty >= held[1] and order.is_open:
            del self._held[client_order_id]
            order.transition(held[0], fill.ts_local)
        if not order.is_open:
            self._closed[client_order_id].set()
        self._notify(order)
        return True

    def finished(
        self, client_order_id: str, status: OrderStatus, filled_qty: Decimal, ts: int = 0
    ) -> None:
        """The venue says the order ended (CANCELED / EXPIRED) with ``filled_qty`` filled."""
        order = self.orders[client_order_id]
        if not order.is_open:
            return
        if order.status is OrderStatus.NEW:
            self.accepted(client_order_id, order.order_id, ts)
        if status is OrderStatus.FILLED or order.filled_qty < filled_qty:
            # FILLED follows from the fills; a cancel waits for the fills it reports.
            if status is not OrderStatus.FILLED:
                self._held[client_order_id] = (status, filled_qty)
            return
        order.transition(status, ts or self.clock())
        self._closed[client_order_id].set()
        self._notify(order)

    def reconcile(self, remote: Order, fills: Sequence[Fill]) -> Order:
        """Merge a REST view of an order (and its fills) into the tracked one."""
        cid = remote.client_order_id
        if cid not in self.orders:
            self.adopt(remote)
            return remote.snapshot()
        if remote.status is not OrderStatus.NEW:
            self.accepted(cid, remote.order_id)
        for f in sorted(fills, key=lambda f: (f.ts_exchange, f.trade_id)):
            self.fill(cid, f)
        if remote.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED):
            self.finished(cid, remote.status, remote.filled_qty)
        return self.snapshot(cid)

    async def wait_closed(self, client_order_id: str, timeout_s: float) -> bool:
        """Wait until the order is terminal; False on timeout."""
        event = self._closed[client_order_id]
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def _notify(self, order: Order) -> None:
        if self.on_order is not None:
            self.on_order(order.snapshot())


async def place_tracked(
    tracker: OrderTracker,
    req: OrderRequest,
    send: Callable[[], Awaitable[tuple[str, bool]]],
    *,
    settle: bool,
    settle_timeout_s: float,
) -> Order | None:
    """Send a new order through ``send`` with the tracker's bookkeeping around it.

    ``send`` returns the venue's order id and whether the venue answered with the order
    already finished (Gate returns a filled order's final state; its fills come as
    pushes, so the answer waits for them too).

    The order is tracked (NEW) before it leaves; a rejection is recorded and re-raised;
    an unknown outcome stays NEW (a push or a query will tell). With ``settle`` (IOC,
    FOK, market: orders that end at once) the answer waits for the order's final state;
    ``None`` means it did not come within ``settle_timeout_s`` and the caller should
    query the order.
    """
    tracker.register(req)
    try:
        order_id, finished = await send()
    except OutcomeUnknown:
        raise
    except VenueError as exc:
        tracker.rejected(req.client_order_id, exc)
        raise
    tracker.accepted(req.client_order_id, order_id)
    settle = settle or finished
    if settle and not await tracker.wait_closed(req.client_order_id, settle_timeout_s):
        return None
    return tracker.snapshot(req.client_order_id)


async def reconcile_remote(
    tracker: OrderTracker,
    remote: Order,
    client_order_id: str,
    fetch_fills: Callable[[], Awaitable[list[Fill]]],
) -> Order:
    """Merge a REST view of an order into the tracker, fetching its trades only when the
    venue reports more filled than the tracker has seen. An order the tracker does not
    know is rebuilt from those trades (its fills, quantities and fees)."""
    if not remote.client_order_id:
        remote.client_order_id = client_order_id
    tracked = tracker.get(client_order_id)
    have = tracked.filled_qty if tracked else Decimal(0)
    fills = await fetch_fills() if remote.filled_qty > have else []
    if tracked is None:
        remote.filled_qty = remote.quote_qty = remote.fee = Decimal(0)
        for f in fills:
            remote.fills.append(f)
            remote.filled_qty += f.qty
            remote.quote_qty += f.qty * f.price
            remote.fee += f.fee
            remote.fee_asset = f.fee_asset
    return tracker.reconcile(remote, fills)
