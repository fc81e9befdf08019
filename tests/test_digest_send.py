"""The digest sender against a real SMTP server on loopback: message format, the delivery
ledger (re-runs, server down, 4xx retries, 5xx bounces, crashed senders), topics, schedule."""

from __future__ import annotations

import re
import socket
from dataclasses import replace
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest

from paperfeed.config import Settings
from paperfeed.digest import subscriptions as subs
from paperfeed.digest.compose import Composer, Topic
from paperfeed.digest.periods import daily_period, due_period, parse_key, weekly_period
from paperfeed.digest.send import LEASE_NAME, SendOptions, message_id_for, plan_date, plan_due, send_due
from paperfeed.mail import mailer
from paperfeed.store import digest_store as store
from paperfeed.store import subscription_store
from paperfeed.store.db import Database
from paperfeed.store.leases import Lease

from . import smtp
from .factories import add_daily, add_paper
from .servers import free_port
from .smtp import SmtpSink

smtp_sink = smtp.smtp_sink  # the loopback SMTP server fixture

DAY = date(2026, 11, 24)  # a Tuesday: daily:2026-11-24 covers Monday the 23rd
FEED_DAY = date(2026, 11, 23)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 24, 9, 0))


@pytest.fixture
def mail_settings(settings: Settings, smtp_sink: SmtpSink) -> Settings:
    return replace(
        settings,
        smtp_url=smtp_sink.url,
        base_url="https://paperfeed.example",
        mail_from="paperfeed <digest@paperfeed.example>",
    )


def seed_feed(db: Database, day: date = FEED_DAY, n: int = 12, **extra: object) -> list[dict]:
    rows = []
    for i in range(n):
        p = add_paper(db, upvotes=i, imported_upvotes=1, listed=day, published=day - timedelta(days=2), **extra)
        add_daily(db, p["id"], day)
        rows.append(p)
    return rows


def activate(db: Database, emails: list[str], prefs: subs.Prefs | None = None) -> None:
    subs.bulk_activate(db, [(e, prefs or subs.Prefs()) for e in emails], now=datetime(2026, 1, 1))


def ledger(db: Database) -> dict[str, int]:
    with db.read() as conn:
        return store.delivery_status_counts(conn)


def test_digest_message(db: Database, mail_settings: Settings, smtp_sink: SmtpSink, clock: Clock) -> None:
    papers = seed_feed(db)
    activate(db, ["reader@example.org"])
    report = send_due(mail_settings, db, day=DAY, clock=clock)
    assert (report.planned, report.sent) == (1, 1)
    [cap] = smtp_sink.messages
    msg = cap.msg
    assert cap.mail_from == "digest@paperfeed.example" and cap.rcpt_tos == ["reader@example.org"]
    with db.read() as conn:
        sub_id = subscription_store.get_subscription_by_email(conn, "reader@example.org")["id"]
    assert msg["Message-ID"] == message_id_for(mail_settings, sub_id, "daily:2026-11-24")
    assert msg["From"] == "paperfeed <digest@paperfeed.example>" and msg["To"] == "reader@example.org"
    assert parsedate_to_datetime(msg["Date"]).tzinfo is not None
    assert "12 papers" in msg["Subject"] and "23 Nov 2026" in msg["Subject"]
    unsub = str(msg["List-Unsubscribe"])
    assert re.fullmatch(
        r"<https://paperfeed\.example/digest/unsubscribe\?t=[\w.-]+>, <mailto:digest@paperfeed\.example\?subject="
        r"unsubscribe%20[\w.-]+>",
        unsub,
    ), unsub
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    # Both parts list the papers, most upvoted first; links to the paper page, arXiv and PDF.
    best = papers[-1]["id"]
    assert text.index(papers[-1]["title"]) < text.index(papers[-2]["title"])
    for part in (text, html):
        assert f"https://paperfeed.example/papers/{best}" in part
        assert f"https://arxiv.org/abs/{best}" in part and f"https://arxiv.org/pdf/{best}" in part
        assert "/digest/unsubscribe?t=" in part and "/digest/manage?t=" in part
    assert "<script" not in html.lower() and "<img" not in html.lower() and "<style" not in html.lower()
    assert "12 upvotes" in text  # upvotes + imported upvotes of the best paper (11 + 1)
    assert ledger(db) == {"sent": 1}


