"""Comments: safe Markdown + math rendering, threads, the edit window, own-comment rules, and
``papers.num_comments`` kept equal to the visible comments - on SQLite and PostgreSQL."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from paperfeed.community import comments, moderation
from paperfeed.community.errors import CommunityError, Forbidden, NotFound
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import comments as comments_table
from paperfeed.store.schema import papers

from . import factories as f
from .community_util import FakeClock, community, make_user, unlimited

XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "<a href='javascript:alert(1)'>x</a>",
    "<svg onload=alert(1)>",
    "<iframe src=//evil.example></iframe>",
    '"><script>alert(1)</script>',
    "$\\text{<script>alert(1)</script>}$",
    "$$\\href{javascript:alert(1)}{x}$$",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](https://evil.example/pixel.png)",
]


class _Elements(HTMLParser):
    """Every element and attribute a browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


ALLOWED = {"p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a",
           "h1", "h2", "h3", "h4", "h5", "h6", "math", "mrow", "mi", "mn", "mo", "mtext", "mfrac", "msup", "msub",
           "msubsup", "mspace", "mstyle"}  # fmt: skip


@pytest.mark.parametrize("payload", XSS)
def test_markdown_output_is_inert(payload: str) -> None:
    parser = _Elements()
    parser.feed(comments.render_markdown(payload))
    for tag, attrs in parser.tags:
        assert tag in ALLOWED, (payload, tag)
        for name, value in attrs:
            assert not name.startswith("on") and name not in ("style", "src"), (payload, name)
            if name == "href":
                assert (value or "").lower().startswith(("http://", "https://", "mailto:")), (payload, value)


def test_markdown_features_and_math() -> None:
    html = comments.render_markdown(
        "**Bold** and *it* with `code $x$`.\n\n> quote\n\n- a\n- b\n\nSee [paper](https://arxiv.org/abs/2405.15738) "
        "and $\\alpha_i^2$ or $$\\frac{a}{b}$$; costs $5 and $6, escaped \\$x\\$."
    )
    assert "<strong>Bold</strong>" in html and "<em>it</em>" in html and "<blockquote>" in html
    assert "<code>code $x$</code>" in html  # no math inside code
    assert '<a href="https://arxiv.org/abs/2405.15738" rel="nofollow ugc">paper</a>' in html
    assert html.count("<math") == 2 and 'display="block"' in html and "<mi>α</mi>" in html
    assert "$5 and $6" in html and "$x$" in html
    bad = comments.render_markdown("$\\unknowncommand{$")
    assert "<math" not in bad


def _count(db: Database, paper_id: str) -> tuple[int, int]:
    with db.read() as conn:
        column = conn.scalar(select(papers.c.num_comments).where(papers.c.id == paper_id))
        visible = conn.scalar(
            select(func.count())
            .select_from(comments_table)
            .where(
                comments_table.c.paper_id == paper_id,
                comments_table.c.deleted.is_(False),
                comments_table.c.hidden.is_(False),
            )
        )
    return column, visible


