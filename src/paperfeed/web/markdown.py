"""Markdown twins of the paper page, the daily feed and search, for agents and command lines.

``GET /papers/{id}.md`` (or ``Accept: text/markdown`` on the paper page) is what the Hub's
``read_paper`` / ``hf papers read`` fetch; the feed and search pages have ``.md`` twins too. Each
function takes the same data dict the HTML page and its JSON twin are built from, so the three
never disagree. Hidden authors are not in that data, so they never appear here either.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from paperfeed import cards
from paperfeed.latex_text import to_markdown

__all__ = ["feed_markdown", "paper_markdown", "search_markdown"]

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def _esc(text: str | None) -> str:
    """Plain text that Markdown shows as is (one line: titles, names, keywords)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join((text or "").split()))


def _day(value: date | datetime | None) -> str:
    if value is None:
        return ""
    return value.date().isoformat() if isinstance(value, datetime) else value.isoformat()


def _authors(p: dict[str, Any]) -> str:
    claimed = p.get("claimed") or {}
    names = [_esc(a) + (f" (@{_esc(claimed[a])})" if a in claimed else "") for a in p.get("authors") or []]
    return ", ".join(names)


def paper_markdown(data: dict[str, Any], base_url: str) -> str:
    """One paper: title, authors, dates, links, abstract, AI summary and keywords."""
    p = data["paper"]
    pid = p["id"]
    lines = [f"# {_esc(p['title'])}", ""]
    if p.get("authors"):
        lines += [f"**Authors:** {_authors(p)}", ""]
    facts = [f"**arXiv:** [{pid}](https://arxiv.org/abs/{pid})"]
    if p.get("published"):
        facts.append(f"**Published:** {_day(p['published'])}")
    if p.get("feed_date"):
        by = f" by @{_esc(p['submitter'])}" if p.get("submitter") else ""
        facts.append(f"**Daily papers:** {_day(p['feed_date'])}{by}")
    facts.append(f"**Upvotes:** {p['upvotes']}")
    facts.append(f"**Comments:** {p['num_comments'] + p.get('hub_comments', 0)}")  # as numComments in the API
    lines += [" · ".join(facts), ""]
    if p.get("organization"):
        lines += [f"**Organization:** {_esc(p['organization']['fullname'])}", ""]
    if p.get("categories"):
        lines += [f"**Categories:** {', '.join(_esc(c) for c in p['categories'])}", ""]
    links = [
        f"- Paper page: {base_url}/papers/{pid}",
        f"- arXiv: https://arxiv.org/abs/{pid}",
        f"- PDF: https://arxiv.org/pdf/{pid}",
    ]
    if p.get("github_repo"):
        stars = f" ({p['github_stars']} stars)" if p.get("github_stars") is not None else ""
        links.append(f"- Code: {p['github_repo']}{stars}")
    if p.get("project_page"):
        links.append(f"- Project page: {p['project_page']}")
    lines += ["## Links", "", *links, "", "## Abstract", "", to_markdown(p.get("abstract") or ""), ""]
    if p.get("ai_summary"):
        lines += [f"## {cards.AI_SUMMARY_LABEL}", "", _esc(p["ai_summary"]), ""]
    if p.get("ai_keywords"):
        lines += ["## Keywords", "", ", ".join(_esc(k) for k in p["ai_keywords"]), ""]
    return "\n".join(lines)


def _list_item(i: int, p: dict[str, Any], base_url: str) -> list[str]:
    shown = cards.author_summary(p.get("authors") or [])
    authors = ", ".join(_esc(a) for a in shown["shown"]) + (f" and {shown['more']} more" if shown["more"] else "")
    out = [f"{i}. [{_esc(p['title'])}]({base_url}/papers/{p['id']}) — {p['upvotes']} upvotes · arXiv:{p['id']}"]
    if authors:
        out.append(f"   {authors}")
    if p.get("ai_summary"):
        out.append(f"   {_esc(p['ai_summary'])}")
    return out


def feed_markdown(data: dict[str, Any], base_url: str) -> str:
    """One day, week or month of the daily feed, most upvoted first."""
    title = data.get("heading") or "Daily papers"
    lines = [f"# Daily papers: {_esc(title)}", ""]
    papers = data.get("papers") or []
    if not papers:
        lines.append("No papers.")
    for i, p in enumerate(papers, 1 + (data.get("page", 1) - 1) * len(papers)):
        lines += _list_item(i, p, base_url)
    nav = data.get("nav") or {}
    more = [f"[{k}: {v['label']}]({base_url}{v['url']})" for k, v in (("previous", nav.get("prev")),
            ("next", nav.get("next"))) if v]  # fmt: skip
    if more:
        lines += ["", " · ".join(more)]
    return "\n".join(lines) + "\n"


def search_markdown(data: dict[str, Any], base_url: str) -> str:
    """Search results in rank order (the page's current page of hits)."""
    q = data.get("query") or ""
    lines = [f"# Search: {_esc(q)}", ""]
    if data.get("error"):
        return "\n".join([*lines, _esc(data["error"]), ""])
    hits = data.get("hits") or []
    lines += [f"{data.get('total', 0)} results.", ""]
    for i, p in enumerate(hits, 1):
        lines += _list_item(i, p, base_url)
    return "\n".join(lines) + "\n"
