"""Collections: a signed-in user's named lists of papers, each paper with a private note.

Every account has a default collection, **Saved**, made on first use: the save button on cards and
paper pages toggles a paper in it. Other collections are made by name (the URL slug is derived
once and stays when the collection is renamed). Collections are private; making one public gives
it a random read-only URL (``/c/<token>``) that stops working when it is made private again
(making it public once more gives a new one). Sizes are bounded (:class:`LibraryLimits`), and
every action checks that the collection belongs to the acting user: somebody else's collection
answers 404 exactly like one that does not exist.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from paperfeed.community.core import Community, User, paper_key, require_active, strip_controls
from paperfeed.community.errors import CommunityError, NotFound
from paperfeed.store import feed_queries
from paperfeed.store import library_store as store
from paperfeed.store.rows import PaperRow

DEFAULT_NAME = "Saved"
DEFAULT_SLUG = "saved"
RESERVED_SLUGS = frozenset({"import", "collections", "export", "api"})  # /library/<these> are other pages
_SLUG_CHARS = re.compile(r"[^a-z0-9]+")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass(frozen=True)
class LibraryLimits:
    """How much one account may keep; each is a clear 4xx when exceeded."""

    collections_per_user: int = 100
    items_per_collection: int = 5_000
    name_chars: int = 100
    note_chars: int = 5_000
    feedback_per_user: int = 50_000  # "not interested" + hidden papers
    import_bytes: int = 1_000_000  # also the site's request body cap
    import_entries: int = 2_000
    import_fetches: int = 20  # unknown arXiv ids fetched from arXiv per import (the rest: import again)


LIMITS = LibraryLimits()


@dataclass(frozen=True)
class Collection:
    id: int
    owner_id: int
    name: str
    slug: str
    is_default: bool
    public: bool
    share_token: str | None
    created_at: datetime
    updated_at: datetime
    items: int | None = None  # paper count, when the query counted it

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Collection:
        return cls(
            id=int(row["id"]), owner_id=int(row["user_id"]), name=row["name"], slug=row["slug"],
            is_default=bool(row["is_default"]), public=bool(row["public"]), share_token=row["share_token"],
            created_at=row["created_at"], updated_at=row["updated_at"],
            items=int(row["items"]) if row.get("items") is not None else None,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"/library/{self.slug}"

    @property
    def public_url(self) -> str | None:
        return f"/c/{self.share_token}" if self.public and self.share_token else None

    def as_json(self, *, owner: bool = True) -> dict[str, Any]:
        """The collection for its owner (``owner``) or for a reader of its public URL (no ids, no slug)."""
        out: dict[str, Any] = {"name": self.name, "items": self.items, "updatedAt": self.updated_at.isoformat()}
        if owner:
            out.update(slug=self.slug, url=self.url, default=self.is_default, public=self.public,
                       publicUrl=self.public_url, createdAt=self.created_at.isoformat())  # fmt: skip
        else:
            out["url"] = self.public_url
        return out


@dataclass(frozen=True)
class Item:
    """A paper in a collection: its card row (None if the paper is gone), note and when it was added."""

    paper_id: str
    note: str | None
    added_at: datetime
    paper: PaperRow | None


@dataclass(frozen=True)
class SaveState:
    paper_id: str
    saved: bool  # in the collection after the action
    changed: bool
    collection: Collection

    def as_json(self) -> dict[str, Any]:
        return {"paperId": self.paper_id, "saved": self.saved, "changed": self.changed,
                "collection": {"slug": self.collection.slug, "name": self.collection.name,
                               "url": self.collection.url}}  # fmt: skip


# -- validation -------------------------------------------------------------------------------


def clean_name(name: str | None, limits: LibraryLimits = LIMITS) -> str:
    text = " ".join(strip_controls(name).split())
    if not text:
        raise CommunityError("Give the collection a name.", status=422)
    if len(text) > limits.name_chars:
        raise CommunityError(f"A collection name can be at most {limits.name_chars} characters.", status=422)
    return text


def clean_note(note: str | None, limits: LibraryLimits = LIMITS) -> str | None:
    text = strip_controls(note).replace("\r\n", "\n").strip()
    if len(text) > limits.note_chars:
        raise CommunityError(f"A note can be at most {limits.note_chars:,} characters (this one has {len(text):,}).",
                             status=422)  # fmt: skip
    return text or None


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = _SLUG_CHARS.sub("-", ascii_name).strip("-")[:60] or "collection"
    return slug + "-list" if slug in RESERVED_SLUGS else slug


def _slug_key(slug: str) -> str:
    if not slug or len(slug) > 100 or not re.fullmatch(r"[a-z0-9-]+", slug):
        raise NotFound("There is no such collection in your library.")
    return slug


# -- reading ----------------------------------------------------------------------------------


def list_collections(c: Community, user: User | None) -> list[Collection]:
    user = require_active(user)
    with c.db.read() as conn:
        rows = store.list_collections(conn, user.id)
    if not any(r["is_default"] for r in rows):
        default_collection(c, user)
        with c.db.read() as conn:
            rows = store.list_collections(conn, user.id)
    return [Collection.from_row(r) for r in rows]


def owned(c: Community, user: User | None, slug: str) -> Collection:
    """The user's collection ``slug``; NotFound for anybody else's (same answer as a missing one)."""
    user = require_active(user)
    if slug == DEFAULT_SLUG:
        return default_collection(c, user)
    with c.db.read() as conn:
        row = store.get_collection_by_slug(conn, user.id, _slug_key(slug))
        if row is not None:
            row["items"] = store.count_items(conn, int(row["id"]))
    if row is None:
        raise NotFound("There is no such collection in your library.")
    return Collection.from_row(row)


def shared(c: Community, token: str) -> Collection:
    """A public collection by its share token (anybody may read it); NotFound otherwise."""
    row = None
    if _TOKEN.fullmatch(token or ""):
        with c.db.read() as conn:
            row = store.get_collection_by_token(conn, token)
            if row is not None:
                row["items"] = store.count_items(conn, int(row["id"]))
    if row is None:
        raise NotFound("This collection does not exist or is no longer shared.")
    return Collection.from_row(row)


def items(c: Community, collection: Collection, *, limit: int, offset: int = 0) -> list[Item]:
    """Papers of a collection the caller may read (see :func:`owned` / :func:`shared`), newest first."""
    with c.db.read() as conn:
        rows = store.items(conn, collection.id, limit=limit, offset=offset)
        papers = feed_queries.papers_by_ids(conn, [r["paper_id"] for r in rows])
    return [Item(r["paper_id"], r["note"], r["added_at"], papers.get(r["paper_id"])) for r in rows]


def paper_rows(c: Community, paper_ids: list[str]) -> dict[str, PaperRow]:
    """Card rows of some papers (for pages that name them)."""
    with c.db.read() as conn:
        return feed_queries.papers_by_ids(conn, [p for p in paper_ids if p and len(p) <= 32][:500])


def memberships(c: Community, user: User | None, paper_id: str) -> list[dict[str, Any]]:
    """The user's collections holding the paper, with the note in each (empty for nobody)."""
    if user is None:
        return []
    with c.db.read() as conn:
        return store.paper_memberships(conn, user.id, paper_key(paper_id))


