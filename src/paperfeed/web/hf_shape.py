"""Papers and daily entries in the Hugging Face papers API shape (``/api/daily_papers`` and friends).

One home for the rule "serve it back as the Hub does": an entry imported from the Hub is served
from the source object it was imported with (every key, value and type, keys the Hub omits stay
omitted), with paperfeed's live data layered on top:

* ``paper.upvotes`` = imported upvotes + local upvotes;
* ``numComments`` = the Hub's count + local visible comments;
* ``paper.authors[i].user``/``status``: local users who claim authorship (see :func:`_with_claims`).

Papers and entries that did not come from the Hub (arXiv imports, local submissions) get the same
shape built from paperfeed's columns: full timestamps, local submitters as Hub-style user objects
(``name`` = username), and optional keys (``githubRepo``, ``projectPage``, ...) only when there is
a value. Used by the JSON API, the Markdown pages and the MCP server, so all three agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from paperfeed.store.upvotes import total as upvotes_of

__all__ = ["hf_entry", "hf_paper", "iso", "local_user"]


def iso(value: date | datetime | None) -> str | None:
    """The Hub's timestamp style: ``2026-08-20T00:00:00.000Z`` (UTC, milliseconds)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def local_user(username: str, user_id: int | None, *, paper_level: bool = False) -> dict[str, Any]:
    """A local account as a Hub user object (``name`` = username; no display names or avatars here).

    ``_id`` is the account id as 24 hex digits (the Hub's id format); the paper-level
    ``submittedOnDailyBy`` also carries ``user`` (the username), as on the Hub.
    """
    out: dict[str, Any] = {"_id": f"{user_id or 0:024x}", "fullname": username, "name": username, "type": "user"}
    out["isPro"] = False
    if paper_level:
        out["user"] = username
    return out


def _hub_source(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The imported entry object, when this row's daily entry came from the Hub."""
    src = row.get("hf_source")
    if row.get("entry_source") == "hf" and isinstance(src, dict) and isinstance(src.get("paper"), dict):
        return src
    return None


def _with_claims(authors: list[Any], claims: dict[int, dict[str, Any]] | None) -> list[Any]:
    """The author list with local authorship claims layered on.

    ``claims`` maps an author position to ``{"user": <Hub-style user>, "status": ...}``. Local
    claims do not exist yet: this is where they will be merged (the Hub's own claims come with
    the source and are kept as they are).
    """
    if not claims:
        return authors
    out = []
    for i, a in enumerate(authors):
        out.append({**a, **claims[i]} if i in claims and isinstance(a, dict) else a)
    return out


def _local_comments(row: Mapping[str, Any]) -> int:
    return int(row.get("num_comments") or 0)


def hf_paper(row: Mapping[str, Any], *, with_comments: bool = False) -> dict[str, Any]:
    """The ``paper`` object of one papers row (joined with its visible daily entry, if any).

    ``with_comments`` adds ``numComments`` (``/api/papers/{id}``: the client reads it there).
    """
    src = _hub_source(row)
    upvotes = upvotes_of(row)
    if src is not None:
        out = dict(src["paper"])
        out["upvotes"] = upvotes
        out["authors"] = _with_claims(list(out.get("authors") or []), None)
        if with_comments:
            out["numComments"] = int(src.get("numComments") or 0) + _local_comments(row)
        return out
    out = {
        "id": row["id"],
        "authors": _with_claims([{"name": a, "hidden": False} for a in row.get("authors") or []], None),
        "publishedAt": iso(row.get("published") or row.get("listed")),
    }
    if row.get("submitted_at") is not None:
        out["submittedOnDailyAt"] = iso(row["submitted_at"])
    out["title"] = row["title"]
    if row.get("entry_submitter"):
        out["submittedOnDailyBy"] = local_user(row["entry_submitter"], row.get("entry_user_id"), paper_level=True)
    out["summary"] = row.get("abstract") or ""
    out["upvotes"] = upvotes
    optional = (
        ("projectPage", "project_page"),
        ("githubRepo", "github_repo"),
        ("ai_summary", "ai_summary"),
        ("ai_keywords", "ai_keywords"),
        ("githubStars", "github_stars"),
    )
    for key, col in optional:
        if row.get(col) is not None:
            out[key] = row[col]
    if with_comments:
        out["numComments"] = _local_comments(row)
    return out


def hf_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """One daily-papers entry (``{paper, publishedAt, title, summary, numComments, submittedBy, ...}``)."""
    src = _hub_source(row)
    if src is not None:
        out = dict(src)
        out["paper"] = hf_paper(row)
        out["numComments"] = int(src.get("numComments") or 0) + _local_comments(row)
        return out
    entry_time = row.get("entry_published_at") or row.get("submitted_at") or row.get("published")
    out = {
        "paper": hf_paper(row),
        "publishedAt": iso(entry_time),
        "title": row["title"],
        "summary": row.get("abstract") or "",
        "numComments": _local_comments(row),
    }
    if row.get("entry_submitter"):
        out["submittedBy"] = local_user(row["entry_submitter"], row.get("entry_user_id"))
    return out
