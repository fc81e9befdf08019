"""``paperfeed mcp``: the MCP server over stdio, for agents that launch it as a subprocess.

The same server and tools as ``/mcp`` on the web app (``web/mcp_server.py``). Reads work without
a token; ``upvote`` and ``submit_paper`` act as the owner of the API token given with ``--token``
or in ``PAPERFEED_TOKEN``. Stdout carries only the protocol; messages go to stderr.
"""

from __future__ import annotations

import os

import typer

from paperfeed.config import Settings


def mcp(
    token: str | None = typer.Option(
        None, help="API token for the write tools (default: $PAPERFEED_TOKEN).", show_default=False
    ),
) -> None:
    """Serve the MCP tools (search_papers, daily_papers, get_paper, similar_papers, upvote, submit_paper) on stdio."""
    from paperfeed.web.app import create_app
    from paperfeed.web.mcp_server import build_server

    # An agent's subprocess serves tools only: the pipeline (harvest, embedding, digests) is the servers' job.
    app = create_app(Settings.from_env(pipeline=False))
    state = app.state.pf
    for hook in list(state.startup_hooks):
        hook(state)
    server = build_server(state, app.state.community, stdio_token=token or os.environ.get("PAPERFEED_TOKEN") or None)
    server.run("stdio")


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
