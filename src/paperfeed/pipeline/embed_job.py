"""The pipeline's embedding step: vectors for new and changed papers, seconds after they are written.

The leader polls the newest ``papers.modified_at`` (an index lookup) every couple of seconds;
when it moved, it runs the indexer's embed step (``search/indexer.embed_papers``: only papers
without a vector from their current text, committed in small batches), so a paper submitted on
the web or harvested from arXiv gets its vector within seconds, on whichever machine leads. Every
``FULL_EVERY`` it looks anyway (a model change, a ``paperfeed index --rebuild`` left unfinished).
Each process's own search indexes then pick the vectors up from the database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from paperfeed.config import Settings
from paperfeed.search.indexer import EncoderLike, embed_papers
from paperfeed.store import embeddings as embedding_store
from paperfeed.store import pipeline_state
from paperfeed.store.db import Database

log = logging.getLogger(__name__)


def rebuild_pending(db: Database) -> bool:
    """An interrupted ``paperfeed index --rebuild`` left work that the counts do not show."""
    return embedding_store.rebuild_mark(db) is not None


BATCH = 32  # papers per committed batch: about a second of CPU, and the unit a stop waits for
FULL_EVERY = 600.0  # seconds between passes when no paper changed


class EmbedJob:
    """``encoder()`` loads the encoder (only once there is work: it costs memory and a second);
    ``model()`` names the model it embeds with, without loading it."""

    def __init__(
        self, settings: Settings, db: Database, encoder: Callable[[], EncoderLike], model: Callable[[], str | None]
    ) -> None:
        self.settings, self.db, self.encoder, self.model = settings, db, encoder, model
        self._seen: datetime | None = None
        self._last_pass = -FULL_EVERY

    def run_if_changed(self, keep_going: Callable[[], bool]) -> int:
        """Embed what needs it if papers changed since the last complete pass; returns the count."""
        with self.db.read() as conn:
            changed = pipeline_state.papers_changed_at(conn)
        if changed is None or (changed == self._seen and time.monotonic() - self._last_pass < FULL_EVERY):
            return 0
        model = self.model()
        if model is not None and embedding_store.count_to_embed(self.db, model) == 0 and not rebuild_pending(self.db):
            self._seen, self._last_pass = changed, time.monotonic()
            return 0
        stopped = False

        def stop() -> bool:
            nonlocal stopped
            stopped = stopped or not keep_going()
            return stopped

        done, _unchanged, seconds, _resumed = embed_papers(
            self.db, self.encoder(), batch_size=BATCH, progress=False, stop=stop
        )
        if not stopped:
            self._seen, self._last_pass = changed, time.monotonic()
        if done:
            log.info("embedded %d new or changed papers in %.1f s", done, seconds)
        return done
