"""An independent client: replay ccxt's recorded request shapes against the simulator.

The fixtures (../shared/realdata/*/..._request_static_spot.json) hold the URLs (parameter
names and order) and JSON bodies ccxt sends. Each request whose endpoint the simulator
serves is re-sent verbatim except for the timestamp and signature (re-made with the project
signing modules); the simulator must not refuse it for its shape (a missing or malformed
parameter, an unknown route). Business answers (unknown order, balance) are fine.
"""

from __future__ import annotations

import json
import shutil
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec
import pytest

from arbsim.core.model import Instrument
from arbsim.data.catalog import Catalog
from exchanges.gateio import signing as gate_signing
from exchanges.mexc import signing as mexc_signing
from exchanges.sim.config import AccountConfig, SimConfig, VenueConfig, VenueName, default_catalog
from exchanges.sim.runner import SimVenue, run_simulator

REALDATA = Path(__file__).resolve().parents[3].parent / "shared" / "realdata"

MEXC_METHODS: dict[str, str] = {
    "createOrder": "POST", "createMarketBuyOrderWithCost": "POST", "fetchOrders": "GET",
    "fetchOrder": "GET", "fetchMyTrades": "GET", "fetchOpenOrders": "GET",
    "cancelAllOrders": "DELETE", "cancelOrder": "DELETE", "fetchBalance": "GET",
    "fetchTrades": "GET", "fetchTime": "GET", "fetchOrderBook": "GET", "fetchBidsAsks": "GET",
}  # fmt: skip
"""ccxt method -> HTTP method (the fixtures do not record it)."""
MEXC_SERVED = frozenset(
    f"/api/v3/{p}"
    for p in ("order", "openOrders", "allOrders", "myTrades", "account", "trades", "time",
              "depth", "ticker/bookTicker")
)  # fmt: skip
MEXC_SHAPE_CODES = frozenset({-1102, -1100, 700004})

GATE_METHODS: dict[str, str] = {
    "createOrder": "POST", "createOrders": "POST", "createMarketBuyOrderWithCost": "POST",
    "fetchMyTrades": "GET", "fetchOpenOrders": "GET", "fetchClosedOrders": "GET",
    "cancelAllOrders": "DELETE", "fetchBalance": "GET", "fetchOrderBook": "GET",
    "fetchTrades": "GET", "fetchOrder": "GET", "cancelOrder": "DELETE", "cancelOrders": "POST",
    "fetchTime": "GET",
}  # fmt: skip
GATE_SERVED_PREFIXES = ("/api/v4/spot/orders", "/api/v4/spot/batch_orders",
                        "/api/v4/spot/my_trades", "/api/v4/spot/open_orders",
                        "/api/v4/spot/accounts", "/api/v4/spot/order_book",
                        "/api/v4/spot/trades", "/api/v4/spot/cancel_batch_orders",
                        "/api/v4/spot/time")  # fmt: skip
GATE_SHAPE_LABELS = frozenset({"MISSING_REQUIRED_PARAM", "INVALID_PARAM_VALUE",
                               "INVALID_REQUEST_BODY"})  # fmt: skip

# Instruments the fixtures trade (no market data: empty books) beside the sample's BTC/USDT.
EXTRA: dict[str, list[tuple[str, str, str]]] = {
    "mexc": [("ADA/USDT", "0.0001", "0.01"), ("ATLAS/USDT", "0.0001", "0.01"),
             ("LTC/USDT", "0.01", "0.001"), ("PYTH/USDT", "0.0001", "0.01")],
    "gateio": [("LTC/USDT", "0.01", "0.0001")],
}  # fmt: skip
BALANCES = {"USDT": "100000", "BTC": "2", "ADA": "100", "ATLAS": "100000", "LTC": "10",
            "PYTH": "1000"}  # fmt: skip


