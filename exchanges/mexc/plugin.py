"""MEXC as an arbsim venue kind (entry point ``arbsim.venues: mexc``): live trading, the
public market data that paper venues match against, and MEXC's order rules for simulated
venues."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
from exchanges.live.credentials import Credentials
from exchanges.live.transfers import WithdrawPolicy, check_address_book
from exchanges.mexc.rules import MEXC_RULES

if TYPE_CHECKING:
    from exchanges.mexc.venue import MexcVenue

#: where live trading takes its credentials from (never from a config file)
API_KEY_ENV = "ARBSIM_MEXC_API_KEY"
API_SECRET_ENV = "ARBSIM_MEXC_API_SECRET"


class MexcConfig(VenueConfig, frozen=True, tag="mexc"):
    """A live MEXC account. Endpoints default to the real venue's (PROTOCOLS A1); MEXC's
    REST URL is the host (``https://api.mexc.com``). Withdrawals are refused unless
    ``allow_withdrawals`` is true, and then go only to the addresses listed in
    ``withdraw_addresses`` (``{ASSET: {NETWORK: [address, ...]}}``)."""

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


def _venue(
    name: str,
    rest_url: str | None,
    ws_url: str | None,
    credentials: Credentials | None,
    recorder: MarketRecorder | None,
    probe_interval_s: float = 0.0,
    withdraw_policy: WithdrawPolicy | None = None,
) -> MexcVenue:
    # imported here: a backtest that only needs MEXC's rules never loads the network stack
    from exchanges.mexc import rest, ws
    from exchanges.mexc.venue import MexcVenue

    # the private stream is the public URL with the listen key as a query parameter
    private = ws.PRIVATE_URL if ws_url is None else ws_url + "?listenKey={listen_key}"
    return MexcVenue(
        credentials,
        name=name,
        rest_url=rest_url or rest.BASE_URL,
        ws_url=ws_url or ws.MARKET_URL,
        private_ws_url=private,
        clock=WallClock(),
        recorder=recorder,
        probe_interval_s=probe_interval_s,
        withdraw_policy=withdraw_policy or WithdrawPolicy(),
    )


def build(cfg: MexcConfig, setup: VenueSetup) -> Venue:
    creds = Credentials.from_env(setup.environ, cfg.api_key_env, cfg.api_secret_env, cfg.name)
    return _venue(
        cfg.name, cfg.rest_url, cfg.ws_url, creds, setup.recorder, setup.probe_interval_s,
        cfg.withdraw_policy(),
    )  # fmt: skip


def feed(spec: FeedSpec, setup: VenueSetup) -> MarketFeed:
    return _venue(
        spec.name, spec.rest_url, spec.ws_url, None, setup.recorder, setup.probe_interval_s
    )


def plugin() -> VenuePlugin[MexcConfig]:
    """The ``mexc`` venue kind."""
    return VenuePlugin(
        config=MexcConfig, modes=frozenset({"live"}), build=build, rules=MEXC_RULES, feed=feed
    )
