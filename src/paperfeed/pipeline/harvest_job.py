"""The pipeline's arXiv harvest: after every announcement, at start when behind, and every few hours.

The leader harvests each set of ``settings.harvest_sets`` with the OAI-PMH harvester
(``ingest/oai.py``: its cursor and resumption tokens, one transaction per page), so a harvest cut
short - the leader killed, arXiv gone mid-way - is resumed by the next run, on whichever process
leads by then. A harvest is due when

- it never succeeded, or the set list changed;
- its last success predates the latest harvest slot (30 minutes after an arXiv announcement,
  ``announce.py``): this is also the catch-up after the site was down;
- the next attempt it planned has come: the next slot or ``CHECK_EVERY`` later, whichever is
  first, after a success; a back-off after a failure.

A failed attempt (arXiv unreachable, an offline laptop) logs exactly one warning, saying when the
next attempt is, and backs off exponentially from ``BACKOFF_FIRST`` to ``BACKOFF_CAP``; the site
keeps serving. What happened is saved as the ``pipeline:harvest`` job record for ``paperfeed status``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy import Connection

from paperfeed.config import Settings
from paperfeed.ingest.oai import OAIClient, harvest, state_source
from paperfeed.pipeline.announce import last_harvest_slot, next_harvest_slot
from paperfeed.store import pipeline_state
from paperfeed.store.db import Database, utcnow
from paperfeed.store.papers import get_ingest_state

log = logging.getLogger(__name__)

JOB = "harvest"
CHECK_EVERY = timedelta(hours=6)  # the slow periodic check between announcements
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=1)
RETRIES = 2  # per request, inside one attempt (a page that failed once is likely to work again)
RETRY_BACKOFF = 2.0  # seconds before the first retry of a request (then doubled)


class HarvestRecord(TypedDict, total=False):
    """The ``pipeline:harvest`` job record (times are ISO strings, naive UTC)."""

    sets: list[str]
    result: str  # running | ok | failed | interrupted
    holder: str  # the process that ran (or runs) it
    started_at: str
    finished_at: str | None
    added: int
    updated: int
    error: str | None
    failures: int  # consecutive failed attempts
    next_attempt: str | None
    last_success: str | None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def backoff(failures: int) -> timedelta:
    """The wait after ``failures`` consecutive failed attempts (1 min, 2, 4 ... capped at 1 h)."""
    return min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** max(0, failures - 1))


def load(db: Database) -> HarvestRecord:
    with db.read() as conn:
        return HarvestRecord(**pipeline_state.job_record(conn, JOB))  # type: ignore[typeddict-item]  # stored by save() below


def save(db: Database, record: HarvestRecord) -> None:
    with db.write() as conn:
        pipeline_state.save_job_record(conn, JOB, dict(record))


def is_due(record: HarvestRecord, sets: list[str], now: datetime) -> bool:
    if not sets:
        return False
    if record.get("result") == "running":
        return True  # its process died or lost the lease mid-way: resume it
    if record.get("sets") != sets:
        return True
    next_attempt = _time(record.get("next_attempt"))
    waited = next_attempt is None or now >= next_attempt
    if record.get("result") == "failed":
        return waited  # backing off
    last_success = _time(record.get("last_success"))
    return last_success is None or last_success < last_harvest_slot(now) or waited


class HarvestJob:
    """One leader's harvests; ``run_if_due()`` is called every few seconds while it leads."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        holder: str,
        sleep: Callable[[float], None],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings, self.db, self.holder, self.sleep, self.clock = settings, db, holder, sleep, clock

    def run_if_due(self, keep_going: Callable[[], bool], guard: Callable[[Connection], bool]) -> HarvestRecord | None:
        sets = list(self.settings.harvest_sets)
        if not is_due(load(self.db), sets, self.clock()):
            return None
        return self.run(keep_going, guard)

    def run(self, keep_going: Callable[[], bool], guard: Callable[[Connection], bool]) -> HarvestRecord:
        """One attempt over every set; saves and returns its record."""
        previous = load(self.db)
        sets = list(self.settings.harvest_sets)
        started = self.clock()
        record = HarvestRecord(
            sets=sets,
            result="running",
            holder=self.holder,
            started_at=started.isoformat(),
            finished_at=None,
            added=0,
            updated=0,
            error=None,
            failures=int(previous.get("failures") or 0),
            next_attempt=None,
            last_success=previous.get("last_success"),
        )
        save(self.db, record)
        errors: list[str] = []
        interrupted = False
        for set_spec in sets:
            with self.db.read() as conn:
                never = get_ingest_state(conn, state_source(set_spec)) is None
            start = (started.date() - timedelta(days=self.settings.harvest_start_days)).isoformat() if never else None
            client = OAIClient(
                self.settings.oai_url,
                delay=self.settings.harvest_delay,
                max_retries=RETRIES,
                backoff=RETRY_BACKOFF,
                sleep=self.sleep,
                on_wait=lambda m: log.debug("harvest: %s", m),
            )
            with client:
                report = harvest(
                    self.db,
                    self.settings,
                    set_spec,
                    from_date=start,
                    progress=False,
                    on_note=lambda m: log.info("harvest: %s", m),
                    client=client,
                    keep_going=keep_going,
                    guard=guard,
                )
            record["added"] = record.get("added", 0) + report.inserted
            record["updated"] = record.get("updated", 0) + report.updated
            if report.error and report.error.startswith("interrupted"):
                interrupted = True
                break
            if report.error:
                errors.append(f"set {set_spec}: {report.error}")
        finished = self.clock()
        record["finished_at"] = finished.isoformat()
        if interrupted:
            record["result"] = "interrupted"
            log.info("harvest interrupted (this process stopped leading or is stopping); the next leader resumes it")
        elif errors:
            failures = record.get("failures", 0) + 1
            wait = backoff(failures)
            record["result"], record["error"], record["failures"] = "failed", "; ".join(errors), failures
            record["next_attempt"] = (finished + wait).isoformat()
            log.warning(
                "arXiv harvest failed (attempt %d): %s - the site keeps serving what it has; next attempt in %s",
                failures,
                record["error"],
                _words(wait),
            )
        else:
            record["result"], record["error"], record["failures"] = "ok", None, 0
            record["last_success"] = finished.isoformat()
            record["next_attempt"] = min(next_harvest_slot(finished), finished + CHECK_EVERY).isoformat()
            log.info(
                "arXiv harvest of %s: %d new, %d updated papers", ", ".join(sets), record["added"], record["updated"]
            )
        save(self.db, record)
        return record


def _words(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"