def _fixture(rel: str) -> dict[str, Any]:
    path = REALDATA / rel
    if not path.is_file():
        pytest.skip(f"needs ../shared/realdata/{rel} next to the repo ({path} not found)")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _catalog(tmp: Path) -> Path:
    root = tmp / "catalog"
    shutil.copytree(default_catalog(), root)
    cat = Catalog(root)
    for venue, items in EXTRA.items():
        for symbol, tick, lot in items:
            base, quote = symbol.split("/")
            cat.write_instrument(
                Instrument(venue=venue, symbol=symbol, base=base, quote=quote,
                           tick=Decimal(tick), lot=Decimal(lot), min_notional=Decimal(1))
            )  # fmt: skip
    return root


def _config(tmp: Path, venue: VenueName) -> SimConfig:
    key, secret = ("fixture-key", "fixture-secret")
    return SimConfig(
        venues=[
            VenueConfig(
                venue=venue,
                accounts=[AccountConfig(api_key=key, api_secret=secret, balances=BALANCES)],
                rate_limits=False,
            )
        ],
        data=str(_catalog(tmp)),
        speed=0,
    )


def _resign_mexc(query: str, secret: str) -> str:
    """Same parameters in the same order; fresh timestamp; signature over the rest."""
    parts = query.split("&") if query else []
    if not any(p.startswith("signature=") for p in parts):
        return query
    parts = [f"timestamp={int(time.time() * 1000)}" if p.startswith("timestamp=") else p
             for p in parts]  # fmt: skip
    unsigned = "&".join(p for p in parts if not p.startswith("signature="))
    sig = mexc_signing.sign(secret, unsigned)
    return "&".join(f"signature={sig}" if p.startswith("signature=") else p for p in parts)


async def _send_mexc(
    http: aiohttp.ClientSession, v: SimVenue, method: str, url: str
) -> tuple[int, Any]:
    parts = urlsplit(url)
    query = _resign_mexc(parts.query, v.api_secret)
    headers = {mexc_signing.API_KEY_HEADER: v.api_key, "Content-Type": "application/json"}
    async with http.request(
        method, f"{v.base_url}{parts.path}" + (f"?{query}" if query else ""), headers=headers
    ) as r:
        return r.status, msgspec.json.decode(await r.read())


async def test_mexc_fixture_requests_are_accepted(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    data = _fixture("mexc/mexc_request_static_spot.json")
    replayed = 0
    async with run_simulator(_config(tmp_path, "mexc")) as sim:
        v = sim.venues["mexc"]
        for name, cases in data["methods"].items():
            for case in cases:
                path = urlsplit(case["url"]).path
                if name not in MEXC_METHODS or path not in MEXC_SERVED:
                    continue
                status, body = await _send_mexc(http, v, MEXC_METHODS[name], case["url"])
                where = f"{name} / {case['description']}: {status} {body}"
                assert status not in (404, 405), where
                assert status == 200 or body.get("code") not in MEXC_SHAPE_CODES, where
                replayed += 1
    assert replayed >= 20


async def test_gate_fixture_requests_are_accepted(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    data = _fixture("gateio/gate_request_static_spot.json")
    replayed = 0
    async with run_simulator(_config(tmp_path, "gateio")) as sim:
        v = sim.venues["gateio"]
        for name, cases in data["methods"].items():
            for case in cases:
                parts = urlsplit(case["url"])
                if name not in GATE_METHODS or not parts.path.startswith(GATE_SERVED_PREFIXES):
                    continue
                body = (case.get("output") or "").encode()
                method = GATE_METHODS[name]
                ts = str(time.time())
                headers = gate_signing.request_headers(
                    v.api_key, v.api_secret, method, parts.path, parts.query, body, ts
                )
                url = f"{v.base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
                async with http.request(method, url, data=body or None, headers=headers) as r:
                    status, answer = r.status, msgspec.json.decode(await r.read())
                where = f"{name} / {case['description']}: {status} {answer}"
                assert status not in (401, 404, 405), where
                assert status < 300 or answer.get("label") not in GATE_SHAPE_LABELS, where
                replayed += 1
    assert replayed >= 15
