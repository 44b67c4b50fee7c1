"""Clocks and the virtual-time asyncio event loop (DESIGN §3).

:class:`VirtualTimeLoop` is a normal selector event loop whose ``time()`` is a
virtual clock. When the loop would block waiting for its next timer, the clock jumps
to that timer instead: ``await asyncio.sleep(0.03)``, ``asyncio.wait_for`` and
``asyncio.gather`` behave exactly as on a real loop but take no wall time.

The backtest driver sets the clock to each data event's timestamp and only enters
the scheduler when a callback or timer is due before that event
(:meth:`VirtualTimeLoop.due_before`).
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Callable
from typing import Any

from arbsim.core.ports import Clock


class WallClock:
    """Real time, for paper and live trading."""

    def now_ns(self) -> int:
        return time.time_ns()


class _VirtualSelector(selectors.BaseSelector):
    """A selector that never sleeps: a wait for ``timeout`` advances the virtual clock."""

    #: with only the loop's own wake-up pipe registered, the real selector is polled on
    #: one wait in this many (it only drains that pipe; a backtest waits tens of
    #: thousands of times, and a poll is a system call)
    POLL_EVERY = 64

    def __init__(self, loop_ref: VirtualTimeLoop):
        self._real = selectors.DefaultSelector()
        self._loop = loop_ref
        self._waits = 0

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self._waits += 1
        if len(self._real.get_map()) > 1 or not self._waits % self.POLL_EVERY:
            events = self._real.select(0)
            if events:
                return events
        if timeout is None:
            raise RuntimeError(
                "virtual-time loop deadlock: nothing is ready and no timer is scheduled "
                "(a task awaits something that can never happen in a backtest)"
            )
        if timeout > 0:
            self._loop._advance(timeout)
        return []

    def close(self) -> None:
        self._real.close()

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Any:
        return self._real.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on a virtual clock with integer-nanosecond resolution.

    ``time()`` returns seconds since ``epoch_ns`` (the start of the data), which keeps
    float precision at the nanosecond level for runs of several weeks.
    """

    def __init__(self, start_ns: int):
        self._now_ns = start_ns
        self.epoch_ns = start_ns
        super().__init__(selector=_VirtualSelector(self))
        # run a timer only when its time (to the ns) has come: a coarser resolution would
        # let timers run up to that much before data that precedes them
        self._clock_resolution = 1e-9

    def time(self) -> float:
        return (self._now_ns - self.epoch_ns) / 1e9

    def now_ns(self) -> int:
        return self._now_ns

    def to_loop_time(self, ts_ns: int) -> float:
        return (ts_ns - self.epoch_ns) / 1e9

    def set_now(self, ts_ns: int) -> None:
        """Move the clock forward to ``ts_ns`` (never backwards)."""
        if ts_ns > self._now_ns:
            self._now_ns = ts_ns

    def _advance(self, seconds: float) -> None:
        target = self.epoch_ns + round((self.time() + seconds) * 1e9)
        self._now_ns = target if target > self._now_ns else self._now_ns + 1

    def due_before(self, ts_ns: int) -> bool:
        """Is a callback ready, or a timer due strictly before ``ts_ns``?

        Reads the loop's ready queue and timer heap; both are attributes of
        ``asyncio.BaseEventLoop`` that have kept their shape since Python 3.4
        (tests/test_loop.py pins the behaviour).
        """
        if self._ready:  # type: ignore[attr-defined]  # asyncio.BaseEventLoop internals
            return True
        sched = self._scheduled  # type: ignore[attr-defined]
        return bool(sched) and round(sched[0].when() * 1e9) < ts_ns - self.epoch_ns

    def queues(self) -> tuple[Any, list[asyncio.TimerHandle]]:
        """The ready queue and the timer heap, for a driver that inlines :meth:`due_before`."""
        return self._ready, self._scheduled  # type: ignore[attr-defined]

    async def sleep_until(self, ts_ns: int) -> None:
        """Let every callback and timer due before ``ts_ns`` run, then return at ``ts_ns``.

        Timers due at exactly ``ts_ns`` stay pending: the caller (the data driver) acts
        at ``ts_ns`` first, so a timer at t sees every message stamped t."""
        if ts_ns <= self._now_ns and not self._ready:  # type: ignore[attr-defined]
            return
        fut: asyncio.Future[None] = self.create_future()
        self.call_at(self.to_loop_time(ts_ns - 1), _resolve, fut)
        await fut
        self.set_now(ts_ns)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def scheduler(
    loop: asyncio.AbstractEventLoop, clock: Clock
) -> Callable[[int, Callable[[], None]], asyncio.TimerHandle]:
    """``schedule(ts_ns, fn)``: run ``fn`` at ``ts_ns`` on the run's clock (to the ns on
    a virtual-time loop; after the remaining wall time otherwise)."""
    if isinstance(loop, VirtualTimeLoop):
        vloop = loop

        def at_virtual(ts_ns: int, fn: Callable[[], None]) -> asyncio.TimerHandle:
            return vloop.call_at(vloop.to_loop_time(max(ts_ns, vloop.now_ns())), fn)

        return at_virtual

    def at_wall(ts_ns: int, fn: Callable[[], None]) -> asyncio.TimerHandle:
        return loop.call_later(max(0.0, (ts_ns - clock.now_ns()) / 1e9), fn)

    return at_wall
