"""Feed logic: periods (day / ISO week / month), the trending score, previews and snippets."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperfeed import periods, ranking
from paperfeed.cards import card, preview, snippet


@pytest.mark.parametrize(
    "text, message",
    [
        ("2025-02-30", "not a real date"),
        ("2025-13-01", "not a real date"),
        ("2025-1-5", "use YYYY-MM-DD"),
        ("yesterday", "use YYYY-MM-DD"),
        ("0001-01-01", "year must be between"),
        ("", "use YYYY-MM-DD"),
    ],
)
def test_bad_days_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(periods.PeriodError, match=message):
        periods.parse_day(text)


def test_iso_weeks_and_months() -> None:
    w = periods.parse_week("2025-W03")
    assert (w.start, w.end, w.label) == (date(2025, 1, 13), date(2025, 1, 19), "2025-W03")
    assert periods.parse_week("2020-W53").start == date(2020, 12, 28)  # 2020 has 53 ISO weeks
    with pytest.raises(periods.PeriodError, match="no ISO week 53"):
        periods.parse_week("2025-W53")
    with pytest.raises(periods.PeriodError, match="ISO week"):
        periods.parse_week("2025-3")
    m = periods.parse_month("2024-02")
    assert (m.start, m.end) == (date(2024, 2, 1), date(2024, 2, 29))
    with pytest.raises(periods.PeriodError, match="01 to 12"):
        periods.parse_month("2024-13")


def test_period_navigation_crosses_year_boundaries() -> None:
    assert periods.parse_week("2025-W01").previous().label == "2024-W52"
    assert periods.parse_month("2025-01").previous().label == "2024-12"
    assert periods.parse_month("2024-12").next().label == "2025-01"
    assert periods.day_period(date(2025, 3, 1)).previous().label == "2025-02-28"


def test_trending_score_follows_the_documented_formula() -> None:
    now = datetime(2025, 1, 10, 12)
    s = ranking.trending_score(10, 1023, now - timedelta(hours=22), now)
    assert s.points == pytest.approx(10 + 1 + 10)  # log2(1 + 1023) = 10
    assert s.score == pytest.approx(21 / (22 + 2) ** 1.5)
    assert "10 upvotes" in s.explain() and "1023 stars" in s.explain()
    # No stars, no votes: still a positive score, so new papers rank by freshness.
    assert ranking.trending_score(0, None, now, now).score == pytest.approx(1 / 2**1.5)
    # A future-dated entry counts as brand new, never as negative age.
    assert ranking.trending_score(5, 0, now + timedelta(hours=5), now).age_hours == 0


def test_rank_trending_prefers_fresh_votes_and_is_stable() -> None:
    now = datetime(2025, 1, 10, 12)
    rows = [
        {"id": "a", "upvotes_total": 50, "github_stars": None, "submitted_at": now - timedelta(days=5)},
        {"id": "b", "upvotes_total": 10, "github_stars": None, "submitted_at": now - timedelta(hours=3)},
        {"id": "c", "upvotes_total": 10, "github_stars": None, "submitted_at": now - timedelta(hours=3)},
    ]
    ranked = ranking.rank_trending(rows, now)
    assert [r["id"] for r in ranked] == ["b", "c", "a"]


def test_reference_time_stands_still_when_imports_stop() -> None:
    now = datetime(2026, 11, 23)
    latest = datetime(2026, 8, 21, 9)
    assert ranking.trending_reference_time(now, latest) == latest + timedelta(days=1)
    assert ranking.trending_reference_time(now, now - timedelta(hours=1)) == now
    assert ranking.trending_reference_time(now, None) == now


def test_preview_cuts_on_words_and_never_inside_math() -> None:
    text = "word " * 50 + "$a + b = c$ tail " * 20
    p = preview(text, 270)
    assert p.endswith("…") and len(p) <= 271
    assert p.count("$") % 2 == 0
    assert preview("short  text\nwith breaks") == "short text with breaks"


def test_snippet_moves_spans_with_the_text() -> None:
    text = "Intro   line\n" + "filler words here " * 30 + "the key finding is here."
    start = text.index("key")
    snip = snippet(text, [(start, start + 3)], limit=120)
    a, b = snip["spans"][0]
    assert snip["text"][a:b] == "key"
    assert snip["text"].startswith("…")
    # Spans that point nowhere are dropped, not errors.
    assert snippet("abc", [(10, 20), (2, 1), ("x", 1)])["spans"] == []


def test_card_adds_local_and_imported_votes() -> None:
    c = card({"id": "2501.00001", "title": "T", "upvotes": 2, "imported_upvotes": 5, "categories": "cs.LG cs.AI"})
    assert c["upvotes"] == 7 and c["categories"] == ["cs.LG", "cs.AI"] and c["url"] == "/papers/2501.00001"


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet="ab \n\t", max_size=60),
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=4),
)
def test_snippet_spans_cover_the_same_words(text: str, spans: list[tuple[int, int]]) -> None:
    snip = snippet(text, spans, limit=1_000)  # no windowing: only whitespace moves things
    assert snip["text"] == " ".join(text.split())
    expected = sorted(" ".join(text[a:b].split()) for a, b in spans if " ".join(text[a:b].split()))
    got = sorted(snip["text"][a:b].strip() for a, b in snip["spans"])
    assert got == expected
