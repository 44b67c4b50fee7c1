"""The exchange simulator under load: many resting orders while the market replays fast.

    python bench/sim_load.py [--orders 20000] [--speed 50] [--requests 200] [--json]

Starts ``python -m exchanges.sim.cli`` as a subprocess on 127.0.0.1 (MEXC only, rate limits
off, an account rich enough), places ``--orders`` resting limit orders far from the touch
(half buys 5-30 % under the mid, half sells 5-30 % over it, on distinct ticks), then, while
the market replays at ``--speed`` x real time, times ``--requests`` order requests one after
the other (a new far limit order, then its cancel) and counts the market messages replayed
meanwhile. Last, it sends SIGTERM and times the process's exit.

A request that gets no answer within ``--timeout`` seconds counts as lost; placing stops at
the first lost request (the simulator is then reported as frozen).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

import exchanges
from exchanges.mexc import signing

KEY, SECRET = "simloadkey", "simloadsecret"
SYMBOL = "BTCUSDT"
ROOT = Path(exchanges.__file__).resolve().parents[1]  # the simulator run is this one


class Frozen(Exception):
    """A request got no answer in time."""


class Client:
    def __init__(self, http: aiohttp.ClientSession, api: str, timeout: float):
        self.http = http
        self.api = api
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def call(
        self, method: str, path: str, params: list[tuple[str, Any]], signed: bool = True
    ) -> tuple[int, Any]:
        headers = {}
        if signed:
            query = signing.signed_query(
                params, SECRET, timestamp_ms=time.time_ns() // 1_000_000, recv_window=60_000
            )
            headers[signing.API_KEY_HEADER] = KEY
        else:
            query = "&".join(f"{k}={v}" for k, v in params)
        try:
            async with self.http.request(
                method, f"{self.api}/{path}?{query}", headers=headers, timeout=self.timeout
            ) as r:
                return r.status, msgspec.json.decode(await r.read())
        except (TimeoutError, aiohttp.ClientError) as e:
            raise Frozen(f"{method} {path}: {e!r}") from None

    async def place(self, side: str, price: Decimal, qty: str) -> str:
        status, body = await self.call(
            "POST",
            "order",
            [("symbol", SYMBOL), ("side", side), ("type", "LIMIT"), ("quantity", qty),
             ("price", str(price))],
        )  # fmt: skip
        if status != 200:
            raise RuntimeError(f"order refused: {status} {body}")
        return str(body["orderId"])

    async def cancel(self, order_id: str) -> None:
        status, body = await self.call(
            "DELETE", "order", [("symbol", SYMBOL), ("orderId", order_id)]
        )
        if status != 200:
            raise RuntimeError(f"cancel refused: {status} {body}")


def far_prices(mid: Decimal, n: int, tick: Decimal) -> list[tuple[str, Decimal]]:
    """``n`` prices 5-30 % away from ``mid``, alternately under (buys) and over (sells)."""
    half = max(1, n // 2)
    out: list[tuple[str, Decimal]] = []
    for i in range(n):
        away = Decimal("0.05") + Decimal("0.25") * (i // 2) / half
        if i % 2 == 0:
            out.append(("BUY", (mid * (1 - away)).quantize(tick)))
        else:
            out.append(("SELL", (mid * (1 + away)).quantize(tick)))
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def messages(http: aiohttp.ClientSession, base: str) -> int:
    async with http.get(f"{base}/_sim/state", timeout=aiohttp.ClientTimeout(total=30)) as r:
        return int((await r.json())["messages"])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "sim.json"
        venue: dict[str, Any] = {
            "venue": "mexc",
            "rate_limits": False,
            "accounts": [
                {
                    "api_key": KEY,
                    "api_secret": SECRET,
                    "balances": {"USDT": "1000000000", "BTC": "100000"},
                }
            ],
        }
        cfg.write_bytes(msgspec.json.encode({"venues": [venue], "data": args.data or ""}))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "exchanges.sim.cli", "--config", str(cfg),
            "--speed", str(args.speed),
            stdout=asyncio.subprocess.PIPE, cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=os.environ.get("PYTHONPATH", str(ROOT))),
        )  # fmt: skip
        out: dict[str, Any] = {"orders_wanted": args.orders, "speed": args.speed}
        try:
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            match = re.search(r"REST (http://127\.0\.0\.1:\d+)(/api/v3)", line)
            if not match:
                raise RuntimeError(f"no REST URL in {line!r}")
            base = match.group(1)
            conn = aiohttp.TCPConnector(limit=args.concurrency)
            async with aiohttp.ClientSession(connector=conn) as http:
                client = Client(http, base + match.group(2), args.timeout)
                out.update(await measure(client, http, base, args))
        finally:
            if proc.returncode is None:
                t0 = time.perf_counter()
                proc.send_signal(signal.SIGTERM)
                try:
                    code = await asyncio.wait_for(proc.wait(), args.exit_timeout)
                    out["sigterm_to_exit_s"] = round(time.perf_counter() - t0, 3)
                    out["exit_code"] = code
                except TimeoutError:
                    out["sigterm_to_exit_s"] = f"> {args.exit_timeout} (killed)"
                    proc.kill()
                    await proc.wait()
    return out


async def measure(
    client: Client, http: aiohttp.ClientSession, base: str, args: argparse.Namespace
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _, ticker = await client.call("GET", "ticker/bookTicker", [("symbol", SYMBOL)], signed=False)
    mid = (Decimal(ticker["bidPrice"]) + Decimal(ticker["askPrice"])) / 2
    _, info = await client.call("GET", "exchangeInfo", [("symbol", SYMBOL)], signed=False)
    tick = Decimal(1).scaleb(-int(info["symbols"][0]["quoteAssetPrecision"]))
    qty = "0.0001"

    # ---- resting orders
    todo = far_prices(mid, args.orders, tick)
    placed = 0
    frozen = ""
    t0 = time.perf_counter()
    queue: asyncio.Queue[tuple[str, Decimal]] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)

    async def worker() -> None:
        nonlocal placed, frozen
        while not frozen and not queue.empty():
            side, price = queue.get_nowait()
            try:
                await client.place(side, price, qty)
            except Frozen as e:
                frozen = f"no answer after {placed} resting orders ({e})"
                return
            placed += 1
            if args.progress and placed % 2000 == 0:
                print(f"  {placed} resting", file=sys.stderr)

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    out["resting_orders"] = placed
    out["place_all_s"] = round(time.perf_counter() - t0, 2)
    if frozen:
        out["frozen"] = frozen
        return out

    # ---- order requests while the market replays
    m0, w0 = await messages(http, base), time.perf_counter()
    place_ms: list[float] = []
    cancel_ms: list[float] = []
    near = far_prices(mid, 2, tick)[0][1]  # 5 % under the mid: rests
    for _ in range(args.requests):
        t = time.perf_counter()
        try:
            oid = await client.place("BUY", near, qty)
            t1 = time.perf_counter()
            await client.cancel(oid)
        except Frozen as e:
            out["frozen"] = f"during the timed requests: {e}"
            break
        t2 = time.perf_counter()
        place_ms.append((t1 - t) * 1e3)
        cancel_ms.append((t2 - t1) * 1e3)
        await asyncio.sleep(args.pause)
    m1, w1 = await messages(http, base), time.perf_counter()
    both = place_ms + cancel_ms
    out.update(
        {
            "timed_requests": len(both),
            "request_p50_ms": round(statistics.median(both), 2) if both else None,
            "request_p99_ms": round(pct(both, 0.99), 2),
            "request_max_ms": round(max(both), 2) if both else None,
            "place_p50_ms": round(statistics.median(place_ms), 2) if place_ms else None,
            "place_p99_ms": round(pct(place_ms, 0.99), 2),
            "cancel_p50_ms": round(statistics.median(cancel_ms), 2) if cancel_ms else None,
            "cancel_p99_ms": round(pct(cancel_ms, 0.99), 2),
            "market_messages_per_s": round((m1 - m0) / (w1 - w0)),
        }
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=20_000, help="resting orders to place")
    ap.add_argument("--speed", type=float, default=50.0, help="replay speed (x real time)")
    ap.add_argument("--requests", type=int, default=200, help="timed place+cancel pairs")
    ap.add_argument("--pause", type=float, default=0.01, help="seconds between timed pairs")
    ap.add_argument("--concurrency", type=int, default=16, help="requests in flight placing")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds before a request is lost")
    ap.add_argument("--exit-timeout", type=float, default=30.0, help="seconds to wait for exit")
    ap.add_argument("--data", default=None, help="catalog (default: the bundled sample)")
    ap.add_argument("--progress", action="store_true", help="report placing progress")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    out = asyncio.run(run(args))
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>24}: {v}")
    return 0 if "frozen" not in out else 1


if __name__ == "__main__":
    raise SystemExit(main())
