"""Regenerate :mod:`exchanges.mexc.pb` from ``mexc_push.proto`` with protoc.

    python -m exchanges.mexc.proto.regenerate

Needs the ``dev`` extra: ``grpcio-tools`` brings protoc (run as ``python -m grpc_tools.protoc``)
and ``mypy-protobuf`` the ``protoc-gen-mypy`` plugin that writes the ``.pyi`` stubs. Both are
pinned in pyproject.toml, and ``tests/exchanges/mexc/test_mexc_proto.py`` fails when the
checked-in files differ from what :func:`generate` makes now, so commit what this writes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["GENERATED", "OUT_DIR", "PROTO", "generate", "main"]

PROTO = Path(__file__).resolve().with_name("mexc_push.proto")
OUT_DIR = PROTO.parent.parent / "pb"
GENERATED = ("mexc_push_pb2.py", "mexc_push_pb2.pyi")
"""The files protoc writes for :data:`PROTO`, by name."""


def _mypy_plugin() -> str:
    # The plugin is a console script next to this interpreter (a venv's bin/), else on PATH.
    found = shutil.which("protoc-gen-mypy", path=str(Path(sys.executable).parent))
    found = found or shutil.which("protoc-gen-mypy")
    if found is None:
        raise RuntimeError("protoc-gen-mypy not found: pip install -e '.[dev]'")
    return found


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on :data:`PROTO`, writing the module and its stubs into ``out_dir``."""
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={PROTO.parent}",
        f"--plugin=protoc-gen-mypy={_mypy_plugin()}",
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        PROTO.name,
    ]
    done = subprocess.run(cmd, cwd=PROTO.parent, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"protoc failed ({done.returncode}):\n{done.stderr}")
    return [out_dir / name for name in GENERATED]


def main() -> None:
    for path in generate(OUT_DIR):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
