"""The CI gate (``tests/ci_gate.py``): with ``CI=true`` a test that does not run fails the run.

A small suite with every way a test can quietly not run - ``pytest.skip`` in a test and in a
fixture, a ``skipif`` marker, ``importorskip`` at module level (an encoder that stops importing),
``xfail`` that fails and one that passes - runs in a real ``pytest`` subprocess with and without
``CI``: locally they skip, in CI each one is a failure that says why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SUITE = {
    "test_parts.py": """
import pytest

def test_runs():
    pass

def test_skips_itself():
    pytest.skip("no PostgreSQL here")

@pytest.fixture
def chromium():
    pytest.skip("no Chromium here")

def test_needs_a_fixture_that_skips(chromium):
    pass

@pytest.mark.skipif(True, reason="no ../shared/data here")
def test_marked_skipif():
    pass

@pytest.mark.xfail(reason="known bug")
def test_xfails():
    assert False

@pytest.mark.xfail(reason="fixed meanwhile")
def test_xpasses():
    pass
""",
    "test_encoder_gone.py": """
import pytest

pytest.importorskip("paperfeed_encoder_that_no_longer_imports")

def test_uses_the_encoder():
    pass
""",
}


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    for name, text in SUITE.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "PYTEST_ADDOPTS"}}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "src"), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "pytest", "-p", "tests.ci_gate", "-p", "no:cacheprovider", "-p", "no:randomly"]
    cmd += ["-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "-rfEsxX", str(tmp_path)]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_outside_ci_skips_stay_skips(tmp_path: Path) -> None:
    res = _run(tmp_path, None)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 passed, 4 skipped, 1 xfailed, 1 xpassed" in res.stdout, res.stdout
    assert "CI=true" not in res.stdout


@pytest.mark.parametrize("value", ["true", "1"])
def test_in_ci_every_test_that_does_not_run_fails_the_run(tmp_path: Path, value: str) -> None:
    res = _run(tmp_path, value)
    out = res.stdout
    assert res.returncode == 1, out + res.stderr
    assert "CI=true: skipped and xfailed tests fail this run" in out.split("collected", 1)[0]  # the header says it
    assert "3 failed, 1 passed, 1 skipped, 2 errors" in out, out
    for node, why in [
        ("FAILED test_parts.py::test_skips_itself", "Skipped: no PostgreSQL here"),
        ("ERROR test_parts.py::test_needs_a_fixture_that_skips", "Skipped: no Chromium here"),
        ("ERROR test_parts.py::test_marked_skipif", "no ../shared/data here"),
        ("FAILED test_parts.py::test_xfails", "xfail (xfailed): known bug"),
        ("FAILED test_parts.py::test_xpasses", "xfail (xpassed): fixed meanwhile"),
    ]:
        line = next((ln for ln in out.splitlines() if ln.startswith(node)), "")
        assert why in line, (node, out)
    # The module that skipped at collection is named at the end, with the import that failed.
    assert "modules skipped at collection fail the run" in out
    assert "test_encoder_gone.py: skipped at" in out and "paperfeed_encoder_that_no_longer_imports" in out


def test_ci_run_sets_ci() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "export CI=true" in script
