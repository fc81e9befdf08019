"""Highlighting's fast path (a pattern of candidate words, each analyzed once) against the
analyzer itself, word for word, on real abstracts and on the words that stem irregularly."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

from paperfeed.search import highlight as highlight_module
from paperfeed.search.analysis import MAX_TOKEN_BYTES, pre_tokens
from paperfeed.search.highlight import highlight
from paperfeed.search.query import parse_query

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "arxiv_cs_listings.sample.jsonl.gz"


def by_analyzer(text: str, query: str) -> list[tuple[int, int]]:
    """Every token of ``text`` whose analyzed term is one of the query's: what highlighting means."""
    wanted = {t.text for word in parse_query(query).terms for t in pre_tokens(word)}
    return [(t.char_offset_from, t.char_offset_to) for t in pre_tokens(text) if t.text in wanted]


def sample_texts(n: int) -> list[str]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(n), fh, strict=False)]
    return [t for r in rows for t in (r.get("title") or "", r.get("abstract") or "") if t]


def test_fast_highlighting_marks_exactly_what_the_analyzer_matches_on_real_abstracts() -> None:
    texts = sample_texts(300)
    assert len(texts) >= 400
    rng = random.Random(16)
    checked = marked = 0
    for text in texts:
        words = [t.text for t in pre_tokens(text)] or ["graph"]
        raw = text.split()
        # Queries of the text's own words, in other inflections and cases, plus words it lacks.
        query = " ".join(
            [rng.choice(raw).strip(".,;:()") for _ in range(2)] + [rng.choice(words) + "s", "Networks", "dying"]
        )
        spans = highlight(text, parse_query(query))
        assert spans == by_analyzer(text, query), (text[:80], query)
        checked += 1
        marked += len(spans)
    assert checked == len(texts)
    assert marked > len(texts)  # the queries did find words to mark


def test_irregular_stems_numbers_case_and_long_tokens() -> None:
    text = (
        "Lying, TYING and dying agents; vying models lie. Networks of NETWORKING nets in 2024 "
        "(v2.0); news, skies and sky. " + "x" * 45 + " trailing_underscore word"
    )
    for query in ["lie", "tie die", "vie", "network", "2024", "v2", "sky", "news", "x" * 45, "underscore", "nets"]:
        assert highlight(text, parse_query(query)) == by_analyzer(text, query), query
    assert [text[a:b] for a, b in highlight(text, parse_query("lies"))] == ["Lying", "lie"]
    assert [text[a:b] for a, b in highlight(text, parse_query("network"))] == ["Networks", "NETWORKING"]
    # Words the analyzer drops for their length never enter the per-process word cache.
    assert "x" * 45 not in highlight_module._term_of_word
    assert max(map(len, highlight_module._term_of_word)) < MAX_TOKEN_BYTES


def test_text_with_other_characters_takes_the_tokenizer_path() -> None:
    text = "Réseaux de neurones: graph networks — naïve Bayes, 神经网络 networks"
    for query in ["reseaux", "naive networks", "graph"]:
        assert highlight(text, parse_query(query)) == by_analyzer(text, query), query
