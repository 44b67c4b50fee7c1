"""Rejections of the simulator and how each venue spells them.

Every kind the simulator refuses a request with (:data:`arbsim.core.rules.RejectKind`: the
common :class:`~arbsim.core.rules.Rejection` kinds and the request-shape and bookkeeping
:class:`~arbsim.core.rules.SimError` kinds) is spelled by the venue's ``REJECTIONS`` table
(``exchanges/mexc/errors.py``, ``exchanges/gateio/errors.py``), answered through its
``ERROR_SPEC``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from arbsim.core.rules import Rejection, RejectKind, SimError
from exchanges.gateio import errors as gate_errors
from exchanges.live.errors import ErrorSpec
from exchanges.mexc import errors as mexc_errors

__all__ = [
    "RejectKind",
    "SimError",
    "SimReject",
    "int_param",
    "kind_of",
    "reject_response",
]

_KINDS: dict[str, RejectKind] = {k.value: k for k in (*Rejection, *SimError)}

_SPECS: dict[str, ErrorSpec] = {"mexc": mexc_errors.ERROR_SPEC, "gateio": gate_errors.ERROR_SPEC}
"""Venue -> how it spells errors (its rejection table included)."""


def kind_of(code: str) -> RejectKind:
    """The kind whose value is ``code`` (codes the matching engine reports)."""
    return _KINDS[code]


class SimReject(Exception):
    """A request the simulated venue refuses; ``detail`` fills ``{}`` in the message."""

    def __init__(self, kind: RejectKind, detail: str = ""):
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail


def reject_response(
    venue: str, kind: RejectKind, detail: str = "", *, retry_after: float | None = None
) -> tuple[int, bytes, dict[str, str]]:
    """(HTTP status, JSON body, extra headers) the venue answers for ``kind``."""
    return _SPECS[venue].rejection_response(kind, detail, retry_after=retry_after)


_UINT = re.compile(r"[0-9]{1,18}")


def int_param(params: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    """A non-negative integer request parameter (``default`` when it is absent).

    Anything else (``"abc"``, ``"1.5"``, ``"-3"``, empty, below ``minimum``) is the venue's
    bad-parameter rejection (:attr:`SimError.BAD_PARAM`: MEXC ``-1100``, Gate
    ``INVALID_PARAM_VALUE``, HTTP 400), not an exception that would answer HTTP 500.
    """
    raw = params.get(name)
    if raw is None:
        return default
    if not _UINT.fullmatch(raw) or int(raw) < minimum:
        raise SimReject(SimError.BAD_PARAM, name)
    return int(raw)
