"""The normalised paper record every source is parsed into, arXiv id parsing, and stable hashes.

Used by all importers (file, HF daily, OAI-PMH) before anything is written, by the store that
writes them (:mod:`paperfeed.store.papers`), and by the community feature to validate
user-submitted ids and URLs (:func:`parse_arxiv_id`). Pure code: no I/O, no SQL, so it sits in the
bottom layer next to ``config`` and every other layer may use it.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson

__all__ = [
    "ARXIV_FIELDS",
    "HF_FIELDS",
    "HFEntry",
    "PaperRecord",
    "RecordError",
    "clean_optional",
    "clean_text",
    "is_category",
    "content_hash",
    "hf_hash",
    "parse_arxiv_id",
    "parse_day",
    "parse_timestamp",
    "source_hash",
]


class RecordError(ValueError):
    """One record cannot be used; the message says why. The importer skips it and goes on."""


# --- arXiv identifiers -------------------------------------------------------------------------

# Archives that used old-style ids (``archive[.SUBJECT]/YYMMNNN``, 1991 - March 2007).
OLD_ARCHIVES = frozenset(
    "acc-phys adap-org alg-geom ao-sci astro-ph atom-ph bayes-an chao-dyn chem-ph cmp-lg comp-gas cond-mat cs "
    "dg-ga funct-an gr-qc hep-ex hep-lat hep-ph hep-th math math-ph mtrl-th nlin nucl-ex nucl-th patt-sol physics "
    "plasm-ph q-alg q-bio quant-ph solv-int supr-con".split()
)
# re.ASCII: ``\d`` must not accept other scripts' digits (int() would, and ids would not compare equal).
_NEW_ID = re.compile(r"(\d{2})(\d{2})\.(\d{4,5})(?:v(\d+))?", re.ASCII)
_OLD_ID = re.compile(r"([a-zA-Z-]+)(?:\.([a-zA-Z-]{2,}))?/(\d{2})(\d{2})(\d{3})(?:v(\d+))?", re.ASCII)
_URL = re.compile(
    r"(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html|format)/(.+?)(?:\.pdf)?/?(?:[?#].*)?",
    re.IGNORECASE,
)
_PREFIX = re.compile(r"(?:oai:arxiv\.org:|arxiv:)\s*", re.IGNORECASE)
_ID_HELP = "expected e.g. 2405.15738, 2405.15738v2, arXiv:2405.15738, hep-th/9901001 or an arxiv.org abs/pdf URL"


def parse_arxiv_id(text: str) -> tuple[str, int | None]:
    """Normalise an arXiv id, ``arXiv:`` reference or arxiv.org abs/pdf URL.

    Returns ``(id without version, version or None)``; old-style ids drop the subject class
    (``math.GT/0309136`` -> ``math/0309136``, arXiv's canonical form). Raises ``ValueError``
    with a message fit to show a user.
    """
    if not isinstance(text, str):
        raise ValueError(f"not a valid arXiv id: {text!r} ({_ID_HELP})")
    s = text.strip()
    m = _NEW_ID.fullmatch(s)  # the common case first: a bare new-style id
    if not m:
        url = _URL.fullmatch(s)
        if url:
            s = url.group(1)
        elif _PREFIX.match(s):
            s = _PREFIX.sub("", s, count=1)
        m = _NEW_ID.fullmatch(s)
    if m:
        yy, mm, num, ver = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
        # YYMM.NNNN from 0704 to 1412, YYMM.NNNNN from 1501 on.
        ok = 1 <= mm <= 12 and (yy, mm) >= (7, 4) and len(num) == (4 if yy < 15 else 5)
        if ok and (ver is None or int(ver) >= 1):
            return f"{m.group(1)}{m.group(2)}.{num}", int(ver) if ver else None
    m = _OLD_ID.fullmatch(s)
    if m:
        archive, yy, mm, ver = m.group(1).lower(), int(m.group(3)), int(m.group(4)), m.group(6)
        in_range = (yy >= 91 or (yy, mm) <= (7, 3)) and 1 <= mm <= 12
        if archive in OLD_ARCHIVES and in_range and (ver is None or int(ver) >= 1):
            return f"{archive}/{m.group(3)}{m.group(4)}{m.group(5)}", int(ver) if ver else None
    shown = text if len(text) <= 80 else text[:77] + "..."
    raise ValueError(f"not a valid arXiv id: {shown!r} ({_ID_HELP})")


# --- text and dates ---------------------------------------------------------------------------

# C0 controls other than whitespace: PostgreSQL rejects NUL in text, and none of them is content.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: object) -> str:
    """Collapse all whitespace (arXiv hard-wraps abstracts) and drop control characters; LaTeX is kept."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"expected text, got {type(value).__name__}")
    if value.isprintable():
        # Fast path (most names and titles): the only whitespace a printable string can hold is " ".
        if "  " in value or value.startswith(" ") or value.endswith(" "):
            return " ".join(value.split())
        return value
    if _CONTROL.search(value):
        value = _CONTROL.sub("", value)
    return " ".join(value.split())


_TEX_COMMAND = re.compile(r"\\[a-zA-Z]+")


def title_key(title: str) -> str:
    """A title reduced for matching the same paper across sources (a BibTeX export and arXiv):
    LaTeX commands, accents, case, punctuation and spacing dropped, letters and digits kept.
    ``{T}he {BERT} model`` and ``The BERT Model.`` give the same key."""
    text = unicodedata.normalize("NFKD", _TEX_COMMAND.sub(" ", title or "")).casefold()
    return "".join(ch for ch in text if ch.isalnum() and not unicodedata.combining(ch))


def clean_optional(value: object) -> str | None:
    """Like :func:`clean_text`, but empty becomes ``None``."""
    return clean_text(value) or None


def parse_day(value: object, what: str) -> date:
    """A ``YYYY-MM-DD`` (optionally with a time part) as a date, or a RecordError naming the field."""
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            pass
    raise RecordError(f"bad date in {what}: {value!r}")


def parse_timestamp(value: object, what: str) -> datetime:
    """An ISO-8601 timestamp as naive UTC (the convention of every DateTime column)."""
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts
    raise RecordError(f"bad timestamp in {what}: {value!r}")


# arXiv archives (current ones plus the old-style ones above): a category is ``archive[.SUBJECT]``.
ARCHIVES = OLD_ARCHIVES | frozenset(
    "astro-ph cond-mat cs econ eess gr-qc hep-ex hep-lat hep-ph hep-th math math-ph nlin nucl-ex nucl-th "
    "physics q-bio q-fin quant-ph stat".split()
)
CATEGORY_RE = re.compile(r"^[a-z][a-z\-]{0,15}(\.[A-Za-z][A-Za-z\-]{0,15})?$")  # cs.LG, hep-th, stat.ML


def is_category(value: str) -> bool:
    """Whether ``value`` has the shape of an arXiv category (the web filters, follows)."""
    return bool(CATEGORY_RE.match(value))


_CATEGORY = re.compile(r"([a-z-]+)(?:\.[A-Za-z-]{1,24})?")


def clean_categories(value: object) -> str:
    """Space-separated arXiv categories, primary first, repeats dropped.

    Some sources append MSC/ACM classes to the category list (``cs.CV 68T45 I.4.8;``); those are
    not arXiv categories and are left out, as is stray punctuation (``cs.CV,``).
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"expected text, got {type(value).__name__}")
    return _categories(value)


@functools.lru_cache(maxsize=8192)  # category lists repeat a lot ("cs.CV cs.AI")
def _categories(value: str) -> str:
    cats = []
    for token in clean_text(value).split():
        token = token.strip(",;")
        m = _CATEGORY.fullmatch(token)
        if m and m.group(1) in ARCHIVES:
            cats.append(token)
    return " ".join(dict.fromkeys(cats))


# --- the record -------------------------------------------------------------------------------

# Columns the arXiv sources own (``listed`` too, but it merges as "earliest wins", outside the hash).
ARXIV_FIELDS = (
    "version",
    "title",
    "abstract",
    "authors",
    "categories",
    "primary_category",
    "comments",
    "doi",
    "journal_ref",
    "license",
    "submitter",
    "published",
    "updated",
)
# Columns the HF daily importer owns.
HF_FIELDS = (
    "github_repo",
    "github_stars",
    "project_page",
    "imported_upvotes",
    "ai_summary",
    "ai_keywords",
    "hidden_authors",
)


def _sha(value: object) -> str:
    return hashlib.sha256(orjson.dumps(value)).hexdigest()


def content_hash(title: str, abstract: str) -> str:
    """Drives re-embedding: changes exactly when the normalised title or abstract changes."""
    return hashlib.sha256(f"{title}\n{abstract}".encode()).hexdigest()


def hf_hash(values: dict[str, object]) -> str:
    """Hash of the HF-owned paper columns (``HF_FIELDS``); equal hash -> nothing to write."""
    return _sha([values.get(f) for f in HF_FIELDS])


def source_hash(source: object) -> str:
    """Hash of one source JSON object as received (key order included): drives re-import of entries."""
    return _sha(source)


@dataclass(slots=True)
class PaperRecord:
    """A paper as one source describes it, normalised (ids, whitespace, dates)."""

    id: str
    title: str
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    categories: str = ""
    version: int | None = None  # None: the source does not say (listing file, OAI ``arXiv`` format)
    comments: str | None = None
    doi: str | None = None
    journal_ref: str | None = None
    license: str | None = None
    submitter: str | None = None
    published: date | None = None
    updated: date | None = None
    listed: date | None = None
    # HF-owned fields (only the HF importer sets them).
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    imported_upvotes: int = 0
    ai_summary: str | None = None
    ai_keywords: list[str] | None = None
    # Author names the source marks hidden (``hidden: true`` on the Hub): stored, never shown.
    hidden_authors: list[str] = field(default_factory=list)
    # Fields this source does not carry or only approximates: they fill gaps but never
    # overwrite a value another arXiv record wrote (e.g. the listing file has no DOI).
    inexact: frozenset[str] = frozenset()

    @property
    def primary_category(self) -> str | None:
        return self.categories.split(" ", 1)[0] if self.categories else None

    @property
    def content_hash(self) -> str:
        return content_hash(self.title, self.abstract)

    @property
    def version_floor(self) -> int:
        """The lowest version this record can be: 2 when it has an update after the first version."""
        if self.version is not None:
            return self.version
        return 2 if self.updated and self.published and self.updated > self.published else 1

    def arxiv_hash(self) -> str:
        """Hash of the arXiv-owned fields this record carries exactly; equal hash -> nothing to write."""
        vals = [None if f in self.inexact else getattr(self, f) for f in ARXIV_FIELDS]
        return _sha(vals)

    def hf_values(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in HF_FIELDS}

    def hf_hash(self) -> str:
        return hf_hash(self.hf_values())


@dataclass(slots=True)
class HFEntry:
    """One Hugging Face daily-papers entry: the paper plus its place on the feed.

    ``source`` is the entry exactly as the Hub sent it (``paper`` included): every field is kept,
    also the ones paperfeed has no column for, so the API can serve it back unchanged.
    """

    paper: PaperRecord
    feed_date: date
    submitter: str | None  # the Hub username (``submittedBy.name``)
    submitted_at: datetime
    source: dict[str, Any] = field(default_factory=dict)
    submitter_fullname: str | None = None  # the display name (``submittedBy.fullname``)
    published_at: datetime | None = None  # the entry-level ``publishedAt`` (the Hub's tie order)
    position: int | None = None  # 1-based place in the Hub's response for that day

    @property
    def source_hash(self) -> str:
        return source_hash([self.source, self.position])
