"""Paper cards: the public fields of one paper as every list shows it (pages, JSON twins, feeds,
digests), plus the abstract preview and snippet rules they share.

Derived from a paper row the store returns; pure and cheap (it runs for every card of every
page). The upvote count is the store's ``upvotes_total`` (local votes + imported ones).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from typing_extensions import TypedDict  # pydantic builds the API schema from Card: it needs this one on 3.11

from paperfeed.store import upvotes
from paperfeed.store.rows import PaperRow

AUTHORS_SHOWN = 3
_DOLLAR_RE = re.compile(r"(?<!\\)\$")
# Whitespace runs other than one plain space (a single space is already what a run collapses to;
# abstracts have hundreds of them, and matching each one cost more than the rest of a snippet).
_SPACE_RUN = re.compile(r" \s+|[^\S ]\s*")
PREVIEW_CHARS = 320


class Card(TypedDict):
    """The public fields of one paper card."""

    id: str
    url: str
    title: str
    authors: list[str]
    abstract: str
    categories: list[str]
    published: date | None
    listed: date | None
    upvotes: int
    num_comments: int
    github_repo: str | None
    github_stars: int | None
    project_page: str | None
    submitter: str | None
    submitter_fullname: str | None
    feed_date: date | None
    submitted_at: datetime | None
    ai_summary: str | None
    ai_keywords: list[str]
    organization: dict[str, str] | None  # name, fullname (from the imported Hub entry)
    hub_comments: int  # the comment count the Hub sent with an imported entry
    claimed: dict[str, str]  # visible author name -> the Hub username that claimed it


class Snippet(TypedDict):
    text: str
    spans: list[tuple[int, int]]


class AuthorSummary(TypedDict):
    shown: list[str]
    more: int
    count: int


def _cut_outside_math(head: str) -> str:
    # An odd number of unescaped dollars means the cut fell inside inline math: back off to
    # before it so a preview never shows half a formula.
    dollars = [m.start() for m in _DOLLAR_RE.finditer(head)]
    if len(dollars) % 2 == 1:
        head = head[: dollars[-1]].rstrip()
    return head


def snippet(
    text: str | None, spans: Sequence[tuple[int, int]] | Sequence[list[int]] = (), limit: int = PREVIEW_CHARS
) -> Snippet:
    """A preview of ``text`` (whitespace collapsed) and the highlight spans moved to match it.

    Without spans this is the start of the text; with spans, the window starts a little before
    the first highlight when that would otherwise be cut off. Cuts land on word boundaries and
    never inside ``$...$`` math.
    """
    raw = text or ""
    text = raw.lstrip()
    lead = len(raw) - len(text)
    text = text.rstrip()
    # Collapse whitespace runs to one space; each run shrinks everything after it by len-1.
    starts: list[int] = []
    shrink: list[int] = []
    total = 0
    for m in _SPACE_RUN.finditer(text):
        total += m.end() - m.start() - 1
        starts.append(m.start())
        shrink.append(total)
    norm = _SPACE_RUN.sub(" ", text) if starts else text

    def to_norm(offset: int) -> int:
        offset = min(max(offset - lead, 0), len(text))
        i = bisect.bisect_left(starts, offset) - 1  # runs starting strictly before the offset
        if i < 0:
            return offset
        run_start = starts[i]
        before = shrink[i - 1] if i else 0
        # Inside a run (past its first character) counts as the end of its single space.
        return max(run_start + 1 - before, offset - shrink[i])

    moved = []
    for span in spans or ():
        try:
            a, b = int(span[0]), int(span[1])
        except (TypeError, ValueError, IndexError):
            continue
        na, nb = to_norm(a), to_norm(b)
        if na < nb and not norm[na:nb].isspace():
            moved.append((na, nb))
    moved.sort()
    start, prefix = 0, ""
    if moved and moved[0][1] > limit * 0.8 and len(norm) > limit:
        start = norm.rfind(" ", 0, max(0, moved[0][0] - 60)) + 1
        if len(_DOLLAR_RE.findall(norm, 0, start)) % 2 == 1:
            # The window would open inside a formula: start after its closing dollar instead.
            close = _DOLLAR_RE.search(norm, start)
            start = close.end() if close and close.end() <= moved[0][0] else 0
        prefix = "…" if start > 0 else ""
    window = norm[start:]
    if len(window) > limit:
        cut = window.rfind(" ", 0, limit)
        cut = cut if cut > limit // 2 else limit
        window = _cut_outside_math(window[:cut]).rstrip(" ,;:") + "…"
    out_spans = [(a - start + len(prefix), min(b, start + len(window)) - start + len(prefix)) for a, b in moved]
    out_spans = [(a, b) for a, b in out_spans if a >= len(prefix) and a < b <= len(prefix) + len(window)]
    return {"text": prefix + window, "spans": out_spans}


def preview(text: str | None, limit: int = PREVIEW_CHARS) -> str:
    """The start of an abstract, cut at a word boundary and never inside ``$...$`` math."""
    return snippet(text, (), limit)["text"]


def author_summary(authors: list[str]) -> AuthorSummary:
    shown = authors[:AUTHORS_SHOWN]
    return {"shown": shown, "more": max(0, len(authors) - len(shown)), "count": len(authors)}


def categories_of(row: Mapping[str, Any]) -> list[str]:
    return [c for c in (row.get("categories") or "").split() if c]


AI_SUMMARY_LABEL = "AI-generated summary"  # as the Hub labels it


def _hub_paper(row: Mapping[str, Any]) -> dict[str, Any]:
    src = row.get("hf_source") if row.get("entry_source") == "hf" else None
    paper = src.get("paper") if isinstance(src, dict) else None
    return paper if isinstance(paper, dict) else {}


def _organization(row: Mapping[str, Any]) -> dict[str, str] | None:
    org = _hub_paper(row).get("organization") or (row.get("hf_source") or {}).get("organization")
    if isinstance(org, dict) and isinstance(org.get("name"), str) and org["name"]:
        full = org.get("fullname")
        return {"name": org["name"], "fullname": full if isinstance(full, str) and full else org["name"]}
    return None


def _hub_comments(row: Mapping[str, Any]) -> int:
    """The comment count the Hub sent with the imported entry (its comments live on the Hub)."""
    src = row.get("hf_source") if row.get("entry_source") == "hf" else None
    n = src.get("numComments") if isinstance(src, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 0


def _claimed(row: Mapping[str, Any], shown: list[str]) -> dict[str, str]:
    """Visible author name -> the Hub username that claimed it (hidden authors never appear)."""
    out: dict[str, str] = {}
    visible = set(shown)
    for a in _hub_paper(row).get("authors") or []:
        if not isinstance(a, dict) or a.get("hidden") or a.get("name") not in visible:
            continue
        user = a.get("user")
        name = (user.get("user") or user.get("name")) if isinstance(user, dict) else None
        if isinstance(name, str) and name:
            out[a["name"]] = name
    return out


def card(row: PaperRow | Mapping[str, Any]) -> Card:
    """The public fields of one paper card (pages, JSON twins, feeds) from a query row.

    ``authors`` never holds names a source marks hidden (the store keeps them out); ``claimed``
    and ``organization`` come from the imported Hub entry when there is one.
    """
    authors = list(row.get("authors") or [])
    return {
        "id": row["id"],
        "url": f"/papers/{row['id']}",
        "title": row["title"],
        "authors": authors,
        "abstract": row.get("abstract") or "",
        "categories": categories_of(row),
        "published": row.get("published"),
        "listed": row.get("listed"),
        "upvotes": upvotes.total(row),
        "num_comments": int(row.get("num_comments") or 0),
        "github_repo": row.get("github_repo"),
        "github_stars": row.get("github_stars"),
        "project_page": row.get("project_page"),
        "submitter": row.get("entry_submitter"),
        "submitter_fullname": row.get("submitter_fullname") or row.get("entry_submitter"),
        "feed_date": row.get("feed_date"),
        "submitted_at": row.get("submitted_at"),
        "ai_summary": row.get("ai_summary"),
        "ai_keywords": list(row.get("ai_keywords") or []),
        "organization": _organization(row),
        "hub_comments": _hub_comments(row),
        "claimed": _claimed(row, authors),
    }
