"""The pipeline every ``paperfeed serve`` process runs: one leader among all processes and machines
does the jobs; the others stand by and take over within one lease TTL when it dies.

Threads (all daemons, stopped by ``stop()``):

- ``paperfeed-pipeline``: takes or renews the ``pipeline-leader`` lease (``store/leases.py``)
  every third of its TTL and records this process's heartbeat (``pipeline_nodes``) with the state
  of its search indexes; when it becomes leader it wakes the job threads at once.
- ``paperfeed-harvest``: the scheduled arXiv harvest (``harvest_job.py``), checked every
  ``Intervals.harvest`` seconds.
- ``paperfeed-embed``: vectors for new and changed papers (``embed_job.py``), every
  ``Intervals.embed`` seconds.
- ``paperfeed-digest``: the digest scheduler pass (``digest_job.py``) on every minute.

A job runs only while this process leads: the lease is ours and our last successful renewal is
less than a TTL old by our own monotonic clock (a leader cut off from the database stops before
anyone else can take over). The harvest also checks the lease inside each page's transaction, so
a leader that stalled past its TTL cannot write over its successor's progress. A failing pass is
logged and retried on the next round; nothing here can take the web site down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError

from paperfeed import __version__
from paperfeed.config import Settings
from paperfeed.pipeline.digest_job import EVERY as DIGEST_EVERY
from paperfeed.pipeline.digest_job import DigestJob
from paperfeed.pipeline.embed_job import EmbedJob
from paperfeed.pipeline.harvest_job import HarvestJob
from paperfeed.pipeline.lag import Watermarks, index_lags
from paperfeed.search.indexer import EncoderLike
from paperfeed.search.vectors import default_model
from paperfeed.store import leases, pipeline_state
from paperfeed.store.db import Database, utcnow
from paperfeed.store.leases import Lease

log = logging.getLogger(__name__)


def _first_line(exc: BaseException) -> str:
    """A database error in one line (drivers put the statement and a link on the lines after)."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


LEADER = "pipeline-leader"
NODE_FORGET = timedelta(days=1)  # heartbeat rows older than this are deleted


@dataclass(frozen=True)
class Intervals:
    """Seconds between passes (tests shorten them)."""

    harvest: float = 15.0
    embed: float = 2.0
    digest: float = DIGEST_EVERY


