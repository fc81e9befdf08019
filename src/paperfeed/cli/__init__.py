"""The ``paperfeed`` command line (Typer). Each concern registers its commands from its own module."""

from __future__ import annotations

import typer

from paperfeed.cli import admin

app = typer.Typer(
    name="paperfeed",
    help="Self-hostable research-paper discovery: daily feed, hybrid search, community, digests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
admin.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()
