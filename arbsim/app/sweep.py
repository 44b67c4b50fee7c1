"""`arbsim sweep`: many backtests of one base config, on Dask, with an Optuna search.

:func:`run_sweep` loads the grid file (:mod:`arbsim.app.sweep_grid`: every cell's config
validated before any work starts), starts a ``dask.distributed.LocalCluster`` on
127.0.0.1 (one single-threaded worker process per core, no dashboard) or joins an
existing scheduler, and hands each cell to a worker (:func:`arbsim.app.sweep_cell.run_cell`:
only the cell's config text travels, the worker reads the catalog from its path, the
summary comes back). ``optuna`` mode asks a study for trials (TPE by default) and tells
it each trial's objective, keeping one trial per worker in flight.

Each finished cell is appended to ``SWEEP_DIR/results.jsonl`` (flushed and synced: an
interrupted sweep loses no finished cell) and ``results.parquet`` is rewritten from it
every few seconds and at the end; ``--resume`` skips the cells whose key (a digest of
their config, data and window) finished ``ok``. dask and optuna are imported here only,
inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from arbsim.app.rundir import check_writable, new_run_dir
from arbsim.app.sweep_cell import METRICS, CellTask, run_cell
from arbsim.app.sweep_grid import Cell, Choices, Distribution, Param, Range, Sweep, load_sweep
from arbsim.core.errors import ConfigError
from arbsim.data.catalog import catalog_location

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client, Future
    from optuna import Study
    from optuna.distributions import BaseDistribution
    from optuna.trial import Trial

Keep = Literal["run", "summary"]
#: seconds between two rewrites of results.parquet while a sweep runs
PARQUET_EVERY_S = 5.0
#: seconds between two checks for a stop request while waiting for cells
_POLL_S = 0.2


class ResultStore:
    """The rows of a sweep directory: ``results.jsonl`` appended per cell (the record
    that survives an interruption), ``results.parquet`` rewritten from it atomically."""

    def __init__(self, root: Path, resume: bool) -> None:
        self.root = root
        self.jsonl = root / "results.jsonl"
        self.parquet = root / "results.parquet"
        self.rows: list[dict[str, Any]] = self._read() if resume else []
        self._written = time.monotonic()

    def _read(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        if not self.jsonl.is_file():
            return rows
        for line in self.jsonl.read_text().splitlines():
            # the last line of a killed sweep may be cut short: that cell runs again
            with contextlib.suppress(json.JSONDecodeError):
                row = json.loads(line)
                if isinstance(row, dict):
                    rows.append(row)
        return rows

    def finished(self) -> dict[str, dict[str, Any]]:
        """The rows of cells that finished ``ok``, by cell key."""
        return {r["cell"]: r for r in self.rows if r.get("status") == "ok"}

    def add(self, row: dict[str, Any]) -> None:
        with self.jsonl.open("a") as f:
            f.write(json.dumps(row, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.rows.append(row)
        if time.monotonic() - self._written >= PARQUET_EVERY_S:
            self.write_parquet()

    def frame(self) -> pd.DataFrame:
        """One row per cell (a cell run again after a failure: its last row)."""
        import pandas as pd

        latest = {r["cell"]: r for r in self.rows}
        return pd.DataFrame(list(latest.values()))

    def write_parquet(self) -> None:
        import pyarrow as pa

        df = self.frame()
        tmp = self.parquet.with_suffix(".parquet.tmp")
        try:
            df.to_parquet(tmp, index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # a parameter whose values mix types (a number and a string): as text
            mixed = [c for c in df.columns if df[c].dtype == object]
            df[mixed] = df[mixed].map(lambda v: v if v is None else str(v))
            df.to_parquet(tmp, index=False)
        os.replace(tmp, self.parquet)
        self._written = time.monotonic()


@dataclass
class _Trial:
    """An optuna trial in flight: its cells still running and the objectives so far."""

    trial: Trial
    pending: set[str]
    values: list[float] = field(default_factory=list)
    failed: bool = False


def run_sweep(
    config: str | Path,
    grid: str | Path,
    *,
    data: str | Path | None = None,
    out: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    keep: Keep = "run",
    report: bool = True,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], str | None] | None = None,
    say: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Run a sweep and return its results, one row per cell.

    Parameters
    ----------
    config, grid:
        The base config and the grid file (see README, *arbsim sweep*).
    data:
        The catalog, when the grid file names no ``catalogs`` (default: the config's
        ``data.catalog``, else the bundled sample).
    out:
        The sweep directory: new or empty, or the one to resume (default:
        ``runs/sweep-<time>-<random>``).
    workers, scheduler:
        A LocalCluster of ``workers`` single-threaded processes on 127.0.0.1 (default:
        one per core), or the address of an existing scheduler (``tcp://host:8786``;
        its workers must see the catalog and the sweep directory at the same paths).
    resume:
        Skip the cells that already finished ``ok`` in ``out``.
    keep:
        ``run``: each cell's run directory in ``out/cells/<cell>``; ``summary``: only
        its ``summary.json``.
    report:
        Write ``out/report.html`` at the end.
    progress:
        Told ``(done, total)`` cells of this session as they finish.
    should_stop:
        Polled while cells run; a reason (``"SIGINT"``) stops the sweep: running cells
        are cancelled, finished ones kept, the frame's ``attrs["interrupted"]`` says so.
    say:
        Where to tell what the sweep does (the sweep directory, the cluster, resumed
        cells).

    Raises ConfigError / DataError naming the entry before any work starts.
    """
    sweep = load_sweep(Path(config), Path(grid), None if data is None else catalog_location(data))
    cells: list[Cell] = []
    if sweep.mode == "optuna":
        sweep.check_space()
        _optuna_distributions(sweep.params)  # a value optuna cannot hold fails now
    else:
        cells = sweep.cells()
    _require("distributed", *(["optuna"] if sweep.mode == "optuna" else []))
    if workers is not None and scheduler is not None:
        raise ConfigError("--workers and --scheduler: give one or the other")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    root = _sweep_dir(None if out is None else Path(out), resume)
    tell = say or (lambda _: None)
    tell(f"sweep directory: {root}")
    store = ResultStore(root, resume)
    (root / "sweep.json").write_text(
        json.dumps(
            {
                "config": str(Path(config).resolve()),
                "grid": str(Path(grid).resolve()),
                "mode": sweep.mode,
                "objective": {
                    "expression": sweep.objective.expression,
                    "direction": sweep.objective.direction,
                },
                "params": [p.path for p in sweep.params],
            },
            indent=2,
        )
    )
    runner = _Runner(sweep, store, root, keep, progress, should_stop)
    interrupted: str | None = None
    try:
        with _client(workers, scheduler) as client:
            tell(f"dask: {_describe(client)}")
            if sweep.mode == "optuna":
                interrupted = runner.optuna(client, tell)
            else:
                interrupted = runner.cells(client, cells, tell)
    finally:
        store.write_parquet()
    df = store.frame()
    if report and not df.empty:
        from arbsim.analysis.sweep_report import write_sweep_report

        write_sweep_report(
            df,
            root / "report.html",
            params=[p.path for p in sweep.params],
            objective=sweep.objective.expression,
            direction=sweep.objective.direction,
            title=f"sweep {root.name}: {sweep.base_path.name} x {sweep.grid_path.name}",
        )
    df.attrs.update(
        sweep_dir=str(root),
        interrupted=interrupted,
        params=[p.path for p in sweep.params],
        objective=sweep.objective.expression,
        direction=sweep.objective.direction,
    )
    return df