def test_rerun_sends_nothing_twice(
    any_db: Database, mail_settings: Settings, smtp_sink: SmtpSink, clock: Clock
) -> None:
    seed_feed(any_db)
    activate(any_db, [f"r{i}@example.org" for i in range(5)])
    assert send_due(mail_settings, any_db, day=DAY, clock=clock).sent == 5
    again = send_due(mail_settings, any_db, day=DAY, clock=clock)
    assert (again.planned, again.sent) == (0, 0)
    assert smtp_sink.count() == 5 and ledger(any_db) == {"sent": 5}


def test_server_down_loses_nothing(db: Database, settings: Settings, clock: Clock) -> None:
    seed_feed(db)
    activate(db, [f"d{i}@example.org" for i in range(4)])
    port = free_port()  # nothing listens here yet
    s = replace(settings, smtp_url=f"smtp://127.0.0.1:{port}?timeout=2")
    report = send_due(s, db, day=DAY, clock=clock)
    assert report.sent == 0 and report.transport_error and report.retry == 4
    assert ledger(db) == {"retry": 4}
    sink = SmtpSink()
    sink.port = port
    sink.start()
    try:
        clock.advance(minutes=2)
        report = send_due(s, db, day=DAY, clock=clock)
        assert report.sent == 4 and report.transport_error is None
        assert sorted(sink.by_recipient()) == [f"d{i}@example.org" for i in range(4)]
        assert all(len(v) == 1 for v in sink.by_recipient().values())
    finally:
        sink.stop()
    assert ledger(db) == {"sent": 4}


def test_only_greylisted_recipients_are_retried(
    any_db: Database,
    mail_settings: Settings,
    smtp_sink: SmtpSink,
    clock: Clock,
) -> None:
    seed_feed(any_db)
    emails = [f"g{i}@example.org" for i in range(5)]
    activate(any_db, emails)
    smtp_sink.refuse("g1@example.org", "451 4.7.1 Greylisted, try again later")
    smtp_sink.refuse("g3@example.org", "452 4.2.2 Mailbox full")
    first = send_due(mail_settings, any_db, day=DAY, clock=clock)
    assert (first.sent, first.retry) == (3, 2)
    assert send_due(mail_settings, any_db, day=DAY, clock=clock).sent == 0  # backing off
    clock.advance(minutes=2)
    second = send_due(mail_settings, any_db, day=DAY, clock=clock)
    assert second.sent == 2
    assert {e: smtp_sink.rcpt_attempts[e] for e in emails} == {
        "g0@example.org": 1,
        "g1@example.org": 2,
        "g2@example.org": 1,
        "g3@example.org": 2,
        "g4@example.org": 1,
    }
    assert {e: len(m) for e, m in smtp_sink.by_recipient().items()} == {e: 1 for e in emails}
    assert ledger(any_db) == {"sent": 5}


def test_hard_bounces_suppress_the_address(
    db: Database,
    mail_settings: Settings,
    smtp_sink: SmtpSink,
    clock: Clock,
) -> None:
    activate(db, ["gone@example.org", "flaky@example.org", "fine@example.org"])
    smtp_sink.refuse("gone@example.org", "550 5.1.1 No such user", times=None)
    smtp_sink.refuse("flaky@example.org", "554 5.7.1 Rejected")
    for k in range(4):
        seed_feed(db, FEED_DAY + timedelta(days=k), n=3)
        report = send_due(mail_settings, db, day=DAY + timedelta(days=k), clock=clock, options=SendOptions())
        if k == 2:
            assert report.suppressed == 1
    with db.read() as conn:
        gone = subscription_store.get_subscription_by_email(conn, "gone@example.org")
        flaky = subscription_store.get_subscription_by_email(conn, "flaky@example.org")
        history = store.deliveries_for(conn, gone["id"])
    assert gone["status"] == "suppressed" and gone["hard_bounces"] == 3
    assert [d["status"] for d in history] == ["failed", "failed", "failed"]  # nothing planned on day 4
    assert "550" in history[0]["error"]
    assert smtp_sink.rcpt_attempts["gone@example.org"] == 3
    assert flaky["status"] == "active" and flaky["hard_bounces"] == 0  # reset by the next success
    assert len(smtp_sink.to("fine@example.org")) == 4


