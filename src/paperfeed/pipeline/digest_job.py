"""The pipeline's digest step: the digest scheduler pass (``digest/schedule.tick``) once a minute on
the leader, and a record of the last pass for ``paperfeed status``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from paperfeed.config import Settings
from paperfeed.digest.compose import Composer, SearchTopics
from paperfeed.digest.schedule import tick
from paperfeed.store import pipeline_state
from paperfeed.store.db import Database, utcnow

JOB = "digest"
EVERY = 60.0  # seconds; passes start on the minute, when subscribers' send times fall


class DigestJob:
    def __init__(
        self, settings: Settings, db: Database, *, holder: str, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.settings, self.db, self.holder, self.clock = settings, db, holder, clock
        self._topics: SearchTopics | None = None  # kept across passes: the search indexes load once

    def run(self) -> dict[str, object]:
        if self._topics is None:
            self._topics = SearchTopics(self.settings, self.db)
        started = self.clock()
        record: dict[str, object] = {"holder": self.holder, "started_at": started.isoformat()}
        try:
            composer = Composer(self.settings, self.db, topic_search=self._topics)
            report = tick(self.settings, self.db, clock=self.clock, composer=composer)
        except Exception as exc:
            record.update(result="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        else:
            record.update(
                result="sender lease busy" if report.lease_busy else report.summary(),
                error=report.transport_error,
                sent=report.sent,
            )
        finally:
            record["finished_at"] = self.clock().isoformat()
            with self.db.write() as conn:
                pipeline_state.save_job_record(conn, JOB, record)
        return record
