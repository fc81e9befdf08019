"""Per-app state and the per-request context every page template receives.

``AppState`` is built once by the app factory (settings, database, search service, caches,
hooks) and hangs off ``app.state.pf``. ``request_context`` runs for every HTML page: it calls
the registered context processors, which is where accounts add ``user`` and a CSRF token.
A processor that adds anything specific to the visitor marks the context ``shared=False`` so
the rendered page is not served to anybody else from the cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.requests import Request

from paperfeed.community.core import Community
from paperfeed.config import Settings
from paperfeed.search.follower import IndexFollower, IndexState
from paperfeed.search.hybrid import SearchService
from paperfeed.search.lexical import LexicalIndex
from paperfeed.store import lookups
from paperfeed.store.db import Database
from paperfeed.web.cache import DataVersion, ResponseCache
from paperfeed.web.params import MAX_QUERY_CHARS

log = logging.getLogger(__name__)

# (request) -> extra template variables; may set "shared": False (see module docstring).
ContextProcessor = Callable[[Request], dict[str, Any]]
Hook = Callable[["AppState"], Any]


@dataclass
class AppState:
    settings: Settings
    db: Database
    version: DataVersion
    cache: ResponseCache
    search_factory: Callable[[], SearchService] | None = None
    context_processors: list[ContextProcessor] = field(default_factory=list)
    startup_hooks: list[Hook] = field(default_factory=list)  # e.g. the pipeline
    shutdown_hooks: list[Hook] = field(default_factory=list)
    follower: IndexFollower | None = None  # keeps this process's search indexes current
    _search: SearchService | None = None
    _search_error: str | None = None
    _search_lock: threading.Lock = field(default_factory=threading.Lock)
    _refreshing: threading.Lock = field(default_factory=threading.Lock)
    _refreshed_at: float = 0.0

    def refresh_lookups(self, backlog: int | None = None, *, min_backlog: int = 2_000, every_s: float = 300.0) -> bool:
        """Bring the author/category lookup tables up to date in a background thread.

        Called at start-up (``backlog=None``) and by pages that found many papers the tables do
        not cover; at most one refresh per process at a time, and not more often than ``every_s``.
        """
        now = time.monotonic()
        if backlog is not None and (backlog < min_backlog or now - self._refreshed_at < every_s):
            return False
        if not self._refreshing.acquire(blocking=False):
            return False
        self._refreshed_at = now

        def work() -> None:
            try:
                lookups.refresh(self.db)
            except Exception:  # a failed refresh only leaves pages slower; log it and go on
                log.exception("refreshing paper_authors/paper_categories failed")
            finally:
                self._refreshing.release()

        threading.Thread(target=work, name="lookups-refresh", daemon=True).start()
        return True

    def search(self) -> SearchService | None:
        """The SearchService, built on first use (it loads indexes and the encoder lazily).

        Returns None, with the reason in ``search_unavailable``, when it cannot be built
        (e.g. an unreadable index); pages then say search is unavailable.
        """
        if self._search is not None or self._search_error is not None:
            return self._search
        with self._search_lock:
            if self._search is None and self._search_error is None:
                try:
                    if self.search_factory is None:
                        self._search = SearchService(self.settings, self.db)
                    else:
                        self._search = self.search_factory()
                except Exception as exc:  # an index problem must not take the whole site down
                    log.exception("search service could not be started")
                    self._search_error = f"search is unavailable: {exc}"
        return self._search

    def index_version(self) -> object:
        """This process's search index state (None before search is first used): part of the
        page cache's data version (``DataVersion.extra``)."""
        search = self._search
        return search.index_version() if search is not None else None

    def index_watermarks(self) -> dict[str, datetime | None]:
        """What this process's search indexes hold (``SearchService.watermarks``), for status and
        the pipeline's heartbeat; the lexical index in this home before search is first used."""
        search = self._search
        if search is not None:
            return search.watermarks()
        lexical = LexicalIndex(self.settings).watermark()
        return {"lexical": lexical[0] if lexical else None}

    def start_follower(self) -> None:
        """Start this process's index follower (``settings.index_follow``); a start-up hook."""
        if not self.settings.index_follow or self.follower is not None:
            return
        service = self.search()
        if service is not None:
            self.follower = IndexFollower(self.settings, self.db, service)
            self.follower.start()

    def stop_follower(self) -> None:
        if self.follower is not None:
            self.follower.stop()
            self.follower = None

    def follower_state(self) -> IndexState | None:
        """This process's index follower (catch-ups, errors), for ``/api/v1/status``; None when
        it does not run. How far the indexes are behind is ``index_watermarks`` + pipeline/lag."""
        return self.follower.state() if self.follower is not None else None

    @property
    def search_unavailable(self) -> str | None:
        return self._search_error


def app_state(request: Request) -> AppState:
    return request.app.state.pf


def community(request: Request) -> Community:
    """The app's community context (built once by ``community_routes.install``)."""
    return request.app.state.community


def client_ip(request: Request) -> str | None:
    """The visitor's address, for per-IP limits: the socket's peer, or - when that peer is a proxy
    listed in ``PAPERFEED_FORWARDED_ALLOW_IPS`` - the address it forwarded (the app factory's
    proxy-headers middleware has then already put it in ``request.client``). Every per-IP check
    goes through here."""
    return request.client.host if request.client else None


def request_context(request: Request, active: str = "", *, visitor: bool = True) -> dict[str, Any]:
    """Template variables shared by all pages: the request, nav state, the visitor's slot.

    ``visitor=False`` leaves the visitor out (shown as signed out): for the page that says the
    database is unreachable, which must render without asking it who is signed in."""
    state = app_state(request)
    ctx: dict[str, Any] = {
        "request": request,
        "active": active,
        "user": None,
        "shared": True,
        # The query as the search normalises it (and as the page cache keys it), not the raw text.
        "q": " ".join(request.query_params.get("q", "").split())[:MAX_QUERY_CHARS] if active == "search" else "",
        "base_url": state.settings.base_url,
    }
    for processor in state.context_processors if visitor else ():
        ctx.update(processor(request))
    return ctx
