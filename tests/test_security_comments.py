"""Issue 10 item 1: a comment's stored HTML cannot be inflated or broken out of its attributes by
forging the placeholders that stand for rendered formulas (``&#xe000;0&#xe001;`` decodes to the
private-use markers), and one comment's HTML is bounded (a clear 422 above the bound)."""

from __future__ import annotations

from datetime import date
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from paperfeed.cli import app as cli_app
from paperfeed.community import comments, moderation
from paperfeed.community.core import COMMAND_LINE
from paperfeed.config import Settings
from paperfeed.store import community_store
from paperfeed.store.db import Database
from paperfeed.store.schema import comments as comments_table

from . import factories as f
from .community_util import Web, make_user, unlimited, web

# 9,985 characters: one big formula, then 470 forged references to it.
AMPLIFY = "$" + r"\binom{a}{b}" * 166 + "$ " + "&#xe000;0&#xe001;" * 470
# A forged reference inside a link title: it used to become MathML (with quotes) inside title="...".
TITLE_BREAKOUT = '$x$ and [a link](https://example.org/ok "&#xe000;0&#xe001;")'
# Honest, but 2,400 formulas: about 130 KB of MathML from 9,600 characters.
MANY_FORMULAS = "$x$ " * 2400


@pytest.fixture
def paper(db: Database) -> dict:
    p = f.add_paper(db, title="A paper to discuss")
    f.add_daily(db, p["id"], date(2026, 4, 15))
    return p


def _signed_in(settings: Settings, db: Database) -> Web:
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    w.sign_in("alice")
    return w


def _api_comment(w: Web, paper_id: str, body: str) -> object:
    """The write API the way the site's own JavaScript calls it: session cookie + X-CSRF-Token."""
    token = w.token(f"/papers/{paper_id}")
    return w.client.post(f"/api/papers/{paper_id}/comments", json={"comment": body}, headers={"X-CSRF-Token": token})


def _stored(db: Database) -> list[str]:
    with db.read() as conn:
        return [r.body_html for r in conn.execute(select(comments_table.c.body_html))]


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a":
            self.anchors.append(dict(attrs))


def test_forged_formula_references_do_not_multiply_a_formula(db: Database, settings: Settings, paper: dict) -> None:
    w = _signed_in(settings, db)
    assert len(AMPLIFY) < comments.MAX_LENGTH
    r = _api_comment(w, paper["id"], AMPLIFY)
    assert r.status_code == 201, r.text[:300]
    html = r.json()["bodyHtml"]
    assert html.count("<math") == 1  # the one real formula; the forged references stay inert text
    assert len(html.encode()) <= comments.MAX_HTML_BYTES
    assert _stored(db) == [html]
    page = w.client.get(f"/papers/{paper['id']}")
    assert page.status_code == 200 and page.text.count("<math") == 1


def test_forged_reference_in_a_link_title_cannot_break_the_attribute(db: Database, settings: Settings,
                                                                     paper: dict) -> None:  # fmt: skip
    w = _signed_in(settings, db)
    r = _api_comment(w, paper["id"], TITLE_BREAKOUT)
    assert r.status_code == 201, r.text[:300]
    parsed = _Anchors()
    parsed.feed(r.json()["bodyHtml"])
    assert len(parsed.anchors) == 1, parsed.anchors
    a = parsed.anchors[0]
    assert a["href"] == "https://example.org/ok"
    assert a["rel"] == "nofollow ugc"
    assert "<" not in (a.get("title") or "") and ">" not in (a.get("title") or "")
    assert parsed.tags.count("math") == 1
    assert set(a) <= {"href", "title", "rel"}


def test_a_comment_whose_html_is_too_large_is_refused_with_a_message(db: Database, settings: Settings,
                                                                      paper: dict) -> None:  # fmt: skip
    w = _signed_in(settings, db)
    assert len(MANY_FORMULAS) < comments.MAX_LENGTH
    r = _api_comment(w, paper["id"], MANY_FORMULAS)
    assert r.status_code == 422, r.text[:300]
    assert "too large" in r.json()["detail"]
    r = w.post(f"/papers/{paper['id']}/comments", {"body": MANY_FORMULAS})  # the HTML form says the same
    assert r.status_code == 422 and "too large" in r.text
    with db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(comments_table)) == 0
    # Editing a short comment into a huge one is refused the same way (the form comes back with
    # the message and the text), and the stored comment stays as it was.
    r = _api_comment(w, paper["id"], "$x$ is small")
    assert r.status_code == 201
    before = _stored(db)
    r = w.post(f"/comments/{r.json()['id']}/edit", {"body": MANY_FORMULAS})
    assert r.status_code == 422 and "too large" in r.text and "<textarea" in r.text
    assert _stored(db) == before


