"""What a paper / live / record session tells its operators while it runs: Prometheus
metrics (``prometheus_client``'s registry), the event stream behind ``/events``, one log
record per order state change, heartbeats and alerts.

:class:`Telemetry` is the engine's :class:`~arbsim.runtime.observe.RunObserver`
(requests, API failures, market messages, risk) and is told of orders, fills and
arbitrages by :class:`ObservedRecorder`, the journaling recorder of real-time runs: the
metrics are updated where the session records things anyway, and what is a state rather
than an event (PnL, exposure, open orders, book age, reconnects, venue health) is read
when ``/metrics`` is scraped. A backtest builds none of this.

The HTTP side (``/metrics``, ``/health``, ``/events``, the alert webhook) is
:mod:`arbsim.app.ops`; this module does not load aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
from prometheus_client import CollectorRegistry, Gauge, Histogram, Info
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from arbsim.app.alerts import REQUEST_KINDS, AlertConfig, Alerts
from arbsim.core.book import OrderBook
from arbsim.core.errors import VenueError
from arbsim.core.model import Fill, Order, OrderRequest, Trade
from arbsim.core.ports import VenueHealth
from arbsim.core.records import ArbRecord, TransferRecord
from arbsim.runtime.journal import Journal, JournalRecorder
from arbsim.runtime.risk import Denial

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from arbsim.runtime.engine import Engine

__all__ = [
    "EventHub",
    "HealthReport",
    "ObservedRecorder",
    "Subscription",
    "Telemetry",
    "health_report",
]

log = logging.getLogger("arbsim.ops")
orders_log = logging.getLogger("arbsim.orders")
heartbeat_log = logging.getLogger("arbsim.heartbeat")

#: request round trips, seconds
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: receipt of a market message -> delivered decoded and applied, seconds
DECODE_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.05, 0.25)
#: the venue's timestamp -> receipt, seconds (includes any clock difference)
FEED_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# -------------------------------------------------------------------- events
Event = tuple[int, str, bytes]
"""An event as kept and streamed: its sequence number, type and JSON."""


class Subscription:
    """One follower of the event stream: its own bounded queue. A follower that falls
    more than the queue behind is cut off (``overflowed``); it may reconnect from the
    last event it got."""

    def __init__(self, hub: EventHub, types: frozenset[str] | None, size: int) -> None:
        self.hub = hub
        self.types = types
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=size)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        if self.overflowed or (self.types is not None and event[1] not in self.types):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self.hub.unsubscribe(self)
            self._end()

    def _end(self) -> None:
        # make room for the end marker: the follower is gone anyway
        while self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def next(self) -> Event | None:
        """The next event ``(seq, type, JSON)``, or None when the stream ended."""
        return await self.queue.get()


class EventHub:
    """The session's events as JSON objects with a sequence number (``seq``), kept
    (the last ``keep``) so that a follower connecting late, or again, gets what it
    missed (``since``), then every new one as it happens."""

    def __init__(self, run_id: str = "", keep: int = 10_000, queue_size: int = 10_000) -> None:
        self.run_id = run_id
        self.seq = 0
        self.queue_size = queue_size
        self._kept: deque[Event] = deque(maxlen=max(1, keep))
        self._subs: set[Subscription] = set()
        self.closed = False
        self.counts: Counter[str] = Counter()

    def publish(self, etype: str, **fields: Any) -> dict[str, Any]:
        """Publish one event of type ``etype``; returns it."""
        self.seq += 1
        event: dict[str, Any] = {
            "seq": self.seq,
            "type": etype,
            "ts": time.time_ns(),
            "run_id": self.run_id,
            **fields,
        }
        item = (self.seq, etype, msgspec.json.encode(event, enc_hook=str))
        self._kept.append(item)
        self.counts[etype] += 1
        for sub in list(self._subs):
            sub.offer(item)
        return event

    def subscribe(self, since: int = 0, types: Iterable[str] | None = None) -> Subscription:
        """A follower getting every kept event after ``since`` (0: all kept), then live."""
        wanted = frozenset(types) if types is not None else None
        sub = Subscription(self, wanted, self.queue_size)
        for item in self._kept:
            if item[0] > since:
                sub.offer(item)
        if self.closed:
            sub._end()
        elif not sub.overflowed:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    @property
    def followers(self) -> int:
        return len(self._subs)

    def close(self) -> None:
        """End every follower's stream (the session is over)."""
        self.closed = True
        for sub in list(self._subs):
            sub._end()
        self._subs.clear()


