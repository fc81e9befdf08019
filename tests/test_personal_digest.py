"""The digest's personal sections (issue 14), over SMTP on loopback: a "For you" section with
only the papers above the user's relevance threshold and why each is there (none rather than
filler), a "Following" section, and the user's exclusions applied to the rest of the digest."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from paperfeed.community.core import Community
from paperfeed.config import Settings
from paperfeed.digest import subscriptions as subs
from paperfeed.digest.send import send_due
from paperfeed.library import collections
from paperfeed.personal import follows
from paperfeed.personal import settings as personal_settings
from paperfeed.store.db import Database

from . import factories as f
from . import smtp
from .community_util import make_user
from .smtp import SmtpSink

smtp_sink = smtp.smtp_sink
DAY = date(2026, 11, 24)  # daily:2026-11-24 covers Monday the 23rd
FEED_DAY = date(2026, 11, 23)
GNN = "graph neural networks message passing over molecular graphs node embeddings"
TOPICS = [
    "protein folding",
    "quantum error correction",
    "speech recognition",
    "robot grasping",
    "weak lensing",
    "loop compilers",
    "auction design",
    "glacier melt",
    "sparse solvers",
    "music generation",
    "fluid mixing",
    "crop yields",
    "database indexes",
    "malware detection",
    "ocean currents",
    "dark matter halos",
]


@pytest.mark.slow  # fits per-user models (liblinear) several times
def test_for_you_and_following_sections(db: Database, settings: Settings, smtp_sink: SmtpSink) -> None:
    mail_settings = replace(settings, smtp_url=smtp_sink.url, base_url="https://paperfeed.example")
    c = Community(settings=mail_settings, db=db)
    lib = [
        f.add_paper(
            db,
            title=f"Graph message passing {i}",
            abstract=f"We study {GNN} ({i}).",
            listed=FEED_DAY - timedelta(days=30 + i),
        )
        for i in range(4)
    ]
    good = f.add_paper(
        db,
        title="Faster graph neural networks",
        abstract=f"Better {GNN}.",
        listed=FEED_DAY,
        authors=["Grace Hopper"],
        categories="cs.LG",
    )
    noise = [
        f.add_paper(
            db,
            title=f"Tidal friction in binary stars {i}",
            abstract=f"Orbital decay of stars {i}.",
            listed=FEED_DAY,
            authors=["Someone"],
            categories="astro-ph.SR",
        )
        for i in range(12)
    ]
    folding = f.add_paper(
        db,
        title="Advances in protein folding",
        abstract="We report on protein folding and glacier melt.",
        listed=FEED_DAY,
        authors=["Grace Hopper"],
        categories="physics.gen-ph",
    )
    for p in [good, folding, *noise]:
        f.add_daily(db, p["id"], FEED_DAY)
    for i in range(80):  # recent papers on other topics: the background the model is fitted against
        t = TOPICS[i % len(TOPICS)]
        f.add_paper(
            db,
            title=f"Advances in {t} {i}",
            abstract=f"We report on {t} and {TOPICS[(i * 7) % 16]} ({i}).",
            listed=FEED_DAY - timedelta(days=1 + i % 20),
            authors=["Someone"],
            categories="physics.gen-ph",
        )
    alice = make_user(c, "alice")  # address alice@example.org, confirmed
    for p in lib:
        collections.add_paper(c, alice, p["id"])
    follows.follow(c, alice, "author", "Grace Hopper")
    personal_settings.update(
        c,
        alice,
        digest_for_you=True,
        digest_threshold=0.9,
        digest_following=True,
        exclude_words="tidal",
        filter_digest=True,
    )
    subs.bulk_activate(
        db, [(e, subs.Prefs()) for e in ("alice@example.org", "bob@example.org")], now=datetime(2026, 1, 1)
    )

    report = send_due(mail_settings, db, day=DAY, clock=lambda: datetime(2026, 11, 24, 9, 0))
    assert report.sent == 2
    by_rcpt = {m.rcpt_tos[0]: m.msg for m in smtp_sink.messages}
    text = by_rcpt["alice@example.org"].get_body(("plain",)).get_content()
    html = by_rcpt["alice@example.org"].get_body(("html",)).get_content()
    for_you = text.split("== For you ==", 1)[1].split("==", 1)[0]
    assert (
        "Faster graph neural networks" in for_you
        and "Why: from Grace Hopper, an author you follow; close to" in for_you
    )
    assert "protein folding" not in for_you  # below the threshold: none rather than filler
    following = text.split("== From what you follow ==", 1)[1].split("==", 1)[0]
    assert "Advances in protein folding" in following and "Faster graph" not in following
    assert "Why: from Grace Hopper, an author you follow" in following
    assert "Tidal friction" not in text  # her excluded word leaves the rest of her digest too
    assert "For you" in html and "Why: from Grace Hopper, an author you follow; close to" in html
    bob = by_rcpt["bob@example.org"].get_body(("plain",)).get_content()
    assert "== For you ==" not in bob and "Tidal friction" in bob  # nobody else's digest changes
