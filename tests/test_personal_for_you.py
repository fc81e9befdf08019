"""/for-you (issue 14): recent papers ranked for the signed-in user from their library, with the
reasons on every card; "not interested", exclusions and reset change the ranking; the controls,
the JSON twin, the API (token scope read), the private for-you feed, and the daily-feed filter."""

from __future__ import annotations

from datetime import date, timedelta

import feedparser
import pytest

from paperfeed.community import accounts
from paperfeed.community.errors import CommunityError
from paperfeed.config import Settings
from paperfeed.library import collections, feedback
from paperfeed.personal import feed_tokens, follows, for_you
from paperfeed.personal import settings as personal_settings
from paperfeed.store.db import Database

from . import factories as f
from .community_util import make_user, web

DAY = date(2026, 4, 14)
GNN = "graph neural networks message passing over molecular graphs node embeddings"
OTHER = [
    "protein folding with cryo electron microscopy",
    "quantum error correction surface codes",
    "speech recognition for low resource languages",
    "robot grasping with tactile sensors",
    "galaxy cluster weak lensing surveys",
    "compiler optimisation of loop nests",
]


def _world(db: Database) -> dict[str, list[dict]]:
    """Older library papers on graph networks; recent candidates on graphs and on other topics."""
    lib = [
        f.add_paper(
            db,
            title=f"Message passing graph neural networks {i}",
            abstract=f"We study {GNN}, part {i}.",
            categories="cs.LG",
            listed=DAY - timedelta(days=40 + i),
        )
        for i in range(4)
    ]
    graph = [
        f.add_paper(
            db,
            title=f"Scalable graph neural networks {i}",
            abstract=f"New {GNN} results {i}.",
            categories="cs.LG",
            listed=DAY - timedelta(days=i % 3),
        )
        for i in range(3)
    ]
    other = [
        f.add_paper(
            db,
            title=f"On {t}",
            abstract=f"This paper is about {t}; experiment {i}.",
            categories="physics.gen-ph" if i % 2 else "cs.RO",
            listed=DAY - timedelta(days=i % 3),
        )
        for i, t in enumerate(OTHER * 3)
    ]
    return {"lib": lib, "graph": graph, "other": other}


def test_settings_are_validated_and_reset_forgets(db: Database, settings: Settings) -> None:
    w = web(settings, db)
    alice = make_user(w.community, "alice")
    c = w.community
    for change, words in [
        ({"popularity": 3.0}, "weight goes from 0 to 2"),
        ({"exclude_categories": "cs.LG, cs.LG!"}, "not an arXiv category"),
        ({"exclude_words": "x" * 61}, "at most 60 characters"),
        ({"digest_threshold": 0.2}, "threshold goes from"),
        ({"colour": "red"}, "Unknown setting"),
    ]:
        with pytest.raises(CommunityError, match=words):
            personal_settings.update(c, alice, **change)
    s = personal_settings.update(
        c,
        alice,
        popularity=0.5,
        exclude_words="Quantum, protein folding\nquantum",
        exclude_categories="cs.CR  stat.ML",
        learn_from_upvotes=False,
    )
    assert (s.popularity, s.exclude_words, s.exclude_categories) == (
        0.5,
        ("Quantum", "protein folding"),
        ("cs.CR", "stat.ML"),
    )
    assert s.excludes("A QUANTUM leap", "", []) and not s.excludes("Quantumness", "", ["cs.LG"])
    w.clock.advance(hours=1)
    r = personal_settings.reset(c, alice)
    assert (r.popularity, r.learn_from_upvotes, r.exclude_words, r.reset_at) == (
        personal_settings.DEFAULT_POPULARITY,
        True,
        ("Quantum", "protein folding"),
        w.clock.now,
    )