def _require(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"arbsim sweep needs {' and '.join(missing)}: pip install 'arbsim[sweep]'"
        )


def best(df: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """The ``n`` best cells that finished ok, by the sweep's objective (``df`` as
    :func:`run_sweep` returns it)."""
    if df.empty or "status" not in df:
        return df.iloc[0:0]
    ok = df[df["status"] == "ok"]
    ascending = df.attrs.get("direction") == "minimize"
    return ok.sort_values("objective", ascending=ascending, na_position="last").head(n)


def format_sweep(df: pd.DataFrame) -> str:
    """What a finished (or interrupted) sweep printed: counts, the best cells, where
    the results and the report are."""
    root = Path(str(df.attrs.get("sweep_dir", ".")))
    params = list(df.attrs.get("params", []))
    ok = int((df["status"] == "ok").sum()) if "status" in df else 0
    lines = [
        f"arbsim sweep: {len(df):,} cells, {ok:,} ok, {len(df) - ok:,} failed"
        + (f"  [INTERRUPTED by {df.attrs['interrupted']}]" if df.attrs.get("interrupted") else ""),
        f"  objective  {df.attrs.get('direction', 'maximize')} {df.attrs.get('objective', '')}",
    ]
    top = best(df)
    if not top.empty:
        lines.append("  best cells:")
        for _, row in top.iterrows():
            values = ", ".join(f"{p}={row[p]}" for p in params)
            window = f" [{row['start']} -> {row['end']}]" if row.get("start") else ""
            lines.append(
                f"    {row['objective']:>12,.4f}  net {row['net_pnl']:,.4f}  {values}{window}"
            )
    if "trial" in df and df["trial"].notna().any() and not top.empty:
        # an optuna trial's objective is the mean over its cells (windows, catalogs, seeds)
        trials = df[df["status"] == "ok"].groupby("trial")["objective"].mean()
        order = trials.sort_values(ascending=df.attrs.get("direction") == "minimize")
        best_trial = int(order.index[0])
        row = df[df["trial"] == best_trial].iloc[0]
        values = ", ".join(f"{p}={row[p]}" for p in params)
        lines.append(
            f"  best trial {best_trial} of {df['trial'].nunique()}: objective "
            f"{float(order.iloc[0]):,.4f} (mean of its cells), {values}"
        )
    lines.append(f"  results    {root / 'results.parquet'}")
    if (root / "report.html").is_file():
        lines.append(f"  report     {root / 'report.html'}")
    return "\n".join(lines)


def _sweep_dir(out: Path | None, resume: bool) -> Path:
    if out is None:
        if resume:
            raise ConfigError("--resume needs --out, the sweep directory to resume")
        return new_run_dir("sweep")
    if resume:
        if not (out / "results.jsonl").is_file() and not (out / "sweep.json").is_file():
            raise ConfigError(f"--resume: {out} is not a sweep directory (no results.jsonl)")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out} exists and is not empty; use --resume or a new directory")
    check_writable(out)
    (out / "cells").mkdir(exist_ok=True)
    return out


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None) -> Iterator[Client]:
    """A client of ``scheduler``, or of a new LocalCluster on 127.0.0.1 (closed after)."""
    import logging

    from distributed import Client, LocalCluster

    # the cluster's start and stop are not news on the sweep's log (unless debugging)
    quiet = logging.getLogger("distributed")
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        quiet.setLevel(max(quiet.getEffectiveLevel(), logging.WARNING))
    if scheduler is not None:
        client = Client(scheduler, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        # dashboard off; the scheduler's own HTTP routes on an ephemeral local port
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False},
        silence_logs=logging.ERROR,
        # each worker ignores SIGINT (Ctrl-C reaches it too): this process stops them
        preload=[run_cell.__module__],  # its dask_setup
    )
    try:
        client = Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def _describe(client: Client) -> str:
    info = client.scheduler_info()
    return f"scheduler {info.get('address')}, {len(info.get('workers', {}))} workers"


