"""The ``arbsim`` command line.

Exit codes: 0 ok, 1 the strategy failed during the run (outputs still written),
2 usage / config / data errors (the message names the file, key or value).
"""

from __future__ import annotations

import json
import math
import signal
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from arbsim.app import signals
from arbsim.app.logs import LOG_FORMATS, LOG_LEVELS, LogFormat, setup_logging
from arbsim.app.progress import PROGRESS_MODES, ProgressMode, ProgressReport
from arbsim.app.rundir import new_run_dir, remove_if_empty
from arbsim.core.errors import ArbsimError, ConfigError, DataError, VenueError

if TYPE_CHECKING:
    from arbsim.app.config import Config
    from arbsim.app.realtime import RealtimeMode
    from arbsim.core.ports import Mode


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class _Options:
    """The group's options, for every command."""

    def __init__(self, progress: ProgressMode = "auto", every_s: float = 10.0) -> None:
        self.progress: ProgressMode = progress
        self.every_s = every_s


def _options() -> _Options:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(_Options) if ctx is not None else None
    return obj if obj is not None else _Options()


def _progress(what: str, unit: str, total: float | None = None) -> ProgressReport:
    opts = _options()
    return ProgressReport(what, unit, total, mode=opts.progress, every_s=opts.every_s)


class _Signals:
    """SIGINT / SIGTERM while a command works. ``stop=True`` (backtest): the first signal
    asks the work to stop (it writes what it has; :meth:`poll` says which signal), a
    second one aborts. Otherwise both raise KeyboardInterrupt, so that cleanup code
    runs (SIGTERM included). Installed explicitly: a command started in the background
    by a shell (SIGINT ignored) still stops on SIGINT."""

    def __init__(self, stop: bool) -> None:
        self.stop = stop
        self.signum: int | None = None
        self._old: dict[int, Any] = {}
        self._mask: set[int] = set()

    def _handle(self, signum: int, frame: object) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if not self.stop or not first:
            raise KeyboardInterrupt

    def poll(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave the signals alone
                break
        if self._old:  # a blocked signal is never delivered, whatever the handler
            self._mask = signals.unblock(self._old)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        if self._old:
            signals.restore(self._mask)


@click.group()
@click.version_option(package_name="arbsim")
@click.option(
    "--progress",
    type=click.Choice(PROGRESS_MODES),
    default="auto",
    show_default=True,
    help="Progress of backtest, data import / synth and report on stderr: a bar on a "
    "terminal, plain lines otherwise (auto), or as chosen.",
)
@click.option(
    "--progress-every",
    type=click.FloatRange(min=0.0),
    default=10.0,
    show_default=True,
    help="Seconds between two plain progress lines.",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
    help="Log records at this level and above (paper / live / record also write INFO and "
    "above to RUN_DIR/log.jsonl).",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="text",
    show_default=True,
    help="text: one readable line per record; json: one JSON object per line (time, "
    "level, component, venue, symbol, run_id and the event's fields).",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the log to this file (appended) instead of stderr  [default: stderr]",
)
@click.pass_context
def main(
    ctx: click.Context,
    progress: ProgressMode,
    progress_every: float,
    log_level: str,
    log_format: LogFormat,
    log_file: Path | None,
) -> None:
    """arbsim: cross-exchange crypto arbitrage — backtest, paper and live with one strategy."""
    ctx.obj = _Options(progress, progress_every)
    try:
        setup_logging(log_level.lower(), log_format, log_file)
    except OSError as e:
        _fail(f"--log-file {log_file}: cannot write ({e.strerror or e})")


class _Port(click.ParamType):  # type: ignore[type-arg]
    """A TCP port (0: an ephemeral one) or ``off``."""

    name = "PORT|off"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text == "off":
            return "off"
        try:
            port = int(text)
        except ValueError:
            self.fail(f"{value!r} is not a port number (0-65535) or 'off'", param, ctx)
        if not 0 <= port <= 65535:
            self.fail(f"{port} is not a port number (0-65535)", param, ctx)
        return port


PORT = _Port()


def _say_ops(url: str) -> None:
    click.echo(f"operations: {url}/metrics  {url}/health  {url}/events", err=True)


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML run configuration  [default: arbsim/app/defaults/backtest.yaml]",
)
@click.option(
    "--data",
    "data_path",
    help="Catalog directory or URL (s3://bucket/prefix, file:///dir; S3 endpoint and "
    "credentials from the AWS_* environment)  [default: the config's data.catalog, else "
    "the bundled sample]. Without --config: the default config's strategy, risk and "
    "latency on this catalog's two venues.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory to write, new or empty  [default: runs/bt-<time>-<random>]",
)
@click.option("--start", help="Start time, ISO-8601, UTC if no offset  [default: the data's]")
@click.option("--end", help="End time, ISO-8601, UTC if no offset  [default: the data's]")
@click.option(
    "--latency-from",
    "latency_run",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A paper or live run directory: replay its measured order latencies in order "
    "(every venue's latency becomes `model: session`).",
)
@click.option(
    "--full-warmup",
    is_flag=True,
    help="Build the books at --start from all the data before it, not from each "
    "stream's latest snapshot before it (the same outputs, slower: for checking).",
)
def backtest(
    config_path: Path | None,
    data_path: str | None,
    out_path: Path | None,
    start: str | None,
    end: str | None,
    latency_run: Path | None,
    full_warmup: bool,
) -> None:
    """Replay a catalog through the strategy with simulated matching.

    Ctrl-C (SIGINT) or SIGTERM stops the replay and writes the run so far
    (summary.json: "interrupted": true); exit 130 / 143.
    """
    from arbsim.app.backtest import (
        bundled_sample,
        catalog_config,
        default_config_path,
        run_backtest,
        session_latency,
    )
    from arbsim.app.config import load_config
    from arbsim.core.errors import StrategyError
    from arbsim.data.catalog import Catalog, catalog_location

    created: Path | None = None
    signals = _Signals(stop=True)
    data = None if data_path is None else catalog_location(data_path)
    try:
        if config_path is not None:
            cfg = load_config(config_path)
            source = str(config_path)
        elif data is not None:
            cfg, note = catalog_config(Catalog(data), load_config(default_config_path()))
            click.echo(note, err=True)
            source = f"{default_config_path()} (strategy, risk, latency) + {data_path}'s venues"
        else:
            cfg = load_config(default_config_path())
            source = str(default_config_path())
        if latency_run is not None:
            cfg = session_latency(cfg, latency_run)
            source += f" + latencies of {latency_run}"
        catalog = data or (
            catalog_location(cfg.data.catalog) if cfg.data.catalog else bundled_sample()
        )
        if out_path is None:
            out = created = new_run_dir("bt")
        else:
            out = out_path
            if out.exists() and (not out.is_dir() or any(out.iterdir())):
                raise ConfigError(f"--out {out} exists and is not empty; pick a new run directory")
        with signals, _progress("backtest", "events") as progress:
            result = run_backtest(
                cfg,
                catalog_path=catalog,
                out_dir=out,
                start=start,
                end=end,
                progress=progress.fraction,
                on_total=lambda n: progress.update(0, n),
                should_stop=signals.poll,
                config_source=source,
                seek=not full_warmup,
            )
    except (ConfigError, DataError) as e:
        if created is not None:
            remove_if_empty(created)
        _fail(str(e))
        return
    except StrategyError as e:
        _fail(str(e), code=1)
        return
    except ArbsimError as e:
        _fail(str(e))
        return
    except KeyboardInterrupt:
        if created is not None:
            remove_if_empty(created)
        click.echo("aborted (second signal): the run was not written", err=True)
        sys.exit(signals.exit_code)
    click.echo(format_summary(result.summary, result.run_dir))
    if result.summary.get("interrupted"):
        click.echo(
            f"interrupted by {result.summary.get('interrupted_by')}: the run up to "
            f"{result.summary['window']['end']} is written in {result.run_dir}",
            err=True,
        )
        sys.exit(signals.exit_code)


