"""Paper and daily-entry writes (batched upserts for the importers) and the small reads they need.

Runs inside one transaction per batch: one SELECT of the batch's existing rows, then executemany
INSERTs for new papers and UPDATEs for changed ones; unchanged papers are not touched, so
``modified_at`` moves only when something changed. Ownership rules:

* arXiv records (file import, OAI harvest) own the bibliographic columns; an older version never
  overwrites a newer one; ``listed`` keeps the earliest listing date.
* HF daily entries own ``HF_FIELDS`` (links, stars, imported upvotes, AI summary/keywords, hidden
  author names) and create the paper from HF's title/summary/authors only when it is missing.
  Counts keep the largest value seen, links and AI texts come from the paper's earliest feed day
  (later days fill gaps), hidden names accumulate, so the import order does not matter.
* Author names a source marks hidden are never stored in ``authors`` (whoever writes it).
* One daily entry per paper: the earliest feed date wins, whatever the import order. An HF entry
  keeps the whole source object (``hf_source``); its hash makes a re-import of the same day a no-op.

Portable SQL only (SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from paperfeed.records import ARXIV_FIELDS, HF_FIELDS, HFEntry, PaperRecord, hf_hash
from paperfeed.store.db import Database, utcnow
from paperfeed.store.schema import daily_entries, ingest_state, papers

__all__ = [
    "UpsertCounts",
    "get_daily_entry",
    "get_ingest_state",
    "get_paper",
    "set_ingest_state",
    "upsert_arxiv",
    "upsert_hf",
]


@dataclass
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, other: UpsertCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged


# Existing-row columns the arXiv merge needs: small ones only (no title/abstract/authors).
_ARXIV_STATE = (
    "id",
    "version",
    "published",
    "updated",
    "listed",
    "doi",
    "journal_ref",
    "license",
    "submitter",
    "arxiv_hash",
    "hidden_authors",
)
_HF_STATE = ("id", *HF_FIELDS, "hf_hash", "authors")

_UPDATE_ARXIV = (
    update(papers)
    .where(papers.c.id == bindparam("_id"))
    .values({c: bindparam(c) for c in (*ARXIV_FIELDS, "listed", "content_hash", "arxiv_hash", "modified_at")})
)
_UPDATE_LISTED = (
    update(papers)
    .where(papers.c.id == bindparam("_id"))
    .values(listed=bindparam("listed"), modified_at=bindparam("modified_at"))
)
_UPDATE_HF = (
    update(papers)
    .where(papers.c.id == bindparam("_id"))
    .values({c: bindparam(c) for c in (*HF_FIELDS, "hf_hash", "modified_at")})
)
_UPDATE_AUTHORS = update(papers).where(papers.c.id == bindparam("_id")).values(authors=bindparam("authors"))
_ENTRY_FIELDS = (
    "feed_date",
    "submitter",
    "submitted_at",
    "source",
    "user_id",
    "hf_source",
    "hf_hash",
    "published_at",
    "submitter_fullname",
    "hf_position",
)
_UPDATE_ENTRY = (
    update(daily_entries)
    .where(daily_entries.c.paper_id == bindparam("_id"))
    .values({c: bindparam(c) for c in _ENTRY_FIELDS})
)


def _existing(conn: Connection, columns: Sequence[str], ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    cols = [papers.c[c] for c in columns]
    rows = conn.execute(select(*cols).where(papers.c.id.in_(list(ids)))).all()
    return {r[0]: dict(zip(columns, r, strict=True)) for r in rows}


def _earliest(a: date | None, b: date | None) -> date | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _is_older(rec: PaperRecord, cur: dict[str, Any]) -> bool:
    """Whether ``rec`` describes an older version than the stored arXiv data."""
    if rec.version is not None:
        return rec.version < cur["version"]
    # No version number (listing file, OAI ``arXiv`` format): compare last-updated dates when
    # both are known; otherwise a stored version above 1 is known to be newer than unknown.
    if rec.updated is not None and "updated" not in rec.inexact and cur["updated"] is not None:
        return rec.updated < cur["updated"]
    return cur["version"] > 1


def _without_hidden(authors: list[str], hidden: list[str] | None) -> list[str]:
    """Author names minus the ones a source marks hidden (the one place that rule is applied)."""
    if not hidden:
        return authors
    drop = set(hidden)
    return [a for a in authors if a not in drop]


def _arxiv_values(rec: PaperRecord, cur: dict[str, Any] | None) -> dict[str, Any]:
    """The arXiv-owned column values to store for ``rec`` given the stored arXiv state ``cur``."""
    vals: dict[str, Any] = {
        "version": rec.version if rec.version is not None else max(cur["version"] if cur else 0, rec.version_floor),
        "title": rec.title,
        "abstract": rec.abstract,
        "authors": _without_hidden(rec.authors, (cur or {}).get("hidden_authors") or rec.hidden_authors),
        "categories": rec.categories,
        "primary_category": rec.primary_category,
        "comments": rec.comments,
        "doi": rec.doi,
        "journal_ref": rec.journal_ref,
        "license": rec.license,
        "submitter": rec.submitter,
        "published": rec.published,
        "updated": rec.updated,
    }
    if cur is not None:
        for f in rec.inexact:
            if f in vals and cur.get(f) is not None:
                vals[f] = cur[f]
    vals["content_hash"] = rec.content_hash
    vals["arxiv_hash"] = rec.arxiv_hash()
    return vals


def upsert_arxiv(conn: Connection, records: Sequence[PaperRecord], now: datetime | None = None) -> UpsertCounts:
    """Insert or update papers from arXiv records (one batch, inside the caller's transaction)."""
    now = now or utcnow()
    counts = UpsertCounts()
    state = _existing(conn, _ARXIV_STATE, list(dict.fromkeys(r.id for r in records)))
    inserts: dict[str, dict[str, Any]] = {}
    full: dict[str, dict[str, Any]] = {}
    listed_only: dict[str, dict[str, Any]] = {}
    for rec in records:
        cur = state.get(rec.id)
        if cur is None:
            row = {"id": rec.id, **_arxiv_values(rec, None), "listed": rec.listed}
            row.update(created_at=now, modified_at=now)
            inserts[rec.id] = row
            state[rec.id] = row
            counts.inserted += 1
            continue
        listed = _earliest(cur["listed"], rec.listed)
        h = rec.arxiv_hash()
        if cur["arxiv_hash"] is None:
            # Created from HF data only: arXiv is authoritative for every bibliographic field.
            fresh = _arxiv_values(rec, None)
            fresh["authors"] = _without_hidden(fresh["authors"], cur.get("hidden_authors"))
            vals: dict[str, Any] | None = fresh
        elif h == cur["arxiv_hash"] or _is_older(rec, cur):
            vals = None
        else:
            vals = _arxiv_values(rec, cur)
        if vals is None and listed == cur["listed"]:
            counts.unchanged += 1
            continue
        counts.updated += 1
        if rec.id in inserts:  # new in this very batch: fold the change into the INSERT
            inserts[rec.id].update(vals or {}, listed=listed)
            continue
        if vals is not None:
            row = full.get(rec.id) or {"_id": rec.id}
            row.update(vals, listed=listed, modified_at=now)
            full[rec.id] = row
            listed_only.pop(rec.id, None)
        elif rec.id in full:
            full[rec.id]["listed"] = listed
        else:
            listed_only[rec.id] = {"_id": rec.id, "listed": listed, "modified_at": now}
        cur.update(vals or {}, listed=listed)
    if inserts:
        conn.execute(insert(papers), list(inserts.values()))
    if full:
        conn.execute(_UPDATE_ARXIV, list(full.values()))
    if listed_only:
        conn.execute(_UPDATE_LISTED, list(listed_only.values()))
    return counts


def _hf_merge(cur: dict[str, Any], rec: PaperRecord, first_day: bool) -> dict[str, Any]:
    """HF fields after seeing ``rec``. Counts keep the largest value seen. Links and AI texts come
    from the paper's earliest feed day: when ``rec`` is from that day (``first_day``) its values
    win, otherwise they only fill gaps. Hidden author names accumulate. Either way the import
    order does not matter."""
    stars = [s for s in (cur["github_stars"], rec.github_stars) if s is not None]
    vals: dict[str, Any] = {}
    for f in ("github_repo", "project_page", "ai_summary", "ai_keywords"):
        mine, theirs = getattr(rec, f), cur[f]
        vals[f] = (mine or theirs) if first_day else (theirs or mine)
    vals["github_stars"] = max(stars) if stars else None
    vals["imported_upvotes"] = max(cur["imported_upvotes"] or 0, rec.imported_upvotes)
    vals["hidden_authors"] = sorted(set(cur["hidden_authors"] or []) | set(rec.hidden_authors)) or None
    vals["hf_hash"] = hf_hash(vals)
    return vals


def _entry_values(e: HFEntry) -> dict[str, Any]:
    return {
        "feed_date": e.feed_date,
        "submitter": e.submitter,
        "submitted_at": e.submitted_at,
        "source": "hf",
        "user_id": None,
        "hf_source": e.source,
        "hf_hash": e.source_hash,
        "published_at": e.published_at,
        "submitter_fullname": e.submitter_fullname,
        "hf_position": e.position,
    }


def upsert_hf(conn: Connection, entries: Sequence[HFEntry], now: datetime | None = None) -> UpsertCounts:
    """Papers and daily entries from HF daily entries (one batch, inside the caller's transaction)."""
    now = now or utcnow()
    counts = UpsertCounts()
    ids = list(dict.fromkeys(e.paper.id for e in entries))
    state = _existing(conn, _HF_STATE, ids)
    days: dict[str, dict[str, Any]] = {}
    if ids:
        q = select(
            daily_entries.c.paper_id, daily_entries.c.feed_date, daily_entries.c.source, daily_entries.c.hf_hash
        ).where(daily_entries.c.paper_id.in_(ids))
        days = {r["paper_id"]: dict(r) for r in conn.execute(q).mappings()}
    new_papers: dict[str, dict[str, Any]] = {}
    hf_updates: dict[str, dict[str, Any]] = {}
    author_updates: dict[str, dict[str, Any]] = {}
    new_days: dict[str, dict[str, Any]] = {}
    day_updates: dict[str, dict[str, Any]] = {}
    for e in entries:
        rec = e.paper
        cur = state.get(rec.id)
        paper_new = paper_changed = day_changed = False
        if cur is None:
            hf_vals = {**rec.hf_values(), "hidden_authors": rec.hidden_authors or None}
            row = {
                "id": rec.id,
                **_arxiv_values(rec, None),
                "listed": None,
                "arxiv_hash": None,
                **hf_vals,
                "hf_hash": hf_hash(hf_vals),
                "created_at": now,
                "modified_at": now,
            }
            new_papers[rec.id] = row
            state[rec.id] = row
            paper_new = True
        else:
            day = days.get(rec.id)
            vals = _hf_merge(cur, rec, first_day=day is None or e.feed_date <= day["feed_date"])
            if vals["hf_hash"] != cur["hf_hash"]:
                paper_changed = True
                cur.update(vals)
                if rec.id in new_papers:
                    new_papers[rec.id].update(vals)
                else:
                    hf_updates[rec.id] = {"_id": rec.id, **vals, "modified_at": now}
                shown = _without_hidden(cur["authors"] or [], vals["hidden_authors"])
                if shown != cur["authors"]:
                    cur["authors"] = shown
                    if rec.id in new_papers:
                        new_papers[rec.id]["authors"] = shown
                    else:
                        author_updates[rec.id] = {"_id": rec.id, "authors": shown}
        day = days.get(rec.id)
        want = _entry_values(e)
        if day is None:
            row = {"paper_id": rec.id, **want}
            new_days[rec.id] = row
            days[rec.id] = row
            day_changed = True
        elif e.feed_date < day["feed_date"] or (
            e.feed_date == day["feed_date"] and day["source"] == "hf" and day["hf_hash"] != want["hf_hash"]
        ):
            # An earlier appearance wins (also over a later local submission); moderation flags stay.
            day.update(want)
            if rec.id not in new_days:  # else ``day`` is the pending INSERT row, updated above
                day_updates[rec.id] = {"_id": rec.id, **want}
            day_changed = True
        if paper_new:
            counts.inserted += 1
        elif paper_changed or day_changed:
            counts.updated += 1
        else:
            counts.unchanged += 1
    if new_papers:
        conn.execute(insert(papers), list(new_papers.values()))
    if hf_updates:
        conn.execute(_UPDATE_HF, list(hf_updates.values()))
    if author_updates:
        conn.execute(_UPDATE_AUTHORS, list(author_updates.values()))
    if new_days:
        conn.execute(insert(daily_entries), list(new_days.values()))
    if day_updates:
        conn.execute(_UPDATE_ENTRY, list(day_updates.values()))
    return counts


# --- small reads --------------------------------------------------------------------------------


def get_paper(conn: Connection, paper_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(papers).where(papers.c.id == paper_id)).mappings().first()
    return dict(row) if row else None


def get_daily_entry(conn: Connection, paper_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(daily_entries).where(daily_entries.c.paper_id == paper_id)).mappings().first()
    return dict(row) if row else None


def get_ingest_state(conn: Connection, source: str) -> dict[str, Any] | None:
    row = conn.execute(select(ingest_state).where(ingest_state.c.source == source)).mappings().first()
    return dict(row) if row else None


def set_ingest_state(conn: Connection, source: str, cursor: str | None, info: dict[str, Any] | None) -> None:
    """Create or replace the resume point of one source (portable: SELECT, then INSERT or UPDATE)."""
    now = utcnow()
    exists = conn.execute(select(ingest_state.c.source).where(ingest_state.c.source == source)).first()
    if exists:
        conn.execute(
            update(ingest_state).where(ingest_state.c.source == source).values(cursor=cursor, info=info, updated_at=now)
        )
    else:
        conn.execute(insert(ingest_state).values(source=source, cursor=cursor, info=info, updated_at=now))


def count_papers_outside(db: Database, ids: Iterable[str]) -> int:
    """How many stored papers are not among ``ids`` (an evaluation refuses a database holding others)."""
    wanted = set(ids)
    with db.read() as conn:
        return sum(1 for pid in conn.scalars(select(papers.c.id)) if pid not in wanted)
