"""Catalog locations that are URLs without a server: file:// (a local directory) and an
fsspec filesystem pyarrow does not know (memory://, read through FSSpecHandler)."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from arbsim.app.backtest import bundled_sample, catalog_config, default_config_path, run_backtest
from arbsim.app.cli import main
from arbsim.app.config import load_config, parse_config
from arbsim.core.errors import DataError
from arbsim.data.catalog import Catalog, catalog_location, is_url

OUTPUTS = ("orders.parquet", "fills.parquet", "arbs.parquet", "equity.parquet", "latency.parquet")


def test_catalog_location_keeps_urls_whole() -> None:
    assert catalog_location("s3://bucket/a/b") == "s3://bucket/a/b"
    assert catalog_location("data/sample") == Path("data/sample")
    assert is_url("file:///x") and not is_url("data/s3:x") and not is_url(Path("s3://b"))


def test_a_config_keeps_a_catalog_url_as_written(tmp_path: Path) -> None:
    """Paths in a config are relative to it; a URL is not a path."""
    base = (default_config_path()).read_text()
    for catalog, want in (("s3://bucket/cat", "s3://bucket/cat"), ("cat", str(tmp_path / "cat"))):
        text = base + f"\ndata:\n  catalog: {catalog}\n"
        path = tmp_path / "c.yaml"
        path.write_text(text)
        assert load_config(path).data.catalog == want
    assert parse_config(text.encode(), "inline").data.catalog == "cat"


def test_file_urls_are_local_catalogs() -> None:
    url = f"file://{bundled_sample()}"
    cat = Catalog(url)
    assert cat.fs is None and cat.root == bundled_sample()
    assert [i.key for i in cat.instruments()] == ["gateio:BTC/USDT", "mexc:BTC/USDT"]
    got = CliRunner().invoke(main, ["data", "info", "--json", url])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["root"] == str(bundled_sample())


def test_an_fsspec_catalog_replays_like_the_local_copy(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec", reason="fsspec (installed with arbsim[sweep])")
    mem = fsspec.filesystem("memory")
    mem.put(str(bundled_sample()), "/arbsim-test-sample", recursive=True)
    try:
        url = "memory://arbsim-test-sample"
        cat = Catalog(url)
        assert cat.fs is not None and cat.location == url
        [path] = cat.files("mexc", "BTC/USDT", "book")
        assert path.parent.name == "date=2026-01-05"
        with pytest.raises(DataError, match="read-only"):
            cat.create(cat.info())
        cfg, _ = catalog_config(cat, load_config(default_config_path()))
        start, end = "2026-01-05T00:10:00Z", "2026-01-05T00:11:00Z"
        remote = run_backtest(cfg, catalog_path=url, out_dir=tmp_path / "m", start=start, end=end)
        local = run_backtest(
            cfg, catalog_path=bundled_sample(), out_dir=tmp_path / "l", start=start, end=end
        )
        assert remote.summary["events"] == local.summary["events"] > 0
        for f in OUTPUTS:
            assert filecmp.cmp(tmp_path / "m" / f, tmp_path / "l" / f, shallow=False), f
        with pytest.raises(DataError, match="memory://nowhere"):
            Catalog("memory://nowhere").info()
    finally:
        mem.rm("/arbsim-test-sample", recursive=True)