def test_rerender_comments_repairs_html_stored_before_the_fix(db: Database, settings: Settings, paper: dict,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """An instance that stored inflated comments before the fix repairs them with one command."""
    w = web(settings, db, limits=unlimited())
    alice = make_user(w.community, "alice")
    now = w.clock()
    inflated = "<p>" + "<math><mi>x</mi></math>" * 20_000 + "</p>"  # what the old renderer stored
    with db.write() as conn:
        forged = community_store.insert_comment(conn, paper["id"], alice.id, None, AMPLIFY, inflated, now)
        heavy = community_store.insert_comment(conn, paper["id"], alice.id, None, MANY_FORMULAS, inflated, now)
        fine = community_store.insert_comment(conn, paper["id"], alice.id, None, "*ok* $x$",
                                              comments.render_markdown("*ok* $x$"), now)  # fmt: skip
    monkeypatch.setenv("PAPERFEED_HOME", str(settings.home))
    monkeypatch.setenv("PAPERFEED_SECRET_KEY", settings.secret_key)
    res = CliRunner().invoke(cli_app, ["db", "rerender-comments"])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())  # Rich wraps long lines
    assert "3 comments checked, 2 re-rendered (1 too large for their formulas: kept as plain text)" in said
    with db.read() as conn:
        html = {cid: community_store.get_comment(conn, cid)["body_html"] for cid in (forged, heavy, fine)}
    assert html[forged].count("<math") == 1 and len(html[forged].encode()) <= comments.MAX_HTML_BYTES
    assert "<math" not in html[heavy] and "$x$ $x$" in html[heavy]
    assert len(html[heavy].encode()) <= comments.MAX_HTML_BYTES
    assert html[fine] == comments.render_markdown("*ok* $x$")
    res = CliRunner().invoke(cli_app, ["db", "rerender-comments"])  # a second run has nothing to do
    assert res.exit_code == 0 and "3 comments checked, 0 re-rendered" in " ".join(res.output.split())


def test_a_papers_discussion_cannot_grow_without_bound(any_db: Database, settings: Settings) -> None:
    """Outside review after the fix: each comment was bounded (64 KB) but a thread was not - 60
    near-limit comments from four accounts made the paper page 3.4 MB, and the thread query shows
    up to 1,000 rows (~60 MB). The visible comments of one paper share a budget of stored HTML; a
    comment that would pass it is refused with a clear 422 (the page stays bounded), and hiding or
    deleting comments frees the budget again."""
    db = any_db
    paper = f.add_paper(db, title="A paper to discuss")
    f.add_daily(db, paper["id"], date(2026, 4, 15))
    w = _signed_in(settings, db)
    bob = make_user(w.community, "bob")
    chunk = "<p>" + "x" * (comments.MAX_HTML_BYTES - 8) + "</p>"  # one comment at the per-comment bound
    now = w.clock()
    with db.write() as conn:
        ids = [community_store.insert_comment(conn, paper["id"], bob.id, None, "x", chunk, now)
               for _ in range(comments.MAX_THREAD_HTML // len(chunk))]  # fmt: skip
    r = _api_comment(w, paper["id"], "$x$ " * 1000)  # a normal-size comment no longer fits
    assert r.status_code == 422, r.text[:300]
    assert "discussion" in r.json()["detail"]
    r = w.post(f"/papers/{paper['id']}/comments", {"body": "$x$ " * 1000})
    assert r.status_code == 422 and "discussion" in r.text
    assert len(_stored(db)) == len(ids)
    page = w.client.get(f"/papers/{paper['id']}")
    assert page.status_code == 200 and len(page.content) < comments.MAX_THREAD_HTML + 200_000
    # Hidden comments do not count: a moderator clearing the junk reopens the discussion.
    moderation.set_comment_hidden(w.community, COMMAND_LINE, ids[0], True, "flood")
    r = _api_comment(w, paper["id"], "$x$ " * 1000)
    assert r.status_code == 201, r.text[:300]
    # Editing a small comment into a big one is held to the same budget.
    small = _api_comment(w, paper["id"], "short")
    assert small.status_code == 201
    r = w.post(f"/comments/{small.json()['id']}/edit", {"body": "$x$ " * 1000})
    assert r.status_code == 422 and "discussion" in r.text
