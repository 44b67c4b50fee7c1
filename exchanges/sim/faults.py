"""Injected faults: a queue of one-shot rules, filled from config or ``POST /_sim/faults``.

REST faults are consumed by the servers' middleware, stream faults by the market-data
fan-out; ``pause``/``resume``/``drop_ws`` act at once when they are added.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from exchanges.sim.config import FaultKind, FaultRule

__all__ = ["IMMEDIATE_KINDS", "REST_KINDS", "STREAM_KINDS", "WS_API_KINDS", "FaultState"]

REST_KINDS: frozenset[FaultKind] = frozenset({"http_status", "timeout", "lose_ack", "slow"})
STREAM_KINDS: frozenset[FaultKind] = frozenset({"skip_seq", "duplicate", "reorder", "garbage"})
WS_API_KINDS: frozenset[FaultKind] = frozenset({"lose_ws_reply"})
IMMEDIATE_KINDS: frozenset[FaultKind] = frozenset({"pause", "resume", "drop_ws"})


class _Active(msgspec.Struct, kw_only=True):
    rule: FaultRule
    left: int


class FaultState:
    """Pending faults of one venue; ``on_immediate`` runs pause/resume/drop_ws rules."""

    def __init__(self, on_immediate: Callable[[FaultRule], None] | None = None):
        self._active: list[_Active] = []
        self.on_immediate = on_immediate
        self.fired: dict[str, int] = {}

    def add(self, rule: FaultRule) -> None:
        """Queue a rule (immediate kinds run now)."""
        if rule.kind in IMMEDIATE_KINDS:
            self.fired[rule.kind] = self.fired.get(rule.kind, 0) + 1
            if self.on_immediate is not None:
                self.on_immediate(rule)
            return
        if rule.count > 0:
            self._active.append(_Active(rule=rule, left=rule.count))

    def clear(self) -> None:
        """Forget every pending rule."""
        self._active.clear()

    def pending(self) -> list[dict[str, object]]:
        """Pending rules with their remaining counts (for ``GET /_sim/faults``)."""
        return [{**msgspec.structs.asdict(a.rule), "remaining": a.left} for a in self._active]

    def take(
        self,
        kinds: frozenset[FaultKind],
        method: str = "",
        path: str = "",
        *,
        consume: bool = True,
    ) -> FaultRule | None:
        """Consume one use of the first pending rule of ``kinds`` matching the request
        (``consume=False``: only find it; :meth:`consume` it later)."""
        for active in self._active:
            rule = active.rule
            if rule.kind not in kinds:
                continue
            if rule.method and rule.method.upper() != method.upper():
                continue
            if rule.path and not path.startswith(rule.path):
                continue
            if consume:
                self.consume(rule)
            return rule
        return None

    def consume(self, rule: FaultRule) -> None:
        """Use up one count of a pending rule found with ``take(..., consume=False)``."""
        for active in self._active:
            if active.rule is rule:
                active.left -= 1
                if active.left <= 0:
                    self._active.remove(active)
                self.fired[rule.kind] = self.fired.get(rule.kind, 0) + 1
                return
