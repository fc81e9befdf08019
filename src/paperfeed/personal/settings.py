"""A user's personal settings: the for-you dials they can see and change (popularity and recency
weight, learning from upvotes), the words and categories to exclude (optionally from the daily
feed and the digest too), resetting what the ranker learned, and the personal digest sections
("For you" above a relevance threshold, "Following").

Resetting forgets the upvotes and "not interested" clicks made before it (the ranker learns from
what comes after), and puts the dials back to their defaults; the library and confirmed authorship
claims stay, since they are the user's own explicit lists (remove papers there to forget them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from paperfeed.community.core import Community, User, require_active, strip_controls
from paperfeed.community.errors import CommunityError
from paperfeed.records import is_category
from paperfeed.recs.ranker import Weights
from paperfeed.store import personal_store as store

DEFAULT_POPULARITY = Weights().popularity  # the ranker's defaults (tuned with its blend: bench/README.md)
DEFAULT_RECENCY = Weights().recency
MAX_WEIGHT = 2.0
DEFAULT_THRESHOLD = 0.9  # the digest's for-you section: about the top tenth of a day
MIN_THRESHOLD, MAX_THRESHOLD = 0.5, 0.999
MAX_WORDS = 30
MAX_WORD = 60
MAX_CATEGORIES = 30
_SPLIT = re.compile(r"[,\n;]+")


def _or(value: Any, default: float) -> float:
    return default if value is None else float(value)


@dataclass(frozen=True)
class PersonalSettings:
    popularity: float = DEFAULT_POPULARITY
    recency: float = DEFAULT_RECENCY
    learn_from_upvotes: bool = True
    exclude_words: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    filter_daily: bool = False
    filter_digest: bool = False
    reset_at: datetime | None = None
    digest_for_you: bool = False
    digest_threshold: float = DEFAULT_THRESHOLD
    digest_following: bool = False

    @classmethod
    def from_row(cls, row: dict[str, Any] | None) -> PersonalSettings:
        if row is None:
            return cls()
        return cls(
            popularity=_or(row.get("popularity"), DEFAULT_POPULARITY),
            recency=_or(row.get("recency"), DEFAULT_RECENCY),
            learn_from_upvotes=bool(row.get("learn_from_upvotes", True)),
            exclude_words=tuple(w for w in row.get("exclude_words") or [] if isinstance(w, str)),
            exclude_categories=tuple((row.get("exclude_categories") or "").split()),
            filter_daily=bool(row.get("filter_daily")),
            filter_digest=bool(row.get("filter_digest")),
            reset_at=row.get("reset_at"),
            digest_for_you=bool(row.get("digest_for_you")),
            digest_threshold=_or(row.get("digest_threshold"), DEFAULT_THRESHOLD),
            digest_following=bool(row.get("digest_following")),
        )

    def columns(self) -> dict[str, Any]:
        return {
            "popularity": self.popularity,
            "recency": self.recency,
            "learn_from_upvotes": self.learn_from_upvotes,
            "exclude_words": list(self.exclude_words),
            "exclude_categories": " ".join(self.exclude_categories) or None,
            "filter_daily": self.filter_daily,
            "filter_digest": self.filter_digest,
            "reset_at": self.reset_at,
            "digest_for_you": self.digest_for_you,
            "digest_threshold": self.digest_threshold,
            "digest_following": self.digest_following,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "popularity": self.popularity,
            "recency": self.recency,
            "learnFromUpvotes": self.learn_from_upvotes,
            "excludeWords": list(self.exclude_words),
            "excludeCategories": list(self.exclude_categories),
            "filterDaily": self.filter_daily,
            "filterDigest": self.filter_digest,
            "resetAt": self.reset_at.isoformat() if self.reset_at else None,
            "digest": {"forYou": self.digest_for_you, "threshold": self.digest_threshold,
                       "following": self.digest_following},
        }  # fmt: skip

    def excludes(self, title: str, abstract: str, categories: list[str] | tuple[str, ...]) -> bool:
        """Whether a paper falls under the exclusions (the daily feed and digest filters)."""
        if self.exclude_categories and any(c in self.exclude_categories for c in categories):
            return True
        pattern = word_pattern(self.exclude_words)
        return pattern is not None and bool(pattern.search(title or "") or pattern.search(abstract or ""))


def word_pattern(words: tuple[str, ...] | list[str]) -> re.Pattern[str] | None:
    """Whole words or phrases, case-insensitive (the ranker applies the same rule)."""
    cleaned = [w for w in words if w]
    if not cleaned:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in cleaned) + r")\b", re.IGNORECASE)


def settings_of(c: Community, user_id: int) -> PersonalSettings:
    with c.db.read() as conn:
        return PersonalSettings.from_row(store.get_settings(conn, user_id))


def parse_words(text: str) -> tuple[str, ...]:
    words: list[str] = []
    for part in _SPLIT.split(strip_controls(text)):
        w = " ".join(part.split())
        if not w:
            continue
        if len(w) > MAX_WORD:
            raise CommunityError(f"An excluded word or phrase is at most {MAX_WORD} characters: {w[:30]!r}….")
        if w.casefold() not in {x.casefold() for x in words}:
            words.append(w)
    if len(words) > MAX_WORDS:
        raise CommunityError(f"At most {MAX_WORDS} excluded words or phrases.")
    return tuple(words)


def parse_categories(text: str) -> tuple[str, ...]:
    cats: list[str] = []
    for part in re.split(r"[\s,;]+", strip_controls(text)):
        if not part:
            continue
        if len(part) > 32 or not is_category(part):
            raise CommunityError(f"{part[:40]!r} is not an arXiv category (examples: cs.LG, cs.CV, stat.ML).")
        if part not in cats:
            cats.append(part)
    if len(cats) > MAX_CATEGORIES:
        raise CommunityError(f"At most {MAX_CATEGORIES} excluded categories.")
    return tuple(cats)


def _weight(value: float, name: str) -> float:
    if not 0.0 <= value <= MAX_WEIGHT:
        raise CommunityError(f"The {name} weight goes from 0 to {MAX_WEIGHT:g}.")
    return round(value, 3)


def update(c: Community, user: User | None, **changes: Any) -> PersonalSettings:
    """Change some settings (keyword per field of :class:`PersonalSettings`; text fields for the
    exclusions are parsed here); CommunityError (400) names what is wrong and nothing changes."""
    user = require_active(user)
    current = settings_of(c, user.id)
    fields: dict[str, Any] = {}
    for key, value in changes.items():
        if key in ("popularity", "recency"):
            fields[key] = _weight(float(value), key)
        elif key == "exclude_words":
            fields[key] = parse_words(value) if isinstance(value, str) else parse_words("\n".join(value))
        elif key == "exclude_categories":
            fields[key] = parse_categories(value) if isinstance(value, str) else parse_categories(" ".join(value))
        elif key == "digest_threshold":
            v = float(value)
            if not MIN_THRESHOLD <= v <= MAX_THRESHOLD:
                raise CommunityError(f"The relevance threshold goes from {MIN_THRESHOLD} to {MAX_THRESHOLD}.")
            fields[key] = v
        elif key in ("learn_from_upvotes", "filter_daily", "filter_digest", "digest_for_you", "digest_following"):
            fields[key] = bool(value)
        else:
            raise CommunityError(f"Unknown setting {key[:40]!r}.")
    new = replace(current, **fields)
    with c.db.write() as conn:
        store.put_settings(conn, user.id, new.columns(), c.now())
    return new


def reset(c: Community, user: User | None) -> PersonalSettings:
    """Forget what the ranker learned from upvotes and "not interested" so far, and put the dials
    back to their defaults (exclusions and digest choices stay: they are filters, not learning)."""
    user = require_active(user)
    current = settings_of(c, user.id)
    new = replace(current, popularity=DEFAULT_POPULARITY, recency=DEFAULT_RECENCY, learn_from_upvotes=True,
                  reset_at=c.now())  # fmt: skip
    with c.db.write() as conn:
        store.put_settings(conn, user.id, new.columns(), c.now())
    return new
