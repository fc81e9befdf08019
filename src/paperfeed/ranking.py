"""The trending score (documented on ``/about/ranking`` and shown per card) and the trending order.

Votes, plus a little for code popularity, over age: ``TRENDING_FORMULA``. Pure functions, no SQL:
the trending page, its feed and the API rank the rows the store returns for the last
``TRENDING_WINDOW_DAYS`` days with :func:`rank_trending`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

GRAVITY = 1.5  # how fast age wins over votes; 1.5 halves a paper's score in ~1.6 days at 2 days old
AGE_OFFSET_HOURS = 2.0  # keeps brand-new papers from dividing by ~0
TRENDING_WINDOW_DAYS = 7  # only papers that entered the daily feed this recently can trend
TRENDING_FORMULA = "(upvotes + 1 + log2(1 + github_stars)) / (age_hours + 2) ^ 1.5"


@dataclass(frozen=True)
class TrendingScore:
    upvotes: int
    github_stars: int
    age_hours: float
    points: float
    score: float

    def explain(self) -> str:
        """One line for the card tooltip: the inputs and the result of the formula."""
        stars = f" + log2(1 + {self.github_stars} stars)" if self.github_stars else ""
        return (
            f"score {self.score:.4f} = ({self.upvotes} upvotes + 1{stars}) / "
            f"({self.age_hours:.0f} h old + {AGE_OFFSET_HOURS:g}) ^ {GRAVITY:g}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "upvotes": self.upvotes,
            "github_stars": self.github_stars,
            "age_hours": round(self.age_hours, 2),
            "points": round(self.points, 4),
            "gravity": GRAVITY,
            "score": self.score,
            "formula": TRENDING_FORMULA,
        }


def trending_score(upvotes: int, github_stars: int | None, entered: datetime, now: datetime) -> TrendingScore:
    """The trending score of one paper: votes (plus a little for code popularity) over age.

    ``entered`` is when the paper entered the daily feed; ages below zero (clock skew, a
    future-dated import) count as zero so a paper can never jump ahead by being "from the future".
    """
    stars = max(0, int(github_stars or 0))
    votes = max(0, int(upvotes or 0))
    age_hours = max(0.0, (now - entered).total_seconds() / 3600.0)
    points = votes + 1 + math.log2(1 + stars)
    score = points / (age_hours + AGE_OFFSET_HOURS) ** GRAVITY
    return TrendingScore(votes, stars, age_hours, points, score)


def trending_reference_time(now: datetime, latest_entry: datetime | None) -> datetime:
    """The "now" trending ages are measured from.

    An instance that has stopped importing (or a demo on a historical sample) would otherwise
    show an empty trending page; so when the newest daily entry is older than a day, time
    stands still at one day after it.
    """
    if latest_entry is None:
        return now
    return min(now, latest_entry + timedelta(days=1))


def rank_trending(rows: Sequence[Mapping[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The paper rows (with ``upvotes_total`` and ``submitted_at``), each with ``trending`` (a
    TrendingScore) added, best first.

    Ties are broken by upvotes, then by the newer paper, then by id, so the order is stable.
    """
    ranked = [
        {**row, "trending": trending_score(row["upvotes_total"], row.get("github_stars"), row["submitted_at"], now)}
        for row in rows
    ]
    ranked.sort(key=lambda r: (-r["trending"].score, -r["upvotes_total"], -r["submitted_at"].timestamp(), r["id"]))
    return ranked
