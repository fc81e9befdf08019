"""Hybrid search: parse → keyword (BM25) + semantic (vectors) → fuse → filter/sort → highlight.

Runs on every search request (web pages, JSON API, feeds, CLI, digests). Ranking is explainable:
each hit says which retriever found it, at what rank and score. The semantic side degrades
gracefully: without vectors (not built yet, index rebuilding, encoder unavailable) hybrid falls
back to keyword-only and says so in ``warnings``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from paperfeed.config import Settings
from paperfeed.search.fusion import (
    DEFAULT_FUSION,
    SMOOTH_DEPTH,
    Fusion,
    FusionDecision,
    Lift,
    decide,
    fuse,
    keyword_ceiling,
    smooth,
)
from paperfeed.search.highlight import highlight
from paperfeed.search.lexical import LexicalIndex
from paperfeed.search.query import ParsedQuery, parse_query
from paperfeed.store import upvotes
from paperfeed.store.db import Database
from paperfeed.store.feed_queries import existing_ids, filter_fields_by_ids, papers_by_ids
from paperfeed.store.rows import PaperRow

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FUSION",
    "MODES",
    "SORTS",
    "Fusion",
    "FusionDecision",
    "SearchError",
    "SearchHit",
    "SearchRequest",
    "SearchResults",
    "SearchService",
    "fuse",
]

MODES = ("keyword", "semantic", "hybrid")
SORTS = ("relevance", "date", "upvotes")
MAX_LIMIT = 120  # the Hugging Face papers search allows 1..120
MAX_OFFSET = 1_000
# A long-running service (web workers) looks for vectors written by `paperfeed index` at most this
# often; a look costs a stat and two index lookups when nothing changed.
REFRESH_EVERY_S = 2.0


class SearchError(ValueError):
    """A user error with a clear message (bad parameter, nothing to search for)."""


@dataclass
class SearchRequest:
    q: str
    mode: str = "hybrid"
    sort: str = "relevance"
    date_from: date | None = None
    date_to: date | None = None
    categories: list[str] = field(default_factory=list)
    has_code: bool = False
    min_upvotes: int = 0
    limit: int = 20
    offset: int = 0


@dataclass
class SearchHit:
    paper: PaperRow
    score: float
    why: list[str]
    title_spans: list[tuple[int, int]]
    abstract_spans: list[tuple[int, int]]
    keyword_rank: int | None = None  # 1-based rank in the BM25 list, None when not found there
    semantic_similarity: float | None = None  # cosine to the query, None when not a semantic hit


MIN_SEMANTIC_MATCH = 0.45  # semantic-only hits below this cosine are not "matches" (saved searches)


def is_match(hit: SearchHit) -> bool:
    """Whether a hit really matches a saved search (digest topics, followed searches): every
    keyword match, and semantic-only hits that are actually close to the query."""
    if hit.keyword_rank is not None:
        return True
    return hit.semantic_similarity is not None and hit.semantic_similarity >= MIN_SEMANTIC_MATCH


@dataclass
class SearchResults:
    hits: list[SearchHit]
    total: int
    mode: str
    warnings: list[str]
    took_ms: float
    query: ParsedQuery | None = None
    fusion: FusionDecision | None = None  # hybrid only: how the query was read and weighted


def _categories_of(paper: PaperRow) -> list[str]:
    return (paper.get("categories") or "").split()


def _text_of(paper: PaperRow) -> str:
    return f"{paper.get('title') or ''}\n{paper.get('abstract') or ''}".lower()


def _in_categories(paper_cats: list[str], wanted: list[str]) -> bool:
    """``cs.LG`` matches exactly; an archive such as ``cs`` matches every ``cs.*`` category."""
    for want in wanted:
        for cat in paper_cats:
            if cat == want or ("." not in want and cat.startswith(want + ".")):
                return True
    return False


def fetch_papers(db: Database, ids: list[str]) -> dict[str, PaperRow]:
    """Candidate rows by id, in one indexed query (ids missing from the database are absent)."""
    with db.read() as conn:
        return papers_by_ids(conn, list(dict.fromkeys(ids)))


def paper_upvotes(paper: PaperRow) -> int:
    return upvotes.total(paper)


class SearchService:
    """Search over one database. Heavy parts (encoder, vectors) load lazily, once, thread-safely."""

    def __init__(self, settings: Settings, db: Database, *, fusion: Fusion = DEFAULT_FUSION) -> None:
        self.settings = settings
        self.db = db
        self.fusion = fusion
        self.lexical = LexicalIndex(settings)
        self._lock = threading.Lock()
        self._encoder: Any = None
        self._vectors: Any = None
        self._semantic_error: str | None = None
        self._qcache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._checked_at = time.monotonic()
        # Set while an IndexFollower (search/follower.py) refreshes in the background: queries
        # then never spend their own time on it.
        self.followed = False

    @property
    def vectors(self) -> Any:
        """The vector index once a semantic search loaded it (None before, or without vectors)."""
        return self._vectors

    # -- semantic side (lazy) ----------------------------------------------------------------
    def _semantic(self) -> tuple[Any, Any] | None:
        self._maybe_refresh()
        if self._vectors is not None and self._encoder is not None:
            return self._encoder, self._vectors
        if self._semantic_error is not None:  # failed before: tried again after the next refresh
            return None
        with self._lock:
            if (self._vectors is None or self._encoder is None) and self._semantic_error is None:
                try:
                    from paperfeed.search.encoder import get_encoder
                    from paperfeed.search.vector_backend import open_vector_index

                    vectors = open_vector_index(self.settings, self.db)
                    if vectors.empty():
                        self._semantic_error = "semantic index is empty (run `paperfeed index`)"
                        return None
                    self._encoder = get_encoder(self.settings)
                    self._vectors = vectors
                    self._semantic_error = None
                except Exception as exc:  # degrade to keyword search, never fail the request
                    log.warning("semantic search unavailable: %s", exc)
                    self._semantic_error = "semantic search is unavailable right now"
                    return None
        if self._vectors is None or self._encoder is None:  # another thread's load failed meanwhile
            return None
        return self._encoder, self._vectors

    def index_version(self) -> tuple[object, ...]:
        """What this process's searches read now (lexical index commit, vector snapshot): the web
        cache keys pages on it, so a search cached before an index caught up is not served after."""
        vectors = self._vectors
        return (self.lexical.version(), vectors.version() if vectors is not None else None)

    def watermarks(self) -> dict[str, datetime | None]:
        """The newest database change each index of this process holds: the lexical index's last
        paper (``modified_at``) and the vector snapshot's newest row (``created_at``; None before
        semantic search first loads). ``paperfeed status`` compares them with the database."""
        lexical = self.lexical.watermark()
        vectors = self._vectors
        return {
            "lexical": lexical[0] if lexical else None,
            "vectors": vectors.watermark if vectors is not None else None,
        }

    def refresh(self) -> None:
        """Pick up new papers/vectors written by another process (cheap when nothing changed)."""
        self._checked_at = time.monotonic()
        if self._vectors is not None:
            self._vectors.refresh()
        elif self._semantic_error:
            self._semantic_error = None  # try loading again on the next query

    def _maybe_refresh(self) -> None:
        """``refresh`` at most every REFRESH_EVERY_S, from whichever query comes first (unless a
        follower thread does it)."""
        if self.followed or time.monotonic() - self._checked_at < REFRESH_EVERY_S:
            return
        try:
            self.refresh()
        except Exception as exc:  # a failed look must not fail the query: it keeps the old snapshot
            log.warning("could not refresh the vector index: %s", exc)

    def _embed_query(self, encoder: Any, text: str) -> np.ndarray:
        vec = self._qcache.get(text)
        if vec is None:
            vec = encoder.encode_query(text)
            self._qcache[text] = vec
            if len(self._qcache) > 512:
                self._qcache.popitem(last=False)
        else:
            self._qcache.move_to_end(text)
        return vec

    # -- search -------------------------------------------------------------------------------
    def _validate(self, req: SearchRequest) -> None:
        if req.mode not in MODES:
            raise SearchError(f"mode must be one of {', '.join(MODES)}")
        if req.sort not in SORTS:
            raise SearchError(f"sort must be one of {', '.join(SORTS)}")
        if not 1 <= req.limit <= MAX_LIMIT:
            raise SearchError(f"limit must be between 1 and {MAX_LIMIT}")
        if not 0 <= req.offset <= MAX_OFFSET:
            raise SearchError(f"offset must be between 0 and {MAX_OFFSET}")
        if req.min_upvotes < 0:
            raise SearchError("min_upvotes must not be negative")
        if req.date_from and req.date_to and req.date_from > req.date_to:
            raise SearchError("the start date is after the end date")

    def search(self, req: SearchRequest) -> SearchResults:
        t0 = time.perf_counter()
        self._validate(req)
        pq = parse_query(req.q or "")
        warnings = list(pq.warnings)
        if not (pq.terms or pq.phrases or pq.authors or pq.text.strip()):
            raise SearchError("Type a few words to search for (for example: diffusion models for video).")
        categories = list(dict.fromkeys([*req.categories, *pq.categories]))
        date_from = max(filter(None, [req.date_from, pq.date_from]), default=None)
        date_to = min(filter(None, [req.date_to, pq.date_to]), default=None)

        filtered = bool(categories or date_from or date_to or req.has_code or req.min_upvotes or pq.authors)
        depth = min(1_000, max(100, (req.offset + req.limit) * 3))
        mode = req.mode

        sem = None
        if mode in ("semantic", "hybrid"):
            sem = self._semantic() if pq.text.strip() else None
            if sem is None:  # no vectors yet, or a query of filters only: keyword results instead
                if pq.text.strip():
                    why = self._semantic_error or "semantic search is unavailable"
                    warnings.append(f"{why}; showing keyword results")
                mode = "keyword"

        keyword: list[tuple[str, float]] = []
        lexical = None
        if mode in ("keyword", "hybrid"):
            lexical = self.lexical.search(
                pq, limit=depth, categories=categories or None, date_from=date_from, date_to=date_to
            )
            keyword = [(h.paper_id, h.score) for h in lexical.hits]

        semantic: list[tuple[str, float]] = []
        if sem is not None:
            encoder, vectors = sem
            qvec = self._embed_query(encoder, pq.text)
            # Filters are applied after retrieval, so fetch deeper when they may discard many.
            semantic = vectors.search(qvec, k=depth * (4 if filtered else 1))

        decision: FusionDecision | None = None
        lifts: dict[str, Lift] = {}  # what smoothing added (Fusion("smoothed") only)
        if mode == "hybrid" and lexical is not None:
            decision = decide(self.fusion, pq, lexical.terms, lexical.num_docs, keyword, semantic)
            smoothed = self.fusion.method == "smoothed"
            ceiling = keyword_ceiling(lexical.terms, lexical.num_docs) if smoothed else 0.0
            ranked = fuse(keyword, semantic, self.fusion, decision.semantic_weight, ceiling)
            if smoothed and sem is not None:
                head = [pid for pid, _ in ranked[:SMOOTH_DEPTH]]
                ranked, lifts = smooth(ranked, sem[1].vectors_for(head))
        else:
            ranked = keyword or semantic
        weighting = f"weighting: {decision.explain()}" if decision else None
        kw_rank = {pid: (i + 1, s) for i, (pid, s) in enumerate(keyword)}
        sem_rank = {pid: (i + 1, s) for i, (pid, s) in enumerate(semantic)}
        kept = self._kept(ranked, kw_rank, pq, categories, date_from, date_to, req)
        shown = kept[req.offset : req.offset + req.limit]
        rows = fetch_papers(self.db, [pid for pid, _ in shown])  # full rows for the page only
        page = [(rows[pid], score) for pid, score in shown if pid in rows]
        out: list[SearchHit] = []
        for paper, score in page:
            reasons = []
            if paper["id"] in kw_rank:
                r, s = kw_rank[paper["id"]]
                reasons.append(f"keyword match #{r} (BM25 {s:.1f})")
            if paper["id"] in sem_rank:
                r, s = sem_rank[paper["id"]]
                reasons.append(f"semantic match #{r} (similarity {s:.2f})")
            lift = lifts.get(paper["id"])
            if lift is not None:
                reasons.append(f"lifted +{lift.boost:.2f}: similar ({lift.similarity:.2f}) to another strong result")
            if weighting:
                reasons.append(weighting)
            out.append(
                SearchHit(
                    paper=paper,
                    score=float(score),
                    why=reasons,
                    title_spans=highlight(paper.get("title") or "", pq),
                    abstract_spans=highlight(paper.get("abstract") or "", pq),
                    keyword_rank=kw_rank[paper["id"]][0] if paper["id"] in kw_rank else None,
                    semantic_similarity=float(sem_rank[paper["id"]][1]) if paper["id"] in sem_rank else None,
                )
            )
        took = (time.perf_counter() - t0) * 1000
        return SearchResults(
            hits=out, total=len(kept), mode=mode, warnings=warnings, took_ms=took, query=pq, fusion=decision
        )

    def _kept(
        self,
        ranked: list[tuple[str, float]],
        kw_rank: dict[str, tuple[int, float]],
        pq: ParsedQuery,
        categories: list[str],
        date_from: date | None,
        date_to: date | None,
        req: SearchRequest,
    ) -> list[tuple[str, float]]:
        """The ranked candidates that are papers and pass every filter, in the requested order.

        Reads only what the filters and the sort need (nothing but the ids for a plain query
        sorted by relevance): the card rows are fetched afterwards for the shown page alone.
        """
        ids = list(dict.fromkeys(pid for pid, _ in ranked))
        semantic_only = any(pid not in kw_rank for pid in ids)
        text = semantic_only and bool(pq.authors or pq.phrases or pq.excluded_terms or pq.excluded_phrases)
        needs_fields = text or bool(
            categories or date_from or date_to or req.has_code or req.min_upvotes or req.sort != "relevance"
        )
        if not needs_fields:
            with self.db.read() as conn:
                present = existing_ids(conn, ids)
            return [(pid, score) for pid, score in ranked if pid in present]
        with self.db.read() as conn:
            fields = filter_fields_by_ids(conn, ids, text=text)
        kept = [
            (fields[pid], score)
            for pid, score in ranked
            if pid in fields and self._passes(fields[pid], pq, categories, date_from, date_to, req, pid in kw_rank)
        ]
        if req.sort == "date":
            kept.sort(key=lambda ps: (ps[0].get("published") or date.min, ps[1]), reverse=True)
        elif req.sort == "upvotes":
            kept.sort(key=lambda ps: (paper_upvotes(ps[0]), ps[1]), reverse=True)
        return [(row["id"], score) for row, score in kept]

    @staticmethod
    def _passes(
        paper: PaperRow,
        pq: ParsedQuery,
        categories: list[str],
        date_from: date | None,
        date_to: date | None,
        req: SearchRequest,
        from_keyword: bool,
    ) -> bool:
        """Filters applied to every candidate. Keyword hits already passed the query's own
        constraints inside the (stem-aware) lexical index; semantic hits have not seen them."""
        if categories and not _in_categories(_categories_of(paper), categories):
            return False
        day = paper.get("published") or paper.get("listed")
        if date_from and (day is None or day < date_from):
            return False
        if date_to and (day is None or day > date_to):
            return False
        if req.has_code and not paper.get("github_repo"):
            return False
        if req.min_upvotes and paper_upvotes(paper) < req.min_upvotes:
            return False
        if from_keyword:
            return True
        if pq.authors:
            names = " | ".join(paper.get("authors") or []).lower()
            if not all(a.lower() in names for a in pq.authors):
                return False
        if pq.phrases or pq.excluded_terms or pq.excluded_phrases:
            text = _text_of(paper)
            if any(p.lower() not in text for p in pq.phrases):
                return False
            if any(p.lower() in text for p in pq.excluded_phrases):
                return False
            words = set(text.replace("-", " ").split())
            if any(t.lower() in words for t in pq.excluded_terms):
                return False
        return True

    # -- similar papers ----------------------------------------------------------------------
    def _with_similarity(self, pairs: list[tuple[str, float]]) -> list[dict[str, Any]]:
        rows = fetch_papers(self.db, [pid for pid, _ in pairs])
        out = []
        for pid, sim in pairs:
            if pid in rows:
                out.append({**rows[pid], "similarity": round(float(sim), 4)})
        return out

    def similar(self, paper_id: str, k: int = 8) -> list[dict[str, Any]]:
        sem = self._semantic()
        if sem is not None:
            pairs = sem[1].similar(paper_id, k=k)
            if pairs:
                return self._with_similarity(pairs)
        # Fallback without vectors: the paper's title as a keyword query.
        rows = fetch_papers(self.db, [paper_id])
        if paper_id not in rows:
            return []
        pq = parse_query(rows[paper_id]["title"])
        hits = [h for h in self.lexical.search(pq, limit=k + 1).hits if h.paper_id != paper_id][:k]
        top = hits[0].score if hits else 1.0
        return self._with_similarity([(h.paper_id, h.score / top if top else 0.0) for h in hits])

    def more_like(self, paper_ids: list[str], k: int = 10) -> list[dict[str, Any]]:
        sem = self._semantic()
        if sem is None or not paper_ids:
            return []
        return self._with_similarity(sem[1].more_like(paper_ids, k=k))
