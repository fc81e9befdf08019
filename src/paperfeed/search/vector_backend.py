"""Which vector index a process searches: PostgreSQL's (pgvector) or its own (usearch). One rule.

PostgreSQL holds and searches the vectors when its database is ready for it (the ``vector``
extension created, ``embeddings.hvec`` present and its HNSW index built: ``store/pgvector.py``).
Then web processes hold no vector index and have nothing to catch up, and ``paperfeed index``
builds no HNSW file. Everywhere else (SQLite; PostgreSQL without pgvector, or with pgvector not
yet enabled) each process keeps its own index (``search/vectors.py``) as before.

Decided when a process opens its vector index (the search service's first semantic query) and
each time ``paperfeed index`` runs; ``paperfeed db enable-pgvector`` takes effect for web
processes when they restart.
"""

from __future__ import annotations

import logging

from paperfeed.config import Settings
from paperfeed.search.hnsw import DEFAULT_PARAMS, HnswParams
from paperfeed.search.neighbours import NeighbourIndex
from paperfeed.search.pgvectors import MODE, PgVectorIndex
from paperfeed.search.vectors import VectorIndex
from paperfeed.store import pgvector
from paperfeed.store.db import Database

log = logging.getLogger(__name__)

PGVECTOR = MODE  # PostgreSQL searches the vectors (also the mode its index reports)
LOCAL = "local"  # each process holds its own index (exact numpy / usearch HNSW file)


def backend(db: Database) -> str:
    """:data:`PGVECTOR` or :data:`LOCAL` for this database, now."""
    return PGVECTOR if pgvector.state(db).ready else LOCAL


def describe(db: Database) -> str:
    """The backend in a sentence, with what to do when pgvector is there but not enabled."""
    return pgvector.state(db).describe()


def open_vector_index(
    settings: Settings, db: Database, *, model: str | None = None, params: HnswParams = DEFAULT_PARAMS
) -> NeighbourIndex:
    """The vector index this process should search (see the module docstring)."""
    st = pgvector.state(db)
    if st.ready:
        return PgVectorIndex(settings, db, model=model, params=params, state=st)
    if st.available or st.installed:
        log.warning("%s", st.describe())
    return VectorIndex(settings, db, model=model, params=params)
