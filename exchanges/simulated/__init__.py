"""Simulated fills: the matching engine, venue rules, order entry, replay and paper venues."""
