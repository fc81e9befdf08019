"""Reference formats in and out of a collection: BibTeX, RIS and CSL-JSON, plus plain lists of arXiv
ids or URLs. Pure code (no database): the importer matches what :func:`parse` returns.

**Export** writes what Zotero writes for arXiv papers, so Zotero, JabRef, Mendeley and pandoc/citeproc
read it back: BibTeX ``@misc`` (``@article`` with ``journal`` when arXiv knows a journal reference)
with ``eprint``, ``archivePrefix``, ``primaryClass``, ``url`` and ``doi``, special characters
escaped and non-ASCII letters as LaTeX accents (``$...$`` math in titles is kept as math);
RIS (``rispy``); CSL-JSON (``type``, ``title``, ``author`` family/given, ``issued`` date-parts,
``URL``, ``DOI``, ``archive``/``number`` = arXiv and the id). The owner's private notes go out as
BibTeX ``annote``, RIS ``N1`` and CSL ``note`` only in the owner's own export, never on a public URL.

**Import** reads BibTeX with ``bibtexparser`` (``@string``, ``@comment``, LaTeX accents and braces
decoded; an entry it cannot read is reported, not dropped), RIS with ``rispy``, CSL-JSON, or one
arXiv id/URL per line. From each entry it takes what identifies the paper: an arXiv id (``eprint``,
an arxiv.org URL, Google Scholar's ``journal = {arXiv preprint arXiv:...}``, the arXiv DOI
``10.48550/arXiv.<id>``), a DOI, the title.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import bibtexparser
import orjson
import rispy
from bibtexparser import middlewares
from bibtexparser.model import Entry as BibEntry
from bibtexparser.model import Field
from pylatexenc.latex2text import LatexNodes2Text
from pylatexenc.latexencode import UnicodeToLatexEncoder
from rispy.writer import RisWriter

from paperfeed.records import parse_arxiv_id

FORMATS = ("bibtex", "ris", "csl-json")
IMPORT_FORMATS = ("auto", *FORMATS, "ids")
MEDIA = {"bibtex": ("application/x-bibtex", "bib"), "ris": ("application/x-research-info-systems", "ris"),
         "csl-json": ("application/vnd.citationstyles.csl+json", "json")}  # fmt: skip
logging.getLogger("bibtexparser").setLevel(logging.ERROR)  # failed blocks are reported per entry instead


class FormatError(ValueError):
    """The input is not in the format it claims (or in any, for ``auto``): a message for people."""


# -- what goes out ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportPaper:
    """The fields of one paper a reference manager needs (from a store paper row)."""

    arxiv_id: str
    title: str
    authors: tuple[str, ...]
    published: date | None
    primary_category: str | None
    doi: str | None = None
    journal_ref: str | None = None
    abstract: str | None = None
    note: str | None = None  # the owner's private note; None in public exports

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv_id}"


def split_name(name: str) -> tuple[str, str]:
    """(family, given) from "Given Family" or "Family, Given"; a single word is a family name."""
    name = " ".join(name.split())
    if "," in name:
        family, _, given = name.partition(",")
        return family.strip(), given.strip()
    parts = name.split(" ")
    if len(parts) == 1:
        return parts[0], ""
    # Lower-case particles belong to the family name ("Ludwig van Beethoven", "Vincent de Paul").
    i = len(parts) - 1
    while i > 1 and parts[i - 1][:1].islower():
        i -= 1
    return " ".join(parts[i:]), " ".join(parts[:i])


_ENCODER = UnicodeToLatexEncoder(non_ascii_only=True, replacement_latex_protection="braces-all",
                                 unknown_char_policy="keep")  # fmt: skip
_SPECIAL = re.compile(r"([&%#_{}])|(\\)|(~)|(\^)|(\$)")
_MATH = re.compile(r"(\$[^$]+\$)")


def _tex_text(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return "\\" + m.group(1)
        return {2: r"\textbackslash{}", 3: r"\textasciitilde{}", 4: r"\textasciicircum{}", 5: r"\$"}[m.lastindex or 5]

    escaped = _SPECIAL.sub(one, text)
    return escaped if escaped.isascii() else _ENCODER.unicode_to_latex(escaped)


def tex_escape(text: str, *, keep_math: bool = False) -> str:
    """Text as a BibTeX field value: specials escaped, non-ASCII as LaTeX; ``$...$`` kept with ``keep_math``."""
    if not keep_math:
        return _tex_text(text)
    out = []
    for i, piece in enumerate(_MATH.split(text)):
        out.append(piece if i % 2 else _tex_text(piece))
    return "".join(out)


def _cite_key(p: ExportPaper, used: dict[str, int]) -> str:
    """Google Scholar's style, ``vaswani2017attention``; repeats get b, c, ... (``used``: key -> count)."""
    family = split_name(p.authors[0])[0] if p.authors else "anon"
    word = next((w for w in re.findall(r"[A-Za-z]+", p.title) if len(w) > 3), "paper")
    base = re.sub(r"[^a-z0-9]", "", (_ascii(family) + (str(p.published.year) if p.published else "") + word).lower())
    key = base = base or "paper"
    n = used.get(base, 0)
    while key in used:
        n += 1
        key = f"{base}{chr(ord('a') + n) if n < 26 else n}"
    used[base] = n
    used.setdefault(key, 0)
    return key


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def to_bibtex(papers: Sequence[ExportPaper]) -> str:
    lib = bibtexparser.Library()
    used: dict[str, int] = {}
    for p in papers:
        fields = [
            Field("title", "{" + tex_escape(p.title, keep_math=True) + "}"),
            Field("author", " and ".join(", ".join(x for x in map(tex_escape, split_name(a)) if x) for a in p.authors)),
        ]
        if p.published:
            fields.append(Field("year", str(p.published.year)))
            fields.append(Field("month", p.published.strftime("%b").lower()))
        if p.journal_ref:
            fields.append(Field("journal", tex_escape(p.journal_ref)))
        fields += [Field("eprint", p.arxiv_id), Field("archivePrefix", "arXiv")]
        if p.primary_category:
            fields.append(Field("primaryClass", p.primary_category))
        fields.append(Field("url", p.url))
        if p.doi:
            fields.append(Field("doi", p.doi))  # verbatim in biblatex, like url and eprint
        if p.abstract:
            fields.append(Field("abstract", tex_escape(p.abstract, keep_math=True)))
        if p.note:
            fields.append(Field("annote", tex_escape(p.note)))
        lib.add(BibEntry("article" if p.journal_ref else "misc", _cite_key(p, used), fields))
    # Month abbreviations are BibTeX macros (unquoted); every other value goes in braces.
    enclose = middlewares.AddEnclosingMiddleware(reuse_previous_enclosing=False, enclose_integers=False,
                                                 default_enclosing="{")  # fmt: skip
    out = bibtexparser.write_string(lib, unparse_stack=[enclose])
    return re.sub(r"month = \{([a-z]{3})\}", r"month = \1", out)


