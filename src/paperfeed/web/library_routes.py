"""The library on the web: the save button and "not interested" / "hide" on every card and paper
page, ``/library`` and ``/library/<collection>`` (with JSON twins), a collection's public read-only
URL ``/c/<token>``, import (``/library/import``) and export (``.../export?format=bibtex|ris|csl-json``),
and the same through the JSON API (``/api/library...``, ``/api/papers/{id}/save|feedback``).

Forms work without JavaScript (POST, then 303 back to the page they came from; "not interested" and
"hide" answer with a page that has an Undo button); ``static/library.js`` sends the same POSTs with
``Accept: application/json`` and updates the card in place (a dismissed card turns into a line with
Undo). Every write needs a signed-in session and its CSRF token (web/security.py), or on the API a
token with the ``library`` scope. Library pages are personal: rendered per request, ``private,
no-store``. Template globals ``library_state(id)`` and ``library_panel(id)`` give the cards and the
paper page the visitor's own state; a hidden paper's card is not drawn at all.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, FastAPI, File, Form, Path, Query, Request, UploadFile
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from paperfeed.cards import card
from paperfeed.community.core import User, require_active
from paperfeed.community.errors import CommunityError, NotSignedIn
from paperfeed.library import collections as lib
from paperfeed.library import feedback, formats, importer
from paperfeed.web.context import client_ip, community
from paperfeed.web.redirects import redirect, referer_path, safe_next, signin_redirect
from paperfeed.web.respond import JSONResponse, render_page, wants_json
from paperfeed.web.security import check_token_scope, current_viewer, token_scope, viewer

router = APIRouter(include_in_schema=False)
_bearer = HTTPBearer(auto_error=False, description="A personal API token from /account (pf_...)")
api_router = APIRouter(prefix="/api", tags=["library"], dependencies=[Depends(_bearer), Depends(check_token_scope)])
PaperId = Path(max_length=64, description="arXiv id without version, e.g. 2405.15738")
Slug = Path(max_length=100, description="The collection's slug (saved: the default collection)")
Token = Path(max_length=100)
PAGE_SIZE = 50
PRIVATE = {"Cache-Control": "private, no-store"}


def _paper_url(paper_id: str) -> str:
    return "/papers/" + paper_id


def _back(request: Request, next_url: str, default: str) -> Response:
    return redirect(safe_next(next_url, referer_path(request) or default))


def _user(request: Request, why: str) -> User:
    user = viewer(request).user
    if user is None:
        raise NotSignedIn(why)
    return require_active(user)


def _json(data: Any, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status, headers=PRIVATE)


# -- template globals -------------------------------------------------------------------------


def library_state(paper_id: str) -> dict[str, bool]:
    """The visitor's state for one card: signed in, saved, not interested, hidden (one lookup per paper)."""
    view = current_viewer()
    user = view.user if view is not None else None
    if user is None or view is None:
        return {"signed_in": False, "saved": False, "not_interested": False, "hidden": False}
    memo: dict[str, object] | None = getattr(view, "pf_library", None)
    if memo is None:
        memo = {}
        setattr(view, "pf_library", memo)  # noqa: B010 - per-request memo on the visitor object
    key = "paper:" + paper_id
    if key not in memo:
        got = lib.reader_state(view.community, user, paper_id, memo)
        memo[key] = {"signed_in": True, "saved": "saved" in got, "not_interested": "not_interested" in got,
                     "hidden": "hidden" in got}  # fmt: skip
    state = memo[key]
    assert isinstance(state, dict)
    return state


def library_panel(paper_id: str) -> dict[str, Any]:
    """For the paper page: the visitor's collections and which of them hold the paper (with notes)."""
    view = current_viewer()
    user = view.user if view is not None else None
    if user is None or view is None or user.banned:
        return {"signed_in": False, "collections": [], "memberships": []}
    c = view.community
    return {"signed_in": True, "collections": lib.list_collections(c, user),
            "memberships": lib.memberships(c, user, paper_id)}  # fmt: skip