def _n_workers(client: Client) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


class _Runner:
    """Submits cells, waits for them, records each result as a row."""

    def __init__(
        self,
        sweep: Sweep,
        store: ResultStore,
        root: Path,
        keep: Keep,
        progress: Callable[[int, int], None] | None,
        should_stop: Callable[[], str | None] | None,
    ) -> None:
        self.sweep = sweep
        self.store = store
        self.root = root
        self.keep = keep
        self.progress = progress
        self.should_stop = should_stop or (lambda: None)
        self.done = 0
        self.total = 0
        self.futures: dict[Future[dict[str, Any]], Cell] = {}

    # ------------------------------------------------------------- one cell
    def submit(self, client: Client, cell: Cell) -> None:
        out_dir = None if self.keep == "summary" else str(self.root.resolve() / "cells" / cell.key)
        task = CellTask(key=cell.key, config_text=cell.config_text, out_dir=out_dir)
        # a unique key per submission: a cell submitted again is run again, not looked up
        key = f"arbsim-cell-{cell.key}-{os.urandom(4).hex()}"
        future = client.submit(run_cell, msgspec.msgpack.encode(task), key=key, pure=False)
        self.futures[future] = cell

    def wait(self, client: Client) -> list[tuple[Cell, dict[str, Any]]] | None:
        """The cells finished by now (waiting up to a poll interval); None when a stop
        was asked for."""
        from distributed import wait

        if self.should_stop():
            return None
        # the sweep's client is not made the process's default (a notebook keeps its own)
        with contextlib.suppress(TimeoutError), client.as_current():
            wait(list(self.futures), timeout=_POLL_S, return_when="FIRST_COMPLETED")
        out = []
        for future in [f for f in self.futures if f.done()]:
            cell = self.futures.pop(future)
            try:
                result = future.result()
            except Exception as e:  # a worker died or the task was lost
                result = {"key": cell.key, "status": "error", "error": f"{type(e).__name__}: {e}"}
            out.append((cell, self.record(cell, result)))
        return out

    def record(self, cell: Cell, result: dict[str, Any]) -> dict[str, Any]:
        metrics: dict[str, Any] = result.get("metrics") or {}
        ok = result.get("status") == "ok"
        summary = result.get("summary")
        run_dir = self.root / "cells" / cell.key
        if ok and self.keep == "summary" and summary is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        row: dict[str, Any] = {
            "cell": cell.key,
            "trial": cell.trial,
            "status": "ok" if ok else "error",
            "error": result.get("error"),
            **cell.params,
            "catalog": cell.catalog,
            "start": cell.start,
            "end": cell.end,
            "seed": cell.seed,
            **{m: metrics.get(m, math.nan) for m in METRICS},
            "objective": self.sweep.objective(metrics) if ok else math.nan,
            "run_dir": str(run_dir.relative_to(self.root)) if ok else None,
        }
        self.store.add(row)
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)
        return row

    def cancel(self, client: Client) -> None:
        if self.futures:
            client.cancel(list(self.futures))
            self.futures.clear()

    # ------------------------------------------------------------- grid, random
    def cells(
        self, client: Client, cells: Sequence[Cell], tell: Callable[[str], None]
    ) -> str | None:
        finished = self.store.finished()
        todo = [c for c in cells if c.key not in finished]
        if len(todo) < len(cells):
            tell(f"resume: {len(cells) - len(todo)} of {len(cells)} cells already done")
        self.total = len(todo)
        if self.progress is not None:
            self.progress(0, self.total)
        for cell in todo:
            self.submit(client, cell)
        while self.futures:
            if self.wait(client) is None:
                self.cancel(client)
                return self.should_stop()
        return None

    # ------------------------------------------------------------- optuna
    def optuna(self, client: Client, tell: Callable[[str], None]) -> str | None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sweep = self.sweep
        spec = sweep.grid.objective
        sampler: optuna.samplers.BaseSampler = (
            optuna.samplers.RandomSampler(seed=sweep.grid.seed)
            if spec.sampler == "random"
            else optuna.samplers.TPESampler(seed=sweep.grid.seed, constant_liar=True)
        )
        study = optuna.create_study(direction=spec.direction, sampler=sampler)
        dists = _optuna_distributions(sweep.params)
        told = self._resume_trials(study, dists)
        if told:
            tell(f"resume: {told} trials already done")
        trials = sweep.grid.trials or 0
        per_trial = len(sweep.catalogs) * len(sweep.windows) * len(sweep.seeds)
        self.total = max(0, trials - told) * per_trial
        if self.progress is not None:
            self.progress(0, self.total)
        asked = told
        running: dict[int, _Trial] = {}
        slots = _n_workers(client)
        while asked < trials or running:
            while asked < trials and len(running) < slots:
                trial = study.ask(dists)
                asked += 1
                values = {p.path: _from_optuna(p, trial.params[p.path]) for p in sweep.params}
                try:
                    cells = sweep.cells_for(values, trial=trial.number)
                except ConfigError as e:
                    # values the config refuses (the ends of each range were checked
                    # before the sweep started): a failed trial, recorded as one row
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    invalid = Cell(
                        key=f"trial-{trial.number}-invalid",
                        params=values,
                        catalog="",
                        start=None,
                        end=None,
                        seed=None,
                        config_text=b"",
                        trial=trial.number,
                    )
                    self.total -= per_trial - 1
                    self.record(invalid, {"status": "error", "error": f"ConfigError: {e}"})
                    continue
                running[trial.number] = _Trial(trial, {c.key for c in cells})
                for cell in cells:
                    self.submit(client, cell)
            finished = self.wait(client)
            if finished is None:
                self.cancel(client)
                return self.should_stop()
            for cell, row in finished:
                assert cell.trial is not None
                state = running[cell.trial]
                state.pending.discard(cell.key)
                if row["status"] != "ok" or math.isnan(row["objective"]):
                    state.failed = True
                else:
                    state.values.append(row["objective"])
                if not state.pending:
                    del running[cell.trial]
                    if state.failed:
                        study.tell(state.trial, state=optuna.trial.TrialState.FAIL)
                    else:
                        study.tell(state.trial, sum(state.values) / len(state.values))
        return None

    def _resume_trials(self, study: Study, dists: Mapping[str, BaseDistribution]) -> int:
        """Tell the study the trials a resumed sweep finished (each with all its cells
        ``ok``): they count towards ``trials`` and guide the sampler."""
        import optuna

        per_trial = len(self.sweep.catalogs) * len(self.sweep.windows) * len(self.sweep.seeds)
        by_trial: dict[int, list[dict[str, Any]]] = {}
        for row in {r["cell"]: r for r in self.store.rows}.values():
            if row.get("trial") is not None:
                by_trial.setdefault(int(row["trial"]), []).append(row)
        told = 0
        for _, rows in sorted(by_trial.items()):
            values = [r["objective"] for r in rows if r.get("status") == "ok"]
            params = {p.path: _to_optuna(p, rows[0][p.path]) for p in self.sweep.params}
            complete = len(values) == per_trial and not any(math.isnan(v) for v in values)
            # a trial that failed or was cut short is told as failed: the new trials'
            # numbers (and cell keys) follow the old ones, and it runs no more
            study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions=dict(dists),
                    value=sum(values) / len(values) if complete else None,
                    state=optuna.trial.TrialState.COMPLETE
                    if complete
                    else optuna.trial.TrialState.FAIL,
                )
            )
            told += complete
        return told


