"""The digest sender: plan ledger rows (``planning``), compose (``messages``), send, and record every
outcome.

Runs from the scheduler thread of ``paperfeed serve``, from ``paperfeed digest send`` (cron),
and - for one confirmation mail at a time - right after a web sign-up.

**The delivery ledger** (table ``deliveries``) has one row per subscriber per period
(``daily:2026-11-24``), created *before* anything is sent (unique key: planning twice is a
no-op). A row moves ``pending`` → ``sending`` (claimed by one process, its papers and a
deterministic Message-ID fixed and committed) → ``sent`` / ``retry`` / ``failed``, or straight to
``empty`` (nothing new for this subscriber) or ``skipped`` (unsubscribed meanwhile).

**Exactly once, in effect.** Each message is sent on its own and its row is committed as
``sent`` right after the server's 250 reply, before that connection starts its next message. So
after a crash (even SIGKILL) the only messages whose fate is unknown are those in flight - one
per SMTP connection (``SendOptions.connections``, default 2): ``sending`` rows whose owner
process is dead. The next run sends every such row again, with the same papers and the same
``Message-ID``. Guarantee: nobody is skipped; per crash at most ``connections`` subscribers can
get a second copy, and that copy carries the same Message-ID, so mail stores that de-duplicate
by Message-ID show it once. SMTP gives no way to ask "did you get it?", so nothing can close
that last window completely; we chose "possibly twice" over "possibly never". A graceful stop
(Ctrl-C, lost lease, server down) leaves nothing in doubt except a message interrupted mid-send.
The outbox transport writes ``<message-id>.eml``, so there a resend just replaces the same file.

Only one process plans and sends digests at a time: it holds the ``digest-sender`` lease
(``store/leases.py``: renewed every batch, taken over when it expires or its holder process
on this host is gone). Temporary failures (4xx) are retried with back-off; permanent ones (5xx)
are recorded and the address is suppressed after ``max_hard_bounces``; when the server is down
the unsent rows simply stay queued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from paperfeed.config import Settings
from paperfeed.digest.compose import Composer, Section, Topic
from paperfeed.digest.messages import MessageBuilder, message_id_for
from paperfeed.digest.periods import DigestPeriod, is_digest_key, parse_key
from paperfeed.digest.personal_sections import PersonalSections
from paperfeed.digest.planning import date_targets, due_groups, plan_date, plan_due
from paperfeed.digest.subscriptions import Prefs
from paperfeed.mail import mailer
from paperfeed.store import digest_store as store
from paperfeed.store import faults, subscription_store
from paperfeed.store.db import Database, utcnow
from paperfeed.store.leases import Lease, holder_dead, process_holder

log = logging.getLogger(__name__)

LEASE_NAME = "digest-sender"
BACKOFF_S = (60, 300, 900, 1800, 3600, 7200, 14400)  # wait after the 1st, 2nd, ... temporary failure
KEEPALIVE_S = 30.0  # lease renewal and claim refresh while a batch is being sent


@dataclass(frozen=True)
class SendOptions:
    batch_size: int = 200  # rows composed and claimed per transaction
    # Parallel SMTP connections. Each can have one message in flight, so after a crash up to
    # this many subscribers may get their digest twice (same Message-ID); 1 keeps it at one.
    connections: int = 2
    per_connection: int = 1000  # messages per SMTP connection
    max_attempts: int = 8  # temporary failures before a row is given up
    max_hard_bounces: int = 3  # permanent failures before an address is suppressed
    stale_claim: timedelta = timedelta(minutes=10)  # a claim this old is orphaned (owner on another host)
    lease_ttl: timedelta = timedelta(minutes=2)
    down_retry: timedelta = timedelta(minutes=1)  # when the server is unreachable
    digest_max_age: timedelta = timedelta(days=3)  # older unsent digests are given up
    confirm_max_age: timedelta = timedelta(days=1)


@dataclass
class SendReport:
    planned: int = 0
    sent: int = 0
    empty: int = 0
    skipped: int = 0
    retry: int = 0
    failed: int = 0
    suppressed: int = 0
    recovered: int = 0
    expired: int = 0
    transport_error: str | None = None
    lease_busy: bool = False
    lease_lost: bool = False
    preview: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{k} {v}" for k, v in self.__dict__.items() if isinstance(v, int) and not isinstance(v, bool) and v]
        return ", ".join(parts) or "nothing to do"


# -- the sender -------------------------------------------------------------------------------


@dataclass
class _Job:
    row: dict[str, Any]
    message_id: str
    sections: list[Section] | None = None  # digests
    new_payload: dict[str, Any] | None = None  # set when composed in this run


class Sender:
    """Sends the due ledger rows. Create one per run; it keeps per-run caches."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        transport: mailer.Transport | None = None,
        options: SendOptions | None = None,
        composer: Composer | None = None,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.options = options or SendOptions()
        self._own_transport = transport is None
        self.transport = transport or mailer.open_transport(settings, per_connection=self.options.per_connection)
        self.composer = composer or Composer(settings, db)
        self.personal = PersonalSections(settings, db)  # "For you" and "Following" sections
        self.clock = clock
        self.owner = owner or process_holder()
        self.lease = lease
        self.messages = MessageBuilder(settings, db, self.composer, clock)
        self._extra: list[mailer.Transport] = []  # the other lanes' connections
        self._count_lock = threading.Lock()
        self._alive_at = time.monotonic()

    # -- housekeeping ---------------------------------------------------------------------
    def recover(self) -> int:
        """Requeue ``sending`` rows whose owner died mid-send (or vanished long ago)."""
        now = self.clock()
        with self.db.read() as conn:
            claims = store.sending_claims(conn)
        orphaned = [
            owner
            for owner, claimed_at in claims
            if owner != self.owner
            and (holder_dead(owner) or claimed_at is None or claimed_at < now - self.options.stale_claim)
        ]
        if not orphaned:
            return 0
        with self.db.write() as conn:
            n = store.release_claims(conn, orphaned, now, "requeued: the sending process stopped mid-send")
        log.warning("digest: requeued %d deliveries left in flight by %s", n, ", ".join(orphaned))
        return n

    def expire(self) -> int:
        now = self.clock()
        with self.db.write() as conn:
            n = store.expire_open(conn, prefix="daily:", created_before=now - self.options.digest_max_age, now=now)
            n += store.expire_open(conn, prefix="weekly:", created_before=now - self.options.digest_max_age, now=now)
            n += store.expire_open(conn, prefix="confirm:", created_before=now - self.options.confirm_max_age, now=now)
        return n

    # -- the loop ---------------------------------------------------------------------------
    def run(
        self,
        *,
        email: str | None = None,
        ids: Sequence[int] | None = None,
        progress: Callable[[int], None] | None = None,
        report: SendReport | None = None,
    ) -> SendReport:
        report = report or SendReport()
        after = 0
        try:
            while True:
                if self.lease is not None and not self.lease.renew():
                    report.lease_lost = True
                    log.warning("digest: lost the sender lease; stopping")
                    break
                self._alive_at = time.monotonic()
                with self.db.read() as conn:
                    rows = store.open_work(
                        conn, now=self.clock(), limit=self.options.batch_size, after_id=after, email=email, ids=ids
                    )
                if not rows:
                    break
                after = rows[-1]["id"]
                jobs = self._prepare(rows, report, progress)
                if not self._send_jobs(jobs, report, progress):
                    break
        finally:
            if self._own_transport:
                for transport in (self.transport, *self._extra):
                    transport.close()
        return report

    def _prepare(
        self, rows: list[dict[str, Any]], report: SendReport, progress: Callable[[int], None] | None
    ) -> list[_Job]:
        """Compose what needs composing, then claim the batch in one transaction."""
        now = self.clock()
        settle: list[tuple[int, str, str | None]] = []
        postpone: list[tuple[int, str]] = []
        jobs: list[_Job] = []
        fresh: list[tuple[dict[str, Any], DigestPeriod, Topic]] = []
        for row in rows:
            key = row["period"]
            mid = message_id_for(self.settings, row["subscription_id"], key)
            if is_digest_key(key):
                if row["sub_status"] != "active":
                    settle.append((row["id"], store.SKIPPED, f"subscription is {row['sub_status']}"))
                elif row["payload"] and "sections" in row["payload"]:
                    sections = [Section.from_dict(s) for s in row["payload"]["sections"]]
                    jobs.append(_Job(row, row["message_id"] or mid, sections))
                else:
                    try:
                        period = parse_key(key, bool(row["weekdays_only"]))
                    except ValueError as exc:
                        settle.append((row["id"], store.FAILED, str(exc)))
                        continue
                    fresh.append((row, period, Topic.of(Prefs.from_row(row))))
            elif key.startswith("confirm:"):
                payload = row["payload"] or {}
                if payload.get("nonce") != row["token_nonce"]:
                    settle.append((row["id"], store.SKIPPED, "superseded by a newer confirmation mail"))
                else:
                    jobs.append(_Job(row, row["message_id"] or mid))
            else:
                settle.append((row["id"], store.FAILED, f"unknown delivery kind {key!r}"))
        jobs.extend(self._compose(fresh, settle, postpone))

        claimed: list[_Job] = []
        with self.db.write() as conn:
            for delivery_id, status, error in settle:
                if store.close_unclaimed(conn, delivery_id, status, error):
                    setattr(report, status, getattr(report, status) + 1)
            for delivery_id, error in postpone:
                store.postpone(conn, delivery_id, error, now + self.options.down_retry)
                report.retry += 1
            items = [
                {
                    "id": job.row["id"],
                    "status": job.row["status"],
                    "paper_ids": [pid for x in job.sections for pid in x.ids] if job.sections else job.row["paper_ids"],
                    "message_id": job.message_id,
                    "payload": job.new_payload,
                }
                for job in jobs
            ]
            ours = store.claim_many(conn, items, owner=self.owner, now=now)
            claimed = [job for job in jobs if job.row["id"] in ours]  # others were taken by someone else
            store.reserve_papers(
                conn,
                [
                    {
                        "subscription_id": job.row["subscription_id"],
                        "paper_id": pid,
                        "delivery_id": job.row["id"],
                        "created_at": now,
                    }
                    for job in claimed
                    if job.new_payload is not None and job.sections
                    for x in job.sections
                    for pid in x.ids
                ],
            )
        if progress and (settle or postpone):
            progress(len(settle) + len(postpone))
        return claimed

    def _compose(
        self,
        fresh: list[tuple[dict[str, Any], DigestPeriod, Topic]],
        settle: list[tuple[int, str, str | None]],
        postpone: list[tuple[int, str]],
    ) -> list[_Job]:
        if not fresh:
            return []
        candidates: set[str] = set()
        broken: dict[tuple[DigestPeriod, Topic], str] = {}
        for _row, period, topic in fresh:
            if (period, topic) in broken:
                continue
            try:
                candidates |= self.composer.candidate_ids(period, topic)
            except Exception as exc:  # e.g. the search index is unavailable: try again later
                log.exception("digest: cannot compose %s for topic %r", period.key, topic)
                broken[(period, topic)] = f"compose failed: {exc}"
        with self.db.read() as conn:
            reserved = store.reserved_papers(conn, (r["subscription_id"] for r, _, _ in fresh), candidates)
        self.personal.prepare([r["email"] for r, _, _ in fresh])
        had: dict[int, set[str]] = {}
        for sub_id, pid in reserved:
            had.setdefault(sub_id, set()).add(pid)
        jobs = []
        for row, period, topic in fresh:
            if (period, topic) in broken:
                postpone.append((row["id"], broken[(period, topic)]))
                continue
            seen = had.setdefault(row["subscription_id"], set())
            sections = self.personal.apply(row, period, self.composer.choose(period, topic, seen))
            if not sections:
                settle.append((row["id"], store.EMPTY, None))
                continue
            for s in sections:
                seen.update(s.ids)  # a second period in the same batch must not repeat them
            mid = message_id_for(self.settings, row["subscription_id"], row["period"])
            payload = {"sections": [s.as_dict() for s in sections]}
            jobs.append(_Job(row, mid, sections, payload))
        return jobs

    def _send_jobs(self, jobs: list[_Job], report: SendReport, progress: Callable[[int], None] | None) -> bool:
        """Send a claimed batch over ``options.connections`` SMTP connections (lanes); False
        when the run must stop because the server is unreachable. Each outcome is committed
        as soon as the server answers, so only a message in flight on a lane can be in doubt."""
        todo: deque[_Job] = deque(jobs)
        down: list[int] = []
        stop = threading.Event()
        lanes = self._lanes(len(jobs))

        def lane(transport: mailer.Transport) -> None:
            while not stop.is_set():
                if not self._keep_alive():
                    report.lease_lost = True
                    stop.set()
                    return
                try:
                    job = todo.popleft()
                except IndexError:
                    return
                if not self._send_one(job, transport, report):
                    down.append(job.row["id"])
                    stop.set()
                    return
                if progress:
                    progress(1)

        threads: list[threading.Thread] = []
        try:
            if len(lanes) == 1:
                lane(lanes[0])
            else:
                threads = [threading.Thread(target=lane, args=(t,), daemon=True) for t in lanes]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        except BaseException:
            # Interrupted (Ctrl-C): what was never started goes back to the queue; other lanes
            # finish and record their current message. A message interrupted mid-send stays
            # ``sending``: the server may have taken it, so the next run sends it again.
            stop.set()
            self._release(_drain(todo), "interrupted before sending", self.clock())
            for t in threads:
                t.join(timeout=60)
            raise
        if report.lease_lost:
            self._release(_drain(todo), "lease lost before sending", self.clock())
            log.warning("digest: lost the sender lease mid-batch; stopping")
            return False
        if down:
            ids = down + _drain(todo)
            report.retry += self._release(
                ids, f"not sent: {report.transport_error}", self.clock() + self.options.down_retry
            )
            log.warning(
                "digest: mail server unavailable (%s); %d deliveries stay queued", report.transport_error, len(ids)
            )
            return False
        return True

    def _keep_alive(self) -> bool:
        """Every ``KEEPALIVE_S`` while sending: renew the lease and refresh our claims, so a
        slow server never makes this live sender look crashed. False if the lease was lost."""
        if time.monotonic() - self._alive_at < KEEPALIVE_S:
            return True
        with self._count_lock:
            if time.monotonic() - self._alive_at < KEEPALIVE_S:
                return True
            self._alive_at = time.monotonic()
            if self.lease is not None and not self.lease.renew():
                return False
            with self.db.write() as conn:
                store.touch_claims(conn, self.owner, self.clock())
            return True

    def _lanes(self, n_jobs: int) -> list[mailer.Transport]:
        want = max(1, min(self.options.connections, n_jobs)) if self._own_transport else 1
        while len(self._extra) < want - 1:
            self._extra.append(mailer.open_transport(self.settings, per_connection=self.options.per_connection))
        return [self.transport, *self._extra[: want - 1]]

    def _release(self, ids: list[int], note: str, when: datetime) -> int:
        if not ids:
            return 0
        with self.db.write() as conn:
            return store.release_rows(conn, ids, self.owner, when, note)

    def _send_one(self, job: _Job, transport: mailer.Transport, report: SendReport) -> bool:
        """Build, send and record one message; False when the server is unreachable."""
        try:
            transport.send(self.messages.build(job.row, job.message_id, job.sections))
        except mailer.TransportDown as exc:
            report.transport_error = str(exc)
            return False
        except mailer.MailError as exc:
            self._record_failure(job, exc, report)
        except Exception as exc:  # a rendering bug must not lose the row: retry later
            log.exception("digest: cannot build message for delivery %s", job.row["id"])
            self._record_failure(job, mailer.TemporaryFailure(f"internal error: {exc}"), report)
        else:
            with self.db.write() as conn:
                store.mark_sent(conn, job.row["id"], self.owner, self.clock())
                if job.row["hard_bounces"]:
                    subscription_store.update_subscription(conn, job.row["subscription_id"], hard_bounces=0)
            with self._count_lock:
                report.sent += 1
        return True

    def _record_failure(self, job: _Job, exc: mailer.MailError, report: SendReport) -> None:
        attempts = int(job.row["attempts"]) + 1
        with self.db.write() as conn, self._count_lock:
            if isinstance(exc, mailer.PermanentFailure):
                store.mark_failed(conn, job.row["id"], self.owner, str(exc))
                report.failed += 1
                if subscription_store.record_bounce(conn, job.row["subscription_id"], self.options.max_hard_bounces):
                    report.suppressed += 1
            elif attempts >= self.options.max_attempts:
                store.mark_failed(conn, job.row["id"], self.owner, f"gave up after {attempts} attempts: {exc}")
                report.failed += 1
            else:
                delay = BACKOFF_S[min(attempts, len(BACKOFF_S)) - 1]
                store.mark_retry(conn, job.row["id"], self.owner, str(exc), self.clock() + timedelta(seconds=delay))
                report.retry += 1


