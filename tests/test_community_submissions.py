"""Submissions: any arXiv id form, unknown papers fetched with OAI-PMH GetRecord from a local
replay server, one entry per paper, the window, the daily quota, and the write API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, datetime

import pytest
from sqlalchemy import event, func, select

from paperfeed.community import accounts, moderation, submissions
from paperfeed.community.errors import CommunityError, Conflict, NotFound, RateLimited
from paperfeed.config import Settings
from paperfeed.records import PaperRecord
from paperfeed.store.db import Database
from paperfeed.store.schema import daily_entries, papers

from . import factories as f
from .community_util import FakeClock, community, make_user, unlimited, web
from .oai_server import OAIReplayServer, Reply

GET = {"verb": "GetRecord", "identifier": "oai:arXiv.org:2604.07429"}
NOW = datetime(2026, 4, 15, 12, 0)


@pytest.fixture
def oai() -> Iterator[OAIReplayServer]:
    server = OAIReplayServer().start()
    server.route(GET, Reply(fixture="get_record.xml"))
    server.route({"verb": "GetRecord"}, Reply(fixture="id_does_not_exist.xml"))
    yield server
    server.stop()


def _entries(db: Database) -> list[tuple[str, date, str, str]]:
    with db.read() as conn:
        rows = conn.execute(select(daily_entries).order_by(daily_entries.c.id))
        return [(r.paper_id, r.feed_date, r.submitter, r.source) for r in rows]


def test_unknown_paper_is_fetched_and_enters_todays_feed(any_db: Database, settings: Settings,
                                                        oai: OAIReplayServer) -> None:  # fmt: skip
    c = community(replace(settings, oai_url=oai.url), any_db, FakeClock(NOW), unlimited())
    alice = make_user(c, "alice")
    done = submissions.submit(c, alice, "https://arxiv.org/abs/2604.07429v1", ip="10.0.0.1")
    assert done.as_json() == {"paperId": "2604.07429", "title": done.title, "feedDate": "2026-04-15", "fetched": True}
    assert done.title.startswith("GameWorld")
    assert _entries(any_db) == [("2604.07429", date(2026, 4, 15), "alice", "local")]
    with any_db.read() as conn:
        row = conn.execute(select(papers).where(papers.c.id == "2604.07429")).one()
    assert row.published == date(2026, 4, 8) and row.authors[0] == "Mingyu Ouyang"
    n = len(oai.requests)
    with pytest.raises(Conflict, match="already on the daily feed"):
        submissions.submit(c, make_user(c, "bob"), "arXiv:2604.07429", ip=None)
    assert len(oai.requests) == n  # known papers are not fetched again
    with pytest.raises(NotFound, match="arXiv has no paper 2604.99999"):
        submissions.submit(c, alice, "2604.99999", ip=None)
    with pytest.raises(CommunityError, match="not a valid arXiv id"):
        submissions.submit(c, alice, "2604.07429'; DROP TABLE papers; --", ip=None)
    assert len(oai.requests) == n + 1
    with any_db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(papers)) == 1


@pytest.mark.parametrize("form", ["2604.00007", "2604.00007v3", "arXiv:2604.00007", "https://arxiv.org/pdf/2604.00007v2",
                                  " http://arxiv.org/abs/2604.00007 "])  # fmt: skip
def test_every_id_form_names_the_same_paper(db: Database, settings: Settings, form: str) -> None:
    c = community(settings, db, FakeClock(NOW), unlimited())
    f.add_paper(db, id="2604.00007", published=date(2026, 4, 10))
    done = submissions.submit(c, make_user(c, "alice"), form)
    assert (done.paper_id, done.fetched) == ("2604.00007", False)


def test_window_quota_and_admins(any_db: Database, settings: Settings) -> None:
    clock = FakeClock(NOW)
    c = community(replace(settings, submissions_per_day=2, submission_window_days=14), any_db, clock, unlimited())
    alice, admin = make_user(c, "alice"), make_user(c, "admin", role="admin")
    old = f.add_paper(db := any_db, id="2603.00001", published=date(2026, 3, 31))
    fresh = [f.add_paper(db, id=f"2604.0000{i}", published=date(2026, 4, 10)) for i in range(1, 5)]
    with pytest.raises(CommunityError, match="last 14 days"):
        submissions.submit(c, alice, old["id"])
    submissions.submit(c, alice, fresh[0]["id"])
    submissions.submit(c, alice, fresh[1]["id"])
    with pytest.raises(RateLimited, match="today's 2 submissions") as exc:
        submissions.submit(c, alice, fresh[2]["id"])
    assert exc.value.retry_after == 12 * 3600
    submissions.submit(c, admin, old["id"])  # admins: no window, no quota
    clock.advance(hours=12)
    done = submissions.submit(c, alice, fresh[2]["id"])  # a new day, a new quota
    assert done.feed_date == "2026-04-16"
    moderation.set_entry_hidden(c, admin, fresh[0]["id"], True, "duplicate")
    with pytest.raises(Conflict, match="removed from the daily feed by a moderator"):
        submissions.submit(c, admin, fresh[0]["id"])


def test_arxiv_unreachable_loses_nothing(db: Database, settings: Settings) -> None:
    c = community(replace(settings, oai_url="http://127.0.0.1:9/oai"), db, FakeClock(NOW), unlimited())
    with pytest.raises(CommunityError) as exc:
        submissions.submit(c, make_user(c, "alice"), "2604.07429")
    assert exc.value.status == 502 and "could not be reached" in exc.value.message
    assert _entries(db) == []


def test_concurrent_submissions_of_one_paper_make_one_entry(any_db: Database, settings: Settings) -> None:
    c = community(settings, any_db, FakeClock(NOW), unlimited())
    p = f.add_paper(any_db, id="2604.00042", published=date(2026, 4, 12))
    users = [make_user(c, f"user{i}") for i in range(8)]

    def go(user):  # type: ignore[no-untyped-def]
        try:
            submissions.submit(c, user, p["id"])
            return "ok"
        except Conflict:
            return "conflict"

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(go, users))
    assert sorted(results) == ["conflict"] * 7 + ["ok"]
    assert len(_entries(any_db)) == 1


def test_two_users_submitting_the_same_new_paper_at_once(any_db: Database, settings: Settings) -> None:
    """Both see the paper is unknown and fetch it before either stores it (a barrier in the fetch,
    both backends); on PostgreSQL both also look for it inside their write transactions before
    either inserts (a second barrier). Every barrier must really be met: a broken one fails the
    test instead of letting the two run one after the other. One entry, one clear 409."""
    c = community(settings, any_db, FakeClock(NOW), unlimited())
    users = [make_user(c, "alice"), make_user(c, "bob")]
    both_fetched = threading.Barrier(2, timeout=30)
    both_looked = threading.Barrier(2, timeout=30)
    looked = threading.local()
    met: list[str] = []

    def fetch(_settings, pid):  # type: ignore[no-untyped-def]
        both_fetched.wait()  # raises BrokenBarrierError if the other never got here
        met.append("fetch")
        return PaperRecord(id=pid, title="Fresh paper", abstract="New.", authors=["A. Author"], categories="cs.LG",
                           published=date(2026, 4, 14))  # fmt: skip

    def after(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        # SQLite has one writer at a time, so there the second look comes after the first commit.
        if getattr(looked, "done", False) or "papers.id IN" not in statement:
            return
        if statement.lstrip().startswith("SELECT papers.id"):  # the upsert's look
            looked.done = True
            both_looked.wait()
            met.append("look")

    def go(user):  # type: ignore[no-untyped-def]
        try:
            return submissions.submit(c, user, "2604.05555", fetch=fetch).paper_id
        except Conflict as exc:
            return exc.message

    if not any_db.is_sqlite:
        event.listen(any_db.engine, "after_cursor_execute", after)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = sorted(pool.map(go, users))
    finally:
        if not any_db.is_sqlite:
            event.remove(any_db.engine, "after_cursor_execute", after)
    assert sorted(met) == (["fetch", "fetch"] if any_db.is_sqlite else ["fetch", "fetch", "look", "look"])
    assert results[0] == "2604.05555"
    assert "already on the daily feed" in results[1] or "just submitted" in results[1], results
    assert len(_entries(any_db)) == 1


def test_index_api(db: Database, settings: Settings, oai: OAIReplayServer) -> None:
    w = web(settings, db, FakeClock(NOW), unlimited(), oai_url=oai.url)
    token, _ = accounts.create_api_token(w.community, make_user(w.community, "alice"), "cli")
    auth = {"Authorization": f"Bearer {token}"}
    r = w.client.post("/api/papers/index", json={"arxivId": "arXiv:2604.07429"}, headers=auth)
    assert r.status_code == 201, r.text
    assert r.json()["paperId"] == "2604.07429" and r.json()["fetched"] is True
    r = w.client.post("/api/papers/index", json={"arxivId": "2604.07429"}, headers=auth)
    assert r.status_code == 409 and "already on the daily feed" in r.json()["detail"]
    r = w.client.post("/api/papers/index", json={"arxivId": "nonsense"}, headers=auth)
    assert r.status_code == 400 and "not a valid arXiv id" in r.json()["detail"]
    r = w.client.post("/api/papers/index", json={"wrong": 1}, headers=auth)
    assert r.status_code == 422
    r = w.client.post("/api/papers/index", json={"arxivId": "2604.07429"})
    assert r.status_code == 403  # no token, no CSRF token: refused before anything runs
    r = w.client.post("/api/papers/index", json={"arxivId": "2604.07429"}, headers={"Authorization": "Bearer pf_x"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    # The page: the submit form, through the browser path.
    w.sign_in("alice")
    r = w.post("/submit", {"arxiv_id": "2604.07429"})
    assert r.status_code == 409 and "already on the daily feed" in r.text
