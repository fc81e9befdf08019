"""The ONNX sentence encoder against an independent pure-numpy BERT forward pass of the same weights."""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from paperfeed.config import Settings
from paperfeed.search import encoder as enc_mod
from paperfeed.search.encoder import DIM, Encoder, choose_variant, get_encoder, paper_text

from .conftest import SHARED

PROTEIN = (
    "AlphaFold2-style structure prediction: we predict the three-dimensional fold of a protein from its "
    "amino acid sequence with an attention network over residue pairs and multiple sequence alignments, "
    "reaching near-experimental accuracy on CASP targets."
)
VISION = (
    "We present a convolutional backbone for object detection in street scenes; a feature pyramid and "
    "anchor-free heads improve mean average precision on COCO and Cityscapes at 30 frames per second."
)
TEXTS = [
    PROTEIN,
    VISION,
    "protein folding",
    "Large language models can be prompted to solve multi-step arithmetic problems by writing out "
    "intermediate reasoning steps before the final answer.",
    "A lock-free hash table for many-core machines.",
    "We study the sample complexity of reinforcement learning in linear Markov decision processes and give "
    "a regret bound that is optimal up to logarithmic factors in the horizon and the feature dimension. "
    "Our algorithm combines optimism in the face of uncertainty with a least-squares value iteration step, "
    "and it runs in polynomial time. Experiments on synthetic tasks and on a robotic grasping benchmark show "
    "that the bound is tight in practice and that the method needs ten times fewer episodes than baselines.",
    "Retrieval-augmented generation: dense retrievers, BM25 and re-ranking compared on open-domain QA.",
    "Speech recognition for low-resource languages with self-supervised pre-training.",
    "Quantum error correction with surface codes below threshold.",
    "Diffusion models for high-resolution image synthesis",
    "Causal inference from observational data using instrumental variables.",
    "Graph neural networks predict molecular properties; message passing on atoms and bonds.",
    "The economics of open-source software maintenance.",
    "Federated learning under non-IID client data: convergence analysis and a practical algorithm.",
    "Θ(n log n) lower bounds for comparison sorting, revisited; with notes on résumé parsing and naïve "
    "Bayes classifiers.",
    "Sparse mixture-of-experts transformers route each token to two of 64 experts, cutting training "
    "compute by 4x at equal perplexity on a 300B-token corpus; we analyse load balancing losses, expert "
    "capacity, and the effect of routing noise, and release code and checkpoints.",
    "Neural radiance fields render novel views of a scene from a sparse set of photographs.",
    "Contrastive pre-training of image and text encoders (CLIP) enables zero-shot classification.",
    "Formal verification of a microkernel in Isabelle/HOL.",
    "What is the best optimizer for fine-tuning small language models?",
]


def _real_abstracts(n: int = 3) -> list[str]:
    """A few real arXiv abstracts when ../shared/data is present (optional: the suite runs without it)."""
    path = SHARED / "arxiv_daily" / "arxiv_cs_listings.jsonl.gz"
    if not path.exists():
        return []
    out: list[str] = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i % 997 == 0:
                rec = json.loads(line)
                out.append(paper_text(rec["title"], rec["abstract"]))
                if len(out) >= n:
                    break
    return out