class _RisWriter(RisWriter):
    def set_header(self, count: int) -> str:
        return ""  # no "1." counters between references: Zotero's own export has none


def _ymd(d: date | None) -> list[int]:
    return [d.year, d.month, d.day] if d else []


def _one_line(value: str) -> str:
    """A RIS value on one line: every line break (``str.splitlines``' set, which readers split on)
    becomes a space, so no part of a title, abstract or note can read as a tag of its own."""
    return " ".join(value.splitlines())


def to_ris(papers: Sequence[ExportPaper]) -> str:
    refs = []
    for p in papers:
        ref: dict[str, Any] = {
            "type_of_reference": "JOUR" if p.journal_ref else "GEN",
            "primary_title": _one_line(p.title),
            "authors": [_one_line(", ".join(x for x in split_name(a) if x)) for a in p.authors],
            "urls": [p.url],
            "publisher": "arXiv",
            "accession_number": f"arXiv:{p.arxiv_id}",
        }
        if p.published:
            ref["year"] = str(p.published.year)
            ref["date"] = p.published.strftime("%Y/%m/%d/")
        if p.journal_ref:
            ref["secondary_title"] = _one_line(p.journal_ref)
        if p.doi:
            ref["doi"] = _one_line(p.doi)
        if p.abstract:
            ref["abstract"] = _one_line(p.abstract)
        if p.note:
            ref["notes"] = [_one_line(p.note)]
        refs.append(ref)
    return rispy.dumps(refs, implementation=_RisWriter)


