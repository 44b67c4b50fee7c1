"""Analysis of a run directory (DESIGN §8): pandas frames and the measures built on them.

Everything here reads only the files a run writes (``orders.parquet``, ``fills.parquet``,
``arbs.parquet``, ``latency.parquet``, ``equity.parquet``, ``summary.json``,
``config.yaml``), so a backtest, a paper session and a live session are analysed by the
same code.

Conventions
-----------
- Times are integer nanoseconds (``ts_*`` columns); each frame also gets a ``time``
  column (UTC ``datetime64``) for plotting.
- Exact quantities are decimal strings in the files; :func:`load_run` keeps them and adds
  a float twin named ``<column>_f`` (the files' own convention, see ``fills.price_f``).
- Sides are ``+1`` (buy) and ``-1`` (sell).
- Costs in basis points are positive when they hurt: buying above the reference price,
  or selling below it, is a positive cost.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from arbsim.core.errors import DataError
from arbsim.core.records import ARBS, FILLS, ORDERS, TRANSFERS, RecordSchema, twin
from arbsim.runtime.stats import ArbResult, arb_stats, curve_stats

__all__ = [
    "LEG_KINDS",
    "Run",
    "arb_edges",
    "bundled_session",
    "fill_ratios",
    "inventory",
    "latency_percentiles",
    "leg_slippage",
    "load_run",
    "order_legs",
    "pnl_over_time",
    "session_stats",
    "slippage_summary",
    "time_to_fill",
    "transfers",
]

#: The role of an order in an arb: the two planned legs, then the repair orders.
LEG_KINDS = ("buy", "sell", "hedge", "unwind")


@dataclass(frozen=True)
class _FileColumns:
    """What the analysis needs of one file of a run directory."""

    #: columns the file must have for the analysis to be meaningful; extra columns (from
    #: a newer writer) are kept and ignored
    required: tuple[str, ...]
    #: decimal-string columns that get a float twin ``<name>_f`` when read
    decimals: tuple[str, ...] = ()
    #: the integer-ns column the frame's ``time`` is made from
    time: str = "ts"


def _file_columns(records: RecordSchema[Any]) -> _FileColumns:
    return _FileColumns(records.required, records.missing_twins, records.time)


# Orders, fills and arbs: as defined in arbsim.core.records.
_FILES: dict[str, _FileColumns] = {
    **{r.file: _file_columns(r) for r in (ORDERS, FILLS, ARBS)},
    "latency.parquet": _FileColumns(("ts", "kind", "venue", "latency_ns")),
    "equity.parquet": _FileColumns(("ts", "equity", "net_pnl", "gross_pnl", "fees")),
}

_LEG_TAG = re.compile(r":(hedge|unwind)\d*$")


@dataclass(frozen=True, eq=False)
class Run:
    """The contents of one run directory.

    Attributes
    ----------
    path:
        The run directory.
    orders, fills, arbs, latency, equity:
        One frame per Parquet file, with float twins (``<column>_f``) of the decimal
        string columns and a UTC ``time`` column.
    summary:
        ``summary.json`` as a dict.
    config_text:
        ``config.yaml`` as written by the run (the resolved configuration).
    config:
        ``config.yaml`` parsed.
    transfers:
        ``transfers.parquet`` (written by runs that moved funds between venues) with
        float twins and ``time``; empty, with the same columns, otherwise.
    """

    path: Path
    orders: pd.DataFrame
    fills: pd.DataFrame
    arbs: pd.DataFrame
    latency: pd.DataFrame
    equity: pd.DataFrame
    summary: dict[str, Any]
    config_text: str
    config: dict[str, Any]
    #: the transfers between venues (``transfers.parquet``; empty when the run made none)
    transfers: pd.DataFrame = field(default_factory=lambda: _no_transfers())

    @property
    def name(self) -> str:
        """The run directory's name (used as a label in reports and comparisons)."""
        return self.path.name

    def start_balances(self) -> dict[str, dict[str, Decimal]]:
        """Start balances per venue and asset, from the resolved config.

        Returns
        -------
        dict
            ``{venue: {asset: Decimal}}``; venues without balances map to ``{}``.
        """
        out: dict[str, dict[str, Decimal]] = {}
        for v in self.config.get("venues") or []:
            if not isinstance(v, dict) or "name" not in v:
                continue
            bal = v.get("balances") or {}
            try:
                out[str(v["name"])] = {str(a): Decimal(str(q)) for a, q in bal.items()}
            except (InvalidOperation, AttributeError):
                raise DataError(
                    f"{self.path / 'config.yaml'}: venue {v['name']!r} has unreadable balances"
                ) from None
        return out

    def shifted(self, ns: int) -> Run:
        """This run with every time moved by ``ns`` (``ts*`` columns, ``time``, the window).

        Two sessions on the same window of a simulator replay ran at different wall times:
        shifting one by the difference of the simulator's clock offsets (``GET
        /_sim/state``) puts both in one exchange time, so :func:`compare_runs` can line
        them up.
        """

        def move(df: pd.DataFrame) -> pd.DataFrame:
            out = df.copy()
            for col in out.columns:
                if col.startswith("ts") and pd.api.types.is_integer_dtype(out[col]):
                    out[col] = out[col] + ns
            if "time" in out.columns:
                out["time"] = out["time"] + pd.Timedelta(ns, unit="ns")
            return out

        summary = dict(self.summary)
        start, end = self.window_ns()
        window = dict(summary.get("window") or {})
        for key, t in (("start", start + ns), ("end", end - 999_999 + ns)):
            window[key] = pd.Timestamp(t, unit="ns", tz="UTC").isoformat()
        summary["window"] = window
        return replace(
            self,
            orders=move(self.orders),
            fills=move(self.fills),
            arbs=move(self.arbs),
            latency=move(self.latency),
            equity=move(self.equity),
            transfers=move(self.transfers),
            summary=summary,
        )

    def window_ns(self) -> tuple[int, int]:
        """The run's time window ``(start, end)`` in ns: from the summary, else the data."""
        win = self.summary.get("window") or {}
        try:
            start = _iso_ns(str(win["start"]))
            end = _iso_ns(str(win["end"]))
        except (KeyError, ValueError):
            ts = [
                int(s.min())
                for s in (self.equity["ts"], self.arbs["ts_decision"], self.fills["ts_local"])
                if len(s)
            ]
            te = [
                int(s.max())
                for s in (self.equity["ts"], self.arbs["ts_decision"], self.fills["ts_local"])
                if len(s)
            ]
            return (min(ts), max(te)) if ts else (0, 0)
        # the summary's times are cut to the millisecond: the last one covers its whole ms
        return start, end + 999_999


