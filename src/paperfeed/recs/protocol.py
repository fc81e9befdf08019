"""The offline evaluation protocol of issue 14 (``paperfeed eval-recs``), as data: no ranking here.

* **Users** are author name strings, exactly as the listing file gives them (no normalising),
  with 6 to 40 papers in ``arxiv_cs_listings.jsonl.gz``.
* A user's papers are taken in **listing order** (the file's order: first listing day, then
  position); the **last two** are the test papers, all earlier ones the library.
* For each test paper, the **candidates** are all papers first listed on that same day (one real
  daily feed), and **every paper of the user listed that day** is relevant. Library papers
  listed that day (rare: a user with three or more papers that day) are taken out of both the
  candidates and the relevant set: a for-you feed never offers what is already in the library,
  and keeping them would hand every library-fitted ranker a free hit.
* A sample of users is drawn with a fixed seed; ``exclude`` (a seed and a size) leaves out every
  user of another sample, so a development sample for tuning never shares a user with the
  evaluation sample (seed 14, 600 users: bench/README.md); ``more`` extends an evaluation
  sample with further users, never the tuning sample's. Rankers see text, categories, embeddings and
  popularity, never author names (:class:`Corpus` hands rankers no author field at all).
"""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

MIN_PAPERS = 6
MAX_PAPERS = 40
TEST_PAPERS = 2
EVAL_SEED, EVAL_USERS = 14, 600  # the evaluation sample of bench/README.md
TUNING_SEED, TUNING_USERS = 1414, 200  # the development sample the ranker's blend was chosen on


@dataclass
class Corpus:
    """The listing papers in file order. Rankers read ``ids``/``titles``/``abstracts``/
    ``categories``/``days``/``upvotes``; ``authors`` is only for building the protocol."""

    ids: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    abstracts: list[str] = field(default_factory=list)
    categories: list[tuple[str, ...]] = field(default_factory=list)
    days: list[str] = field(default_factory=list)  # first listing day, ISO
    authors: list[list[str]] = field(default_factory=list)
    upvotes: dict[str, int] = field(default_factory=dict)  # HF daily-papers upvotes, where known

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, pid: str, title: str, abstract: str, categories: str, day: str, authors: list[str]) -> None:
        self.ids.append(pid)
        self.titles.append(title)
        self.abstracts.append(abstract)
        self.categories.append(tuple(categories.split()))
        self.days.append(day)
        self.authors.append(authors)

    def day_rows(self) -> dict[str, list[int]]:
        """Row numbers of the papers first listed on each day."""
        out: dict[str, list[int]] = defaultdict(list)
        for i, d in enumerate(self.days):
            out[d].append(i)
        return dict(out)

    def listing_days(self) -> list[str]:
        return sorted(set(self.days))


def read_listings(path: Path) -> Corpus:
    """Read ``arxiv_cs_listings.jsonl.gz`` (or a plain ``.jsonl``) in file order."""
    corpus = Corpus()
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        _read_listing_lines(path, opener, corpus)
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # not gzip, truncated, not UTF-8
        raise ValueError(f"{path}: cannot read it ({exc})") from exc
    return corpus


def _read_listing_lines(path: Path, opener: Callable[..., IO[str]], corpus: Corpus) -> None:
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                authors = r.get("authors_list")
                if authors is None:
                    authors = [a.strip() for a in str(r.get("authors") or "").split(",") if a.strip()]
                corpus.add(
                    str(r["id"]),
                    str(r.get("title") or ""),
                    str(r.get("abstract") or ""),
                    str(r.get("categories") or ""),
                    str(r["update_date"])[:10],
                    [str(a) for a in authors],
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{n}: not a listing record ({exc})") from exc


def read_hf_upvotes(paths: Iterable[Path]) -> dict[str, int]:
    """arXiv id -> upvotes from Hugging Face daily-papers dumps (the by-day ``.jsonl.gz`` file or
    raw ``.json`` day files); the highest count seen for an id wins. ValueError (naming the file)
    for a file that cannot be read or is not JSON."""
    out: dict[str, int] = {}

    def take(entries: Iterable[dict[str, object]]) -> None:
        for e in entries:
            paper = e.get("paper") if isinstance(e, dict) else None
            if not isinstance(paper, dict):
                continue
            pid, up = paper.get("id"), paper.get("upvotes")
            if isinstance(pid, str) and isinstance(up, int):
                out[pid] = max(out.get(pid, 0), up)

    for path in paths:
        try:
            _read_hf_file(path, take)
        except (OSError, EOFError, ValueError) as exc:  # not gzip, truncated, not UTF-8, not JSON
            raise ValueError(f"{path}: not a Hugging Face daily-papers dump ({exc})") from exc
    return out


def _read_hf_file(path: Path, take: Callable[[Iterable[dict[str, object]]], None]) -> None:
    if path.name.endswith(".jsonl.gz") or path.name.endswith(".jsonl"):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line) if line.strip() else None
                papers = rec.get("papers") if isinstance(rec, dict) else None
                if isinstance(papers, list):
                    take(papers)
    elif path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, list):
            take(data)


