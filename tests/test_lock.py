"""requirements.lock matches pyproject.toml (scripts/check_lock.py, which `make test` also runs):
every declared dependency is pinned, inside its declared range; a drifted lock is reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts/check_lock.py"

PYPROJECT = """
[project]
name = "x"
dependencies = ["numpy>=2.4,<3", "psycopg[binary]>=3.3,<4"]
[project.optional-dependencies]
test = ["pytest>=9.2,<10"]
bench = ["torch>=2.13,<3"]
"""


def run(tmp_path: Path, pyproject: str, lock: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pyproject.toml").write_text(pyproject)
    (tmp_path / "requirements.lock").write_text(lock)
    args = ["--pyproject", str(tmp_path / "pyproject.toml"), "--lock", str(tmp_path / "requirements.lock")]
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)


def test_repository_lock_matches_pyproject() -> None:
    res = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


def test_matching_lock_passes(tmp_path: Path) -> None:
    res = run(tmp_path, PYPROJECT, "numpy==2.4.6\n    # via x\npsycopg==3.3.9\npytest==9.2.0\n")
    assert res.returncode == 0, res.stderr


def test_version_outside_range_fails(tmp_path: Path) -> None:
    res = run(tmp_path, PYPROJECT, "numpy==3.0.0\npsycopg==3.3.9\npytest==9.2.0\n")
    assert res.returncode == 1
    assert "numpy==3.0.0 in requirements.lock is outside pyproject.toml's numpy<3,>=2.4" in res.stderr


def test_missing_dependency_fails(tmp_path: Path) -> None:
    res = run(tmp_path, PYPROJECT, "numpy==2.4.6\npsycopg==3.3.9\n")
    assert res.returncode == 1
    assert "pytest is declared in pyproject.toml but not pinned in requirements.lock" in res.stderr


def test_unpinned_line_fails(tmp_path: Path) -> None:
    res = run(tmp_path, PYPROJECT, "numpy>=2.4\npsycopg==3.3.9\npytest==9.2.0\n")
    assert res.returncode == 1
    assert "not an exact pin" in res.stderr