# --- independent reference: the BERT forward pass in numpy, float64 ---------------------------


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26, |error| < 1.5e-7: plenty for a cosine check at 1e-4.
    sign, a = np.sign(x), np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
    return sign * (1.0 - poly * np.exp(-a * a))


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def reference_encode(texts: list[str], heads: int = 12, layers: int = 6) -> np.ndarray:
    model = enc_mod.model_dir()
    w = {k: v.astype(np.float64) for k, v in load_file(str(model / "model.safetensors")).items()}
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=256)
    seqs = [np.array(tok.encode(t).ids) for t in texts]
    # Tokens of all texts stacked (no padding): per-token layers run as a few big matmuls,
    # attention runs text by text. Few big BLAS calls also keep this fast on a busy machine.
    bounds = np.cumsum([0] + [len(s) for s in seqs])
    ids = np.concatenate(seqs)
    positions = np.concatenate([np.arange(len(s)) for s in seqs])
    h = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][positions]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    h = _layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    hidden = h.shape[1]
    d = hidden // heads
    for i in range(layers):
        p = f"encoder.layer.{i}."

        def lin(x: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return x @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (lin(h, f"attention.self.{n}") for n in ("query", "key", "value"))
        attn = np.empty_like(h)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            qh, kh, vh = (x[a:b].reshape(b - a, heads, d).transpose(1, 0, 2) for x in (q, k, v))
            scores = qh @ kh.transpose(0, 2, 1) / np.sqrt(d)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            attn[a:b] = (scores @ vh).transpose(1, 0, 2).reshape(b - a, hidden)
        h = _layer_norm(
            lin(attn, "attention.output.dense") + h,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        f = lin(h, "intermediate.dense")
        f = 0.5 * f * (1.0 + _erf(f / np.sqrt(2.0)))
        h = _layer_norm(lin(f, "output.dense") + h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    pooled = np.array([h[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("encoder-home")


@pytest.fixture(scope="module")
def int8(home: Path) -> Encoder:
    return Encoder(Settings(home=home), variant="int8")


@pytest.fixture(scope="module")
def fp32(home: Path) -> Encoder:
    return Encoder(Settings(home=home), variant="fp32")


@pytest.fixture(scope="module")
def sample() -> tuple[list[str], np.ndarray]:
    texts = TEXTS + _real_abstracts()
    return texts, reference_encode(texts)


# --- accuracy ------------------------------------------------------------------------------------


def test_fp32_matches_numpy_reference(fp32: Encoder, sample: tuple[list[str], np.ndarray]) -> None:
    texts, ref = sample
    got = fp32.encode(texts, batch_size=7)  # odd batch size: several batches with padding
    assert got.shape == (len(texts), DIM) and got.dtype == np.float32
    cos = (got * ref).sum(1)
    assert cos.min() >= 0.9999, cos


def test_int8_matches_numpy_reference(int8: Encoder, sample: tuple[list[str], np.ndarray]) -> None:
    texts, ref = sample
    cos = (int8.encode(texts) * ref).sum(1)
    assert cos.mean() >= 0.995, cos
    assert cos.min() >= 0.99, cos


@pytest.mark.parametrize("variant", ["int8", "fp32"])
def test_semantic_sanity(variant: str, int8: Encoder, fp32: Encoder) -> None:
    enc = int8 if variant == "int8" else fp32
    docs = enc.encode([PROTEIN, VISION])
    q = enc.encode_query("protein folding")
    assert q @ docs[0] > q @ docs[1] + 0.2
    q2 = enc.encode_query("real-time object detection")
    assert q2 @ docs[1] > q2 @ docs[0] + 0.2


def test_query_path_equals_batch_path(int8: Encoder, fp32: Encoder) -> None:
    for enc in (int8, fp32):
        q = enc.encode_query("graph neural networks for molecules")
        assert q.shape == (DIM,) and q.dtype == np.float32
        np.testing.assert_allclose(q, enc.encode(["graph neural networks for molecules"])[0], atol=1e-6)


def test_queries_run_on_one_thread_and_batches_on_every_core(home: Path) -> None:
    # A second intra-op thread spins between a query's small operators: it cost a busy web
    # server more CPU than the query itself. Indexing batches keep every core.
    enc = Encoder(Settings(home=home), variant="int8")
    assert enc._query_session.get_session_options().intra_op_num_threads == 1
    assert enc._batch_session is None  # a process that only searches never opens the batch session
    enc.encode(["protein folding"])
    assert enc._batch_session is not None
    assert enc._batch_session.get_session_options().intra_op_num_threads == enc.threads
    assert enc.describe()["query_threads"] == 1


# --- robustness ----------------------------------------------------------------------------------

ODD = [
    "",
    "   \n\t ",
    "🙂🚀 深度学习与蛋白质折叠 — ünïcödé ﬁ ligatures",
    "lone surrogate \ud800 in the middle",
    "nul\x00byte and \x1b[31mescape codes",
    "transformer " * 1000,  # ~12,000 characters: truncated at 256 tokens
    "x" * 10_000,  # one giant "word": the tokenizer makes it [UNK]
    "a",
]


@pytest.mark.parametrize("variant", ["int8", "fp32"])
def test_odd_inputs_do_not_crash(variant: str, int8: Encoder, fp32: Encoder) -> None:
    enc = int8 if variant == "int8" else fp32
    out = enc.encode(ODD)
    assert out.shape == (len(ODD), DIM)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)
    for text in ODD:
        q = enc.encode_query(text)
        assert np.isfinite(q).all() and abs(np.linalg.norm(q) - 1.0) < 1e-4
    assert enc.encode([]).shape == (0, DIM)


def test_bad_arguments_are_clear_errors(fp32: Encoder) -> None:
    with pytest.raises(TypeError, match="sequence of strings"):
        fp32.encode("not a list")
    with pytest.raises(TypeError, match="must be str"):
        fp32.encode(["ok", None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="max_length"):
        fp32.encode(["x"], max_length=4096)
    with pytest.raises(ValueError, match="batch_size"):
        fp32.encode(["x"], batch_size=0)


def test_truncation_is_at_max_length(fp32: Encoder) -> None:
    long = " ".join(f"word{i}" for i in range(2000))
    a = fp32.encode([long, long + " completely different ending about cooking recipes"])
    np.testing.assert_allclose(a[0], a[1], atol=1e-6)  # the tail beyond 256 tokens is cut
    b = fp32.encode([long], max_length=64)
    assert float(a[0] @ b[0]) < 0.9999  # and a shorter budget does change the result


# --- determinism, order, threads -----------------------------------------------------------------


def test_deterministic_and_order_preserving(int8: Encoder, fp32: Encoder) -> None:
    texts = TEXTS[:12]
    for enc in (int8, fp32):
        a = enc.encode(texts, batch_size=4)
        np.testing.assert_array_equal(a, enc.encode(texts, batch_size=4))
        perm = np.random.default_rng(0).permutation(len(texts))
        b = enc.encode([texts[i] for i in perm], batch_size=4)
        # int8 activations are scaled per batch, so a different batch mix moves vectors a little.
        tol = 1e-5 if enc.variant == "fp32" else 0.99
        if enc.variant == "fp32":
            np.testing.assert_allclose(b, a[perm], atol=tol)
        else:
            assert ((b * a[perm]).sum(1) >= tol).all()
    # Rows land in input order even though batches are built by length.
    single = np.array([fp32.encode_query(t) for t in texts])
    np.testing.assert_allclose(fp32.encode(texts, batch_size=3), single, atol=1e-5)


def test_concurrent_use_from_threads(int8: Encoder) -> None:
    expected = int8.encode(TEXTS, batch_size=5)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(int8.encode(TEXTS, batch_size=5, max_length=256))
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_array_equal(r, expected)


# --- model cache ---------------------------------------------------------------------------------


def test_cached_model_is_reused(home: Path, int8: Encoder) -> None:
    path = int8.path
    assert path.parent == home / "models" and path.exists()
    assert "int8" in path.name and str(enc_mod.onnx_graph.BUILDER_VERSION) in path.name
    before = path.stat().st_mtime_ns
    again = Encoder(Settings(home=home), variant="int8")
    assert not again.built
    assert path.stat().st_mtime_ns == before
    assert not list(path.parent.glob("*.tmp"))  # no leftovers of the atomic write
    np.testing.assert_array_equal(again.encode(TEXTS[:3]), int8.encode(TEXTS[:3]))


def test_builder_version_change_rebuilds(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = enc_mod.model_path(Settings(home=home), "fp32")
    monkeypatch.setattr(enc_mod.onnx_graph, "BUILDER_VERSION", enc_mod.onnx_graph.BUILDER_VERSION + 1000)
    new = enc_mod.model_path(Settings(home=home), "fp32")
    assert new != old and not new.exists()


def test_corrupt_cached_file_is_rebuilt(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    path = enc_mod.model_path(settings, "fp32")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an onnx model")
    enc = Encoder(settings, variant="fp32")
    assert enc.built and path.stat().st_size > 1_000_000
    assert abs(float(np.linalg.norm(enc.encode_query("hello")) - 1.0)) < 1e-4


def test_get_encoder_is_shared(home: Path) -> None:
    s = Settings(home=home, encoder="fp32")
    assert get_encoder(s) is get_encoder(Settings(home=home, encoder="FP32"))
    assert get_encoder(s).variant == "fp32"
    with pytest.raises(ValueError, match="unknown encoder variant"):
        get_encoder(Settings(home=home, encoder="int4"))


# --- variant choice, settings, paper text --------------------------------------------------------


def test_choose_variant_from_cpu_flags() -> None:
    assert choose_variant("auto", {"sse4_2", "avx2", "avx512_vnni"})[0] == "int8"
    assert choose_variant("auto", {"avx2"})[0] == "int8"
    assert choose_variant("auto", {"asimd", "asimddp"})[0] == "int8"
    variant, reason = choose_variant("auto", {"sse4_2"})
    assert variant == "fp32" and "no fast int8" in reason
    assert choose_variant("auto", set()) == ("fp32", "CPU flags unreadable")
    assert choose_variant("fp32", {"avx512_vnni"})[0] == "fp32"
    assert choose_variant(" INT8 ", set())[0] == "int8"
    assert enc_mod._needs_reduce_range({"avx2"})
    assert not enc_mod._needs_reduce_range({"avx2", "avx512_vnni"})
    with pytest.raises(ValueError):
        choose_variant("bf16")


def test_auto_variant_and_describe(int8: Encoder, fp32: Encoder) -> None:
    variant, _ = choose_variant("auto")
    info = (int8 if variant == "int8" else fp32).describe()
    assert info["model"] == "all-MiniLM-L6-v2" and info["dim"] == DIM
    assert int(info["threads"]) >= 1  # type: ignore[call-overload]
    assert int8.model_name == fp32.model_name  # vectors of both paths are interchangeable


def test_settings_reads_encoder_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERFEED_ENCODER", "FP32")
    assert Settings.from_env().encoder == "fp32"
    monkeypatch.delenv("PAPERFEED_ENCODER")
    assert Settings.from_env().encoder == "auto"


def test_paper_text() -> None:
    assert paper_text("Deep Nets", "We study  them.\nA lot.") == "Deep Nets. We study them. A lot."
    assert paper_text("Why?", "Because.") == "Why? Because."
    assert paper_text("", "Only abstract") == "Only abstract"
    assert paper_text("Only title", "") == "Only title"