# -------------------------------------------------------------------- health
class HealthReport(msgspec.Struct, kw_only=True):
    """``/health``: per venue market stream, private stream, REST and clock skew."""

    status: str
    healthy: bool
    run_id: str
    mode: str
    venues: dict[str, dict[str, Any]]


def health_report(
    health: Mapping[str, VenueHealth],
    *,
    max_skew_ms: float,
    run_id: str = "",
    mode: str = "",
    started: bool = True,
) -> HealthReport:
    """Each venue is healthy when its streams are up, its REST API answers and its
    clock is within ``max_skew_ms`` of ours (an unmeasured skew passes)."""
    venues: dict[str, dict[str, Any]] = {}
    for name, h in health.items():
        skew_ok = h.clock_skew_ms is None or abs(h.clock_skew_ms) <= max_skew_ms
        problems = [h.detail] if h.detail else []
        if not skew_ok:
            problems.append(f"clock skew {h.clock_skew_ms:.0f} ms > {max_skew_ms:g} ms")
        venues[name] = {
            "healthy": h.ok and h.rest and skew_ok,
            "market_stream": h.market,
            "private_stream": h.private,
            "rest": h.rest,
            "clock_skew_ms": None if h.clock_skew_ms is None else round(h.clock_skew_ms, 3),
            "clock_ok": skew_ok,
            "reconnects": h.reconnects,
            "resyncs": h.resyncs,
            "detail": "; ".join(problems),
        }
    healthy = started and bool(venues) and all(v["healthy"] for v in venues.values())
    status = "ok" if healthy else ("starting" if not started else "unhealthy")
    return HealthReport(status=status, healthy=healthy, run_id=run_id, mode=mode, venues=venues)


# -------------------------------------------------------------------- telemetry
@dataclass(frozen=True)
class _VenueMetrics:
    books: PromCounter
    trades: PromCounter
    decode: Histogram
    feed: Histogram


