"""``arbsim exchange-sim``: run the local exchange simulator until interrupted.

Register in ``arbsim/cli.py`` through the import path ``exchanges.sim.cli:exchange_sim``
(a click command) or call :func:`main` with an argv list.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import signal
from collections.abc import Sequence

import click
import msgspec

from arbsim.core.errors import ArbsimError
from exchanges.sim.config import (
    AccountConfig,
    SimConfig,
    VenueConfig,
    load_config,
)
from exchanges.sim.runner import run_simulator

__all__ = ["build_config", "exchange_sim", "main"]


def build_config(
    venues: Sequence[str],
    host: str,
    port: int,
    data: str | None,
    speed: float | None,
    config_file: str | None,
    api_key: str | None,
    api_secret: str | None,
    *,
    start: str | None = None,
    end: str | None = None,
    pace: str | None = None,
    loop: bool | None = None,
) -> SimConfig:
    """Merge a config file with the command-line options (options win).

    Venue *i* listens on ``port + i`` (``port`` 0: any free port each).
    """
    base = load_config(config_file) if config_file else SimConfig(venues=[])
    by_name: dict[str, VenueConfig] = {v.venue: v for v in base.venues}
    names = list(venues) or [v.venue for v in base.venues] or ["mexc", "gateio"]
    out: list[VenueConfig] = []
    for i, name in enumerate(names):
        cfg = by_name.get(name) or msgspec.convert({"venue": name}, VenueConfig)
        if port or not cfg.port:
            cfg = msgspec.structs.replace(cfg, port=port + i if port else 0)
        if api_key or api_secret:
            if not (api_key and api_secret):
                raise click.UsageError("--api-key and --api-secret go together")
            balances = cfg.effective_accounts()[0].balances
            account = AccountConfig(api_key=api_key, api_secret=api_secret, balances=balances)
            cfg = msgspec.structs.replace(cfg, accounts=[account])
        out.append(cfg)
    merged = msgspec.structs.replace(
        base,
        venues=out,
        host=host,
        data=data if data is not None else base.data,
        speed=speed if speed is not None else base.speed,
        start=start if start is not None else base.start,
        end=end if end is not None else base.end,
        loop=loop if loop is not None else base.loop,
    )
    if pace is not None:
        # through msgspec, so that a bad value is refused like one in a config file
        merged = msgspec.convert({**msgspec.to_builtins(merged), "pace": pace}, SimConfig)
    return merged


async def _serve(cfg: SimConfig) -> None:
    async with run_simulator(cfg) as sim:
        # What start-up built (catalog reads, warm-up) lives on: out of the collector's
        # way, full collections stay short and the replay keeps its schedule.
        gc.collect()
        gc.freeze()
        click.echo(sim.banner(), nl=True)
        click.echo(f"catalog {cfg.catalog_path} at speed x{cfg.speed:g}; Ctrl-C stops")
        click.echo(
            f"clock: offset, origin and window at GET {next(iter(sim.venues.values())).base_url}"
            "/_sim/state",
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()


class _ListenError(click.ClickException):
    """The simulator cannot listen where asked: a usage problem, exit 2."""

    exit_code = 2


@click.command("exchange-sim")
@click.option(
    "--venue",
    "venues",
    multiple=True,
    type=click.Choice(["mexc", "gateio"]),
    help="Venue to simulate (repeat for several; default both).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, type=int, help="First port (venue i listens on port+i).")
@click.option("--data", default=None, help="Catalog root (default: the bundled sample).")
@click.option("--speed", default=None, type=float, help="Replay speed (1 = real time).")
@click.option(
    "--start",
    default=None,
    help="Window start in catalog time (ISO-8601, naive = UTC); books are built up to it "
    "without publishing (default: when every book is first complete).",
)
@click.option("--end", default=None, help="Window end in catalog time (default: catalog end).")
@click.option(
    "--pace",
    type=click.Choice(["exchange", "local"]),
    default=None,
    help="Release messages at their ts_exchange (default) or at their recorded ts_local "
    "(the catalog's feed latency on the wire; books still move at ts_exchange).",
)
@click.option(
    "--loop/--no-loop",
    default=None,
    help="Replay the window again when it ends (default: loop).",
)
@click.option("--config", "config_file", default=None, help="YAML/JSON SimConfig file.")
@click.option("--api-key", default=None, help="API key accepted by every venue.")
@click.option("--api-secret", default=None, help="Its secret.")
def exchange_sim(
    venues: tuple[str, ...],
    host: str,
    port: int,
    data: str | None,
    speed: float | None,
    start: str | None,
    end: str | None,
    pace: str | None,
    loop: bool | None,
    config_file: str | None,
    api_key: str | None,
    api_secret: str | None,
) -> None:
    """Serve MEXC / Gate.io REST and WebSocket APIs locally, replaying a catalog.

    Every venue replays on one clock: exchange times are the catalog's ts_exchange plus
    one offset (GET /_sim/state on any venue reports it).
    """
    try:
        cfg = build_config(
            venues,
            host,
            port,
            data,
            speed,
            config_file,
            api_key,
            api_secret,
            start=start,
            end=end,
            pace=pace,
            loop=loop,
        )
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as e:
        raise click.UsageError(str(e)) from e
    try:
        asyncio.run(_serve(cfg))
    except ArbsimError as e:
        raise click.ClickException(str(e)) from e
    except OSError as e:
        # a port in use (or not ours to bind): one line, exit 2, as for any bad option
        where = f"{host}:{port}" if port else host
        reason = e.strerror or str(e)
        if e.errno == errno.EADDRINUSE:
            reason = "address already in use (another simulator? pick another --port)"
        raise _ListenError(f"cannot listen on {where}: {reason} ({e})") from None
    # Stopped (SIGINT / SIGTERM) and closed cleanly; the process ends next. Freezing the
    # heap spares the interpreter's final collection of every simulator object, which is
    # most of the exit time (0.5-2 s with thousands of orders; ~0.1 s frozen).
    gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m exchanges.sim.cli --venue mexc --port 18080``."""
    try:
        exchange_sim.main(
            args=list(argv) if argv is not None else None,
            prog_name="arbsim exchange-sim",
            standalone_mode=False,
        )
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Abort:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