def saved_among(c: Community, user: User | None, paper_ids: list[str]) -> set[str]:
    """Which of ``paper_ids`` are in the user's Saved collection (to draw the save buttons)."""
    ids = [p for p in dict.fromkeys(paper_ids) if p and len(p) <= 32][:500]
    if user is None or not ids:
        return set()
    with c.db.read() as conn:
        row = store.get_default_collection(conn, user.id)
        return store.item_ids(conn, int(row["id"]), ids) if row is not None else set()


def reader_state(c: Community, user: User, paper_id: str, memo: dict[str, object]) -> set[str]:
    """``saved`` and the feedback kinds of one paper for one reader (a card's buttons): one query a
    card; ``memo`` (one per request) keeps the reader's Saved collection id between cards."""
    if not paper_id or len(paper_id) > 32:
        return set()
    with c.db.read() as conn:
        if "saved_id" not in memo:
            row = store.get_default_collection(conn, user.id)
            memo["saved_id"] = int(row["id"]) if row is not None else None
        saved_id = memo["saved_id"]
        return store.reader_state(conn, user.id, saved_id if isinstance(saved_id, int) else None, paper_id)


# -- writing ----------------------------------------------------------------------------------


def default_collection(c: Community, user: User) -> Collection:
    """The user's Saved collection, made on first use (two first saves at once make one)."""
    with c.db.read() as conn:
        row = store.get_default_collection(conn, user.id)
    if row is None:
        try:
            with c.db.write() as conn:
                if store.get_default_collection(conn, user.id) is None:
                    store.create_collection(conn, user.id, DEFAULT_NAME, DEFAULT_SLUG, c.now(), is_default=True)
        except IntegrityError:
            pass  # a concurrent request made it
        with c.db.read() as conn:
            row = store.get_default_collection(conn, user.id)
    if row is None:  # pragma: no cover - the insert above either worked or lost to one that did
        raise CommunityError("Could not create your Saved collection; please try again.", status=503)
    with c.db.read() as conn:
        row["items"] = store.count_items(conn, int(row["id"]))
    return Collection.from_row(row)


