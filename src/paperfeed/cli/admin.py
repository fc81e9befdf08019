"""Admin commands: ``paperfeed db upgrade`` and ``paperfeed stats``."""

from __future__ import annotations

import orjson
import typer

from paperfeed.cli.common import database, out, settings
from paperfeed.store import stats as stats_queries

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the database schema to the latest migration."""
    s = settings()
    db = database(s)
    out.print(f"database at revision {db.current_revision()} ({s.db_url.split('@')[-1]})")


def stats(json_: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Counts of papers, daily entries, date ranges and index state."""
    db = database()
    data = stats_queries.collect(db)
    if json_:
        out.print_json(orjson.dumps(data, default=str).decode())
        return
    for key, value in data.items():
        out.print(f"[bold]{key}[/bold]: {value}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.command("stats")(stats)