@main.command("sweep")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The base run configuration (YAML) every cell starts from.",
)
@click.option(
    "--grid",
    "grid_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The grid file: config keys by path and their values, windows, catalogs, mode "
    "(grid | random | optuna) and objective (see README).",
)
@click.option(
    "--data",
    "data_path",
    help="Catalog (directory or URL such as s3://bucket/prefix), when the grid names no "
    "`catalogs`  [default: the config's data.catalog, else the bundled sample]",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(file_okay=False, path_type=Path),
    help="Sweep directory, new or empty, or the one to --resume  "
    "[default: runs/sweep-<time>-<random>]",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes of the LocalCluster on 127.0.0.1, one thread each  "
    "[default: one per core]",
)
@click.option(
    "--scheduler",
    help="An existing Dask scheduler (tcp://HOST:8786) instead of a LocalCluster; its "
    "workers must see the catalog and the sweep directory at the same paths.",
)
@click.option("--resume", is_flag=True, help="Skip the cells of --out that finished ok.")
@click.option(
    "--keep",
    type=click.Choice(["run", "summary"]),
    default="run",
    show_default=True,
    help="Each cell's run directory in SWEEP_DIR/cells/<cell>, or only its summary.json.",
)
def sweep(
    config_path: Path,
    grid_path: Path,
    data_path: str | None,
    out_path: Path | None,
    workers: int | None,
    scheduler: str | None,
    resume: bool,
    keep: str,
) -> None:
    """Backtest every cell of a parameter grid (or a random / Optuna search) on Dask.

    Writes SWEEP_DIR/results.parquet (a row per cell), the cells' runs and report.html.
    Ctrl-C (SIGINT) or SIGTERM cancels the running cells and keeps the finished ones
    (--resume goes on from there); exit 130 / 143.
    """
    from arbsim.app.sweep import format_sweep, run_sweep

    signals = _Signals(stop=True)
    try:
        with signals, _progress("sweep", "cells") as progress:
            df = run_sweep(
                config_path,
                grid_path,
                data=data_path,
                out=out_path,
                workers=workers,
                scheduler=scheduler,
                resume=resume,
                keep="summary" if keep == "summary" else "run",
                progress=lambda done, total: progress.update(done, total),
                should_stop=signals.poll,
                say=lambda text: click.echo(text, err=True),
            )
    except ArbsimError as e:
        _fail(str(e))
        return
    except KeyboardInterrupt:
        click.echo("aborted (second signal): finished cells are in results.jsonl", err=True)
        sys.exit(signals.exit_code)
    click.echo(format_sweep(df))
    if df.attrs.get("interrupted"):
        click.echo("interrupted: finished cells are kept; --resume runs the rest", err=True)
        sys.exit(signals.exit_code)