def test_threads_edits_deletes_and_counts(any_db: Database, settings: Settings) -> None:
    clock = FakeClock()
    c = community(settings, any_db, clock)
    p = f.add_paper(any_db)
    alice, bob, mod = make_user(c, "alice"), make_user(c, "bob"), make_user(c, "mod", role="moderator")
    root = comments.add_comment(c, alice, p["id"], "Root *comment*")
    reply = comments.add_comment(c, bob, p["id"], "A reply", root)
    comments.add_comment(c, alice, p["id"], "Reply to the reply", reply)
    assert _count(any_db, p["id"]) == (3, 3)

    tree = comments.thread(c, p["id"], bob)
    assert [n["id"] for n in tree] == [root]
    assert tree[0]["children"][0]["id"] == reply and tree[0]["children"][0]["children"][0]["username"] == "alice"
    assert tree[0]["can_edit"] is False and tree[0]["children"][0]["can_edit"] is True

    with pytest.raises(Forbidden, match="your own comments"):
        comments.edit_comment(c, bob, root, "bob rewrites alice")
    with pytest.raises(Forbidden, match="your own comments"):
        comments.delete_comment(c, bob, root)
    with pytest.raises(Forbidden, match="your own comments"):
        comments.delete_comment(c, mod, root)  # moderators hide; they do not delete for others
    edited = comments.edit_comment(c, alice, root, "Root, **edited**")
    assert "<strong>edited</strong>" in edited["body_html"] and edited["edited_at"] == clock.now
    clock.advance(minutes=16)
    with pytest.raises(Forbidden, match="15 minutes"):
        comments.edit_comment(c, alice, root, "too late")

    comments.delete_comment(c, alice, root)  # the thread keeps its shape under a placeholder
    assert _count(any_db, p["id"]) == (2, 2)
    tree = comments.thread(c, p["id"], None)
    assert tree[0]["removed"] and tree[0]["username"] is None and str(tree[0]["body_html"]) == ""
    assert tree[0]["children"][0]["id"] == reply
    with pytest.raises(NotFound):
        comments.delete_comment(c, alice, root)
    with pytest.raises(CommunityError, match="was removed"):
        comments.add_comment(c, bob, p["id"], "reply to deleted", root)

    assert moderation.set_comment_hidden(c, mod, reply, True, "off topic")
    assert _count(any_db, p["id"]) == (1, 1)
    assert not moderation.set_comment_hidden(c, mod, reply, True, "again")  # no double decrement
    assert _count(any_db, p["id"]) == (1, 1)
    seen_by_mod = comments.thread(c, p["id"], mod)[0]["children"][0]
    assert seen_by_mod["hidden"] and seen_by_mod["hidden_reason"] == "off topic" and seen_by_mod["username"] == "bob"
    seen_by_bob = comments.thread(c, p["id"], bob)[0]["children"][0]
    assert seen_by_bob["removed"] and seen_by_bob["hidden_reason"] is None
    assert moderation.set_comment_hidden(c, mod, reply, False, None)
    assert _count(any_db, p["id"]) == (2, 2)


def test_comment_input_is_checked(db: Database, settings: Settings) -> None:
    c = community(settings, db)
    p, other = f.add_paper(db), f.add_paper(db)
    alice = make_user(c, "alice")
    with pytest.raises(CommunityError, match="empty"):
        comments.add_comment(c, alice, p["id"], "  \n ")
    with pytest.raises(CommunityError, match="too long"):
        comments.add_comment(c, alice, p["id"], "x" * 10_001)
    with pytest.raises(NotFound):
        comments.add_comment(c, alice, "2501.99999", "hello")
    with pytest.raises(NotFound):
        comments.add_comment(c, alice, "2501.00001'; DROP TABLE comments; --", "hello")
    on_other = comments.add_comment(c, alice, other["id"], "elsewhere")
    with pytest.raises(NotFound, match="replying to"):
        comments.add_comment(c, alice, p["id"], "cross-paper reply", on_other)
    cid = comments.add_comment(c, alice, p["id"], "nul\x00 and \ud800 surrogate ' OR 1=1 --")
    row = comments.get_comment(c, cid)
    assert row["body"] == "nul and  surrogate ' OR 1=1 --"


def test_deep_threads_stop_indenting(db: Database, settings: Settings) -> None:
    c = community(settings, db, limits=unlimited())
    p = f.add_paper(db)
    alice = make_user(c, "alice")
    parent = None
    for i in range(12):
        parent = comments.add_comment(c, alice, p["id"], f"level {i}", parent)
    depth, nodes = 0, comments.thread(c, p["id"], alice)
    while nodes:
        depth += 1
        nodes = nodes[-1]["children"]
    assert depth == comments.MAX_DEPTH + 1
