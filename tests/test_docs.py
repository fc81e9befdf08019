"""The README documents what the code does: every setting read from the environment is in its
configuration table (and nothing else is), and the commands it lists exist."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from paperfeed.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    code = (ROOT / "src/paperfeed/config.py").read_text(encoding="utf-8")
    read = set(re.findall(r'"(PAPERFEED_[A-Z_]+)"', code))
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(PAPERFEED_[A-Z_]+)`", table, flags=re.M))
    assert read, "config.py reads no PAPERFEED_* variables?"
    assert read == documented, f"missing from README: {read - documented}; not read: {documented - read}"


def test_readme_commands_exist() -> None:
    block = README.split("## Command line", 1)[1].split("```", 2)[1]
    commands = {tuple(line.split()[1:3]) for line in block.splitlines() if line.startswith("paperfeed ")}
    assert len(commands) >= 8
    runner = CliRunner()
    for words in commands:
        args = [w for w in words if re.fullmatch(r"[a-z-]+", w)]
        res = runner.invoke(app, [*args, "--help"])
        assert res.exit_code == 0, (words, res.output)


def test_security_doc_names_real_tests() -> None:
    """docs/security.md maps each threat to the tests that prove its defence: every
    ``tests/...py::test_name`` it names must exist, so the page cannot rot."""
    doc = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", doc))
    assert len(named) >= 60, sorted(named)
    missing = []
    for path, name in sorted(named):
        file = ROOT / path
        text = file.read_text(encoding="utf-8") if file.exists() else ""
        if name not in re.findall(r"^def (test_\w+)\(", text, flags=re.M):
            missing.append(f"{path}::{name}")
    assert missing == [], f"docs/security.md names tests that do not exist: {missing}"
    assert "](docs/security.md)" in README, "the README links the security notes"
