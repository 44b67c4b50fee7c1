"""The ``arbsim`` command line.

Exit codes: 0 ok, 1 the strategy failed during the run (outputs still written),
2 usage / config / data errors (the message names the file, key or value).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from arbsim.core.errors import ArbsimError, ConfigError, DataError

if TYPE_CHECKING:
    from arbsim.app.realtime import RealtimeMode


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self._last = -1

    def __call__(self, frac: float) -> None:
        pct = int(frac * 100)
        if not self.enabled or pct == self._last:
            return
        self._last = pct
        bar = "#" * (pct // 4)
        sys.stderr.write(f"\r[{bar:<25}] {pct:3d}%")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self._last >= 0:
            sys.stderr.write("\r" + " " * 40 + "\r")
            sys.stderr.flush()


@click.group()
@click.version_option(package_name="arbsim")
def main() -> None:
    """arbsim: cross-exchange crypto arbitrage — backtest, paper and live with one strategy."""


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML run configuration (default: the bundled default config).",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    help="Catalog directory (default: the config's, else the bundled sample).",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory to write (default: runs/<run-id>).",
)
@click.option("--start", help="Start time, ISO-8601 (UTC if no offset).")
@click.option("--end", help="End time, ISO-8601 (UTC if no offset).")
def backtest(
    config_path: Path | None,
    data_path: Path | None,
    out_path: Path | None,
    start: str | None,
    end: str | None,
) -> None:
    """Replay a catalog through the strategy with simulated matching."""
    from arbsim.app.backtest import (
        auto_config,
        bundled_sample,
        default_config_path,
        run_backtest,
    )
    from arbsim.app.config import load_config
    from arbsim.core.errors import StrategyError
    from arbsim.data.catalog import Catalog

    try:
        if config_path is not None:
            cfg = load_config(config_path)
        elif data_path is not None:
            cfg = auto_config(Catalog(data_path))
        else:
            cfg = load_config(default_config_path())
        catalog = data_path or (Path(cfg.data.catalog) if cfg.data.catalog else bundled_sample())
        run_id = dt.datetime.now(dt.UTC).strftime("bt-%Y%m%d-%H%M%S")
        out = out_path or Path("runs") / run_id
        if out.exists() and any(out.iterdir()):
            raise ConfigError(f"--out {out} exists and is not empty; pick a new run directory")
        progress = _Progress()
        try:
            result = run_backtest(
                cfg, catalog_path=catalog, out_dir=out, start=start, end=end, progress=progress
            )
        finally:
            progress.done()
    except (ConfigError, DataError) as e:
        _fail(str(e))
        return
    except StrategyError as e:
        _fail(str(e), code=1)
        return
    except ArbsimError as e:
        _fail(str(e))
        return
    click.echo(format_summary(result.summary, result.run_dir))


def _fmt_lat(stats: dict[str, float]) -> str:
    if not stats:
        return "-"
    return f"p50 {stats['p50']:.2f} / p90 {stats['p90']:.2f} / p99 {stats['p99']:.2f} ms"


def format_summary(s: dict[str, Any], run_dir: str) -> str:
    arbs = s["arbs"]
    outcome_keys = [k for k in arbs if k not in ("attempted", "decisions")]
    lines = [
        "arbsim backtest" + ("  [SYNTHETIC sample data]" if s["synthetic_data"] else ""),
        f"  data        {s['catalog']}",
        f"  window      {s['window']['start']} -> {s['window']['end']}",
        f"  events      {s['events']:,} (L2 level changes + trades; {s['messages']:,} venue "
        f"messages) in {s['wall_seconds']:.2f} s",
        f"  arbs        attempted {arbs['attempted']} of {arbs['decisions']} decisions: "
        + (", ".join(f"{k} {arbs[k]}" for k in outcome_keys) or "none"),
        f"  pnl         gross {s['pnl']['gross']:.4f}  fees {s['pnl']['fees']:.4f}  "
        f"net {s['pnl']['net']:.4f} (quote)",
        "  ledger      "
        + (
            "reconciled exactly with venue balances"
            if s["reconciled_exactly"]
            else f"NOT reconciled: {s['reconciliation']}"
        ),
        f"  orders      {s['orders']} orders, {s['fills']} fills",
    ]
    markets = {m for v in s["venues"].values() for m in v["markets"]}
    if len(markets) > 1:
        lines.insert(
            2,
            "  markets     "
            + " vs ".join(f"{n} ({','.join(v['markets'])})" for n, v in s["venues"].items())
            + ": a basis between spot and perpetual, not a spot-spot spread",
        )
    for name, v in s["venues"].items():
        lines.append(f"  venue       {name}: rules {v['rules']}, queue {v['queue']}")
        lines.append(f"  latency     {name}: {v['latency']}")
    lat = s["latency_ms"]
    for key in sorted(lat):
        lines.append(f"    {key:<22} {_fmt_lat(lat[key])}")
    denials = s["risk"]["denials"]
    lines.append(
        "  risk        denials: "
        + (", ".join(f"{k} {v}" for k, v in denials.items()) or "none")
        + (
            f"; circuit breaker: {s['risk']['circuit_breaker']}"
            if s["risk"]["circuit_breaker"]
            else ""
        )
    )
    rej = s["rejections"]
    lines.append("  rejections  " + (", ".join(f"{k} {v}" for k, v in rej.items()) or "none"))
    if s["cancelled_at_shutdown"]:
        lines.append(f"  shutdown    cancelled in flight: {', '.join(s['cancelled_at_shutdown'])}")
    lines.append(f"  run dir     {run_dir}")
    return "\n".join(lines)


def _realtime_options(fn: Any) -> Any:
    fn = click.option(
        "--resume-open-orders",
        type=click.Choice(["cancel", "adopt"]),
        default="cancel",
        show_default=True,
        help="With --resume: what to do with the run's orders still resting at a venue.",
    )(fn)
    fn = click.option(
        "--resume",
        "resume_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Continue a run that stopped or was killed: reconcile its journal with the "
        "venues, then trade on in the same run directory (its config.yaml is used).",
    )(fn)
    fn = click.option(
        "--venue-url",
        "venue_urls",
        multiple=True,
        metavar="NAME=REST_URL,WS_URL",
        help="Endpoints of one venue (repeatable; default: the real venue's).",
    )(fn)
    fn = click.option(
        "--out",
        "out_path",
        type=click.Path(file_okay=False, path_type=Path),
        help="Run directory to write (default: runs/<run-id>).",
    )(fn)
    fn = click.option(
        "--duration",
        "duration_s",
        type=float,
        help="Seconds to run (default: until SIGINT / SIGTERM).",
    )(fn)
    fn = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="YAML run configuration (default: the bundled default config).",
    )(fn)
    return fn


@main.command()
@_realtime_options
def paper(
    config_path: Path | None,
    duration_s: float | None,
    out_path: Path | None,
    venue_urls: tuple[str, ...],
    resume_dir: Path | None,
    resume_open_orders: str,
) -> None:
    """Run the strategy on live market data with simulated fills (no credentials)."""
    _realtime(
        "paper", config_path, duration_s, out_path, venue_urls, resume_dir, resume_open_orders
    )


@main.command()
@_realtime_options
def live(
    config_path: Path | None,
    duration_s: float | None,
    out_path: Path | None,
    venue_urls: tuple[str, ...],
    resume_dir: Path | None,
    resume_open_orders: str,
) -> None:
    """Trade for real; credentials only from ARBSIM_<VENUE>_API_KEY / _API_SECRET."""
    _realtime("live", config_path, duration_s, out_path, venue_urls, resume_dir, resume_open_orders)


def _realtime(
    mode: RealtimeMode,
    config_path: Path | None,
    duration_s: float | None,
    out_path: Path | None,
    venue_urls: tuple[str, ...],
    resume_dir: Path | None,
    resume_open_orders: str,
) -> None:
    from arbsim.app.backtest import default_config_path
    from arbsim.app.config import load_config
    from arbsim.app.realtime import parse_venue_url, run_realtime
    from arbsim.core.errors import StrategyError

    try:
        if resume_dir is not None:
            if config_path is not None or out_path is not None:
                raise ConfigError("--resume takes the run's own config and directory: drop "
                                  "--config / --out")  # fmt: skip
            if not (resume_dir / "config.yaml").is_file():
                raise ConfigError(f"--resume {resume_dir}: no config.yaml there (not a run?)")
            config_path, out_path = resume_dir / "config.yaml", resume_dir
        if config_path is None and mode == "live":
            raise ConfigError(
                "arbsim live needs --config: a config whose venues are live accounts "
                "(kind mexc / gateio; see the README)"
            )
        cfg = load_config(config_path or default_config_path(), mode)
        urls = dict(parse_venue_url(u) for u in venue_urls)
        run_id = dt.datetime.now(dt.UTC).strftime(f"{mode}-%Y%m%d-%H%M%S")
        out = out_path or Path("runs") / run_id
        result = run_realtime(
            cfg,
            mode=mode,
            out_dir=out,
            duration_s=duration_s,
            urls=urls,
            resume=resume_dir is not None,
            resume_open_orders="adopt" if resume_open_orders == "adopt" else "cancel",
        )
    except (ConfigError, DataError) as e:
        _fail(str(e))
        return
    except (StrategyError, ArbsimError) as e:
        _fail(str(e), code=1)
        return
    click.echo(format_realtime_summary(result.summary, result.run_dir))


def format_realtime_summary(s: dict[str, Any], run_dir: str) -> str:
    arbs = s["arbs"]
    lines = [
        f"arbsim {s['mode']}",
        f"  window      {s['window']['start']} -> {s['window']['end']} "
        f"({s['wall_seconds']:.2f} s, {s['messages']:,} market messages)",
        f"  arbs        attempted {arbs['attempted']} of {arbs['decisions']} decisions",
        f"  pnl         gross {s['pnl']['gross']:.4f}  fees {s['pnl']['fees']:.4f}  "
        f"net {s['pnl']['net']:.4f} (quote)",
        f"  orders      {s['orders']} orders, {s['fills']} fills",
        "  ledger      "
        + (
            "reconciled exactly with venue balances"
            if s["reconciled_exactly"]
            else f"NOT reconciled: {s['reconciliation']}"
        ),
    ]
    for name, v in s["venues"].items():
        lines.append(f"  venue       {name}: {v['rest_url']} / {v['ws_url']}")
        lines.append(f"  latency     {name}: {v['latency']}")
    for key, stats in sorted(s["latency_ms"].items()):
        lines.append(f"    {key:<22} {_fmt_lat(stats)}")
    if s["cancelled_at_shutdown"]:
        lines.append(f"  shutdown    cancelled in flight: {', '.join(s['cancelled_at_shutdown'])}")
    lines.append(f"  run dir     {run_dir}")
    return "\n".join(lines)


@main.command(
    "exchange-sim",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def exchange_sim(ctx: click.Context) -> None:
    """Run the local protocol-faithful MEXC / Gate.io simulator (see --help)."""
    from arbsim.app.registry import Registry

    try:
        simulator = Registry.from_entry_points().command("exchange-sim")
    except ConfigError as e:
        _fail(str(e))
        return
    ctx.exit(simulator(list(ctx.args)))


@main.command("record")
@click.option("--venue", "venues", multiple=True, required=True, help="Venue to record (repeat).")
@click.option("--symbol", "symbols", multiple=True, required=True, help="BASE/QUOTE (repeat).")
@click.option(
    "--catalog",
    "catalog_path",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Catalog to write (created, or grown by new parts).",
)
@click.option("--duration", "duration_s", type=float, help="Seconds (default: until SIGINT).")
@click.option(
    "--venue-url",
    "venue_urls",
    multiple=True,
    metavar="NAME=REST_URL,WS_URL",
    help="Endpoints of one venue (repeatable; default: the real venue's).",
)
@click.option("--heartbeat", "heartbeat_s", default=10.0, show_default=True, type=float,
              help="Seconds between progress lines.")  # fmt: skip
def record_cmd(
    venues: tuple[str, ...],
    symbols: tuple[str, ...],
    catalog_path: Path,
    duration_s: float | None,
    venue_urls: tuple[str, ...],
    heartbeat_s: float,
) -> None:
    """Record the venues' public streams (books, trades) into a Parquet catalog."""
    from arbsim.app.realtime import parse_venue_url
    from arbsim.app.record import record

    try:
        urls = dict(parse_venue_url(u) for u in venue_urls)
        result = record(
            venues, symbols, catalog_path, duration_s=duration_s, urls=urls,
            heartbeat_s=heartbeat_s, say=click.echo,
        )  # fmt: skip
    except ArbsimError as e:
        _fail(str(e))
        return
    click.echo(f"recorded {result.seconds:.1f} s into {result.catalog}")
    for key in sorted(result.book_messages):
        click.echo(
            f"  {key:<22} book messages {result.book_messages[key]:,}  "
            f"trades {result.trades.get(key, 0):,}  resyncs {result.resyncs.get(key, 0)}"
        )


