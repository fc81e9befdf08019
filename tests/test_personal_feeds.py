"""Private feeds (issue 14): a user's Following feed at an unguessable token address, as Atom, RSS
and JSON, read by a real feed parser (feedparser) with no cookies; shown once, rotated, revoked
(410), unknown (404); the token is stored hashed and dies with a password change."""

from __future__ import annotations

import re
from datetime import date

import feedparser
from sqlalchemy import select

from paperfeed.community import accounts
from paperfeed.config import Settings
from paperfeed.personal import feed_tokens, follows
from paperfeed.store.db import Database
from paperfeed.store.schema import feed_tokens as feed_tokens_table

from . import factories as f
from .community_util import PASSWORD, make_user, web


def test_private_following_feeds(db: Database, settings: Settings) -> None:
    w = web(settings, db)
    p = f.add_paper(db, authors=["Ada Lovelace"], title="Engines <of> & thought", listed=date(2026, 4, 14))
    f.add_paper(db, authors=["Someone Else"], listed=date(2026, 4, 14))
    alice = make_user(w.community, "alice")
    follows.follow(w.community, alice, "author", "Ada Lovelace")
    w.sign_in("alice")
    r = w.post("/account/feed-token")
    assert r.status_code == 201 and r.headers["cache-control"] == "private, no-store"
    urls = sorted(set(re.findall(r"http://[^<\"]+/feeds/u/(pff_[A-Za-z0-9_\-]+)/following\.atom", r.text)))
    assert len(urls) == 1
    token = urls[0]
    with db.read() as conn:
        stored = conn.execute(select(feed_tokens_table.c.token_hash, feed_tokens_table.c.prefix)).one()
    assert token not in stored.token_hash and stored.prefix == token[:10]  # only a hash at rest
    assert token not in w.client.get("/account").text  # shown once

    reader = web(settings, db).client  # a feed reader: no cookies at all
    atom = reader.get(f"/feeds/u/{token}/following.atom")
    assert atom.headers["cache-control"] == "private, no-store" and "set-cookie" not in atom.headers
    parsed = feedparser.parse(atom.content)
    assert not parsed.bozo, parsed.bozo_exception
    assert [e.title for e in parsed.entries] == ["Engines <of> & thought"]
    assert parsed.entries[0].summary.startswith("Why: from Ada Lovelace, an author you follow")
    assert parsed.entries[0].link.endswith(f"/papers/{p['id']}")
    rss = feedparser.parse(reader.get(f"/feeds/u/{token}/following.rss").content)
    assert not rss.bozo and rss.version == "rss20" and [e.title for e in rss.entries] == ["Engines <of> & thought"]
    js = reader.get(f"/feeds/u/{token}/following.json").json()
    assert [(x["id"], x["why"]) for x in js["papers"]] == [(p["id"], ["from Ada Lovelace, an author you follow"])]

    assert reader.get(f"/feeds/u/{token}/following.pdf").status_code == 404
    assert reader.get("/feeds/u/pff_nope/following.atom").status_code == 404
    w.post("/account/feed-token")  # rotate: the old address is gone at once
    assert reader.get(f"/feeds/u/{token}/following.atom").status_code == 410
    new = feed_tokens.create(w.community, alice)
    assert reader.get(f"/feeds/u/{new}/following.atom").status_code == 200
    r = w.post("/account/feed-token/revoke")
    assert r.status_code == 303
    assert reader.get(f"/feeds/u/{new}/following.atom").status_code == 410
    newer = feed_tokens.create(w.community, alice)
    accounts.change_password(w.community, alice, PASSWORD, "another password 1", ip=None)
    assert reader.get(f"/feeds/u/{newer}/following.rss").status_code == 410
