"""The test factories produce rows that satisfy the schema on both backends."""

from datetime import date

from sqlalchemy import func, select

from paperfeed.store.schema import daily_entries, papers

from .factories import add_daily, add_paper, add_user


def test_factories_insert(any_db) -> None:
    p = add_paper(any_db, title="A <b>bold</b> title")
    add_daily(any_db, p["id"], date(2025, 1, 16))
    add_user(any_db, "alice")
    with any_db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(papers)) == 1
        assert conn.scalar(select(daily_entries.c.paper_id)) == p["id"]
        assert conn.scalar(select(papers.c.authors)) == ["Ada Lovelace", "Alan Turing", p["authors"][2]]
