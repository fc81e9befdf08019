"""Fault drill: the PostgreSQL server goes away under a running ``paperfeed serve`` and comes back.

A real ``paperfeed serve`` process on a throwaway PostgreSQL of its own (stopped and started
here, so the session's shared server is not touched). While the database is down every request
that needs it - pages, JSON, writes - gets a prompt ``503`` with ``Retry-After`` and a plain
message (no traceback, no hang); once the database is back the same process serves again by
itself, and every write that was acknowledged (2xx) before and after the outage is in the
database. The timing figures (recovery within 5 s under 50 connections) are in
``bench/drill_pg_restart.py``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from paperfeed.community import accounts
from paperfeed.community.core import Community, User, user_row_by_name
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import comments, subscriptions, users, votes

from . import factories as f
from .pgserver import PgServer
from .servers import ServeProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# A request that hangs longer than this fails the test as a hang (the outage answer must be prompt).
HANG_S = 15.0


@dataclass
class Site:
    pg: PgServer
    url: str  # database URL
    server: ServeProcess
    token: str
    papers: list[str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, own_pg: PgServer) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("outage")
    url = own_pg.create_database("outage")
    db = Database(url)
    db.migrate()
    papers = [f.add_paper(db)["id"] for _ in range(4)]
    for pid in papers:
        f.add_daily(db, pid, date(2025, 1, 15))
    settings = Settings(home=tmp / "home", secret_key="outage-secret", database_url=url)
    f.add_user(db, "writer")
    c = Community(settings=settings, db=db)
    token, _ = accounts.create_api_token(c, User.from_row(user_row_by_name(c, "writer")), "drill")
    db.dispose()
    env = {
        "PAPERFEED_HOME": str(tmp / "home"),
        "PAPERFEED_DATABASE_URL": url,
        "PAPERFEED_SECRET_KEY": "outage-secret",
    }
    with ServeProcess(env, tmp / "serve.log") as server:
        yield Site(own_pg, url, server, token, papers)


def _client(site: Site) -> httpx.Client:
    return httpx.Client(base_url=site.server.url, timeout=HANG_S, headers={"Authorization": f"Bearer {site.token}"})


def _writes(client: httpx.Client, browser: httpx.Client, csrf: str, paper: str, tag: str) -> list[httpx.Response]:
    """An upvote and a comment (JSON API, token) and a digest sign-up (the site's form)."""
    return [
        client.post(f"/api/papers/{paper}/upvote"),
        client.post(f"/api/papers/{paper}/comments", json={"comment": f"comment {tag}"}),
        browser.post(
            "/digest/subscribe", data={"email": f"{tag}@example.org", "frequency": "daily", "csrf_token": csrf}
        ),
    ]


def test_outage_answers_503_fast_and_recovers_without_losing_acknowledged_writes(site: Site) -> None:
    with _client(site) as client, httpx.Client(base_url=site.server.url, timeout=HANG_S) as browser:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/digest/subscribe").text).group(1)
        before = _writes(client, browser, csrf, site.papers[0], "before")
        assert [r.status_code for r in before] == [200, 201, 200]

        site.pg.pause()
        try:
            answers = {
                "feed page": client.get("/", headers={"Authorization": ""}),
                "feed json": client.get("/api/daily_papers"),
                "paper page": client.get(f"/papers/{site.papers[1]}", headers={"Authorization": ""}),
                "upvote": client.post(f"/api/papers/{site.papers[1]}/upvote"),
                "comment": client.post(f"/api/papers/{site.papers[1]}/comments", json={"comment": "lost?"}),
                "sign-up form": browser.post(
                    "/digest/subscribe", data={"email": "during@example.org", "frequency": "daily", "csrf_token": csrf}
                ),
            }
            for what, r in answers.items():
                assert r.status_code == 503, (what, r.status_code, r.text[:300])
                assert int(r.headers["Retry-After"]) > 0, what
                assert "Traceback" not in r.text and "psycopg" not in r.text, what
            assert "database" in answers["feed json"].json()["detail"].lower()
            assert "text/html" in answers["feed page"].headers["content-type"]
            assert "database" in answers["feed page"].text.lower()
        finally:
            site.pg.resume()

        # The same process serves again by itself (no restart): poll until it does.
        deadline = time.monotonic() + 60
        while client.get("/api/daily_papers").status_code != 200:
            assert time.monotonic() < deadline, "the server did not recover after the database came back"
            time.sleep(0.2)
        after = _writes(client, browser, csrf, site.papers[2], "after")
        assert [r.status_code for r in after] == [200, 201, 200]

    # Every acknowledged write is in the database; the refused ones are not.
    db = Database(site.url)
    try:
        with db.read() as conn:
            voted = set(conn.execute(select(votes.c.paper_id)).scalars())
            bodies = set(conn.execute(select(comments.c.body)).scalars())
            assert conn.execute(select(users.c.id)).first() is not None
            emails = set(conn.execute(select(subscriptions.c.email)).scalars())
    finally:
        db.dispose()
    assert voted == {site.papers[0], site.papers[2]}
    assert bodies == {"comment before", "comment after"}
    assert emails == {"before@example.org", "after@example.org"}


def test_serve_log_has_no_traceback_for_an_outage(site: Site) -> None:
    """The operator's log says the database is unreachable, once per burst, not a traceback per request."""
    log: Path = site.server.log
    text = log.read_text()
    assert "database unavailable" in text.lower()
    assert "Traceback" not in text
