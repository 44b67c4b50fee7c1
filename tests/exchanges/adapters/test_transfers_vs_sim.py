"""Withdrawals and deposits through the live adapters against the exchange simulator on
127.0.0.1: both venues of one simulator share a transfer network, so a withdrawal from
one account to the other account's deposit address arrives there after the route's
delay. The simulator's own ledger (``/_sim/ledger``) and request counts
(``/_sim/requests``) judge the adapters."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
import pytest

from arbsim.core.errors import BelowMinimum, InsufficientBalance, InvalidOrder, OutcomeUnknown
from arbsim.core.model import TransferStatus, WithdrawRequest
from arbsim.core.ports import TransferVenue
from exchanges.gateio.plugin import GateConfig
from exchanges.gateio.venue import GateVenue
from exchanges.live.credentials import Credentials
from exchanges.live.transfers import WithdrawPolicy
from exchanges.mexc.plugin import MexcConfig
from exchanges.mexc.venue import MexcVenue
from exchanges.sim.config import DelayConfig, FaultRule, SimConfig, TransferRoute, VenueConfig
from exchanges.sim.runner import Simulator, SimVenue, run_simulator

FEE = Decimal("0.0002")
MINIMUM = Decimal("0.001")
DELAY_S = 2.0
ROUTES = [
    TransferRoute(
        asset="BTC", network="BTC", fee=FEE, minimum=MINIMUM, delay=DelayConfig(seconds=DELAY_S)
    ),
    TransferRoute(asset="USDT", network="TRX", fee=Decimal("1"), minimum=Decimal("10")),
]
WITHDRAW_PATH = {"mexc": "/api/v3/capital/withdraw", "gateio": "/api/v4/withdrawals"}
OTHER = {"mexc": "gateio", "gateio": "mexc"}
Venue = MexcVenue | GateVenue


class Clock:
    """The simulator's host clock, which a test moves forward (less than the venues'
    request-time tolerance: MEXC's 5 s recvWindow)."""

    def __init__(self) -> None:
        self.shift_ns = 0

    def __call__(self) -> int:
        return time.time_ns() + self.shift_ns

    def advance(self, seconds: float) -> None:
        self.shift_ns += round(seconds * 1e9)


class World:
    def __init__(self, sim: Simulator, clock: Clock, http: aiohttp.ClientSession):
        self.sim = sim
        self.clock = clock
        self.http = http
        self.venues: list[Venue] = []

    def address(self, name: str, asset: str = "BTC", network: str = "BTC") -> str:
        v = self.sim.venues[name]
        return self.sim.transfers.address(name, v.api_key, asset, network)

    def venue(self, name: str, policy: WithdrawPolicy | None = None) -> Venue:
        v = self.sim.venues[name]
        if policy is None:
            other = OTHER[name]
            policy = WithdrawPolicy(
                allowed=True,
                addresses={
                    "BTC": {"BTC": [self.address(other)]},
                    "USDT": {"TRX": [self.address(other, "USDT", "TRX")]},
                },
            )
        creds = Credentials(v.api_key, v.api_secret)
        venue: Venue
        if name == "mexc":
            venue = MexcVenue(creds, rest_url=v.base_url, ws_url=v.ws_url, withdraw_policy=policy)
        else:
            venue = GateVenue(creds, rest_url=v.api_url, ws_url=v.ws_url, withdraw_policy=policy)
        self.venues.append(venue)
        return venue

    async def ledger(self, name: str) -> dict[str, Any]:
        v: SimVenue = self.sim.venues[name]
        async with self.http.get(v.base_url + "/_sim/ledger") as r:
            data: dict[str, Any] = await r.json()
        return dict(data[v.api_key])

    async def btc(self, name: str) -> Decimal:
        balances = (await self.ledger(name))["balances"]
        free, locked = balances.get("BTC", ["0", "0"])
        return Decimal(free) + Decimal(locked)

    async def requests(self, name: str) -> dict[str, int]:
        async with self.http.get(self.sim.venues[name].base_url + "/_sim/requests") as r:
            counts: dict[str, int] = await r.json()
        return counts


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = Clock()
    cfg = SimConfig(
        venues=[VenueConfig(venue="mexc"), VenueConfig(venue="gateio")],
        speed=0,
        transfers=ROUTES,
    )
    async with run_simulator(cfg, now_ns=clock) as sim, aiohttp.ClientSession() as http:
        w = World(sim, clock, http)
        try:
            yield w
        finally:
            for venue in w.venues:
                await venue.stop()


def request(cid: str, amount: str, address: str, asset: str = "BTC") -> WithdrawRequest:
    network = "BTC" if asset == "BTC" else "TRX"
    return WithdrawRequest(
        client_id=cid, asset=asset, amount=Decimal(amount), network=network, address=address
    )