IndexState = Callable[[], Watermarks]  # this process's search indexes: name -> watermark


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        index_state: IndexState | None = None,
        encoder: Callable[[], EncoderLike] | None = None,
        intervals: Intervals = Intervals(),
    ) -> None:
        self.settings, self.db, self.intervals = settings, db, intervals
        self.index_state = index_state
        self.ttl = timedelta(seconds=settings.leader_ttl)
        self.lease = Lease(db, LEADER, ttl=self.ttl)
        self.stopping = threading.Event()
        self.started_at = utcnow()
        self._valid_until = 0.0  # monotonic: past this, we do not act as leader
        self._db_down = False
        self._wakes: list[threading.Event] = []
        self._threads: list[threading.Thread] = []
        self.harvest = HarvestJob(settings, db, holder=self.lease.holder, sleep=self._sleep)
        if encoder is None:
            self.embed = EmbedJob(settings, db, self._default_encoder, lambda: default_model(db))
        else:
            self.embed = EmbedJob(settings, db, encoder, lambda: encoder().model_name)
        self.digest = DigestJob(settings, db, holder=self.lease.holder)

    def _default_encoder(self) -> EncoderLike:
        from paperfeed.search.encoder import get_encoder  # the ONNX runtime loads only on a leader with work

        return get_encoder(self.settings)

    def _sleep(self, seconds: float) -> None:
        """The harvest's politeness and retry waits: cut short by ``stop()``."""
        self.stopping.wait(seconds)

    # -- leadership ---------------------------------------------------------------------------
    @property
    def holder(self) -> str:
        return self.lease.holder

    def leading(self) -> bool:
        return self.lease.held and time.monotonic() < self._valid_until and not self.stopping.is_set()

    def _guard(self, conn: Any) -> bool:
        return not self.stopping.is_set() and self.lease.holds(conn)

    def beat(self) -> None:
        """One round of the coordinator: take or renew the lease, record the heartbeat."""
        was = self.leading()
        began = time.monotonic()
        try:
            ok = self.lease.renew() if self.lease.held else self.lease.acquire()
        except DBAPIError as exc:  # the database is down or restarting: say so once, not every beat
            if not self._db_down:
                log.warning("pipeline: the database cannot be reached (%s); standing by", _first_line(exc))
            self._db_down = True
            ok = False
        else:
            if self._db_down:
                log.info("pipeline: the database is back")
            self._db_down = False
        if ok:
            self._valid_until = began + self.ttl.total_seconds()
            if not was:
                log.info("pipeline: this process (%s) is the leader now", self.holder)
                for wake in self._wakes:
                    wake.set()
        elif was:
            log.warning("pipeline: this process (%s) is no longer the leader", self.holder)
        try:
            self._heartbeat()
        except Exception:
            log.debug("pipeline: heartbeat not recorded", exc_info=True)

    def _heartbeat(self) -> None:
        info: dict[str, Any] = {"version": __version__, "leader": self.leading(), "indexes": []}
        if self.index_state is not None:
            try:
                watermarks = self.index_state()
                with self.db.read() as conn:
                    info["indexes"] = index_lags(conn, watermarks)
            except Exception as exc:  # a broken index must not stop the heartbeat
                info["indexes_error"] = str(exc)
        with self.db.write() as conn:
            now = leases.database_now(conn)
            pipeline_state.heartbeat(conn, self.holder, self.started_at, now, info)
            if self.leading():
                pipeline_state.prune_nodes(conn, now - NODE_FORGET)

    # -- threads ------------------------------------------------------------------------------
    def _loop(self, name: str, every: Callable[[], float], work: Callable[[], object], *, lead: bool = True) -> None:
        wake = threading.Event()
        self._wakes.append(wake)

        def run() -> None:
            while not self.stopping.is_set():
                if not lead or self.leading():
                    try:
                        work()
                    except DBAPIError as exc:  # the next round may work (database restarting, ...)
                        log.warning("pipeline: %s pass failed: %s", name, _first_line(exc))
                    except Exception:
                        log.exception("pipeline: %s pass failed", name)
                wake.wait(every())
                wake.clear()

        thread = threading.Thread(target=run, name=f"paperfeed-{name}", daemon=True)
        self._threads.append(thread)

    def start(self) -> Pipeline:
        beat_every = max(0.5, self.ttl.total_seconds() / 3)
        self._loop("pipeline", lambda: beat_every, self.beat, lead=False)
        if self.settings.harvest_sets:
            harvest = lambda: self.harvest.run_if_due(self.leading, self._guard)  # noqa: E731 - one line
            self._loop("harvest", lambda: self.intervals.harvest, harvest)
        self._loop("embed", lambda: self.intervals.embed, lambda: self.embed.run_if_changed(self.leading))
        every = self.intervals.digest
        self._loop("digest", lambda: every - (time.time() % every) if every >= 1 else every, self.digest.run)
        for thread in self._threads:
            thread.start()
        log.info(
            "pipeline started (%s; harvest sets: %s)",
            self.holder,
            ", ".join(self.settings.harvest_sets) or "none",
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every thread (a pass in progress finishes its current batch or page), give up
        the lease and remove the heartbeat."""
        self.stopping.set()
        for wake in self._wakes:
            wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self.lease.release()
            with self.db.write() as conn:
                pipeline_state.forget_node(conn, self.holder)
        except Exception:
            log.warning("pipeline: could not release the leader lease (it expires by itself)", exc_info=True)
        log.info("pipeline stopped")