class Telemetry:
    """Metrics, events, order logs, heartbeats and alerts of one session."""

    def __init__(
        self,
        *,
        mode: str,
        run_id: str,
        alerts: AlertConfig | None = None,
        webhook: Callable[[dict[str, Any]], None] | None = None,
        max_skew_ms: float = 1000.0,
        events_kept: int = 10_000,
    ) -> None:
        self.mode = mode
        self.run_id = run_id
        self.max_skew_ms = max_skew_ms
        self.started = time.monotonic()
        self.events = EventHub(run_id, keep=events_kept)
        self.webhook = webhook
        self.alerts = Alerts(
            alerts or AlertConfig(), run_id=run_id, emit=self._alerted, raised=self._raised
        )
        #: venue -> its health now (the session's venues, or the recorder's feeds)
        self.health_of: dict[str, Callable[[], VenueHealth]] = {}
        self.engine: Engine | None = None
        #: the venues are started (set by the session; a run's engine being ready sets it)
        self.ready = False
        #: the session is ending: venues going down now are no news
        self.closing = False
        self._breaker = False
        self._last_health: dict[str, bool] = {}
        self._order_state: dict[str, tuple[str, Decimal]] = {}
        #: local receipt time of each venue's last market message
        self.last_message_ns: dict[str, int] = {}
        self.messages: Counter[str] = Counter()
        self._per_venue: dict[str, _VenueMetrics] = {}

        reg = self.registry = CollectorRegistry(auto_describe=True)
        Info("arbsim_run", "The session: mode and run id", registry=reg).info(
            {"mode": mode, "run_id": run_id}
        )
        self.m_messages = PromCounter(
            "arbsim_messages", "Market messages delivered, per venue and kind (book, trade)",
            ["venue", "kind"], registry=reg,
        )  # fmt: skip
        self.m_feed = Histogram(
            "arbsim_feed_latency_seconds",
            "Market message: the venue's timestamp to its receipt here (clock skew included)",
            ["venue"], buckets=FEED_BUCKETS, registry=reg,
        )  # fmt: skip
        self.m_decode = Histogram(
            "arbsim_decode_seconds",
            "Market message: receipt to delivery, decoded and applied to the book",
            ["venue"], buckets=DECODE_BUCKETS, registry=reg,
        )  # fmt: skip
        self.m_tick = Histogram(
            "arbsim_tick_to_order_seconds",
            "Arbitrage: the market data that showed the edge to the legs leaving "
            "(per buy venue)",
            ["venue"], buckets=LATENCY_BUCKETS, registry=reg,
        )  # fmt: skip
        self.m_request = Histogram(
            "arbsim_request_seconds", "API request round trips per venue and request kind",
            ["venue", "kind"], buckets=LATENCY_BUCKETS, registry=reg,
        )  # fmt: skip
        self.m_failures = PromCounter(
            "arbsim_request_failures",
            "API requests failed for a temporary reason (5xx, timeout, lost connection, "
            "rate limit, no answer to an order)",
            ["venue"], registry=reg,
        )  # fmt: skip
        self.m_orders = PromCounter(
            "arbsim_orders", "Orders of the session (the rows of orders.parquet)", ["venue"],
            registry=reg,
        )  # fmt: skip
        self.m_states = PromCounter(
            "arbsim_order_states", "Order state changes by the status reached",
            ["venue", "status"], registry=reg,
        )  # fmt: skip
        self.m_fills = PromCounter(
            "arbsim_fills", "Fills (the rows of fills.parquet)", ["venue", "liquidity"],
            registry=reg,
        )  # fmt: skip
        self.m_filled_quote = PromCounter(
            "arbsim_filled_quote", "Quote value filled (price x quantity)", ["venue"],
            registry=reg,
        )  # fmt: skip
        self.m_rejects = PromCounter(
            "arbsim_rejects", "Orders rejected, by the venue's (or arbsim's) code",
            ["venue", "code"], registry=reg,
        )  # fmt: skip
        self.m_arbs = PromCounter(
            "arbsim_arbs", "Arbitrage attempts by outcome (decided, then each outcome)",
            ["outcome"], registry=reg,
        )  # fmt: skip
        self.m_transfers = PromCounter(
            "arbsim_transfers", "Transfers between venues (requested, sent, arrived, failed)",
            ["source", "destination", "asset", "status"], registry=reg,
        )  # fmt: skip
        self.m_denials = PromCounter(
            "arbsim_risk_denials", "Risk gate denials by reason", ["reason"], registry=reg
        )
        self.m_breaker = Gauge(
            "arbsim_circuit_breaker", "1 once the circuit breaker tripped", registry=reg
        )
        self.m_alerts = PromCounter(
            "arbsim_alerts", "Alerts raised (sent or held back by the repeat limit)", ["alert"],
            registry=reg,
        )  # fmt: skip
        reg.register(_Sampled(self))

    # ------------------------------------------------------------ wiring
    def attach(self, engine: Engine) -> None:
        """The session's engine: its venues' health, PnL, exposure and open orders are
        read at each scrape and heartbeat."""
        self.engine = engine
        self.health_of = {name: venue.health for name, venue in engine.venues.items()}

    def health(self) -> dict[str, VenueHealth]:
        out: dict[str, VenueHealth] = {}
        for name, fn in self.health_of.items():
            try:
                out[name] = fn()
            except VenueError as e:  # a venue not started
                out[name] = VenueHealth(market=False, private=False, rest=False, detail=str(e))
        return out

    def _started(self) -> bool:
        engine = self.engine
        if engine is not None and not self.ready and engine.ready:
            self.ready = True
            if engine.risk.tripped and not self._breaker:  # resumed with the breaker tripped
                self.tripped(engine.risk.breaker_ts or 0, engine.risk.breaker_reason or "")
        if engine is not None and engine.stopping:
            self.closing = True
        return self.ready

    def report(self) -> HealthReport:
        return health_report(
            self.health(), max_skew_ms=self.max_skew_ms, run_id=self.run_id, mode=self.mode,
            started=self._started(),
        )  # fmt: skip

    def check_health(self) -> HealthReport:
        """Compare each venue's health with the last check: a venue going down or
        recovering is logged, published and (going down) alerted."""
        rep = self.report()
        if not self.ready or self.closing:
            return rep
        for name, v in rep.venues.items():
            was = self._last_health.get(name)
            now = bool(v["healthy"])
            self._last_health[name] = now
            if (was is None and now) or was == now:
                continue
            self.events.publish("health", venue=name, **v)
            if now:
                log.info("%s healthy again", name, extra={"venue": name, "event": "venue_up"})
            else:
                self.alerts.venue_down(name, v["detail"] or "unhealthy")
        return rep

    def _alerted(self, alert: dict[str, Any]) -> None:
        self.events.publish("alert", **alert)
        if self.webhook is not None:
            self.webhook(alert)

    # ------------------------------------------------------------ RunObserver
    def request(self, kind: str, venue: str, ts: int, latency_ns: int) -> None:
        seconds = max(0, latency_ns) / 1e9
        if kind == "tick_to_trade":
            self.m_tick.labels(venue).observe(seconds)
            return
        if kind in REQUEST_KINDS:
            self.m_request.labels(venue, kind).observe(seconds)
            self.alerts.request(kind, venue, latency_ns)

    def api_failure(self, venue: str, error: Exception) -> None:
        self.m_failures.labels(venue).inc()
        self.alerts.failure(venue, error)

    def _raised(self, name: str) -> None:
        self.m_alerts.labels(name).inc()

    def _market(self, venue: str) -> _VenueMetrics:
        """A venue's per-message metrics, their labels resolved once."""
        m = self._per_venue.get(venue)
        if m is None:
            m = self._per_venue[venue] = _VenueMetrics(
                books=self.m_messages.labels(venue, "book"),
                trades=self.m_messages.labels(venue, "trade"),
                decode=self.m_decode.labels(venue),
                feed=self.m_feed.labels(venue),
            )
        return m

    def book(self, venue: str, book: OrderBook) -> None:
        now = time.time_ns()
        m = self._market(venue)
        self.messages[venue] += 1
        self.last_message_ns[venue] = book.ts_local
        m.books.inc()
        m.decode.observe(max(0, now - book.ts_local) / 1e9)
        m.feed.observe(max(0, book.ts_local - book.ts_exchange) / 1e9)

    def trade(self, venue: str, trade: Trade) -> None:
        self.messages[venue] += 1
        self.last_message_ns[venue] = max(self.last_message_ns.get(venue, 0), trade.ts_local)
        self._market(venue).trades.inc()

    def denial(self, denial: Denial) -> None:
        self.m_denials.labels(denial.reason).inc()
        self.events.publish("risk", kind="denial", reason=denial.reason, detail=denial.detail,
                            at=denial.ts)  # fmt: skip
        log.debug("risk denied (%s): %s", denial.reason, denial.detail,
                  extra={"event": "risk_denial", "reason": denial.reason})  # fmt: skip

    def tripped(self, ts: int, reason: str) -> None:
        self._breaker = True
        self.m_breaker.set(1)
        self.events.publish("risk", kind="circuit_breaker", reason=reason, at=ts)
        self.alerts.breaker(ts, reason)

    # ------------------------------------------------------------ the recorder's events
    def order_new(self, order: Order) -> None:
        self.m_orders.labels(order.venue).inc()

    def order_state(self, order: Order, event: str) -> None:
        """``order`` as the records now hold it: one log record, metric and event when
        its status or filled quantity changed."""
        cid = order.client_order_id
        state = (order.status.value, order.filled_qty)
        if self._order_state.get(cid) == state:
            return
        self._order_state[cid] = state
        self.m_states.labels(order.venue, order.status.value).inc()
        fields: dict[str, Any] = {
            "client_order_id": cid,
            "order_id": order.order_id,
            "venue": order.venue,
            "symbol": order.symbol,
            "side": order.side.name.lower(),
            "status": order.status.value,
            "filled_qty": str(order.filled_qty),
            "qty": str(order.qty),
            "price": _dec(order.price),
            "reject_code": order.reject_code,
            "tag": order.tag,
        }
        self.events.publish("order", source=event, **fields)
        text = (
            f"order {cid} {order.side.name.lower()} {order.qty} @ {order.price or 'market'}: "
            f"{order.status.value}, filled {order.filled_qty}"
            + (f" ({order.reject_code})" if order.reject_code else "")
        )
        orders_log.info(text, extra={"event": "order", "source": event, **fields})

    def reject(self, venue: str, code: str) -> None:
        self.m_rejects.labels(venue, code).inc()

    def fill(self, fill: Fill) -> None:
        self.m_fills.labels(fill.venue, fill.liquidity).inc()
        self.m_filled_quote.labels(fill.venue).inc(float(fill.qty * fill.price))
        fields = {
            "venue": fill.venue,
            "symbol": fill.symbol,
            "client_order_id": fill.client_order_id,
            "order_id": fill.order_id,
            "trade_id": fill.trade_id,
            "side": fill.side.name.lower(),
            "price": str(fill.price),
            "qty": str(fill.qty),
            "fee": str(fill.fee),
            "fee_asset": fill.fee_asset,
            "liquidity": fill.liquidity,
            "ts_exchange": fill.ts_exchange,
            "ts_local": fill.ts_local,
        }
        self.events.publish("fill", **fields)
        orders_log.info(
            f"fill {fill.trade_id} of {fill.client_order_id}: {fill.side.name.lower()} "
            f"{fill.qty} @ {fill.price} ({fill.liquidity})",
            extra={"event": "fill", **fields},
        )

    def arb(self, event: str, rec: ArbRecord) -> None:
        outcome = "decided" if event == "started" else rec.outcome
        self.m_arbs.labels(outcome).inc()
        fields = msgspec.to_builtins(rec)
        self.events.publish("arbitrage", event=event, **fields)
        if event == "finished":
            log.info(
                f"arbitrage {rec.arb_id} {rec.symbol} buy {rec.buy_venue} sell "
                f"{rec.sell_venue}: {rec.outcome}, pnl {rec.realized_pnl:.6f}",
                extra={"event": "arbitrage", "arb_id": rec.arb_id, "outcome": rec.outcome,
                       "symbol": rec.symbol, "realized_pnl": rec.realized_pnl,
                       "expected_pnl": rec.expected_pnl},
            )  # fmt: skip

    def transfer(self, rec: TransferRecord, status: str) -> None:
        """A transfer between venues was asked for, sent, arrived or failed."""
        self.m_transfers.labels(rec.venue, rec.destination, rec.asset, status).inc()
        self.events.publish("transfer", **msgspec.to_builtins(rec))
        log.info(
            f"transfer {rec.client_id} {rec.amount} {rec.asset} {rec.venue} -> "
            f"{rec.destination} over {rec.network}: {status}"
            + (f" after {rec.delay_s:.3f}s" if status == "arrived" else "")
            + (f" ({rec.reason})" if status == "failed" else ""),
            extra={"event": "transfer", "client_id": rec.client_id, "status": status,
                   "venue": rec.venue, "destination": rec.destination, "asset": rec.asset,
                   "amount": rec.amount, "fee": rec.fee},
        )  # fmt: skip

    # ------------------------------------------------------------ heartbeat
    def book_age_ms(self) -> dict[str, float | None]:
        """Per venue, how long ago its last market message was received."""
        now = time.time_ns()
        names = list(self.health_of) or list(self.last_message_ns)
        out: dict[str, float | None] = {}
        for name in names:
            last = self.last_message_ns.get(name)
            out[name] = None if last is None else round(max(0, now - last) / 1e6, 1)
        return out

    def snapshot(self) -> dict[str, Any]:
        """What a heartbeat says: PnL, attempts and outcomes, open orders, book age and
        reconnects per venue, risk state."""
        health = self.health()
        self._started()
        down = [] if self.closing else [n for n, h in health.items() if not (h.ok and h.rest)]
        out: dict[str, Any] = {
            "uptime_s": round(time.monotonic() - self.started, 1),
            "messages": dict(self.messages),
            "book_age_ms": self.book_age_ms(),
            "reconnects": {n: h.reconnects for n, h in health.items()},
            "venues_down": sorted(down),
        }
        engine = self.engine
        if engine is not None:
            if engine.ledger.start:
                net, fees, gross = engine.pnl()
                out["pnl"] = {
                    "net": round(net, 6), "gross": round(gross, 6), "fees": round(fees, 6)
                }  # fmt: skip
            outcomes = Counter(a.outcome for a in engine.recorder.arbs)
            out["arbs"] = {"decisions": len(engine.recorder.arbs), **dict(sorted(outcomes.items()))}
            out["open_orders"] = engine.risk.open_orders
            out["orders"] = len(engine.recorder.orders())
            out["fills"] = len(engine.recorder.fills)
            out["risk"] = {
                "circuit_breaker": engine.risk.breaker_reason,
                "denials": dict(engine.risk.counts),
                "blocked": sorted(engine.risk.blocked),
            }
        return out

    def heartbeat(self) -> dict[str, Any]:
        """Log (INFO) and publish one heartbeat."""
        snap = self.snapshot()
        self.events.publish("heartbeat", **snap)
        heartbeat_log.info(format_heartbeat(snap), extra={"event": "heartbeat", **snap})
        return snap


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} ms"


