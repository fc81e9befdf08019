"""The lexical index's document layout: the tantivy schema and how a paper row becomes a document.

Used by :mod:`paperfeed.search.lexical` when it writes the index and by
:mod:`paperfeed.search.lexical_query` when it builds queries against the same fields.

Fields: ``id`` (raw, stored), ``title`` (text analysis, frequencies), ``text`` (title + abstract as
two values, with positions for phrases), ``authors`` (name analysis, one value per author, positions),
``cat`` (raw, lower-cased categories plus their archives; fast, so trends can count papers per
category), ``author_name`` (raw author names as written; fast, for trends' top authors), ``published``
(date, fast), ``has_code`` (bool, fast), ``modified_us`` (int, fast: change detection) and
``content_hash`` (stored bytes).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import tantivy

from paperfeed.latex_text import to_plain
from paperfeed.search.analysis import NAME_ANALYZER, TEXT_ANALYZER
from paperfeed.search.query import canonical_category

FORMAT = 3  # bump when the schema or the analysis changes: the next update rebuilds the index (3: LaTeX as text)
_EPOCH = datetime(1970, 1, 1)


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("title", tokenizer_name=TEXT_ANALYZER, index_option="freq")
    sb.add_text_field("text", tokenizer_name=TEXT_ANALYZER, index_option="position")  # title + abstract
    sb.add_text_field("authors", tokenizer_name=NAME_ANALYZER, index_option="position")  # one value each
    sb.add_text_field("cat", tokenizer_name="raw", index_option="basic", fast=True)  # "cs.lg" and its archive "cs"
    sb.add_text_field("author_name", tokenizer_name="raw", index_option="basic", fast=True)  # as written
    sb.add_date_field("published", indexed=True, fast=True)
    sb.add_boolean_field("has_code", indexed=True, fast=True)
    sb.add_integer_field("modified_us", fast=True)  # change detection for the overlap window
    sb.add_bytes_field("content_hash", stored=True)
    return sb.build()


SCHEMA = build_schema()


def micros(ts: datetime) -> int:
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return (ts - _EPOCH) // timedelta(microseconds=1)


def category_terms(categories: Iterable[str], *, with_archive: bool) -> list[str]:
    """Index terms for categories: lower-cased canonical names, plus (for documents) each archive
    ("cs" for "cs.LG") so that ``cat:cs`` finds every cs paper."""
    out: list[str] = []
    for raw in categories:
        cat = canonical_category(raw)
        if cat is None:
            continue
        cat = cat.lower()
        for term in (cat, cat.split(".", 1)[0]) if with_archive else (cat,):
            if term not in out:
                out.append(term)
    return out


def make_document(row: dict[str, Any]) -> tantivy.Document:
    """The index document for one paper row (see ``store.search_source.iter_papers_since``)."""
    doc = tantivy.Document()
    doc.add_text("id", row["id"])
    # Text-mode LaTeX is indexed as the text it shows (``\\textbf{X}`` -> ``X``): commands are never terms.
    title, abstract = to_plain(row.get("title") or ""), to_plain(row.get("abstract") or "")
    doc.add_text("title", title)
    doc.add_text("text", title)
    doc.add_text("text", abstract)  # a second value: phrases do not run from the title into the abstract
    for author in row.get("authors") or ():
        doc.add_text("authors", str(author))
        name = " ".join(str(author).split())
        if name:
            doc.add_text("author_name", name[:200])
    cats = row.get("categories") or ()
    for term in category_terms(cats.split() if isinstance(cats, str) else cats, with_archive=True):
        doc.add_text("cat", term)
    published = row.get("published")
    if isinstance(published, datetime):
        doc.add_date("published", published)
    elif isinstance(published, date):
        doc.add_date("published", datetime(published.year, published.month, published.day))
    doc.add_boolean("has_code", bool(row.get("github_repo")))
    if row.get("modified_at") is not None:
        doc.add_integer("modified_us", micros(row["modified_at"]))
    content_hash = row.get("content_hash")
    if content_hash:
        try:
            doc.add_bytes("content_hash", bytes.fromhex(content_hash))
        except ValueError:
            doc.add_bytes("content_hash", str(content_hash).encode())
    return doc
