"""The delivery ledger's claims under real concurrency: two senders that read the same due rows
at the same moment send each digest once, and a claim held by a live sender is not taken over
until that sender is gone (or has been silent past ``stale_claim``).

The lease normally keeps a second ``send_due`` out, but it is not the last line: ``send_now``
(a confirmation right after sign-up) runs without it, and a lease can expire under a slow
server. The compare-and-set claim in ``store/digest_store.py`` is what makes delivery
exactly-once, so these tests race it directly.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from paperfeed.config import Settings
from paperfeed.digest.messages import message_id_for
from paperfeed.digest.planning import plan_date
from paperfeed.digest.send import Sender, SendOptions, send_due
from paperfeed.store import digest_store as store
from paperfeed.store.db import Database

from . import smtp
from .smtp import SmtpSink
from .test_digest_send import DAY, Clock, activate, ledger, seed_feed

smtp_sink = smtp.smtp_sink  # the loopback SMTP server fixture

N = 40
PERIOD = "daily:2026-11-24"


@pytest.fixture
def mail_settings(settings: Settings, smtp_sink: SmtpSink) -> Settings:
    return replace(settings, smtp_url=smtp_sink.url, mail_from="paperfeed <digest@paperfeed.example>")


def test_two_senders_reading_the_same_due_rows_at_once_send_each_digest_once(
    any_db: Database, mail_settings: Settings, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both senders have read all N rows as ``pending`` (a barrier after the read, which must be
    met) before either claims any; then both claim. Each row goes to exactly one of them."""
    seed_feed(any_db)
    emails = [f"r{i:02d}@example.org" for i in range(N)]
    activate(any_db, emails)
    now = datetime(2026, 11, 24, 9, 0)
    plan_date(any_db, DAY, now, frequency="daily")
    assert ledger(any_db) == {"pending": N}

    both_read = threading.Barrier(2, timeout=60)
    first_read = threading.local()
    read: dict[str, list[int]] = {}
    claimed: dict[str, set[int]] = {}
    real_open_work, real_claim_many = store.open_work, store.claim_many

    def open_work(conn: Any, **kw: Any) -> list[dict[str, Any]]:
        rows = real_open_work(conn, **kw)
        if not getattr(first_read, "done", False):
            first_read.done = True
            read[threading.current_thread().name] = [r["id"] for r in rows]
            both_read.wait()  # a broken barrier raises: the race must really happen
        return rows

    def claim_many(conn: Any, items: list[dict[str, Any]], *, owner: str, now: datetime) -> set[int]:
        ours = real_claim_many(conn, items, owner=owner, now=now)
        claimed.setdefault(owner, set()).update(ours)
        return ours

    monkeypatch.setattr(store, "open_work", open_work)
    monkeypatch.setattr(store, "claim_many", claim_many)

    def run(owner: str) -> int:
        threading.current_thread().name = owner
        sender = Sender(mail_settings, any_db, owner=owner, clock=lambda: now, options=SendOptions(connections=1))
        return sender.run().sent

    with ThreadPoolExecutor(max_workers=2) as pool:
        sent = list(pool.map(run, ["host-a:1:a", "host-b:2:b"]))

    all_ids = set(read["host-a:1:a"])
    assert len(all_ids) == N and read["host-b:2:b"] == read["host-a:1:a"]  # both saw every row pending
    a, b = claimed.get("host-a:1:a", set()), claimed.get("host-b:2:b", set())
    assert not a & b, f"rows claimed by both senders: {sorted(a & b)}"
    assert a | b == all_ids and sum(sent) == N
    by_recipient = smtp_sink.by_recipient()
    assert sorted(by_recipient) == emails
    assert all(len(msgs) == 1 for msgs in by_recipient.values()), {e: len(m) for e, m in by_recipient.items()}
    assert ledger(any_db) == {"sent": N}