def test_never_the_same_paper_twice(db: Database, mail_settings: Settings, smtp_sink: SmtpSink, clock: Clock) -> None:
    activate(db, ["once@example.org"])
    seed_feed(db, FEED_DAY, n=12)
    seed_feed(db, FEED_DAY + timedelta(days=1), n=12)
    assert send_due(mail_settings, db, day=DAY, clock=clock).sent == 1
    assert send_due(mail_settings, db, day=DAY + timedelta(days=1), clock=clock).sent == 1
    # Day 3: nothing new entered the feed and every trending paper was already mailed.
    third = send_due(mail_settings, db, day=DAY + timedelta(days=2), clock=clock)
    assert (third.sent, third.empty) == (0, 1)
    with db.read() as conn:
        rows = store.deliveries_for(conn, 1)
        reserved = store.papers_sent_to(conn, 1)
    ids = [pid for d in rows if d["paper_ids"] for pid in d["paper_ids"]]
    assert len(ids) == len(set(ids)) == 24 == len(reserved)
    assert [d["status"] for d in rows] == ["sent", "sent", "empty"]
    assert smtp_sink.count() == 2


def test_unsubscribed_before_sending_is_skipped(
    db: Database,
    mail_settings: Settings,
    smtp_sink: SmtpSink,
    clock: Clock,
) -> None:
    seed_feed(db)
    activate(db, ["bye@example.org"])
    with db.write() as conn:
        store.plan_period(conn, frequency="daily", period="daily:2026-11-24", now=clock())
        subscription_store.update_subscription(conn, 1, status="unsubscribed")
    report = send_due(mail_settings, db, day=DAY, clock=clock)
    assert report.skipped == 1 and smtp_sink.count() == 0


def _topic_corpus(db: Database) -> dict[str, str]:
    window = FEED_DAY
    specs = {
        "gnn_new": ("Graph neural networks for traffic forecasting", "cs.LG", window),
        "gnn_cl": ("Graph neural networks meet language models", "cs.CL cs.LG", window),
        "gnn_old": ("Graph neural networks for chemistry", "cs.LG", window - timedelta(days=60)),
        "cl_new": ("A tokenizer study for low-resource translation", "cs.CL", window),
        "cv_tr": ("Vision transformer for medical segmentation", "cs.CV", window),
        "cv_other": ("Optical flow with recurrent refinement", "cs.CV", window),
    }
    ids = {}
    for key, (title, cats, listed) in specs.items():
        p = add_paper(
            db,
            title=title,
            abstract=f"{title}. We evaluate on standard benchmarks.",
            categories=cats,
            primary_category=cats.split()[0],
            listed=listed,
            published=listed - timedelta(days=1),
        )
        ids[key] = p["id"]
    add_daily(db, ids["cv_other"], window)
    return ids


def test_topic_filters_select_the_right_papers(
    db: Database,
    mail_settings: Settings,
    smtp_sink: SmtpSink,
    clock: Clock,
) -> None:
    from paperfeed.search.lexical import LexicalIndex

    ids = _topic_corpus(db)
    LexicalIndex(mail_settings).update(db, progress=False)
    activate(db, ["gnn@example.org"], subs.Prefs(query="graph neural networks"))
    activate(db, ["gnncl@example.org"], subs.Prefs(query="graph neural networks", categories=("cs.CL",)))
    activate(db, ["cl@example.org"], subs.Prefs(categories=("cs.CL",)))
    activate(db, ["cv@example.org"], subs.parse_prefs(query="transformer", categories="cs.cv"))  # any case
    activate(db, ["nothing@example.org"], subs.Prefs(query="quantum chromodynamics lattice"))
    activate(db, ["all@example.org"])
    report = send_due(mail_settings, db, day=DAY, clock=clock)
    assert (report.sent, report.empty) == (5, 1)

    def got(email: str) -> set[str]:
        [m] = smtp_sink.to(email)
        text = m.msg.get_body(("plain",)).get_content()
        return {k for k, pid in ids.items() if f"/papers/{pid}" in text}

    assert got("gnn@example.org") == {"gnn_new", "gnn_cl"}  # not the one listed two months ago
    assert got("gnncl@example.org") == {"gnn_cl"}
    assert got("cl@example.org") == {"gnn_cl", "cl_new"}
    assert got("cv@example.org") == {"cv_tr"}
    assert got("all@example.org") == {"cv_other"}  # no topics: the daily feed
    assert smtp_sink.to("nothing@example.org") == []
    subject = smtp_sink.to("gnn@example.org")[0].msg["Subject"]
    assert "graph neural networks" in subject


