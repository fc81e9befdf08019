"""Opening import files: plain or gzip (detected from the bytes, not the name), stdin or a pipe,
streamed line by line in constant memory, with clear errors for unusable or truncated input.

Used by the file importers before any parsing happens.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

_BUFFER = 1 << 20
_BOM = b"\xef\xbb\xbf"


class UnusableInput(Exception):
    """The input cannot be used at all (missing, not the expected format); nothing was imported from it."""


class TruncatedInput(Exception):
    """The compressed stream ends early or is corrupt; what came before it was read."""


class InputFile:
    """A readable, decompressed byte stream plus what the progress bar needs to know about it."""

    def __init__(self, path: str | Path) -> None:
        self.name = "<stdin>" if str(path) == "-" else str(path)
        self.size: int | None = None  # bytes on disk, when it is a regular file
        if str(path) == "-":
            self._raw: BinaryIO = sys.stdin.buffer
            if not hasattr(self._raw, "peek"):  # e.g. a BytesIO standing in for stdin
                self._raw = io.BufferedReader(cast(io.RawIOBase, self._raw))
        else:
            p = Path(path)
            if not p.exists():
                raise UnusableInput(f"{p}: no such file")
            if p.is_dir():
                raise UnusableInput(f"{p}: is a directory, expected a file")
            try:
                self._raw = open(p, "rb", buffering=_BUFFER)  # closed in close()
            except OSError as exc:
                raise UnusableInput(f"{p}: cannot open ({exc.strerror})") from exc
            st = os.fstat(self._raw.fileno())
            if stat.S_ISREG(st.st_mode):
                self.size = st.st_size
        head = self._peek(self._raw, 2)
        self.compressed = head[:2] == b"\x1f\x8b"
        if self.compressed:
            # GzipFile buffers by itself; its peek() decompresses one chunk only, so sniffing the
            # head of a truncated file still works and the error comes, with a line number, later.
            self.stream: BinaryIO = gzip.GzipFile(fileobj=self._raw, mode="rb")  # type: ignore[assignment]  # a binary stream; typeshed does not call GzipFile a BinaryIO
        else:
            self.stream = self._raw

    @staticmethod
    def _peek(f: BinaryIO, n: int) -> bytes:
        peek = getattr(f, "peek", None)
        return peek(n)[:n] if peek else b""

    def position(self) -> int:
        """Bytes consumed from disk so far (compressed bytes for .gz), for a bytes progress bar."""
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def head(self, n: int = 512) -> bytes:
        """The first bytes of the decompressed content without consuming them (BOM skipped)."""
        try:
            data = self._peek(self.stream, n)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise UnusableInput(f"{self.name}: not a readable gzip file ({exc})") from exc
        if data.startswith(_BOM):
            self.stream.read(len(_BOM))
            data = self._peek(self.stream, n)
        return data

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """``(line number, line)`` for every line; raises :class:`TruncatedInput` on broken gzip data."""
        n = 0
        try:
            for line in self.stream:
                n += 1
                yield n, line
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            raise TruncatedInput(
                f"{self.name}: the compressed data ends early or is corrupt after line {n} ({exc}); "
                f"the {n} lines before it were read, the rest of the file is missing"
            ) from exc

    def read_all(self, limit: int = 512 << 20) -> bytes:
        """The whole decompressed content (for one-document JSON files), bounded to stay safe."""
        try:
            data = self.stream.read(limit + 1)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            raise UnusableInput(f"{self.name}: the compressed data ends early or is corrupt ({exc})") from exc
        if len(data) > limit:
            raise UnusableInput(f"{self.name}: larger than {limit >> 20} MiB; use the JSON lines format")
        return data

    def close(self) -> None:
        if self.name != "<stdin>":
            self._raw.close()

    def __enter__(self) -> InputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe_non_json(name: str, head: bytes, expected: str) -> UnusableInput:
    """A clear 'wrong format' error from the first bytes of a file."""
    h = head.lstrip()
    if not h:
        return UnusableInput(f"{name}: the file is empty, expected {expected}")
    if h[:1] == b"<":
        kind = "HTML/XML"
    elif h[:2] == b"PK":
        kind = "a ZIP archive"
    elif h[:4] == b"%PDF":
        kind = "a PDF"
    elif b"," in h.split(b"\n", 1)[0] or b"\t" in h.split(b"\n", 1)[0]:
        kind = "CSV/TSV text"
    else:
        kind = "not JSON"
    first = h[:60].decode("utf-8", "replace").split("\n", 1)[0]
    return UnusableInput(f"{name}: this looks like {kind} ({first!r}...), expected {expected}")