@main.group()
def data() -> None:
    """Build and inspect Parquet catalogs."""


@data.command("synth")
@click.option(
    "--catalog",
    "catalog_path",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="New catalog directory.",
)
@click.option("--seed", required=True, type=int, help="Random seed (same seed, same data).")
@click.option(
    "--duration",
    "duration_s",
    default=1200.0,
    show_default=True,
    type=float,
    help="Seconds of market data to generate.",
)
def synth(catalog_path: Path, seed: int, duration_s: float) -> None:
    """Write a synthetic two-venue (mexc, gateio) BTC/USDT catalog."""
    from arbsim.data.synth import generate_synthetic

    if catalog_path.exists() and any(catalog_path.iterdir()):
        _fail(f"--catalog {catalog_path} exists and is not empty")
    if duration_s <= 0:
        _fail(f"--duration must be > 0, got {duration_s}")
    try:
        report = generate_synthetic(catalog_path, seed=seed, duration_s=duration_s)
    except (ArbsimError, ValueError, FileExistsError) as e:
        _fail(str(e))
        return
    for line in report.lines():
        click.echo(line)


@data.group("import")
def import_() -> None:
    """Import recordings into a catalog."""


def _decimal(value: str | None, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a decimal number", param_hint=name) from None


@import_.command("binance-hftbacktest")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--venue", required=True, help="Venue name in the catalog, e.g. binance_spot.")
@click.option("--symbol", required=True, help="BASE/QUOTE, e.g. BTC/USDT.")
@click.option(
    "--catalog", "catalog_path", required=True, type=click.Path(file_okay=False, path_type=Path)
)
@click.option("--tick", help="Price tick (default: inferred from the data).")
@click.option("--lot", help="Quantity step (default: inferred from the data).")
@click.option("--maker-fee", help="Maker fee rate (default: Binance's base tier for the market).")
@click.option("--taker-fee", help="Taker fee rate (default: Binance's base tier for the market).")
@click.option(
    "--clock-offset-ms", type=float, help="Shift local times by this much (default: estimated)."
)
def import_binance(
    files: tuple[Path, ...],
    venue: str,
    symbol: str,
    catalog_path: Path,
    tick: str | None,
    lot: str | None,
    maker_fee: str | None,
    taker_fee: str | None,
    clock_offset_ms: float | None,
) -> None:
    """Import hftbacktest-style Binance recordings (`<local_ns> <json>` lines, gzip)."""
    from arbsim.core.model import parse_symbol
    from arbsim.data.catalog import Catalog
    from arbsim.data.importers.binance_hftbacktest import import_binance_hftbacktest

    try:
        parse_symbol(symbol)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--symbol") from None
    if (catalog_path / venue / symbol.replace("/", "-")).exists():
        _fail(f"{catalog_path} already holds {venue} {symbol}; import into a new catalog")
    try:
        report = import_binance_hftbacktest(
            list(files),
            catalog=Catalog(catalog_path),
            venue=venue,
            symbol=symbol,
            tick=_decimal(tick, "--tick"),
            lot=_decimal(lot, "--lot"),
            maker_fee=_decimal(maker_fee, "--maker-fee"),
            taker_fee=_decimal(taker_fee, "--taker-fee"),
            clock_offset_ns=None if clock_offset_ms is None else int(clock_offset_ms * 1e6),
        )
    except ArbsimError as e:
        _fail(str(e))
        return
    for line in report.lines():
        click.echo(line)


@data.command("info")
@click.argument("catalog_path", type=click.Path(path_type=Path))
def info(catalog_path: Path) -> None:
    """Print a catalog's instruments, row counts and time ranges as JSON."""
    from arbsim.data.catalog import Catalog, catalog_summary

    try:
        click.echo(json.dumps(catalog_summary(Catalog(catalog_path)), indent=2))
    except ArbsimError as e:
        _fail(str(e))


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write (default: RUN_DIR/report.html).",
)
def report(run_dir: Path, out_path: Path | None) -> None:
    """Write a self-contained HTML report of a run directory (PnL, fills, slippage, latency)."""
    from arbsim.analysis.report import write_report

    try:
        target = write_report(run_dir, out_path)
    except ArbsimError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:
        click.echo(f"error: cannot write {out_path or run_dir / 'report.html'}: {e}", err=True)
        sys.exit(2)
    click.echo(f"report written: {target}")


@click.command("compare")
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option(
    "--tolerance-ms",
    default=None,
    type=click.FloatRange(min=0.0),
    help="Largest decision-time difference for two decisions to match "
    "(default: twice the runs' median feed latency, 10..500 ms).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the comparison as JSON instead of the table (nothing is written).",
)
def compare(run_a: Path, run_b: Path, tolerance_ms: float | None, as_json: bool) -> None:
    """Match two runs' arb decisions and explain their PnL gap (B compared against A).

    Without --json, prints a table and writes RUN_B/compare.json.
    """
    from arbsim.analysis.compare import compare_runs, format_comparison
    from arbsim.analysis.frames import load_run

    try:
        result = compare_runs(load_run(run_a), load_run(run_b), tolerance_ms=tolerance_ms)
    except ArbsimError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    text = json.dumps(result, indent=2, sort_keys=False)
    if as_json:
        click.echo(text)
        return
    click.echo(format_comparison(result))
    target = run_b / "compare.json"
    try:
        target.write_text(text + "\n", encoding="utf-8")
    except OSError as e:
        click.echo(f"error: cannot write {target}: {e}", err=True)
        sys.exit(2)
    click.echo(f"  written     {target}")


if __name__ == "__main__":
    main()
