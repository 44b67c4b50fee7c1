"""Catalogs on S3: a real S3-compatible server (moto's server mode) on 127.0.0.1 holding
a copy of the bundled sample, read by `arbsim data info`, `arbsim backtest` (the same
outputs as from the local copy, with and without seek) and a sweep on a 2-worker
LocalCluster; errors name the URL and never show a credential."""

from __future__ import annotations

import filecmp
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from click.testing import CliRunner

from arbsim.app.backtest import bundled_sample, catalog_config, default_config_path, run_backtest
from arbsim.app.cli import main
from arbsim.app.config import load_config
from arbsim.core.errors import DataError
from arbsim.data.catalog import Catalog, catalog_summary

moto_server = pytest.importorskip(
    "moto.server", reason="moto[server] (a dev dependency: the S3 server of these tests)"
)

SECRET = "s3cr3t-never-shown-0123456789"
BUCKET = "arbsim-data"
START, END = "2026-01-05T00:10:00Z", "2026-01-05T00:12:00Z"
OUTPUTS = ("orders.parquet", "fills.parquet", "arbs.parquet", "equity.parquet", "latency.parquet")


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 on 127.0.0.1 with the sample at s3://arbsim-data/sample (and a foreign
    file at s3://arbsim-data/bad)."""
    # the server's request log would land in the commands' output (the CLI logs at INFO)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("aws")
    for key, value in {
        "AWS_ACCESS_KEY_ID": "arbsim-test-key",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        # nothing but the server above: no instance metadata, no user config files
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
    }.items():
        mp.setenv(key, value)
    mp.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    mp.delenv("AWS_SESSION_TOKEN", raising=False)
    mp.delenv("AWS_PROFILE", raising=False)
    try:
        fs = pafs.S3FileSystem(endpoint_override=endpoint, allow_bucket_creation=True)
        fs.create_dir(BUCKET)
        pafs.copy_files(
            str(bundled_sample()),
            f"{BUCKET}/sample",
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=fs,
        )
        # an arbsim catalog.json whose book file is not Parquet
        local = bundled_sample()
        with fs.open_output_stream(f"{BUCKET}/bad/catalog.json") as f:
            f.write((local / "catalog.json").read_bytes())
        for inst in ("mexc", "gateio"):
            with fs.open_output_stream(f"{BUCKET}/bad/{inst}/BTC-USDT/instrument.json") as f:
                f.write((local / inst / "BTC-USDT" / "instrument.json").read_bytes())
            book = f"{BUCKET}/bad/{inst}/BTC-USDT/book/date=2026-01-05/part-0000.parquet"
            with fs.open_output_stream(book) as f:
                f.write(b"this is not parquet")
        yield endpoint
    finally:
        mp.undo()
        server.stop()


def test_data_info_reads_an_s3_catalog(s3_endpoint: str) -> None:
    got = CliRunner().invoke(main, ["data", "info", "--json", f"s3://{BUCKET}/sample"])
    assert got.exit_code == 0, got.output
    remote = json.loads(got.stdout)
    local = catalog_summary(Catalog(bundled_sample()))
    assert remote["root"] == f"s3://{BUCKET}/sample"
    assert [(s["venue"], s["rows"], s["range"]) for s in remote["streams"]] == [
        (s["venue"], s["rows"], list(s["range"])) for s in local["streams"]
    ]
    assert SECRET not in got.output


@pytest.mark.parametrize("seek", [True, False])
def test_a_backtest_on_s3_writes_what_the_local_copy_gives(
    s3_endpoint: str, tmp_path: Path, seek: bool
) -> None:
    url = f"s3://{BUCKET}/sample/"
    cfg, _ = catalog_config(Catalog(url), load_config(default_config_path()))
    assert cfg.data.catalog == f"s3://{BUCKET}/sample"
    remote = run_backtest(
        cfg, catalog_path=url, out_dir=tmp_path / "s3", start=START, end=END, seek=seek
    )
    local = run_backtest(
        cfg, catalog_path=bundled_sample(), out_dir=tmp_path / "local", start=START, end=END
    )
    assert remote.summary["arbs"]["attempted"] > 5
    assert remote.summary["events"] == local.summary["events"] or not seek
    assert remote.summary["catalog"] == url
    for f in OUTPUTS:
        assert filecmp.cmp(tmp_path / "s3" / f, tmp_path / "local" / f, shallow=False), f


def test_the_backtest_command_takes_an_s3_url(s3_endpoint: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    got = CliRunner().invoke(
        main,
        [
            "backtest",
            "--data",
            f"s3://{BUCKET}/sample",
            "--out",
            str(out),
            "--start",
            START,
            "--end",
            "2026-01-05T00:10:30Z",
        ],
    )
    assert got.exit_code == 0, got.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["catalog"] == f"s3://{BUCKET}/sample" and summary["status"] == "ok"
    assert summary["events"] > 10_000


def test_s3_errors_name_the_url_and_show_no_secret(s3_endpoint: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"s3://{BUCKET}/nowhere") as missing:
        Catalog(f"s3://{BUCKET}/nowhere").info()
    bad = Catalog(f"s3://{BUCKET}/bad")
    [path] = bad.files("mexc", "BTC/USDT", "book")
    with pytest.raises(DataError, match="not a readable Parquet file") as corrupt:
        bad.parquet(path, "book")
    assert f"s3://{BUCKET}/bad/mexc/BTC-USDT/book/date=2026-01-05/part-0000.parquet" in str(
        corrupt.value
    )
    with pytest.raises(DataError, match="read-only"):
        bad.writer("mexc", "BTC/USDT", "book")
    got = CliRunner().invoke(
        main, ["backtest", "--data", f"s3://{BUCKET}/bad", "--out", str(tmp_path / "r")]
    )
    assert got.exit_code != 0 and "not a readable Parquet file" in got.output
    for text in (str(missing.value), str(corrupt.value), got.output):
        assert SECRET not in text


def test_a_sweep_on_two_workers_reads_the_s3_catalog(s3_endpoint: str, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed", reason="arbsim[sweep] is not installed")
    from arbsim.app.sweep import run_sweep

    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "params:\n  strategy.params.min_edge_bps: ['4.0', '6.0']\n"
        f"windows: [{{start: '{START}', end: '2026-01-05T00:11:00Z'}}]\n"
    )
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False},
    )
    try:
        df = run_sweep(
            default_config_path(),
            grid,
            data=f"s3://{BUCKET}/sample",
            out=tmp_path / "sweep",
            scheduler=cluster.scheduler_address,
            report=False,
        )
    finally:
        cluster.close()
    assert len(df) == 2 and set(df.status) == {"ok"}, df.get("error")
    assert set(df.catalog) == {f"s3://{BUCKET}/sample"}
    # each cell is the plain backtest of its window on the local copy
    for _, row in df.iterrows():
        cell = tmp_path / "sweep" / str(row.run_dir)
        cfg = load_config(cell / "config.yaml")
        local = run_backtest(
            cfg, catalog_path=bundled_sample(), out_dir=tmp_path / f"local-{row.cell}"
        )
        assert local.summary["arbs"] == json.loads((cell / "summary.json").read_text())["arbs"]
        for f in ("fills.parquet", "arbs.parquet"):
            assert filecmp.cmp(cell / f, tmp_path / f"local-{row.cell}" / f, shallow=False)
