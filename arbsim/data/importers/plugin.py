"""Importers that live with a venue package, found through the ``arbsim.importers``
entry-point group.

An importer that must decode a venue's own protocol (a recorder's raw WebSocket and
REST capture) belongs with that venue's adapter, whose decoders and book synchronisation
it reuses; ``arbsim`` imports no venue package, so such an importer reaches
``arbsim data import`` as a plug-in: an entry point named ``<format>.<venue>`` (e.g.
``cryptofeed.gateio``) naming a function that returns an :class:`ImporterPlugin`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from arbsim.data.catalog import Catalog

__all__ = ["IMPORTER_GROUP", "ImportOutcome", "ImporterPlugin", "RunImport"]

IMPORTER_GROUP = "arbsim.importers"


class ImportOutcome(Protocol):
    """What an import did, as the lines the CLI prints."""

    def lines(self) -> list[str]: ...


class RunImport(Protocol):
    """Import ``source`` (a file or a recording's path prefix) into ``catalog``.

    ``symbols`` (``BASE/QUOTE``) selects pairs, empty for all; ``progress`` is told
    ``(done, total)`` bytes. Malformed input raises
    :class:`~arbsim.core.errors.DataError` naming the file and line, with nothing of the
    import left in the catalog."""

    def __call__(
        self,
        source: Path,
        *,
        catalog: Catalog,
        venue: str,
        symbols: Sequence[str],
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportOutcome: ...


@dataclass(frozen=True, slots=True)
class ImporterPlugin:
    """One importer: the recording format, the venue it reads, and the import itself."""

    format: str
    venue: str
    summary: str
    run: RunImport

    @property
    def name(self) -> str:
        """The entry point's name: ``<format>.<venue>``."""
        return f"{self.format}.{self.venue}"
