"""Helpers shared by the CLI modules: settings, database, consoles, exit codes, the error exit."""

from __future__ import annotations

import os

import typer
from rich.console import Console

from paperfeed.config import Settings
from paperfeed.store import faults
from paperfeed.store.db import Database, open_database

# Exit codes shared by every import-like command.
EXIT_OK = 0
EXIT_UNUSABLE = 2  # the input could not be used at all
EXIT_REJECTED = 3  # some records were rejected, the rest were kept
EXIT_INTERRUPTED = 130  # the shell convention for Ctrl-C
# Any command, when the database fails under it (sysexits.h codes, so scripts can tell them apart):
EXIT_STORAGE_FULL = 74  # EX_IOERR: the disk holding the database is full; free space, run again
EXIT_DB_UNAVAILABLE = 75  # EX_TEMPFAIL: the database is unreachable or busy; try again later

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


def fault_exit(err: BaseException, kept: str = "nothing of the failed transaction was written") -> typer.Exit | None:
    """The error exit for a database fault (disk full, database unreachable), or None for any
    other error. ``kept`` says what survives, e.g. an import's committed batches."""
    fault = faults.classify(err)
    if fault is None:
        return None
    if fault is faults.Fault.FULL:
        return fail(
            f"the disk holding the database is full ({faults.describe(err)}); {kept}. "
            "Free some space and run the same command again.",
            EXIT_STORAGE_FULL,
        )
    return fail(
        f"the database is not reachable or busy ({faults.describe(err)}); {kept}. "
        "Run the command again once it is back.",
        EXIT_DB_UNAVAILABLE,
    )
