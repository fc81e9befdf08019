"""The HNSW index on disk: build settings, building, and atomically installed, verified files.

Used by ``paperfeed index`` (build / incremental update, ``search/indexer.py``) and by the vector
index in the server (load, or rebuild after damage, ``search/vectors.py``).

A directory holds ``manifest.json`` naming one generation of files, ``hnsw-<gen>.usearch`` (the
usearch graph with f16 vectors; keys are ``embeddings.id``) and ``ids-<gen>.json`` (key ->
paper id). A new generation is written under new names and the manifest is swapped with
``os.replace``: readers never see a half-written index, and a process that still maps an old
file keeps a valid (unlinked) copy. The manifest holds sizes and CRC32s, so a missing, truncated
or overwritten file is detected on load (:class:`CorruptIndex`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # noqa: F401 - must load before usearch: the other order segfaults (pybind11 clash)
import orjson
from usearch.index import Index

FORMAT = 1
VIEW_MIN_BYTES = 256 << 20  # map big index files instead of copying them into memory


@dataclass(frozen=True)
class HnswParams:
    """HNSW build/search settings (see bench/README.md "Vector index" for how they were chosen)."""

    dtype: str = "f16"  # half the memory of f32, same recall; i8 loses ~9 points of recall@10
    connectivity: int = 16
    expansion_add: int = 128
    # At 1M: recall@10 0.989 for real search queries (0.982 at 512, 0.963 at 256), k=100 in ~7 ms.
    expansion_search: int = 768


DEFAULT_PARAMS = HnswParams()


class CorruptIndex(Exception):
    """The files on disk are missing, unreadable or do not match their manifest."""


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(16 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def cpu_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# -- files on disk ----------------------------------------------------------------------------
@dataclass
class Loaded:
    index: Index
    keys: np.ndarray  # int64, sorted
    paper_ids: np.ndarray  # object (str), aligned with keys
    manifest: dict[str, Any]


class IndexFiles:
    """One directory holding generations of an HNSW index and the manifest naming the current one."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.manifest_path = directory / "manifest.json"

    def stamp(self) -> tuple[int, int, int] | None:
        """Changes whenever a new manifest is installed (cheap: one ``stat``)."""
        try:
            st = self.manifest_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        try:
            data = orjson.loads(self.manifest_path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise CorruptIndex(f"unreadable manifest: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CorruptIndex("manifest has an unknown format")
        return data

    def load(self, model: str, *, verify: bool = True, view: bool | None = None) -> Loaded:
        """The current generation, checked against the manifest; raises :class:`CorruptIndex`."""
        man = self.manifest()
        if man is None:
            raise CorruptIndex("no index built yet")
        if man.get("model") != model:
            raise CorruptIndex(f"index was built for model {man.get('model')!r}, not {model!r}")
        try:
            index_path = self.dir / str(man["index_file"])
            ids_path = self.dir / str(man["ids_file"])
            checks = ((index_path, "index_bytes", "index_crc32"), (ids_path, "ids_bytes", "ids_crc32"))
            for path, size_key, crc_key in checks:
                if not path.exists():
                    raise CorruptIndex(f"{path.name} is missing")
                if path.stat().st_size != int(man[size_key]):
                    raise CorruptIndex(f"{path.name} has the wrong size (truncated or overwritten)")
                if verify and _crc32(path) != int(man[crc_key]):
                    raise CorruptIndex(f"{path.name} fails its checksum")
            ids = orjson.loads(ids_path.read_bytes())
            keys = np.asarray(ids["keys"], dtype=np.int64)
            pids = np.asarray(ids["paper_ids"], dtype=object)
            if view is None:
                view = int(man["index_bytes"]) >= VIEW_MIN_BYTES
            index = Index.restore(str(index_path), view=view)
        except CorruptIndex:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, OSError, orjson.JSONDecodeError) as exc:
            raise CorruptIndex(f"cannot read the index: {exc}") from exc
        if index is None or len(index) != len(keys) or len(keys) != len(pids) or index.ndim != int(man["dim"]):
            raise CorruptIndex("index contents do not match the manifest")
        index.expansion_search = int(man.get("expansion_search", DEFAULT_PARAMS.expansion_search))  # type: ignore[misc]  # usearch has a setter; its missing annotation makes mypy see a read-only property
        return Loaded(index, keys, pids, man)

    @contextlib.contextmanager
    def lock(self, *, blocking: bool) -> Iterator[bool]:
        """An exclusive cross-process lock for writers; yields False if busy and not blocking."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "build.lock", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def save(
        self,
        index: Index,
        keys: np.ndarray,
        paper_ids: Sequence[str],
        *,
        model: str,
        params: HnswParams,
        watermark: datetime | None,
        max_key: int,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write a new generation and install it atomically (call with :meth:`lock` held)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        gen = f"{int(time.time() * 1000):x}-{os.getpid()}"
        order = np.argsort(keys, kind="stable")
        keys = np.asarray(keys, dtype=np.int64)[order]
        pids = [paper_ids[i] for i in order]
        files = {"index": f"hnsw-{gen}.usearch", "ids": f"ids-{gen}.json"}
        try:
            index.save(str(self.dir / (files["index"] + ".tmp")))
            (self.dir / (files["ids"] + ".tmp")).write_bytes(orjson.dumps({"keys": keys.tolist(), "paper_ids": pids}))
            for name in files.values():
                tmp = self.dir / (name + ".tmp")
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, self.dir / name)
            manifest = {
                "format": FORMAT,
                "model": model,
                "dim": int(index.ndim),
                "metric": "cos",
                "dtype": params.dtype,
                "connectivity": params.connectivity,
                "expansion_add": params.expansion_add,
                "expansion_search": params.expansion_search,
                "count": len(keys),
                "max_key": int(max_key),
                "watermark": watermark.isoformat() if watermark else None,
                "index_file": files["index"],
                "index_bytes": (self.dir / files["index"]).stat().st_size,
                "index_crc32": _crc32(self.dir / files["index"]),
                "ids_file": files["ids"],
                "ids_bytes": (self.dir / files["ids"]).stat().st_size,
                "ids_crc32": _crc32(self.dir / files["ids"]),
                "built_at": datetime.now().astimezone().isoformat(timespec="seconds"),
                "tombstones": 0,
                **(extra or {}),
            }
            tmp = self.manifest_path.with_suffix(".json.tmp")
            tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
            os.replace(tmp, self.manifest_path)
        except BaseException:
            for name in files.values():
                for path in (self.dir / name, self.dir / (name + ".tmp")):
                    if path.exists() and not self._referenced(path.name):
                        path.unlink()
            raise
        self._cleanup(keep=set(files.values()))
        return manifest

    def _referenced(self, name: str) -> bool:
        try:
            man = self.manifest() or {}
        except CorruptIndex:
            return False
        return name in (man.get("index_file"), man.get("ids_file"))

    def _cleanup(self, keep: set[str]) -> None:
        """Remove older generations and leftovers of interrupted writes (readers keep their maps)."""
        for path in self.dir.iterdir():
            if path.name.startswith(("hnsw-", "ids-")) and path.name not in keep:
                with contextlib.suppress(OSError):
                    path.unlink()


SERIAL_PREFIX = 10_000  # vectors added one at a time at the start of a build (see add_to_index)


def new_index(dim: int, params: HnswParams) -> Index:
    return Index(
        ndim=dim,
        metric="cos",
        dtype=params.dtype,
        connectivity=params.connectivity,
        expansion_add=params.expansion_add,
        expansion_search=params.expansion_search,
    )


def add_to_index(
    index: Index,
    keys: np.ndarray,
    matrix: np.ndarray,
    progress: Callable[[int], None] | None = None,
    threads: int | None = None,
) -> None:
    """Add vectors in chunks (so progress can be shown and Ctrl-C is honoured between chunks).

    The first ``SERIAL_PREFIX`` vectors of an empty index go in on one thread: concurrent
    inserts into a young graph leave nodes that no search reaches (458 clustered vectors built
    on two threads: ~4% of self-queries missed a true top-18 neighbour; on one thread, none).
    A bigger graph absorbs the races; the serial prefix costs ~1 s."""
    step = 8192
    threads = threads or cpu_threads()
    serial = max(0, SERIAL_PREFIX - len(index))
    i = 0
    while i < len(keys):
        end = min(len(keys), i + (min(step, serial - i) if i < serial else step))
        index.add(keys[i:end].astype(np.uint64), matrix[i:end], threads=1 if i < serial else threads)
        if progress is not None:
            progress(end - i)
        i = end


def parse_watermark(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None
