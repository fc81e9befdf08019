"""Parsing and checking query-string parameters shared by pages, the API and the feeds.

Runs on every search and filtered request. Each check raises ``ParamError`` with a message a
person can act on ("'2025-02-30' is not a real date"), which pages show inline and the API
returns as a 422.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from paperfeed import periods
from paperfeed.records import is_category
from paperfeed.search.hybrid import MODES, SORTS, SearchRequest

NEW_ID_RE = re.compile(r"^(\d{4}\.\d{4,5})(v\d{1,3})?$")
OLD_ID_RE = re.compile(r"^([a-z][a-z\-]{1,20}(?:\.[A-Z]{2})?/\d{7})(v\d{1,3})?$")
MAX_QUERY_CHARS = 500
SEARCH_PAGE_SIZE = 20
MAX_SEARCH_PAGE = 50  # 1,000 results deep, the search service's own limit
COMMON_CATEGORIES = ["cs.AI", "cs.CL", "cs.CV", "cs.LG", "cs.IR", "cs.RO", "cs.NE", "stat.ML", "cs.CR", "cs.SE"]


class ParamError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


def split_arxiv_id(text: str) -> tuple[str, str | None] | None:
    """``2405.15738v2`` -> ("2405.15738", "v2"); None when it does not look like an arXiv id."""
    m = NEW_ID_RE.match(text) or OLD_ID_RE.match(text)
    return (m.group(1), m.group(2)) if m else None


def category(value: str | None, field_name: str = "category") -> str | None:
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if not is_category(value):
        raise ParamError(field_name, f"{value!r} is not an arXiv category (examples: cs.LG, cs.CV, stat.ML)")
    return value


def optional_day(value: str | None, field_name: str) -> date | None:
    if value is None or value.strip() == "":
        return None
    try:
        return periods.parse_day(value.strip())
    except periods.PeriodError as exc:
        raise ParamError(field_name, str(exc)) from None


def bounded_int(value: str | int | None, field_name: str, default: int, lo: int, hi: int) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ParamError(field_name, f"{field_name} must be a whole number, not {str(value)[:40]!r}") from None
    if not lo <= n <= hi:
        raise ParamError(field_name, f"{field_name} must be between {lo} and {hi}")
    return n


def boolean(value: str | None, field_name: str) -> bool:
    if value is None or value == "":
        return False
    v = value.strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off"}:
        return False
    raise ParamError(field_name, f"{field_name} must be true or false")


def choice(value: str | None, field_name: str, options: tuple[str, ...], default: str | None = None) -> str:
    """One of ``options``; an absent value is ``default`` (the first option when not given)."""
    if value is None or value == "":
        return options[0] if default is None else default
    if value not in options:
        raise ParamError(field_name, f"{field_name} must be one of: {', '.join(options)} (got {value[:40]!r})")
    return value


@dataclass
class SearchParams(SearchRequest):
    """A checked search from a query string: the fields of the search service's ``SearchRequest``
    (declared once, there) plus the page number and notes for the reader. ``limit`` is the page
    size; the request's ``offset`` follows from ``page`` (:meth:`to_request`)."""

    q: str = ""
    limit: int = SEARCH_PAGE_SIZE
    page: int = 1
    notes: list[str] = field(default_factory=list)

    def cache_key(self) -> str:
        cats = ",".join(self.categories)
        return (
            f"q={self.q}|m={self.mode}|s={self.sort}|f={self.date_from}|t={self.date_to}|c={cats}"
            f"|code={self.has_code}|up={self.min_upvotes}|p={self.page}|l={self.limit}"
        )

    def query_args(self, **override: Any) -> dict[str, str]:
        """The canonical query string arguments (for links: pagination, feeds, filters)."""
        args: dict[str, Any] = {
            "q": self.q,
            "mode": self.mode if self.mode != "hybrid" else None,
            "sort": self.sort if self.sort != "relevance" else None,
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "category": ",".join(self.categories) or None,
            "has_code": "1" if self.has_code else None,
            "min_upvotes": str(self.min_upvotes) if self.min_upvotes else None,
            "p": str(self.page) if self.page > 1 else None,
        }
        args.update(override)
        return {k: str(v) for k, v in args.items() if v not in (None, "")}

    def to_request(self) -> SearchRequest:
        """The plain request for the search service (this page's offset, a copy of the lists)."""
        values = {f.name: getattr(self, f.name) for f in fields(SearchRequest)}
        values.update(categories=list(self.categories), offset=(self.page - 1) * self.limit)
        return SearchRequest(**values)


def search_params(
    args: dict[str, str], *, page_size: int = SEARCH_PAGE_SIZE, max_page: int = MAX_SEARCH_PAGE
) -> SearchParams:
    """Check a search query string (``q, mode, sort, from, to, category, has_code, min_upvotes, p``)."""
    p = SearchParams(limit=page_size)
    q = " ".join((args.get("q") or "").split())
    if len(q) > MAX_QUERY_CHARS:
        q = q[:MAX_QUERY_CHARS]
        p.notes.append(f"The query was shortened to {MAX_QUERY_CHARS} characters.")
    p.q = q
    p.mode = choice(args.get("mode"), "mode", MODES, SearchRequest.mode)
    p.sort = choice(args.get("sort"), "sort", SORTS, SearchRequest.sort)
    p.date_from = optional_day(args.get("from"), "from")
    p.date_to = optional_day(args.get("to"), "to")
    if p.date_from and p.date_to and p.date_from > p.date_to:
        raise ParamError("from", f"the start date {p.date_from} is after the end date {p.date_to}")
    cats = []
    for raw in (args.get("category") or "").replace(" ", ",").split(","):
        c = category(raw)
        if c and c not in cats:
            cats.append(c)
    if len(cats) > 10:
        raise ParamError("category", "at most 10 categories at once")
    p.categories = cats
    p.has_code = boolean(args.get("has_code"), "has_code")
    p.min_upvotes = bounded_int(args.get("min_upvotes"), "min_upvotes", 0, 0, 1_000_000)
    p.page = bounded_int(args.get("p"), "p", 1, 1, max_page)
    return p


# -- opaque cursors for keyset pagination ----------------------------------------------------


def encode_cursor(paper_id: str) -> str:
    return base64.urlsafe_b64encode(paper_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ParamError(
            "cursor", "the cursor is not valid: use the one from the previous page's Link header"
        ) from None
    if split_arxiv_id(raw) is None:
        raise ParamError("cursor", "the cursor is not valid: use the one from the previous page's Link header")
    return raw
