"""Simulator tests: a package so its conftest and helpers get their own module names."""
