"""Importers: turn third-party market-data recordings into catalog streams (DESIGN §6)."""

from arbsim.data.importers.binance_hftbacktest import (
    DEFAULT_FEES,
    CheckResult,
    ImportReport,
    import_binance_hftbacktest,
    replay_check,
)

__all__ = [
    "DEFAULT_FEES",
    "CheckResult",
    "ImportReport",
    "import_binance_hftbacktest",
    "replay_check",
]
