"""Operating a session: /metrics, /health and /events of paper runs against the exchange
simulator on 127.0.0.1, alerts to a local webhook, and the JSON log of a live run (no
secrets, one record per order state change)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pyarrow.parquet as pq
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from arbsim.app.config import parse_config
from arbsim.app.realtime import VenueUrls, run_realtime_async
from arbsim.core.errors import VenueError
from arbsim.core.model import Order, OrderRequest, OrderStatus, Side, TimeInForce
from arbsim.runtime.context import Context
from arbsim.runtime.risk import RiskDenied
from arbsim.runtime.strategy import Strategy
from exchanges.sim import SimConfig, Simulator, run_simulator
from exchanges.sim import VenueConfig as SimVenueConfig
from exchanges.sim.config import DEMO_CREDENTIALS

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "BTC/USDT"


def urls_of(sim: Simulator) -> dict[str, VenueUrls]:
    return {
        name: VenueUrls(v.base_url if name == "mexc" else v.api_url, v.ws_url)
        for name, v in sim.venues.items()
    }


def paper_config(venues: Sequence[str], extra: str = "", latency_ms: float = 10.0) -> str:
    lines = ["strategy: {class: 'tests.app.test_ops:Trader'}", "venues:"]
    for v in venues:
        lines += [
            f"  - name: {v}",
            '    balances: {BTC: "1", USDT: "100000"}',
            f"    latency: {{entry_ms: {latency_ms}, response_ms: {latency_ms}}}",
        ]
    lines.append("run: {drain_s: 0.05, equity_interval_s: 0.2, heartbeat_s: 0.5}")
    return "\n".join(lines) + "\n" + extra


async def two_sided(ctx: Context, venue: str, timeout_s: float = 10.0) -> tuple[float, float]:
    end = time.monotonic() + timeout_s
    while True:
        book = ctx.book(venue, SYMBOL)
        if book.best_bid is not None and book.best_ask is not None:
            return book.best_bid, book.best_ask
        if time.monotonic() > end:
            raise AssertionError(f"{venue}: no two-sided book")
        await asyncio.sleep(0.01)


class Trader(Strategy):
    """On each venue: a taker buy and a taker sell (fills), a post-only buy at the ask
    (rejected: it would take), a buy resting far below the touch, then cancelled.
    ``rounds`` > 0: taker round trips on the first venue until the breaker trips."""

    name = "trader"

    def __init__(self, params: object = None, rounds: int = 0) -> None:
        self.rounds = rounds
        self.done = asyncio.Event()
        self.rejected: list[str] = []
        self.orders: list[Order] = []

    def subscriptions(self, venues: Sequence[str]) -> dict[str, list[str]]:
        return {v: [SYMBOL] for v in venues}

    async def on_start(self, ctx: Context) -> None:
        ctx.spawn(self.script(ctx), name="script")

    async def send(self, ctx: Context, req: OrderRequest) -> Order | None:
        await asyncio.sleep(0.12)  # under the order rate limit
        try:
            order = await ctx.place_order(req)
        except (VenueError, RiskDenied) as e:
            self.rejected.append(f"{req.venue}: {e}")
            return None
        self.orders.append(order)
        return order

    async def taker(self, ctx: Context, venue: str, side: Side) -> Order | None:
        inst = ctx.instrument(venue, SYMBOL)
        bid, ask = await two_sided(ctx, venue)
        price = ask * 1.01 if side is Side.BUY else bid * 0.99
        req = OrderRequest(
            venue=venue, symbol=SYMBOL, side=side, qty=Decimal("0.002"),
            price=inst.round_price(price, side), tif=TimeInForce.IOC,
        )  # fmt: skip
        return await self.send(ctx, req)

    async def script(self, ctx: Context) -> None:
        try:
            if self.rounds:
                await self.trip(ctx)
            else:
                for venue in ctx.venues:
                    await self.exercise(ctx, venue)
        finally:
            self.done.set()

    async def exercise(self, ctx: Context, venue: str) -> None:
        inst = ctx.instrument(venue, SYMBOL)
        await self.taker(ctx, venue, Side.BUY)
        await self.taker(ctx, venue, Side.SELL)
        bid, ask = await two_sided(ctx, venue)
        crossing = OrderRequest(
            venue=venue, symbol=SYMBOL, side=Side.BUY, qty=Decimal("0.002"),
            price=inst.round_price(ask * 1.001, Side.BUY), tif=TimeInForce.POST_ONLY,
        )  # fmt: skip
        await self.send(ctx, crossing)
        resting = OrderRequest(
            venue=venue, symbol=SYMBOL, side=Side.BUY, qty=Decimal("0.002"),
            price=inst.round_price(bid * 0.9, Side.SELL), tif=TimeInForce.GTC,
        )  # fmt: skip
        placed = await self.send(ctx, resting)
        if placed is not None and placed.is_open:
            await ctx.cancel_order(venue, SYMBOL, placed.client_order_id)

    async def trip(self, ctx: Context) -> None:
        venue = next(iter(ctx.venues))
        for _ in range(self.rounds):
            await self.taker(ctx, venue, Side.BUY)
            await self.taker(ctx, venue, Side.SELL)
            for _ in range(20):
                if ctx.risk.tripped:
                    return
                await asyncio.sleep(0.05)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    cfg = SimConfig(venues=[SimVenueConfig(venue="mexc"), SimVenueConfig(venue="gateio")], speed=20)
    async with run_simulator(cfg) as s:
        yield s


def totals(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of a scrape by sample name, then by its labels."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def by(samples: dict[tuple[tuple[str, str], ...], float], label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in samples.items():
        key = dict(labels)[label]
        out[key] = out.get(key, 0.0) + value
    return out


async def sse(url: str, into: list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
    """Follow a server-sent-events stream until the server ends it."""
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers or {}) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        async for line in resp.content:
            if line.startswith(b"data: "):
                into.append(json.loads(line[6:]))


async def test_metrics_and_events_of_a_paper_run_match_its_outputs(
    sim: Simulator, tmp_path: Path
) -> None:
    cfg = parse_config(paper_config(["mexc", "gateio"]).encode(), "<test>", "paper")
    strategy = Trader()
    stop = asyncio.Event()
    listening: list[str] = []
    up = asyncio.Event()
    events: list[dict[str, Any]] = []

    def on_ops(url: str) -> None:
        listening.append(url)
        up.set()

    async def follow() -> None:
        await up.wait()
        await sse(listening[0] + "/events", events)

    async def scrape() -> tuple[str, dict[str, Any]]:
        await strategy.done.wait()
        await asyncio.sleep(0.3)  # the last pushes
        async with aiohttp.ClientSession() as s:
            async with s.get(listening[0] + "/metrics") as resp:
                assert resp.status == 200
                text = await resp.text()
            async with s.get(listening[0] + "/health") as resp:
                health = await resp.json()
        stop.set()
        return text, health

    follower = asyncio.create_task(follow())
    scraper = asyncio.create_task(scrape())
    out = tmp_path / "run"
    result = await run_realtime_async(
        cfg, mode="paper", out_dir=out, duration_s=30.0, urls=urls_of(sim), stop_event=stop,
        env={}, strategy=strategy, on_ops=on_ops,
    )  # fmt: skip
    text, health = await scraper
    await asyncio.wait_for(follower, 5)  # the stream ends with the session
    assert result.summary["status"] == "ok"
    assert listening[0].startswith("http://127.0.0.1:")

    orders = pq.read_table(out / "orders.parquet").to_pylist()
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    assert len(fills) >= 4 and {f["venue"] for f in fills} == {"mexc", "gateio"}
    assert strategy.rejected, "a post-only order that would take is rejected"
    m = totals(text)
    # counters match the run's outputs
    assert by(m["arbsim_orders_total"], "venue") == Counter(o["venue"] for o in orders)
    assert by(m["arbsim_fills_total"], "venue") == Counter(f["venue"] for f in fills)
    rejects = Counter((o["venue"], o["reject_code"]) for o in orders if o["reject_code"])
    assert (
        rejects
        and {(dict(k)["venue"], dict(k)["code"]): v for k, v in m["arbsim_rejects_total"].items()}
        == rejects
    )
    statuses = Counter((o["venue"], o["status"]) for o in orders)
    states = m["arbsim_order_states_total"]
    scraped = {(dict(k)["venue"], dict(k)["status"]): v for k, v in states.items()}
    assert all(scraped[key] >= n for key, n in statuses.items())
    lat = pq.read_table(out / "latency.parquet").to_pylist()
    place = Counter(r["venue"] for r in lat if r["kind"] == "place")
    counts = {
        dict(k)["venue"]: v
        for k, v in m["arbsim_request_seconds_count"].items()
        if dict(k)["kind"] == "place"
    }
    assert counts == place
    # the market side and the sampled gauges
    assert set(by(m["arbsim_messages_total"], "venue")) == {"mexc", "gateio"}
    assert set(by(m["arbsim_book_age_seconds"], "venue")) == {"mexc", "gateio"}
    assert sum(m["arbsim_decode_seconds_count"].values()) > 0
    assert {dict(k)["kind"] for k in m["arbsim_pnl_quote"]} == {"net", "gross", "fees"}
    assert m["arbsim_run_info"] == {
        (("mode", "paper"), ("run_id", "run")): 1.0,
    }
    # every metric the README lists is served
    families = {f.name for f in text_string_to_metric_families(text)}
    readme = (ROOT / "README.md").read_text()
    listed = {
        name.removesuffix("_total")
        for row in readme.splitlines()
        if row.startswith("| `arbsim_")
        for name in re.findall(r"`(arbsim_\w+)`", row.split("|")[1])
    }
    assert len(listed) > 20 and listed <= families, listed - families
    # (the simulator's clock runs 20 times as fast as ours: /health may say so)
    assert set(health["venues"]) == {"mexc", "gateio"}
    for v in health["venues"].values():
        assert v["market_stream"] and v["private_stream"] and v["rest"], v
        assert v["clock_skew_ms"] > 0  # the simulator's clock is ahead

    # /events: every fill of fills.parquet, each order's states, the end of the session
    got = [e for e in events if e["type"] == "fill"]
    assert sorted(e["trade_id"] for e in got) == sorted(f["trade_id"] for f in fills)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert {e["client_order_id"] for e in events if e["type"] == "order"} == {
        o["client_order_id"] for o in orders
    }
    assert any(e["type"] == "heartbeat" for e in events)
    assert events[-1]["type"] == "session" and events[-1]["status"] == "ok"

    # the run directory's JSON log: heartbeats and one record per order state change
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(r["run_id"] == "run" for r in records)
    beats = [r for r in records if r.get("event") == "heartbeat"]
    assert beats and {"pnl", "arbs", "open_orders", "book_age_ms", "reconnects", "risk"} <= set(
        beats[-1]
    )
    assert set(beats[-1]["book_age_ms"]) == {"mexc", "gateio"}


async def test_events_resume_after_a_given_event(sim: Simulator, tmp_path: Path) -> None:
    cfg = parse_config(paper_config(["mexc"]).encode(), "<test>", "paper")
    strategy = Trader()
    stop = asyncio.Event()
    listening: list[str] = []
    first: list[dict[str, Any]] = []
    later: list[dict[str, Any]] = []
    fills_only: list[dict[str, Any]] = []
    middle = 0

    async def script() -> None:
        nonlocal middle
        await strategy.done.wait()
        await asyncio.sleep(0.2)
        base = listening[0] + "/events"
        async with aiohttp.ClientSession() as s:
            async with s.get(base + "?types=nonsense") as resp:
                assert resp.status == 400 and "unknown event types" in await resp.text()
            async with s.get(base + "?since=x") as resp:
                assert resp.status == 400
        tasks = [
            asyncio.create_task(sse(base, first)),
            asyncio.create_task(sse(base + "?types=fill", fills_only)),
        ]
        await asyncio.sleep(0.3)
        kept = [e for e in first if e["type"] == "order"]
        middle = kept[len(kept) // 2]["seq"]
        tasks.append(asyncio.create_task(sse(base, later, {"Last-Event-ID": str(middle)})))
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)

    task = asyncio.create_task(script())
    await run_realtime_async(
        cfg, mode="paper", out_dir=tmp_path / "run", duration_s=30.0,
        urls={"mexc": urls_of(sim)["mexc"]}, stop_event=stop, env={}, strategy=strategy,
        on_ops=listening.append,
    )  # fmt: skip
    await task
    assert later and later[0]["seq"] == middle + 1
    assert [e["seq"] for e in later] == [e["seq"] for e in first if e["seq"] > middle]
    assert fills_only and {e["type"] for e in fills_only} == {"fill"}


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A local alert receiver: its URL and what it received."""
    got: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        assert request.content_type == "application/json"
        got.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook", got
    finally:
        await runner.cleanup()


