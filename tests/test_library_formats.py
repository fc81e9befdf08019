"""Reference formats (pure code): exports that reference managers read back - BibTeX through
``bibtexparser`` with LaTeX decoded, RIS through ``rispy``, CSL-JSON checked field by field - and
imports of realistic Zotero / Google Scholar files, RIS, CSL-JSON and id lists."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import bibtexparser
import orjson
import pytest
import rispy
from bibtexparser import middlewares

from paperfeed.library import formats
from paperfeed.library.formats import ExportPaper, FormatError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "library"

PAPERS = [
    ExportPaper("1706.03762", "Attention Is All You Need: $O(n^2)$ & 50% {braces}_under #1 ~ tilde",
                ("Ashish Vaswani", "Jérôme Müller-Ødegård", "Ludwig van Beethoven", "Plato"), date(2017, 6, 12),
                "cs.CL", doi="10.48550/arXiv.1706.03762", abstract="We use $\\alpha$ and 100% of it.",
                note="read §3 — twice"),
    ExportPaper("hep-th/9901001", "An old-style id", ("Juan Maldacena",), date(1999, 1, 4), "hep-th",
                journal_ref="Phys. Rev. D 60 (1999) 1"),
]  # fmt: skip


def test_bibtex_round_trips_through_bibtexparser_with_latex_decoded() -> None:
    text = formats.to_bibtex(PAPERS)
    assert "@misc{vaswani2017attention," in text and "@article{maldacena1999style," in text
    assert r"M{\"u}ller-{\O}deg{\r{a}}rd, J{\'e}r{\^o}me" in text  # LaTeX, not raw UTF-8
    assert r"50\% \{braces\}\_under \#1 \textasciitilde{} tilde" in text and "$O(n^2)$" in text
    lib = bibtexparser.parse_string(text, append_middleware=[middlewares.LatexDecodingMiddleware()])
    assert not lib.failed_blocks
    first, second = lib.entries
    f = {k: v.value for k, v in first.fields_dict.items()}
    assert f["eprint"] == "1706.03762" and f["archivePrefix"] == "arXiv" and f["primaryClass"] == "cs.CL"
    assert f["url"] == "https://arxiv.org/abs/1706.03762" and f["doi"] == "10.48550/arXiv.1706.03762"
    assert f["author"] == "Vaswani, Ashish and Müller-Ødegård, Jérôme and van Beethoven, Ludwig and Plato"
    assert "50% {braces}_under #1" in f["title"] and f["year"] == "2017" and f["annote"] == "read §3 — twice"
    assert second.entry_type == "article" and second.fields_dict["journal"].value == "Phys. Rev. D 60 (1999) 1"
    assert "annote" not in second.fields_dict
    # And what paperfeed's own importer reads back is the same papers.
    _, entries = formats.parse(text)
    assert [(e.arxiv_id, e.note) for e in entries] == [("1706.03762", "read §3 — twice"), ("hep-th/9901001", None)]


def test_ris_round_trips_through_rispy() -> None:
    text = formats.to_ris(PAPERS)
    assert not text.startswith("1.")
    refs = rispy.loads(text)
    assert refs[0]["type_of_reference"] == "GEN" and refs[1]["type_of_reference"] == "JOUR"
    assert refs[0]["authors"][:2] == ["Vaswani, Ashish", "Müller-Ødegård, Jérôme"]
    assert refs[0]["doi"] == "10.48550/arXiv.1706.03762" and refs[0]["urls"] == ["https://arxiv.org/abs/1706.03762"]
    assert refs[0]["notes"] == ["read §3 — twice"] and refs[0]["date"] == "2017/06/12/"
    assert [e.arxiv_id for e in formats.parse(text)[1]] == ["1706.03762", "hep-th/9901001"]


def test_csl_json_has_the_schema_fields() -> None:
    items = orjson.loads(formats.to_csl_json(PAPERS))
    one = items[0]
    assert one["id"] == "arXiv:1706.03762" and one["type"] == "article"
    assert one["author"][1] == {"family": "Müller-Ødegård", "given": "Jérôme"}
    assert one["author"][3] == {"literal": "Plato"}
    assert one["issued"] == {"date-parts": [[2017, 6, 12]]}
    assert (one["URL"], one["DOI"], one["archive"], one["number"]) == (
        "https://arxiv.org/abs/1706.03762", "10.48550/arXiv.1706.03762", "arXiv", "1706.03762")
    assert items[1]["type"] == "article-journal" and items[1]["container-title"] == "Phys. Rev. D 60 (1999) 1"
    allowed = {"id", "type", "title", "author", "issued", "URL", "DOI", "archive", "number", "publisher", "genre",
               "container-title", "abstract", "note"}  # fmt: skip
    assert set().union(*items) <= allowed
    assert [e.arxiv_id for e in formats.parse(formats.to_csl_json(PAPERS).decode())[1]] == ["1706.03762",
                                                                                          "hep-th/9901001"]


def test_a_zotero_export_with_accents_strings_comments_and_a_broken_entry() -> None:
    fmt, entries = formats.parse((FIXTURES / "zotero.bib").read_text(encoding="utf-8"))
    assert fmt == "bibtex"
    by_ref = {e.ref: e for e in entries}
    assert list(by_ref) == ["vaswani_attention_2017", "muller_universelle_2020", "old_style_1999", "knuth_art_1997",
                            "no_fields_at_all", "broken_entry", "after_the_broken_one_2024"]  # fmt: skip
    assert by_ref["vaswani_attention_2017"].arxiv_id == "1706.03762"  # from the arXiv DOI
    muller = by_ref["muller_universelle_2020"]
    assert muller.title is not None and muller.title.startswith("Über die Universalität neuronaler Netze")
    assert (muller.doi, muller.arxiv_id) == ("10.1000/xyz-journal.2020.42", None)
    assert by_ref["old_style_1999"].arxiv_id == "hep-th/9711200"
    assert by_ref["knuth_art_1997"].title == "The Art of Computer Programming"
    assert by_ref["no_fields_at_all"].title is None and by_ref["no_fields_at_all"].problem is None
    assert by_ref["broken_entry"].problem and "could not be read" in by_ref["broken_entry"].problem
    assert by_ref["after_the_broken_one_2024"].title == "Matching By Title: A Case Study"


def test_google_scholar_ris_csl_and_id_lists() -> None:
    _, scholar = formats.parse((FIXTURES / "scholar.bib").read_text(encoding="utf-8"))
    assert [(e.ref, e.arxiv_id) for e in scholar] == [("devlin2018bert", "1810.04805"), ("he2016deep", None)]
    fmt, ris = formats.parse((FIXTURES / "zotero.ris").read_text(encoding="utf-8"))
    assert fmt == "ris" and [e.arxiv_id for e in ris] == ["1706.03762", None, None]
    assert ris[1].doi == "10.1000/XYZ-JOURNAL.2020.42" and ris[2].title == "A book nobody here has"
    csl = '[{"id": "x", "type": "article", "title": "T", "DOI": "10.48550/arXiv.2405.15738"}, 7]'
    assert [(e.arxiv_id, e.problem is None) for e in formats.parse(csl)[1]] == [("2405.15738", True), (None, False)]
    fmt, ids = formats.parse("# my list\n2405.15738v2\narXiv:hep-th/9901001\nhttps://arxiv.org/pdf/1706.03762.pdf\n"
                             "math.GT/0309136\nnot an id\n")  # fmt: skip
    assert fmt == "ids"
    assert [e.arxiv_id for e in ids] == ["2405.15738", "hep-th/9901001", "1706.03762", "math/0309136", None]
    assert ids[-1].ref == "line 6" and ids[-1].problem


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("just some prose, no references at all", "auto", "not a BibTeX, RIS or CSL-JSON file"),
        ("{not json", "auto", "not valid JSON"),
        ("[]", "csl-json", "Found no CSL-JSON items"),
        ("% only a comment\n", "bibtex", "Found no BibTeX entries"),
        ("2405.15738", "yaml", "Unknown import format"),
        ('"a string"', "csl-json", "CSL-JSON is a list"),
    ],
)
def test_unreadable_input_is_a_clear_error(text: str, fmt: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        formats.parse(text, fmt)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("@article{a,\r\n  title={T},\r\n  eprint={2405.15738}\r\n}\r\n", "bibtex"),
        ("TY  - JOUR\r\nTI  - T\r\nUR  - https://arxiv.org/abs/2405.15738\r\nER  - \r\n", "ris"),
        ('[{"id": "a", "title": "T", "URL": "https://arxiv.org/abs/2405.15738"}]', "csl-json"),
        ("2405.15738\r\n", "ids"),
    ],
)
def test_pasted_text_with_a_byte_order_mark_reads_like_the_file(text: str, fmt: str) -> None:
    """A BOM survives in pasted text and in the API's JSON ``text`` (an editor's UTF-8 file read as
    a string); an upload's bytes lose it in decoding. Both must read the same (found by the
    attacker review: a pasted BibTeX file with a BOM was 'not a BibTeX file')."""
    for auto in ("auto", fmt):
        got, entries = formats.parse("\ufeff" + text, auto)
        assert (got, [e.arxiv_id for e in entries]) == (fmt, ["2405.15738"])


def test_ris_export_keeps_every_value_on_its_own_line() -> None:
    """RIS is one tag a line: a line break in a title, abstract or note (arXiv abstracts have them, and
    anybody can post one to arXiv) must not start a line that reads as a tag, or a public
    collection's export would carry references nobody saved (found by the attacker review)."""
    forged = "\nER  - \nTY  - BOOK\nTI  - Injected\nUR  - https://evil.example/\n"
    paper = ExportPaper("2501.00001", "A title" + forged, ("Ada Lovelace",), date(2025, 1, 1), "cs.LG",
                        abstract="First line.\r\nER  - \r\nTY  - JOUR\u2028TI  - Also injected",
                        note="my note\rER  - " + forged)  # fmt: skip
    refs = rispy.loads(formats.to_ris([paper]))
    assert len(refs) == 1 and refs[0]["urls"] == ["https://arxiv.org/abs/2501.00001"]
    assert refs[0]["primary_title"] == "A title ER  -  TY  - BOOK TI  - Injected UR  - https://evil.example/"
    assert refs[0]["abstract"] == "First line. ER  -  TY  - JOUR TI  - Also injected"
    assert refs[0]["notes"] == ["my note ER  -  ER  -  TY  - BOOK TI  - Injected UR  - https://evil.example/"]
    assert formats.parse(formats.to_ris([paper]), "ris")[1][0].arxiv_id == "2501.00001"