def to_csl_json(papers: Sequence[ExportPaper]) -> bytes:
    items = []
    for p in papers:
        item: dict[str, Any] = {
            "id": f"arXiv:{p.arxiv_id}",
            "type": "article-journal" if p.journal_ref else "article",
            "title": p.title,
            "author": [{"family": f, "given": g} if g else {"literal": f} for f, g in map(split_name, p.authors)],
            "URL": p.url,
            "archive": "arXiv",
            "number": p.arxiv_id,
            "publisher": "arXiv",
        }
        if p.published:
            item["issued"] = {"date-parts": [_ymd(p.published)]}
        if p.primary_category:
            item["genre"] = p.primary_category
        if p.journal_ref:
            item["container-title"] = p.journal_ref
        if p.doi:
            item["DOI"] = p.doi
        if p.abstract:
            item["abstract"] = p.abstract
        if p.note:
            item["note"] = p.note
        items.append(item)
    return orjson.dumps(items, option=orjson.OPT_INDENT_2)


def export(papers: Sequence[ExportPaper], fmt: str) -> bytes:
    if fmt == "bibtex":
        return to_bibtex(papers).encode()
    if fmt == "ris":
        return to_ris(papers).encode()
    if fmt == "csl-json":
        return to_csl_json(papers)
    raise FormatError(f"Unknown export format {fmt[:20]!r}: use {', '.join(FORMATS)}.")


# -- what comes in ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportEntry:
    """One reference from an import: what may identify its paper, and a label to report it by."""

    ref: str  # citation key, "line 3" or "entry 2": how the result page names it
    title: str | None = None
    arxiv_id: str | None = None
    doi: str | None = None
    note: str | None = None
    problem: str | None = None  # the entry could not be read at all (the parser's reason)


_ARXIV_DOI = re.compile(r"10\.48550/arxiv\.(.+)", re.IGNORECASE)
_ARXIV_IN_TEXT = re.compile(
    r"(?:arxiv(?:\s+preprint)?\s*:?\s*|arxiv\.org/(?:abs|pdf)/)((?:[a-z-]+(?:\.[a-z]{2})?/\d{7}|\d{4}\.\d{4,5})(?:v\d+)?)",
    re.IGNORECASE,
)
_DOI = re.compile(r"(10\.\d{4,9}/\S+)")


