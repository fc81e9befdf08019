"""RSS 2.0 and Atom feeds: the daily feed, trending, one arXiv category, any search query, and a
user's private feeds (Following, For you) at their secret token address (``/feeds/u/{token}/...``,
also as JSON; never cached, each entry says why it is there).

Built with ElementTree (so every title, author and abstract is escaped by the serialiser) after
stripping the characters XML 1.0 forbids, which arXiv text occasionally contains. Cached per data
version like the pages; feed readers get ETag/Last-Modified and 304s. The feed's own address
(``rel="self"`` and the Atom ``<id>``) is built from the parameters the feed understands,
normalised, never from the request's query string: the body is cached and served to everybody, so
it may depend only on what its cache key depends on.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from paperfeed import __version__
from paperfeed.cards import Card, card
from paperfeed.community.core import Community, User
from paperfeed.latex_text import to_plain
from paperfeed.personal import feed_tokens, following
from paperfeed.personal.for_you import for_you_view
from paperfeed.store import feed_queries
from paperfeed.web import params
from paperfeed.web.context import AppState, app_state, community
from paperfeed.web.page_data import search_data, trending_data
from paperfeed.web.respond import _etag, dumps, error_response, finish

router = APIRouter(prefix="/feeds", include_in_schema=False)

ATOM_NS = "http://www.w3.org/2005/Atom"
MEDIA = {"atom": "application/atom+xml; charset=utf-8", "rss": "application/rss+xml; charset=utf-8"}
MAX_ITEMS = 50
_BAD_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text: Any) -> str:
    """Text safe for XML 1.0: forbidden control characters removed (escaping is ElementTree's job)."""
    return _BAD_XML.sub("", "" if text is None else str(text))


def _when(c: Mapping[str, Any]) -> datetime:
    value = c.get("submitted_at") or c.get("listed") or c.get("published") or date(1970, 1, 1)
    if not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time())
    return value.replace(tzinfo=UTC)


def _sub(parent: ET.Element, tag: str, text: Any = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: clean(v) for k, v in attrs.items()})
    if text is not None:
        el.text = clean(text)
    return el


def _why(c: Mapping[str, Any]) -> str:
    """A personal feed's reasons, first in an entry's text ("Why: from X, an author you follow")."""
    why = c.get("why") or []
    return ("Why: " + "; ".join(str(w) for w in why) + "\n\n") if why else ""


def atom(title: str, self_url: str, html_url: str, cards: Sequence[Mapping[str, Any]], base: str) -> bytes:
    root = ET.Element("feed", {"xmlns": ATOM_NS})
    _sub(root, "title", title)
    _sub(root, "id", self_url)
    _sub(root, "link", rel="self", href=self_url, type="application/atom+xml")
    _sub(root, "link", rel="alternate", href=html_url, type="text/html")
    updated = max((_when(c) for c in cards), default=datetime(1970, 1, 1, tzinfo=UTC))
    _sub(root, "updated", updated.isoformat())
    _sub(root, "generator", "paperfeed", version=__version__)
    for c in cards:
        url = f"{base}/papers/{c['id']}"
        entry = ET.SubElement(root, "entry")
        _sub(entry, "title", " ".join(to_plain(c["title"]).split()))
        _sub(entry, "id", url)
        _sub(entry, "link", rel="alternate", href=url, type="text/html")
        _sub(entry, "link", rel="related", href=f"https://arxiv.org/abs/{c['id']}", title="arXiv")
        _sub(entry, "updated", _when(c).isoformat())
        if c.get("published"):
            _sub(entry, "published", _when({"published": c["published"]}).isoformat())
        for name in c["authors"][:50]:
            _sub(ET.SubElement(entry, "author"), "name", name)
        for cat in c["categories"]:
            _sub(entry, "category", term=cat)
        _sub(entry, "summary", _why(c) + " ".join(to_plain(c["abstract"]).split()), type="text")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def rss(title: str, self_url: str, html_url: str, cards: Sequence[Mapping[str, Any]], base: str) -> bytes:
    root = ET.Element("rss", {"version": "2.0", "xmlns:atom": ATOM_NS})
    ch = ET.SubElement(root, "channel")
    _sub(ch, "title", title)
    _sub(ch, "link", html_url)
    _sub(ch, "description", f"{title} — paperfeed")
    _sub(ch, "atom:link", href=self_url, rel="self", type="application/rss+xml")
    _sub(ch, "generator", f"paperfeed {__version__}")
    if cards:
        _sub(ch, "lastBuildDate", format_datetime(max(_when(c) for c in cards), usegmt=True))
    for c in cards:
        url = f"{base}/papers/{c['id']}"
        item = ET.SubElement(ch, "item")
        _sub(item, "title", " ".join(to_plain(c["title"]).split()))
        _sub(item, "link", url)
        _sub(item, "guid", url, isPermaLink="true")
        _sub(item, "pubDate", format_datetime(_when(c), usegmt=True))
        authors = ", ".join(c["authors"][:20]) + (" et al." if len(c["authors"]) > 20 else "")
        _sub(item, "description", f"{_why(c)}{authors}\n\n{' '.join(to_plain(c['abstract']).split())}")
        for cat in c["categories"]:
            _sub(item, "category", cat)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


