"""Range checks for config types, called from their ``__post_init__``.

Each raises ``ValueError("<key>: must be ..., got <value>")``; the config loader turns
the key into the full path of the value (``$.venues[0].balances.BTC``), so an error
names both the key and the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated

import msgspec

Number = Decimal | float | int

#: a config value that is a file or directory path: a relative one is relative to the
#: config file it was read from (the loader resolves it)
ConfigPath = Annotated[str, msgspec.Meta(extra={"config_path": True})]


def at_least(key: str, value: Number | None, low: Number, *, strict: bool = False) -> None:
    """``value >= low`` (``> low`` with ``strict``); ``None`` passes (unset)."""
    if value is None:
        return
    if value < low or (strict and value == low):
        op = ">" if strict else ">="
        raise ValueError(f"{key}: must be {op} {low}, got {value}")


def at_most(key: str, value: Number | None, high: Number, *, strict: bool = False) -> None:
    """``value <= high`` (``< high`` with ``strict``); ``None`` passes (unset)."""
    if value is None:
        return
    if value > high or (strict and value == high):
        op = "<" if strict else "<="
        raise ValueError(f"{key}: must be {op} {high}, got {value}")


def non_negative(**values: Number | None) -> None:
    """Every value ``>= 0``."""
    for key, value in values.items():
        at_least(key, value, 0)


def positive(**values: Number | None) -> None:
    """Every value ``> 0``."""
    for key, value in values.items():
        at_least(key, value, 0, strict=True)


def non_negative_map(key: str, values: Mapping[str, Number]) -> None:
    """Every value of a mapping ``>= 0`` (``key.<name>`` names the one that is not)."""
    for name, value in values.items():
        at_least(f"{key}.{name}", value, 0)


def positive_map(key: str, values: Mapping[str, Number]) -> None:
    """Every value of a mapping ``> 0``."""
    for name, value in values.items():
        at_least(f"{key}.{name}", value, 0, strict=True)
