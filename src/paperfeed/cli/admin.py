"""Admin commands: ``paperfeed db upgrade``, ``db copy`` (in ``db_copy.py``), ``db enable-pgvector``,
``db rerender-comments`` and ``paperfeed stats``."""

from __future__ import annotations

import orjson
import typer
from rich.markup import escape
from rich.progress import MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from paperfeed.cli import db_copy
from paperfeed.cli.common import console, database, fail, out, settings
from paperfeed.community import comments
from paperfeed.community.core import Community
from paperfeed.store import pgvector
from paperfeed.store import stats as stats_queries

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
db_app.command("copy")(db_copy.copy_cmd)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the database schema to the latest migration."""
    s = settings()
    db = database(s)
    out.print(f"database at revision {db.current_revision()} ({s.db_url.split('@')[-1]})")


@db_app.command("enable-pgvector")
def db_enable_pgvector(
    maintenance_work_mem: str = typer.Option(
        "1GB",
        "--maintenance-work-mem",
        help="PostgreSQL memory for building the HNSW index (about 1 GB per million vectors keeps it in memory).",
    ),
) -> None:
    """Keep vectors in PostgreSQL (pgvector): copy every stored vector into it and build its HNSW
    index. Safe to interrupt and run again. Web processes switch to it when they restart."""
    s = settings()
    db = database(s)
    with Progress(
        TextColumn("[bold]{task.description}"), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("copying vectors into pgvector", total=None)
        try:
            report = pgvector.enable(
                db, maintenance_work_mem=maintenance_work_mem, progress=lambda n: bar.advance(task, n)
            )
        except pgvector.PgVectorUnavailable as exc:
            raise fail(str(exc)) from None
    built = f"HNSW index built in {report.index_seconds:,.1f} s" if report.indexed else "HNSW index already there"
    skipped = f", {report.skipped:,} of another width left out" if report.skipped else ""
    out.print(f"{report.filled:,} vectors copied{skipped}; {built}\n{escape(report.state.describe())}")


@db_app.command("rerender-comments")
def db_rerender_comments() -> None:
    """Render every stored comment's HTML again with the current renderer (run once after an upgrade
    that fixed the renderer, e.g. the forged-formula fix of issue 10)."""
    s = settings()
    report = comments.rerender_all(Community(settings=s, db=database(s)))
    out.print(
        f"{report.total} comments checked, {report.changed} re-rendered"
        + (f" ({report.as_text} too large for their formulas: kept as plain text)" if report.as_text else "")
    )


def stats(json_: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Counts of papers, daily entries, date ranges and index state."""
    db = database()
    data = stats_queries.collect(db)
    if json_:
        out.print_json(orjson.dumps(data, default=str).decode())
        return
    for key, value in data.items():
        if isinstance(value, list | tuple):  # a date range
            value = " → ".join(str(v) for v in value) if any(value) else "-"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        # Values are data, not Rich markup: "[2024-05-23, …]" would otherwise be eaten as a tag.
        out.print(f"[bold]{key}[/bold]: {escape(str(value))}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.command("stats")(stats)