def _drain(todo: deque[_Job]) -> list[int]:
    """Empty the shared queue atomically (lanes may be popping from it at the same time)."""
    ids: list[int] = []
    while True:
        try:
            ids.append(todo.popleft().row["id"])
        except IndexError:
            return ids


# -- entry points -----------------------------------------------------------------------------


def send_due(
    settings: Settings,
    db: Database,
    *,
    day: date | None = None,
    frequency: str | None = None,
    email: str | None = None,
    options: SendOptions | None = None,
    transport: mailer.Transport | None = None,
    composer: Composer | None = None,
    clock: Callable[[], datetime] = utcnow,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> SendReport:
    """Take the lease, requeue orphans, plan (the due periods, or ``day``'s), and send.

    ``on_start`` gets the number of rows due once planning is done (for a progress bar).
    Returns a report with ``lease_busy`` set when another process is sending right now.
    """
    options = options or SendOptions()
    owner = process_holder()
    lease = Lease(db, LEASE_NAME, holder=owner, ttl=options.lease_ttl, clock=clock)
    if not lease.acquire():
        return SendReport(lease_busy=True)
    try:
        sender = Sender(
            settings, db, transport=transport, options=options, composer=composer, clock=clock, owner=owner, lease=lease
        )
        report = SendReport()
        report.recovered = sender.recover()
        report.expired = sender.expire()
        now = clock()
        if day is not None:
            report.planned = plan_date(db, day, now, frequency=frequency, email=email)
        else:
            report.planned = plan_due(db, now, frequency=frequency, email=email)
        if on_start:
            with db.read() as conn:
                on_start(store.count_open(conn, now=now, email=email))
        return sender.run(email=email, progress=progress, report=report)
    finally:
        lease.release()


def send_now(
    settings: Settings, db: Database, delivery_id: int, *, transport: mailer.Transport | None = None
) -> SendReport:
    """Send one queued row right away (a confirmation after sign-up). No lease needed: the
    row is claimed atomically, so a concurrent sender cannot send it too. If this fails the
    row stays queued for the next scheduled run."""
    try:
        return Sender(settings, db, transport=transport).run(ids=[delivery_id])
    except Exception as err:  # never surface mail trouble to the person who just signed up
        if faults.classify(err) is None:
            log.exception("digest: immediate send of delivery %s failed; it stays queued", delivery_id)
        else:  # the database is down or full: expected during an outage, no traceback
            log.warning("digest: immediate send of delivery %s failed (%s); it stays queued", delivery_id,
                        faults.describe(err))  # fmt: skip
        return SendReport(transport_error="failed; queued")


def preview_due(
    settings: Settings,
    db: Database,
    *,
    day: date | None = None,
    frequency: str | None = None,
    email: str | None = None,
    composer: Composer | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> SendReport:
    """``--dry-run``: who would get what, composed exactly as a real run would; writes nothing."""
    composer = composer or Composer(settings, db)
    now = clock()
    targets: list[tuple[dict[str, Any], DigestPeriod]] = []
    with db.read() as conn:
        if day is not None:
            for freq, weekdays_only, _period in date_targets(frequency, day):
                for sub in store.eligible_subscriptions(
                    conn, frequency=freq, period=_period.key, weekdays_only=weekdays_only, email=email
                ):
                    targets.append((sub, _period))
        else:
            for freq, tz, hour, weekdays_only, period, moment in due_groups(store.active_groups(conn, frequency), now):
                for sub in store.eligible_subscriptions(
                    conn,
                    frequency=freq,
                    period=period.key,
                    timezone=tz,
                    send_hour=hour,
                    weekdays_only=weekdays_only,
                    confirmed_before=moment,
                    email=email,
                ):
                    targets.append((sub, period))
        topics = {(p, Topic.of(Prefs.from_row(s))) for s, p in targets}
        candidates = set().union(*(composer.candidate_ids(p, t) for p, t in topics)) if topics else set()
        reserved = store.reserved_papers(conn, (s["id"] for s, _ in targets), candidates)
    report = SendReport()
    for sub, period in targets:
        seen = {pid for sid, pid in reserved if sid == sub["id"]}
        sections = composer.choose(period, Topic.of(Prefs.from_row(sub)), seen)
        n = sum(len(s.ids) for s in sections)
        report.preview.append({"email": sub["email"], "period": period.key, "papers": n})
        if n:
            report.planned += 1
        else:
            report.empty += 1
    return report