def create_collection(c: Community, user: User | None, name: str, limits: LibraryLimits = LIMITS) -> Collection:
    user = require_active(user)
    name = clean_name(name, limits)
    default_collection(c, user)
    base = slugify(name)
    for _attempt in range(3):
        try:
            with c.db.write() as conn:
                if store.count_collections(conn, user.id) >= limits.collections_per_user:
                    raise CommunityError(
                        f"You have {limits.collections_per_user} collections, the most an account can have; "
                        "delete one first.", status=409,
                    )  # fmt: skip
                taken = store.slugs_taken(conn, user.id, base)
                slug = base if base not in taken else next(f"{base}-{i}" for i in range(2, 10_000)
                                                            if f"{base}-{i}" not in taken)  # fmt: skip
                cid = store.create_collection(conn, user.id, name, slug, c.now())
                row = store.get_collection(conn, cid)
            assert row is not None
            return Collection.from_row({**row, "items": 0})
        except IntegrityError:
            continue  # the same name created twice at once: take the next slug
    raise CommunityError("Could not create the collection just now; please try again.", status=409)


def rename_collection(c: Community, user: User | None, slug: str, name: str,
                      limits: LibraryLimits = LIMITS) -> Collection:  # fmt: skip
    col = owned(c, user, slug)
    with c.db.write() as conn:
        store.update_collection(conn, col.id, c.now(), name=clean_name(name, limits))
    return owned(c, user, col.slug)


def set_public(c: Community, user: User | None, slug: str, public: bool) -> Collection:
    """Share the collection read-only at a new random URL, or stop sharing it (the URL dies)."""
    col = owned(c, user, slug)
    if public == col.public:
        return col
    token = secrets.token_urlsafe(24) if public else None
    with c.db.write() as conn:
        store.update_collection(conn, col.id, c.now(), public=public, share_token=token)
    return owned(c, user, col.slug)


def delete_collection(c: Community, user: User | None, slug: str) -> Collection:
    col = owned(c, user, slug)
    if col.is_default:
        raise CommunityError("The Saved collection cannot be deleted; remove its papers instead.", status=409)
    with c.db.write() as conn:
        store.delete_collection(conn, col.id)
    return col


def _check_paper(conn: Any, paper_id: str) -> str:
    pid = paper_key(paper_id)
    if not store.existing_ids(conn, [pid]):
        raise NotFound(f"There is no paper {pid!r} here.")
    return pid


def add_paper(c: Community, user: User | None, paper_id: str, slug: str | None = None, note: str | None = None,
              limits: LibraryLimits = LIMITS) -> SaveState:  # fmt: skip
    """Put a paper in a collection (Saved when ``slug`` is None); a note given replaces the old one."""
    user = require_active(user)
    col = default_collection(c, user) if slug is None else owned(c, user, slug)
    text = clean_note(note, limits) if note is not None else None
    with c.db.write() as conn:
        pid = _check_paper(conn, paper_id)
        present = bool(store.item_ids(conn, col.id, [pid]))
        if not present and store.count_items(conn, col.id) >= limits.items_per_collection:
            raise CommunityError(f"{col.name!r} holds {limits.items_per_collection:,} papers, the most a collection "
                                 "can hold; make another collection.", status=409)  # fmt: skip
        changed = store.add_items(conn, col.id, [(pid, text)], c.now()) == 1
        if present and note is not None:
            store.set_note(conn, col.id, pid, text)
        store.touch_collection(conn, col.id, c.now())
    return SaveState(pid, True, changed, col)


def add_to_new_collection(c: Community, user: User | None, paper_id: str, name: str, note: str | None = None,
                          limits: LibraryLimits = LIMITS) -> SaveState:  # fmt: skip
    """Put a paper in a new collection called ``name``: the paper and the note are checked first, so
    a refused request (no such paper, note too long) leaves no empty collection behind."""
    user = require_active(user)
    if note is not None:
        clean_note(note, limits)
    with c.db.read() as conn:
        _check_paper(conn, paper_id)
    col = create_collection(c, user, name, limits)
    return add_paper(c, user, paper_id, col.slug, note, limits)


def remove_paper(c: Community, user: User | None, paper_id: str, slug: str | None = None) -> SaveState:
    user = require_active(user)
    col = default_collection(c, user) if slug is None else owned(c, user, slug)
    pid = paper_key(paper_id)
    with c.db.write() as conn:
        changed = store.remove_item(conn, col.id, pid)
        if changed:
            store.touch_collection(conn, col.id, c.now())
    return SaveState(pid, False, changed, col)


def toggle_saved(c: Community, user: User | None, paper_id: str) -> SaveState:
    """The save button: in or out of the Saved collection."""
    user = require_active(user)
    pid = paper_key(paper_id)
    if pid in saved_among(c, user, [pid]):
        return remove_paper(c, user, pid)
    return add_paper(c, user, pid)


def set_note(c: Community, user: User | None, paper_id: str, slug: str, note: str,
             limits: LibraryLimits = LIMITS) -> SaveState:  # fmt: skip
    """Replace the private note of a paper in one of the user's collections (empty clears it)."""
    col = owned(c, user, slug)
    pid = paper_key(paper_id)
    text = clean_note(note, limits)
    with c.db.write() as conn:
        if not store.set_note(conn, col.id, pid, text):
            raise NotFound(f"{pid} is not in {col.name!r}.")
        store.touch_collection(conn, col.id, c.now())
    return SaveState(pid, True, True, col)
