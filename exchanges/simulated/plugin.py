"""The simulated venue kinds (entry points ``arbsim.venues: replay`` and ``paper``)."""

from __future__ import annotations

from arbsim.core.errors import ConfigError
from arbsim.core.ports import FeedSpec, Venue, VenuePlugin, VenueSetup
from arbsim.data.catalog import Catalog
from arbsim.runtime.loop import VirtualTimeLoop
from exchanges.simulated.config import PaperConfig, ReplayConfig
from exchanges.simulated.fills import FillModel
from exchanges.simulated.paper import PaperVenue
from exchanges.simulated.replay import ReplayVenue


def build_replay(cfg: ReplayConfig, setup: VenueSetup) -> Venue:
    if setup.catalog is None or not isinstance(setup.loop, VirtualTimeLoop):
        raise ConfigError(f"venue {cfg.name}: a replay venue runs only in a backtest")
    fills = FillModel.from_config(cfg, setup.rules(cfg.rules, cfg.name))
    venue = ReplayVenue(cfg.name, Catalog(setup.catalog), loop=setup.loop, fills=fills)
    if setup.transfers is not None:
        venue.join_network(setup.transfers, cfg.transfers)
    return venue


def build_paper(cfg: PaperConfig, setup: VenueSetup) -> Venue:
    exchange = cfg.exchange or cfg.name
    feed = setup.feed(exchange, FeedSpec(cfg.name, cfg.rest_url, cfg.ws_url))
    fills = FillModel.from_config(cfg, setup.rules(cfg.rules, exchange))
    venue = PaperVenue(feed, fills=fills, name=cfg.name, clock=setup.clock)
    if setup.transfers is not None:
        venue.join_network(setup.transfers, cfg.transfers)
    return venue


def replay() -> VenuePlugin[ReplayConfig]:
    """Backtest venues: the catalog's data under the venue's name, simulated fills."""
    return VenuePlugin(config=ReplayConfig, modes=frozenset({"backtest"}), build=build_replay)


def paper() -> VenuePlugin[PaperConfig]:
    """Paper venues: an exchange's live public data, simulated fills."""
    return VenuePlugin(config=PaperConfig, modes=frozenset({"paper"}), build=build_paper)
