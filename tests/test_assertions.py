"""No assertion in the suite that cannot fail.

An outside audit found tests that stayed green with the bug they were written for: ``assert
mod.id`` (an id is always truthy), ``assert x is None or ...`` (passes on the branch nobody
meant), ``assert r.status_code < 500`` where the route has one right answer. This walks every test
file's syntax tree and fails on those shapes, naming file and line, so they do not come back.

The one place a bare "no 5xx" is the whole point is the schema fuzzer (``test_web_schemathesis.py``):
random requests have no single right answer, only a wrong one.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
NO_5XX_IS_THE_SPEC = {"test_web_schemathesis.py"}
STATUS_NAMES = {"status_code", "status", "code"}


def _is_id(node: ast.expr) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        name = str(node.slice.value)
    return name == "id" or name.endswith("_id")


def _is_none_test(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], ast.Is)
        and isinstance(node.comparators[0], ast.Constant)
        and node.comparators[0].value is None
    )


def _names_a_status(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in STATUS_NAMES) or (
        isinstance(node, ast.Name) and node.id in STATUS_NAMES
    )


def _below_500(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Compare)
        and _names_a_status(node.left)
        and any(
            isinstance(op, ast.Lt | ast.LtE) and isinstance(c, ast.Constant) and c.value in (500, 499)
            for op, c in zip(node.ops, node.comparators, strict=True)
        )
    )


def findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(TESTS.parent) if path.is_relative_to(TESTS.parent) else path.name
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert):
            continue
        where = f"{rel}:{node.lineno}"
        if _is_id(node.test):
            out.append(f"{where}: asserts that an id is truthy (it always is)")
        if isinstance(node.test, ast.BoolOp) and isinstance(node.test.op, ast.Or):
            if any(_is_none_test(v) for v in node.test.values):
                out.append(f"{where}: 'x is None or ...' passes on either branch; assert the one expected")
        if path.name not in NO_5XX_IS_THE_SPEC and any(_below_500(n) for n in ast.walk(node.test)):
            out.append(f"{where}: 'status < 500' where the route has one right answer; assert that status")
    return out


def test_no_assertion_that_cannot_fail() -> None:
    files = sorted(TESTS.rglob("test_*.py")) + sorted(TESTS.glob("*util*.py"))
    assert len(files) > 30, files  # the walk found the suite
    problems = [f for path in files for f in findings(path)]
    assert problems == [], "\n".join(problems)


def test_the_checker_catches_each_shape(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    text = (
        "def test_x(mod, r, code, x):\n"
        "    assert mod.id\n"
        "    assert r['paper_id']\n"
        "    assert x is None or x > 1\n"
        "    assert r.status_code < 500\n"
        "    assert all(code < 500 for code in [1])\n"
        "    assert mod.id == 3 and r.status_code == 200\n"  # specific: fine
    )
    sample.write_text(text, encoding="utf-8")
    found = findings(sample)
    assert [f.split(": ", 1)[0].rsplit(":", 1)[1] for f in found] == ["2", "3", "4", "5", "6"], found
