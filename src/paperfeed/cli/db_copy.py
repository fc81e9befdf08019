"""``paperfeed db copy --from URL --to URL``: move an instance between SQLite and PostgreSQL.

The work and its guarantees are in ``store/copy.py``; this module shows it: one progress bar per
table, then a table of row counts and checksums. Exit codes: 0 when every table matches, 1 when
one does not, 2 when the copy is refused (a non-empty target, an old source schema), 130 when
interrupted (run the same command again to resume), 74/75 when a database fails under it.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from paperfeed.cli.common import EXIT_INTERRUPTED, EXIT_UNUSABLE, console, fail, fault_exit, out
from paperfeed.store.copy import Copier, CopyRefused, TableCheck, database_url, display_url
from paperfeed.store.db import Database

EXIT_MISMATCH = 1


def _open(url: str, *, must_exist: bool) -> Database:
    if must_exist and url.startswith("sqlite:///"):
        path = url.split("///", 1)[1]
        if path != ":memory:" and not Path(path).is_file():
            raise fail(f"no database at {path}")
    return Database(url)


def _copy(copier: Copier, quiet: bool) -> None:
    plan = copier.prepare()
    if copier.resumed:
        done = sum(p.copied for p in plan)
        console.print(f"resuming an interrupted copy: {done:,} rows were already copied")
    for name in copier.skipped:
        console.print(f"note: the source's table {name} is not paperfeed's (this version's): not copied", markup=False)
    progress = Progress(
        TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=quiet,
    )  # fmt: skip
    with progress:
        tasks = {p.name: progress.add_task(p.name, total=p.total, completed=min(p.copied, p.total)) for p in plan}
        for p in plan:
            task = tasks[p.name]

            def advance(n: int, task: TaskID = task) -> None:
                progress.advance(task, n)

            copier.copy_table(p.name, advance)
            progress.update(task, completed=p.total)
    copier.fix_sequences()


def _report(checks: list[TableCheck]) -> Table:
    table = Table(title="source vs target")
    table.add_column("table", no_wrap=True)
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("checksum", no_wrap=True)
    table.add_column("", no_wrap=True)
    for c in checks:
        rows = f"{c.source_rows:,}" if c.source_rows == c.target_rows else f"{c.source_rows:,} -> {c.target_rows:,}"
        digest = c.source_sum[:16] if c.source_sum == c.target_sum else f"{c.source_sum[:8]} != {c.target_sum[:8]}"
        table.add_row(escape(c.name), rows, digest, "[green]ok[/green]" if c.ok else "[red]DIFFERS[/red]")
    return table


def copy_cmd(
    source: str = typer.Option(..., "--from", help="The database to copy: a URL, or a SQLite file's path."),
    target: str = typer.Option(..., "--to", help="An empty database (or an interrupted copy of the same source)."),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, max=50_000, help="Rows per transaction."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Copy a whole paperfeed database to another one (SQLite <-> PostgreSQL), resumably, and
    compare row counts and checksums of every table at the end. Stop the source's writers first."""
    src_url, dst_url = database_url(source), database_url(target)
    src = _open(src_url, must_exist=True)
    dst = _open(dst_url, must_exist=False)
    copier = Copier(src, dst, batch_size=batch_size)
    console.print(f"copying {display_url(src_url)} -> {display_url(dst_url)}", markup=False, highlight=False)
    try:
        _copy(copier, quiet)
        console.print("comparing row counts and checksums ...")
        checks = copier.verify()
    except CopyRefused as exc:
        raise fail(f"refused: {exc}") from None
    except KeyboardInterrupt:
        raise fail("interrupted: every committed batch is kept; run the same command again to resume",
                   EXIT_INTERRUPTED) from None  # fmt: skip
    except SQLAlchemyError as exc:
        found = fault_exit(exc, "every committed batch is kept; run the same command again to resume")
        if found is not None:
            raise found from None
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise fail(f"database error: {detail}; every committed batch is kept", EXIT_UNUSABLE) from None
    finally:
        src.dispose()
    out.print(_report(checks))
    bad = [c.name for c in checks if not c.ok]
    if bad:
        dst.dispose()
        raise fail(
            f"the target differs from the source in {', '.join(bad)}: was the source written to during the copy? "
            "Stop its writers, empty the target and copy again",
            EXIT_MISMATCH,
        )
    copier.finish()
    dst.dispose()
    rows = sum(c.source_rows for c in checks)
    out.print(f"copied {rows:,} rows in {len(checks)} tables; every count and checksum matches", highlight=False)