def format_heartbeat(s: Mapping[str, Any]) -> str:
    """A heartbeat as one line."""
    parts = [f"up {s['uptime_s']:.0f}s"]
    if "pnl" in s:
        p = s["pnl"]
        parts.append(f"pnl net {p['net']:.4f} (gross {p['gross']:.4f}, fees {p['fees']:.4f})")
    if "arbs" in s:
        arbs = dict(s["arbs"])
        decisions = arbs.pop("decisions")
        outcomes = ", ".join(f"{k} {v}" for k, v in arbs.items()) or "none"
        parts.append(f"arbs {decisions} ({outcomes})")
        parts.append(f"orders {s['orders']} ({s['open_orders']} open), fills {s['fills']}")
    parts.append("book age " + (", ".join(f"{k} {_ms(v)}" for k, v in s["book_age_ms"].items())
                                or "-"))  # fmt: skip
    parts.append("reconnects " + (", ".join(f"{k} {v}" for k, v in s["reconnects"].items())
                                  or "-"))  # fmt: skip
    if s.get("venues_down"):
        parts.append("DOWN: " + ", ".join(s["venues_down"]))
    if "risk" in s:
        r = s["risk"]
        risk = "BREAKER TRIPPED: " + r["circuit_breaker"] if r["circuit_breaker"] else "ok"
        denials = ", ".join(f"{k} {v}" for k, v in r["denials"].items())
        parts.append(f"risk {risk}" + (f", denials {denials}" if denials else ""))
    return "heartbeat: " + " | ".join(parts)


