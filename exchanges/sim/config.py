"""Configuration of the local exchange simulator (msgspec Structs, strict on unknown keys).

A config file (YAML or JSON) holds one :class:`SimConfig`::

    data: data/sample
    speed: 10
    start: "2026-01-05T00:02:00Z"   # optional window in catalog time
    end: "2026-01-05T00:07:00Z"
    pace: local                     # optional: deliver at the recorded ts_local
    venues:
      - venue: mexc
        port: 18080
        accounts:
          - {api_key: k, api_secret: s, balances: {USDT: "100000", BTC: "1"}}
        faults:
          - {kind: http_status, status: 503, count: 2, path: /api/v3/order}
    transfers:                      # withdrawals between the simulated accounts
      - {asset: BTC, network: BTC, fee: "0.0002", minimum: "0.001",
         delay: {kind: lognormal, median_s: 30, sigma: 0.5}}
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Literal

import msgspec

import arbsim

__all__ = [
    "DEFAULT_BALANCES",
    "DEMO_CREDENTIALS",
    "AccountConfig",
    "DelayConfig",
    "FaultKind",
    "FaultRule",
    "Pace",
    "SimConfig",
    "TransferRoute",
    "VenueConfig",
    "VenueName",
    "default_catalog",
    "load_config",
]

VenueName = Literal["mexc", "gateio"]

Pace = Literal["exchange", "local"]
"""What paces the wire: each message's ``ts_exchange``, or its recorded ``ts_local`` (the
book still moves at ``ts_exchange``)."""

FaultKind = Literal[
    "http_status",  # answer the next `count` matching REST requests with `status` (5xx, 429...)
    "timeout",  # hold the next `count` matching REST requests for `delay_s`, unprocessed
    "lose_ack",  # process the next `count` order requests, then drop the connection
    "slow",  # process the next `count` matching REST requests, answer after `delay_s`
    "lose_ws_reply",  # process the next `count` Gate WebSocket API requests, send no reply
    "skip_seq",  # do not send the next `count` depth updates (ids jump: a gap)
    "duplicate",  # send the next `count` depth updates twice
    "reorder",  # swap the next `count` pairs of consecutive depth updates
    "garbage",  # send a corrupt copy (a price that is not a number) before each of the next
    #             `count` depth updates: a client must refuse it and resync its book
    "pause",  # stop the market-data replay for `delay_s` seconds (0: until "resume")
    "resume",  # end a pause
    "drop_ws",  # close every WebSocket connection now (abruptly)
]

DEFAULT_BALANCES: dict[str, str] = {"USDT": "100000", "BTC": "2"}

DEMO_CREDENTIALS: dict[str, tuple[str, str]] = {
    "mexc": ("mx0vglsimdemokey0001", "0123456789abcdef0123456789abcdef"),
    "gateio": ("sim-gate-demo-key", "sim-gate-demo-secret-0123456789abcdef"),
}
"""Venue -> (api key, api secret) used when a venue config names no account."""


def default_catalog() -> Path:
    """The bundled sample catalog (``data/sample`` beside the packages)."""
    return Path(arbsim.__file__).resolve().parent.parent / "data" / "sample"


class AccountConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One API key of a simulated venue and the balances it starts with."""

    api_key: str
    api_secret: str
    balances: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_BALANCES))


class FaultRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One injected fault (see :data:`FaultKind`).

    ``path`` (prefix) and ``method`` restrict REST faults; ``status`` is the HTTP status of
    ``http_status`` faults and of ``lose_ack`` (0 = drop the connection instead of
    answering); ``delay_s`` is the hold time of ``timeout``, the answer delay of ``slow`` and
    the length of ``pause``.
    """

    kind: FaultKind
    count: int = 1
    status: int = 500
    path: str = ""
    method: str = ""
    delay_s: float = 30.0


class VenueConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One simulated venue.

    ``catalog_venue`` is the venue name inside the catalog whose instruments and market
    data this venue serves (default: the same name). ``port`` 0 picks a free port.
    """

    venue: VenueName
    catalog_venue: str = ""
    port: int = 0
    accounts: list[AccountConfig] = msgspec.field(default_factory=list)
    faults: list[FaultRule] = msgspec.field(default_factory=list)
    rate_limits: bool = True

    @property
    def source(self) -> str:
        """The catalog venue this venue replays."""
        return self.catalog_venue or self.venue

    def effective_accounts(self) -> list[AccountConfig]:
        """The configured accounts, or the demo account when none is configured."""
        if self.accounts:
            return list(self.accounts)
        key, secret = DEMO_CREDENTIALS[self.venue]
        return [AccountConfig(api_key=key, api_secret=secret)]


