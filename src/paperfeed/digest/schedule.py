"""One digest scheduler pass: what the pipeline's leader runs every minute (``pipeline/runner.py``).

:func:`tick` does what ``paperfeed digest send`` does: if this process can take the
``digest-sender`` lease, plan the digests that became due (each subscriber's time zone and send
hour; daily ones on weekdays unless the subscriber wants weekends), requeue anything a crashed
sender left in flight, and send. Only the pipeline's leader calls it, and the sender lease also
keeps a ``paperfeed digest send`` from cron from sending at the same time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from paperfeed.config import Settings
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