@pytest.mark.parametrize("source", ["mexc", "gateio"])
async def test_withdrawal_arrives_at_the_other_venue_after_the_delay(
    world: World, source: str
) -> None:
    dest = OTHER[source]
    src, dst = world.venue(source), world.venue(dest)
    assert isinstance(src, TransferVenue) and isinstance(dst, TransferVenue)
    address = await dst.deposit_address("BTC", "BTC")
    assert address == world.address(dest)
    src_before, dst_before = await world.btc(source), await world.btc(dest)
    since = world.clock()

    sent = await src.withdraw(request("rb-0001", "0.5", address))
    assert sent.status is TransferStatus.PENDING and sent.venue_id
    assert (sent.amount, sent.fee, sent.address) == (Decimal("0.5"), FEE, address)

    # left the source at once (send_s 0): amount + fee debited, nothing credited yet
    assert await world.btc(source) == src_before - Decimal("0.5") - FEE
    assert await world.btc(dest) == dst_before
    on_way = await src.fetch_withdrawal("rb-0001")
    assert on_way.status is TransferStatus.SENT and on_way.tx_id
    assert (on_way.amount, on_way.fee, on_way.venue_id) == (Decimal("0.5"), FEE, sent.venue_id)
    pending = await dst.fetch_deposits("BTC", since)
    assert [(d.amount, d.credited, d.tx_id) for d in pending] == [
        (Decimal("0.5"), False, on_way.tx_id)
    ]

    world.clock.advance(DELAY_S / 2)
    assert not (await dst.fetch_deposits("BTC", since))[0].credited
    assert await world.btc(dest) == dst_before

    world.clock.advance(DELAY_S / 2 + 0.1)
    credited = await dst.fetch_deposits("BTC", since)
    assert [(d.amount, d.credited, d.network) for d in credited] == [(Decimal("0.5"), True, "BTC")]
    arrived = await src.fetch_withdrawal("rb-0001")
    assert arrived.status is TransferStatus.ARRIVED
    # the simulator's own ledger: exactly -(amount + fee) / +amount
    assert await world.btc(source) == src_before - Decimal("0.5002")
    assert await world.btc(dest) == dst_before + Decimal("0.5")
    (record,) = (await world.ledger(source))["withdrawals"]
    assert record["client_id"] == "rb-0001" and record["stage"] == "arrived"
    assert (record["amount"], record["fee"], record["received"]) == ("0.5002", "0.0002", "0.5")
    (deposit,) = (await world.ledger(dest))["deposits"]
    assert deposit["amount"] == "0.5" and deposit["credited"] is True
    # and the adapters' balances agree
    assert (await src.fetch_balances()).total("BTC") == src_before - Decimal("0.5002")
    assert (await dst.fetch_balances()).total("BTC") == dst_before + Decimal("0.5")


@pytest.mark.parametrize("name", ["mexc", "gateio"])
async def test_terms_are_the_simulator_config(world: World, name: str) -> None:
    venue = world.venue(name)
    btc = await venue.withdrawal_terms("BTC", "BTC")
    assert (btc.fee, btc.minimum, btc.enabled) == (FEE, MINIMUM - FEE, True)
    usdt = await venue.withdrawal_terms("USDT", "TRX")
    assert (usdt.fee, usdt.minimum) == (Decimal("1"), Decimal("9"))
    # the smallest amount the terms allow goes through; one step less does not
    await venue.withdraw(request("min-ok", str(btc.minimum), world.address(OTHER[name])))
    with pytest.raises(BelowMinimum):
        await venue.withdraw(
            request("min-no", str(btc.minimum - btc.step), world.address(OTHER[name]))
        )


@pytest.mark.parametrize(
    ("name", "below", "short"),
    [("mexc", "30002", "10101"), ("gateio", "AMOUNT_TOO_LITTLE", "BALANCE_NOT_ENOUGH")],
)
async def test_venue_refusals_map_to_arbsim_errors(
    world: World, name: str, below: str, short: str
) -> None:
    venue = world.venue(name)
    address = world.address(OTHER[name])
    before = await world.btc(name)
    with pytest.raises(BelowMinimum) as small:
        await venue.withdraw(request("w-small", "0.0005", address))
    assert small.value.code == below and small.value.venue == name
    with pytest.raises(InsufficientBalance) as big:
        await venue.withdraw(request("w-big", "5", address))  # 2 BTC in the account
    assert big.value.code == short
    assert (await world.ledger(name))["withdrawals"] == []
    assert await world.btc(name) == before
    # a refused request created nothing: its client id may be used again
    ok = await venue.withdraw(request("w-small", "0.01", address))
    assert ok.status is TransferStatus.PENDING


