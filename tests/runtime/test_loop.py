from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from arbsim.runtime.loop import VirtualTimeLoop

T0 = 1_767_571_200_000_000_000
R = TypeVar("R")


def run(
    coro_fn: Callable[[VirtualTimeLoop], Awaitable[R]], start: int = T0
) -> tuple[VirtualTimeLoop, R]:
    loop = VirtualTimeLoop(start)
    try:
        return loop, loop.run_until_complete(coro_fn(loop))
    finally:
        loop.close()


def test_sleep_wait_for_and_gather_take_virtual_time_only() -> None:
    async def main(loop: VirtualTimeLoop) -> list[tuple[str, int]]:
        marks: list[tuple[str, int]] = []

        async def leg(name: str, delay: float) -> str:
            await asyncio.sleep(delay)
            marks.append((name, loop.now_ns() - T0))
            return name

        got = await asyncio.gather(leg("a", 0.030), leg("b", 0.010))
        assert list(got) == ["a", "b"]  # a list at run time; typeshed says tuple
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(10.0), 0.5)
        marks.append(("timeout", loop.now_ns() - T0))
        return marks

    wall = time.perf_counter()
    _, marks = run(main)
    assert time.perf_counter() - wall < 1.0  # 10.5 s of virtual time, no wall time
    assert marks == [("b", 10_000_000), ("a", 30_000_000), ("timeout", 530_000_000)]


def test_due_before_and_sleep_until() -> None:
    async def main(loop: VirtualTimeLoop) -> list[int]:
        fired: list[int] = []
        loop.call_at(loop.to_loop_time(T0 + 50), lambda: fired.append(loop.now_ns()))
        assert not loop.due_before(T0 + 50)  # strictly before
        assert loop.due_before(T0 + 51)
        await loop.sleep_until(T0 + 100)
        assert loop.now_ns() == T0 + 100
        assert not loop.due_before(T0 + 10**9)
        loop.call_soon(lambda: None)
        assert loop.due_before(T0)  # a ready callback is always due
        loop.set_now(T0)  # the clock never goes backwards
        assert loop.now_ns() == T0 + 100
        return fired

    _, fired = run(main)
    assert fired == [T0 + 50]


def test_deadlock_is_reported_instead_of_hanging() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        await loop.create_future()  # nothing will ever resolve it

    with pytest.raises(RuntimeError, match="deadlock"):
        run(main)


def test_a_registered_socket_is_polled_at_every_wait() -> None:
    """The real selector is skipped on most waits only while nothing but the loop's own
    wake-up pipe is registered: data on a registered socket is seen at the next wait,
    before the virtual clock jumps to a later timer."""
    import socket

    async def main(loop: VirtualTimeLoop) -> tuple[float, float]:
        a, b = socket.socketpair()
        got: asyncio.Future[float] = loop.create_future()

        def readable() -> None:
            if not got.done():
                got.set_result(loop.time())

        loop.add_reader(a, readable)
        b.send(b"x")
        sleeper = asyncio.ensure_future(asyncio.sleep(30.0))
        at = await got
        loop.remove_reader(a)
        await sleeper
        a.close()
        b.close()
        return at, loop.time()

    _, (seen_at, end) = run(main)
    assert seen_at == 0.0 and end == 30.0