#: what each outcome of a two-leg arbitrage attempt means (summary table, README)
OUTCOMES: dict[str, str] = {
    "completed": "both legs filled in full",
    "partial": "both legs filled the same smaller quantity",
    "hedged": "one leg filled short; the rest was bought / sold on the other venue: flat",
    "unwound": "one leg filled short, hedging failed; the excess was taken back where it "
    "was opened: flat, usually at a loss",
    "exposed": "a one-sided position remained after every hedge / unwind round",
    "missed": "neither leg filled at its limit price (the edge was gone on arrival)",
    "failed": "a venue error stopped the attempt (e.g. balances unavailable)",
    "unresolved": "an order's outcome could not be learned; its venue takes no new "
    "orders until it is",
    "skipped": "not sent: free balances could not fund the minimum quantity",
    "denied": "not sent: the risk gate refused a leg (see risk denials)",
    "pending": "still in flight when the run ended",
}


def _fmt_lat(stats: dict[str, float]) -> str:
    if not stats:
        return "-"
    return f"p50 {stats['p50']:.2f} / p90 {stats['p90']:.2f} / p99 {stats['p99']:.2f} ms"


def _table(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    """Rows as aligned columns (the first row is the header); numbers right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = []
        for i, cell in enumerate(r):
            numeric = cell.replace(",", "").replace(".", "").lstrip("-").isdigit()
            last = i == len(r) - 1
            cells.append(
                cell if last else cell.rjust(widths[i]) if numeric else cell.ljust(widths[i])
            )
        out.append(indent + "  ".join(cells).rstrip())
    return out


def _num(v: object, fmt: str, none: str = "n/a") -> str:
    return none if v is None else format(v, fmt)


def _stats_rows(st: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The session statistics of a summary as table rows (none without statistics)."""
    if not st:
        return []
    dd = (
        f"max drawdown {st['max_drawdown']:,.2f} ({_num(st['max_drawdown_pct'], '.3%')} of "
        f"equity, {st['max_drawdown_duration_s']:,.0f} s"
        + (", recovered)" if st["max_drawdown_recovered"] else ", not recovered)")
    )
    a = st["arbs"]
    return [
        (
            "return",
            f"{_num(st['return_on_capital'], '.3%')} on capital {st['capital']:,.2f}; {dd}",
        ),
        (
            "ratios",
            f"Sharpe {_num(st['sharpe'], ',.1f')}, Sortino {_num(st['sortino'], ',.1f')} "
            f"(annualised from {_num(st['sample_interval_s'], 'g')} s samples of net PnL)",
        ),
        (
            "arbitrages",
            f"{a['traded']:,} traded: win rate {_num(a['win_rate'], '.1%')}, profit factor "
            f"{_num(a['profit_factor'], ',.2f', 'no loss')}, edge expected "
            f"{_num(a['avg_expected_edge_bps'], '.2f')} bps / captured "
            f"{_num(a['avg_captured_edge_bps'], '.2f')} bps",
        ),
        (
            "turnover",
            f"{_num(st['turnover'], ',.2f')}x capital ({st['filled_notional']:,.2f} quote filled)",
        ),
        *(
            [
                (
                    "rebalancing",
                    f"{st['rebalance_orders']:,} orders; PnL outside arbitrages "
                    f"{st['other_pnl']:,.4f} (quote)",
                )
            ]
            if st.get("rebalance_orders")
            else []
        ),
        *([("transfers", _transfer_line(st["transfers"]))] if st.get("transfers") else []),
    ]


def _transfer_line(t: dict[str, Any]) -> str:
    """Transfers between venues in a line: counts, fees, delays, in flight at the end."""
    fees = ", ".join(f"{v} {a}" for a, v in t["fees"].items()) or "none"
    flight = ", ".join(f"{v} {a}" for a, v in t["in_flight_at_end"].items()) or "nothing"
    return (
        f"{t['sent']:,} sent, {t['arrived']:,} arrived, {t['failed']:,} failed; fees {fees} "
        f"({t['fees_quote']:,.4f} quote); delay mean {_num(t['mean_delay_s'], ',.1f')} s, "
        f"max {_num(t['max_delay_s'], ',.1f')} s; in flight at the end: {flight}"
    )


def format_summary(s: dict[str, Any], run_dir: str) -> str:
    """The backtest summary as a table: what ran on what, then results."""
    arbs = s["arbs"]
    outcome_keys = [k for k in arbs if k not in ("attempted", "decisions")]
    title = "arbsim backtest" + ("  [SYNTHETIC sample data]" if s["synthetic_data"] else "")
    if s.get("interrupted"):
        title += f"  [INTERRUPTED by {s.get('interrupted_by')}: partial run]"
    rows: list[tuple[str, str]] = [
        ("config", str(s.get("config") or "-")),
        ("data", str(s["catalog"])),
        ("window", f"{s['window']['start']} -> {s['window']['end']}"),
    ]
    markets = {m for v in s["venues"].values() for m in v["markets"]}
    if len(markets) > 1:
        rows.append(
            (
                "markets",
                " vs ".join(f"{n} ({','.join(v['markets'])})" for n, v in s["venues"].items())
                + ": a basis between spot and perpetual, not a spot-spot spread",
            )
        )
    rows += [
        (
            "events",
            f"{s['events']:,} (L2 level changes + trades; {s['messages']:,} venue messages) "
            f"in {s['wall_seconds']:.2f} s"
            + (f", {s['events_per_s']:,} events/s" if s.get("events_per_s") else ""),
        ),
        (
            "pnl",
            f"net {s['pnl']['net']:,.4f} = gross {s['pnl']['gross']:,.4f} - fees "
            f"{s['pnl']['fees']:,.4f} (quote)",
        ),
        *_stats_rows(s.get("stats")),
        ("orders", f"{s['orders']:,} orders, {s['fills']:,} fills"),
        (
            "ledger",
            "reconciled exactly with venue balances"
            if s["reconciled_exactly"]
            else "not reconciled: the run was interrupted"
            if s.get("interrupted")
            else f"NOT reconciled: {s['reconciliation']}",
        ),
    ]
    for name, v in s["venues"].items():
        rows.append(("venue", f"{name}: rules {v['rules']}, queue {v['queue']}"))
        rows.append(("latency", f"{name}: {v['latency']}"))
    denials = s["risk"]["denials"]
    rows.append(
        (
            "risk",
            "denials: "
            + (", ".join(f"{k} {v}" for k, v in denials.items()) or "none")
            + (
                f"; circuit breaker: {s['risk']['circuit_breaker']}"
                if s["risk"]["circuit_breaker"]
                else ""
            ),
        )
    )
    rej = s["rejections"]
    rows.append(("rejections", ", ".join(f"{k} {v}" for k, v in rej.items()) or "none"))
    if s.get("unresolved_orders"):
        rows.append(("unresolved", ", ".join(s["unresolved_orders"])))
    if s["cancelled_at_shutdown"]:
        rows.append(("shutdown", f"cancelled in flight: {', '.join(s['cancelled_at_shutdown'])}"))
    rows.append(("run dir", run_dir))
    lines = [title, *_table([("", ""), *rows])[1:]]
    lines.append("")
    lines.append(
        f"  arbitrage attempts: {arbs['attempted']:,} sent of {arbs['decisions']:,} decisions"
    )
    if outcome_keys:
        table: list[tuple[str, ...]] = [("outcome", "count", "meaning")]
        for k in outcome_keys:
            table.append((k, f"{arbs[k]:,}", OUTCOMES.get(k, "")))
        lines += _table(table, indent="    ")
    lat = s["latency_ms"]
    if lat:
        lines.append("")
        table = [("latency (ms)", "p50", "p90", "p99")]
        for key in sorted(lat):
            st = lat[key]
            if st:
                table.append((key, f"{st['p50']:.2f}", f"{st['p90']:.2f}", f"{st['p99']:.2f}"))
        lines += _table(table)
    return "\n".join(lines)


def _realtime_options(fn: Any) -> Any:
    fn = click.option(
        "--metrics-port",
        type=PORT,
        metavar="PORT|off",
        default=None,
        help="Serve /metrics, /health and /events on this port of ops.host (127.0.0.1 "
        "unless the config says otherwise); 0: an ephemeral port, printed at start; off: "
        "no server  [default: the config's ops.port, 0]",
    )(fn)
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
        help="Endpoints of one venue (repeatable)  [default: the real venue's]",
    )(fn)
    fn = click.option(
        "--out",
        "out_path",
        type=click.Path(file_okay=False, path_type=Path),
        help="Run directory to write  [default: runs/<mode>-<time>-<random>]",
    )(fn)
    fn = click.option(
        "--duration",
        "duration_s",
        type=float,
        help="Seconds to run  [default: until SIGINT / SIGTERM]",
    )(fn)
    return fn


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML run configuration  [default: arbsim/app/defaults/backtest.yaml, read as "
    "a paper config]",
)
@_realtime_options
def paper(
    config_path: Path | None,
    duration_s: float | None,
    out_path: Path | None,
    venue_urls: tuple[str, ...],
    resume_dir: Path | None,
    resume_open_orders: str,
    metrics_port: int | str | None,
) -> None:
    """Run the strategy on live market data with simulated fills (no credentials)."""
    _realtime(
        "paper",
        config_path,
        duration_s,
        out_path,
        venue_urls,
        resume_dir,
        resume_open_orders,
        yes=True,
        metrics_port=metrics_port,
    )


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML run configuration whose venues are live accounts (required; "
    "`arbsim config new --mode live` writes one).",
)
@_realtime_options
@click.option(
    "--yes",
    is_flag=True,
    help="Trade real money without being asked. Without it, when stdin is a terminal "
    "and a venue uses its real endpoints, arbsim asks first.",
)
def live(
    config_path: Path | None,
    duration_s: float | None,
    out_path: Path | None,
    venue_urls: tuple[str, ...],
    resume_dir: Path | None,
    resume_open_orders: str,
    metrics_port: int | str | None,
    yes: bool,
) -> None:
    """Trade for real; credentials only from ARBSIM_<VENUE>_API_KEY / _API_SECRET."""
    _realtime(
        "live",
        config_path,
        duration_s,
        out_path,
        venue_urls,
        resume_dir,
        resume_open_orders,
        yes=yes,
        metrics_port=metrics_port,
    )


