"""Dependencies point inward: arbsim/ imports neither exchanges/ nor strategies/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_arbsim_does_not_import_outer_layers() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(imported_modules(p) & {"exchanges", "strategies"})
        for p in (ROOT / "arbsim").rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}


def test_exchanges_do_not_import_strategies() -> None:
    bad = [p for p in (ROOT / "exchanges").rglob("*.py") if "strategies" in imported_modules(p)]
    assert bad == []


def test_the_check_sees_imports() -> None:
    # guard against a vacuous pass: the scanner finds the real imports of known modules
    assert "arbsim" in imported_modules(ROOT / "strategies" / "cross_exchange.py")
    assert "exchanges" in imported_modules(ROOT / "exchanges" / "replay" / "__init__.py")
