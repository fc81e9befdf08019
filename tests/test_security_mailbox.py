"""Mail floods (issue 10, item 7): every mail sent because somebody typed an address is capped per
*mailbox*, not per spelling - ``victim+0@``...``victim+11@`` and ``VICTIM@`` are one inbox."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from paperfeed.community import accounts
from paperfeed.config import Settings
from paperfeed.digest import subscriptions as subs
from paperfeed.mail.mailbox import MAIL_BURST, MAILS_PER_DAY, mailbox_key
from paperfeed.store.db import Database
from paperfeed.store.schema import deliveries
from paperfeed.web.app import create_app

from . import smtp
from .community_util import FakeClock, community
from .smtp import SmtpSink

smtp_sink = smtp.smtp_sink


@pytest.mark.parametrize(
    ("address", "mailbox"),
    [
        ("victim@example.org", "victim@example.org"),
        ("Victim+digest-3@EXAMPLE.org", "victim@example.org"),
        ("victim+@example.org", "victim@example.org"),
        ("jean-luc.picard@example.org", "jean-luc.picard@example.org"),  # '-' and '.' are the name
        ("J.Doe+x@gmail.com", "jdoe@gmail.com"),  # Gmail ignores dots
        ("j.doe@googlemail.com", "jdoe@gmail.com"),
        ("+tag@example.org", "+tag@example.org"),  # nothing before the '+': keep it whole
    ],
)
def test_mailbox_key(address: str, mailbox: str) -> None:
    assert mailbox_key(address) == mailbox


def _confirmations(db: Database) -> int:
    with db.read() as conn:
        return int(
            conn.scalar(select(func.count()).select_from(deliveries).where(deliveries.c.period.like("confirm:%")))
        )


def test_plus_addresses_cannot_flood_one_mailbox_with_digest_confirmations(any_db: Database) -> None:
    t0 = datetime(2030, 1, 1, 12, 0)
    queued = [subs.request_subscription(any_db, f"victim+{i}@example.org", subs.Prefs(), now=t0) for i in range(12)]
    queued.append(subs.request_subscription(any_db, "VICTIM@example.org", subs.Prefs(), now=t0))
    assert sum(q is not None for q in queued) == MAIL_BURST == 5
    assert _confirmations(any_db) == MAIL_BURST
    # Another mailbox is not affected, and the capped one refills slowly (10 a day).
    assert subs.request_subscription(any_db, "someone@example.org", subs.Prefs(), now=t0) is not None
    later = t0 + timedelta(days=1) / MAILS_PER_DAY
    assert subs.request_subscription(any_db, "victim+12@example.org", subs.Prefs(), now=later) is not None
    assert subs.request_subscription(any_db, "victim+13@example.org", subs.Prefs(), now=later) is None


def _reset_mails(settings: Settings) -> int:
    return len(list(settings.outbox_dir.glob("*.eml"))) if settings.outbox_dir.exists() else 0


def test_plus_addresses_cannot_flood_one_mailbox_with_reset_mails(db: Database, settings: Settings) -> None:
    c = community(settings, db, FakeClock())
    for i in range(12):  # twelve accounts an operator made, one mailbox behind them
        accounts.create_account(c, f"victim{i}", f"victim+{i}@example.org", "a long password")
    for i in range(12):
        accounts.request_reset(c, f"victim+{i}@example.org", ip=f"198.51.100.{i}")()
    assert _reset_mails(settings) == MAIL_BURST


def test_the_digest_form_cannot_flood_one_mailbox(db: Database, settings: Settings, smtp_sink: SmtpSink) -> None:
    app = create_app(replace(settings, smtp_url=smtp_sink.url, pipeline=False), db)
    pages = set()
    for i in range(12):  # rotating client addresses: the per-IP limit does not help here
        client = TestClient(app, client=(f"198.51.100.{i}", 5000), raise_server_exceptions=False)
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/digest/subscribe").text)
        assert token is not None
        r = client.post("/digest/subscribe", data={"email": f"victim+{i}@example.org", "csrf_token": token.group(1)})
        assert r.status_code == 200
        pages.add(re.sub(r"victim\+\d+@example\.org|value=\"[^\"]*\"|nonce-?[A-Za-z0-9_\-=\"]+", "", r.text))
    assert len(pages) == 1  # the same answer whether or not a mail went out
    assert len({m.rcpt_tos[0] for m in smtp_sink.messages}) == len(smtp_sink.messages) == MAIL_BURST
