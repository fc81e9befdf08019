"""Test data builders: insert papers, daily entries and users directly (for unit tests that
should not depend on an importer). Integration tests use the real importers instead."""

from __future__ import annotations

import hashlib
import itertools
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from paperfeed.store.db import Database, new_id, utcnow
from paperfeed.store.schema import daily_entries, papers, users

_seq = itertools.count(1)


def make_paper(**overrides: Any) -> dict[str, Any]:
    n = next(_seq)
    title = overrides.get("title", f"Paper number {n} on efficient transformers")
    abstract = overrides.get("abstract", f"We study problem {n}. Our method improves accuracy by {n % 7} points.")
    now = utcnow()
    row: dict[str, Any] = {
        "id": f"2501.{n:05d}",
        "version": 1,
        "title": title,
        "abstract": abstract,
        "authors": ["Ada Lovelace", "Alan Turing", f"Author {n}"],
        "categories": "cs.LG cs.AI",
        "primary_category": "cs.LG",
        "comments": None,
        "doi": None,
        "journal_ref": None,
        "license": None,
        "submitter": None,
        "published": date(2025, 1, 15),
        "updated": date(2025, 1, 15),
        "listed": date(2025, 1, 16),
        "github_repo": None,
        "github_stars": None,
        "project_page": None,
        "imported_upvotes": 0,
        "upvotes": 0,
        "num_comments": 0,
        "content_hash": hashlib.sha256(f"{title}\n{abstract}".encode()).hexdigest(),
        "arxiv_hash": None,
        "hf_hash": None,
        "created_at": now,
        "modified_at": now,
    }
    row.update(overrides)
    if "content_hash" not in overrides:
        row["content_hash"] = hashlib.sha256(f"{row['title']}\n{row['abstract']}".encode()).hexdigest()
    return row


def add_papers(db: Database, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with db.write() as conn:
        conn.execute(insert(papers), rows)
    return rows


def add_paper(db: Database, **overrides: Any) -> dict[str, Any]:
    return add_papers(db, [make_paper(**overrides)])[0]


def add_daily(
    db: Database, paper_id: str, feed_date: date, submitter: str = "someone", source: str = "hf", **extra: Any
) -> None:
    with db.write() as conn:
        conn.execute(
            insert(daily_entries),
            {
                "paper_id": paper_id,
                "feed_date": feed_date,
                "submitter": submitter,
                "submitted_at": datetime.combine(feed_date, datetime.min.time()) + timedelta(hours=9),
                "source": source,
                **extra,
            },
        )


def add_user(db: Database, username: str, role: str = "user", email: str | None = None) -> int:
    """An account with a confirmed address (as the operator or an older database would have it)."""
    now = utcnow()
    with db.write() as conn:
        res = conn.execute(
            insert(users).values(
                username=username, email=email or f"{username}@example.org", role=role, created_at=now,
                verified_at=now,
            )
        )  # fmt: skip
        return new_id(res)
