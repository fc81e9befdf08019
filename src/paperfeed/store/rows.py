"""The shape of a paper row as the store's read queries hand it out (feed pages, search hits,
paper pages, digests): ``papers`` columns, the daily entry's columns when the paper has one,
and ``upvotes_total`` (:mod:`paperfeed.store.upvotes`).

A query selects the columns it needs, so every key is optional; the type names what may be
there and its type, for the cards and API shapes built from it (``paperfeed.cards``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, TypedDict


class PaperRow(TypedDict, total=False):
    # papers
    id: str
    version: int
    title: str
    abstract: str
    authors: list[str]
    categories: str  # space separated, primary first
    primary_category: str | None
    comments: str | None
    doi: str | None
    journal_ref: str | None
    license: str | None
    submitter: str | None
    published: date | None
    updated: date | None
    listed: date | None
    github_repo: str | None
    github_stars: int | None
    project_page: str | None
    imported_upvotes: int
    upvotes: int
    num_comments: int
    content_hash: str
    arxiv_hash: str | None
    hf_hash: str | None
    created_at: datetime
    modified_at: datetime
    ai_summary: str | None
    ai_keywords: list[str] | None
    hidden_authors: list[str] | None
    # derived
    upvotes_total: int
    # the visible daily entry, when the paper has one
    feed_date: date | None
    entry_submitter: str | None
    submitted_at: datetime | None
    entry_source: str | None
    featured: bool | None
    entry_user_id: int | None
    submitter_fullname: str | None
    entry_published_at: datetime | None
    hf_source: Any  # the Hub's entry as it was sent (JSON)
    entry_hidden: bool | None
