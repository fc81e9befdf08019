"""Vector index over paper embeddings: exact (numpy) for small collections, HNSW (usearch) above
``settings.ann_threshold`` vectors.

Loaded by the search service (web server, CLI, digests) and refreshed while it runs; the HNSW
file is built and updated by ``paperfeed index`` (``search/indexer.py``; file format and
atomic installation in ``search/hnsw.py``). Vectors come from the ``embeddings`` table; each
row's integer id is the key inside the HNSW graph.

A missing, truncated or corrupted HNSW file is detected on load, logged as a warning and rebuilt
from the database in a background thread; meanwhile ``search`` answers with exact numpy search
over vectors read from the database (slower at a million vectors, ~0.1-0.2 s a query, but
complete and correct; ``mode`` says ``"rebuilding"``).

In memory a :class:`VectorIndex` holds an immutable snapshot: the HNSW "base" from the last
build, plus an exact "delta" of vectors written since (new papers, changed abstracts), with
superseded base keys masked. ``refresh()`` swaps in a new snapshot; searches only read the
snapshot they started with, so concurrent readers need no lock (usearch calls are serialised
per index because its per-thread search contexts are not safe to share).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from paperfeed.config import Settings
from paperfeed.search.hnsw import (
    DEFAULT_PARAMS,
    CorruptIndex,
    HnswParams,
    Index,
    IndexFiles,
    Loaded,
    add_to_index,
    cpu_threads,
    new_index,
    parse_watermark,
)
from paperfeed.search.neighbours import ANN_MAX_K, NeighbourIndex, default_model, unit_query
from paperfeed.store import embeddings as store
from paperfeed.store.db import Database

__all__ = [
    "DEFAULT_PARAMS",
    "CorruptIndex",
    "HnswParams",
    "Index",
    "IndexFiles",
    "VectorIndex",
    "add_to_index",
    "cpu_threads",
    "default_model",
    "new_index",
]

log = logging.getLogger(__name__)

# A write may commit after a later one (a slow transaction); re-reading this far behind the
# newest write seen makes such late commits visible. Re-reading is idempotent.
SLACK = timedelta(seconds=30)
COMPARE_BLOCK = 20_000  # re-read vectors compared with the HNSW copy per step
COUNT_EVERY = 300.0  # seconds between row counts (deletion checks) while serving from HNSW


# -- the in-memory index ---------------------------------------------------------------------
@dataclass(frozen=True)
class _Snapshot:
    model: str | None
    marker: store.Marker | None = None
    stamp: tuple[int, int, int] | None = None  # manifest stamp the base came from
    ann_tried: bool = False  # the HNSW file was considered when this snapshot was loaded
    watermark: datetime | None = None  # re-read writes from here (minus SLACK) on refresh
    max_key: int = 0
    # HNSW base (None: exact mode)
    ann: Index | None = None
    ann_lock: threading.Lock = field(default_factory=threading.Lock)
    ann_keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # sorted
    ann_pids: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    ann_key_of: dict[str, int] = field(default_factory=dict)
    masked: frozenset[int] = frozenset()  # base keys superseded by the delta or deleted
    # exact part: everything in exact mode, the delta in HNSW mode
    keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    pids: tuple[str, ...] = ()
    matrix: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.float32))
    row_of: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ann_keys) - len(self.masked) + len(self.pids)

    @property
    def dim(self) -> int | None:
        if self.ann is not None:
            return int(self.ann.ndim)
        return int(self.matrix.shape[1]) if self.matrix.size else None


class VectorIndex(NeighbourIndex):
    """Nearest papers to a query vector (cosine), best first, held by this process; see the module docstring."""

    def __init__(
        self, settings: Settings, db: Database, *, model: str | None = None, params: HnswParams = DEFAULT_PARAMS
    ) -> None:
        self.settings = settings
        self.db = db
        self.params = params
        self.files = IndexFiles(settings.index_dir / "vectors")
        self._model = model
        self._refresh_lock = threading.RLock()
        self._builder: threading.Thread | None = None
        self._counted_at = time.monotonic()
        self._snap = _Snapshot(model=model)
        with self._refresh_lock:
            self._load()

    # -- state ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._snap)

    def empty(self) -> bool:
        return len(self._snap) == 0

    @property
    def model(self) -> str | None:
        return self._snap.model

    @property
    def watermark(self) -> datetime | None:
        """``created_at`` of the newest vector row this process has loaded."""
        return self._snap.watermark

    def version(self) -> tuple[object, ...]:
        """Moves whenever a refresh changed what searches see (part of the web cache's version)."""
        snap = self._snap
        return (snap.model, snap.watermark, snap.max_key, len(snap), snap.stamp, snap.ann is not None)

    @property
    def mode(self) -> str:
        """``"hnsw"``, ``"exact"``, or ``"rebuilding"`` (exact while the HNSW file is rebuilt)."""
        if self._building():
            return "rebuilding"
        return "hnsw" if self._snap.ann is not None else "exact"

    def wait_for_rebuild(self, timeout: float | None = None) -> bool:
        """Block until a background rebuild finished (tests, CLI); True if none is running."""
        builder = self._builder
        if builder is not None:
            builder.join(timeout)
            return not builder.is_alive()
        return True

    def _load(self) -> None:
        """(Re)load from scratch: the HNSW base if it is valid and worth it, else exact vectors."""
        model = self._model or default_model(self.db)
        marker = store.marker(self.db)
        if model is None or marker.count == 0:
            self._snap = _Snapshot(model=model, marker=marker, stamp=self.files.stamp())
            return
        if marker.rows > self.settings.ann_threshold:
            stamp = self.files.stamp()
            try:
                loaded = self.files.load(model)
            except CorruptIndex as exc:
                if stamp is None:
                    log.warning("no HNSW index for %d vectors yet: building it; exact search meanwhile", marker.count)
                else:
                    log.warning("HNSW index unusable (%s): rebuilding it; exact search meanwhile", exc)
            else:
                # A search-time knob. usearch has a setter; its missing annotation makes mypy see a read-only property.
                loaded.index.expansion_search = self.params.expansion_search  # type: ignore[misc]  # see above
                self._snap = self._base_snapshot(model, loaded, stamp)
                self._apply_changes(store.marker(self.db))
                return
        rows = store.load_vectors(self.db, model)
        snap = _Snapshot(
            model=model,
            marker=marker,
            stamp=self.files.stamp(),
            watermark=rows.watermark,
            ann_tried=marker.rows > self.settings.ann_threshold,
        )
        self._snap = self._with_rows(snap, rows)
        if len(rows) > self.settings.ann_threshold:
            self._start_rebuild(rows)

    def _base_snapshot(self, model: str, loaded: Loaded, stamp: tuple[int, int, int] | None) -> _Snapshot:
        man = loaded.manifest
        return _Snapshot(
            model=model,
            marker=None,  # forces the first _apply_changes to read the delta
            stamp=stamp,
            watermark=parse_watermark(man.get("watermark")),
            max_key=int(man.get("max_key", 0)),
            ann=loaded.index,
            ann_keys=loaded.keys,
            ann_pids=loaded.paper_ids,
            ann_key_of={pid: int(k) for pid, k in zip(loaded.paper_ids.tolist(), loaded.keys.tolist(), strict=True)},
            matrix=np.empty((0, int(man["dim"])), np.float32),
        )

    @staticmethod
    def _in_base(snap: _Snapshot, keys: np.ndarray) -> np.ndarray:
        """Positions of ``keys`` in the (sorted) base keys, -1 where absent."""
        if not len(snap.ann_keys) or not len(keys):
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.searchsorted(snap.ann_keys, keys)
        pos[pos >= len(snap.ann_keys)] = 0
        return np.where(snap.ann_keys[pos] == keys, pos, -1)

    def _unchanged(self, snap: _Snapshot, rows: store.VectorRows, ours: list[int]) -> set[int]:
        """Row indexes whose vector the base already holds (re-read because of SLACK): skip them."""
        if snap.ann is None or not ours:
            return set()
        keys = rows.keys[ours]
        pos = self._in_base(snap, keys)
        cand = [(i, int(k), int(p)) for i, k, p in zip(ours, keys.tolist(), pos.tolist(), strict=True) if p >= 0]
        cand = [(i, k, p) for i, k, p in cand if k not in snap.masked and snap.ann_pids[p] == rows.paper_ids[i]]
        same: set[int] = set()
        for b in range(0, len(cand), COMPARE_BLOCK):  # blocks bound the memory after bulk writes
            block = cand[b : b + COMPARE_BLOCK]
            with snap.ann_lock:
                stored = snap.ann.get(np.array([k for _, k, _ in block], dtype=np.uint64), dtype=np.float32)  # type: ignore[arg-type]  # usearch takes numpy dtypes; its annotation lists only its own names
            stored = np.asarray(stored).reshape(len(block), -1)
            diff = np.abs(stored - rows.matrix[[i for i, _, _ in block]]).max(axis=1)
            same.update(i for (i, _, _), d in zip(block, diff.tolist(), strict=True) if d < 2e-3)  # f16 error < 5e-4
        return same

    def _with_rows(self, snap: _Snapshot, rows: store.VectorRows, deleted: set[int] | None = None) -> _Snapshot:
        """``snap`` with ``rows`` applied: rows of our model enter the exact part, others leave it."""
        deleted = deleted or set()
        ours = [i for i, m in enumerate(rows.models) if m == snap.model]
        same = self._unchanged(snap, rows, ours)
        if same:
            ours = [i for i in ours if i not in same]
        touched = {int(k) for i, k in enumerate(rows.keys.tolist()) if i not in same} | deleted
        keep = [i for i, k in enumerate(snap.keys.tolist()) if k not in touched]
        dim = rows.matrix.shape[1] if len(rows) else (snap.matrix.shape[1] if snap.matrix.size else 0)
        if snap.matrix.size and len(rows) and snap.matrix.shape[1] != dim:
            raise ValueError("stored vectors changed dimension; run `paperfeed index --rebuild`")
        # Avoid copies where possible: during a rebuild at 1M vectors this matrix is 1.5 GB.
        parts = []
        if keep:
            parts.append(snap.matrix if len(keep) == len(snap.pids) else snap.matrix[keep])
        if ours:
            parts.append(rows.matrix if len(ours) == len(rows) else rows.matrix[ours])
        if len(parts) == 1:
            matrix = parts[0]
        else:
            matrix = np.concatenate(parts) if parts else np.empty((0, dim), np.float32)
        keys = np.concatenate([snap.keys[keep], rows.keys[ours]]).astype(np.int64)
        pids = tuple(snap.pids[i] for i in keep) + tuple(rows.paper_ids[i] for i in ours)
        masked = snap.masked
        if snap.ann is not None and touched:
            cand = np.fromiter(touched, dtype=np.int64, count=len(touched))
            masked = masked | set(cand[self._in_base(snap, cand) >= 0].tolist())
        max_key = max(snap.max_key, int(rows.keys.max()) if len(rows) else 0)
        return replace(
            snap,
            keys=keys,
            pids=pids,
            matrix=np.ascontiguousarray(matrix, dtype=np.float32),
            row_of={pid: i for i, pid in enumerate(pids)},
            masked=frozenset(masked),
            max_key=max_key,
            watermark=rows.watermark or snap.watermark,
        )

    # -- refresh -------------------------------------------------------------------------------
    def refresh(self, *, full: bool = False) -> None:
        """Pick up vectors written since the last look and a newer HNSW file, if any.

        Costs one ``stat`` and two index lookups when nothing changed. Deleted rows are noticed
        by counting the table, which is not cheap at a million rows on PostgreSQL; in HNSW mode
        that happens at most every ``COUNT_EVERY`` seconds (or when ``full``), and whenever
        ``paperfeed index`` installs a new file. Until then a deleted paper may still be returned
        (the search layer drops ids whose paper is gone).
        """
        with self._refresh_lock:
            snap = self._snap
            if snap.model is None:  # nothing was indexed when we loaded: look again
                self._load()
                return
            stamp = self.files.stamp()
            count = full or snap.ann is None or time.monotonic() - self._counted_at > COUNT_EVERY
            marker = store.marker(self.db, count=count)
            if count:
                self._counted_at = time.monotonic()
            if snap.ann is not None:
                if stamp != snap.stamp:  # `paperfeed index` wrote a new generation
                    self._load()
                    return
            elif marker.rows > self.settings.ann_threshold and not self._building():  # counted: no HNSW yet
                if stamp != snap.stamp or not snap.ann_tried:  # grew past the threshold
                    self._load()
                    return
            if stamp != snap.stamp:
                self._snap = replace(snap, stamp=stamp)  # exact mode ignores index files
            known = self._snap.marker
            if known is None or marker.writes() != known.writes() or marker.count not in (None, known.count):
                self._apply_changes(marker)

    def _building(self) -> bool:
        return self._builder is not None and self._builder.is_alive()

    def _read_changes(self, snap: _Snapshot, since: datetime | None) -> store.VectorRows:
        """Rows written after the snapshot, minus those the HNSW base already holds unchanged.

        Read chunk by chunk: the SLACK window can hold many rows after a bulk write, and only the
        changed ones are kept."""
        parts: list[store.VectorRows] = []
        watermark = store.marker(self.db, count=False).last_write  # read before the scan
        for chunk in store.iter_vectors(self.db, None, after_key=snap.max_key, since=since):
            ours = [i for i, m in enumerate(chunk.models) if m == snap.model]
            same = self._unchanged(snap, chunk, ours)
            if same:
                keep = [i for i in range(len(chunk)) if i not in same]
                chunk = replace(
                    chunk,
                    keys=chunk.keys[keep],
                    paper_ids=[chunk.paper_ids[i] for i in keep],
                    models=[chunk.models[i] for i in keep],
                    matrix=chunk.matrix[keep],
                )
            if len(chunk):
                parts.append(chunk)
        return store.concat_rows(parts, watermark)

    def _apply_changes(self, marker: store.Marker) -> None:
        snap = self._snap
        since = snap.watermark - SLACK if snap.watermark else None
        rows = self._read_changes(snap, since)
        deleted: set[int] = set()
        prev = snap.marker
        inserted = int(((rows.keys > (prev.max_key if prev else snap.max_key)) & (rows.keys <= marker.max_key)).sum())
        # The row count we expect without deletions (after a load: what the HNSW file holds).
        expected = (prev.count if prev is not None and prev.count is not None else len(snap.ann_keys)) + inserted
        if marker.count is not None and marker.count != expected:  # rows were deleted: find which
            present = store.all_keys(self.db)
            known = np.concatenate([snap.ann_keys, snap.keys])
            deleted = set(known[~np.isin(known, present)].tolist())
        new = self._with_rows(snap, rows, deleted)
        self._snap = replace(new, marker=replace(marker, count=expected if marker.count is None else marker.count))
        if new.ann is not None and len(new.masked) > 0.5 * len(new.ann_keys):
            log.warning("most of the HNSW index is outdated; run `paperfeed index` to rebuild it")

    def _start_rebuild(self, rows: store.VectorRows) -> None:
        if self._building():
            return
        self._builder = threading.Thread(target=self._rebuild, args=(rows,), name="paperfeed-hnsw-build", daemon=True)
        self._builder.start()

    def _rebuild(self, rows: store.VectorRows) -> None:
        try:
            ours = [i for i, m in enumerate(rows.models) if m == self._snap.model]
            keys, matrix = (rows.keys, rows.matrix) if len(ours) == len(rows) else (rows.keys[ours], rows.matrix[ours])
            with self.files.lock(blocking=False) as got:
                if not got:
                    log.info("another process is building the HNSW index; will load it when it is done")
                    return
                t0 = time.perf_counter()
                index = new_index(matrix.shape[1], self.params)
                # Leave a core to the requests this process is serving meanwhile.
                add_to_index(index, keys, matrix, threads=max(1, cpu_threads() - 1))
                self.files.save(
                    index,
                    keys,
                    [rows.paper_ids[i] for i in ours],
                    model=str(self._snap.model),
                    params=self.params,
                    watermark=rows.watermark,
                    max_key=int(rows.keys.max()) if len(rows) else 0,
                )
                log.info("HNSW index rebuilt: %d vectors in %.1f s", len(ours), time.perf_counter() - t0)
            with self._refresh_lock:
                self._load()
        except Exception:
            log.exception("HNSW rebuild failed; exact search continues")

    # -- queries -------------------------------------------------------------------------------
    def _query(self, vec: np.ndarray, snap: _Snapshot) -> np.ndarray:
        return unit_query(vec, snap.dim)

    def search(
        self,
        query_vec: np.ndarray,
        k: int = 100,
        *,
        exclude: set[str] | None = None,
        allow: Callable[[str], bool] | None = None,
    ) -> list[tuple[str, float]]:
        """``(paper_id, cosine)`` of the ``k`` nearest papers, best first."""
        snap = self._snap
        if k <= 0 or len(snap) == 0:
            return []
        q = self._query(query_vec, snap)
        exclude = exclude or set()
        found = self._search_exact(snap, q, k, exclude, allow)
        if snap.ann is not None:
            # The delta holds the current vector of any paper it shares with the base (whose
            # copy is masked), so a paper cannot come from both; merge by score.
            found = sorted(found + self._search_ann(snap, q, k, exclude, allow), key=lambda t: -t[1])
        return found[:k]

    @staticmethod
    def _search_exact(
        snap: _Snapshot, q: np.ndarray, k: int, exclude: set[str], allow: Callable[[str], bool] | None
    ) -> list[tuple[str, float]]:
        n = len(snap.pids)
        if n == 0:
            return []
        scores = snap.matrix @ q
        for pid in exclude:
            row = snap.row_of.get(pid)
            if row is not None:
                scores[row] = -np.inf
        want = min(n, k + (k if allow else 0))
        while True:
            top = np.argpartition(-scores, want - 1)[:want] if want < n else np.arange(n)
            top = top[np.argsort(-scores[top], kind="stable")]
            out: list[tuple[str, float]] = []
            for i in top.tolist():
                s = float(scores[i])
                if s == -np.inf:
                    break
                pid = snap.pids[i]
                if allow is None or allow(pid):
                    out.append((pid, s))
                    if len(out) == k:
                        return out
            if want >= n:
                return out
            want = min(n, want * 4)

    @staticmethod
    def _search_ann(
        snap: _Snapshot, q: np.ndarray, k: int, exclude: set[str], allow: Callable[[str], bool] | None
    ) -> list[tuple[str, float]]:
        ann = snap.ann
        assert ann is not None
        size = len(snap.ann_keys)
        if size == 0 or len(snap.masked) >= size:
            return []
        # Masked keys are rare and spread like any others: over-fetch in proportion, then widen.
        masked_share = len(snap.masked) / size
        want = int((k + len(exclude)) * (1 + 2 * masked_share)) + (k if allow else 0) + 8
        want = min(size, ANN_MAX_K, want)
        while True:
            with snap.ann_lock:
                matches = ann.search(q, want, threads=1)
            keys = np.asarray(matches.keys, dtype=np.int64)
            sims = 1.0 - np.asarray(matches.distances, dtype=np.float64)
            pos = np.searchsorted(snap.ann_keys, keys)
            pos[pos >= size] = 0
            out: list[tuple[str, float]] = []
            for key, p, s in zip(keys.tolist(), pos.tolist(), sims.tolist(), strict=True):
                if snap.ann_keys[p] != key or key in snap.masked:
                    continue
                pid = snap.ann_pids[p]
                if pid in exclude or (allow is not None and not allow(pid)):
                    continue
                out.append((pid, s))
                if len(out) == k:
                    return out
            if want >= min(size, ANN_MAX_K) or len(keys) < want:
                return out
            want = min(size, ANN_MAX_K, want * 4)

    def vectors_for(self, paper_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Unit vectors by paper id, in the order asked, for those of ``paper_ids`` that have one
        (f16 precision when they come from the HNSW file), with one HNSW read for all of them
        (a hundred one-key reads cost 2 ms, one read of a hundred keys 0.3 ms)."""
        snap = self._snap
        wanted = list(dict.fromkeys(paper_ids))
        out: dict[str, np.ndarray] = {}
        in_ann: list[tuple[str, int]] = []
        for pid in wanted:
            row = snap.row_of.get(pid)
            if row is not None:
                out[pid] = snap.matrix[row].copy()
                continue
            key = snap.ann_key_of.get(pid)
            if key is not None and key not in snap.masked:
                in_ann.append((pid, key))
        if in_ann and snap.ann is not None:
            with snap.ann_lock:
                stored = snap.ann.get(np.array([k for _, k in in_ann], dtype=np.uint64), dtype=np.float32)  # type: ignore[arg-type]  # usearch takes numpy dtypes; its annotation lists only its own names
            # A 2-D array, or a tuple with None for a key the file lacks (only a damaged index).
            rows = zip(in_ann, stored, strict=True) if stored is not None else ()
            pairs = [(pid, vec) for (pid, _), vec in rows if vec is not None]
            if pairs:
                matrix = np.asarray([v for _, v in pairs], dtype=np.float32).reshape(len(pairs), -1)
                matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
                out.update(zip((pid for pid, _ in pairs), matrix, strict=True))
        return {pid: out[pid] for pid in wanted if pid in out}

    def vector_for(self, paper_id: str) -> np.ndarray | None:
        """The paper's unit vector (f16 precision when it comes from the HNSW file), or None."""
        return self.vectors_for([paper_id]).get(paper_id)