def _stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def real_venues(cfg: Config) -> list[str]:
    """Venues of ``cfg`` that would reach a real exchange: a venue kind with endpoints
    left at the real venue's (no URL given), or a kind arbsim cannot tell about."""
    from arbsim.core.ports import Endpoints

    out = []
    for v in cfg.venues:
        if not isinstance(v, Endpoints) or v.rest_url is None or v.ws_url is None:
            out.append(v.name)
    return out


def confirm_live(cfg: Config, yes: bool, interactive: bool) -> None:
    """Before live trading on real venues: ``--yes``, or the operator at the terminal
    types ``yes``; else ConfigError. A run against other endpoints (the local exchange
    simulator) and a run with no terminal to ask are not held up."""
    real = real_venues(cfg)
    if yes or not real or not interactive:
        return
    click.echo(
        f"arbsim live will trade REAL money on {', '.join(real)} (the venues' real "
        "endpoints), with the credentials in the environment.",
        err=True,
    )
    answer = click.prompt("Type yes to go on", default="no", show_default=False, err=True)
    if answer.strip().lower() != "yes":
        raise ConfigError("live trading not confirmed (answer yes, or pass --yes)")


def _venue_failure(e: BaseException, out: Path) -> str:
    """A run's venue error with the venue, its endpoints and what failed there."""
    cause = e.__cause__ if isinstance(e.__cause__, VenueError) else e
    text = str(e)
    if not isinstance(cause, VenueError) or not cause.venue:
        return text
    where = ""
    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        v = summary["venues"][cause.venue]
        where = f" (REST {v['rest_url']}, WS {v['ws_url']})"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    detail = []
    if cause.http_status is not None:
        detail.append(f"HTTP {cause.http_status}")
    if cause.request is not None:
        detail.append(cause.request)
    failed = f" [{': '.join(detail)}]" if detail else ""
    return f"venue {cause.venue}{where} failed: {text}{failed}"


