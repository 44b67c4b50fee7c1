"""The engine: delivers market data and order updates to the strategy, and runs a backtest
or a real-time session.

The same :class:`Engine` drives a backtest (virtual-time loop, replay sources merged
by timestamp) and real-time modes (normal loop, venues pushing data). Strategy code
sees only :class:`Context`, whose clock is the engine's.
"""

from __future__ import annotations

import asyncio
import heapq
import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, Literal

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.errors import (
    ConfigError,
    OrderNotFound,
    OrderNotPlaced,
    StrategyError,
    VenueError,
)
from arbsim.core.model import ZERO, Order, OrderRequest, Trade, to_decimal
from arbsim.core.ports import END, Clock, ReplaySource, ReplayVenue, Venue
from arbsim.runtime import stats
from arbsim.runtime.context import Context
from arbsim.runtime.journal import JournalState
from arbsim.runtime.latency import LatencyRecorder
from arbsim.runtime.ledger import Ledger
from arbsim.runtime.loop import VirtualTimeLoop
from arbsim.runtime.observe import ObservedLatency, RunObserver
from arbsim.runtime.recorder import RunRecorder
from arbsim.runtime.risk import RiskLimits, RiskManager
from arbsim.runtime.strategy import Strategy
from arbsim.runtime.transfers import TransferDesk


