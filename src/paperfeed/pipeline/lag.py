"""How far a search index is behind the database: its watermark (the newest database change it
holds) against the newest change in the database.

``lag_seconds`` is the time between the two (0 when caught up), ``behind`` the number of rows
written after the watermark. The lexical index's watermark is a paper's ``modified_at``, the
vector index's a vector row's ``created_at``. Each pipeline node reports its own in its heartbeat
(``runner.py``); ``status.py`` shows them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from sqlalchemy import Connection

from paperfeed.store import pipeline_state

Watermarks = dict[str, datetime | None]  # index name (lexical, vectors) -> its watermark


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class IndexLag(TypedDict):
    name: str  # lexical | vectors
    watermark: str | None  # the newest database change the index holds (None: empty / not loaded)
    database: str | None  # the newest such change in the database
    lag_seconds: float | None  # database - watermark (0 when caught up; None when unknown)
    behind: int  # rows written after the watermark


def _lag(name: str, watermark: datetime | None, newest: datetime | None, behind: int) -> IndexLag:
    if newest is None or (watermark is not None and watermark >= newest):
        seconds: float | None = 0.0
    else:
        seconds = (newest - watermark).total_seconds() if watermark is not None else None
    return IndexLag(name=name, watermark=_iso(watermark), database=_iso(newest), lag_seconds=seconds, behind=behind)


def index_lags(conn: Connection, watermarks: Watermarks) -> list[IndexLag]:
    """Lag of each index in ``watermarks`` (``lexical``: a paper's ``modified_at``; ``vectors``: a
    vector row's ``created_at``) behind the database."""
    out = []
    if "lexical" in watermarks:
        wm = watermarks["lexical"]
        out.append(
            _lag("lexical", wm, pipeline_state.papers_changed_at(conn), pipeline_state.papers_changed_since(conn, wm))
        )
    if "vectors" in watermarks:
        wm = watermarks["vectors"]
        out.append(
            _lag("vectors", wm, pipeline_state.vectors_written_at(conn), pipeline_state.vectors_written_since(conn, wm))
        )
    return out
