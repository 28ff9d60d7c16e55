"""The inventory's pure cores import no I/O and read no clock (STYLE.md practice 1),
not even through another central module (`central.storage` opens databases)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.test_pure_cores import FORBIDDEN, imported_roots

CENTRAL = Path(__file__).resolve().parents[2] / "central"
PURE = ["meters", "shipment", "periodic", "historyfile"]


def _central_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("central"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("central"))
    return names


@pytest.mark.parametrize("name", PURE)
def test_pure_inventory_core(name: str) -> None:
    path = CENTRAL / f"{name}.py"
    assert imported_roots(path) & FORBIDDEN == set()
    assert _central_imports(path) <= {f"central.{other}" for other in PURE}