@pytest.mark.parametrize("name", ["mexc", "gateio"])
async def test_refused_locally_without_a_request(world: World, name: str) -> None:
    address = world.address(OTHER[name])
    off = world.venue(name, WithdrawPolicy(allowed=False, addresses={"BTC": {"BTC": [address]}}))
    with pytest.raises(InvalidOrder, match="allow_withdrawals") as disabled:
        await off.withdraw(request("x-1", "0.1", address))
    assert disabled.value.code == "withdrawals_disabled"
    on = world.venue(name, WithdrawPolicy(allowed=True, addresses={"BTC": {"BTC": [address]}}))
    with pytest.raises(InvalidOrder, match=r"withdraw_addresses\[BTC\]\[BTC\]") as unlisted:
        await on.withdraw(request("x-2", "0.1", "bc1qsomebodyelse"))
    assert unlisted.value.code == "address_not_allowed"
    with pytest.raises(InvalidOrder, match=r"withdraw_addresses\[USDT\]\[TRX\]"):
        await on.withdraw(request("x-3", "1", world.address(OTHER[name], "USDT", "TRX"), "USDT"))
    # the same policy asked alone, as a strategy does before it plans a transfer
    with pytest.raises(InvalidOrder, match="allow_withdrawals") as asked:
        off.check_withdrawal("BTC", "BTC")
    assert asked.value.code == "withdrawals_disabled"
    on.check_withdrawal("BTC", "BTC")
    on.check_withdrawal("BTC", "BTC", address)
    with pytest.raises(InvalidOrder) as other:
        on.check_withdrawal("BTC", "BTC", "bc1qsomebodyelse")
    assert other.value.code == "address_not_allowed"
    # nothing reached the simulator: no request at all, no withdrawal in its ledger
    assert await world.requests(name) == {}
    assert (await world.ledger(name))["withdrawals"] == []


@pytest.mark.parametrize("name", ["mexc", "gateio"])
async def test_lost_ack_is_found_by_client_id_and_never_sent_twice(world: World, name: str) -> None:
    venue = world.venue(name)
    address = world.address(OTHER[name])
    before = await world.btc(name)
    path = WITHDRAW_PATH[name]
    world.sim.venues[name].inject_fault(
        FaultRule(kind="lose_ack", status=0, path=path, method="POST")
    )
    req = request("lost-1", "0.25", address)
    with pytest.raises(OutcomeUnknown):
        await venue.withdraw(req)
    found = await venue.fetch_withdrawal("lost-1")
    assert found.status in (TransferStatus.SENT, TransferStatus.PENDING)
    assert (found.amount, found.fee, found.address) == (Decimal("0.25"), FEE, address)
    again = await venue.withdraw(req)
    assert again.venue_id == found.venue_id
    assert len((await world.ledger(name))["withdrawals"]) == 1
    assert (await world.requests(name))[f"POST {path}"] == 1
    assert await world.btc(name) == before - Decimal("0.25") - FEE


@pytest.mark.parametrize("name", ["mexc", "gateio"])
async def test_a_used_client_id_is_not_sent_again_after_a_restart(world: World, name: str) -> None:
    req = request("once-1", "0.1", world.address(OTHER[name]))
    first = await world.venue(name).withdraw(req)
    # a new process: its own memory is empty, the venue's history is not
    again = await world.venue(name).withdraw(req)
    assert again.venue_id == first.venue_id and again.client_id == "once-1"
    assert (await world.requests(name))[f"POST {WITHDRAW_PATH[name]}"] == 1
    assert len((await world.ledger(name))["withdrawals"]) == 1


@pytest.mark.parametrize("name", ["mexc", "gateio"])
async def test_unanswered_withdrawal_is_not_sent_again(world: World, name: str) -> None:
    venue = world.venue(name)
    path = WITHDRAW_PATH[name]
    # a 503 before the venue handled it: nothing exists, but the client cannot know that
    world.sim.venues[name].inject_fault(
        FaultRule(kind="http_status", status=503, path=path, method="POST")
    )
    req = request("gone-1", "0.25", world.address(OTHER[name]))
    with pytest.raises(OutcomeUnknown):
        await venue.withdraw(req)
    with pytest.raises(OutcomeUnknown, match="not sent again"):
        await venue.withdraw(req)
    assert (await world.requests(name))[f"POST {path}"] == 1
    assert (await world.ledger(name))["withdrawals"] == []


@pytest.mark.parametrize("config", [MexcConfig, GateConfig])
def test_config_allow_list_is_validated(config: type[MexcConfig] | type[GateConfig]) -> None:
    ok = msgspec.convert(
        {
            "name": "v",
            "allow_withdrawals": True,
            "withdraw_addresses": {"BTC": {"BTC": ["bc1qexample"]}},
        },
        config,
    )
    policy = ok.withdraw_policy()
    assert policy.allowed and policy.addresses == {"BTC": {"BTC": ["bc1qexample"]}}
    assert not msgspec.convert({"name": "v"}, config).withdraw_policy().allowed
    for bad, why in [
        ({"btc": {"BTC": ["a"]}}, "upper case"),
        ({"BTC": {"BTC": []}}, "no address listed"),
        ({"BTC": {"BTC": [" a "]}}, "blanks"),
        ({"BTC": ["a"]}, "Expected `object`"),
    ]:
        with pytest.raises(msgspec.ValidationError, match=why) as e:
            msgspec.convert({"name": "v", "withdraw_addresses": bad}, config)
        assert "withdraw_addresses" in str(e.value)
