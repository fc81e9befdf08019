"""Helpers for the web tests: an app + client over a test database, and a small seeded feed."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient

from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.web.app import create_app

from . import factories as f

DAY = date(2025, 1, 15)
PREV_DAY = date(2025, 1, 13)


def client(settings: Settings, db: Database, **kw: Any) -> TestClient:
    # raise_server_exceptions=False: a 5xx must show up as a status the test asserts on.
    return TestClient(create_app(settings, db, **kw), raise_server_exceptions=False)


def seed(db: Database) -> dict[str, Any]:
    """Two feed days: three visible papers and one hidden on DAY, one paper on PREV_DAY."""
    top = f.add_paper(
        db,
        title="Sparse attention for long context",
        imported_upvotes=40,
        upvotes=2,
        github_repo="https://github.com/ex/sparse",
        github_stars=1200,
        authors=["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov"],
    )
    mid = f.add_paper(db, title="Scaling laws for $\\alpha$-divergence training", imported_upvotes=12)
    low = f.add_paper(db, title="A small <b>benchmark</b> & friends", imported_upvotes=1, abstract="Tiny $x<y$ data.")
    hidden = f.add_paper(db, title="Hidden spam paper", imported_upvotes=999)
    old = f.add_paper(
        db,
        title="Earlier paper on graph networks",
        imported_upvotes=7,
        published=date(2025, 1, 10),
        listed=date(2025, 1, 13),
        categories="cs.CV cs.LG",
        primary_category="cs.CV",
    )
    for p in (top, mid, low):
        f.add_daily(db, p["id"], DAY, submitter="alice")
    f.add_daily(db, hidden["id"], DAY, submitter="spammer", hidden=True, hidden_reason="spam")
    f.add_daily(db, old["id"], PREV_DAY, submitter="bob")
    return {"top": top, "mid": mid, "low": low, "hidden": hidden, "old": old}