def register(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(api_router)
    app.state.templates.globals["library_state"] = library_state
    app.state.templates.globals["library_panel"] = library_panel


# -- buttons on cards and paper pages -----------------------------------------------------------


@router.post("/papers/{paper_id:path}/save")
def save_form(request: Request, paper_id: str = PaperId, next: str = Form("", max_length=2000)) -> Response:  # noqa: A002
    """The save button: the paper in or out of the Saved collection."""
    if viewer(request).user is None and not wants_json(request):
        return signin_redirect(request, safe_next(next, "") or referer_path(request) or _paper_url(paper_id))
    state = lib.toggle_saved(community(request), _user(request, "Sign in to save papers."), paper_id)
    if wants_json(request):
        return _json(state.as_json())
    return _back(request, next, _paper_url(paper_id))


@router.post("/papers/{paper_id:path}/collect")
def collect_form(
    request: Request, paper_id: str = PaperId, collection: str = Form("", max_length=100),
    new_collection: str = Form("", max_length=400), note: str | None = Form(None, max_length=20_000),
    next: str = Form("", max_length=2000),  # noqa: A002
) -> Response:  # fmt: skip
    """Put the paper in a chosen collection (or a new one), optionally with a note."""
    if viewer(request).user is None and not wants_json(request):
        return signin_redirect(request, _paper_url(paper_id))
    c = community(request)
    user = _user(request, "Sign in to save papers.")
    if new_collection.strip():
        state = lib.add_to_new_collection(c, user, paper_id, new_collection, note or None)
    else:  # an empty box keeps the note it has
        state = lib.add_paper(c, user, paper_id, collection or None, note or None)
    if wants_json(request):
        return _json(state.as_json())
    return _back(request, next, _paper_url(paper_id) + "#library")


@router.post("/papers/{paper_id:path}/feedback")
def feedback_form(
    request: Request, paper_id: str = PaperId, kind: str = Form(..., max_length=40), on: bool = Form(True),
    next: str = Form("", max_length=2000),  # noqa: A002
) -> Response:  # fmt: skip
    """"Not interested" / "hide" (``on``) or their undo; without JS a page says what happened, with Undo."""
    if viewer(request).user is None and not wants_json(request):
        return signin_redirect(request, safe_next(next, "") or referer_path(request) or _paper_url(paper_id))
    c = community(request)
    state = feedback.set_feedback(c, _user(request, "Sign in to tell us what you do not want to see."), paper_id,
                                  kind, on)  # fmt: skip
    if wants_json(request):
        return _json(state.as_json())
    back = safe_next(next, referer_path(request) or "/")
    if not on:
        return redirect(back)
    row = lib.paper_rows(c, [state.paper_id]).get(state.paper_id)
    return render_page(request, "library/feedback_done.html",
                       {"state": state, "paper": card(row) if row else None, "back": back,
                        "label": feedback.LABELS[state.kind]})  # fmt: skip


# -- /library -----------------------------------------------------------------------------------


def _signed_in_or_redirect(request: Request) -> User | Response:
    user = viewer(request).user
    if user is None:
        if wants_json(request):
            raise NotSignedIn("Sign in to see your library.")
        return signin_redirect(request)
    return require_active(user)


def _library_data(request: Request, user: User) -> dict[str, Any]:
    c = community(request)
    cols = lib.list_collections(c, user)
    fb = {k: feedback.entries(c, user, k, limit=100) for k in feedback.KINDS}
    return {"collections": cols, "feedback": fb, "limits": lib.LIMITS, "formats": formats.FORMATS, "active": "library"}


def _feedback_json(entries: list[feedback.FeedbackEntry]) -> list[dict[str, Any]]:
    return [{"paperId": e.paper_id, "title": e.paper["title"] if e.paper else None, "at": e.at.isoformat()}
            for e in entries]  # fmt: skip


@router.get("/library")
def library_page(request: Request) -> Response:
    user = _signed_in_or_redirect(request)
    if isinstance(user, Response):
        return user
    data = _library_data(request, user)
    if wants_json(request):
        return _json({"collections": [col.as_json() for col in data["collections"]],
                      "hidden": _feedback_json(data["feedback"]["hidden"]),
                      "notInterested": _feedback_json(data["feedback"]["not_interested"])})  # fmt: skip
    return render_page(request, "library/index.html", {**data, "error": None, "name": ""})


@router.post("/library/collections")
def create_collection_form(request: Request, name: str = Form("", max_length=400)) -> Response:
    user = _user(request, "Sign in to make collections.")
    try:
        col = lib.create_collection(community(request), user, name)
    except CommunityError as exc:
        if exc.status not in (409, 422):
            raise
        data = _library_data(request, user)
        return render_page(request, "library/index.html", {**data, "error": exc.message, "name": name},
                           status=exc.status)  # fmt: skip
    return redirect(col.url)


def _items_json(items: list[lib.Item], *, notes: bool) -> list[dict[str, Any]]:
    out = []
    for it in items:
        row: dict[str, Any] = {"paperId": it.paper_id, "addedAt": it.added_at.isoformat(),
                               "paper": dict(card(it.paper)) if it.paper is not None else None}  # fmt: skip
        if notes:
            row["note"] = it.note
        out.append(row)
    return out


def _collection_response(request: Request, col: lib.Collection, p: int, *, owner: bool,
                         as_json: bool = False) -> Response:  # fmt: skip
    c = community(request)
    total = col.items or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, p), pages)
    items = lib.items(c, col, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    if as_json or wants_json(request):
        return _json({"collection": col.as_json(owner=owner), "page": page, "pages": pages,
                      "items": _items_json(items, notes=owner)})  # fmt: skip
    base = col.url if owner else (col.public_url or "")
    shown = [(it, card(it.paper)) for it in items if it.paper is not None]
    ctx = {"collection": col, "items": shown, "owner": owner, "page": page, "pages": pages, "base": base,
           "formats": formats.FORMATS, "active": "library" if owner else ""}  # fmt: skip
    # A public collection's page is the same for everybody; it may be cached briefly by browsers.
    headers = None if owner else {"Cache-Control": "public, max-age=60"}
    return render_page(request, "library/collection.html", ctx, headers=headers)


@router.get("/library/import")
def import_page(request: Request) -> Response:
    user = _signed_in_or_redirect(request)
    if isinstance(user, Response):
        return user
    cols = lib.list_collections(community(request), user)
    return render_page(request, "library/import.html", {"collections": cols, "error": None, "limits": lib.LIMITS,
                                                        "active": "library"})  # fmt: skip


@router.post("/library/import")
async def import_form(
    request: Request, file: UploadFile | None = File(None), text: str = Form("", max_length=1_100_000),
    format: str = Form("auto", max_length=20), collection: str = Form("", max_length=100),  # noqa: A002
    new_collection: str = Form("", max_length=400),
) -> Response:  # fmt: skip
    data: bytes | str = text
    if file is not None and file.filename:
        data = await file.read(lib.LIMITS.import_bytes + 1)
    return await _run_import(request, data, format, collection, new_collection)


async def _run_import(request: Request, data: bytes | str, fmt: str, collection: str, new_collection: str) -> Response:
    c = community(request)
    user = _user(request, "Sign in to import into your library.")
    try:
        report = await run_in_threadpool(
            importer.run_import, c, user, data, fmt=fmt, collection=collection or None,
            new_name=new_collection or None, ip=client_ip(request),
        )  # fmt: skip
    except CommunityError as exc:
        if wants_json(request) or request.url.path.startswith("/api/"):
            raise
        cols = lib.list_collections(c, user)
        return render_page(request, "library/import.html", {"collections": cols, "error": exc.message,
                                                            "limits": lib.LIMITS, "active": "library"},
                           status=exc.status)  # fmt: skip
    if wants_json(request) or request.url.path.startswith("/api/"):
        return _json(report.as_json())
    return render_page(request, "library/import_result.html", {"report": report, "active": "library"})


@router.get("/library/{slug}")
def collection_page(request: Request, slug: str = Slug, p: int = Query(1, ge=1, le=10_000)) -> Response:
    user = _signed_in_or_redirect(request)
    if isinstance(user, Response):
        return user
    return _collection_response(request, lib.owned(community(request), user, slug), p, owner=True)


def _export(request: Request, col: lib.Collection, fmt: str, *, owner: bool) -> Response:
    if fmt not in formats.FORMATS:
        raise CommunityError(f"Unknown export format {fmt[:20]!r}: use {', '.join(formats.FORMATS)}.", status=422)
    body = formats.export(importer.export_papers(community(request), col, with_notes=owner), fmt)
    media, ext = formats.MEDIA[fmt]
    name = (col.slug if owner else "collection") + "." + ext
    headers = {"Content-Disposition": f'attachment; filename="{name}"', **(PRIVATE if owner else {})}
    return Response(body, media_type=f"{media}; charset=utf-8", headers=headers)


@router.get("/library/{slug}/export")
def collection_export(request: Request, slug: str = Slug, format: str = Query("bibtex", max_length=20)) -> Response:  # noqa: A002
    user = _signed_in_or_redirect(request)
    if isinstance(user, Response):
        return user
    return _export(request, lib.owned(community(request), user, slug), format, owner=True)


@router.post("/library/{slug}/settings")
def collection_settings(
    request: Request, slug: str = Slug, name: str = Form("", max_length=400), public: bool = Form(False)
) -> Response:
    c = community(request)
    user = _user(request, "Sign in to change your collections.")
    col = lib.owned(c, user, slug)
    if name.strip() and name.strip() != col.name and not col.is_default:
        col = lib.rename_collection(c, user, slug, name)
    lib.set_public(c, user, col.slug, public)
    return redirect(col.url)


@router.post("/library/{slug}/delete")
def collection_delete(request: Request, slug: str = Slug) -> Response:
    lib.delete_collection(community(request), _user(request, "Sign in to change your collections."), slug)
    return redirect("/library")


@router.post("/library/{slug}/papers/{paper_id:path}/note")
def note_form(request: Request, slug: str = Slug, paper_id: str = PaperId, note: str = Form("", max_length=20_000),
              next: str = Form("", max_length=2000)) -> Response:  # noqa: A002  # fmt: skip
    state = lib.set_note(community(request), _user(request, "Sign in to write notes."), paper_id, slug, note)
    if wants_json(request):
        return _json(state.as_json())
    return _back(request, next, state.collection.url)


@router.post("/library/{slug}/papers/{paper_id:path}/remove")
def remove_form(request: Request, slug: str = Slug, paper_id: str = PaperId,
                next: str = Form("", max_length=2000)) -> Response:  # noqa: A002  # fmt: skip
    state = lib.remove_paper(community(request), _user(request, "Sign in to change your collections."), paper_id,
                             slug)  # fmt: skip
    if wants_json(request):
        return _json(state.as_json())
    return _back(request, next, state.collection.url)


# -- public collections -------------------------------------------------------------------------


@router.get("/c/{token}")
def public_collection(request: Request, token: str = Token, p: int = Query(1, ge=1, le=10_000)) -> Response:
    return _collection_response(request, lib.shared(community(request), token), p, owner=False)


@router.get("/c/{token}/export")
def public_export(request: Request, token: str = Token, format: str = Query("bibtex", max_length=20)) -> Response:  # noqa: A002
    return _export(request, lib.shared(community(request), token), format, owner=False)


# -- the JSON API -------------------------------------------------------------------------------

_API_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Unreadable input"},
    401: {"description": "No valid token or session"},
    403: {"description": "Banned account, missing CSRF token (cookie auth), or a token without the scope"},
    404: {"description": "No such paper or collection"},
    409: {"description": "A limit was reached (collections, papers per collection)"},
    413: {"description": "The import is too large"},
    422: {"description": "Invalid input"},
    429: {"description": "Rate limited; see Retry-After"},
}


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=400)


class SaveIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    collection: str | None = Field(None, max_length=100, description="A collection slug; default: saved")
    note: str | None = Field(None, max_length=20_000, description="Replaces the paper's note in that collection")


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    kind: str = Field(max_length=40, description="not_interested or hidden")


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str = Field(min_length=1, max_length=1_100_000, description="BibTeX, RIS, CSL-JSON or arXiv ids")
    format: str = Field("auto", max_length=20, description="auto, bibtex, ris, csl-json or ids")
    collection: str | None = Field(None, max_length=100, description="Import into this collection (slug)")
    newCollection: str | None = Field(None, max_length=400, description="...or into a new one with this name")


def _api_user(request: Request) -> User:
    return _user(request, "Sign in or send an API token.")


@api_router.get("/library", responses=_API_ERRORS)
def api_library(request: Request) -> Response:
    """Your collections (a token needs ``read``)."""
    user = _api_user(request)
    return _json({"collections": [col.as_json() for col in lib.list_collections(community(request), user)]})


@api_router.get("/library/{slug}", responses=_API_ERRORS)
def api_collection(request: Request, slug: str = Slug, p: int = Query(1, ge=1, le=10_000)) -> Response:
    """One of your collections with its papers and notes, 50 a page (a token needs ``read``)."""
    col = lib.owned(community(request), _api_user(request), slug)
    return _collection_response(request, col, p, owner=True, as_json=True)


