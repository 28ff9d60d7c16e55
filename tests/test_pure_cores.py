"""The pure cores import no I/O and read no clock (STYLE.md practice 1).

Checked on the source (every `import` statement, including ones nested in
functions), because the standard library's own modules pull in `time`
transitively (datetime does): what matters is that *our* code cannot reach it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"asyncio", "socket", "sqlite3", "time", "websockets", "threading", "selectors"}

PURE_MODULES = sorted(
    [
        *(
            ROOT / "os3p" / f"{name}.py"
            for name in (
                "actions",
                "backoff",
                "errors",
                "formats",
                "frames",
                "messages",
                "router",
                "session",
                "validation",
            )
        ),
        *(ROOT / "rtu" / "schedule").glob("*.py"),
        *(ROOT / "rtu" / "supervision" / f"{name}.py" for name in ("alarms", "ledger", "mv")),
        ROOT / "rtu" / "lights" / "reconcile.py",
        ROOT / "rtu" / "metering" / "dsmr.py",
        ROOT / "rtu" / "configkeys.py",
        ROOT / "rtu" / "firmware" / "state.py",
        ROOT / "rtu" / "metering" / "sampling.py",
        ROOT / "rtu" / "metering" / "registers.py",
        ROOT / "central" / "queueing.py",
    ]
)


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_core_imports_no_io_or_clock(path: Path) -> None:
    assert path.exists(), f"{path} is listed as a pure core module but is missing"
    assert imported_roots(path) & FORBIDDEN == set()


def test_the_check_would_catch_an_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    import time\n    from asyncio import sleep\n")
    assert imported_roots(bad) & FORBIDDEN == {"time", "asyncio"}