@pytest.mark.slow  # fits per-user models (liblinear) several times
def test_for_you_ranks_explains_and_learns(db: Database, settings: Settings) -> None:
    world = _world(db)
    w = web(settings, db)
    alice = make_user(w.community, "alice")
    c = w.community
    cold = for_you.for_you_view(c, alice)
    assert cold["cold_start"] is True and all(p["why"] for p in cold["papers"])
    for p in world["lib"]:
        collections.add_paper(c, alice, p["id"])
    view = for_you.for_you_view(c, alice)
    assert view["cold_start"] is False and view["signals"]["saved"] == 4
    ranked = [p["id"] for p in view["papers"]]
    graph_ids = {p["id"] for p in world["graph"]}
    assert set(ranked[:3]) == graph_ids, ranked[:5]  # the library's topic first
    assert not {p["id"] for p in world["lib"]} & set(ranked)  # what the user has is not offered again
    assert any("in your library" in why for why in view["papers"][0]["why"]), view["papers"][0]["why"]
    assert 0.0 <= view["papers"][-1]["relevance"] <= view["papers"][0]["relevance"] <= 1.0

    top = ranked[0]
    feedback.set_feedback(c, alice, top, "not_interested", True)
    after = [p["id"] for p in for_you.for_you_view(c, alice)["papers"]]
    assert top not in after and after != ranked
    personal_settings.update(c, alice, exclude_words="graph")
    assert not graph_ids & {p["id"] for p in for_you.for_you_view(c, alice)["papers"]}
    personal_settings.update(c, alice, exclude_words="")
    personal_settings.reset(c, alice)  # forgets the "not interested": the paper stays out, untrained on
    again = for_you.for_you_view(c, alice)
    assert top not in {p["id"] for p in again["papers"]} and again["signals"]["notInterested"] == 0
    follows.follow(c, alice, "author", "Ada Lovelace")  # the factory's first author on every paper
    assert for_you.for_you_view(c, alice)["papers"][0]["why"][0] == "from Ada Lovelace, an author you follow"


@pytest.mark.slow  # fits per-user models (liblinear) several times
def test_for_you_page_controls_api_and_private_feed(db: Database, settings: Settings) -> None:
    world = _world(db)
    w = web(settings, db)
    alice = make_user(w.community, "alice")
    for p in world["lib"]:
        collections.add_paper(w.community, alice, p["id"])
    assert w.client.get("/for-you", follow_redirects=False).headers["location"].startswith("/signin")
    assert w.client.get("/for-you.json").status_code == 401
    w.sign_in("alice")
    page = w.client.get("/for-you")
    assert page.status_code == 200 and page.headers["cache-control"] == "private, no-store"
    assert "in your library" in page.text and 'action="/for-you/settings"' in page.text
    data = w.client.get("/for-you.json").json()
    assert data["papers"][0]["id"] in {p["id"] for p in world["graph"]}
    r = w.post(
        "/for-you/settings",
        {
            "popularity": "0.4",
            "recency": "0",
            "exclude_categories": "cs.RO",
            "filter_daily": "1",
            "digest_for_you": "1",
            "digest_threshold": "0.8",
        },
    )
    assert (r.status_code, r.headers["location"]) == (303, "/for-you?done=saved#controls")
    data = w.client.get("/for-you.json").json()
    assert data["settings"]["popularity"] == 0.4 and data["settings"]["digest"] == {
        "forYou": True,
        "threshold": 0.8,
        "following": False,
    }
    assert not any("cs.RO" in p["categories"] for p in data["papers"])
    assert w.post("/for-you/settings", {"exclude_categories": "nope!"}).status_code == 400
    assert w.post("/for-you/reset").headers["location"] == "/for-you?done=reset#controls"

    # The daily feed leaves out the excluded category for alice only.
    robot = next(p for p in world["other"] if p["categories"] == "cs.RO")
    f.add_daily(db, robot["id"], DAY)
    assert robot["title"] not in w.client.get(f"/papers/date/{DAY}").text
    assert robot["title"] in web(settings, db).client.get(f"/papers/date/{DAY}").text

    token, _ = accounts.create_api_token(w.community, alice, "reader", ["read"])
    api = w.client.get("/api/v1/me/for-you", params={"limit": 3}, headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200 and len(api.json()["papers"]) == 3
    assert api.headers["cache-control"] == "private, no-store"
    voter, _ = accounts.create_api_token(w.community, alice, "voter", ["vote"])
    assert w.client.get("/api/v1/me/for-you", headers={"Authorization": f"Bearer {voter}"}).status_code == 403
    feed_token = feed_tokens.create(w.community, alice)
    parsed = feedparser.parse(web(settings, db).client.get(f"/feeds/u/{feed_token}/for-you.atom").content)
    assert not parsed.bozo and parsed.entries[0].summary.startswith("Why: ")
    assert parsed.feed.title == "For you · alice"
