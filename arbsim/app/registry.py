"""The plug-ins a run can use, found through Python entry points.

Venue kinds register under ``arbsim.venues`` (each entry point names a function that
returns a :class:`~arbsim.core.ports.VenuePlugin`), strategies under
``arbsim.strategies`` (each names a :class:`~arbsim.runtime.strategy.Strategy`
subclass). The built-in ones are registered the same way in arbsim's own
``pyproject.toml``, so a user's package plugs in exactly as they do. Nothing is imported
from a config string except, when a config says so explicitly, a ``module:Class`` that
must be a ``Strategy`` subclass.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from arbsim.core.errors import ConfigError
from arbsim.core.ports import (
    Clock,
    FeedSpec,
    MarketFeed,
    MarketRecorder,
    Mode,
    Venue,
    VenueConfig,
    VenuePlugin,
    VenueSetup,
)
from arbsim.core.rules import GENERIC_RULES, VenueRules
from arbsim.core.transfers import TransferNetwork
from arbsim.runtime.strategy import Strategy

if TYPE_CHECKING:
    from arbsim.data.importers.plugin import ImporterPlugin

VENUE_GROUP = "arbsim.venues"
STRATEGY_GROUP = "arbsim.strategies"
COMMAND_GROUP = "arbsim.commands"

#: a command a package adds to ``arbsim``: its arguments in, its exit code out
Command = Callable[[list[str]], int]


class VenueKind(Protocol):
    """What the application needs of a :class:`VenuePlugin`, whatever its config type."""

    @property
    def config(self) -> type[VenueConfig]: ...

    @property
    def modes(self) -> frozenset[Mode]: ...

    @property
    def rules(self) -> VenueRules | None: ...

    @property
    def feed(self) -> Callable[[FeedSpec, VenueSetup], MarketFeed] | None: ...

    def build_venue(self, config: VenueConfig, setup: VenueSetup) -> Venue: ...


def _standard(ep: EntryPoint) -> EntryPoint:
    """The standard library's entry point: once the importlib_metadata backport is
    imported (dask does), ``entry_points()`` returns the backport's own objects."""
    return ep if type(ep) is EntryPoint else EntryPoint(ep.name, ep.value, ep.group)


def _load(ep: EntryPoint) -> object:
    try:
        return ep.load()
    except Exception as e:  # a broken plug-in must say which one it is
        raise ConfigError(
            f"entry point {ep.group}:{ep.name} ({ep.value}) failed to load: {e!r}"
        ) from e


def _venue_kind(ep: EntryPoint) -> VenueKind:
    fn = _load(ep)
    plugin = fn() if callable(fn) else None
    if not isinstance(plugin, VenuePlugin):
        raise ConfigError(
            f"entry point {ep.group}:{ep.name} ({ep.value}) is not a function returning "
            "a VenuePlugin"
        )
    tag = plugin.config.__struct_config__.tag
    if tag != ep.name:
        raise ConfigError(
            f"entry point {ep.group}:{ep.name}: its config type {plugin.config.__name__} "
            f"is tagged {tag!r}; the tag must be the entry point's name"
        )
    return plugin


def _as_command(fn: Callable[..., object]) -> Command:
    def run(argv: list[str]) -> int:
        code = fn(argv)
        return code if isinstance(code, int) else 0

    return run


def _strategy_class(obj: object, what: str) -> type[Strategy]:
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        raise ConfigError(f"{what} is not a subclass of arbsim.runtime.strategy.Strategy")
    return obj