DelayKind = Literal["fixed", "uniform", "lognormal"]


class DelayConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How long a withdrawal is on its way (exchange-clock seconds), drawn per withdrawal
    from the simulator's seeded generator.

    ``fixed``: ``seconds``; ``uniform``: between ``low_s`` and ``high_s``; ``lognormal``:
    median ``median_s``, shape ``sigma`` (the log's standard deviation).
    """

    kind: DelayKind = "fixed"
    seconds: float = 1.0
    low_s: float = 0.0
    high_s: float = 1.0
    median_s: float = 1.0
    sigma: float = 0.5

    def __post_init__(self) -> None:
        for name in ("seconds", "low_s", "high_s", "median_s", "sigma"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.high_s < self.low_s:
            raise ValueError(f"high_s ({self.high_s}) is below low_s ({self.low_s})")
        if self.kind == "lognormal" and self.median_s <= 0:
            raise ValueError("a lognormal delay needs median_s > 0")


class TransferRoute(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a withdrawal of ``asset`` over ``network`` costs and takes, on every simulated
    venue.

    ``fee`` and ``minimum`` are in the venues' own convention: the ``amount`` of a
    withdrawal request includes the fee, the address receives ``amount - fee``, and
    ``amount`` must be at least ``minimum`` (and above the fee). ``step``: amounts are
    whole multiples of it. ``send_s``: how long the venue holds an accepted withdrawal
    before it leaves (cancellable meanwhile); ``delay``: how long it is then on its way.
    """

    asset: str
    network: str
    fee: Decimal = Decimal(0)
    minimum: Decimal = Decimal(0)
    step: Decimal = Decimal("0.00000001")
    send_s: float = 0.0
    delay: DelayConfig = msgspec.field(default_factory=DelayConfig)

    def __post_init__(self) -> None:
        if not self.asset or not self.network:
            raise ValueError("asset and network must not be empty")
        for name in ("fee", "minimum"):
            value = getattr(self, name)
            if not value.is_finite() or value < 0:
                raise ValueError(f"{name} must be a decimal >= 0, got {value}")
        if not self.step.is_finite() or self.step <= 0:
            raise ValueError(f"step must be a decimal > 0, got {self.step}")
        if not math.isfinite(self.send_s) or self.send_s < 0:
            raise ValueError(f"send_s must be a finite number >= 0, got {self.send_s}")


class SimConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole simulator.

    Attributes
    ----------
    venues:
        The venues to serve, one HTTP server each.
    data:
        Catalog root ("" = the bundled sample).
    speed:
        Replay speed: 1 = real time, 10 = ten times faster; 0 = manual stepping only
        (:meth:`exchanges.sim.runner.Simulator.step`).
    loop:
        Replay the window again (with a full-book update) when it ends.
    start, end:
        The window in catalog time (ISO-8601, naive = UTC; "" = the catalog's first full
        books / its end). Books are built from the catalog up to ``start`` without
        publishing; messages at or after ``start`` and before ``end`` are published.
    pace:
        ``exchange``: each message goes out at its ``ts_exchange``; ``local``: the books
        (and matching) move at ``ts_exchange`` and the wire carries each message at its
        recorded ``ts_local``, reproducing the catalog's feed latency.
    host:
        Listening address (127.0.0.1 unless you mean it).
    transfers:
        The withdrawal routes (asset, network) every venue serves, with fee, minimum and
        delay (:class:`TransferRoute`); none: no deposits or withdrawals.
    transfer_seed:
        Seed of the generator the withdrawal delays are drawn from.
    """

    venues: list[VenueConfig]
    data: str = ""
    speed: float = 1.0
    loop: bool = True
    start: str = ""
    end: str = ""
    pace: Pace = "exchange"
    host: str = "127.0.0.1"
    transfers: list[TransferRoute] = msgspec.field(default_factory=list)
    transfer_seed: int = 0

    def __post_init__(self) -> None:
        seen: set[tuple[str, str]] = set()
        for route in self.transfers:
            key = (route.asset, route.network)
            if key in seen:
                raise ValueError(f"transfer route {route.asset} on {route.network} given twice")
            seen.add(key)

    @property
    def catalog_path(self) -> Path:
        """The catalog root to replay."""
        return Path(self.data) if self.data else default_catalog()


def load_config(path: str | Path) -> SimConfig:
    """Read a YAML (``.yaml``/``.yml``) or JSON config file."""
    p = Path(path)
    raw = p.read_bytes()
    if p.suffix in (".yaml", ".yml"):
        return msgspec.yaml.decode(raw, type=SimConfig)
    return msgspec.json.decode(raw, type=SimConfig)