async def _serve(
    request: Request, fmt: str, key: str, self_path: str, title: str, html_path: str, load: Any
) -> Response:
    """Build (or reuse) one feed document; ``load()`` returns the cards (runs SQL/search).

    ``self_path`` is the feed's canonical address (path and normalised query): it goes into the
    cached body, so it must be a function of ``key`` alone.
    """
    state = app_state(request)
    version = state.version.current()
    ck = f"feed|{fmt}|{key}"
    entry = state.cache.get(ck, version.token)
    if entry is None:
        cards = await run_in_threadpool(load)
        base = state.settings.base_url
        body = (atom if fmt == "atom" else rss)(title, base + self_path, base + html_path, cards, base)
        entry = state.cache.put(ck, version.token, None)
        state.cache.add_body(entry, fmt, body)
    last_modified = datetime.fromtimestamp(version.seen_at, UTC)
    return finish(request, entry.bodies[fmt], MEDIA[fmt], _etag(ck, version.token), last_modified, private=False)


def _daily_cards(state: AppState) -> list[Card]:
    with state.db.read() as conn:
        latest = feed_queries.latest_feed_date(conn, datetime.now(UTC).date())
        if latest is None:
            return []
        rows, _ = feed_queries.daily_cards(conn, latest - timedelta(days=6), latest, sort="published", limit=MAX_ITEMS)
    cards = [card(r) for r in rows]
    cards.sort(key=_when, reverse=True)
    return cards


@router.get("/daily.{fmt}")
async def daily_feed(request: Request, fmt: str) -> Response:
    if fmt not in MEDIA:
        return error_response(request, 404, "feeds come as .atom or .rss")
    state = app_state(request)
    key = f"daily|{datetime.now(UTC).date()}"
    return await _serve(request, fmt, key, f"/feeds/daily.{fmt}", "Daily papers", "/", lambda: _daily_cards(state))