class Engine:
    """Owns the loop, the venues, risk, ledger and records; delivers data to the strategy."""

    def __init__(
        self,
        *,
        strategy: Strategy,
        venues: dict[str, Venue],
        symbols: dict[str, list[str]],
        loop: asyncio.AbstractEventLoop,
        clock: Clock,
        risk_limits: RiskLimits,
        recorder: RunRecorder,
        equity_interval_s: float = 1.0,
        id_prefix: str = "x",
        resume: JournalState | None = None,
        resume_open_orders: Literal["cancel", "adopt"] = "cancel",
        shutdown_s: float = 90.0,
        observer: RunObserver | None = None,
        reference_replay: bool = False,
    ):
        self.strategy = strategy
        self.venues = venues
        self.symbols = symbols
        self.loop = loop
        self.clock = clock
        #: the operations layer of a real-time run (None in a backtest: no work for it)
        self.observer = observer
        #: a backtest replays on the straightforward path (every source in the merge,
        #: message by message, books updated by the Python book): the reference the fast
        #: path is tested against, byte for byte
        self.reference_replay = reference_replay
        self.risk = RiskManager(risk_limits, listener=observer)
        self.ledger = Ledger()
        self.latency = LatencyRecorder() if observer is None else ObservedLatency(observer)
        self.recorder = recorder
        self.equity_interval_s = equity_interval_s
        self.id_prefix = id_prefix
        #: transfers between the venues (sent, followed and recorded)
        self.transfers = TransferDesk(self)
        self.ctx = Context(self)
        self.ready = False
        self.stopping = False
        self.failure: BaseException | None = None
        self.events = 0
        self.messages = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        #: (venue, symbol, trade id) of every fill counted: venues number trades per symbol
        self._fills_seen: set[tuple[str, str, str]] = set()
        self._open_ids: set[str] = set()
        self.cancelled: list[str] = []
        #: orders whose outcome is still unknown (client order id -> request)
        self.unresolved: dict[str, OrderRequest] = {}
        self._resolvers: set[asyncio.Task[None]] = set()
        self.shutdown_errors: list[str] = []
        #: how long the shutdown may take to learn unknown outcomes and cancel orders
        self.shutdown_s = shutdown_s
        #: what an earlier process of this run left (``--resume``), reconciled at start
        self._resume = resume
        self.resume_open_orders = resume_open_orders
        self.resumed: dict[str, Any] = {}
        self._prefixes = [id_prefix, *(resume.prefixes if resume is not None else [])]
        self._risk_state = self.risk.state()
        #: each asset's first mark of the run (the starting inventory's entry price)
        self.first_marks: dict[str, float] = {}

    # ---------------------------------------------------------------- MarketSink
    def on_book(self, venue: str, book: OrderBook) -> None:
        self.latency.feed(venue, book.ts_exchange, book.ts_local)
        if self.ready:
            try:
                self.strategy.on_book(self.ctx, venue, book)
            except Exception as e:
                raise StrategyError(f"{self.strategy.name}.on_book raised {e!r}") from e

    def on_trade(self, venue: str, trade: Trade) -> None:
        if self.ready:
            try:
                self.strategy.on_trade(self.ctx, venue, trade)
            except Exception as e:
                raise StrategyError(f"{self.strategy.name}.on_trade raised {e!r}") from e

    def on_order(self, order: Order) -> None:
        """An order changed: fills not applied yet go to the ledger and the records (each
        fill once, however many times the venue reports it), then the strategy is told."""
        fresh = [
            f
            for f in order.fills
            if (order.venue, order.symbol, f.trade_id) not in self._fills_seen
        ]
        if fresh:
            inst = self.venues[order.venue].instrument(order.symbol)
            for fill in fresh:
                self._fills_seen.add((order.venue, order.symbol, fill.trade_id))
                self.ledger.apply(inst, fill)
                self.recorder.fill(fill)
        self.recorder.order_update(order, self.clock.now_ns())
        if not order.is_open:
            self.order_closed(order.client_order_id)
        try:
            self.strategy.on_order(self.ctx, order)
        except Exception as e:
            raise StrategyError(f"{self.strategy.name}.on_order raised {e!r}") from e

    def merge_order(self, order: Order) -> None:
        """An order read back from the venue: handled as an update when it tells more
        than the records hold (new fills or a new status)."""
        known = self.recorder.order(order.client_order_id)
        if (
            known is None
            or known.status is not order.status
            or known.filled_qty != order.filled_qty
            or any(
                (order.venue, order.symbol, f.trade_id) not in self._fills_seen for f in order.fills
            )
        ):
            self.on_order(order)

    # ---------------------------------------------------------------- venue health
    def api_failure(self, venue: str, ts: int, error: Exception) -> None:
        self.risk.api_failure(venue, ts)
        if self.observer is not None:
            self.observer.api_failure(venue, error)

    def order_unresolved(self, req: OrderRequest, cause: Exception) -> None:
        """No answer and no record yet: close the venue to new entries and keep asking
        in the background until the venue says what became of the order."""
        cid = req.client_order_id
        self.unresolved[cid] = req
        self.risk.block(req.venue, cid, f"order {cid} outcome unknown ({cause})")
        task = self.loop.create_task(self._resolve_later(req), name=f"resolve-{cid}")
        self._resolvers.add(task)
        task.add_done_callback(self._resolvers.discard)

    async def _resolve_later(self, req: OrderRequest, interval_s: float = 1.0) -> None:
        cid = req.client_order_id
        venue = self.venues[req.venue]
        sent = self.recorder.sent_at(cid)
        while cid in self.unresolved:
            await asyncio.sleep(interval_s)
            try:
                order = await self.ctx.fetch_order(req.venue, req.symbol, cid)
            except OrderNotFound:
                if self.clock.now_ns() - sent < venue.order_expiry_ns:
                    continue
                self.recorder.order_rejected(
                    req, self.clock.now_ns(), OrderNotPlaced("never placed", code="not_placed")
                )
                self.order_closed(cid)
            except VenueError:
                continue
            else:
                self.merge_order(order)
            self.unresolved.pop(cid, None)
            self.risk.unblock(req.venue, cid)

    # ---------------------------------------------------------------- open orders
    def order_opened(self, client_order_id: str) -> None:
        self._open_ids.add(client_order_id)
        self.risk.open_orders = len(self._open_ids)

    def order_closed(self, client_order_id: str) -> None:
        self._open_ids.discard(client_order_id)
        self.risk.open_orders = len(self._open_ids)

    # ---------------------------------------------------------------- tasks
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        task = self.loop.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and self.failure is None:
            self.failure = exc

    def guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as e:
            if self.failure is None:
                self.failure = e

    def _check_failure(self) -> None:
        if self.failure is not None:
            exc = self.failure
            if isinstance(exc, StrategyError):
                raise exc
            raise StrategyError(f"strategy task failed: {exc!r}") from exc

    # ---------------------------------------------------------------- lifecycle
    async def _startup(self) -> None:
        if self._resume is not None:
            await self._recover(self._resume)
        else:
            names = list(self.venues)
            fresh = await asyncio.gather(*(self.ctx.fetch_balances(n) for n in names))
            for bal in fresh:
                self.ledger.set_start(bal)
            self.recorder.start_balances(self.ledger.start)
        await self.strategy.on_start(self.ctx)
        if self._resume is not None:
            inflight = [a for a in self.recorder.arbs if a.arb_id not in self._resume.finished]
            self.resumed["arbs_in_flight"] = [a.arb_id for a in inflight]
            if inflight:
                await self.strategy.on_resume(self.ctx, inflight)
        self.ready = True
        self.ctx.every(self.equity_interval_s, self.sample_equity)
        self.sample_equity()

    async def _recover(self, state: JournalState) -> None:
        """Take the run back from its journal and reconcile it with every venue before
        trading: the ledger from the start balances and every journalled fill, the risk
        gate's state, then each order the journal does not know as final is read back
        (fills made while the process was down reach the ledger), resting orders of the
        run are cancelled or adopted, and the balances are compared."""
        for venue, start in state.start.items():
            self.ledger.start[venue] = dict(start)
            self.ledger.balances[venue].update(start)
        for fill in state.fills:
            key = (fill.venue, fill.symbol, fill.trade_id)
            if fill.venue in self.venues and key not in self._fills_seen:
                self._fills_seen.add(key)
                self.ledger.apply(self.venues[fill.venue].instrument(fill.symbol), fill)
        self.recorder.restore(state.orders, state.fills, state.arbs, state.equity)
        self.transfers.restore(state.transfers, follow=True)
        self.risk.restore(state.risk)
        self._risk_state = self.risk.state()
        report: dict[str, Any] = {
            "orders_in_journal": len(state.orders),
            "fills_in_journal": len(state.fills),
        }
        if state.transfers:
            report["transfers_in_journal"] = len(state.transfers)
        fills_before = len(self.recorder.fills)
        read_back: list[str] = []
        not_placed: list[str] = []
        for row in state.orders:
            order = row.order
            if not order.is_open or order.venue not in self.venues:
                continue
            self.order_opened(order.client_order_id)
            try:
                fresh = await self.ctx.fetch_order(order.venue, order.symbol, order.client_order_id)
            except OrderNotFound:
                # journalled before it was sent: the crash came first, or it never arrived
                req = order.request()
                self.recorder.order_rejected(
                    req, self.clock.now_ns(), OrderNotPlaced("not at the venue", code="not_placed")
                )
                self.order_closed(order.client_order_id)
                not_placed.append(order.client_order_id)
                continue
            read_back.append(fresh.client_order_id)
        handled: list[str] = []
        for name in self.venues:
            for order in await self.ctx.open_orders(name, record=False):
                if not self.placed_here(order.client_order_id):
                    continue
                self.merge_order(order)
                if self.resume_open_orders == "cancel":
                    await self.ctx.cancel_order(name, order.symbol, order.client_order_id)
                else:
                    self.order_opened(order.client_order_id)
                handled.append(f"{name}:{order.client_order_id}")
        differences = {}
        for name in self.venues:
            fresh_bal = await self.ctx.fetch_balances(name, record=False)
            diff = self.ledger.reconcile(fresh_bal)
            if diff:
                differences[name] = diff
        report.update(
            orders_read_back=read_back,
            orders_never_placed=not_placed,
            fills_found_after_the_crash=len(self.recorder.fills) - fills_before,
            **{f"open_orders_{self.resume_open_orders}ed": handled},
            balance_differences=differences,
            risk=msgspec.to_builtins(self._risk_state),
        )
        self.resumed = report

    def marks(self) -> tuple[dict[str, float], str]:
        """Mid prices per base asset (from the first venue that has a book) and the quote."""
        marks: dict[str, float] = {}
        quote = ""
        for venue, symbols in self.symbols.items():
            for sym in symbols:
                inst = self.venues[venue].instrument(sym)
                quote = quote or inst.quote
                if inst.base not in marks:
                    mid = self.venues[venue].book(sym).mid
                    if mid is not None:
                        marks[inst.base] = mid
        return marks, quote

    def pnl(self) -> tuple[float, float, float]:
        """``(net, fees, gross)`` in quote: today's balances minus the start's, same marks."""
        marks, quote = self.marks()
        net = self.ledger.value(marks, quote) - self.ledger.value(marks, quote, which="start")
        fees = 0.0
        for per_asset in self.ledger.fees.values():
            for asset, fee in per_asset.items():
                fees += float(fee) * (1.0 if asset == quote else marks.get(asset, 0.0))
        # withdrawal fees are fees too
        for per_asset in self.ledger.transfer_fees.values():
            for asset, fee in per_asset.items():
                fees += float(fee) * (1.0 if asset == quote else marks.get(asset, 0.0))
        return net, fees, net + fees

    def pnl_exact(self) -> tuple[Decimal, Decimal]:
        """``(ledger net, arbs' net)`` in quote, exact, both at the ledger's marks: the
        change of every balance since the start, and the sum of each arbitrage's exact
        flows (fees included). They agree when every fill belongs to an arbitrage."""
        marks, quote = self.marks()
        dec = {a: to_decimal(m) for a, m in marks.items()}
        dec[quote] = Decimal(1)
        net = ZERO
        for venue, bal in self.ledger.balances.items():
            start = self.ledger.start.get(venue, {})
            for asset in set(bal) | set(start):
                delta = bal.get(asset, ZERO) - start.get(asset, ZERO)
                net += delta * dec.get(asset, ZERO)
        for _, asset, amount in self.ledger.in_flight.values():
            net += amount * dec.get(asset, ZERO)  # still the run's, between two venues
        arbs = ZERO
        for rec in self.recorder.arbs:
            base = rec.symbol.partition("/")[0]
            arbs += Decimal(rec.quote_flow) + Decimal(rec.base_flow) * dec.get(base, ZERO)
        return net, arbs

    def session_stats(self) -> dict[str, Any]:
        """The run's statistics (:mod:`arbsim.runtime.stats`): PnL curve, arbitrages,
        turnover, inventory drift, and positions per venue and asset."""
        marks, quote = self.marks()
        for asset, mark in marks.items():
            self.first_marks.setdefault(asset, mark)
        start_marks = {a: to_decimal(m) for a, m in self.first_marks.items()}
        capital = self.ledger.value(self.first_marks, quote, which="start")
        net_exact, arbs_exact = self.pnl_exact()
        samples = self.recorder.equity_samples()
        curve = stats.curve_stats(
            [int(e["ts"]) for e in samples], [float(e["net_pnl"]) for e in samples], capital
        )
        arbs = stats.arb_stats(
            stats.ArbResult(
                traded=Decimal(a.buy_filled) > 0 or Decimal(a.sell_filled) > 0,
                pnl=a.realized_pnl,
                expected_pnl=a.expected_pnl,
                expected_edge_bps=a.expected_edge_bps,
                realized_edge_bps=a.realized_edge_bps,
            )
            for a in self.recorder.arbs
        )
        fills = self.recorder.fills
        notional = sum((f.price * f.qty for f in fills), ZERO)
        assets: dict[tuple[str, str], tuple[str, str]] = {}
        for venue, symbols in self.symbols.items():
            for sym in symbols:
                inst = self.venues[venue].instrument(sym)
                assets[venue, sym] = (inst.base, inst.quote)
        held = stats.positions(
            self.ledger.start,
            ((f, *assets[f.venue, f.symbol]) for f in fills),
            quote,
            start_marks,
            {a: to_decimal(m) for a, m in marks.items()},
        )
        return {
            **curve,
            "arbs": arbs,
            "filled_notional": float(notional),
            "turnover": float(notional) / capital if capital > 0 else None,
            "inventory_drift": stats.inventory_drift(json.loads(e["positions"]) for e in samples),
            # fills outside arbitrages (inventory rebalancing, execution algorithms)
            "other_pnl": float(net_exact - arbs_exact),
            "rebalance_orders": sum(
                1 for o in self.recorder.orders() if o.tag.startswith("rebalance-")
            ),
            **self._transfer_stats(),
            "positions": [p.as_dict() for p in held],
            "marks": {"start": dict(self.first_marks), "end": marks},
            "positions_pnl": float(sum((p.realized + p.unrealized for p in held), ZERO)),
        }

    def _transfer_stats(self) -> dict[str, Any]:
        """The transfers' figures (none without transfers): count, fees (also in quote),
        delays, what is in flight at the end. Their fees are part of ``other_pnl``, the
        cost of rebalancing, with the rebalancing trades."""
        if not self.transfers.records:
            return {}
        return {"transfers": self.transfers.summary()}

    def sample_equity(self) -> None:
        if not self.ledger.start:
            return
        now = self.clock.now_ns()
        net, fees, gross = self.pnl()
        marks, quote = self.marks()
        for asset, mark in marks.items():
            self.first_marks.setdefault(asset, mark)
        self.risk.on_pnl(now, net)
        state = self.risk.state()
        if state != self._risk_state:
            self._risk_state = state
            self.recorder.risk_state(state)
        positions = {a: float(self.ledger.position(a)) for a in sorted(self.ledger.assets())}
        self.recorder.equity(now, self.ledger.value(marks, quote), net, gross, fees, positions)

    async def _shutdown(self, drain_until: int | None) -> None:
        loop = self.loop
        if drain_until is not None and isinstance(loop, VirtualTimeLoop):
            await loop.sleep_until(drain_until)
        self.sample_equity()
        self.stopping = True
        self.ready = False
        try:
            await self.strategy.on_stop(self.ctx)
        finally:
            pending = [t for t in self._tasks if not t.done()]
            for t in pending:
                self.cancelled.append(t.get_name())
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            await self.transfers.stop()
            for task in list(self._resolvers):
                task.cancel()
            await asyncio.gather(*self._resolvers, return_exceptions=True)
            deadline = loop.time() + self.shutdown_s
            await self._learn_unknown_outcomes(deadline)
            await self.transfers.settle(deadline)
            await self._cancel_own_orders(deadline)

    async def _learn_unknown_outcomes(self, deadline: float) -> None:
        """No order of the run is left with an unknown outcome when it ends: every order
        sent without an answer (its task cancelled, or declared unresolved) is read back
        from its venue, or known never placed once the venue could no longer accept it;
        until ``deadline`` (loop time)."""
        unknown = [
            o.request()
            for o in self.recorder.orders()
            if o.is_open and not o.order_id and self.recorder.sent_at(o.client_order_id)
        ]
        for req in unknown:
            if await self._learn_outcome(req, deadline):
                self.unresolved.pop(req.client_order_id, None)
                self.risk.unblock(req.venue, req.client_order_id)
            else:
                self.shutdown_errors.append(
                    f"{req.venue}: order {req.client_order_id}: outcome still unknown"
                )

    async def _learn_outcome(self, req: OrderRequest, deadline: float) -> bool:
        """Read an order back, or know it never placed; False when ``deadline`` came."""
        venue = self.venues[req.venue]
        sent = self.recorder.sent_at(req.client_order_id)
        while True:
            try:
                order = await self.ctx.fetch_order(req.venue, req.symbol, req.client_order_id)
            except OrderNotFound:
                if self.clock.now_ns() - sent >= venue.order_expiry_ns:
                    err = OrderNotPlaced("not at the venue at the end", code="not_placed")
                    self.recorder.order_rejected(req, self.clock.now_ns(), err)
                    self.order_closed(req.client_order_id)
                    return True
            except VenueError:
                pass
            else:
                self.merge_order(order)
                return True
            if self.loop.time() >= deadline:
                return False
            await asyncio.sleep(1.0)

    def placed_here(self, client_order_id: str) -> bool:
        """Whether this run placed the order (it sent it, or the id carries one of the
        prefixes of this run's processes)."""
        return client_order_id.startswith(tuple(self._prefixes)) or bool(
            self.recorder.sent_at(client_order_id)
        )

    async def _cancel_own_orders(self, deadline: float) -> None:
        """Cancel the resting orders this run placed, retrying until done or
        ``deadline`` (loop time); orders of others on the account are left alone."""
        for name in self.venues:
            while True:
                try:
                    mine = [
                        o
                        for o in await self.ctx.open_orders(name, record=False)
                        if self.placed_here(o.client_order_id)
                    ]
                    for order in mine:
                        label = f"order {name}:{order.client_order_id}"
                        if label not in self.cancelled:
                            self.cancelled.append(label)
                        await self.ctx.cancel_order(name, order.symbol, order.client_order_id)
                    if not mine:
                        break
                except VenueError as e:
                    if self.loop.time() >= deadline:
                        self.shutdown_errors.append(f"{name}: cancelling open orders: {e}")
                        break
                    await asyncio.sleep(0.5)

    async def stop_venues(self) -> None:
        for venue in self.venues.values():
            await venue.stop()

    async def reconcile(self) -> dict[str, dict[str, str]]:
        """Ledger minus fresh venue balances, per venue (empty dicts when exact).

        Transfers still in flight are asked about before and after the balances are
        read (again while one arrived meanwhile), so the ledger and the venues agree on
        what arrived."""
        await self.transfers.stop()
        out: dict[str, dict[str, str]] = {}
        for _ in range(5):
            await self.transfers.refresh()
            out = {}
            for name in self.venues:
                try:
                    fresh = await self.ctx.fetch_balances(name, record=False)
                except VenueError as e:
                    self.shutdown_errors.append(f"{name}: final balances: {e}")
                    continue
                out[name] = self.ledger.reconcile(fresh)
            if not self.ledger.in_flight or not await self.transfers.refresh():
                break
        return out

    async def run_backtest(
        self,
        *,
        start_ns: int,
        end_ns: int | None,
        drain_ns: int,
        progress: Callable[[int], None] | None = None,
        seek: bool = True,
    ) -> None:
        """Replay every venue's sources up to ``end_ns`` in timestamp order on the
        virtual-time loop.

        Messages before ``start_ns`` only build books (warm-up; their feed latencies are
        not the window's and are dropped). With ``seek`` the venues are told the window's
        start and skip the history that cannot change the books at that time (without
        it, the warm-up replays everything from the data's start: the same books, the
        same outputs, more time). Afterwards every message is delivered at its
        timestamp; the loop's scheduler is entered only when a callback or timer is due
        before the next message.

        Sources that can (``attach``, :class:`~arbsim.core.ports.ReplayDriver`) take the
        fast path: they may leave the merge while their messages change nothing anyone
        looks at, and catch up in bulk when something does. ``reference_replay``
        (the engine's attribute) keeps every source in the merge, one message at a
        time: the straightforward path the fast one is tested against.
        """
        if not isinstance(self.loop, VirtualTimeLoop):
            raise TypeError("run_backtest needs a VirtualTimeLoop")
        replayed: list[ReplayVenue] = []
        try:
            await self._replay(replayed, start_ns, end_ns, drain_ns, progress, seek)
        finally:
            for venue in replayed:
                venue.close_sources()

    async def _replay(
        self,
        replayed: list[ReplayVenue],
        start_ns: int,
        end_ns: int | None,
        drain_ns: int,
        progress: Callable[[int], None] | None,
        seek: bool,
    ) -> None:
        """:meth:`run_backtest`'s work; ``replayed`` gets each venue whose sources it opened."""
        loop = self.loop
        assert isinstance(loop, VirtualTimeLoop)
        sources: list[ReplaySource] = []
        for name, venue in self.venues.items():
            if not isinstance(venue, ReplayVenue):
                raise ConfigError(f"venue {name} cannot replay data: it cannot run in a backtest")
            await venue.start(self.symbols[name], self)
            replayed.append(venue)
            sources.extend(venue.sources(end_ns, start_ns if seek else None))
        # the k-way merge of arbsim.data.feed.merge, inlined: this loop runs once per message
        heap: list[tuple[int, int, Any]] = []
        driver = _Driver(heap, self.strategy.wants_trades())
        if not self.reference_replay:
            for i, s in enumerate(sources):
                attach = getattr(s, "attach", None)
                if attach is not None:
                    attach(driver, i)
        heap.extend((s.ts, i, s) for i, s in enumerate(sources) if s.next())
        heapq.heapify(heap)
        driver.held = [s for s in sources if hasattr(s, "sync")]
        while heap and heap[0][0] < start_ns:
            head = driver.head = heap[0]
            _, i, src = head
            loop.set_now(src.ts)
            src.dispatch()
            if src.next():
                heapq.heapreplace(heap, (src.ts, i, src))
            else:
                heapq.heappop(heap)
        # held-back streams pass the warm-up too; the clock is where the last message
        # before the start left it, and the run starts at the first message after it
        driver.head = (start_ns, -1, None)
        loop.set_now(driver.sync_held())
        # what the warm-up's messages measured is not the window's
        self.latency.forget_feed()
        last_ts = loop.now_ns()
        first = driver.first_pending(heap[0][0] if heap else None)
        if first is not None:
            loop.set_now(first)
            self.spawn(self._startup(), name="startup")
            ready, sched = loop.queues()
            epoch = loop.epoch_ns
            n = 0
            while heap or driver.held:
                head = heap[0] if heap else END
                ts, i, src = head
                due = ready or (sched and round(sched[0].when() * 1e9) < ts - epoch)
                if driver.held and (due or not heap):
                    if await self._held_sleeps(driver, head):
                        # the stream slept for woke up: its message goes next, as it would
                        head = heap[0]
                        ts, i, src = head
                        due = False
                    elif not heap:
                        break
                    elif heap[0] is not head:
                        continue  # a stream woke up with a message before the head
                    else:
                        due = ready or (sched and round(sched[0].when() * 1e9) < ts - epoch)
                driver.head = head
                if due:
                    await loop.sleep_until(ts)
                    if self.failure is not None:
                        self._check_failure()
                if ts > loop._now_ns:
                    loop._now_ns = ts
                src.dispatch()
                if src.next():
                    heapq.heapreplace(heap, (src.ts, i, src))
                else:
                    heapq.heappop(heap)
                n += 1
                if progress is not None and not n & 0xFFF:
                    progress(ts)
            last_ts = loop.now_ns()
            if progress is not None:  # the fast path may merge fewer than 4096 messages
                progress(last_ts)
        driver.head = END
        for s in sources:
            finish = getattr(s, "finish", None)
            if finish is not None:
                finish()
        self.messages = sum(s.messages for s in sources)
        self.events = sum(s.events for s in sources)
        await self._shutdown(last_ts + drain_ns)
        self._check_failure()

    async def _held_sleeps(self, driver: _Driver, head: tuple[int, int, Any]) -> bool:
        """What the messages held back before ``head`` would have caused had they been
        dispatched one by one: the scheduler entered before each one a callback or timer
        was due before (with the clock where the messages before it left it, and the
        exchange-side books as of it); between such points they pass in bulk. Returns
        True when the stream of the message slept for rejoined the merge meanwhile (its
        message is the merge's head and goes next); False when none is left before
        ``head`` or another stream rejoined the merge (the caller looks again)."""
        ts, i, _ = head
        heap = driver.heap
        loop = self.loop
        assert isinstance(loop, VirtualTimeLoop)
        ready, sched = loop.queues()
        epoch = loop.epoch_ns
        while True:
            h = driver.first_held_before(ts, i)
            if h is None:
                return False
            hk, _, hsrc = h
            if ready or (sched and round(sched[0].when() * 1e9) < hk - epoch):
                driver.head = h
                loop.set_now(driver.sync_held())
                await loop.sleep_until(hk)
                if self.failure is not None:
                    self._check_failure()
                if hsrc.pending_ts() != hk:
                    return True
                hsrc.pass_one()
                loop.set_now(hk)
                if (heap[0] if heap else END) is not head:
                    return False
            else:
                bound = (ts, i)
                if sched:
                    due = round(sched[0].when() * 1e9) + epoch
                    bound = min(bound, (due + 1, -1))
                driver.head = (bound[0], bound[1], None)
                loop.set_now(driver.sync_held())

    async def run_realtime(
        self,
        duration_s: float | None,
        stop_event: asyncio.Event | None = None,
        *,
        drain_s: float = 0.0,
        poll_s: float = 0.05,
    ) -> None:
        """Run on the normal asyncio loop and a wall clock (paper and live).

        The venues are started with the engine as their sink (through a guard that
        turns a strategy exception into a stop instead of killing a venue's stream),
        then ``_startup`` runs. The run lasts until ``duration_s`` elapses (``None``:
        no limit), ``stop_event`` is set (SIGINT / SIGTERM in the CLI) or the strategy
        fails; then, after ``drain_s`` of real time for in-flight work, the same
        ``_shutdown`` as a backtest (on_stop, cancel tasks and resting orders, record
        them). The caller stops the venues (``stop_venues``) after reconciling, and also
        when this raised while starting them.
        """
        loop = self.loop
        if isinstance(loop, VirtualTimeLoop):
            raise TypeError("run_realtime needs a normal (wall-clock) event loop")
        stop = stop_event if stop_event is not None else asyncio.Event()
        sink = _GuardedSink(self, stop)
        for name, venue in self.venues.items():
            await venue.start(self.symbols[name], sink)
        self.spawn(self._startup(), name="startup")
        deadline = None if duration_s is None else loop.time() + duration_s
        waiter = loop.create_task(stop.wait(), name="stop-request")
        try:
            while not waiter.done() and self.failure is None:
                timeout = poll_s
                if deadline is not None:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    timeout = min(poll_s, left)
                await asyncio.wait({waiter}, timeout=timeout)
        finally:
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
        if drain_s > 0 and self.failure is None:
            await asyncio.sleep(drain_s)
        try:
            await self._shutdown(None)
        finally:
            # a live message is one event here (no per-level count as in a replay)
            self.messages = self.events = sink.messages
        self._check_failure()


