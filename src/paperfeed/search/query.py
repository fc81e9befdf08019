"""The search query language: parse what a user typed into a :class:`ParsedQuery`.

Runs on every search request before any engine sees the query; raw user text is never handed to
a search engine's own parser. Grammar (whitespace separated; everything else is plain text):

* ``"exact phrase"``; ``-word`` and ``-"phrase"`` exclude;
* ``author:name``, ``author:"Yann LeCun"`` (also ``au:``); every author given must match;
* ``cat:cs.LG`` (also ``category:``; ``cat:cs`` means any ``cs.*``); any category given may match;
* ``year:2024`` or ``year:2020-2024``; ``after:2024-01-01`` / ``before:2024-06-30`` (also
  ``since:`` / ``until:``). A bound may be ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``; both ends are
  inclusive: ``after:2024-03`` starts on March 1st, ``before:2024-03`` ends on March 31st.

Unknown ``field:value`` words are plain text. Parsing never raises: input is cleaned (NUL, control
characters and lone surrogates removed, NFKC normalised), cut to :data:`MAX_QUERY_CHARS`, and
anything unusable is dropped with a human-readable entry in ``warnings``.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

MAX_QUERY_CHARS = 1_000  # longer input is cut (with a warning): keeps query cost bounded
MAX_FILTER_VALUES = 20  # per kind (authors, categories): more is abuse, not a search
MIN_YEAR, MAX_YEAR = 1900, 2200

_AUTHOR_FIELDS = {"author", "authors", "au"}
_CATEGORY_FIELDS = {"cat", "category", "categories"}
_YEAR_FIELDS = {"year"}
_FROM_FIELDS = {"after", "since"}
_TO_FIELDS = {"before", "until"}
_KNOWN_FIELDS = _AUTHOR_FIELDS | _CATEGORY_FIELDS | _YEAR_FIELDS | _FROM_FIELDS | _TO_FIELDS

_FIELD = re.compile(r"([A-Za-z]+):")
_CATEGORY = re.compile(r"^([a-z]+(?:-[a-z]+)*)(?:\.([a-z]+(?:-[a-z]+)*))?$", re.IGNORECASE)
_DATE = re.compile(r"^(\d{4})(?:[-/.](\d{1,2})(?:[-/.](\d{1,2}))?)?$")
_YEAR_RANGE = re.compile(r"^(\d{4})\s*(?:-|\.\.)\s*(\d{4})$")
_HAS_WORD = re.compile(r"\w")


@dataclass
class ParsedQuery:
    terms: list[str] = field(default_factory=list)  # plain words, as typed
    phrases: list[str] = field(default_factory=list)  # quoted text, without the quotes
    excluded_terms: list[str] = field(default_factory=list)
    excluded_phrases: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # canonical case: "cs.LG", "math.AG", "hep-th"
    date_from: date | None = None  # inclusive
    date_to: date | None = None  # inclusive
    text: str = ""  # the free text (plain words and phrases, in order) for the semantic side
    warnings: list[str] = field(default_factory=list)

    @property
    def has_text(self) -> bool:
        """Whether there is anything to rank by (as opposed to filters only)."""
        return bool(self.terms or self.phrases)

    @property
    def is_empty(self) -> bool:
        """Nothing to search for and nothing to filter on."""
        return not (
            self.terms
            or self.phrases
            or self.excluded_terms
            or self.excluded_phrases
            or self.authors
            or self.categories
            or self.date_from
            or self.date_to
        )


def clean(raw: object) -> tuple[str, list[str]]:
    """NFKC-normalised text without control characters or lone surrogates, whitespace collapsed,
    cut to :data:`MAX_QUERY_CHARS` at a word boundary; plus warnings."""
    warnings: list[str] = []
    if raw is None:
        return "", warnings
    if not isinstance(raw, str):
        raw = str(raw)
    cut_early = len(raw) > 4 * MAX_QUERY_CHARS
    if cut_early:  # bound the cleaning work for megabyte-sized input; the cut below is the real one
        raw = raw[: 4 * MAX_QUERY_CHARS]
    # Lone surrogates cannot be encoded to UTF-8 (every engine below would choke on them).
    text = raw.encode("utf-8", "replace").decode("utf-8") if _has_surrogates(raw) else raw
    text = unicodedata.normalize("NFKC", text)
    # Control characters go (NUL included); the ones that separate words become spaces.
    text = "".join(" " if ch.isspace() else "" if unicodedata.category(ch) == "Cc" else ch for ch in text)
    text = " ".join(text.split())
    if cut_early or len(text) > MAX_QUERY_CHARS:
        cut = text.rfind(" ", 0, MAX_QUERY_CHARS + 1)
        if len(text) > MAX_QUERY_CHARS:
            text = text[: cut if cut > MAX_QUERY_CHARS // 2 else MAX_QUERY_CHARS].rstrip()
        warnings.append(f"The query was cut to its first {MAX_QUERY_CHARS:,} characters.")
    return text, warnings


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def canonical_category(value: str) -> str | None:
    """``cs.lg`` -> ``cs.LG``, ``MATH.ag`` -> ``math.AG``, ``hep-TH`` -> ``hep-th``,
    ``physics.Optics`` -> ``physics.optics``; None when it cannot be an arXiv category."""
    m = _CATEGORY.match(value.strip())
    if not m or len(value) > 40:
        return None
    archive, subject = m.group(1).lower(), m.group(2)
    if subject is None:
        return archive
    # arXiv spells two-letter subject classes in capitals (cs.LG, math.AG, astro-ph.CO) and
    # longer ones in lower case (physics.optics, cond-mat.mes-hall).
    return f"{archive}.{subject.upper() if len(subject) == 2 else subject.lower()}"


def _date_bound(value: str, *, end: bool) -> date | None:
    """First (or last, when ``end``) day of ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``."""
    m = _DATE.match(value.strip())
    if not m:
        return None
    year = int(m.group(1))
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None
    month = int(m.group(2)) if m.group(2) else None
    day = int(m.group(3)) if m.group(3) else None
    try:
        if month is None:
            return date(year, 12, 31) if end else date(year, 1, 1)
        if day is None:
            return date(year, month, calendar.monthrange(year, month)[1] if end else 1)
        return date(year, month, day)
    except ValueError:  # month 13, February 30th, ...
        return None


def _read_quoted(text: str, i: int) -> tuple[str, int, bool]:
    """The text after the quote at ``i`` up to the closing quote; (value, next index, closed)."""
    close = text.find('"', i + 1)
    if close < 0:
        return text[i + 1 :], len(text), False
    return text[i + 1 : close], close + 1, True


def _read_word(text: str, i: int) -> tuple[str, int]:
    j = i
    while j < len(text) and not text[j].isspace():
        j += 1
    return text[i:j], j


def _normalise_words(value: str) -> str:
    return " ".join(value.replace('"', " ").split())


class _Builder:
    def __init__(self) -> None:
        self.q = ParsedQuery()
        self.free: list[str] = []
        self.froms: list[date] = []
        self.tos: list[date] = []

    def warn(self, message: str) -> None:
        if message not in self.q.warnings:
            self.q.warnings.append(message)

    def plain(self, word: str) -> None:
        if _HAS_WORD.search(word):
            self.q.terms.append(word)
            self.free.append(word)

    def phrase(self, value: str, *, excluded: bool) -> None:
        value = _normalise_words(value)
        if not _HAS_WORD.search(value):
            return
        if excluded:
            self.q.excluded_phrases.append(value)
        else:
            self.q.phrases.append(value)
            self.free.append(value)

    def excluded(self, word: str) -> None:
        if _HAS_WORD.search(word):
            self.q.excluded_terms.append(word)

    def field(self, name: str, value: str, raw: str) -> None:
        """A ``name:value`` filter; ``raw`` is the whole word, used when the field is unknown."""
        key = name.lower()
        value = _normalise_words(value)
        if key not in _KNOWN_FIELDS:
            self.plain(raw)
            return
        if not value:
            self.warn(f"'{name}:' needs a value; it was ignored.")
            return
        if key in _AUTHOR_FIELDS:
            if not _HAS_WORD.search(value):
                self.warn(f"'{name}:{value}' is not a name; it was ignored.")
            elif len(self.q.authors) >= MAX_FILTER_VALUES:
                self.warn(f"Only the first {MAX_FILTER_VALUES} author filters are used.")
            elif value not in self.q.authors:
                self.q.authors.append(value)
        elif key in _CATEGORY_FIELDS:
            for part in value.replace(",", " ").split():
                cat = canonical_category(part)
                if cat is None:
                    self.warn(f"'{part}' is not an arXiv category (for example cs.LG); it was ignored.")
                elif len(self.q.categories) >= MAX_FILTER_VALUES:
                    self.warn(f"Only the first {MAX_FILTER_VALUES} category filters are used.")
                elif cat not in self.q.categories:
                    self.q.categories.append(cat)
        elif key in _YEAR_FIELDS:
            m = _YEAR_RANGE.match(value)
            lo, hi = (m.group(1), m.group(2)) if m else (value, value)
            start, end = _date_bound(lo, end=False), _date_bound(hi, end=True)
            if start is None or end is None or len(lo) != 4 or len(hi) != 4:
                self.warn(f"'{name}:{value}' is not a year (for example year:2024); it was ignored.")
            else:
                self.froms.append(start)
                self.tos.append(end)
        else:
            is_end = key in _TO_FIELDS
            bound = _date_bound(value, end=is_end)
            if bound is None:
                self.warn(f"'{name}:{value}' is not a date (use YYYY, YYYY-MM or YYYY-MM-DD); it was ignored.")
            else:
                (self.tos if is_end else self.froms).append(bound)

    def finish(self) -> ParsedQuery:
        q = self.q
        # Several date filters narrow each other down (all of them must hold).
        q.date_from = max(self.froms) if self.froms else None
        q.date_to = min(self.tos) if self.tos else None
        if q.date_from and q.date_to and q.date_from > q.date_to:
            self.warn(f"No date is both on or after {q.date_from} and on or before {q.date_to}.")
        q.text = " ".join(self.free)
        return q


def parse_query(raw: object) -> ParsedQuery:
    """Parse a user query. Never raises; problems are reported in ``warnings``."""
    text, warnings = clean(raw)
    b = _Builder()
    for w in warnings:
        b.warn(w)
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == '"' or (ch == "-" and text.startswith('"', i + 1)):
            excluded = ch == "-"
            value, i, closed = _read_quoted(text, i + 1 if excluded else i)
            if not closed:
                b.warn("A quote was not closed; the rest of the query was read as one phrase.")
            b.phrase(value, excluded=excluded)
            continue
        negated = ch == "-"
        start = i + 1 if negated else i
        m = _FIELD.match(text, start)
        if m and m.group(1).lower() in _KNOWN_FIELDS:
            name = m.group(1)
            if text.startswith('"', m.end()):
                value, i, closed = _read_quoted(text, m.end())
                if not closed:
                    b.warn("A quote was not closed; the rest of the query was read as one value.")
            else:
                value, i = _read_word(text, m.end())
            if negated:
                b.warn(f"'-{name}:' filters cannot be excluded; '-{name}:{value}' was ignored.")
            else:
                b.field(name, value, text[start:i])
            continue
        word, i = _read_word(text, start)
        if negated:
            if word:
                b.excluded(word)
            continue
        b.plain(word)
    return b.finish()
