"""What every vector index answers, whichever holds the vectors: nearest papers to a query vector,
papers similar to one paper, papers like a set of papers.

Two implementations: ``search/vectors.py`` (each process holds its own index: exact numpy or a
usearch HNSW file) and ``search/pgvectors.py`` (PostgreSQL holds them: pgvector). The search
service, digests and pages only see this interface; ``search/vector_backend.py`` picks one.
The parts that do not depend on where vectors live (query checks, similar papers, centroids)
are written once, here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np

from paperfeed.store import embeddings as store
from paperfeed.store.db import Database

ANN_MAX_K = 10_000  # the deepest approximate search we run when filters discard candidates


def default_model(db: Database) -> str | None:
    """The model queries are embedded with: the encoder's, else the last one ``paperfeed index`` used."""
    try:
        from paperfeed.search import encoder as enc

        name = getattr(enc, "MODEL_NAME", None)
        if isinstance(name, str) and name:
            return name
    except ImportError:
        pass
    return store.latest_model(db)


def unit_query(vec: np.ndarray, dim: int | None) -> np.ndarray:
    """The query as a float32 unit vector; a clear error for a wrong width, NaN or all zeros."""
    q = np.asarray(vec, dtype=np.float32).reshape(-1)
    if dim is not None and q.shape[0] != dim:
        raise ValueError(f"query vector has {q.shape[0]} dimensions, the index has {dim}")
    if not np.isfinite(q).all():
        raise ValueError("query vector contains NaN or infinity")
    norm = float(np.linalg.norm(q))
    if norm < 1e-12:
        raise ValueError("query vector is all zeros")
    return q / norm


class NeighbourIndex(ABC):
    """Nearest papers by cosine similarity of their embeddings, best first."""

    @property
    @abstractmethod
    def model(self) -> str | None:
        """The embedding model whose vectors are searched."""

    @property
    @abstractmethod
    def mode(self) -> str:
        """How it searches, in one word (``exact``, ``hnsw``, ``rebuilding``, ``pgvector``)."""

    @property
    @abstractmethod
    def watermark(self) -> datetime | None:
        """``created_at`` of the newest vector row that searches see now."""

    @abstractmethod
    def version(self) -> tuple[object, ...]:
        """Moves whenever what searches see changed (part of the web page cache's version)."""

    @abstractmethod
    def empty(self) -> bool:
        """True when there is no vector to search yet."""

    @abstractmethod
    def refresh(self, *, full: bool = False) -> None:
        """Pick up vectors written since the last look (by this or any other process)."""

    @abstractmethod
    def search(
        self,
        query_vec: np.ndarray,
        k: int = 100,
        *,
        exclude: set[str] | None = None,
        allow: Callable[[str], bool] | None = None,
    ) -> list[tuple[str, float]]:
        """``(paper_id, cosine)`` of the ``k`` nearest papers, best first."""

    @abstractmethod
    def vector_for(self, paper_id: str) -> np.ndarray | None:
        """The paper's unit vector, or None."""

    def vectors_for(self, paper_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The unit vectors of those of ``paper_ids`` that have one (``more_like``, ``scores_for``, smoothing
        the fused head). An index that can read many at once overrides this."""
        out: dict[str, np.ndarray] = {}
        for pid in dict.fromkeys(paper_ids):
            vec = self.vector_for(pid)
            if vec is not None:
                out[pid] = vec
        return out

    def wait_for_rebuild(self, timeout: float | None = None) -> bool:
        """Block until a background rebuild finished; True if none is running."""
        return True

    def similar(self, paper_id: str, k: int = 10) -> list[tuple[str, float]]:
        """Nearest papers to one paper, the paper itself excluded."""
        vec = self.vector_for(paper_id)
        return [] if vec is None else self.search(vec, k, exclude={paper_id})

    def more_like(self, paper_ids: Sequence[str], k: int = 10) -> list[tuple[str, float]]:
        """Nearest papers to the centroid of a set (e.g. a user's upvotes), the set excluded."""
        vecs = list(self.vectors_for(paper_ids).values())
        if not vecs:
            return []
        centroid = np.mean(vecs, axis=0)
        if float(np.linalg.norm(centroid)) < 1e-6:  # opposite vectors cancel out: nothing to say
            return []
        return self.search(centroid, k, exclude=set(paper_ids))

    def scores_for(self, query_vec: np.ndarray, paper_ids: Sequence[str]) -> dict[str, float]:
        """Cosine of the query to each given paper that has a vector (e.g. keyword hits to fuse)."""
        if self.empty():
            return {}
        q = unit_query(query_vec, None)
        out: dict[str, float] = {}
        for pid, vec in self.vectors_for(paper_ids).items():
            if vec.shape != q.shape:
                raise ValueError(f"query vector has {q.shape[0]} dimensions, the index has {vec.shape[0]}")
            out[pid] = float(vec @ q)
        return out
