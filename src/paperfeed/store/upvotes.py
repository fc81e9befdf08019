"""A paper's upvotes: its local votes (``papers.upvotes``, kept equal to its vote rows) plus the
count imported from Hugging Face (``papers.imported_upvotes``).

One rule with one home. Every page, feed, API answer, search sort and filter, digest and trend
shows or orders by this number: queries select or sort by :data:`TOTAL` (so SQL can order by
it), every paper row the store hands out carries it as ``upvotes_total``, and :func:`total`
reads it from such a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paperfeed.store.schema import papers

TOTAL = (papers.c.upvotes + papers.c.imported_upvotes).label("upvotes_total")


def total(row: Mapping[str, Any]) -> int:
    """The total upvotes of a paper row; rows selected without :data:`TOTAL` add the two counts."""
    value = row.get("upvotes_total")
    if value is not None:
        return int(value)
    return int(row.get("upvotes") or 0) + int(row.get("imported_upvotes") or 0)