def test_periods() -> None:
    assert daily_period(date(2026, 11, 24)).start == date(2026, 11, 23)
    monday = daily_period(date(2026, 11, 23))
    assert (monday.start, monday.end) == (date(2026, 11, 20), date(2026, 11, 22))  # Fri..Sun
    assert daily_period(date(2026, 11, 23), weekdays_only=False).start == date(2026, 11, 22)
    week = weekly_period(date(2026, 11, 26))
    assert (week.key, week.start, week.end) == ("weekly:2026-W48", date(2026, 11, 16), date(2026, 11, 22))
    assert parse_key("weekly:2026-W48") == week
    for bad in ("daily:2026-02-30", "weekly:2026-W60", "monthly:2026-01", "daily:x"):
        with pytest.raises(ValueError):
            parse_key(bad)


def test_planning_counts_the_rows_it_creates(any_db: Database, clock: Clock) -> None:
    """The number ``digest send`` reports as planned is the number of ledger rows written, on
    both backends (PostgreSQL drivers report no rowcount for INSERT ... SELECT unless asked)."""
    activate(any_db, [f"p{i}@example.org" for i in range(3)])
    assert plan_date(any_db, DAY, clock(), frequency="daily") == 3
    assert ledger(any_db) == {"pending": 3}
    assert plan_date(any_db, DAY, clock(), frequency="daily") == 0  # planning twice is a no-op


def test_plan_due_follows_time_zones_hours_and_weekdays(db: Database) -> None:
    subs.bulk_activate(
        db,
        [
            ("tokyo@example.org", subs.Prefs(timezone="Asia/Tokyo", send_hour=8)),
            ("ny@example.org", subs.Prefs(timezone="America/New_York", send_hour=7, weekdays_only=False)),
            ("weekly@example.org", subs.Prefs(frequency="weekly", timezone="Europe/Berlin", send_hour=9)),
        ],
        now=datetime(2026, 1, 1),
    )
    # 22:59 UTC Monday is 07:59 Tuesday in Tokyo: not yet; 23:00 is.
    # (New York's Monday 07:00 and Berlin's weekly Monday 09:00 have passed by then.)
    assert plan_due(db, datetime(2026, 11, 23, 22, 59)) == 2
    assert plan_due(db, datetime(2026, 11, 23, 23, 0)) == 1
    with db.read() as conn:
        assert store.deliveries_for(conn, 1)[0]["period"] == "daily:2026-11-24"
        assert store.deliveries_for(conn, 3)[0]["period"] == "weekly:2026-W48"
    # Saturday: New York (weekends on) gets one, Tokyo (weekdays only) does not.
    assert plan_due(db, datetime(2026, 11, 28, 13, 0)) == 1
    with db.read() as conn:
        assert store.deliveries_for(conn, 2)[-1]["period"] == "daily:2026-11-28"
    assert plan_due(db, datetime(2026, 11, 28, 13, 5)) == 0  # idempotent
    # Confirmed after today's send time: first digest tomorrow, not right away.
    subs.bulk_activate(db, [("late@example.org", subs.Prefs())], now=datetime(2026, 12, 1, 10, 0))
    assert plan_due(db, datetime(2026, 12, 1, 10, 5), frequency="daily") == 1  # ny only
    assert due_period("daily", "UTC", 8, True, datetime(2026, 12, 1, 7, 59)) is None


def test_lease_busy_means_no_send(db: Database, mail_settings: Settings, smtp_sink: SmtpSink, clock: Clock) -> None:
    seed_feed(db)
    activate(db, ["x@example.org"])
    other = Lease(db, LEASE_NAME, holder="elsewhere:1:x", ttl=timedelta(minutes=2), clock=clock)
    assert other.acquire()
    assert send_due(mail_settings, db, day=DAY, clock=clock).lease_busy
    assert smtp_sink.count() == 0 and ledger(db) == {}


def test_in_flight_rows_of_a_dead_sender_are_resent_once(
    db: Database,
    mail_settings: Settings,
    smtp_sink: SmtpSink,
    clock: Clock,
) -> None:
    seed_feed(db)
    activate(db, ["a@example.org", "b@example.org"])
    dead_owner = f"{socket.gethostname()}:{2**22 + 4321}:dead"
    mid = message_id_for(mail_settings, 1, "daily:2026-11-24")
    with db.write() as conn:
        store.plan_period(conn, frequency="daily", period="daily:2026-11-24", now=clock())
        assert store.claim(
            conn, 1, expect_status="pending", owner=dead_owner, now=clock(), paper_ids=None, message_id=mid
        )
    report = send_due(mail_settings, db, day=DAY, clock=clock)
    assert (report.recovered, report.sent) == (1, 2)
    assert [m.message_id for m in smtp_sink.to("a@example.org")] == [mid]
    assert ledger(db) == {"sent": 2}


