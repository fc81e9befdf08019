"""Comments: threaded discussion under each paper, written in Markdown with LaTeX math.

Rendering happens once, when a comment is written or edited (the HTML is stored in
``comments.body_html``): markdown-it-py (CommonMark, raw HTML off) -> nh3 (an allow-list
sanitiser; every link gets ``rel="nofollow ugc"``) -> ``$...$``/``$$...$$`` replaced by MathML
from ``paperfeed.latex.latex_to_mathml``, which re-serialises the converter's output through its own
allow-list. Math is cut out before Markdown runs (so ``_`` and ``\\`` in formulas survive) and
put back after sanitising. The placeholders carry a random nonce drawn for each rendering: input
cannot forge them (markdown-it decodes entities such as ``&#xe000;``, so stripping the marker
characters from the source is not enough), so a formula appears exactly where it was written, once,
and only in text, never inside an attribute. The stored HTML of one comment is bounded
(``MAX_HTML_BYTES``): a comment whose formulas would render larger is refused with a 422. So is
the paper page: the visible comments of one paper share ``MAX_THREAD_HTML`` (a comment or edit that
would pass it is a 422; hidden and deleted comments do not count, so moderation frees it again).

Authors edit their comments for ``EDIT_WINDOW`` after posting and delete them at any time (a
soft delete that keeps the thread's shape); moderators hide them (``moderation.py``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markupsafe import Markup, escape

from paperfeed.community.core import Community, User, paper_key, require_active, require_verified, strip_controls
from paperfeed.community.errors import CommunityError, Forbidden, NotFound
from paperfeed.community.ratelimit import bucket
from paperfeed.latex import latex_to_mathml
from paperfeed.store import community_store as store

EDIT_WINDOW = timedelta(minutes=15)
MAX_LENGTH = 10_000
MAX_DEPTH = 6  # reply nesting shown; deeper replies are shown at this depth
MAX_HTML_BYTES = 64 * 1024  # stored HTML of one comment (formulas render to ~10x their source)
MAX_THREAD_HTML = 1024 * 1024  # stored HTML of all visible comments of one paper (the page shows them all)
_OPEN, _CLOSE = "\ue000", "\ue001"  # around math placeholders, with the render's nonce inside
_PRIVATE = re.compile(f"[{_OPEN}{_CLOSE}]")

_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    attributes={"a": {"href", "title"}, "ol": {"start"}},
    url_schemes={"http", "https", "mailto"},
    link_rel="nofollow ugc",
    strip_comments=True,
)


def _math_rule(state: StateInline, silent: bool) -> bool:
    """Inline ``$x$`` and ``$$x$$`` (after markdown-it's backslash-escape rule, so ``\\$`` is text)."""
    src, start = state.src, state.pos
    if src[start] != "$":
        return False
    delim = "$$" if src.startswith("$$", start) else "$"
    begin = start + len(delim)
    end = src.find(delim, begin)
    while end != -1 and src[end - 1] == "\\":
        end = src.find(delim, end + 1)
    if end == -1 or end == begin:
        return False
    content = src[begin:end]
    # "$5 and $6" is money, not math: like pandoc, inline math may not start or end with a space.
    if delim == "$" and (content[0].isspace() or content[-1].isspace()):
        return False
    if not silent:
        token = state.push("math", "", 0)
        token.content = content
        token.meta = {"display": delim == "$$"}
    state.pos = end + len(delim)
    return True


def _render_math(self: Any, tokens: Any, idx: int, options: Any, env: dict[str, Any]) -> str:
    formulas = env["math"]
    formulas.append((tokens[idx].content, bool(tokens[idx].meta.get("display"))))
    return f"{_OPEN}{env['nonce']}.{len(formulas) - 1}{_CLOSE}"


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("strikethrough")
    md.disable("image")  # no remote images in comments (tracking pixels, CSP img-src 'self')
    md.inline.ruler.after("escape", "math", _math_rule)
    md.add_render_rule("math", _render_math)
    return md


_MD = _markdown()


def render_markdown(text: str) -> str:
    """Safe HTML for a comment's Markdown source (see the module docstring)."""
    source = strip_controls(_PRIVATE.sub("", text or ""))
    nonce = secrets.token_hex(16)  # 128 random bits: no input can contain this render's placeholders
    env: dict[str, Any] = {"math": [], "nonce": nonce}
    html = _CLEANER.clean(_MD.render(source, env))
    formulas: list[tuple[str, bool]] = env["math"]
    used: set[int] = set()

    def put_back(m: re.Match[str]) -> str:
        i = int(m.group(1))
        if i >= len(formulas) or i in used:  # cannot happen (only the renderer writes the nonce)
            return ""
        used.add(i)
        latex, display = formulas[i]
        mathml = latex_to_mathml(latex, display)
        if mathml is None:  # keep the (escaped) source when it does not convert
            delim = "$$" if display else "$"
            return f"<code>{escape(delim + latex + delim)}</code>"
        return mathml

    return re.sub(f"{_OPEN}{nonce}\\.(\\d+){_CLOSE}", put_back, html)


def _render_body(body: str) -> str:
    """The HTML to store for a checked body; a clear 422 when it would be unreasonably large."""
    html = render_markdown(body)
    size = len(html.encode())
    if size > MAX_HTML_BYTES:
        raise CommunityError(
            f"The formatted comment is too large ({size // 1024:,} KB; at most {MAX_HTML_BYTES // 1024} KB): "
            "every formula becomes MathML, so use fewer or shorter formulas.",
            status=422,
        )
    return html


def _check_thread_budget(conn: Any, paper_id: str, html: str, *, excluding: int | None = None) -> None:
    """Refuse HTML that would take the paper's visible discussion past ``MAX_THREAD_HTML``."""
    if store.thread_html_size(conn, paper_id, excluding=excluding) + len(html) > MAX_THREAD_HTML:
        raise CommunityError(
            f"This paper's discussion has reached its size limit ({MAX_THREAD_HTML // 1024:,} KB of "
            "formatted comments); a shorter comment may still fit, or a moderator can tidy the thread.",
            status=422,
        )


@dataclass(frozen=True)
class RerenderReport:
    total: int  # live comments looked at
    changed: int  # whose stored HTML differed from the current renderer's
    as_text: int  # of those, stored as escaped plain text (their HTML would pass MAX_HTML_BYTES)


def _as_text(body: str) -> str:
    """A comment as escaped plain text (at most ~6 bytes per source character)."""
    return "".join(f"<p>{escape(para)}</p>" for para in body.split("\n\n") if para.strip())


def rerender_all(c: Community, batch: int = 500) -> RerenderReport:
    """Render every stored comment again with the current renderer (``paperfeed db rerender-comments``).

    For instances that stored comments before a renderer fix (issue 10: forged formula
    placeholders inflated a 10 KB comment to 13 MB and broke attributes). A comment whose HTML
    would now pass the size cap, which new comments get a 422 for, is kept as plain text.
    Idempotent: a second run changes nothing.
    """
    total = changed = as_text = 0
    after = 0
    while True:
        with c.db.read() as conn:
            rows = store.comment_sources(conn, after, batch)
        if not rows:
            return RerenderReport(total, changed, as_text)
        updates: list[tuple[int, str]] = []
        for row in rows:
            html = render_markdown(row["body"])
            too_large = len(html.encode()) > MAX_HTML_BYTES
            if too_large:
                html = _as_text(row["body"])
            if html != row["body_html"]:
                updates.append((row["id"], html))
                as_text += too_large
        with c.db.write() as conn:
            for comment_id, html in updates:
                store.set_comment_html(conn, comment_id, html)
        total += len(rows)
        changed += len(updates)
        after = rows[-1]["id"]


def _clean_body(body: str) -> str:
    body = strip_controls(_PRIVATE.sub("", body or "")).replace("\r\n", "\n").replace("\r", "\n").strip()
    if not body:
        raise CommunityError("The comment is empty.")
    if len(body) > MAX_LENGTH:
        raise CommunityError(f"The comment is too long ({len(body):,} characters; at most {MAX_LENGTH:,}).")
    return body


def add_comment(
    c: Community, user: User | None, paper_id: str, body: str, parent_id: int | None = None, *, ip: str | None = None
) -> int:
    """Post a comment (or a reply to ``parent_id``, which must be a live comment on the same paper)."""
    user = require_verified(user)
    paper_id = paper_key(paper_id)
    body = _clean_body(body)
    with c.db.read() as conn:
        if not store.paper_exists(conn, paper_id):
            raise NotFound(f"There is no paper {paper_id!r} here.")
        if parent_id is not None:
            parent = store.get_comment(conn, parent_id)
            if parent is None or parent["paper_id"] != paper_id:
                raise NotFound("The comment you are replying to does not exist.")
            if parent["deleted"] or parent["hidden"]:
                raise CommunityError("The comment you are replying to was removed.", status=409)
    html = _render_body(body)
    with c.db.write() as conn:
        _check_thread_budget(conn, paper_id, html)
        c.rate_limiter.take(
            conn,
            bucket("comment:user", user.id, c.limits.comment_user),
            bucket("comment:ip", ip, c.limits.comment_ip),
            what="comments",
        )
        return store.insert_comment(conn, paper_id, user.id, parent_id, body, html, c.now())


def get_comment(c: Community, comment_id: int) -> dict[str, Any]:
    with c.db.read() as conn:
        row = store.get_comment(conn, comment_id)
    if row is None or row["deleted"]:
        raise NotFound("No such comment.")
    return row


def can_edit(c: Community, user: User | None, comment: dict[str, Any]) -> bool:
    return (
        user is not None
        and not user.banned
        and comment["user_id"] == user.id
        and not comment["deleted"]
        and c.now() - comment["created_at"] <= EDIT_WINDOW
    )


def edit_comment(c: Community, user: User | None, comment_id: int, body: str) -> dict[str, Any]:
    """Replace the text of one's own comment, within ``EDIT_WINDOW`` of posting it."""
    user = require_verified(user)
    comment = get_comment(c, comment_id)
    if comment["user_id"] != user.id:
        raise Forbidden("You can only edit your own comments.")
    now = c.now()
    if now - comment["created_at"] > EDIT_WINDOW:
        minutes = int(EDIT_WINDOW.total_seconds() // 60)
        raise Forbidden(f"Comments can be edited for {minutes} minutes after posting.")
    body = _clean_body(body)
    html = _render_body(body)
    with c.db.write() as conn:
        _check_thread_budget(conn, comment["paper_id"], html, excluding=comment_id)
        if not store.edit_comment(conn, comment_id, user.id, body, html, now, now - EDIT_WINDOW):
            raise Forbidden("This comment can no longer be edited.")
    return get_comment(c, comment_id)


def delete_comment(c: Community, user: User | None, comment_id: int) -> dict[str, Any]:
    """Delete one's own comment (replies stay, under a "deleted" marker)."""
    user = require_active(user)
    comment = get_comment(c, comment_id)
    if comment["user_id"] != user.id:
        raise Forbidden("You can only delete your own comments.")
    with c.db.write() as conn:
        store.delete_comment(conn, comment_id)
    return comment


def thread(c: Community, paper_id: str, viewer: User | None = None) -> list[dict[str, Any]]:
    """The paper's comments as a tree (roots oldest first, each with ``children``).

    Deleted and hidden comments stay as placeholders when they have live replies, and vanish
    otherwise; moderators see hidden comments' text with the reason.
    """
    with c.db.read() as conn:
        rows = store.comment_thread(conn, paper_id)
    moderator = viewer is not None and viewer.is_moderator and not viewer.banned
    nodes: dict[int, dict[str, Any]] = {}
    for row in rows:
        removed = row["deleted"] or (row["hidden"] and not moderator)
        node = {
            "id": row["id"],
            "parent_id": row["parent_id"],
            "username": None if removed else row["username"],
            "body_html": Markup("") if removed else Markup(row["body_html"]),
            "created_at": row["created_at"],
            "edited_at": row["edited_at"],
            "deleted": bool(row["deleted"]),
            "hidden": bool(row["hidden"]),
            "hidden_reason": row["hidden_reason"] if moderator else None,
            "removed": removed,
            "can_edit": not removed and can_edit(c, viewer, row),
            "can_delete": not row["deleted"]
            and viewer is not None
            and not viewer.banned
            and viewer.id == row["user_id"],
            "can_reply": not removed
            and not row["hidden"]
            and viewer is not None
            and not viewer.banned
            and viewer.verified,
            "children": [],
        }
        nodes[row["id"]] = node
    # Rows come oldest first and a reply is always newer than its parent, so one pass builds the
    # tree; replies deeper than MAX_DEPTH hang under their ancestor at MAX_DEPTH (no endless indent).
    roots: list[dict[str, Any]] = []
    depth: dict[int, int] = {}
    anchor: dict[int, int] = {}  # node id -> the node its replies attach to
    for node in nodes.values():
        parent_id = node["parent_id"]
        if parent_id is None or parent_id not in nodes:
            depth[node["id"]] = 0
            anchor[node["id"]] = node["id"]
            roots.append(node)
            continue
        target = anchor[parent_id]
        nodes[target]["children"].append(node)
        depth[node["id"]] = depth[target] + 1
        anchor[node["id"]] = node["id"] if depth[node["id"]] < MAX_DEPTH else target
    # Removed comments stay only as the parents of live replies: decide bottom-up.
    kept: set[int] = set()
    for node in reversed(list(nodes.values())):
        node["children"] = [ch for ch in node["children"] if ch["id"] in kept]
        if not node["removed"] or node["children"]:
            kept.add(node["id"])
    return [n for n in roots if n["id"] in kept]