def _iso_ns(text: str) -> int:
    t = pd.Timestamp(text)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return int(t.value)


def _read_table(path: Path, columns: _FileColumns) -> pd.DataFrame:
    name = path.name
    if not path.is_file():
        raise DataError(f"{path}: missing from the run directory")
    try:
        table: pa.Table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: not a readable Parquet file ({e})") from None
    missing = [c for c in columns.required if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: not an arbsim {name} (missing columns: {', '.join(missing)})")
    df = table.to_pandas()
    for col in columns.decimals:
        if col in df.columns:
            df[twin(col)] = _decimal_floats(df[col], path, col)
    df["time"] = pd.to_datetime(df[columns.time].astype("int64"), unit="ns", utc=True)
    return df


def _decimal_floats(col: pd.Series, path: Path, name: str) -> pd.Series:
    # empty strings stand for "no value" (an order without a price); they become NaN
    text = col.astype("string").fillna("").str.strip()
    out = pd.to_numeric(text.mask(text == ""), errors="coerce").astype("float64")
    bad = out.isna() & (text != "")
    if bad.any():
        raise DataError(
            f"{path}: column {name} holds non-decimal values, e.g. {text[bad].iloc[0]!r}"
        )
    return out


def bundled_session() -> Path:
    """The paper session kept with arbsim (``data/paper-session``, see ``data/README.md``):
    the cross-exchange strategy in ``arbsim paper`` against ``arbsim exchange-sim``
    replaying two minutes of the bundled sample, with the market data it received in
    its ``catalog/``."""
    return Path(__file__).resolve().parents[2] / "data" / "paper-session"


def load_run(path: str | Path) -> Run:
    """Load a run directory written by ``arbsim backtest`` (or paper / live).

    Parameters
    ----------
    path:
        The run directory.

    Returns
    -------
    Run
        Typed frames of orders, fills, arbs, latency and equity, with the summary and
        the resolved configuration.

    Raises
    ------
    DataError
        The directory is missing or is not an arbsim run directory, or one of its files
        is missing, corrupt or lacks the columns the analysis needs (the file is named).
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: run directory does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: not a directory (expected an arbsim run directory)")
    expected = ["summary.json", "config.yaml", *_FILES]
    if not any((root / f).exists() for f in expected):
        raise DataError(
            f"{root}: not an arbsim run directory (none of {', '.join(expected)} is there)"
        )
    summary_path = root / "summary.json"
    if not summary_path.is_file():
        raise DataError(f"{summary_path}: missing from the run directory")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{summary_path}: not valid JSON ({e})") from None
    if not isinstance(summary, dict) or "arbs" not in summary or "pnl" not in summary:
        raise DataError(f"{summary_path}: not an arbsim run summary (no 'arbs' / 'pnl')")
    config_path = root / "config.yaml"
    if not config_path.is_file():
        raise DataError(f"{config_path}: missing from the run directory")
    try:
        config_text = config_path.read_text(encoding="utf-8")
        config = yaml.safe_load(config_text)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise DataError(f"{config_path}: not valid YAML ({e})") from None
    if not isinstance(config, dict):
        raise DataError(f"{config_path}: not an arbsim run configuration (not a mapping)")
    frames = {name: _read_table(root / name, cols) for name, cols in _FILES.items()}
    transfers_path = root / TRANSFERS.file
    return Run(
        path=root,
        orders=frames["orders.parquet"],
        fills=frames["fills.parquet"],
        arbs=frames["arbs.parquet"],
        latency=frames["latency.parquet"],
        equity=frames["equity.parquet"],
        summary=summary,
        config_text=config_text,
        config=config,
        transfers=_read_table(transfers_path, _file_columns(TRANSFERS))
        if transfers_path.exists()
        else _no_transfers(),
    )


# ---------------------------------------------------------------- legs and slippage
def order_legs(run: Run) -> pd.DataFrame:
    """Which arb and which leg each order belongs to.

    The first two orders of an arb are its planned buy and sell legs (the executor
    records them in that order); later ones are hedges or unwinds, told apart by
    their tag (``arb7:hedge0``, ``arb7:unwind1``).

    Returns
    -------
    pandas.DataFrame
        Columns ``client_order_id``, ``arb_id``, ``leg`` (one of :data:`LEG_KINDS`).
    """
    rows: list[tuple[str, int, str]] = []
    tags = dict(zip(run.orders["client_order_id"], run.orders["tag"], strict=True))
    for arb_id, ids in zip(run.arbs["arb_id"], run.arbs["orders"], strict=True):
        if ids is None:
            continue
        for i, cid in enumerate(ids):
            if i < 2:
                leg = LEG_KINDS[i]
            else:
                m = _LEG_TAG.search(str(tags.get(cid, "")))
                leg = m.group(1) if m else "hedge"
            rows.append((str(cid), int(arb_id), leg))
    return pd.DataFrame(rows, columns=["client_order_id", "arb_id", "leg"]).astype(
        {"client_order_id": "str", "arb_id": "int64", "leg": "str"}
    )


def _order_fills(run: Run) -> pd.DataFrame:
    """Per order: filled quantity, VWAP, fees, first / last fill times."""
    f = run.fills
    if f.empty:
        return pd.DataFrame(
            {
                "client_order_id": pd.Series(dtype="str"),
                "fill_qty": pd.Series(dtype="float64"),
                "fill_price": pd.Series(dtype="float64"),
                "fill_fee": pd.Series(dtype="float64"),
                "n_fills": pd.Series(dtype="int64"),
                "first_fill_local": pd.Series(dtype="int64"),
                "first_fill_exchange": pd.Series(dtype="int64"),
                "last_fill_local": pd.Series(dtype="int64"),
            }
        )
    f = f.assign(notional=f["price_f"] * f["qty_f"])
    g = f.groupby("client_order_id", sort=False)
    out = pd.DataFrame(
        {
            "fill_qty": g["qty_f"].sum(),
            "notional": g["notional"].sum(),
            "fill_fee": g["fee_f"].sum(),
            "n_fills": g.size(),
            "first_fill_local": g["ts_local"].min(),
            "first_fill_exchange": g["ts_exchange"].min(),
            "last_fill_local": g["ts_local"].max(),
        }
    )
    out["fill_price"] = out["notional"] / out["fill_qty"].where(out["fill_qty"] > 0)
    return out.drop(columns="notional").reset_index()


def _cost_bps(side: pd.Series, ref: pd.Series, price: pd.Series, base: pd.Series) -> pd.Series:
    # side +1 buy: paying more than ref is a cost; side -1 sell: receiving less is a cost
    # + 0.0 turns the -0.0 of a zero sell-side cost into 0.0 for display
    return side * (price - ref) / base * 1e4 + 0.0


def leg_slippage(run: Run) -> pd.DataFrame:
    """Slippage of every arb leg, decomposed decision → arrival → fill, in basis points.

    For each order of an arb that filled:

    - ``decision_price``: the touch on that venue when the arb was decided (the ask
      for the buy venue, the bid for the sell venue);
    - ``arrival_price``: the touch when the order reached the venue (from
      ``orders.parquet`` for every order; runs written before that column existed give
      it for the two planned legs only, from ``arbs.parquet``);
    - ``fill_price``: the order's volume-weighted fill price.

    Every component is divided by the decision price, so ``delay_bps + impact_bps ==
    total_bps`` where the arrival price is known. Signs: a cost is positive (a buy
    above the reference, a sell below it).

    Hedges and unwinds are measured against the decision price of the venue they trade
    on: their ``total_bps`` is what repairing a one-sided fill cost relative to the
    plan.

    Returns
    -------
    pandas.DataFrame
        One row per (arb, order) with a fill: ``arb_id``, ``leg``, ``client_order_id``,
        ``venue``, ``side``, ``ts_decision``, ``time``, ``qty``, ``decision_price``,
        ``arrival_price``, ``fill_price``, ``delay_bps`` (decision → arrival),
        ``impact_bps`` (arrival → fill), ``total_bps`` (decision → fill) and
        ``cost_quote`` (``total_bps`` in quote currency for the filled quantity).
    """
    legs = order_legs(run)
    of = _order_fills(run)
    has_arrival = "arrival_price" in run.orders.columns
    o = run.orders[
        ["client_order_id", "venue", "side", *(["arrival_price"] if has_arrival else [])]
    ].rename(columns={"arrival_price": "order_arrival_price"})
    a = run.arbs[
        [
            "arb_id",
            "buy_venue",
            "sell_venue",
            "ts_decision",
            "time",
            "decision_buy_price",
            "decision_sell_price",
            "buy_arrival_price",
            "sell_arrival_price",
        ]
    ]
    df = legs.merge(o, on="client_order_id", how="inner").merge(a, on="arb_id", how="inner")
    df = df.merge(of, on="client_order_id", how="inner")
    df = df[df["fill_qty"] > 0].copy()
    on_buy_venue = df["venue"] == df["buy_venue"]
    df["decision_price"] = np.where(
        on_buy_venue, df["decision_buy_price"], df["decision_sell_price"]
    )
    arrival = np.where(
        df["leg"] == "buy",
        df["buy_arrival_price"],
        np.where(df["leg"] == "sell", df["sell_arrival_price"], np.nan),
    )
    if has_arrival:
        arrival = np.where(df["order_arrival_price"].notna(), df["order_arrival_price"], arrival)
    # 0.0 is the writer's "not known" (an order rejected before it reached the book)
    df["arrival_price"] = np.where(arrival > 0, arrival, np.nan)
    df["decision_price"] = df["decision_price"].where(df["decision_price"] > 0)
    side = df["side"].astype("float64")
    base = df["decision_price"]
    df["delay_bps"] = _cost_bps(side, df["decision_price"], df["arrival_price"], base)
    df["impact_bps"] = _cost_bps(side, df["arrival_price"], df["fill_price"], base)
    df["total_bps"] = _cost_bps(side, df["decision_price"], df["fill_price"], base)
    df["qty"] = df["fill_qty"]
    df["cost_quote"] = df["total_bps"] / 1e4 * df["decision_price"] * df["qty"]
    cols = [
        "arb_id",
        "leg",
        "client_order_id",
        "venue",
        "side",
        "ts_decision",
        "time",
        "qty",
        "decision_price",
        "arrival_price",
        "fill_price",
        "delay_bps",
        "impact_bps",
        "total_bps",
        "cost_quote",
    ]
    return df[cols].sort_values(["arb_id", "client_order_id"]).reset_index(drop=True)


def slippage_summary(slippage: pd.DataFrame) -> pd.DataFrame:
    """Mean and median of each slippage component per leg and venue.

    Parameters
    ----------
    slippage:
        The frame of :func:`leg_slippage`.

    Returns
    -------
    pandas.DataFrame
        Index ``(leg, venue)``; columns ``legs``, ``qty``, quantity-weighted means
        ``delay_bps``, ``impact_bps``, ``total_bps``, the median ``total_bps_p50`` and
        ``cost_quote`` (the sum).
    """
    rows: list[dict[str, Any]] = []
    for (leg, venue), g in slippage.groupby(["leg", "venue"], sort=True):
        w = g["qty"]
        row: dict[str, Any] = {"leg": leg, "venue": venue, "legs": len(g), "qty": w.sum()}
        for c in ("delay_bps", "impact_bps", "total_bps"):
            ok = g[c].notna()
            row[c] = float(np.average(g.loc[ok, c], weights=w[ok])) if ok.any() else math.nan
        row["total_bps_p50"] = float(g["total_bps"].median())
        row["cost_quote"] = float(g["cost_quote"].sum())
        rows.append(row)
    cols = ["leg", "venue", "legs", "qty", "delay_bps", "impact_bps", "total_bps"]
    cols += ["total_bps_p50", "cost_quote"]
    return _by_leg(pd.DataFrame(rows, columns=cols))


def _by_leg(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in leg order (buy, sell, hedge, unwind), then by venue; index (leg, venue)."""
    rank = df["leg"].map({k: i for i, k in enumerate(LEG_KINDS)}).fillna(len(LEG_KINDS))
    df = df.assign(_k=rank).sort_values(["_k", "venue"]).drop(columns="_k")
    return df.set_index(["leg", "venue"])


# ---------------------------------------------------------------- arbs
def arb_edges(run: Run) -> pd.DataFrame:
    """Expected vs realised edge of every arb decision.

    Returns
    -------
    pandas.DataFrame
        One row per decision: ``arb_id``, ``time``, ``ts_decision``, ``buy_venue``,
        ``sell_venue``, ``outcome``, ``reason``, ``attempted`` (orders were sent),
        ``qty_target``, ``fill_ratio`` (the planned legs' smaller fill over the target,
        before any hedge), ``expected_edge_bps``, ``realized_edge_bps``,
        ``edge_gap_bps`` (realised minus expected, ``NaN`` for decisions not
        attempted), ``expected_pnl``, ``realized_pnl`` and ``fees``.
    """
    a = run.arbs
    attempted = ~a["outcome"].isin(["skipped", "denied"])
    qty = a["qty_target_f"]
    fill_ratio = np.minimum(a["buy_filled_f"], a["sell_filled_f"]) / qty.where(qty > 0)
    out = pd.DataFrame(
        {
            "arb_id": a["arb_id"],
            "time": a["time"],
            "ts_decision": a["ts_decision"],
            "buy_venue": a["buy_venue"],
            "sell_venue": a["sell_venue"],
            "outcome": a["outcome"],
            "reason": a["reason"],
            "attempted": attempted,
            "qty_target": qty,
            "fill_ratio": fill_ratio.where(attempted),
            "expected_edge_bps": a["expected_edge_bps"],
            "realized_edge_bps": a["realized_edge_bps"].where(attempted),
            "expected_pnl": a["expected_pnl"],
            "realized_pnl": a["realized_pnl"].where(attempted),
            "fees": a["fees"],
        }
    )
    out["edge_gap_bps"] = out["realized_edge_bps"] - out["expected_edge_bps"]
    return out.reset_index(drop=True)


def fill_ratios(run: Run) -> pd.DataFrame:
    """Fill ratios of arb orders per leg and venue.

    Returns
    -------
    pandas.DataFrame
        Index ``(leg, venue)``; columns ``orders``, ``qty`` (asked), ``filled``,
        ``fill_ratio`` (filled / asked), ``full`` (share of orders filled completely),
        ``none`` (share with no fill) and ``rejected`` (orders with a reject code).
    """
    legs = order_legs(run)
    o = run.orders.merge(legs, on="client_order_id", how="inner")
    rows: list[dict[str, Any]] = []
    for (leg, venue), g in o.groupby(["leg", "venue"], sort=True):
        asked = g["qty_f"].fillna(0.0)
        filled = g["filled_qty_f"].fillna(0.0)
        rows.append(
            {
                "leg": leg,
                "venue": venue,
                "orders": len(g),
                "qty": float(asked.sum()),
                "filled": float(filled.sum()),
                "fill_ratio": float(filled.sum() / asked.sum()) if asked.sum() > 0 else math.nan,
                "full": float(((filled >= asked) & (asked > 0)).mean()),
                "none": float((filled <= 0).mean()),
                "rejected": int((g["reject_code"].fillna("") != "").sum()),
            }
        )
    cols = ["leg", "venue", "orders", "qty", "filled", "fill_ratio", "full", "none", "rejected"]
    return _by_leg(pd.DataFrame(rows, columns=cols))


def time_to_fill(run: Run) -> pd.DataFrame:
    """Time from sending each arb order to its fills.

    Returns
    -------
    pandas.DataFrame
        One row per arb order with a fill: ``client_order_id``, ``arb_id``, ``leg``,
        ``venue``, ``ts_sent``, ``n_fills``, ``to_exchange_fill_ms`` (sent → first fill
        at the venue, i.e. entry latency plus queueing) and ``to_first_fill_ms`` /
        ``to_last_fill_ms`` (sent → the client learning of its first / last fill).
    """
    legs = order_legs(run)
    of = _order_fills(run)
    df = run.orders[["client_order_id", "venue", "ts_sent"]].merge(legs, on="client_order_id")
    df = df.merge(of, on="client_order_id")
    # ts_sent 0 means the order was first seen as an update (not sent by this run)
    df = df[(df["fill_qty"] > 0) & (df["ts_sent"] > 0)].copy()
    df["to_exchange_fill_ms"] = (df["first_fill_exchange"] - df["ts_sent"]) / 1e6
    df["to_first_fill_ms"] = (df["first_fill_local"] - df["ts_sent"]) / 1e6
    df["to_last_fill_ms"] = (df["last_fill_local"] - df["ts_sent"]) / 1e6
    cols = ["client_order_id", "arb_id", "leg", "venue", "ts_sent", "n_fills"]
    cols += ["to_exchange_fill_ms", "to_first_fill_ms", "to_last_fill_ms"]
    return df[cols].reset_index(drop=True)


# ---------------------------------------------------------------- latency
def latency_percentiles(
    run: Run, percentiles: tuple[float, ...] = (50.0, 90.0, 99.0)
) -> pd.DataFrame:
    """Latency percentiles in milliseconds by kind and venue.

    Kinds are those of ``latency.parquet``: ``feed_sample`` (the bounded sample of
    feed latencies), ``place`` / ``cancel`` / ``fetch_order`` / ``fetch_balances``
    (request round trips) and ``tick_to_trade``.

    Parameters
    ----------
    run:
        A loaded run.
    percentiles:
        Percentiles to compute, in percent.

    Returns
    -------
    pandas.DataFrame
        Index ``(kind, venue)``; columns ``n``, ``mean``, ``p<q>`` for each percentile
        and ``max``.
    """
    cols = ["n", "mean", *(f"p{q:g}" for q in percentiles), "max"]
    rows: list[dict[str, Any]] = []
    for (kind, venue), g in run.latency.groupby(["kind", "venue"], sort=True):
        ms = g["latency_ns"].to_numpy(dtype=np.float64) / 1e6
        row: dict[str, Any] = {"kind": kind, "venue": venue, "n": len(ms), "mean": ms.mean()}
        for q, v in zip(percentiles, np.percentile(ms, percentiles), strict=True):
            row[f"p{q:g}"] = float(v)
        row["max"] = float(ms.max())
        rows.append(row)
    return pd.DataFrame(rows, columns=["kind", "venue", *cols]).set_index(["kind", "venue"])


# ---------------------------------------------------------------- inventory and pnl
def _assets(symbol: str) -> tuple[str, str]:
    base, sep, quote = symbol.partition("/")
    if not sep:
        raise DataError(f"symbol {symbol!r} is not of the form BASE/QUOTE")
    return base, quote


def inventory(run: Run) -> pd.DataFrame:
    """Balances per venue and asset over time, from the start balances, the fills and
    the transfers.

    Start balances come from the run's resolved configuration; each fill moves base and
    quote (and its fee asset) on its venue; a transfer takes ``amount + fee`` from its
    source when sent and gives ``amount`` to its destination when it arrived. The result
    is exact to float precision; the run's own ledger (``summary.json: reconciliation``)
    holds the exact end state.

    Returns
    -------
    pandas.DataFrame
        Long format: ``ts``, ``time``, ``venue``, ``asset``, ``balance``; the first row
        of each (venue, asset) is its start balance at the run's start.
    """
    start_ns, _ = run.window_ns()
    rows: list[dict[str, Any]] = []
    bal: dict[tuple[str, str], float] = {}
    for venue, assets in run.start_balances().items():
        for asset, qty in assets.items():
            bal[(venue, asset)] = float(qty)
            rows.append({"ts": start_ns, "venue": venue, "asset": asset, "balance": float(qty)})
    f = run.fills.sort_values(["ts_local", "ts_exchange"], kind="stable")
    cols = zip(
        f["ts_local"], f["venue"], f["symbol"], f["side"], f["price_f"], f["qty_f"],
        f["fee_f"], f["fee_asset"], strict=True,
    )  # fmt: skip
    events: list[tuple[int, int, str, dict[str, float]]] = []
    for n, (ts, venue, symbol, side, price, qty, fee, fee_asset) in enumerate(cols):
        base, quote = _assets(str(symbol))
        moves = {base: float(side) * qty, quote: -float(side) * qty * price}
        if fee_asset:
            moves[str(fee_asset)] = moves.get(str(fee_asset), 0.0) - fee
        events.append((int(ts), n, str(venue), moves))
    t = transfers(run)
    n = len(events)
    for src, dst, asset, amount, fee, sent, arrived in zip(
        t["venue"], t["destination"], t["asset"], t["amount_f"], t["fee_f"], t["ts_sent"],
        t["ts_arrived"], strict=True,
    ):  # fmt: skip
        if sent:
            events.append((int(sent), n, str(src), {str(asset): -(amount + fee)}))
        if arrived:
            events.append((int(arrived), n + 1, str(dst), {str(asset): amount}))
        n += 2
    events.sort(key=lambda e: (e[0], e[1]))
    for ts, _, venue, moves in events:
        for asset, d in moves.items():
            key = (venue, asset)
            bal[key] = bal.get(key, 0.0) + d
            rows.append({"ts": ts, "venue": key[0], "asset": asset, "balance": bal[key]})
    out = pd.DataFrame(rows, columns=["ts", "venue", "asset", "balance"])
    out = out.astype({"ts": "int64", "venue": "str", "asset": "str", "balance": "float64"})
    out.insert(1, "time", pd.to_datetime(out["ts"], unit="ns", utc=True))
    return out


def _no_transfers() -> pd.DataFrame:
    """The transfers frame of a run that made none: the columns, no rows."""
    out = pd.DataFrame({c: pd.Series(dtype="object") for c in TRANSFERS.names})
    for c in TRANSFERS.columns:
        if c.kind.value in ("timestamp_ns", "int"):
            out[c.name] = out[c.name].astype("int64")
        elif c.kind.value == "float":
            out[c.name] = out[c.name].astype("float64")
    for name in TRANSFERS.missing_twins:
        out[twin(name)] = pd.Series(dtype="float64")
    out["time"] = pd.to_datetime(out[TRANSFERS.time], unit="ns", utc=True)
    return out


def transfers(run: Run) -> pd.DataFrame:
    """The run's transfers between venues (``transfers.parquet``; written only by runs
    that made some): one row per withdrawal with its source (``venue``), destination,
    asset, network, ``amount`` and ``fee`` (with float twins), when it was asked for,
    sent and arrived, ``delay_s`` and ``status``. Empty (with those columns) when the run
    made none. (``load_run`` refuses a file that is unreadable or lacks the columns.)
    """
    return run.transfers


def pnl_over_time(run: Run) -> pd.DataFrame:
    """PnL over time in quote currency: gross, fees and net, plus the arbs' realised PnL.

    Returns
    -------
    pandas.DataFrame
        ``ts``, ``time``, ``gross``, ``fees``, ``net`` (from the equity samples, marked
        to market) and ``arb_realized`` (cumulative realised PnL of the arbs decided up
        to each sample).
    """
    e = run.equity.sort_values("ts")
    out = pd.DataFrame(
        {
            "ts": e["ts"].to_numpy(),
            "time": e["time"].to_numpy(),
            "gross": e["gross_pnl"].to_numpy(),
            "fees": e["fees"].to_numpy(),
            "net": e["net_pnl"].to_numpy(),
        }
    )
    # an arb's PnL is known once it is done (older writers may lack ts_done)
    done_col = "ts_done" if "ts_done" in run.arbs.columns else "ts_decision"
    a = run.arbs.sort_values(done_col)
    cum = np.concatenate([[0.0], a["realized_pnl"].fillna(0.0).cumsum().to_numpy()])
    idx = np.searchsorted(a[done_col].to_numpy(), out["ts"].to_numpy(), side="right")
    out["arb_realized"] = cum[idx]
    out["time"] = pd.to_datetime(out["ts"], unit="ns", utc=True)
    return out


def session_stats(run: Run) -> dict[str, Any]:
    """The run's session statistics (:mod:`arbsim.runtime.stats`): return on capital,
    maximum drawdown, Sharpe and Sortino of the net PnL curve, win rate and profit factor
    of the arbitrages, turnover, positions per venue and asset.

    Runs write them into ``summary.json``; for a run made before they were, the curve and
    arbitrage figures are computed from its equity samples and arbs (capital: the first
    equity sample) and ``positions`` is empty.
    """
    st = run.summary.get("stats")
    if isinstance(st, dict):
        return st
    e = run.equity.sort_values("ts")
    capital = float(e["equity"].iloc[0]) if len(e) else 0.0
    out: dict[str, Any] = curve_stats(
        [int(t) for t in e["ts"]], [float(v) for v in e["net_pnl"]], capital
    )
    a = run.arbs
    cols = ["buy_filled_f", "sell_filled_f", "realized_pnl", "expected_pnl"]
    cols += ["expected_edge_bps", "realized_edge_bps"]
    out["arbs"] = arb_stats(
        ArbResult(
            traded=bf > 0 or sf > 0,
            pnl=pnl,
            expected_pnl=exp,
            expected_edge_bps=exp_bps,
            realized_edge_bps=bps,
        )
        for bf, sf, pnl, exp, exp_bps, bps in zip(
            *(a[c].astype(float).tolist() for c in cols), strict=True
        )
    )
    f = run.fills
    notional = float((f["price_f"] * f["qty_f"]).sum()) if len(f) else 0.0
    out["filled_notional"] = notional
    out["turnover"] = notional / capital if capital > 0 else None
    out["positions"] = []
    return out
