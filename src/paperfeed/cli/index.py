"""``paperfeed index``: update the lexical index, embed new/changed papers, build/update HNSW.

Safe to interrupt (Ctrl-C or kill): every committed batch is kept and a re-run resumes.
"""

from __future__ import annotations

import logging

import orjson
import typer
from rich.markup import escape

from paperfeed.cli.common import EXIT_INTERRUPTED, EXIT_UNUSABLE, console, database, out, settings


def index(
    rebuild: bool = typer.Option(False, "--rebuild", help="Re-embed every paper and rebuild the indexes from scratch."),
    batch_size: int = typer.Option(
        256, "--batch-size", min=1, max=8192, help="Papers per committed batch (a kill loses at most one batch)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars and no summary (errors still print)."),
    json_: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Bring the search indexes up to date with the papers in the database."""
    from paperfeed.search.indexer import IndexerBusy, describe, run_index

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    s = settings()
    db = database(s)
    try:
        report = run_index(s, db, rebuild=rebuild, batch_size=batch_size, progress=not quiet, console=console)
    except IndexerBusy as exc:
        console.print(f"[red]{escape(str(exc))}[/red]; try again when it has finished")
        raise typer.Exit(EXIT_UNUSABLE) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: finished batches are saved; run `paperfeed index` to resume")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (OSError, ValueError, RuntimeError) as exc:  # e.g. encoder files missing, disk full
        console.print(f"[red]indexing failed:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_UNUSABLE) from None
    if json_:
        out.print_json(orjson.dumps(describe(report)).decode())
    elif not quiet:
        lexical = "skipped" if report.lexical is None else f"{report.lexical:,} updated"
        resumed = " (resumed an interrupted --rebuild)" if report.resumed_rebuild else ""
        rate = f", {report.papers_per_second:,.1f} papers/s" if report.embedded else ""
        out.print(
            f"lexical index: {lexical}\n"
            f"embedded {report.embedded:,} papers{resumed}, skipped {report.unchanged:,} unchanged{rate}\n"
            f"HNSW: {report.ann}\n"
            f"done in {report.seconds:,.1f} s"
        )


def register(app: typer.Typer) -> None:
    app.command("index")(index)