@router.get("/trending.{fmt}")
async def trending_feed(request: Request, fmt: str) -> Response:
    if fmt not in MEDIA:
        return error_response(request, 404, "feeds come as .atom or .rss")
    state = app_state(request)
    slot = int(datetime.now(UTC).timestamp() // 600)
    return await _serve(
        request,
        fmt,
        f"trending|{slot}",
        f"/feeds/trending.{fmt}",
        "Trending papers",
        "/papers/trending",
        lambda: trending_data(state, 1, MAX_ITEMS)["papers"],
    )


@router.get("/category/{name}")
async def category_feed(request: Request, name: str) -> Response:
    stem, _, fmt = name.rpartition(".")
    if fmt not in MEDIA:
        return error_response(request, 404, "category feeds look like /feeds/category/cs.LG.atom (or .rss)")
    try:
        cat = params.category(stem)
    except params.ParamError as exc:
        return error_response(request, 404, exc.message)
    if cat is None:
        return error_response(request, 404, "name a category, e.g. /feeds/category/cs.LG.atom")
    state = app_state(request)

    def load() -> list[Card]:
        with state.db.read() as conn:
            return [card(r) for r in feed_queries.category_latest(conn, cat, MAX_ITEMS)]

    html = "/papers/new?" + urlencode({"category": cat})
    return await _serve(request, fmt, f"cat|{cat}", f"/feeds/category/{cat}.{fmt}", f"New in {cat}", html, load)


@router.get("/search.{fmt}")
async def search_feed(request: Request, fmt: str) -> Response:
    if fmt not in MEDIA:
        return error_response(request, 404, "feeds come as .atom or .rss")
    state = app_state(request)
    args = dict(request.query_params)
    args.setdefault("sort", "date")  # a feed reader wants the newest matches, not the best
    try:
        sp = params.search_params(args, page_size=MAX_ITEMS, max_page=1)
    except params.ParamError as exc:
        return error_response(request, 422, exc.message)
    if not sp.q:
        return error_response(request, 422, "add a query: /feeds/search.atom?q=diffusion+models")

    def load() -> list[dict[str, Any]]:
        data = search_data(state, sp)
        if data["error"]:
            raise _FeedError(data["error"])
        return data["hits"]

    html = "/papers/search?" + urlencode(sp.query_args())
    # Date order is the feeds' default, so it is left out of their address like other defaults.
    self_path = f"/feeds/search.{fmt}?" + urlencode(sp.query_args(sort=None if sp.sort == "date" else sp.sort))
    try:
        return await _serve(request, fmt, f"search|{sp.cache_key()}", self_path, f"Search: {sp.q}", html, load)
    except _FeedError as exc:
        return error_response(request, 400, str(exc))


class _FeedError(Exception):
    pass


# -- private feeds ----------------------------------------------------------------------------

PRIVATE_HEADERS = {"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}


def _following_cards(state: AppState, c: Community, user: User) -> tuple[str, str, list[dict[str, Any]]]:
    data = following.following_view(c, user, following.service_search(state.search()), limit=MAX_ITEMS)
    return "Following", "/following", data["papers"]


def _for_you_cards(state: AppState, c: Community, user: User) -> tuple[str, str, list[dict[str, Any]]]:
    return "For you", "/for-you", for_you_view(c, user, limit=MAX_ITEMS)["papers"]


PRIVATE_VIEWS: dict[str, Callable[[AppState, Community, User], tuple[str, str, list[dict[str, Any]]]]] = {
    "following": _following_cards,
    "for-you": _for_you_cards,
}


@router.get("/u/{token}/{name}")
async def private_feed(request: Request, token: str, name: str) -> Response:
    """A user's own feeds at the secret address made on /account (a feed reader has no cookies):
    Atom, RSS or JSON; never cached by anyone, no session needed. A revoked address is 410 Gone."""
    view, _, fmt = name.rpartition(".")
    loader = PRIVATE_VIEWS.get(view)
    if loader is None or fmt not in (*MEDIA, "json") or len(token) > feed_tokens.MAX_LEN:
        return error_response(request, 404, "There is no feed at this address.")
    c = community(request)
    try:
        user = await run_in_threadpool(feed_tokens.owner, c, token)
    except feed_tokens.Gone:
        return error_response(request, 410, "This private feed address was revoked; make a new one on /account.")
    if user is None:
        return error_response(request, 404, "There is no feed at this address.")
    state = app_state(request)
    title, html_path, cards = await run_in_threadpool(loader, state, c, user)
    title = f"{title} · {user.username}"
    base = state.settings.base_url
    self_url = f"{base}/feeds/u/{token}/{name}"
    if fmt == "json":
        body = dumps({"title": title, "user": user.username, "papers": cards})
        return Response(body, media_type="application/json", headers=PRIVATE_HEADERS)
    doc = (atom if fmt == "atom" else rss)(title, self_url, base + html_path, cards, base)
    return Response(doc, media_type=MEDIA[fmt], headers=PRIVATE_HEADERS)