class _Sampled(Collector):
    """The gauges read at scrape time: PnL, positions and exposure, open orders, book
    age, venue health, clock skew, reconnects and resyncs."""

    def __init__(self, t: Telemetry) -> None:
        self.t = t

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        t = self.t
        age = GaugeMetricFamily(
            "arbsim_book_age_seconds", "Time since the venue's last market message",
            labels=["venue"],
        )  # fmt: skip
        for name, ms in t.book_age_ms().items():
            if ms is not None:
                age.add_metric([name], ms / 1e3)
        yield age
        up = GaugeMetricFamily(
            "arbsim_venue_up", "1 when the part (market, private, rest) of the venue is up",
            labels=["venue", "part"],
        )  # fmt: skip
        skew = GaugeMetricFamily(
            "arbsim_clock_skew_seconds", "The venue's clock minus ours (REST server time)",
            labels=["venue"],
        )  # fmt: skip
        reconnects = CounterMetricFamily(
            "arbsim_reconnects", "Stream connections lost (each followed by a reconnect)",
            labels=["venue"],
        )  # fmt: skip
        resyncs = CounterMetricFamily(
            "arbsim_resyncs", "Books synchronised again (gap, crossed book, malformed message)",
            labels=["venue"],
        )  # fmt: skip
        for name, h in t.health().items():
            for part, ok in (("market", h.market), ("private", h.private), ("rest", h.rest)):
                up.add_metric([name, part], 1.0 if ok else 0.0)
            if h.clock_skew_ms is not None:
                skew.add_metric([name], h.clock_skew_ms / 1e3)
            reconnects.add_metric([name], h.reconnects)
            resyncs.add_metric([name], h.resyncs)
        yield from (up, skew, reconnects, resyncs)
        followers = GaugeMetricFamily("arbsim_event_followers", "Clients following /events")
        followers.add_metric([], t.events.followers)
        yield followers
        engine = t.engine
        if engine is None:
            return
        open_orders = GaugeMetricFamily("arbsim_open_orders", "Orders of the session open now")
        open_orders.add_metric([], engine.risk.open_orders)
        yield open_orders
        if not engine.ledger.start:
            return
        net, fees, gross = engine.pnl()
        pnl = GaugeMetricFamily(
            "arbsim_pnl_quote", "Running PnL in quote currency (net = gross - fees)",
            labels=["kind"],
        )  # fmt: skip
        for kind, value in (("net", net), ("gross", gross), ("fees", fees)):
            pnl.add_metric([kind], value)
        yield pnl
        marks, _ = engine.marks()
        position = GaugeMetricFamily(
            "arbsim_position", "Net position per asset over every venue (base units)",
            labels=["asset"],
        )  # fmt: skip
        exposure = GaugeMetricFamily(
            "arbsim_exposure_quote", "Absolute position per asset valued at the mid (quote)",
            labels=["asset"],
        )  # fmt: skip
        total = 0.0
        for asset in sorted(marks):
            pos = float(engine.ledger.position(asset))
            position.add_metric([asset], pos)
            value = abs(pos) * marks[asset]
            exposure.add_metric([asset], value)
            total += value
        yield position
        yield exposure
        total_exposure = GaugeMetricFamily(
            "arbsim_exposure_total_quote", "Total absolute exposure (quote)"
        )
        total_exposure.add_metric([], total)
        yield total_exposure


