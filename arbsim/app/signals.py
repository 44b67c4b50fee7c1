"""Stop signals that reach the process whatever its parent did.

A signal mask is inherited: a process started by a parent that had SIGINT or SIGTERM
blocked (some supervisors and libraries block them around a spawn) never receives them,
whatever handler it installs, so Ctrl-C or a service manager's SIGTERM would be lost and
a command would run on (a live session would not stop). Every command that handles these
signals unblocks them first.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def unblock(signals: Iterable[int] = STOP_SIGNALS) -> set[int]:
    """Unblock ``signals`` for this thread; returns the mask before (for :func:`restore`)."""
    return {int(s) for s in signal.pthread_sigmask(signal.SIG_UNBLOCK, list(signals))}


def restore(mask: set[int]) -> None:
    """Put back a mask :func:`unblock` returned."""
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
