"""Paper trading: simulated fills by the shared matching engine on live market data."""

from exchanges.paper.venue import MarketFeed, PaperVenue

__all__ = ["MarketFeed", "PaperVenue"]