@api_router.post("/library", status_code=201, responses=_API_ERRORS)
@token_scope("library")
def api_create_collection(request: Request, payload: CollectionIn = Body(...)) -> Response:
    """Make a collection (private). A token needs the ``library`` scope."""
    return _json(lib.create_collection(community(request), _api_user(request), payload.name).as_json(), 201)


@api_router.post("/library/import", responses=_API_ERRORS)
@token_scope("library")
async def api_import(request: Request, payload: ImportIn = Body(...)) -> Response:
    """Import references; the answer lists every entry's outcome. A token needs ``library``."""
    return await _run_import(request, payload.text, payload.format, payload.collection or "",
                             payload.newCollection or "")  # fmt: skip


@api_router.post("/papers/{paper_id:path}/save", responses=_API_ERRORS)
@token_scope("library")
def api_save(request: Request, paper_id: str = PaperId, payload: SaveIn | None = Body(None)) -> Response:
    """Save a paper (idempotent) into Saved or ``collection``. A token needs ``library``."""
    slug, note = (payload.collection, payload.note) if payload is not None else (None, None)
    state = lib.add_paper(community(request), _api_user(request), paper_id, slug, note)
    return _json(state.as_json())


@api_router.delete("/papers/{paper_id:path}/save", responses=_API_ERRORS)
@token_scope("library")
def api_unsave(
    request: Request, paper_id: str = PaperId, collection: str | None = Query(None, max_length=100)
) -> Response:
    """Take a paper out of Saved or ``collection`` (idempotent). A token needs ``library``."""
    return _json(lib.remove_paper(community(request), _api_user(request), paper_id, collection).as_json())


@api_router.post("/papers/{paper_id:path}/feedback", responses=_API_ERRORS)
@token_scope("library")
def api_feedback(request: Request, paper_id: str = PaperId, payload: FeedbackIn = Body(...)) -> Response:
    """"Not interested" or hide a paper (idempotent). A token needs ``library``."""
    state = feedback.set_feedback(community(request), _api_user(request), paper_id, payload.kind, True)
    return _json(state.as_json())


@api_router.delete("/papers/{paper_id:path}/feedback", responses=_API_ERRORS)
@token_scope("library")
def api_undo_feedback(request: Request, paper_id: str = PaperId, kind: str = Query(..., max_length=40)) -> Response:
    """Undo "not interested" or hide (idempotent). A token needs ``library``."""
    return _json(feedback.set_feedback(community(request), _api_user(request), paper_id, kind, False).as_json())
