"""Minimal signed clients for the simulator tests (built on the project's signing modules)."""

from __future__ import annotations

import time
from typing import Any, TypedDict

import aiohttp
import msgspec

from exchanges.gateio import signing as gate_signing
from exchanges.mexc import signing as mexc_signing
from exchanges.sim.runner import SimVenue


class MexcAuth(TypedDict, total=False):
    """Signing overrides for :func:`mexc_call` (what a rejection test gets wrong)."""

    key: str
    secret: str
    timestamp_ms: int
    recv_window: int


class GateAuth(TypedDict, total=False):
    """Signing overrides for :func:`gate_call`."""

    key: str
    secret: str
    timestamp: str


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def mexc_call(
    session: aiohttp.ClientSession,
    venue: SimVenue,
    method: str,
    path: str,
    params: list[tuple[str, Any]] | None = None,
    *,
    signed: bool = True,
    timestamp_ms: int | None = None,
    recv_window: int = 5000,
    key: str | None = None,
    secret: str | None = None,
) -> tuple[int, Any]:
    """A MEXC request as ccxt sends it: every parameter in the query, signature last."""
    headers = {"Content-Type": "application/json"}
    if signed:
        query = mexc_signing.signed_query(
            params or [],
            secret or venue.api_secret,
            timestamp_ms=now_ms() if timestamp_ms is None else timestamp_ms,
            recv_window=recv_window,
        )
        headers[mexc_signing.API_KEY_HEADER] = key or venue.api_key
    else:
        query = "&".join(f"{k}={v}" for k, v in params or [])
    url = f"{venue.base_url}/api/v3/{path}" + (f"?{query}" if query else "")
    async with session.request(method, url, headers=headers) as r:
        return r.status, _decode(await r.read())


async def gate_call(
    session: aiohttp.ClientSession,
    venue: SimVenue,
    method: str,
    path: str,
    query: str = "",
    body: Any = None,
    *,
    signed: bool = True,
    timestamp: str | None = None,
    key: str | None = None,
    secret: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """A Gate v4 request signed with KEY / Timestamp / SIGN headers."""
    full_path = f"/api/v4/{path}"
    raw_body = b"" if body is None else msgspec.json.encode(body)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if signed:
        ts = timestamp or str(time.time())
        headers.update(
            gate_signing.request_headers(
                key or venue.api_key,
                secret or venue.api_secret,
                method,
                full_path,
                query,
                raw_body,
                ts,
            )
        )
    url = venue.base_url + full_path + (f"?{query}" if query else "")
    async with session.request(method, url, data=raw_body or None, headers=headers) as r:
        return r.status, _decode(await r.read()), dict(r.headers)


def _decode(raw: bytes) -> Any:
    """JSON, or the raw text of a non-JSON answer (injected 5xx pages)."""
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw.decode(errors="replace")
