"""Paper cards: the public fields of one paper as every list shows it (pages, JSON twins, feeds,
digests), plus the abstract preview and snippet rules they share.

Derived from a paper row the store returns; pure and cheap (it runs for every card of every
page). The upvote count is the store's ``upvotes_total`` (local votes + imported ones).
"""

from __future__ import annotations

import bisect
import re
from typing import Any

from paperfeed.store import upvotes

AUTHORS_SHOWN = 3
_DOLLAR_RE = re.compile(r"(?<!\\)\$")
_SPACE_RUN = re.compile(r"\s+")
PREVIEW_CHARS = 320


def _cut_outside_math(head: str) -> str:
    # An odd number of unescaped dollars means the cut fell inside inline math: back off to
    # before it so a preview never shows half a formula.
    dollars = [m.start() for m in _DOLLAR_RE.finditer(head)]
    if len(dollars) % 2 == 1:
        head = head[: dollars[-1]].rstrip()
    return head


def snippet(text: str | None, spans: list[tuple[int, int]] | list[list[int]] = (), limit: int = PREVIEW_CHARS) -> dict:
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
        if m.group() != " ":
            total += len(m.group()) - 1
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


def author_summary(authors: list[str]) -> dict[str, Any]:
    shown = authors[:AUTHORS_SHOWN]
    return {"shown": shown, "more": max(0, len(authors) - len(shown)), "count": len(authors)}


def categories_of(row: dict[str, Any]) -> list[str]:
    return [c for c in (row.get("categories") or "").split() if c]


def card(row: dict[str, Any]) -> dict[str, Any]:
    """The public fields of one paper card (pages, JSON twins, feeds) from a query row."""
    return {
        "id": row["id"],
        "url": f"/papers/{row['id']}",
        "title": row["title"],
        "authors": list(row.get("authors") or []),
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
        "feed_date": row.get("feed_date"),
        "submitted_at": row.get("submitted_at"),
    }