def _realtime(
    mode: RealtimeMode,
    config_path: Path | None,
    duration_s: float | None,
    out_path: Path | None,
    venue_urls: tuple[str, ...],
    resume_dir: Path | None,
    resume_open_orders: str,
    *,
    yes: bool,
    metrics_port: int | str | None = None,
) -> None:
    import msgspec

    from arbsim.app.backtest import default_config_path
    from arbsim.app.config import load_config
    from arbsim.app.realtime import RealtimeError, parse_venue_url, run_realtime, with_urls
    from arbsim.core.errors import StrategyError

    created: Path | None = None
    out: Path | None = None
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
                "(kind mexc / gateio; `arbsim config new --mode live` writes one)"
            )
        cfg = load_config(config_path or default_config_path(), mode)
        if metrics_port is not None:
            port = None if metrics_port == "off" else int(metrics_port)
            cfg = msgspec.structs.replace(cfg, ops=msgspec.structs.replace(cfg.ops, port=port))
        urls = dict(parse_venue_url(u) for u in venue_urls)
        if mode == "live":
            confirm_live(with_urls(cfg, urls), yes, _stdin_is_terminal())
        out = out_path or new_run_dir(mode)
        created = None if out_path else out
        result = run_realtime(
            cfg,
            mode=mode,
            out_dir=out,
            duration_s=duration_s,
            urls=urls,
            resume=resume_dir is not None,
            resume_open_orders="adopt" if resume_open_orders == "adopt" else "cancel",
            on_ops=_say_ops,
        )
    except (ConfigError, DataError) as e:
        if created is not None:
            remove_if_empty(created)
        _fail(str(e))
        return
    except RealtimeError as e:
        _fail(_venue_failure(e, out) if out is not None else str(e), code=1)
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
@click.option(
    "--heartbeat",
    "heartbeat_s",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.0, min_open=True),
    help="Seconds between heartbeat log records (messages/s, resyncs, streams).",
)
@click.option(
    "--metrics-port",
    type=PORT,
    metavar="PORT|off",
    default="0",
    show_default=True,
    help="Serve /metrics, /health and /events on this port of 127.0.0.1; 0: an ephemeral "
    "port, printed at start; off: no server.",
)
def record_cmd(
    venues: tuple[str, ...],
    symbols: tuple[str, ...],
    catalog_path: Path,
    duration_s: float | None,
    venue_urls: tuple[str, ...],
    heartbeat_s: float,
    metrics_port: int | str,
) -> None:
    """Record the venues' public streams (books, trades) into a Parquet catalog; the
    session's log goes to CATALOG/logs/<run id>.jsonl too."""
    from arbsim.app.realtime import parse_venue_url
    from arbsim.app.record import record

    try:
        urls = dict(parse_venue_url(u) for u in venue_urls)
        result = record(
            venues, symbols, catalog_path, duration_s=duration_s, urls=urls,
            heartbeat_s=heartbeat_s, say=click.echo, echo_heartbeat=False,
            metrics_port=None if metrics_port == "off" else int(metrics_port), on_ops=_say_ops,
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
    help="New catalog directory (written aside and renamed when complete).",
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
@click.option(
    "--symbol",
    "symbols",
    multiple=True,
    help="Market to write on every venue (repeatable): BTC/USDT (default), ETH/USDT, SOL/USDT.",
)
@click.option(
    "--venue",
    "venues",
    multiple=True,
    help="Venue to write (repeatable, two or more): mexc, gateio (the default pair), third "
    "(a synthetic venue of its own).",
)
@click.option(
    "--snapshot-every",
    "snapshot_every_s",
    default=0.0,
    show_default=True,
    type=float,
    help="Seconds between periodic book snapshots (the whole book in the first message "
    "of each period, as some venues push); a backtest's --start builds its books from "
    "the latest one. 0: only the first message.",
)
@click.option(
    "--premium-bps",
    "premiums",
    multiple=True,
    metavar="VENUE=BPS",
    help="A persistent premium of VENUE's quotes over the common mid (negative: a "
    "discount), within +-100 bps; every dislocation then leans its way, so arbitrages "
    "drain one side (repeatable, one per venue).",
)
@click.option(
    "--dislocations-per-min",
    "per_min",
    default=3.0,
    show_default=True,
    type=float,
    help="Mean rate of dislocation windows (above 0, at most 20).",
)
def synth(
    catalog_path: Path,
    seed: int,
    duration_s: float,
    symbols: tuple[str, ...],
    venues: tuple[str, ...],
    snapshot_every_s: float,
    premiums: tuple[str, ...],
    per_min: float,
) -> None:
    """Write a synthetic catalog: BTC/USDT on mexc and gateio unless --symbol / --venue say."""
    from arbsim.data.synth import SYMBOL, SYMBOLS, VENUE_SPECS, VENUES, generate_synthetic

    for x in symbols:
        if x not in SYMBOLS:
            raise click.BadParameter(
                f"{x!r}: the generator knows {', '.join(SYMBOLS)}", param_hint="--symbol"
            )
    for x in venues:
        if x not in VENUE_SPECS:
            raise click.BadParameter(
                f"{x!r}: the generator knows {', '.join(VENUE_SPECS)}", param_hint="--venue"
            )
    names = list(dict.fromkeys(venues)) or [v.name for v in VENUES]
    if len(names) < 2:
        raise click.BadParameter(f"{names}: name two or more venues", param_hint="--venue")

    premium: dict[str, float] = {}
    for x in premiums:
        venue, sep, value = x.partition("=")
        try:
            bps = float(value) if sep and venue else math.nan
        except ValueError:
            bps = math.nan
        if not math.isfinite(bps) or abs(bps) > 100:
            raise click.BadParameter(
                f"{x!r}: expected VENUE=BPS with BPS a number within +-100",
                param_hint="--premium-bps",
            )
        if venue not in names:
            raise click.BadParameter(
                f"{x!r}: venue {venue!r} is not written (venues: {', '.join(names)})",
                param_hint="--premium-bps",
            )
        if venue in premium:
            raise click.BadParameter(
                f"{x!r}: {venue} has a premium already", param_hint="--premium-bps"
            )
        premium[venue] = bps
    if not 0 < per_min <= 20:
        raise click.BadParameter(
            f"{per_min:g}: expected a rate above 0 and at most 20 a minute",
            param_hint="--dislocations-per-min",
        )

    if duration_s <= 0:
        _fail(f"--duration must be > 0, got {duration_s}")
    signals = _Signals(stop=False)
    try:
        with signals, _progress(f"synth {catalog_path}", "steps") as progress:
            report = generate_synthetic(
                catalog_path,
                seed=seed,
                duration_s=duration_s,
                progress=progress.update,
                symbols=list(dict.fromkeys(symbols)) or [SYMBOL],
                venues=names,
                snapshot_every_s=snapshot_every_s,
                stop_requested=lambda: signals.signum is not None,
                premium_bps=premium,
                dislocations_per_min=per_min,
            )
    except (ArbsimError, ValueError, FileExistsError) as e:
        _fail(str(e))
        return
    except KeyboardInterrupt:
        _fail(f"interrupted: {catalog_path} was not written", code=signals.exit_code)
        return
    for line in report.lines():
        click.echo(line)


@data.group("import")
def import_() -> None:
    """Import recordings into a catalog."""


#: told ``(done, total)`` bytes of an import's input
Progress = Callable[[int, int], None]


def _decimal(value: str | None, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a decimal number", param_hint=name) from None


_CATALOG_OPTION = click.option(
    "--catalog",
    "catalog_path",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Catalog to write: created, or added to. A venue and symbol it holds already "
    "are appended to (new data must start after the data there).",
)


def _import_options(fees: str, offset: str) -> Callable[[Any], Any]:
    """--catalog, --tick, --lot, --maker-fee, --taker-fee, --clock-offset-ms."""

    def add(fn: Any) -> Any:
        for option in reversed(
            [
                _CATALOG_OPTION,
                click.option(
                    "--tick", help="Price tick  [default: inferred from the data, or the catalog's]"
                ),
                click.option(
                    "--lot",
                    help="Quantity step  [default: inferred from the data, or the catalog's]",
                ),
                click.option("--maker-fee", help=f"Maker fee rate  [default: {fees}]"),
                click.option("--taker-fee", help=f"Taker fee rate  [default: {fees}]"),
                click.option(
                    "--clock-offset-ms",
                    type=float,
                    help=f"Shift local times by this much  [default: {offset}]",
                ),
            ]
        ):
            fn = option(fn)
        return fn

    return add


@import_.command("binance-hftbacktest")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--venue", required=True, help="Venue name in the catalog, e.g. binance_spot.")
@click.option("--symbol", required=True, help="BASE/QUOTE, e.g. BTC/USDT.")
@_import_options("Binance's base tier for the market", "estimated, or the earlier import's")
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
    _import(
        f"import {venue} {symbol}",
        lambda progress: import_binance_hftbacktest(
            list(files),
            catalog=Catalog(catalog_path),
            venue=venue,
            symbol=symbol,
            tick=_decimal(tick, "--tick"),
            lot=_decimal(lot, "--lot"),
            maker_fee=_decimal(maker_fee, "--maker-fee"),
            taker_fee=_decimal(taker_fee, "--taker-fee"),
            clock_offset_ns=None if clock_offset_ms is None else int(clock_offset_ms * 1e6),
            progress=progress,
        ),
        f"interrupted: nothing of this import was kept in {catalog_path}",
    )


def _import(what: str, run: Callable[[Progress], Any], interrupted: str) -> None:
    """Run an import with its progress shown; print its report, or fail (exit 2, or
    128 + signal when interrupted)."""
    signals = _Signals(stop=False)
    try:
        with signals, _progress(what, "MB read") as progress:

            def told(done: int, total: int) -> None:
                # the handler's KeyboardInterrupt can be lost inside NumPy / Arrow calls
                if signals.signum is not None:
                    raise KeyboardInterrupt
                progress.update(done / 1e6, total / 1e6)

            report = run(told)
    except ArbsimError as e:
        _fail(str(e))
        return
    except KeyboardInterrupt:
        _fail(interrupted, code=signals.exit_code)
        return
    for line in report.lines():
        click.echo(line)


@import_.command("tardis")
@click.option(
    "--book",
    "book_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Tardis incremental_book_L2 CSV (.csv or .csv.gz).",
)
@click.option(
    "--trades",
    "trades_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Tardis trades CSV of the same symbol.",
)
@click.option(
    "--snapshots",
    "snapshots_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Tardis book_snapshot_25 CSV: checks the rebuilt book, removes stale levels.",
)
@click.option("--venue", required=True, help="Venue name in the catalog, e.g. gateio.")
@click.option("--symbol", required=True, help="BASE/QUOTE, e.g. BTC/USDT.")
@_import_options(
    "0.001",
    "none, or estimated when a timestamp is after its local_timestamp, or the earlier import's",
)
@click.option(
    "--market",
    type=click.Choice(["spot", "perpetual"]),
    help="[default: the instrument file's type, else spot]",
)
@click.option(
    "--instrument",
    "instrument_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Tardis instrument metadata JSON (priceIncrement, amountIncrement, fees, type).",
)
def import_tardis_cmd(
    book_file: Path,
    trades_file: Path | None,
    snapshots_file: Path | None,
    venue: str,
    symbol: str,
    catalog_path: Path,
    tick: str | None,
    lot: str | None,
    maker_fee: str | None,
    taker_fee: str | None,
    clock_offset_ms: float | None,
    market: str | None,
    instrument_file: Path | None,
) -> None:
    """Import Tardis.dev CSV files (incremental_book_L2, trades, book_snapshot_25)."""
    from arbsim.core.model import parse_symbol
    from arbsim.data.catalog import Catalog
    from arbsim.data.importers.tardis import import_tardis

    try:
        parse_symbol(symbol)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--symbol") from None
    _import(
        f"import {venue} {symbol}",
        lambda progress: import_tardis(
            book_file,
            trades_file=trades_file,
            snapshots_file=snapshots_file,
            catalog=Catalog(catalog_path),
            venue=venue,
            symbol=symbol,
            tick=_decimal(tick, "--tick"),
            lot=_decimal(lot, "--lot"),
            maker_fee=_decimal(maker_fee, "--maker-fee"),
            taker_fee=_decimal(taker_fee, "--taker-fee"),
            market=market,
            instrument_file=instrument_file,
            clock_offset_ns=None if clock_offset_ms is None else int(clock_offset_ms * 1e6),
            progress=progress,
        ),
        f"interrupted: nothing of this import was kept in {catalog_path}",
    )


@import_.command("cryptofeed")
@click.argument("prefix", type=click.Path(path_type=Path))
@click.option(
    "--venue", required=True, help="The recorded venue (an importer plug-in for it), e.g. gateio."
)
@click.option("--symbol", "symbols", multiple=True, help="BASE/QUOTE (repeat; default: all).")
@_CATALOG_OPTION
def import_cryptofeed_cmd(
    prefix: Path, venue: str, symbols: tuple[str, ...], catalog_path: Path
) -> None:
    """Import a cryptofeed raw capture (PREFIX.0, PREFIX.http.*, PREFIX.ws.*), synced by the
    venue adapter's own book-sync code (a plug-in: entry points arbsim.importers)."""
    from arbsim.app.registry import Registry
    from arbsim.data.catalog import Catalog

    try:
        plugin = Registry.from_entry_points().importer("cryptofeed", venue)
    except ArbsimError as e:
        _fail(str(e))
        return
    _import(
        f"import {venue} {prefix.name}",
        lambda progress: plugin.run(
            prefix,
            catalog=Catalog(catalog_path),
            venue=venue,
            symbols=list(dict.fromkeys(symbols)),
            progress=progress,
        ),
        f"interrupted: nothing of this import was kept in {catalog_path}",
    )


def format_catalog(summary: dict[str, Any]) -> str:
    """``data info`` as a table: one row per venue and symbol."""
    lines = [
        f"catalog {summary['root']}" + ("  [SYNTHETIC]" if summary["synthetic"] else ""),
    ]
    if summary.get("description"):
        lines.append(f"  {summary['description']}")
    rows: list[tuple[str, ...]] = [
        ("venue", "symbol", "market", "tick", "lot", "book rows", "trades", "start (UTC)",
         "end (UTC)", "span"),
    ]  # fmt: skip
    for st in summary["streams"]:
        secs = st.get("seconds")
        span = "-" if secs is None else _duration(secs)
        rows.append(
            (
                st["venue"],
                st["symbol"],
                st.get("market", ""),
                st.get("tick", ""),
                st.get("lot", ""),
                f"{st['rows']['book']:,}",
                f"{st['rows']['trades']:,}",
                (st.get("start") or "-").replace("T", " "),
                (st.get("end") or "-").replace("T", " "),
                span,
            )
        )
    lines += _table(rows)
    for st in summary["streams"]:
        if len(st.get("ranges", [])) > 1:
            lines.append(f"  {st['venue']} {st['symbol']}: {len(st['ranges'])} ranges, gaps:")
            lines += [
                f"    {g['after'].replace('T', ' ')} -> {g['before'].replace('T', ' ')} "
                f"({_duration(g['seconds'])})"
                for g in st["gaps"]
            ]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{seconds:.1f} s"
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


@data.command("info")
@click.argument("catalog_path")
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (times in ns and ISO-8601) instead."
)
def info(catalog_path: str, as_json: bool) -> None:
    """Print a catalog's instruments, row counts and time ranges (a table, or JSON); the
    catalog is a directory or a URL (s3://bucket/prefix, file:///dir)."""
    from arbsim.data.catalog import Catalog, catalog_location, catalog_summary

    try:
        summary = catalog_summary(Catalog(catalog_location(catalog_path)))
    except ArbsimError as e:
        _fail(str(e))
        return
    click.echo(json.dumps(summary, indent=2) if as_json else format_catalog(summary))


@main.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write; its directory must exist  [default: RUN_DIR/report.html]",
)
@click.option(
    "--against",
    "against",
    type=click.Path(path_type=Path),
    help="A backtest of the same window (e.g. of this session's RUN_DIR/catalog): the "
    "report compares the two decision by decision and explains the PnL gap.",
)
def report(run_dir: Path, out_path: Path | None, against: Path | None) -> None:
    """Write a self-contained HTML report of a run directory (PnL, fills, slippage, latency)."""
    from arbsim.analysis.report import write_report

    try:
        with _progress(f"report {run_dir}", "sections") as progress:
            target = write_report(run_dir, out_path, progress=progress.update, against=against)
    except ArbsimError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:
        click.echo(f"error: cannot write {out_path or run_dir / 'report.html'}: {e}", err=True)
        sys.exit(2)
    click.echo(f"report written: {target}")


