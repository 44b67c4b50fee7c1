"""Alerts of a paper / live run: thresholds from the config's ``alerts`` section, a log
record at WARNING or ERROR, an ``alert`` event, and a JSON POST to the webhook when one
is configured.

- ``balance_latency`` (WARNING): a balance request took longer than
  ``balance_latency_ms`` (default 50 ms);
- ``request_latency`` (WARNING): another API request (place, cancel, fetch_order,
  open_orders) took longer than ``request_latency_ms`` (default 100 ms);
- ``error_rate`` (ERROR): more than ``error_rate`` (default 1%) of a venue's API requests
  failed for a temporary reason (5xx, timeout, lost connection, rate limit, an order
  answer that never came) within the last ``error_window_s``, once at least
  ``min_requests`` were made there;
- ``circuit_breaker`` (ERROR): the breaker tripped (always, whatever the thresholds);
- ``venue_down`` (WARNING): a venue's streams or REST API went down (a stream drop that
  recovers in a moment is one alert too; the metrics tell how often).

Repeats are rate-limited per alert and venue (and request kind): the first one goes
out at once, later ones at most once per ``repeat_s``, each saying how many were held
back in between (``suppressed``). This module decides and formats; sending the webhook
is the operations layer's (it holds the HTTP client).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from arbsim.core.checks import non_negative, positive
from arbsim.core.errors import ConfigError
from arbsim.core.redact import register_secret

__all__ = ["BALANCE_KIND", "REQUEST_KINDS", "AlertConfig", "Alerts"]

log = logging.getLogger("arbsim.alerts")

#: the request kinds whose latency and failures count (``tick_to_trade`` is no request)
REQUEST_KINDS = frozenset({"place", "cancel", "fetch_balances", "fetch_order", "open_orders"})
BALANCE_KIND = "fetch_balances"


class AlertConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The ``alerts`` section of a paper / live config."""

    #: a balance request slower than this (ms) alerts
    balance_latency_ms: float = 50.0
    #: any other API request slower than this (ms) alerts
    request_latency_ms: float = 100.0
    #: a venue's share of failed API requests above this (0..1) alerts
    error_rate: float = 0.01
    #: ... over this window (s)
    error_window_s: float = 60.0
    #: ... once at least this many requests were made in the window
    min_requests: int = 20
    #: the same alert again at most once per this many seconds
    repeat_s: float = 300.0
    #: POST each alert as JSON here (http:// or https://)
    webhook_url: str | None = None
    #: or: the environment variable holding the webhook URL (kept out of files and logs)
    webhook_url_env: str | None = None
    #: how long a webhook POST may take (s)
    webhook_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        non_negative(
            balance_latency_ms=self.balance_latency_ms,
            request_latency_ms=self.request_latency_ms,
            error_rate=self.error_rate,
            min_requests=self.min_requests,
            repeat_s=self.repeat_s,
        )
        positive(error_window_s=self.error_window_s, webhook_timeout_s=self.webhook_timeout_s)
        if self.error_rate > 1:
            raise ValueError(f"error_rate: must be <= 1, got {self.error_rate}")
        if self.webhook_url is not None:
            _check_url("webhook_url", self.webhook_url)
            if self.webhook_url_env is not None:
                raise ValueError(
                    f"webhook_url_env: must be unset when webhook_url is set, got "
                    f"{self.webhook_url_env!r}"
                )

    def webhook(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The webhook URL (from the environment with ``webhook_url_env``: registered as
        a secret, so no log shows it); ConfigError naming the variable when it is unset."""
        if self.webhook_url is not None:
            return self.webhook_url
        if self.webhook_url_env is None:
            return None
        env = os.environ if environ is None else environ
        url = env.get(self.webhook_url_env, "")
        if not url:
            raise ConfigError(
                f"alerts.webhook_url_env: the environment variable {self.webhook_url_env} "
                "is not set"
            )
        try:
            _check_url(self.webhook_url_env, url)
        except ValueError:
            raise ConfigError(
                f"alerts.webhook_url_env: {self.webhook_url_env} must hold an http:// or "
                "https:// URL"
            ) from None
        register_secret(url)
        return url


def _check_url(key: str, url: str) -> None:
    if not url.startswith(("http://", "https://")) or len(url) < 10:
        raise ValueError(f"{key}: must be an http:// or https:// URL, got {url!r}")


class _Window:
    """Requests and failures of one venue within the error window."""

    def __init__(self) -> None:
        self.requests: deque[float] = deque()
        self.failures: deque[float] = deque()

    def trim(self, now: float, window: float) -> None:
        for q in (self.requests, self.failures):
            while q and q[0] <= now - window:
                q.popleft()


class Alerts:
    """Decides when to alert; ``emit`` hands each alert (a dict) to the operations layer
    (event stream, webhook) after it is logged."""

    def __init__(
        self,
        config: AlertConfig,
        *,
        run_id: str = "",
        emit: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        raised: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.run_id = run_id
        self.emit = emit
        #: told the name of every alert raised, sent or held back (the metrics count them)
        self.raised = raised
        self.clock = clock
        self._last: dict[tuple[str, ...], float] = {}
        self._held: dict[tuple[str, ...], int] = {}
        self._windows: dict[str, _Window] = {}
        #: alerts raised (sent or held back) per name
        self.counts: dict[str, int] = {}
        self.sent: list[dict[str, Any]] = []

    # ---------------------------------------------------------------- inputs
    def request(self, kind: str, venue: str, latency_ns: int) -> None:
        """A request's measured round trip (``kind`` outside :data:`REQUEST_KINDS`:
        ignored)."""
        if kind not in REQUEST_KINDS:
            return
        cfg = self.config
        ms = latency_ns / 1e6
        if kind == BALANCE_KIND:
            if ms > cfg.balance_latency_ms:
                self.alert(
                    "balance_latency", logging.WARNING,
                    f"{venue}: balance request took {ms:.1f} ms (> {cfg.balance_latency_ms:g} ms)",
                    venue=venue, kind=kind, value=round(ms, 3), threshold=cfg.balance_latency_ms,
                )  # fmt: skip
        elif ms > cfg.request_latency_ms:
            self.alert(
                "request_latency", logging.WARNING,
                f"{venue}: {kind} request took {ms:.1f} ms (> {cfg.request_latency_ms:g} ms)",
                venue=venue, kind=kind, value=round(ms, 3), threshold=cfg.request_latency_ms,
            )  # fmt: skip
        now = self.clock()
        w = self._windows.setdefault(venue, _Window())
        w.requests.append(now)
        self._check_rate(venue, w, now)

    def failure(self, venue: str, error: Exception) -> None:
        """A request to ``venue`` failed for a temporary reason."""
        now = self.clock()
        w = self._windows.setdefault(venue, _Window())
        w.failures.append(now)
        self._check_rate(venue, w, now, str(error))

    def _check_rate(self, venue: str, w: _Window, now: float, last_error: str = "") -> None:
        cfg = self.config
        w.trim(now, cfg.error_window_s)
        n = len(w.requests)
        if not w.failures or n < max(1, cfg.min_requests):
            return
        rate = len(w.failures) / n
        if rate > cfg.error_rate:
            self.alert(
                "error_rate", logging.ERROR,
                f"{venue}: {len(w.failures)} of {n} API requests failed in the last "
                f"{cfg.error_window_s:g} s ({rate:.1%} > {cfg.error_rate:.1%})"
                + (f"; last: {last_error}" if last_error else ""),
                venue=venue, value=round(rate, 6), threshold=cfg.error_rate,
                failures=len(w.failures), requests=n,
            )  # fmt: skip

    def breaker(self, ts: int, reason: str) -> None:
        """The circuit breaker tripped: always alerts."""
        self.alert(
            "circuit_breaker", logging.ERROR, f"circuit breaker tripped: {reason}",
            reason=reason, ts=ts,
        )  # fmt: skip

    def venue_down(self, venue: str, detail: str) -> None:
        self.alert("venue_down", logging.WARNING, f"{venue} down: {detail}", venue=venue,
                   detail=detail)  # fmt: skip

    # ---------------------------------------------------------------- raising
    def alert(self, name: str, level: int, message: str, **fields: Any) -> bool:
        """Raise alert ``name`` unless the same one (same venue and kind) went out less
        than ``repeat_s`` ago; True when it went out."""
        key = (name, str(fields.get("venue", "")), str(fields.get("kind", "")))
        self.counts[name] = self.counts.get(name, 0) + 1
        if self.raised is not None:
            self.raised(name)
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.config.repeat_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        suppressed = self._held.pop(key, 0)
        alert: dict[str, Any] = {
            "alert": name,
            "level": logging.getLevelName(level),
            "message": message,
            "run_id": self.run_id,
            "time_ns": time.time_ns(),
            "suppressed": suppressed,
            **fields,
        }
        extra = {"event": "alert", **{k: v for k, v in alert.items() if k != "message"}}
        log.log(
            level,
            message + (f" ({suppressed} more since the last such alert)" if suppressed else ""),
            extra=extra,
        )
        self.sent.append(alert)
        if self.emit is not None:
            self.emit(alert)
        return True
