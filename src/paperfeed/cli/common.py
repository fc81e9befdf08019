"""Helpers shared by the CLI modules: settings, database, consoles, exit codes, the error exit."""

from __future__ import annotations

import os

import typer
from rich.console import Console

from paperfeed.config import Settings
from paperfeed.store.db import Database, open_database

# Exit codes shared by every import-like command.
EXIT_OK = 0
EXIT_UNUSABLE = 2  # the input could not be used at all
EXIT_REJECTED = 3  # some records were rejected, the rest were kept
EXIT_INTERRUPTED = 130  # the shell convention for Ctrl-C

console = Console(stderr=True)
out = Console()


def settings() -> Settings:
    """The settings from the environment; a malformed ``PAPERFEED_*`` value is an error exit, not a traceback."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise fail(f"bad setting: {exc}") from None


def database(s: Settings | None = None) -> Database:
    return open_database(s or settings())


def fail(message: str, code: int = EXIT_UNUSABLE) -> typer.Exit:
    """Print ``error: message`` to stderr and return the exit to raise (``raise fail(...) from None``).

    The message is printed as text, never as Rich markup: it often quotes user input or data
    ("[Re] ...", a file name with brackets), which must show as written.
    """
    console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True, style="red")
    return typer.Exit(code)
