"""The simulator under load: thousands of resting orders while the market replays faster than
the process can keep up, SIGTERM while busy, and bad numeric parameters."""

from __future__ import annotations

import asyncio
import faulthandler
import re
import signal
import sys
import time
from decimal import Decimal

import aiohttp
import pytest

from arbsim.core.model import OrderType, Side, TimeInForce
from exchanges.sim.config import AccountConfig, SimConfig, VenueConfig
from exchanges.sim.runner import Simulator, run_simulator

from .sim_testkit import gate_call, mexc_call

RICH = {"USDT": "1000000000", "BTC": "1000000"}


def _rest_far_orders(sim: Simulator, n: int) -> None:
    """``n`` resting orders 2-20 % away from the mid (half buys, half sells), one per tick."""
    v = sim.venues["mexc"]
    mid = Decimal(str(v.market.symbols["BTC/USDT"].book.mid)).quantize(Decimal("0.01"))
    for i in range(n):
        away = Decimal("0.02") + Decimal("0.18") * (i // 2) / (n // 2)
        side = Side.BUY if i % 2 == 0 else Side.SELL
        price = mid * (1 - away) if side is Side.BUY else mid * (1 + away)
        v.exchange.place(
            v.api_key,
            "BTC/USDT",
            side,
            OrderType.LIMIT,
            TimeInForce.GTC,
            qty=Decimal("0.0001"),
            price=price.quantize(Decimal("0.01")),
        )


async def test_orders_are_answered_promptly_with_thousands_resting_while_replaying_fast() -> None:
    account = AccountConfig(api_key="load-key", api_secret="load-secret", balances=RICH)
    # 1000 x real time: far more messages than one process can apply, always behind schedule
    cfg = SimConfig(
        venues=[VenueConfig(venue="mexc", rate_limits=False, accounts=[account])], speed=1000
    )
    # the simulator shares this event loop: should it stop yielding (the reported freeze),
    # no asyncio timeout could fire, so a watchdog ends the run instead of hanging it
    faulthandler.dump_traceback_later(60, exit=True)
    try:
        await _answered_promptly(cfg)
    finally:
        faulthandler.cancel_dump_traceback_later()


async def _answered_promptly(cfg: SimConfig) -> None:
    async with run_simulator(cfg) as sim, aiohttp.ClientSession() as http:
        v = sim.venues["mexc"]
        _rest_far_orders(sim, 5000)
        engine = v.exchange.accounts["load-key"].engines["BTC/USDT"]
        assert len(engine.resting) == 5000
        mid = Decimal(str(v.market.symbols["BTC/USDT"].book.mid))
        price = (mid * Decimal("0.9")).quantize(Decimal("0.01"))
        await asyncio.sleep(0.2)  # the replay is running flat out
        m0 = v.market.messages
        worst = 0.0
        for i in range(20):
            t0 = time.perf_counter()
            status, placed = await asyncio.wait_for(
                mexc_call(
                    http,
                    v,
                    "POST",
                    "order",
                    [
                        ("symbol", "BTCUSDT"),
                        ("side", "BUY"),
                        ("type", "LIMIT"),
                        ("quantity", "0.0001"),
                        ("price", str(price)),
                        ("newClientOrderId", f"load-{i}"),
                    ],
                ),
                5,
            )
            assert status == 200, placed
            status, cancelled = await asyncio.wait_for(
                mexc_call(
                    http,
                    v,
                    "DELETE",
                    "order",
                    [("symbol", "BTCUSDT"), ("orderId", placed["orderId"])],
                ),
                5,
            )
            assert status == 200, cancelled
            worst = max(worst, time.perf_counter() - t0)
        # the market kept replaying meanwhile, and nothing far away was touched
        assert v.market.messages - m0 > 200
        assert len(engine.resting) == 5000
        assert worst < 0.5, f"slowest place + cancel took {worst:.3f} s"


async def test_sigterm_ends_a_busy_simulator_within_two_seconds() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exchanges.sim.cli", "--venue", "mexc", "--speed", "1000",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = re.search(r"REST (http://127\.0\.0\.1:\d+)/api/v3", line)
        assert match, line
        base = match.group(1)
        async with aiohttp.ClientSession() as http:

            async def messages() -> int:
                async with http.get(f"{base}/_sim/state") as r:
                    return int((await r.json())["messages"])

            first = await asyncio.wait_for(messages(), 5)
            await asyncio.sleep(0.3)
            assert await asyncio.wait_for(messages(), 5) > first  # busy replaying
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert time.perf_counter() - t0 < 2.0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize("bad", ["abc", "1.5", "-3", "", "0"])
async def test_non_integer_limit_is_the_venues_bad_parameter_error(
    sim: Simulator, http: aiohttp.ClientSession, bad: str
) -> None:
    mexc = sim.venues["mexc"]
    for path in ("depth", "trades"):
        status, body = await mexc_call(
            http, mexc, "GET", path, [("symbol", "BTCUSDT"), ("limit", bad)], signed=False
        )
        assert (status, body["code"]) == (400, -1100), body
        assert "'limit'" in body["msg"]
    for path in ("myTrades", "allOrders"):
        status, body = await mexc_call(
            http, mexc, "GET", path, [("symbol", "BTCUSDT"), ("limit", bad)]
        )
        assert (status, body["code"]) == (400, -1100), body
    gate = sim.venues["gateio"]
    for path, signed in (
        ("spot/order_book", False),
        ("spot/trades", False),
        ("spot/my_trades", True),
    ):
        status, body, _ = await gate_call(
            http, gate, "GET", path, f"currency_pair=BTC_USDT&limit={bad}", signed=signed
        )
        assert (status, body["label"]) == (400, "INVALID_PARAM_VALUE"), body
        assert "limit" in body["message"]
    status, body, _ = await gate_call(
        http, gate, "GET", "spot/orders", f"currency_pair=BTC_USDT&status=open&page={bad}"
    )
    assert (status, body["label"]) == (400, "INVALID_PARAM_VALUE"), body


async def test_integer_limits_still_work(sim: Simulator, http: aiohttp.ClientSession) -> None:
    status, body = await mexc_call(
        http,
        sim.venues["mexc"],
        "GET",
        "depth",
        [("symbol", "BTCUSDT"), ("limit", "5")],
        signed=False,
    )
    assert status == 200 and len(body["bids"]) == 5
    status, body, _ = await gate_call(
        http,
        sim.venues["gateio"],
        "GET",
        "spot/order_book",
        "currency_pair=BTC_USDT&limit=3",
        signed=False,
    )
    assert status == 200 and len(body["asks"]) == 3