def test_bibtex_concatenation_of_strings_and_macros_is_resolved() -> None:
    """JabRef and hand-kept .bib files build values with ``#`` from quoted parts and @string
    macros (month names, venue prefixes); the title must read as the concatenated text so it can
    be matched, and an undefined macro is kept as its name rather than dropping the entry."""
    text = (
        '@string{ttl = "Attention Is All You Need"}\n'
        '@string{pre = {Proceedings of }}\n'
        '@inproceedings{a, title = "Deep " # ttl, booktitle = pre # "NeurIPS", month = jun # "~12"}\n'
        '@article{b, title = {Braces # stay} # " and " # unknown_macro}\n'
    )
    by_ref = {e.ref: e for e in formats.parse_bibtex(text)}
    assert by_ref["a"].title == "Deep Attention Is All You Need"
    assert by_ref["b"].title == "Braces # stay and unknown_macro"


@pytest.mark.parametrize(
    "uses",
    [
        "@article{k, title = " + " # ".join(["m"] * 2000) + "}\n",  # one value: the macro 2,000 times
        "".join(f"@a{{k{i}, title = m}}\n" for i in range(2000)),  # 2,000 entries: the macro once each
    ],
)
def test_bibtex_macros_cannot_blow_a_small_file_up(uses: str) -> None:
    """A 100 KB @string used 2,000 times is 200 MB of text from a ~110-140 KB upload: refused
    with a message, not expanded (the expansion is budgeted against the file's own size)."""
    text = '@string{m = "' + "a" * 100_000 + '"}\n' + uses
    with pytest.raises(formats.FormatError, match="@string"):
        formats.parse_bibtex(text)