@pytest.fixture
def live_process() -> Iterator[subprocess.Popen[bytes]]:
    """Another sender process on this host, alive until the test ends it."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait(timeout=30)


def test_a_live_senders_claims_are_not_taken_until_it_is_gone(
    db: Database, mail_settings: Settings, smtp_sink: SmtpSink, live_process: subprocess.Popen[bytes]
) -> None:
    seed_feed(db)
    emails = ["a@example.org", "b@example.org", "c@example.org"]
    activate(db, emails)
    clock = Clock(datetime(2026, 11, 24, 9, 0))
    owner = f"{socket.gethostname()}:{live_process.pid}:live"
    with db.write() as conn:
        assert store.plan_period(conn, frequency="daily", period=PERIOD, now=clock()) == 3
        for sub_id in (1, 2, 3):
            mid = message_id_for(mail_settings, sub_id, PERIOD)
            assert store.claim(
                conn, sub_id, expect_status="pending", owner=owner, now=clock(), paper_ids=None, message_id=mid
            )

    # The owner is alive and its claims are fresh: nothing is requeued, re-claimed or sent.
    for minutes in (0, 9):
        clock.now = datetime(2026, 11, 24, 9, 0) + timedelta(minutes=minutes)
        report = send_due(mail_settings, db, day=DAY, clock=clock)
        assert (report.recovered, report.sent, report.lease_busy) == (0, 0, False), report.summary()
        assert ledger(db) == {"sending": 3} and smtp_sink.count() == 0
        with db.read() as conn:
            assert store.open_work(conn, now=clock(), limit=100) == []
            assert store.sending_claims(conn) == [(owner, datetime(2026, 11, 24, 9, 0))]
    # Another sender reading the rows earlier (as pending) cannot claim them now either.
    with db.write() as conn:
        stale = [
            {"id": i, "status": "pending", "paper_ids": None, "message_id": "<x@y>", "payload": None} for i in (1, 2, 3)
        ]
        assert store.claim_many(conn, stale, owner="elsewhere:9:x", now=clock()) == set()
    assert ledger(db) == {"sending": 3}

    # Once the owner is gone, the next run requeues its rows and sends each once, with the
    # Message-ID fixed at claim time.
    live_process.kill()
    live_process.wait(timeout=30)
    report = send_due(mail_settings, db, day=DAY, clock=clock)
    assert (report.recovered, report.sent) == (3, 3), report.summary()
    assert ledger(db) == {"sent": 3}
    for sub_id, email in enumerate(emails, start=1):
        assert [m.message_id for m in smtp_sink.to(email)] == [message_id_for(mail_settings, sub_id, PERIOD)]


def test_a_claim_silent_past_stale_claim_is_taken_over(
    db: Database, mail_settings: Settings, smtp_sink: SmtpSink
) -> None:
    """An owner on another host cannot be checked for life: its claim is orphaned once it has
    not been refreshed for ``stale_claim`` (a live sender refreshes every ``KEEPALIVE_S``)."""
    seed_feed(db)
    activate(db, ["a@example.org"])
    start = datetime(2026, 11, 24, 9, 0)
    with db.write() as conn:
        store.plan_period(conn, frequency="daily", period=PERIOD, now=start)
        mid = message_id_for(mail_settings, 1, PERIOD)
        assert store.claim(
            conn, 1, expect_status="pending", owner="other-host:77:x", now=start, paper_ids=None, message_id=mid
        )
    stale = SendOptions().stale_claim
    just_before = send_due(mail_settings, db, day=DAY, clock=lambda: start + stale - timedelta(seconds=1))
    assert (just_before.recovered, just_before.sent) == (0, 0) and ledger(db) == {"sending": 1}
    after = send_due(mail_settings, db, day=DAY, clock=lambda: start + stale + timedelta(seconds=1))
    assert (after.recovered, after.sent) == (1, 1) and ledger(db) == {"sent": 1}
    assert [m.message_id for m in smtp_sink.to("a@example.org")] == [mid]
