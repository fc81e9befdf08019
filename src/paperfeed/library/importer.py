"""Importing references into a collection, and exporting one.

An import (a Zotero or Google Scholar BibTeX export, RIS, CSL-JSON, or a pasted list of arXiv ids
and URLs) is parsed whole first (``formats.parse``; garbage is a 400 before anything is written),
then each entry is matched to a paper here: by **arXiv id**, then **DOI**, then **normalised
title** (``records.title_key``). An arXiv id this instance does not have is fetched with OAI-PMH
``GetRecord`` through the harvester's client (``ingest.oai``), at most ``import_fetches`` per import;
when arXiv cannot be reached the entry is listed as "not fetched: arXiv unreachable" (import the
file again later: what matched is kept, nothing is duplicated). Every entry ends up in the report
with its outcome - added, already there, or why not - never silently dropped. The papers fetched,
the new collection (if asked for) and all its new items are written in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from paperfeed.community.core import Community, User, require_active
from paperfeed.community.errors import CommunityError
from paperfeed.community.ratelimit import bucket
from paperfeed.config import Settings
from paperfeed.ingest.oai import HarvestError, OAIClient, RecordNotFound, fetch_record
from paperfeed.library import formats
from paperfeed.library.collections import LIMITS, Collection, LibraryLimits, clean_name, clean_note, owned, slugify
from paperfeed.records import PaperRecord, RecordError, title_key
from paperfeed.store import library_store as store
from paperfeed.store import papers as paper_store

# (settings, arXiv id, shared client) -> the record; raises like ingest.oai.fetch_record.
Fetcher = Callable[[Settings, str, OAIClient], PaperRecord]
UNREACHABLE = "not fetched: arXiv unreachable"


@dataclass(frozen=True)
class Outcome:
    """What became of one entry of an import."""

    ref: str
    title: str | None
    status: str  # added | present | unmatched | not_fetched | unreadable
    paper_id: str | None = None
    matched_by: str | None = None  # arxiv id | doi | title (how the paper was found)
    fetched: bool = False  # the paper was fetched from arXiv for this import
    reason: str | None = None  # why it is not in the collection

    def as_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "title": self.title, "status": self.status, "paperId": self.paper_id,
                "matchedBy": self.matched_by, "fetched": self.fetched, "reason": self.reason}  # fmt: skip


@dataclass(frozen=True)
class ImportReport:
    collection: Collection
    format: str
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def left_out(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status not in ("added", "present")]

    def as_json(self) -> dict[str, Any]:
        counts = {s: self.count(s) for s in ("added", "present", "unmatched", "not_fetched", "unreadable")}
        return {"collection": self.collection.as_json(), "format": self.format, "entries": len(self.outcomes),
                "counts": counts, "outcomes": [o.as_json() for o in self.outcomes]}  # fmt: skip


def _default_fetch(settings: Settings, arxiv_id: str, client: OAIClient) -> PaperRecord:
    return fetch_record(settings, arxiv_id, client=client)


def decode(data: bytes | str, limits: LibraryLimits = LIMITS) -> str:
    """The upload as text: UTF-8 (a BOM is fine), else Latin-1 - but never a binary file."""
    if isinstance(data, str):
        raw_len, text = len(data.encode("utf-8", "replace")), data
    else:
        raw_len = len(data)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    if raw_len > limits.import_bytes:
        raise CommunityError(f"The file is {raw_len:,} bytes; an import can be at most {limits.import_bytes:,}.",
                             status=413)  # fmt: skip
    if "\x00" in text or sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\t\r\n\f") > 8:
        raise CommunityError("This looks like a binary file, not BibTeX, RIS, CSL-JSON or a list of arXiv ids.",
                             status=400)  # fmt: skip
    if not text.strip():
        raise CommunityError("The file is empty.", status=400)
    return text


def run_import(
    c: Community,
    user: User | None,
    data: bytes | str,
    *,
    fmt: str = "auto",
    collection: str | None = None,
    new_name: str | None = None,
    ip: str | None = None,
    fetch: Fetcher | None = None,
    limits: LibraryLimits = LIMITS,
) -> ImportReport:
    """Import ``data`` into the user's collection ``collection`` (a slug; Saved when both it and
    ``new_name`` are empty) or into a new collection called ``new_name``."""
    user = require_active(user)
    text = decode(data, limits)
    try:
        fmt, entries = formats.parse(text, fmt)
    except formats.FormatError as exc:
        raise CommunityError(str(exc), status=400) from None
    if len(entries) > limits.import_entries:
        raise CommunityError(f"This file has {len(entries):,} entries; an import can have at most "
                             f"{limits.import_entries:,}. Split it into smaller files.", status=413)  # fmt: skip
    name = clean_name(new_name, limits) if new_name and new_name.strip() else None
    target = None if name else owned(c, user, collection or "saved")
    c.rate_limiter.hit(bucket("import:user", user.id, c.limits.import_user),
                       bucket("import:ip", ip, c.limits.import_ip), what="imports")  # fmt: skip

    found, how = _match(c, entries)
    fetched, not_fetched = _fetch_unknown(c, entries, found, fetch or _default_fetch, limits)
    outcomes: list[Outcome] = []
    wanted: dict[str, str | None] = {}  # paper id -> note, in file order
    for i, e in enumerate(entries):
        pid = found.get(i) or (e.arxiv_id if e.arxiv_id in fetched else None)
        if e.problem:
            outcomes.append(Outcome(e.ref, e.title, "unreadable", reason=e.problem))
        elif pid is not None:
            wanted.setdefault(pid, clean_note((e.note or "")[: limits.note_chars], limits))
            outcomes.append(Outcome(e.ref, e.title, "added", pid, how.get(i, "arxiv id"), pid in fetched))
        elif e.arxiv_id and e.arxiv_id in not_fetched:
            outcomes.append(Outcome(e.ref, e.title, "not_fetched", e.arxiv_id, reason=not_fetched[e.arxiv_id]))
        else:
            outcomes.append(Outcome(e.ref, e.title, "unmatched", e.arxiv_id, reason=_why_unmatched(e)))

    with c.db.write() as conn:
        if fetched:
            paper_store.upsert_arxiv(conn, list(fetched.values()), c.now())
        if target is None:
            assert name is not None
            if store.count_collections(conn, user.id) >= limits.collections_per_user:
                raise CommunityError(f"You have {limits.collections_per_user} collections, the most an account can "
                                     "have; import into an existing one.", status=409)  # fmt: skip
            taken = store.slugs_taken(conn, user.id, slugify(name))
            slug = next(s for s in (slugify(name), *(f"{slugify(name)}-{i}" for i in range(2, 10_000)))
                        if s not in taken)  # fmt: skip
            cid = store.create_collection(conn, user.id, name, slug, c.now())
        else:
            cid = target.id
        present = store.item_ids(conn, cid, wanted)
        new = [(pid, note) for pid, note in wanted.items() if pid not in present]
        if store.count_items(conn, cid) + len(new) > limits.items_per_collection:
            raise CommunityError(f"The collection would hold more than {limits.items_per_collection:,} papers, the "
                                 "most one can hold; import into a new collection.", status=409)  # fmt: skip
        store.add_items(conn, cid, new, c.now())
        store.touch_collection(conn, cid, c.now())
        row = store.get_collection(conn, cid)
        assert row is not None
        row["items"] = store.count_items(conn, cid)
    seen: set[str] = set()
    final = []
    for o in outcomes:  # a paper twice in the file, or already in the collection: "present"
        if o.status == "added" and o.paper_id is not None and (o.paper_id in present or o.paper_id in seen):
            o = Outcome(o.ref, o.title, "present", o.paper_id, o.matched_by, o.fetched)
        if o.paper_id and o.status in ("added", "present"):
            seen.add(o.paper_id)
        final.append(o)
    return ImportReport(Collection.from_row(row), fmt, final)


def _why_unmatched(e: formats.ImportEntry) -> str:
    if e.arxiv_id:
        return f"arXiv has no paper {e.arxiv_id}"
    if e.doi or e.title:
        return "no paper here with this " + " or ".join(x for x, v in (("DOI", e.doi), ("title", e.title)) if v)
    return "the entry has no arXiv id, DOI or title to match"


def _match(c: Community, entries: list[formats.ImportEntry]) -> tuple[dict[int, str], dict[int, str]]:
    """entry index -> paper id, and how it matched: arXiv id first, then DOI, then title."""
    found: dict[int, str] = {}
    how: dict[int, str] = {}
    with c.db.read() as conn:
        known = store.existing_ids(conn, [e.arxiv_id for e in entries if e.arxiv_id])
        for i, e in enumerate(entries):
            if e.arxiv_id in known:
                found[i], how[i] = e.arxiv_id, "arxiv id"
        by_doi = store.ids_by_doi(conn, [e.doi for i, e in enumerate(entries) if e.doi and i not in found])
        for i, e in enumerate(entries):
            if i not in found and e.doi and e.doi.lower() in by_doi:
                found[i], how[i] = by_doi[e.doi.lower()], "doi"
        rest = {i: title_key(e.title) for i, e in enumerate(entries) if i not in found and e.title and not e.problem}
        # An arXiv id we do not have is fetched instead (the title may be a different version's).
        rest = {i: k for i, k in rest.items() if not entries[i].arxiv_id and len(k) >= 12}
        by_title = store.ids_by_title_key(conn, rest.values())
        for i, key in rest.items():
            if key in by_title:
                found[i], how[i] = by_title[key], "title"
    return found, how


def _fetch_unknown(c: Community, entries: list[formats.ImportEntry], found: dict[int, str], fetch: Fetcher,
                   limits: LibraryLimits) -> tuple[dict[str, PaperRecord], dict[str, str]]:  # fmt: skip
    """Fetch arXiv ids nobody matched: (id -> record fetched, id -> why it was not fetched)."""
    unknown = list(dict.fromkeys(e.arxiv_id for i, e in enumerate(entries) if e.arxiv_id and i not in found))
    fetched: dict[str, PaperRecord] = {}
    skipped: dict[str, str] = {}
    if not unknown:
        return fetched, skipped
    delay = min(c.settings.harvest_delay, 1.0)
    with OAIClient(c.settings.oai_url, delay=delay, max_retries=0, backoff=1.0, timeout=10.0) as client:
        for n, pid in enumerate(unknown):
            if n >= limits.import_fetches:
                skipped[pid] = (f"not fetched: at most {limits.import_fetches} new papers are fetched from arXiv per "
                                "import; import the file again for the rest")  # fmt: skip
                continue
            if skipped and any(v == UNREACHABLE for v in skipped.values()):
                skipped[pid] = UNREACHABLE
                continue
            try:
                record = fetch(c.settings, pid, client)
            except RecordNotFound:
                continue  # reported as unmatched: arXiv has no such paper
            except RecordError as exc:
                skipped[pid] = f"not fetched: arXiv's record could not be used ({exc})"
            except (HarvestError, OSError):
                skipped[pid] = UNREACHABLE
            else:
                fetched[record.id] = record
    return fetched, skipped


def export_papers(c: Community, collection: Collection, *, with_notes: bool) -> list[formats.ExportPaper]:
    """Every paper of the collection (oldest addition first, the order a reference list grows in)."""
    with c.db.read() as conn:
        rows = list(reversed(store.items(conn, collection.id, limit=LIMITS.items_per_collection + 1)))
        papers = store.papers_for_export(conn, [r["paper_id"] for r in rows])
    out = []
    for r in rows:
        p = papers.get(r["paper_id"])
        if p is None:
            continue
        out.append(formats.ExportPaper(
            arxiv_id=p["id"], title=p["title"], authors=tuple(p["authors"] or ()), published=p["published"],
            primary_category=p["primary_category"], doi=p["doi"], journal_ref=p["journal_ref"],
            abstract=p["abstract"] or None, note=r["note"] if with_notes else None,
        ))  # fmt: skip
    return out
