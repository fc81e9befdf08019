"""Ingest commands: ``paperfeed import arxiv FILE``, ``paperfeed import hf-daily PATH`` and
``paperfeed harvest arxiv --set cs``.

Each prints rejected records (file:line or OAI id, and why) on stderr as it goes, a progress bar
unless ``--quiet``, and a one-line summary on stdout. Exit 0: all accepted; 3: some records were
rejected or a .gz was truncated (everything before it is kept); 2: unusable input (missing file,
wrong format), an OAI-PMH error or an unreachable server (committed pages are kept).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import typer
from sqlalchemy.exc import SQLAlchemyError

from paperfeed.cli.common import console, database, fail, fault_exit, out, settings
from paperfeed.config import Settings
from paperfeed.ingest.arxiv_file import import_arxiv_file
from paperfeed.ingest.files import UnusableInput
from paperfeed.ingest.hf_daily import import_hf_daily
from paperfeed.ingest.oai import harvest
from paperfeed.ingest.report import ImportReport
from paperfeed.store.db import Database

import_app = typer.Typer(help="Import papers from metadata files.", no_args_is_help=True)
harvest_app = typer.Typer(help="Harvest papers from arXiv over OAI-PMH.", no_args_is_help=True)

_BATCH = typer.Option(2000, "--batch-size", min=1, help="Records per transaction.")
_QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")


def _reject(msg: str) -> None:
    console.print(msg, markup=False, highlight=False, soft_wrap=True)


def _note(msg: str) -> None:
    console.print(f"note: {msg}", markup=False, highlight=False, soft_wrap=True)


def _run(work: Callable[[Database], ImportReport], s: Settings | None = None) -> None:
    """Run an import, turning every expected failure into a message and an exit code (no traceback)."""
    db: Database | None = None
    try:
        db = database(s or settings())
        report = work(db)
    except UnusableInput as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; every committed batch is kept, run the same command again to finish", 130) from None
    except SQLAlchemyError as exc:
        found = fault_exit(exc, "every committed batch is kept")
        if found is not None:
            raise found from None
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise fail(f"database error: {detail}; every committed batch is kept") from None
    finally:
        if db is not None:
            db.dispose()
    if report.truncated:
        console.print(f"warning: {report.truncated}", markup=False, highlight=False, soft_wrap=True, style="yellow")
    if report.error:
        console.print(f"error: {report.error}", markup=False, highlight=False, soft_wrap=True, style="red")
    out.print(report.summary(), markup=False, highlight=False, soft_wrap=True)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


@import_app.command("arxiv")
def import_arxiv(
    file: str = typer.Argument(..., help="JSON lines (plain or .gz; '-' for stdin): Kaggle snapshot or listings."),
    batch_size: int = _BATCH,
    quiet: bool = _QUIET,
) -> None:
    """Import arXiv metadata (Kaggle arxiv-metadata-oai-snapshot or daily-listing JSON lines)."""
    _run(
        lambda db: import_arxiv_file(
            db, file, batch_size=batch_size, progress=not quiet, on_reject=_reject, console=console
        )
    )


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None


@import_app.command("hf-daily")
def import_hf(
    path: str = typer.Argument(..., help="A day file (JSON array), JSON lines of {date, papers}, or a directory."),
    day: str | None = typer.Option(None, "--date", help="The feed day of a one-day JSON array file (YYYY-MM-DD)."),
    batch_size: int = _BATCH,
    quiet: bool = _QUIET,
) -> None:
    """Import Hugging Face Daily Papers dumps: papers, daily entries, upvotes, code links."""
    feed_day = _day(day, "--date")
    _run(
        lambda db: import_hf_daily(
            db, path, day=feed_day, batch_size=batch_size, progress=not quiet, on_reject=_reject, console=console
        )
    )


@harvest_app.command("arxiv")
def harvest_arxiv(
    set_spec: str = typer.Option("cs", "--set", help="OAI-PMH set, e.g. cs, math, physics:hep-th."),
    from_date: str | None = typer.Option(None, "--from", help="First datestamp (default: where the last run ended)."),
    until: str | None = typer.Option(None, "--until", help="Last datestamp (YYYY-MM-DD)."),
    url: str | None = typer.Option(None, "--url", help="OAI-PMH endpoint (default: PAPERFEED_OAI_URL)."),
    quiet: bool = _QUIET,
) -> None:
    """Harvest arXiv metadata incrementally over OAI-PMH (resumable; remembers where it stopped)."""
    _day(from_date, "--from")
    _day(until, "--until")
    s = settings()
    _run(
        lambda db: harvest(
            db,
            s,
            set_spec,
            from_date=from_date,
            until=until,
            url=url,
            progress=not quiet,
            on_reject=_reject,
            on_note=_note,
            console=console,
        ),
        s,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
    app.add_typer(harvest_app, name="harvest")