def _optuna_distributions(
    params: Sequence[Param],
) -> dict[str, BaseDistribution]:
    """Each parameter's search space for optuna (ConfigError for one it cannot hold)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, BaseDistribution] = {}
    for p in params:
        d = p.domain
        if isinstance(d, Choices):
            bad = [v for v in d.values if not isinstance(v, str | int | float | bool | None)]
            if bad:
                raise ConfigError(
                    f"`params.{p.path}`: optuna chooses among numbers and strings, got {bad[0]!r}"
                )
            out[p.path] = CategoricalDistribution(list(d.values))
        elif isinstance(d, Range):
            # the range's index: every suggestion is exactly one of its decimal values
            out[p.path] = IntDistribution(0, len(d.decimals) - 1)
        elif d.kind == "int":
            out[p.path] = IntDistribution(int(d.low), int(d.high), step=int(d.step or 1))
        elif d.kind == "loguniform":
            if d.step is not None:
                raise ConfigError(f"`params.{p.path}`: a loguniform distribution takes no step")
            out[p.path] = FloatDistribution(d.low, d.high, log=True)
        else:
            out[p.path] = FloatDistribution(d.low, d.high, step=d.step)
    return out


def _from_optuna(p: Param, value: Any) -> Any:
    """A parameter's config value from optuna's suggestion."""
    if isinstance(p.domain, Range):
        return p.domain.values[int(value)]
    if isinstance(p.domain, Distribution) and p.domain.kind == "int":
        return int(value)
    return value


def _to_optuna(p: Param, value: Any) -> Any:
    """optuna's value of a parameter's config value (a resumed trial)."""
    if isinstance(p.domain, Range):
        return list(p.domain.values).index(value)
    return value
