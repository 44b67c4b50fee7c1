"""``arbsim exchange-sim`` prints its URLs and credentials and serves them."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp

from exchanges.sim.cli import build_config
from exchanges.sim.config import DEMO_CREDENTIALS


def test_build_config_merges_options(tmp_path: Path) -> None:
    cfg_file = tmp_path / "sim.yaml"
    cfg_file.write_text(
        "speed: 3\nvenues:\n  - venue: gateio\n    faults: [{kind: http_status, status: 503}]\n"
    )
    cfg = build_config(["mexc", "gateio"], "127.0.0.1", 18000, None, None, str(cfg_file), "k", "s")
    assert [(v.venue, v.port) for v in cfg.venues] == [("mexc", 18000), ("gateio", 18001)]
    assert cfg.speed == 3 and cfg.venues[1].faults[0].status == 503
    assert all(v.effective_accounts()[0].api_key == "k" for v in cfg.venues)


async def test_command_prints_urls_and_serves() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exchanges.sim.cli", "--venue", "mexc", "--speed", "50",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        key, secret = DEMO_CREDENTIALS["mexc"]
        assert f"api_key={key}" in line and f"api_secret={secret}" in line
        match = re.search(r"REST (http://127\.0\.0\.1:\d+/api/v3)", line)
        assert match, line
        async with aiohttp.ClientSession() as http, http.get(f"{match.group(1)}/ping") as r:
            assert r.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
