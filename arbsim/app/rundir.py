"""Run directories: a new one per run (never shared by two runs), checked writable
before any work is done."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
from pathlib import Path

from arbsim.core.errors import ConfigError


def new_run_dir(prefix: str, root: Path | None = None) -> Path:
    """Create and return ``runs/<prefix>-YYYYmmdd-HHMMSS-<4 hex>``: the time of the
    start and a random suffix, created exclusively, so two runs started in the same
    second (or by two processes at once) never share a directory."""
    base = Path("runs") if root is None else root
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    try:
        base.mkdir(parents=True, exist_ok=True)
        for _ in range(1000):
            path = base / f"{prefix}-{stamp}-{secrets.token_hex(2)}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return path
    except OSError as e:
        raise ConfigError(f"cannot create a run directory in {base}: {e.strerror or e}") from e
    raise ConfigError(f"cannot create a new run directory in {base}: every name was taken")


def check_writable(out: Path, what: str = "--out") -> None:
    """Create ``out`` (with its parents) and write a file in it, or raise ConfigError
    naming the directory and the reason: a run finds out before it starts, not after."""
    probe = out / f".arbsim-write-check-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"{what} {out}: cannot write there ({e.strerror or e})") from e


def remove_if_empty(path: Path) -> None:
    """Remove a run directory that a failed start left empty."""
    with contextlib.suppress(OSError):
        path.rmdir()