async def test_breaker_trip_posts_a_webhook_alert(
    sim: Simulator, tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, got = webhook
    extra = (
        f"risk: {{max_daily_loss: \"0.000001\"}}\nalerts: {{webhook_url: '{url}', repeat_s: 600}}\n"
    )
    # 30 + 30 ms per request: every balance request is slower than the 50 ms threshold
    cfg = parse_config(paper_config(["mexc"], extra, latency_ms=30.0).encode(), "<t>", "paper")
    strategy = Trader(rounds=5)
    out = tmp_path / "run"
    result = await run_realtime_async(
        cfg, mode="paper", out_dir=out, duration_s=30.0, urls={"mexc": urls_of(sim)["mexc"]},
        stop_event=strategy.done, env={}, strategy=strategy,
    )  # fmt: skip
    assert result.summary["risk"]["circuit_breaker"], result.summary["risk"]
    breaker = [a for a in got if a["alert"] == "circuit_breaker"]
    assert len(breaker) == 1, got
    assert breaker[0]["level"] == "ERROR" and "daily loss" in breaker[0]["reason"]
    assert breaker[0]["run_id"] == "run"
    # the balance requests (60 ms) alerted once: repeats are held back
    balance = [a for a in got if a["alert"] == "balance_latency"]
    assert len(balance) == 1 and balance[0]["venue"] == "mexc"
    assert balance[0]["value"] > 50 and balance[0]["threshold"] == 50
    records = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    logged = [r for r in records if r.get("event") == "alert"]
    assert any(r["alert"] == "circuit_breaker" and r["level"] == "ERROR" for r in logged)
    assert any(r["alert"] == "balance_latency" and r["level"] == "WARNING" for r in logged)


def test_alert_webhook_from_the_environment_is_required_and_never_written(
    tmp_path: Path,
) -> None:
    from arbsim.app.alerts import AlertConfig
    from arbsim.core.errors import ConfigError
    from arbsim.core.redact import redact

    cfg = AlertConfig(webhook_url_env="ARBSIM_TEST_HOOK")
    with pytest.raises(ConfigError, match="ARBSIM_TEST_HOOK is not set"):
        cfg.webhook({})
    secret = "http://127.0.0.1:9/hooks/T000/B000/tokenxyz123"
    assert cfg.webhook({"ARBSIM_TEST_HOOK": secret}) == secret
    assert secret not in redact(f"posting to {secret}")


# ---------------------------------------------------------------------- health
@pytest.fixture
async def slow_sim() -> AsyncIterator[Simulator]:
    """At speed 1 the simulator's clock is ours (no clock skew)."""
    async with run_simulator(SimConfig(venues=[SimVenueConfig(venue="mexc")], speed=1)) as s:
        yield s


async def fault(sim: Simulator, body: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as s:
        url = sim.venues["mexc"].base_url + "/_sim/faults"
        async with s.post(url, json=body) as resp:
            assert resp.status < 300, await resp.text()


async def test_health_turns_503_when_the_stream_drops_and_200_after(
    slow_sim: Simulator, tmp_path: Path
) -> None:
    cfg = parse_config(paper_config(["mexc"]).encode(), "<test>", "paper")
    stop = asyncio.Event()
    listening: list[str] = []
    seen: dict[str, Any] = {}

    async def status(s: aiohttp.ClientSession) -> tuple[int, dict[str, Any]]:
        async with s.get(listening[0] + "/health") as resp:
            return resp.status, await resp.json()

    async def until(s: aiohttp.ClientSession, code: int, timeout_s: float) -> dict[str, Any]:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            got, body = await status(s)
            if got == code:
                return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"/health never answered {code} in {timeout_s}s: {got} {body}")

    async def script() -> None:
        while not listening:
            await asyncio.sleep(0.02)
        try:
            async with aiohttp.ClientSession() as s:
                body = await until(s, 200, 15)
                assert body["venues"]["mexc"]["market_stream"] is True
                assert abs(body["venues"]["mexc"]["clock_skew_ms"]) < 1000
                # cut the venue's WebSockets: the stream reconnects after 0.25 s or more
                await fault(slow_sim, {"kind": "drop_ws"})
                t0 = time.monotonic()
                body = await until(s, 503, 5)
                seen["down_after_s"] = time.monotonic() - t0
                assert body["status"] == "unhealthy" and body["healthy"] is False
                assert body["venues"]["mexc"]["market_stream"] is False
                assert body["venues"]["mexc"]["rest"] is True
                t1 = time.monotonic()
                body = await until(s, 200, 20)
                seen["up_after_s"] = time.monotonic() - t1
                assert body["venues"]["mexc"]["reconnects"] >= 1
                # again, with the market data paused as well: down, then up once it resumes
                await fault(slow_sim, {"kind": "pause", "delay_s": 0})
                await fault(slow_sim, {"kind": "drop_ws"})
                await until(s, 503, 5)
                await fault(slow_sim, {"kind": "resume"})
                body = await until(s, 200, 20)
                assert body["venues"]["mexc"]["reconnects"] >= 2
                await asyncio.sleep(0.7)  # the health watch sees the recovery
        finally:
            stop.set()

    task = asyncio.create_task(script())
    out = tmp_path / "run"
    await run_realtime_async(
        cfg, mode="paper", out_dir=out, duration_s=60.0,
        urls={"mexc": urls_of(slow_sim)["mexc"]}, stop_event=stop, env={},
        strategy=Trader(rounds=0), on_ops=listening.append,
    )  # fmt: skip
    await task
    assert seen["down_after_s"] < 5
    print(f"/health: 503 {seen['down_after_s']:.3f} s after drop_ws, 200 again "
          f"{seen['up_after_s']:.3f} s later")  # fmt: skip
    records = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    events = [r.get("event") for r in records]
    assert "stream_lost" in events and "venue_up" in events
    down = [r for r in records if r.get("alert") == "venue_down"]
    assert down and down[0]["level"] == "WARNING" and down[0]["venue"] == "mexc"


async def test_health_says_when_the_rest_api_stops_answering(
    slow_sim: Simulator, tmp_path: Path
) -> None:
    extra = "ops: {probe_interval_s: 0.2}\n"
    cfg = parse_config(paper_config(["mexc"], extra).encode(), "<test>", "paper")
    stop = asyncio.Event()
    listening: list[str] = []
    seen: list[dict[str, Any]] = []

    async def poll(s: aiohttp.ClientSession, code: int) -> dict[str, Any]:
        for _ in range(200):
            async with s.get(listening[0] + "/health") as resp:
                body: dict[str, Any] = await resp.json()
                if resp.status == code:
                    return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"/health never answered {code}")

    async def script() -> None:
        while not listening:
            await asyncio.sleep(0.02)
        try:
            async with aiohttp.ClientSession() as s:
                await poll(s, 200)
                rule = {"kind": "http_status", "status": 503, "path": "/api/v3/time", "count": 99}
                await fault(slow_sim, rule)
                seen.append(await poll(s, 503))
                url = slow_sim.venues["mexc"].base_url + "/_sim/faults"
                async with s.delete(url) as resp:
                    assert resp.status < 300
                seen.append(await poll(s, 200))
        finally:
            stop.set()

    task = asyncio.create_task(script())
    await run_realtime_async(
        cfg, mode="paper", out_dir=tmp_path / "run", duration_s=60.0,
        urls={"mexc": urls_of(slow_sim)["mexc"]}, stop_event=stop, env={},
        strategy=Trader(rounds=0), on_ops=listening.append,
    )  # fmt: skip
    await task
    down, up = seen[0]["venues"]["mexc"], seen[1]["venues"]["mexc"]
    assert down["rest"] is False and down["market_stream"] is True and "REST" in down["detail"]
    assert up["rest"] is True and up["healthy"] is True


