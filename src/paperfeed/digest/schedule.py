"""The digest scheduler that ``paperfeed serve`` runs in a background thread.

Wakes at the start of every minute and does what ``paperfeed digest send`` does: if this
process can take the ``digest-sender`` lease, plan the digests that became due (each
subscriber's time zone and send hour; daily ones on weekdays unless the subscriber wants
weekends), requeue anything a crashed sender left in flight, and send. With several web
workers every one of them runs a scheduler, and the lease makes exactly one of them send at a
time; deployments where cron owns sending start ``serve`` with ``--no-scheduler``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from paperfeed.config import Settings
from paperfeed.digest.compose import Composer, SearchTopics
from paperfeed.digest.send import SendOptions, SendReport, send_due
from paperfeed.store.db import Database, utcnow

log = logging.getLogger(__name__)


def tick(
    settings: Settings,
    db: Database,
    *,
    options: SendOptions | None = None,
    clock: Callable[[], datetime] = utcnow,
    **kwargs: Any,
) -> SendReport:
    """One scheduler pass (also what tests call directly)."""
    report = send_due(settings, db, options=options, clock=clock, **kwargs)
    if report.lease_busy:
        log.debug("digest: another process holds the sender lease")
    elif report.summary() != "nothing to do" or report.transport_error:
        log.info(
            "digest: %s%s", report.summary(), f" (mail: {report.transport_error})" if report.transport_error else ""
        )
    return report


def start_scheduler(
    settings: Settings,
    db: Database,
    *,
    interval: float = 60.0,
    options: SendOptions | None = None,
    **kwargs: Any,
) -> Callable[[], None]:
    """Start the background thread; returns ``stop()`` which ends it (waits for a pass in
    progress to finish its current message and release the lease)."""
    stopping = threading.Event()
    topics = SearchTopics(settings, db)  # kept across passes: the search indexes load once

    def loop() -> None:
        log.info("digest scheduler started (every %.0f s)", interval)
        # Sleep to the next interval boundary first: workers wake together, and a short-lived
        # app (a test client) never touches the database.
        while not stopping.wait(interval - (time.time() % interval) if interval >= 1 else interval):
            try:
                composer = Composer(settings, db, topic_search=topics)
                tick(settings, db, options=options, composer=composer, **kwargs)
            except Exception:  # keep the thread alive: the next minute may work (DB restart...)
                log.exception("digest scheduler pass failed")
        log.info("digest scheduler stopped")

    thread = threading.Thread(target=loop, name="paperfeed-digest-scheduler", daemon=True)
    thread.start()

    def stop(timeout: float = 30.0) -> None:
        stopping.set()
        thread.join(timeout)

    return stop