def test_outbox_without_smtp(db: Database, settings: Settings, clock: Clock) -> None:
    seed_feed(db)
    activate(db, ["o1@example.org", "o2@example.org"])
    assert settings.smtp_url is None
    assert send_due(settings, db, day=DAY, clock=clock).sent == 2
    files = sorted(settings.outbox_dir.glob("*.eml"))
    assert all(re.fullmatch(r"daily\.2026-11-24\.s[12]\.[0-9a-f]{12}@localhost\.eml", f.name) for f in files)
    assert len(files) == 2 and not list(settings.outbox_dir.glob(".tmp-*"))
    from email import message_from_bytes, policy

    msg = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" and msg.get_body(("html",)) is not None
    box = mailer.OutboxTransport(settings.outbox_dir)
    box.send(mailer.OutgoingMessage("digest@localhost", str(msg["To"]), str(msg["Message-ID"]), b"again"))
    assert files[0].read_bytes() == b"again"  # a resend replaces the same file
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 2


def test_smtp_urls() -> None:
    c = mailer.SmtpConfig.parse("smtp://user%40x:p%3Ass@mail.example.org:2525?starttls=1&timeout=5")
    assert (c.host, c.port, c.starttls, c.implicit_tls, c.username, c.password, c.timeout) == (
        "mail.example.org",
        2525,
        True,
        False,
        "user@x",
        "p:ss",
        5.0,
    )
    assert "p:ss" not in c.describe()
    assert mailer.SmtpConfig.parse("smtps://mail.example.org").port == 465
    assert mailer.SmtpConfig.parse("smtp://mail.example.org?starttls=1").port == 587
    assert mailer.SmtpConfig.parse("smtp://mail.example.org").port == 25
    for bad in ("http://x", "smtp://", "smtps://h?starttls=1", "smtp://h:99999", "smtp://h?timeout=soon"):
        with pytest.raises(ValueError):
            mailer.SmtpConfig.parse(bad)


def test_messages_refuse_header_injection() -> None:
    for to, subject in (("a@b.c\r\nBcc: x@y.z", "hi"), ("a@b.c", "hi\r\nBcc: x@y.z"), ("a@b.c", "hi\nX: y")):
        with pytest.raises(ValueError):
            mailer.build_message(
                sender="p <d@localhost>", to=to, subject=subject, text="t", html=None, message_id="<m@localhost>"
            )


def test_dry_run_composes_without_writing(db: Database, mail_settings: Settings, smtp_sink: SmtpSink) -> None:
    from paperfeed.digest.send import preview_due

    seed_feed(db)
    activate(db, ["dry@example.org"])
    report = preview_due(mail_settings, db, day=DAY)
    assert report.preview == [{"email": "dry@example.org", "period": "daily:2026-11-24", "papers": 12}]
    assert ledger(db) == {} and smtp_sink.count() == 0
    composer = Composer(mail_settings, db)
    period = daily_period(DAY)
    assert composer.choose(period, Topic(), set())
    everything = composer.candidate_ids(period, Topic())
    assert composer.choose(period, Topic(), everything) == []  # all already mailed: nothing to send


def test_a_sender_that_loses_its_lease_stops(
    db: Database, mail_settings: Settings, smtp_sink: SmtpSink, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_feed(db)
    activate(db, [f"l{i}@example.org" for i in range(6)])
    monkeypatch.setattr("paperfeed.digest.send.KEEPALIVE_S", 0.0)  # renew before every message

    class Stalling(mailer.SMTPTransport):
        n = 0

        def send(self, msg: mailer.OutgoingMessage) -> None:
            super().send(msg)
            Stalling.n += 1
            if Stalling.n == 2:  # the server stalls past the lease; another process takes over
                clock.advance(minutes=5)
                assert Lease(db, LEASE_NAME, holder="other-host:1:x", ttl=timedelta(minutes=2), clock=clock).acquire()

    report = send_due(
        mail_settings,
        db,
        day=DAY,
        clock=clock,
        transport=Stalling(mailer.SmtpConfig.parse(smtp_sink.url)),
        options=SendOptions(connections=1),
    )
    assert report.lease_lost and report.sent == 2
    assert ledger(db) == {"sent": 2, "retry": 4}  # the rest waits for the lease holder
    assert smtp_sink.count() == 2