# ---------------------------------------------------------------------- live: the log
class LiveScript(Strategy):
    """Live: a buy resting far below the touch, cancelled; a taker buy that fills; a
    post-only buy at the ask (MEXC refuses it)."""

    name = "live_script"

    def __init__(self, params: object = None) -> None:
        pass

    def subscriptions(self, venues: Sequence[str]) -> dict[str, list[str]]:
        return {v: [SYMBOL] for v in venues}

    async def on_start(self, ctx: Context) -> None:
        ctx.spawn(self.script(ctx), name="script")

    async def script(self, ctx: Context) -> None:
        venue = "mexc"
        inst = ctx.instrument(venue, SYMBOL)
        bid, ask = await two_sided(ctx, venue)
        resting = await ctx.place_order(
            OrderRequest(
                venue=venue, symbol=SYMBOL, side=Side.BUY, qty=Decimal("0.001"),
                price=inst.round_price(bid * 0.9, Side.SELL), tif=TimeInForce.GTC,
            )
        )  # fmt: skip
        await ctx.cancel_order(venue, SYMBOL, resting.client_order_id)
        bid, ask = await two_sided(ctx, venue)
        taken = await ctx.place_order(
            OrderRequest(
                venue=venue, symbol=SYMBOL, side=Side.BUY, qty=Decimal("0.001"),
                price=inst.round_price(ask * 1.01, Side.BUY), tif=TimeInForce.IOC,
            )
        )  # fmt: skip
        assert taken.status is OrderStatus.FILLED, taken
        bid, ask = await two_sided(ctx, venue)
        with contextlib.suppress(VenueError):  # MEXC refuses it
            await ctx.place_order(
                OrderRequest(
                    venue=venue, symbol=SYMBOL, side=Side.BUY, qty=Decimal("0.001"),
                    price=inst.round_price(ask * 1.001, Side.BUY), tif=TimeInForce.POST_ONLY,
                )
            )  # fmt: skip