@dataclass(frozen=True)
class Query:
    """One test paper of one user: rank ``candidates`` (corpus rows) with ``library`` as the
    user's history; ``relevant`` are the user's candidate papers."""

    user: str
    test_row: int
    day: str
    library: tuple[int, ...]
    candidates: tuple[int, ...]
    relevant: frozenset[int]


def user_papers(corpus: Corpus) -> dict[str, list[int]]:
    """Author name string -> rows of their papers, in listing order."""
    out: dict[str, list[int]] = defaultdict(list)
    for i, names in enumerate(corpus.authors):
        for name in dict.fromkeys(names):  # an author listed twice on one paper counts once
            out[name].append(i)
    return dict(out)


def eligible_users(corpus: Corpus) -> dict[str, list[int]]:
    return {u: rows for u, rows in user_papers(corpus).items() if MIN_PAPERS <= len(rows) <= MAX_PAPERS}


def sample_users(users: Iterable[str], n: int, seed: int) -> list[str]:
    """A fixed-seed sample (sorted names first, so the draw does not depend on dict order)."""
    pool = sorted(users)
    if n >= len(pool):
        return pool
    return random.Random(seed).sample(pool, n)


def queries_for(user: str, rows: list[int], corpus: Corpus, by_day: dict[str, list[int]]) -> list[Query]:
    library = tuple(rows[:-TEST_PAPERS])
    lib = set(library)
    mine = set(rows)
    out = []
    for t in rows[-TEST_PAPERS:]:
        day = corpus.days[t]
        cands = tuple(r for r in by_day[day] if r not in lib)
        relevant = frozenset(r for r in cands if r in mine)
        out.append(Query(user, t, day, library, cands, relevant))
    return out


def tuning_users(users: dict[str, list[int]]) -> set[str]:
    """The development sample the ranker was tuned on (bench/tune_recs.py, bench/README.md):
    :data:`TUNING_USERS` users drawn with :data:`TUNING_SEED` from the eligible users minus the
    evaluation sample (:data:`EVAL_USERS` users, :data:`EVAL_SEED`)."""
    held = set(sample_users(users, EVAL_USERS, EVAL_SEED))
    return set(sample_users({u for u in users if u not in held}, TUNING_USERS, TUNING_SEED))


def build_queries(
    corpus: Corpus,
    n_users: int,
    seed: int,
    *,
    exclude: tuple[int, int] | None = None,
    more: tuple[int, int] | None = None,
) -> list[Query]:
    """The queries of ``n_users`` users sampled with ``seed``; with ``exclude=(seed2, n2)`` the
    users of the sample ``(n2, seed2)`` are taken out of the pool first (a disjoint dev sample).

    ``more=(n3, seed3)`` appends ``n3`` further users drawn with ``seed3`` from the pool minus
    the users already drawn and minus the tuning sample (:func:`tuning_users`): a larger
    evaluation sample whose first queries are exactly the smaller one's (same indices, so the
    same per-query seeds and results), and which never holds a user the ranker was tuned on."""
    users = eligible_users(corpus)
    pool = users
    if exclude is not None:
        taken = set(sample_users(users, exclude[1], exclude[0]))
        pool = {u: r for u, r in users.items() if u not in taken}
    chosen = sample_users(pool, n_users, seed)
    if more is not None:
        skip = set(chosen) | tuning_users(users)
        chosen += sample_users([u for u in pool if u not in skip], more[0], more[1])
    by_day = corpus.day_rows()
    out: list[Query] = []
    for u in chosen:
        out.extend(queries_for(u, users[u], corpus, by_day))
    return out