def _arxiv(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return parse_arxiv_id(text)[0]
    except ValueError:
        pass
    m = _ARXIV_IN_TEXT.search(text)
    if m:
        try:
            return parse_arxiv_id(m.group(1))[0]
        except ValueError:
            return None
    return None


def _doi(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    m = _DOI.search(value.strip())
    return m.group(1).rstrip(".,;") if m else None


def _first(*values: object) -> str | None:
    for v in values:
        if isinstance(v, list):
            v = next((x for x in v if isinstance(x, str) and x.strip()), None)
        if isinstance(v, str) and v.strip():
            return " ".join(v.split())
    return None


def _entry(ref: str, title: object, doi_text: object, arxiv_sources: Iterable[object], note: object) -> ImportEntry:
    doi = _doi(doi_text)
    arxiv = None
    if doi:
        m = _ARXIV_DOI.fullmatch(doi)
        if m:
            arxiv = _arxiv(m.group(1))
    for source in arxiv_sources:
        if arxiv:
            break
        for v in source if isinstance(source, list) else [source]:
            arxiv = arxiv or _arxiv(v)
    return ImportEntry(ref=ref, title=_first(title), arxiv_id=arxiv, doi=doi, note=_first(note))


_LATEX = LatexNodes2Text()


def _decode(value: str) -> str:
    """A BibTeX value as text: LaTeX accents and commands decoded, case-protecting braces dropped.
    Only values with a backslash go through the (slow) LaTeX parser."""
    if "\\" in value:
        return _LATEX.latex_to_text(value)
    return value.replace("{", "").replace("}", "")


_MONTHS = {m[:3].lower(): m for m in ("January", "February", "March", "April", "May", "June", "July", "August",
                                        "September", "October", "November", "December")}  # fmt: skip


def _concat_parts(value: str) -> list[str] | None:
    """The top-level parts of a raw value (``"a"``, ``{b}``, ``name`` or ``a # "b" # {c}``), or
    None when its quotes or braces do not balance."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(value):
        if ch == '"' and depth == 0:
            quoted = not quoted
        elif ch == "{" and not quoted:
            depth += 1
        elif ch == "}" and not quoted:
            depth -= 1
        elif ch == "#" and depth == 0 and not quoted:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return parts if all(parts) and depth == 0 and not quoted else None


class _Macros:
    """BibTeX's ``@string`` macros and ``#`` concatenation, resolved here rather than by
    bibtexparser (which resolves only a value that is one macro): quoted and braced parts give
    their text, a macro its value (month abbreviations their name), an unknown macro its own name.

    Every macro substitution spends from ``budget`` (characters): a 100 KB macro used 2,000
    times would otherwise turn a small upload into 200 MB of text."""

    def __init__(self, budget: int) -> None:
        self.values: dict[str, str] = {}
        self.budget = budget

    def resolve(self, value: str) -> str:
        parts = _concat_parts(value)
        if parts is None:
            return value
        out = []
        for part in parts:
            if len(part) > 1 and part[0] + part[-1] in ('""', "{}"):
                out.append(part[1:-1])
            elif part.lower() in self.values:
                text = self.values[part.lower()]
                self.budget -= len(text)
                if self.budget < 0:
                    raise FormatError("This BibTeX file's @string macros expand to far more text than the file "
                                      "holds; it was not imported.")  # fmt: skip
                out.append(text)
            else:
                out.append(_MONTHS.get(part.lower(), part))
        return "".join(out)


def parse_bibtex(text: str) -> list[ImportEntry]:
    # No middleware: values come raw (enclosing braces/quotes, macro names, ``#``) to _Macros.
    lib = bibtexparser.parse_string(text, parse_stack=[])
    macros = _Macros(budget=max(1_000_000, 2 * len(text)))
    for macro in lib.strings:
        if isinstance(macro.value, str):
            macros.values[macro.key.lower()] = macros.resolve(macro.value)
    out: list[tuple[int, ImportEntry]] = []
    for e in lib.entries:
        f = {
            k.lower(): _decode(macros.resolve(v))
            for k, v in ((x.key, x.value) for x in e.fields)
            if isinstance(v, str)
        }
        archive = (f.get("archiveprefix") or f.get("eprinttype") or "").lower()
        eprint = f.get("eprint") if archive in ("", "arxiv") else None
        sources = [eprint, f.get("arxivid"), f.get("arxiv"), f.get("url"), f.get("journal"), f.get("note"),
                   f.get("howpublished"), f.get("number")]  # fmt: skip
        out.append((e.start_line or 0, _entry(e.key, f.get("title"), f.get("doi"), sources, f.get("annote"))))
    for block in lib.failed_blocks:
        m = re.match(r"\s*@\s*(\w+)\s*[{(]\s*([^,\s]*)", block.raw or "")
        if m and m.group(1).lower() in ("comment", "string", "preamble"):
            continue
        line = (block.start_line or 0) + 1
        label = m.group(2) if m and m.group(2) else f"line {line}"
        why = "this entry could not be read (unbalanced braces or quotes?)"
        out.append((line - 1, ImportEntry(ref=label, problem=why)))
    return [entry for _, entry in sorted(out, key=lambda x: x[0])]


def parse_ris(text: str) -> list[ImportEntry]:
    try:
        refs = rispy.loads(text, skip_unknown_tags=True)
    except (OSError, ValueError, KeyError) as exc:
        raise FormatError(f"This is not a readable RIS file: {exc}") from None
    out = []
    for i, r in enumerate(refs, 1):
        title = r.get("title") or r.get("primary_title") or r.get("translated_title")
        sources = [r.get("urls"), r.get("url"), r.get("accession_number"), r.get("notes"), r.get("number"),
                   r.get("journal_name"), r.get("secondary_title")]  # fmt: skip
        out.append(_entry(r.get("id") or f"entry {i}", title, r.get("doi"), sources, None))
    return out


def parse_csl_json(text: str) -> list[ImportEntry]:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"This is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("items", [data])
    if not isinstance(data, list):
        raise FormatError("CSL-JSON is a list of items (objects with a title, authors, ...).")
    out = []
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict):
            out.append(ImportEntry(ref=f"entry {i}", problem="not a CSL-JSON item (an object)"))
            continue
        archive = str(item.get("archive") or item.get("publisher") or "").lower()
        number = item.get("number") if "arxiv" in archive else None
        sources = [number, item.get("URL"), item.get("id") if isinstance(item.get("id"), str) else None,
                   item.get("container-title"), item.get("note")]  # fmt: skip
        ref = str(item.get("id")) if isinstance(item.get("id"), str | int) else f"entry {i}"
        out.append(_entry(ref[:100], item.get("title"), item.get("DOI"), sources, None))
    return out


def parse_ids(text: str) -> list[ImportEntry]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip().strip(",;")
        if not line or line.startswith("#"):
            continue
        pid = _arxiv(line)
        if pid is None:
            why = "not an arXiv id or arxiv.org URL (e.g. 2405.15738, hep-th/9901001)"
            out.append(ImportEntry(ref=f"line {n}", title=line[:200], problem=why))
        else:
            out.append(ImportEntry(ref=f"line {n}", arxiv_id=pid))
    return out


def detect(text: str) -> str:
    head = text.lstrip()[:4000]
    if head.startswith(("[", "{")):
        return "csl-json"
    if re.search(r"^TY  - ", head, re.MULTILINE):
        return "ris"
    if re.search(r"^\s*@\s*[A-Za-z]+\s*[{(]", head, re.MULTILINE):
        return "bibtex"
    return "ids"


def parse(text: str, fmt: str = "auto") -> tuple[str, list[ImportEntry]]:
    """(the format read, its entries). Raises :class:`FormatError` when nothing in it can be read."""
    if fmt not in IMPORT_FORMATS:
        raise FormatError(f"Unknown import format {fmt[:20]!r}: use {', '.join(IMPORT_FORMATS)}.")
    text = text.removeprefix("\ufeff")  # pasted text and the API's string keep a BOM that decoding drops
    if fmt == "auto":
        fmt = detect(text)
    parser = {"bibtex": parse_bibtex, "ris": parse_ris, "csl-json": parse_csl_json, "ids": parse_ids}[fmt]
    entries = parser(text)
    if not entries:
        names = {"bibtex": "BibTeX entries", "ris": "RIS references", "csl-json": "CSL-JSON items",
                 "ids": "arXiv ids"}  # fmt: skip
        raise FormatError(f"Found no {names[fmt]} in this input.")
    if fmt == "ids" and all(e.problem for e in entries):
        raise FormatError("This is not a BibTeX, RIS or CSL-JSON file, nor a list of arXiv ids (one per line).")
    return fmt, entries
