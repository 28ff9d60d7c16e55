"""docs/conformance.md cannot rot: every requirement keyword of the spec has a row, every
row quotes its line, and every test it names exists.

The keywords are re-extracted from the spec by the rule the document states; tests are
found by reading the test files' syntax trees (no import, no collection: < 1 s).
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "docs" / "conformance.md"
SPEC = ROOT / "tests" / "conformance" / "spec" / "os3p-0.4-json-over-websockets.txt"
SHARED_SPEC = Path("/work/shared/spec/os3p-0.4-json-over-websockets.txt")
SPEC_SHA256 = "2bdb4ac63c9663c1bc03290d71b107d2152347f8cda78740646b5f23bc390d7f"

KEYWORD = re.compile(r"\b(must|shall|should|required|recommended|recommend)\b", re.IGNORECASE)
SCHEMA_REQUIRED = re.compile(r'^\s*"required"\s*:')
CONVENTIONS = "are to be interpreted as described in [RFC2119]"
NODE_ID = re.compile(r"`(tests/[\w/]+\.py(?:::\w+)+)`")
SIDES = {"station", "central", "both", "—"}
ID_FORMAT = re.compile(r"^C-(G?)§(\d+(?:\.\d+)*)-(\d+)$")


def extract(lines: list[str]) -> dict[int, list[str]]:
    """Line number (1-based) → keyword occurrences, by the rule in docs/conformance.md."""
    found: dict[int, list[str]] = {}
    for number, line in enumerate(lines, start=1):
        if SCHEMA_REQUIRED.match(line) or CONVENTIONS in line:
            continue
        words = KEYWORD.findall(line)
        if words:
            found[number] = words
    return found


@dataclass(frozen=True)
class Row:
    id: str
    line: int
    section: str
    keyword: str
    quote: str
    side: str
    proof: str


def parse_map(text: str) -> list[Row]:
    rows = []
    for raw in text.splitlines():
        if not raw.startswith("| C-"):
            continue
        cells = [cell.strip() for cell in raw.strip().strip("|").split(" | ")]
        assert len(cells) == 7, f"a row has 7 cells: {raw}"
        rid, line, section, keyword, quote, side, proof = cells
        rows.append(Row(rid, int(line), section, keyword, quote, side, proof))
    return rows


@cache
def spec_lines() -> list[str]:
    return SPEC.read_text(encoding="utf-8").splitlines()


@cache
def rows() -> list[Row]:
    return parse_map(MAP.read_text(encoding="utf-8"))


@cache
def collected_names(path: Path) -> frozenset[str]:
    """`name` and `Class::name` of every test function pytest would collect in `path`."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.endswith("Suite"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    item.name.startswith("test")
                ):
                    names.add(f"{node.name}::{item.name}")
    return frozenset(names)


def node_exists(node_id: str) -> bool:
    path, _, name = node_id.partition("::")
    file = ROOT / path
    return file.is_file() and name in collected_names(file)


# ------------------------------------------------------------------ the checks
def test_vendored_spec_is_the_published_text() -> None:
    assert hashlib.sha256(SPEC.read_bytes()).hexdigest() == SPEC_SHA256


@pytest.mark.skipif(not SHARED_SPEC.is_file(), reason="no shared copy of the spec here")
def test_vendored_spec_matches_the_shared_copy() -> None:
    assert SPEC.read_bytes() == SHARED_SPEC.read_bytes()


def test_every_keyword_occurrence_has_exactly_one_row() -> None:
    expected = {line: Counter(words) for line, words in extract(spec_lines()).items()}
    mapped: dict[int, Counter[str]] = {}
    for row in rows():
        mapped.setdefault(row.line, Counter())[row.keyword] += 1
    missing = {
        line: dict(words - mapped.get(line, Counter()))
        for line, words in expected.items()
        if words - mapped.get(line, Counter())
    }
    extra = {
        line: dict(words - expected.get(line, Counter()))
        for line, words in mapped.items()
        if words - expected.get(line, Counter())
    }
    assert not missing, f"spec keywords without a row (line: keywords): {missing}"
    assert not extra, f"rows for keywords the spec does not have there: {extra}"


def test_rule_finds_what_the_document_says() -> None:
    # A guard on the extraction itself: upper and lower case, schema keys and the
    # conventions line excluded (spot checks against the spec text).
    found = extract(spec_lines())
    assert found[240] == ["MUST", "MUST"]
    assert found[312] == ["Should"]
    assert found[339] == ["recommend"]
    assert 85 not in found
    assert all(not SCHEMA_REQUIRED.match(spec_lines()[line - 1]) for line in found)
    assert sum(len(words) for words in found.values()) == len(rows())


def test_each_row_quotes_its_line_and_names_its_keyword() -> None:
    for row in rows():
        line = spec_lines()[row.line - 1].replace("**", "")
        assert row.quote in line, f"{row.id}: quote not on spec line {row.line}"
        assert row.keyword in KEYWORD.findall(row.quote), f"{row.id}: keyword not in quote"


def test_ids_are_unique_and_name_their_section() -> None:
    ids = [row.id for row in rows()]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    for row in rows():
        match = ID_FORMAT.match(row.id)
        assert match, f"{row.id}: ids look like C-G§4.4-1 (guide) or C-§3.1-1 (annex)"
        guide, section, _ = match.groups()
        assert row.section == f"{'G' if guide else ''}§{section}", row.id
        assert row.side in SIDES, f"{row.id}: side {row.side!r}"


def test_every_row_is_proved_or_says_why_not() -> None:
    for row in rows():
        tests = NODE_ID.findall(row.proof)
        reasoned = row.proof.startswith(("n/a:", "informative:"))
        assert tests or reasoned, f"{row.id}: no test and no reason"
        if reasoned and not tests:
            assert row.side == "—", f"{row.id}: nothing to prove, so no side"
        else:
            assert row.side != "—", f"{row.id}: a proved statement has a side"


def test_every_named_test_exists() -> None:
    text = MAP.read_text(encoding="utf-8")
    named = set(NODE_ID.findall(text))
    assert named
    missing = sorted(node for node in named if not node_exists(node))
    assert not missing, f"docs/conformance.md names tests that do not exist: {missing}"


def test_every_conformance_test_is_on_the_map() -> None:
    named = set(NODE_ID.findall(MAP.read_text(encoding="utf-8")))
    for file in sorted((ROOT / "tests" / "conformance").glob("test_*.py")):
        path = file.relative_to(ROOT).as_posix()
        for name in collected_names(file):
            assert f"{path}::{name}" in named, f"{path}::{name} proves nothing on the map"
