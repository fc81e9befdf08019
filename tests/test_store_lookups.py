"""The author/category lookup tables: refresh is incremental, resumable and safe to run from
several workers at once; readers give the same answers before and after it."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select, update

from paperfeed.ingest.arxiv_file import import_arxiv_file
from paperfeed.ingest.hf_daily import import_hf_daily
from paperfeed.store import feed_queries, lookups
from paperfeed.store.db import utcnow
from paperfeed.store.schema import paper_authors, paper_categories, papers

from . import factories as f
from .ingest_helpers import HF_DIR, KAGGLE


def _counts(db) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with db.read() as conn:
        return (
            conn.scalar(select(func.count()).select_from(paper_authors)),
            conn.scalar(select(func.count()).select_from(paper_categories)),
        )


def test_normalise_name() -> None:
    assert lookups.normalise_name("  Zoë   MÜLLER ") == "zoe muller"
    assert lookups.normalise_name("Ann Lee") != lookups.normalise_name("Ann Leeds")


def test_every_import_leaves_the_tables_current(any_db) -> None:
    """The importers refresh the tables at their end themselves: a library call, with no CLI
    around it, leaves author pages and category feeds nothing to catch up on."""
    with any_db.read() as conn:
        assert lookups.watermark(conn) is None
    assert import_arxiv_file(any_db, KAGGLE, progress=False).inserted == 20
    with any_db.read() as conn:
        assert lookups.backlog(conn) == 0
    after_arxiv = _counts(any_db)
    assert after_arxiv[0] >= 20 and after_arxiv[1] >= 20
    assert import_hf_daily(any_db, HF_DIR / "2026-04-10.json", progress=False).inserted > 0
    with any_db.read() as conn:
        assert lookups.backlog(conn) == 0
    after_hf = _counts(any_db)
    assert after_hf[0] > after_arxiv[0]  # HF entries carry authors (their categories come from arXiv)


def test_refresh_is_incremental(any_db) -> None:
    f.add_papers(any_db, [f.make_paper() for _ in range(30)])
    assert lookups.refresh(any_db, batch_size=7, margin=timedelta(0)) == 30
    assert _counts(any_db) == (90, 60)
    assert lookups.refresh(any_db, margin=timedelta(0)) == 0  # nothing changed
    one = f.add_paper(any_db, authors=["Solo Author"], categories="math.CO")
    assert lookups.refresh(any_db, margin=timedelta(0)) == 1
    assert _counts(any_db) == (91, 61)
    with any_db.write() as conn:  # a re-import changes a paper: its rows are replaced, not added
        conn.execute(update(papers).where(papers.c.id == one["id"]).values(authors=["A", "B"], modified_at=utcnow()))
    lookups.refresh(any_db, margin=timedelta(0))
    assert _counts(any_db) == (92, 61)
    with any_db.read() as conn:
        assert feed_queries.author_papers(conn, "b", limit=5, offset=0)[1] == 1
        assert [r["id"] for r in feed_queries.category_latest(conn, "math.CO")] == [one["id"]]


def test_concurrent_refreshes_all_succeed(any_db) -> None:
    f.add_papers(any_db, [f.make_paper() for _ in range(400)])
    errors: list[BaseException] = []

    def run() -> None:
        try:
            lookups.refresh(any_db, batch_size=50, margin=timedelta(0))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _counts(any_db) == (1200, 800)


def test_the_default_margin_keeps_recent_papers_checked_directly(db) -> None:
    p = f.add_paper(db, authors=["Fresh Author"])
    lookups.refresh(db)  # the watermark stays a minute behind: the paper is still "recent"
    with db.read() as conn:
        rows, total, backlog = feed_queries.author_papers(conn, "Fresh Author", limit=5, offset=0)
        assert total == 1 and backlog == 1 and rows[0]["id"] == p["id"]


def test_data_version_moves_when_a_vote_and_an_unvote_cancel_out(any_db) -> None:  # type: ignore[no-untyped-def]
    """One user's unvote plus another's vote keeps the vote count; cached pages must still change."""
    from paperfeed.store import community_store

    paper = f.add_paper(any_db)
    ann, bob = f.add_user(any_db, "ann"), f.add_user(any_db, "bob")
    with any_db.write() as conn:
        community_store.add_vote(conn, ann, paper["id"], utcnow())
    with any_db.read() as conn:
        before = feed_queries.data_version(conn)
    with any_db.write() as conn:
        community_store.remove_vote(conn, ann, paper["id"])
        community_store.add_vote(conn, bob, paper["id"], utcnow())
    with any_db.read() as conn:
        assert feed_queries.data_version(conn) != before
