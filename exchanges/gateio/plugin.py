"""Gate.io as an arbsim venue kind (entry point ``arbsim.venues: gateio``): live trading,
the public market data that paper venues match against, and Gate's order rules for
simulated venues."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec

from arbsim.core.ports import (
    FeedSpec,
    MarketFeed,
    MarketRecorder,
    Venue,
    VenueConfig,
    VenuePlugin,
    VenueSetup,
)
from arbsim.runtime.loop import WallClock
from exchanges.gateio.rules import GATEIO_RULES
from exchanges.live.credentials import Credentials
from exchanges.live.transfers import WithdrawPolicy, check_address_book

if TYPE_CHECKING:
    from exchanges.gateio.venue import GateVenue

#: where live trading takes its credentials from (never from a config file)
API_KEY_ENV = "ARBSIM_GATEIO_API_KEY"
API_SECRET_ENV = "ARBSIM_GATEIO_API_SECRET"


class GateConfig(VenueConfig, frozen=True, tag="gateio"):
    """A live Gate.io account. Endpoints default to the real venue's (PROTOCOLS B1); Gate's
    REST URL includes ``/api/v4``. Orders go over REST or Gate's WebSocket API
    (``order_entry: ws``); books come from ``spot.order_book_update`` or ``spot.obu``.
    Withdrawals are refused unless ``allow_withdrawals`` is true, and then go only to the
    addresses listed in ``withdraw_addresses`` (``{ASSET: {NETWORK: [address, ...]}}``)."""

    rest_url: str | None = None
    ws_url: str | None = None
    api_key_env: str = API_KEY_ENV
    api_secret_env: str = API_SECRET_ENV
    allow_withdrawals: bool = False
    withdraw_addresses: dict[str, dict[str, list[str]]] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_address_book(self.withdraw_addresses)

    def withdraw_policy(self) -> WithdrawPolicy:
        """What this account may withdraw: nothing unless ``allow_withdrawals``, and only
        to the addresses of ``withdraw_addresses`` (asset -> network -> addresses)."""
        return WithdrawPolicy(allowed=self.allow_withdrawals, addresses=self.withdraw_addresses)

    order_entry: Literal["rest", "ws"] = "rest"
    book_channel: Literal["order_book_update", "obu"] = "order_book_update"


def _venue(
    name: str,
    rest_url: str | None,
    ws_url: str | None,
    credentials: Credentials | None,
    recorder: MarketRecorder | None,
    order_entry: Literal["rest", "ws"] = "rest",
    book_channel: Literal["order_book_update", "obu"] = "order_book_update",
    probe_interval_s: float = 0.0,
    withdraw_policy: WithdrawPolicy | None = None,
) -> GateVenue:
    # imported here: a backtest that only needs Gate's rules never loads the network stack
    from exchanges.gateio import rest, ws
    from exchanges.gateio.venue import GateVenue

    return GateVenue(
        credentials,
        name=name,
        rest_url=rest_url or rest.BASE_URL,
        ws_url=ws_url or ws.URL,
        clock=WallClock(),
        order_entry=order_entry,
        book_channel=book_channel,
        recorder=recorder,
        probe_interval_s=probe_interval_s,
        withdraw_policy=withdraw_policy or WithdrawPolicy(),
    )


def build(cfg: GateConfig, setup: VenueSetup) -> Venue:
    creds = Credentials.from_env(setup.environ, cfg.api_key_env, cfg.api_secret_env, cfg.name)
    return _venue(
        cfg.name, cfg.rest_url, cfg.ws_url, creds, setup.recorder, cfg.order_entry,
        cfg.book_channel, setup.probe_interval_s, cfg.withdraw_policy(),
    )  # fmt: skip


def feed(spec: FeedSpec, setup: VenueSetup) -> MarketFeed:
    return _venue(
        spec.name, spec.rest_url, spec.ws_url, None, setup.recorder,
        probe_interval_s=setup.probe_interval_s,
    )  # fmt: skip


def plugin() -> VenuePlugin[GateConfig]:
    """The ``gateio`` venue kind."""
    return VenuePlugin(
        config=GateConfig, modes=frozenset({"live"}), build=build, rules=GATEIO_RULES, feed=feed
    )