@main.command("compare")
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


_MODE = click.Choice(["backtest", "paper", "live"])


def config_template(mode: str) -> Path:
    """The commented starting config of ``mode`` (``arbsim config new``)."""
    from arbsim.app.backtest import default_config_path

    return default_config_path().with_name(f"{mode}.yaml")


@main.group("config")
def config_group() -> None:
    """Show, validate and start run configurations."""


@config_group.command("show")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML run configuration  [default: the bundled default config of the mode]",
)
@click.option("--mode", type=_MODE, default="backtest", show_default=True,
              help="Read the config for this mode (venue kinds default by mode).")  # fmt: skip
def config_show(config_path: Path | None, mode: str) -> None:
    """Print the effective config: every key, defaults filled in, paths resolved."""
    import msgspec

    from arbsim.app.config import dump_config, load_config, strategy_params

    if config_path is None and mode == "live":
        _fail("no default live config (it would trade real money): give --config "
              "(`arbsim config new --mode live` writes one)")  # fmt: skip
    path = config_path or config_template("backtest" if mode == "backtest" else "paper")
    try:
        cfg = load_config(path, _mode(mode))
        params = strategy_params(cfg)
    except ArbsimError as e:
        _fail(str(e))
        return
    if params is not None:  # the strategy's parameters with their defaults too
        full = msgspec.to_builtins(params)
        strategy = msgspec.structs.replace(cfg.strategy, params=full)
        cfg = msgspec.structs.replace(cfg, strategy=strategy)
    click.echo(f"# effective {mode} config of {path}", nl=True)
    click.echo(dump_config(cfg).decode(), nl=False)


