"""Backtest venue: Parquet catalog replay with the shared matching engine."""

from exchanges.replay.venue import ReplayVenue

__all__ = ["ReplayVenue"]