class _Driver:
    """The merge as the fast path's sources see it (:class:`arbsim.core.ports.ReplayDriver`)."""

    def __init__(self, heap: list[tuple[int, int, Any]], trades_wanted: bool):
        self.heap = heap
        self.trades_wanted = trades_wanted
        self.head: tuple[int, int, Any] = (-(2**63), -1, None)
        #: sources that may hold messages back (they have ``sync`` and ``pending_ts``)
        self.held: list[Any] = []

    def sync_held(self) -> int:
        """Let every held-back source pass what comes before :attr:`head`; the largest
        key they passed (the clock would be there had they been dispatched)."""
        last = -(2**63)
        for s in self.held:
            k = s.sync()
            if k > last:
                last = k
        return last

    def first_held_before(self, ts: int, i: int) -> tuple[int, int, Any] | None:
        """``(key, index, source)`` of the first held-back message ordered before
        ``(ts, i)``, or None."""
        best: tuple[int, int, Any] | None = None
        for s in self.held:
            k = s.pending_ts()
            if (
                k is not None
                and (k, s.index) < (ts, i)
                and (best is None or (k, s.index) < (best[0], best[1]))
            ):
                best = (k, s.index, s)
        return best

    def first_pending(self, heap_ts: int | None) -> int | None:
        """The key of the first message left, in the merge or held back (None: none)."""
        keys = [k for k in (s.pending_ts() for s in self.held) if k is not None]
        if heap_ts is not None:
            keys.append(heap_ts)
        return min(keys) if keys else None

    def wake(self, index: int, source: ReplaySource) -> None:
        if self.head is END:
            raise RuntimeError("a replay source woke after the replay ended")
        heapq.heappush(self.heap, (source.ts, index, source))


class _GuardedSink:
    """The engine as a real-time venue's MarketSink: a strategy exception becomes the
    run's failure and a stop request (a backtest raises it from the driver instead)."""

    def __init__(self, engine: Engine, stop: asyncio.Event):
        self.engine = engine
        self.stop = stop
        self.messages = 0
        self.observer = engine.observer

    def _failed(self, exc: Exception) -> None:
        if self.engine.failure is None:
            self.engine.failure = exc
        self.stop.set()

    def on_book(self, venue: str, book: OrderBook) -> None:
        self.messages += 1
        if self.observer is not None:
            self.observer.book(venue, book)
        try:
            self.engine.on_book(venue, book)
        except Exception as e:
            self._failed(e)

    def on_trade(self, venue: str, trade: Trade) -> None:
        self.messages += 1
        if self.observer is not None:
            self.observer.trade(venue, trade)
        try:
            self.engine.on_trade(venue, trade)
        except Exception as e:
            self._failed(e)

    def on_order(self, order: Order) -> None:
        try:
            self.engine.on_order(order)
        except Exception as e:
            self._failed(e)


__all__ = ["Engine"]