class ObservedRecorder(JournalRecorder):
    """The journaling recorder of a real-time run, telling :class:`Telemetry` of every
    order, order state change, rejection, fill and arbitrage after it is journalled."""

    def __init__(self, journal: Journal, telemetry: Telemetry) -> None:
        super().__init__(journal)
        self.telemetry = telemetry

    def _known(self, client_order_id: str) -> bool:
        return self.order(client_order_id) is not None

    def order_sent(self, req: OrderRequest, ts: int) -> None:
        new = not self._known(req.client_order_id)
        super().order_sent(req, ts)
        order = self.order(req.client_order_id)
        if order is not None:
            if new:
                self.telemetry.order_new(order)
            self.telemetry.order_state(order, "sent")

    def order_rejected(self, req: OrderRequest, ts: int, err: VenueError) -> None:
        before = dict(self.rejections)
        super().order_rejected(req, ts, err)
        for key, n in self.rejections.items():
            if n != before.get(key, 0):
                venue, _, code = key.partition(":")
                self.telemetry.reject(venue, code)
        order = self.order(req.client_order_id)
        if order is not None:
            self.telemetry.order_state(order, "rejected")

    def order_update(self, order: Order, ts: int) -> None:
        new = not self._known(order.client_order_id)
        super().order_update(order, ts)
        if new:
            self.telemetry.order_new(order)
        self.telemetry.order_state(order, "update")

    def fill(self, fill: Fill) -> None:
        super().fill(fill)
        self.telemetry.fill(fill)

    def arb_started(self, rec: ArbRecord) -> None:
        super().arb_started(rec)
        self.telemetry.arb("started", rec)

    def arb_finished(self, rec: ArbRecord) -> None:
        super().arb_finished(rec)
        self.telemetry.arb("finished", rec)

    def transfer_requested(self, rec: TransferRecord) -> None:
        super().transfer_requested(rec)
        self.telemetry.transfer(rec, "requested")

    def transfer_update(self, rec: TransferRecord) -> None:
        super().transfer_update(rec)
        self.telemetry.transfer(rec, rec.status)
