"""Secrets kept out of logs: a process-wide registry of secret values and the redaction
of text that might carry one.

Credentials register themselves when they are created (``exchanges.live.credentials``),
so do listen keys and webhook URLs taken from the environment; :func:`redact` replaces
every registered value, and the value of any ``signature=`` / ``listenKey=`` /
``api_key=`` / ``secret:``-like parameter, by ``***``. The logging set-up of the
application applies it to every record (``arbsim.app.logs``); code should still never
log a secret in the first place.
"""

from __future__ import annotations

import re
import threading

__all__ = ["MASK", "redact", "register_secret", "registered"]

MASK = "***"

#: values shorter than this are not registered (they would mask ordinary words)
_MIN_LEN = 6

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()

#: names whose value is a secret wherever they appear as ``name=value``, ``name: value``
#: or ``"name": "value"`` (query strings, headers, JSON)
_NAMED = re.compile(
    r"(?i)(?P<name>\b(?:signature|sign|listen_?key|api[_-]?key|api[_-]?secret|secret[_-]?key"
    r"|secret|x-mexc-apikey|passphrase|password|access[_-]?token|webhook[_-]?url)\b)"
    r"(?P<sep>[\"']?\s*[=:]\s*[\"']?)(?P<value>[^\s&\"',;}\]]+)"
)


def register_secret(value: str | None) -> None:
    """Remember ``value`` as a secret: :func:`redact` masks it from now on."""
    global _secrets
    if not value or len(value) < _MIN_LEN:
        return
    with _lock:
        if value not in _secrets:
            # longest first: a secret containing another is masked whole
            _secrets = tuple(sorted((*_secrets, value), key=len, reverse=True))


def registered() -> int:
    """How many secret values are registered."""
    return len(_secrets)


def redact(text: str) -> str:
    """``text`` with every registered secret and every named secret parameter masked."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    if _NAMED.search(text) is None:
        return text
    return _NAMED.sub(
        lambda m: m["name"] + m["sep"] + (m["value"] if m["value"] == MASK else MASK), text
    )
