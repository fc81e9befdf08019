"""The normalised record: arXiv id parsing, text cleaning, categories and stable hashes."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from paperfeed.records import (
    PaperRecord,
    RecordError,
    clean_categories,
    clean_text,
    parse_arxiv_id,
    parse_day,
    parse_timestamp,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2405.15738", ("2405.15738", None)),
        ("2405.15738v2", ("2405.15738", 2)),
        ("arXiv:2405.15738", ("2405.15738", None)),
        ("arxiv:2405.15738v3", ("2405.15738", 3)),
        ("  2405.15738 ", ("2405.15738", None)),
        ("https://arxiv.org/abs/2405.15738v2", ("2405.15738", 2)),
        ("https://arxiv.org/abs/2405.15738", ("2405.15738", None)),
        ("http://arxiv.org/pdf/2405.15738v1.pdf", ("2405.15738", 1)),
        ("https://arxiv.org/pdf/2405.15738", ("2405.15738", None)),
        ("https://www.arxiv.org/abs/2405.15738?context=cs", ("2405.15738", None)),
        ("arxiv.org/abs/2405.15738/", ("2405.15738", None)),
        ("https://export.arxiv.org/abs/0704.0001", ("0704.0001", None)),
        ("0704.0001", ("0704.0001", None)),
        ("1412.9999v4", ("1412.9999", 4)),
        ("hep-th/9901001", ("hep-th/9901001", None)),
        ("hep-th/9901001v2", ("hep-th/9901001", 2)),
        ("math.GT/0309136", ("math/0309136", None)),
        ("https://arxiv.org/abs/math.GT/0309136v1", ("math/0309136", 1)),
        ("cond-mat/0703001", ("cond-mat/0703001", None)),
        ("oai:arXiv.org:2604.07429", ("2604.07429", None)),
    ],
)
def test_parse_arxiv_id_valid(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "2405.1573",  # too short for 2024
        "2405.157381",
        "1501.1234",  # 5 digits from 2015 on
        "0703.0001",  # new-style ids start in 2007-04
        "2413.15738",  # month 13
        "2405.15738v0",
        "foo-bar/9901001",  # unknown archive
        "hep-th/0801001",  # old style ended in 2007-03
        "https://example.org/abs/2405.15738",
        "https://arxiv.org/list/cs.LG/new",
        "2405.15738 2405.15739",
        "\u0662\u0664\u0660\u0665.\u0661\u0665\u0667\u0663\u0668",  # Arabic-Indic digits
    ],
)
def test_parse_arxiv_id_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="not a valid arXiv id"):
        parse_arxiv_id(text)


def test_parse_arxiv_id_rejects_non_strings_and_keeps_messages_short() -> None:
    with pytest.raises(ValueError):
        parse_arxiv_id(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError) as info:
        parse_arxiv_id("x" * 100_000)
    assert len(str(info.value)) < 300


def test_clean_text_collapses_whitespace_keeps_latex() -> None:
    raw = "  We study $\\mathcal{O}(n)$\nbounds.\n\n  New   paragraph\twith\x00 a NUL.\n"
    assert clean_text(raw) == "We study $\\mathcal{O}(n)$ bounds. New paragraph with a NUL."
    assert clean_text(None) == ""
    with pytest.raises(RecordError):
        clean_text(42)


def test_clean_categories_drops_msc_and_acm_classes() -> None:
    assert clean_categories("cs.CV 68T45 I.4.8; cs.CV, cs.LG") == "cs.CV cs.LG"
    assert clean_categories("eess.IV cs.AI math.IT 94A29, I.4.2;") == "eess.IV cs.AI math.IT"
    assert clean_categories("hep-th") == "hep-th"
    assert clean_categories("") == ""


def test_dates() -> None:
    assert parse_day("2026-04-10", "x") == date(2026, 4, 10)
    assert parse_day("2026-04-10T00:00:00.000Z", "x") == date(2026, 4, 10)
    with pytest.raises(RecordError, match="bad date in listing_dates"):
        parse_day("2026-04-31", "listing_dates")
    with pytest.raises(RecordError):
        parse_day(20260410, "x")
    assert parse_timestamp("2024-10-25T00:57:09.392Z", "x") == datetime(2024, 10, 25, 0, 57, 9, 392000)
    assert parse_timestamp("2024-10-25T02:00:00+02:00", "x") == datetime(2024, 10, 25, 0, 0)
    with pytest.raises(RecordError, match="bad timestamp"):
        parse_timestamp("yesterday", "x")


def test_hashes_are_stable_and_field_sensitive() -> None:
    a = PaperRecord(id="2405.15738", title="T", abstract="A", authors=["X Y"], categories="cs.LG cs.AI", version=1)
    b = PaperRecord(id="2405.15738", title="T", abstract="A", authors=["X Y"], categories="cs.LG cs.AI", version=1)
    assert a.arxiv_hash() == b.arxiv_hash() and a.content_hash == b.content_hash
    # The content hash drives re-embedding: only title/abstract move it.
    b.doi = "10.1/x"
    assert a.content_hash == b.content_hash and a.arxiv_hash() != b.arxiv_hash()
    b.abstract = "A2"
    assert a.content_hash != b.content_hash
    assert a.primary_category == "cs.LG"
    # Same content_hash formula as the rest of the code base (see tests/factories.py).
    import hashlib

    assert a.content_hash == hashlib.sha256(b"T\nA").hexdigest()
    # Fields a source does not carry do not take part in its hash.
    c = PaperRecord(id="x", title="T", doi="10.1/x", inexact=frozenset({"doi"}))
    d = PaperRecord(id="x", title="T", doi=None, inexact=frozenset({"doi"}))
    assert c.arxiv_hash() == d.arxiv_hash()
    e = PaperRecord(id="x", title="T", imported_upvotes=3)
    assert e.hf_hash() != PaperRecord(id="x", title="T", imported_upvotes=4).hf_hash()
