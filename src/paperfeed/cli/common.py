"""Helpers shared by the CLI modules: settings, database, consoles, exit codes."""

from __future__ import annotations

import os

from rich.console import Console

from paperfeed.config import Settings
from paperfeed.store.db import Database, open_database

# Exit codes shared by every import-like command.
EXIT_OK = 0
EXIT_UNUSABLE = 2  # the input could not be used at all
EXIT_REJECTED = 3  # some records were rejected, the rest were kept

console = Console(stderr=True)
out = Console()


def settings() -> Settings:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return Settings.from_env()


def database(s: Settings | None = None) -> Database:
    return open_database(s or settings())
