"""Batching parsed records into one-transaction writes; shared by the file importers and the harvester.

A batch commits as a whole, so killing an import loses at most the uncommitted batch, and re-running
the import skips what was committed (unchanged rows are not rewritten). Should the database refuse a
batch (a constraint or a value it cannot store), each record of it is retried alone, so only the bad
one is rejected and the others are kept. Every import ends in :func:`finish`, which also brings
the author/category lookup tables (``store.lookups``) up to date, so an importer called from the
CLI, the demo or as a library leaves them current.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Generic, NamedTuple, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, IntegrityError

from paperfeed.ingest.files import TruncatedInput
from paperfeed.ingest.report import ImportReport
from paperfeed.store import lookups
from paperfeed.store.db import Database
from paperfeed.store.papers import UpsertCounts

T = TypeVar("T")


class Rejected(NamedTuple):
    """A record the parser could not use: where it was (``file:line`` or OAI id) and why."""

    where: str
    reason: str


class Located(NamedTuple, Generic[T]):
    where: str
    item: T


Upsert = Callable[[Connection, Sequence[T]], UpsertCounts]


def write_batch(
    db: Database,
    batch: Sequence[Located[T]],
    upsert: Upsert[T],
    report: ImportReport,
    after: Callable[[Connection], None] | None = None,
) -> None:
    """Write one batch in one transaction (plus ``after``, e.g. saving a resume point, in the same one)."""
    try:
        with db.write() as conn:
            report.add(upsert(conn, [b.item for b in batch]))
            if after:
                after(conn)
        return
    except (IntegrityError, DataError):
        if len(batch) == 1 and not after:
            raise
    # Isolate the record the database refuses; keep every other one.
    for located in batch:
        try:
            with db.write() as conn:
                report.add(upsert(conn, [located.item]))
        except (IntegrityError, DataError) as exc:
            report.reject(located.where, f"the database refused it: {str(exc.orig).strip().splitlines()[0]}")
    if after:
        with db.write() as conn:
            after(conn)


def run(
    db: Database,
    stream: Iterable[Located[T] | Rejected],
    upsert: Upsert[T],
    report: ImportReport,
    *,
    batch_size: int = 2000,
    on_batch: Callable[[], None] | None = None,
) -> ImportReport:
    """Consume ``stream`` (records and rejections), writing records in batches of ``batch_size``.

    A :class:`TruncatedInput` from the stream commits what came before it and is recorded in the
    report; any other exception propagates (the uncommitted batch is dropped; a re-run redoes it).
    """
    batch: list[Located[T]] = []
    try:
        for x in stream:
            report.read += 1
            if isinstance(x, Rejected):
                report.reject(x.where, x.reason)
                continue
            batch.append(x)
            if len(batch) >= batch_size:
                write_batch(db, batch, upsert, report)
                batch = []
                if on_batch:
                    on_batch()
    except TruncatedInput as exc:
        report.truncated = str(exc)
    if batch:
        write_batch(db, batch, upsert, report)
        if on_batch:
            on_batch()
    return finish(db, report)


def finish(db: Database, report: ImportReport) -> ImportReport:
    """End an import: stamp the report and, when papers changed, refresh the lookup tables that
    author pages and category feeds read. The import's own batches are committed by now, so no
    safety margin is needed for them (margin 0); the refresh is not counted in the import's time."""
    report.finish()
    if report.changed:
        lookups.refresh(db, margin=timedelta(0))
    return report
