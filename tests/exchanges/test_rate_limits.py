"""One rate-limit row, three users: the replay venue, the exchange simulator and the live
REST client's limiter all refuse the request past MEXC's order + cancel row, and all
follow when the row changes."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path

import builders
import msgspec
import pytest

from arbsim.core.book import OrderBook
from arbsim.core.errors import RateLimited, VenueError
from arbsim.core.model import Order, OrderRequest, Side, TimeInForce, Trade
from arbsim.core.rules import RateLimit, Scope, VenueRules
from arbsim.data.catalog import Catalog
from arbsim.runtime.latency import ConstantLatency
from arbsim.runtime.loop import VirtualTimeLoop
from exchanges.gateio.rest import ENDPOINTS as GATE_ENDPOINTS
from exchanges.gateio.rules import GATEIO_RULES
from exchanges.gateio.wsapi import CHANNELS
from exchanges.live.credentials import Credentials
from exchanges.live.http import RateLimiter
from exchanges.mexc.rest import ENDPOINTS as MEXC_ENDPOINTS
from exchanges.mexc.rest import MexcRestClient
from exchanges.mexc.rules import MEXC_RULES
from exchanges.sim import SimConfig, VenueConfig, run_simulator
from exchanges.sim.runner import VENUE_SERVERS
from exchanges.simulated.fills import FillModel
from exchanges.simulated.replay import ReplayVenue
from exchanges.simulated.rules import RequestLimiter

TS = builders.T0


def with_order_limit(rules: VenueRules, limit: int) -> VenueRules:
    """``rules`` with the ``order`` row changed to ``limit`` requests."""
    rows = tuple(
        msgspec.structs.replace(r, limit=limit) if r.name == "order" else r
        for r in rules.rate_limits
    )
    return msgspec.structs.replace(rules, rate_limits=rows)


RULES = [MEXC_RULES, with_order_limit(MEXC_RULES, 3)]
IDS = ["mexc table", "row changed to 3"]


def test_the_mexc_row_is_12_order_or_cancel_requests_per_second_per_account() -> None:
    row = MEXC_RULES.rate_limit("order")
    assert (row.limit, row.window_s, row.scope) == (12, 1.0, Scope.ACCOUNT)
    assert row.kinds == {"place", "cancel"}
    assert MEXC_ENDPOINTS["place"].costs[0] == ("order", 1)
    assert MEXC_ENDPOINTS["cancel"].costs[0] == ("order", 1)


def test_every_endpoint_is_charged_to_a_row_of_its_venue_table() -> None:
    for rules, costs in [
        (MEXC_RULES, [e.costs for e in MEXC_ENDPOINTS.values()]),
        (GATEIO_RULES, [e.costs for e in GATE_ENDPOINTS.values()]),
        (GATEIO_RULES, [c.costs for c in CHANNELS.values()]),
    ]:
        families = {family for cs in costs for family, _ in cs}
        assert families <= {r.name for r in rules.rate_limits}, rules.name


def test_rows_name_each_family_once() -> None:
    row = RateLimit(name="x", limit=1, window_s=1.0, scope=Scope.ACCOUNT)
    with pytest.raises(ValueError, match="unique"):
        msgspec.structs.replace(MEXC_RULES, rate_limits=(row, row))


class _Sink:
    def on_book(self, venue: str, book: OrderBook) -> None:
        return None

    def on_trade(self, venue: str, trade: Trade) -> None:
        return None

    def on_order(self, order: Order) -> None:
        return None


def replay_burst(rules: VenueRules, catalog: Path, n: int) -> list[str]:
    """``n`` order requests sent at once to a replay venue: the code of each answer."""
    loop = VirtualTimeLoop(TS)
    try:
        fills = FillModel(
            balances={"USDT": D("100000")},
            latency=ConstantLatency(1_000_000, 1_000_000),
            rules=rules,
        )
        venue = ReplayVenue("mexc", Catalog(catalog), loop=loop, fills=fills)

        async def one(i: int) -> str:
            req = OrderRequest(
                venue="mexc",
                symbol="BTC/USDT",
                side=Side.BUY,
                qty=D("0.01"),
                price=D("100.0"),
                tif=TimeInForce.IOC,
                client_order_id=f"c{i}",
            )
            try:
                await venue.place_order(req)
            except VenueError as e:
                return f"{e.venue}:{e.code}"
            return "answered"

        async def burst() -> list[str]:
            await venue.start(["BTC/USDT"], _Sink())
            return await asyncio.gather(*(one(i) for i in range(n)))

        return loop.run_until_complete(burst())
    finally:
        loop.close()


@pytest.mark.parametrize("rules", RULES, ids=IDS)
def test_replay_venue_rejects_the_request_past_the_row(rules: VenueRules, tmp_path: Path) -> None:
    n = rules.rate_limit("order").limit
    v = builders.VenueData(builders.instrument("mexc"))
    v.message(TS, TS, bids=[(99.9, 5.0)], asks=[(100.0, 50.0)], snapshot=True)
    builders.write_catalog(tmp_path / "cat", [v])
    codes = replay_burst(rules, tmp_path / "cat", n + 1)
    assert codes[:n] == ["answered"] * n
    assert codes[n] == "mexc:429"


@pytest.mark.parametrize("rules", RULES, ids=IDS)
async def test_simulator_and_client_limiter_refuse_the_request_past_the_row(
    rules: VenueRules, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = rules.rate_limit("order").limit
    # the simulator serves MEXC with these rules (VENUE_SERVERS is where it reads them)
    monkeypatch.setitem(
        VENUE_SERVERS, "mexc", msgspec.structs.replace(VENUE_SERVERS["mexc"], rules=rules)
    )
    cfg = SimConfig(venues=[VenueConfig(venue="mexc")], speed=0)
    async with run_simulator(cfg) as sim:
        v = sim.venues["mexc"]
        creds = Credentials(v.api_key, v.api_secret)
        limited = MexcRestClient(
            v.base_url, creds, limiter=RateLimiter(rules.rate_limits, max_wait_s=0.0)
        )
        # clients without a limiter (two: a 429 pauses the client that received it)
        unlimited = [MexcRestClient(v.base_url, creds, limiter=RateLimiter(())) for _ in "pc"]

        async def place(client: MexcRestClient) -> str:
            params = [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"),
                      ("quantity", "0.001"), ("price", "1000.00")]  # fmt: skip
            try:
                await client.place_order(params)
            except VenueError as e:
                return str(e.code)
            return "placed"

        async def cancel(client: MexcRestClient) -> str:
            try:
                await client.cancel_order("BTCUSDT", client_order_id="unknown")
            except VenueError as e:
                return str(e.code)
            return "canceled"

        try:
            # order and cancel share the row: the client lets n through, then refuses
            # the next itself (nothing sent)
            codes = [await (place if i % 2 else cancel)(limited) for i in range(n)]
            assert "429" not in codes and "client" not in codes
            with pytest.raises(RateLimited) as info:
                await limited.cancel_order("BTCUSDT", client_order_id="unknown")
            assert info.value.code == "client"
            # a client without a limiter reaches the simulator, which refuses both kinds
            assert await place(unlimited[0]) == "429"
            assert await cancel(unlimited[1]) == "429"
        finally:
            for client in (limited, *unlimited):
                await client.close()


def test_exchange_side_counter_follows_scope() -> None:
    limiter = RequestLimiter(GATEIO_RULES.rate_limits)
    place = GATEIO_RULES.rate_limit("place")
    for i in range(place.limit):
        assert limiter.hit("place", TS + i, account="k", market="BTC_USDT") is None
    breach = limiter.hit("place", TS + place.limit, account="k", market="BTC_USDT")
    assert breach is not None and breach.limit is place
    # another market and another account have their own counters
    assert limiter.hit("place", TS, account="k", market="ETH_USDT") is None
    assert limiter.hit("place", TS, account="other", market="BTC_USDT") is None
    assert limiter.remaining(place, TS + place.limit, account="k", market="BTC_USDT") == (
        0,
        TS + place.window_ns,
    )
    # not enforced: counted for the headers, never refused
    loose = RequestLimiter(GATEIO_RULES.rate_limits, enforce=False)
    for i in range(place.limit + 1):
        assert loose.hit("place", TS + i, market="BTC_USDT") is None
    assert loose.remaining(place, TS + place.limit, market="BTC_USDT")[0] == 0