class Registry:
    """Venue kinds and strategies by name, each loaded when first asked for (a backtest
    never imports the live adapters' network stack)."""

    def __init__(
        self,
        venues: Mapping[str, EntryPoint | VenueKind],
        strategies: Mapping[str, EntryPoint | type[Strategy]],
    ) -> None:
        self._venues = dict(venues)
        self._strategies = dict(strategies)

    @classmethod
    def from_entry_points(cls) -> Registry:
        """Everything installed packages register (arbsim's own plug-ins included)."""
        return cls(
            venues={ep.name: _standard(ep) for ep in entry_points(group=VENUE_GROUP)},
            strategies={ep.name: _standard(ep) for ep in entry_points(group=STRATEGY_GROUP)},
        )

    @property
    def venue_kinds(self) -> list[str]:
        return sorted(self._venues)

    @property
    def strategy_names(self) -> list[str]:
        return sorted(self._strategies)

    def _kind(self, name: str) -> VenueKind | None:
        found = self._venues.get(name)
        if isinstance(found, EntryPoint):
            found = self._venues[name] = _venue_kind(found)
        return found

    # ---------------------------------------------------------------- venues
    def venue_kind(self, kind: str, where: str) -> VenueKind:
        found = self._kind(kind)
        if found is None:
            known = ", ".join(self.venue_kinds) or "none installed"
            raise ConfigError(f"{where}: unknown venue kind {kind!r} (known: {known})")
        return found

    def rules(self, name: str | None, venue: str) -> VenueRules:
        """Order rules by name; ``None``: the venue's own when a kind of its name has
        rules, else generic."""
        if name == "generic":
            return GENERIC_RULES
        kind = self._kind(venue if name is None else name)
        if kind is not None and kind.rules is not None:
            return kind.rules
        if name is None:
            return GENERIC_RULES
        with_rules = [k for k in self.venue_kinds if (found := self._kind(k)) and found.rules]
        known = ", ".join(["generic", *with_rules])
        raise ConfigError(f"venue {venue}: `rules`: unknown rules {name!r} (known: {known})")

    def feed(self, exchange: str, spec: FeedSpec, setup: VenueSetup) -> MarketFeed:
        """Public market data of ``exchange`` (a kind that provides a feed)."""
        kind = self._kind(exchange)
        if kind is None or kind.feed is None:
            known = ", ".join(k for k in self.venue_kinds if (f := self._kind(k)) and f.feed)
            raise ConfigError(
                f"venue {spec.name}: no live market data for exchange {exchange!r} "
                f"(known: {known or 'none'}); set `exchange`"
            )
        return kind.feed(spec, setup)

    def setup(
        self,
        *,
        mode: Mode,
        loop: asyncio.AbstractEventLoop,
        clock: Clock,
        environ: Mapping[str, str],
        catalog: str | Path | None = None,
        recorder: MarketRecorder | None = None,
        probe_interval_s: float = 0.0,
        transfers: TransferNetwork | None = None,
    ) -> VenueSetup:
        """What venues of a run are built with (rules and feeds resolved here)."""

        def feed(exchange: str, spec: FeedSpec) -> MarketFeed:
            return self.feed(exchange, spec, made)

        made = VenueSetup(
            mode=mode,
            loop=loop,
            clock=clock,
            environ=environ,
            catalog=catalog,
            rules=self.rules,
            feed=feed,
            recorder=recorder,
            probe_interval_s=probe_interval_s,
            transfers=transfers,
        )
        return made

    # ---------------------------------------------------------------- commands
    def command(self, name: str) -> Command:
        """A command registered under ``arbsim.commands`` (e.g. ``exchange-sim``)."""
        for ep in entry_points(group=COMMAND_GROUP, name=name):
            fn = _load(ep)
            if not callable(fn):
                raise ConfigError(f"entry point {ep.group}:{ep.name} ({ep.value}) is not callable")
            return _as_command(fn)
        raise ConfigError(
            f"no package provides the command {name!r} (entry points {COMMAND_GROUP})"
        )

    # ---------------------------------------------------------------- importers
    def importer(self, fmt: str, venue: str) -> ImporterPlugin:
        """The importer of ``fmt`` recordings of ``venue`` (entry point
        ``arbsim.importers: <fmt>.<venue>``)."""
        # imported here: a run that imports nothing does not load the importers
        from arbsim.data.importers.plugin import IMPORTER_GROUP, ImporterPlugin

        name = f"{fmt}.{venue}"
        for ep in entry_points(group=IMPORTER_GROUP, name=name):
            fn = _load(ep)
            plugin = fn() if callable(fn) else None
            if not isinstance(plugin, ImporterPlugin) or plugin.name != name:
                raise ConfigError(
                    f"entry point {ep.group}:{ep.name} ({ep.value}) is not a function "
                    f"returning the ImporterPlugin {name!r}"
                )
            return plugin
        known = sorted(
            ep.name.partition(".")[2]
            for ep in entry_points(group=IMPORTER_GROUP)
            if ep.name.startswith(fmt + ".")
        )
        raise ConfigError(
            f"no importer of {fmt} recordings for venue {venue!r} (entry points "
            f"{IMPORTER_GROUP}; {fmt} importers for: {', '.join(known) or 'none'})"
        )

    # ---------------------------------------------------------------- strategies
    def strategy(self, name: str | None, class_path: str | None, where: str) -> type[Strategy]:
        """A registered strategy by ``name``, or the ``module:Class`` a config names
        explicitly (it must subclass Strategy)."""
        if class_path is not None:
            return _strategy_class(_import_class(class_path, where), f"{where}: {class_path!r}")
        found = self._strategies.get(name or "")
        if found is None:
            known = ", ".join(self.strategy_names) or "none installed"
            raise ConfigError(
                f"{where}: unknown strategy {name!r} (registered: {known}; or name a "
                "Strategy subclass with `class: module:Class`)"
            )
        if isinstance(found, EntryPoint):
            found = self._strategies[name or ""] = _strategy_class(
                _load(found), f"entry point {STRATEGY_GROUP}:{found.name}"
            )
        return found


def _import_class(path: str, where: str) -> object:
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"{where}: {path!r} is not of the form 'module:Class'")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"{where}: {path!r}: cannot import {module} ({e})") from e
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise ConfigError(f"{where}: {path!r}: {module} has no {attr}") from None
