"""The ``paperfeed`` command line (Typer). Each concern registers its commands from its own module."""

from __future__ import annotations

import sys

import typer

from paperfeed.cli import admin, search
from paperfeed.cli import digest as digest_cli
from paperfeed.cli import index as index_cli
from paperfeed.cli import ingest as ingest_cli
from paperfeed.cli import mcp as mcp_cli
from paperfeed.cli import recs as recs_cli
from paperfeed.cli import status as status_cli
from paperfeed.cli import users as users_cli
from paperfeed.cli import web as web_cli
from paperfeed.cli.common import fault_exit

app = typer.Typer(
    name="paperfeed",
    help="Self-hostable research-paper discovery: daily feed, hybrid search, community, digests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
admin.register(app)
search.register(app)
ingest_cli.register(app)
web_cli.register(app)
index_cli.register(app)
digest_cli.register(app)
users_cli.register(app)
mcp_cli.register(app)
status_cli.register(app)
recs_cli.register(app)


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except Exception as err:  # a full disk or an unreachable database: a message and an exit code
        found = fault_exit(err)
        if found is None:
            raise
        sys.exit(found.exit_code)
