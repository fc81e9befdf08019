"""The query language: fields, phrases, exclusions, dates, and hostile input (never raises)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperfeed.search.query import MAX_QUERY_CHARS, ParsedQuery, canonical_category, clean, parse_query


def test_plain_words_are_terms_and_text() -> None:
    q = parse_query("  diffusion   models for video ")
    assert q.terms == ["diffusion", "models", "for", "video"]
    assert q.text == "diffusion models for video"
    assert q.phrases == [] and q.warnings == []
    assert q.has_text and not q.is_empty


def test_full_grammar() -> None:
    q = parse_query(
        '"graph neural" networks -survey -"large language" author:"Yann  LeCun" au:hinton '
        "cat:cs.lg,CS.cv category:math.ag year:2024 after:2024-03 before:2024-06"
    )
    assert q.terms == ["networks"]
    assert q.phrases == ["graph neural"]
    assert q.excluded_terms == ["survey"]
    assert q.excluded_phrases == ["large language"]
    assert q.authors == ["Yann LeCun", "hinton"]
    assert q.categories == ["cs.LG", "cs.CV", "math.AG"]
    assert (q.date_from, q.date_to) == (date(2024, 3, 1), date(2024, 6, 30))
    assert q.text == "graph neural networks"  # free text only: no filters, no exclusions
    assert q.warnings == []


@pytest.mark.parametrize(
    ("query", "date_from", "date_to"),
    [
        ("year:2024", date(2024, 1, 1), date(2024, 12, 31)),
        ("year:2020-2022", date(2020, 1, 1), date(2022, 12, 31)),
        ("year:2020..2022", date(2020, 1, 1), date(2022, 12, 31)),
        ("after:2024", date(2024, 1, 1), None),
        ("after:2024-02", date(2024, 2, 1), None),
        ("before:2024-02", None, date(2024, 2, 29)),  # leap year: the last day of the month
        ("since:2023-05-06 until:2023-07-08", date(2023, 5, 6), date(2023, 7, 8)),
        ("after:2024/1/5", date(2024, 1, 5), None),
        ("year:2023 after:2023-06", date(2023, 6, 1), date(2023, 12, 31)),  # filters narrow each other
    ],
)
def test_dates(query: str, date_from: date | None, date_to: date | None) -> None:
    q = parse_query(f"transformers {query}")
    assert (q.date_from, q.date_to) == (date_from, date_to)
    assert q.terms == ["transformers"] and q.warnings == []


@pytest.mark.parametrize(
    "bad", ["year:abcd", "year:24", "year:12345", "after:2024-13", "before:2023-02-29", "after:yesterday", "year:1066"]
)
def test_invalid_dates_warn_and_are_ignored(bad: str) -> None:
    q = parse_query(f"graphs {bad}")
    assert q.date_from is None and q.date_to is None
    assert q.terms == ["graphs"]
    assert len(q.warnings) == 1 and bad.split(":")[0] in q.warnings[0]


def test_contradictory_dates_warn() -> None:
    q = parse_query("year:2020 after:2023")
    assert q.date_from == date(2023, 1, 1) and q.date_to == date(2020, 12, 31)
    assert any("No date" in w for w in q.warnings)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("cs.lg", "cs.LG"),
        ("CS.LG", "cs.LG"),
        ("math.ag", "math.AG"),
        ("hep-TH", "hep-th"),
        ("astro-ph.co", "astro-ph.CO"),
        ("physics.Optics", "physics.optics"),
        ("cond-mat.MES-HALL", "cond-mat.mes-hall"),
        ("cs", "cs"),
        ("cs.", None),
        ("'; DROP", None),
        ("cs.LG.x", None),
    ],
)
def test_canonical_category(raw: str, canonical: str | None) -> None:
    assert canonical_category(raw) == canonical


def test_bad_category_warns() -> None:
    q = parse_query("nets cat:'';DROP cat:cs.CV")
    assert q.categories == ["cs.CV"]
    assert len(q.warnings) == 1


def test_unknown_fields_are_plain_text() -> None:
    q = parse_query("foo:bar https://arxiv.org/abs/1706.03762 title:attention")
    assert q.terms == ["foo:bar", "https://arxiv.org/abs/1706.03762", "title:attention"]
    assert q.warnings == [] and not q.categories and not q.authors


def test_unbalanced_quotes() -> None:
    q = parse_query('attention "is all you need')
    assert q.terms == ["attention"]
    assert q.phrases == ["is all you need"]
    assert len(q.warnings) == 1
    q = parse_query('author:"Yann LeCun')
    assert q.authors == ["Yann LeCun"] and len(q.warnings) == 1
    q = parse_query('"')
    assert q.is_empty


def test_quotes_inside_words_and_empty_phrases() -> None:
    q = parse_query('don"t "" -"" -')
    assert q.terms == ['don"t']
    assert q.phrases == [] and q.excluded_phrases == [] and q.excluded_terms == []


def test_field_without_value_warns() -> None:
    q = parse_query("author: nets")
    assert q.authors == [] and q.terms == ["nets"]
    assert len(q.warnings) == 1


def test_negated_filter_is_ignored_with_warning() -> None:
    q = parse_query("nets -author:smith -cat:cs.CV")
    assert q.authors == [] and q.categories == [] and q.excluded_terms == []
    assert len(q.warnings) == 2


def test_cleaning_control_characters_and_nul() -> None:
    q = parse_query("gra\x00ph\x07 neural\tnetworks\r\nnow\x1b")
    assert q.terms == ["graph", "neural", "networks", "now"]
    assert "\x00" not in q.text


def test_lone_surrogates_and_nfkc() -> None:
    q = parse_query("\ud800bad ＧＰＴ ﬁne")
    assert all(s.encode("utf-8") for s in q.terms)
    assert "GPT" in q.terms and "fine" in q.terms


def test_long_query_is_cut_with_warning() -> None:
    q = parse_query("word " * 2_000)
    assert len(q.text) <= MAX_QUERY_CHARS
    assert len(q.terms) == 200
    assert any("cut" in w for w in q.warnings)
    huge = parse_query("x" * 5_000_000)  # one enormous "word": bounded work, still no error
    assert len(huge.text) <= MAX_QUERY_CHARS and huge.warnings


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "AND OR NOT NEAR(",
        "*",
        "?",
        "a* OR b?",
        "'; DROP TABLE papers; --",
        "1=1; --",
        "🚀🔥 large language models 🤖",
        "深度学习 神经网络",
        "field:",
        ":::",
        '-"',
        "author:",
        "cat:",
        "year:",
        "NEAR(a, b)",
        "title:(a OR b)^3 AND c~2",
        "\\",
        "%s %d {0} ${x}",
        "<script>alert(1)</script>",
    ],
)
def test_hostile_input_never_raises(raw: str) -> None:
    q = parse_query(raw)
    assert isinstance(q, ParsedQuery)
    assert "\x00" not in q.text


def test_non_string_input() -> None:
    assert parse_query(None).is_empty
    assert parse_query(12345).terms == ["12345"]


def test_clean_keeps_ordinary_text() -> None:
    assert clean("naïve Bayes")[0] == "naïve Bayes"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_parse_never_raises_fuzz(raw: str) -> None:
    q = parse_query(raw)
    assert len(q.text) <= MAX_QUERY_CHARS
    for value in [*q.terms, *q.phrases, *q.authors, q.text]:
        value.encode("utf-8")  # always encodable: safe to hand to any engine


_GRAMMAR = st.lists(
    st.one_of(
        st.text(max_size=12),
        st.sampled_from(['"', "-", '-"', "author:", "cat:", "year:", "after:", "before:", ":", " ", "2024", "cs.LG"]),
    ),
    max_size=20,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(_GRAMMAR)
def test_parse_never_raises_grammar_fuzz(raw: str) -> None:
    q = parse_query(raw)
    if q.date_from and q.date_to and q.date_from > q.date_to:
        assert f"No date is both on or after {q.date_from} and on or before {q.date_to}." in q.warnings