@pytest.fixture
def sim_thread() -> Iterator[Simulator]:
    """The simulator (MEXC, speed 1) on its own loop in a thread, for a CLI subprocess."""
    holder: dict[str, Simulator] = {}
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    halt: asyncio.Event | None = None

    async def serve() -> None:
        nonlocal halt
        halt = asyncio.Event()
        async with run_simulator(SimConfig(venues=[SimVenueConfig(venue="mexc")], speed=1)) as s:
            holder["sim"] = s
            ready.set()
            await halt.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield holder["sim"]
    finally:
        assert halt is not None
        loop.call_soon_threadsafe(halt.set)
        thread.join(10)
        loop.close()


def journal_states(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Each order's (status, filled qty) as the journal went, repeats dropped."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT client_order_id, status, filled_qty FROM orders WHERE event != 'acked' "
            "ORDER BY seq"
        ).fetchall()
    finally:
        db.close()
    out: dict[str, list[tuple[str, str]]] = {}
    for cid, status, filled in rows:
        states = out.setdefault(cid, [])
        state = (status, str(Decimal(filled)))
        if not states or states[-1] != state:
            states.append(state)
    return out


def test_live_json_log_has_no_secret_and_one_record_per_order_state(
    sim_thread: Simulator, tmp_path: Path
) -> None:
    v = sim_thread.venues["mexc"]
    key, secret = DEMO_CREDENTIALS["mexc"]
    assert (v.api_key, v.api_secret) == (key, secret)
    cfg = tmp_path / "live.yaml"
    cfg.write_text(
        "strategy: {class: 'tests.app.test_ops:LiveScript'}\nvenues: [{name: mexc}]\n"
        "run: {drain_s: 0.05, heartbeat_s: 1}\n"
    )
    out = tmp_path / "run"
    log_file = tmp_path / "arbsim.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ARBSIM_MEXC_API_KEY": key,
        "ARBSIM_MEXC_API_SECRET": secret,
    }
    cmd = [
        sys.executable, "-m", "arbsim.app.cli", "--log-format", "json", "--log-level", "debug",
        "--log-file", str(log_file), "live", "--config", str(cfg), "--out", str(out),
        "--duration", "6", "--venue-url", f"mexc={v.base_url},{v.ws_url}",
        "--metrics-port", "0",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "operations: http://127.0.0.1:" in proc.stderr
    texts = {
        "--log-file": log_file.read_text(),
        "log.jsonl": (out / "log.jsonl").read_text(),
        "stderr": proc.stderr,
        "stdout": proc.stdout,
    }
    for where, text in texts.items():
        assert key not in text and secret not in text, where
    assert "listenKey=" not in texts["--log-file"].replace("listenKey=***", "")
    records = [json.loads(line) for line in texts["--log-file"].splitlines()]
    assert len(records) > 20 and any(r["level"] == "DEBUG" for r in records)
    for r in records:
        assert {"time", "level", "component", "message", "run_id"} <= set(r), r
    assert {r["run_id"] for r in records if r["component"].startswith("arbsim.orders")} == {"run"}
    # one record per order state change: the journal's states, in order, nothing more
    logged: dict[str, list[tuple[str, str]]] = {}
    for r in records:
        if r.get("event") == "order":
            assert r["venue"] == "mexc" and r["symbol"] == SYMBOL, r
            logged.setdefault(r["client_order_id"], []).append(
                (r["status"], str(Decimal(r["filled_qty"])))
            )
    assert logged == journal_states(out / "journal.sqlite")
    final = {o["client_order_id"]: o for o in pq.read_table(out / "orders.parquet").to_pylist()}
    assert set(logged) == set(final) and len(final) == 3
    for cid, states in logged.items():
        assert states[-1] == (final[cid]["status"], str(Decimal(final[cid]["filled_qty"])))
    assert sorted(s[-1][0] for s in logged.values()) == ["canceled", "filled", "rejected"]
    # the run directory's log holds the same order records
    in_run = [json.loads(x) for x in texts["log.jsonl"].splitlines()]
    assert sum(r.get("event") == "order" for r in in_run) == sum(map(len, logged.values()))
    assert any(r.get("event") == "heartbeat" for r in in_run)
