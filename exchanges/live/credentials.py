"""API credentials of a live venue: taken only from the environment, never shown."""

from __future__ import annotations

from collections.abc import Mapping

from arbsim.core.errors import ConfigError
from arbsim.core.redact import register_secret


class Credentials:
    """API key and secret; ``repr`` never shows them, and both are registered as secrets
    (:mod:`arbsim.core.redact`): every log record of the process masks them."""

    __slots__ = ("api_key", "api_secret")

    def __init__(self, api_key: str, api_secret: str) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        register_secret(api_key)
        register_secret(api_secret)

    def __repr__(self) -> str:
        return "Credentials(api_key=***, api_secret=***)"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], key_var: str, secret_var: str, venue: str
    ) -> Credentials:
        """The key and secret in ``key_var`` / ``secret_var``; ConfigError naming the
        missing variables (never a value)."""
        key, secret = environ.get(key_var, ""), environ.get(secret_var, "")
        missing = [n for n, value in ((key_var, key), (secret_var, secret)) if not value]
        if missing:
            raise ConfigError(
                f"venue {venue}: live trading needs API credentials in the environment; "
                f"missing: {', '.join(missing)}"
            )
        return cls(key, secret)