def _mode(mode: str) -> Mode:
    if mode == "paper":
        return "paper"
    if mode == "live":
        return "live"
    return "backtest"


@config_group.command("validate")
@click.argument("config_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mode", type=_MODE, default="backtest", show_default=True,
              help="Validate for this mode.")  # fmt: skip
def config_validate(config_path: Path, mode: str) -> None:
    """Check a config: exit 0 and a one-line description, or exit 2 naming the key."""
    from arbsim.app.backtest import kind_of
    from arbsim.app.config import load_config

    try:
        cfg = load_config(config_path, _mode(mode))
    except ArbsimError as e:
        _fail(str(e))
        return
    venues = ", ".join(f"{v.name} ({kind_of(v)})" for v in cfg.venues)
    strategy = cfg.strategy.class_ or cfg.strategy.name
    click.echo(f"{config_path}: valid {mode} config; venues {venues}; strategy {strategy}")


@config_group.command("new")
@click.option("--mode", type=_MODE, required=True, help="The mode the config is for.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (refused if it exists)  [default: print to stdout]",
)
def config_new(mode: str, out_path: Path | None) -> None:
    """A commented starting config for a mode (it validates as it is)."""
    text = config_template(mode).read_text(encoding="utf-8")
    if out_path is None:
        click.echo(text, nl=False)
        return
    try:
        with out_path.open("x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        _fail(f"--out {out_path} exists; pick another file")
    except OSError as e:
        _fail(f"--out {out_path}: cannot write ({e.strerror or e})")
    click.echo(f"{mode} config written: {out_path} (check it: arbsim config validate "
               f"{out_path} --mode {mode})")  # fmt: skip


if __name__ == "__main__":
    main()
