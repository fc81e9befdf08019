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
