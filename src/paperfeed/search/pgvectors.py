"""Vector search in PostgreSQL with pgvector: the vector index of a process whose database has it.

Nothing is loaded into the process and nothing needs catching up: each query is one SQL query on
the HNSW index of ``embeddings.hvec`` (``store/pgvector.py``), so a vector committed by any
process on any machine is found by the next query everywhere. ``hnsw.ef_search`` follows the
per-process index's ``expansion_search`` (``search/hnsw.py``), so both trade recall for speed
alike. Chosen by ``search/vector_backend.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import numpy as np

from paperfeed.config import Settings
from paperfeed.search.hnsw import DEFAULT_PARAMS, HnswParams
from paperfeed.search.neighbours import ANN_MAX_K, NeighbourIndex, default_model, unit_query
from paperfeed.store import embeddings as store
from paperfeed.store import pgvector
from paperfeed.store.db import Database

MODE = "pgvector"  # what ``mode`` says where PostgreSQL holds and searches the vectors


class PgVectorIndex(NeighbourIndex):
    """Nearest papers by cosine, asked of PostgreSQL (pgvector HNSW), best first."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        model: str | None = None,
        params: HnswParams = DEFAULT_PARAMS,
        state: pgvector.PgVectorState | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.params = params
        self._fixed_model = model
        self._model = model or default_model(db)
        st = state or pgvector.state(db)
        if not st.ready:
            raise pgvector.PgVectorUnavailable(st.describe())
        self._iterative = st.version >= pgvector.ITERATIVE_SCAN

    @property
    def model(self) -> str | None:
        return self._model

    @property
    def mode(self) -> str:
        return MODE

    @property
    def watermark(self) -> datetime | None:
        """Every committed vector is searched: the table's newest write (an index lookup)."""
        return store.marker(self.db, count=False).last_write

    def version(self) -> tuple[object, ...]:
        """The table's newest key and write (two index lookups): moves with every vector written
        by any process, so a page cached before a new vector is not served after it."""
        return (self._model, "pgvector", *store.marker(self.db, count=False).writes())

    def __len__(self) -> int:
        """Vectors of the model (a count: not free at a million rows; search never needs it)."""
        return 0 if self._model is None else store.count_vectors(self.db, self._model)

    def empty(self) -> bool:
        return self._model is None or not pgvector.any_vectors(self.db, self._model)

    def refresh(self, *, full: bool = False) -> None:
        """Nothing to catch up: PostgreSQL is the index. Only a model chosen before any vector
        existed (no encoder installed) is looked up again."""
        if self._fixed_model is None and self._model is None:
            self._model = default_model(self.db)

    def search(
        self,
        query_vec: np.ndarray,
        k: int = 100,
        *,
        exclude: set[str] | None = None,
        allow: Callable[[str], bool] | None = None,
    ) -> list[tuple[str, float]]:
        if k <= 0 or self._model is None:
            return []
        q = unit_query(query_vec, pgvector.DIM)
        skip = sorted(exclude or ())

        def ask(n: int) -> list[tuple[str, float]]:
            assert self._model is not None
            return pgvector.nearest(
                self.db,
                self._model,
                q,
                n,
                ef_search=self.params.expansion_search,
                exclude=skip,
                # Scanning on past ef_search costs time (a third more at 80k): only where a plain
                # scan could come back short - deeper than pgvector's ef_search cap, or excluded ids.
                iterative=self._iterative and (n > pgvector.MAX_EF_SEARCH or bool(skip)),
            )

        if allow is None:
            return ask(k)
        want = min(ANN_MAX_K, 2 * k + 8)
        while True:  # the filter runs here, so widen until k pass or nothing more is there
            found = ask(want)
            out = [(pid, s) for pid, s in found if allow(pid)]
            if len(out) >= k or len(found) < want or want >= ANN_MAX_K:
                return out[:k]
            want = min(ANN_MAX_K, want * 4)

    def vector_for(self, paper_id: str) -> np.ndarray | None:
        """The paper's unit vector, from its float32 blob (full precision)."""
        if self._model is None:
            return None
        vec = store.get_vector(self.db, paper_id, self._model)
        if vec is None:
            return None
        return vec / max(float(np.linalg.norm(vec)), 1e-12)
