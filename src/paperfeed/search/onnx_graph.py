"""Build the sentence-encoder ONNX graph straight from BERT safetensors weights (no torch).

Runs once, on the first use of the encoder on a machine (see :mod:`paperfeed.search.encoder`,
which caches the files). The graph uses onnxruntime's fused CPU contrib ops where they are
fastest (``EmbedLayerNormalization``, ``Attention``, ``BiasGelu``; plain ``LayerNormalization``
after each residual add), ends with mean pooling over the attention mask and L2 normalisation,
and can be int8-quantized (dynamic, per-channel) with :func:`quantize_int8`.

Inputs: ``input_ids`` and ``attention_mask`` (int32, ``[batch, seq]``, right-padded).
Output: ``embedding`` (float32, ``[batch, hidden]``, unit-length rows).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

# Bump when the graph or the quantization recipe changes: cached files carry it in their name.
BUILDER_VERSION = 2
# onnxruntime rewrites that make this graph slower on CPU (measured: int8 ~15% faster without them).
SESSION_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)
# Activation channels above this multiple of the median channel max are scaled down before int8.
# Measured on 100 arXiv abstracts: cosine to fp32 mean 0.9951 -> 0.9980, min 0.9928 -> 0.9967.
OUTLIER_RATIO = 3.0
OPSET = 17
MS_DOMAIN = "com.microsoft"

log = logging.getLogger(__name__)

# Calibration input for the outlier scan (written for this purpose, paper-like, varied fields).
# The outlier channels of a BERT are properties of the weights, so a handful of texts finds them.
CALIBRATION_TEXTS = (
    "Sequence models without recurrence. We replace recurrent layers with stacked self-attention and show "
    "on English-German and English-French translation that the model trains faster on GPUs and scores higher "
    "BLEU than convolutional and recurrent baselines.",
    "Protein structure prediction with deep learning. Predicting the three-dimensional structure of a protein "
    "from its amino acid sequence is a long-standing problem in biology. We train a network on known structures "
    "and reach atomic accuracy on most targets of the CASP14 assessment.",
    "Graph neural networks for molecular property prediction: a benchmark. We compare message passing networks, "
    "graph transformers and fingerprint baselines on twelve datasets and find that simple models are strong.",
    "Denoising diffusion for image synthesis. With classifier guidance and a larger U-Net, diffusion "
    "samplers produce images whose FID on ImageNet 256x256 is lower than that of adversarial networks.",
    "A survey of retrieval-augmented generation for large language models, covering dense retrieval, sparse "
    "BM25 baselines, re-ranking, chunking strategies and evaluation; we discuss open problems and costs.",
    "Quantum error correction below the surface code threshold. We report logical qubits whose error rate "
    "falls as the code distance grows from 3 to 7, with a logical error per cycle of 0.143%.",
    "Lock-free concurrent hash tables for multicore CPUs. Our design uses fine-grained CAS operations and "
    "achieves 2.5x the throughput of the best prior work on 64 threads under write-heavy workloads.",
    "Estimating causal effects from observational data with instrumental variables: theory, pitfalls, and a "
    "case study on the returns to schooling using quarter of birth as an instrument.",
    "protein folding",
    "efficient transformers for long documents",
    "How do large language models handle multi-step arithmetic reasoning?",
    "Speech recognition for low-resource languages via self-supervised pre-training (wav2vec 2.0); "
    "word error rate drops by 30% relative with only ten minutes of labelled audio.",
)


@dataclass(frozen=True)
class BertConfig:
    hidden_size: int
    num_heads: int
    num_layers: int
    intermediate_size: int
    max_positions: int
    vocab_size: int
    layer_norm_eps: float

    @classmethod
    def from_file(cls, path: Path) -> BertConfig:
        raw = json.loads(path.read_text())
        if raw.get("model_type") != "bert" or raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{path}: only BERT with erf GELU is supported")
        return cls(
            hidden_size=int(raw["hidden_size"]),
            num_heads=int(raw["num_attention_heads"]),
            num_layers=int(raw["num_hidden_layers"]),
            intermediate_size=int(raw["intermediate_size"]),
            max_positions=int(raw["max_position_embeddings"]),
            vocab_size=int(raw["vocab_size"]),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
        )


class _GraphBuilder:
    """Collects nodes and initializers; names are prefixed so they stay unique."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], name: str, domain: str = "", **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain or None, **attrs))
        return outputs[0]


def build_fp32(
    weights_path: Path,
    config: BertConfig,
    act_absmax: dict[str, np.ndarray] | None = None,
    outlier_ratio: float = OUTLIER_RATIO,
) -> onnx.ModelProto:
    """The full fp32 graph: embeddings, ``num_layers`` encoder layers, mean pooling, L2 normalise.

    With ``act_absmax`` (per-channel max |activation| at each MatMul input, from :func:`calibrate`)
    the graph is prepared for int8: activation channels whose max exceeds ``outlier_ratio`` times
    the median channel are divided down to that level and the matching weight rows multiplied up
    (SmoothQuant restricted to outliers). It is the same function in fp32, but one huge channel no
    longer sets the per-tensor activation scale for all the others when quantized.
    """
    w = load_file(str(weights_path))
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""

    def p(name: str) -> np.ndarray:
        return w[prefix + name].astype(np.float32)

    c = config
    g = _GraphBuilder()
    eps = c.layer_norm_eps

    # token_type_ids are always 0 for single sentences: fold that row into the position table
    # so the fused embedding op needs no segment input.
    pos = p("embeddings.position_embeddings.weight") + p("embeddings.token_type_embeddings.weight")[0]
    hidden = g.node(
        "EmbedLayerNormalization",
        [
            "input_ids",
            "",
            g.const("emb.word", p("embeddings.word_embeddings.weight")),
            g.const("emb.pos", pos),
            "",
            g.const("emb.ln.gamma", p("embeddings.LayerNorm.weight")),
            g.const("emb.ln.beta", p("embeddings.LayerNorm.bias")),
            "attention_mask",
        ],
        ["emb.out", "mask_index"],
        "EmbedLayerNorm",
        MS_DOMAIN,
        epsilon=eps,
    )

    def smoothing(key: str) -> np.ndarray | None:
        """Per-input-channel divisors for the MatMul ``key`` (``l3.fo``), or None when nothing to smooth."""
        if act_absmax is None:
            return None
        act = act_absmax[key].astype(np.float64)
        limit = outlier_ratio * max(float(np.median(act)), 1e-6)
        if act.max() <= limit:
            return None
        return np.maximum(1.0, act / limit).astype(np.float32)

    def smoothed_input(x: str, s: np.ndarray | None, key: str) -> str:
        # The Mul goes on the MatMul's branch only; the residual path keeps the unscaled tensor.
        if s is None:
            return x
        return g.node("Mul", [x, g.const(f"{key}.inv_s", (1.0 / s).astype(np.float32))], [f"{key}.in"], f"{key}.smooth")

    def add_norm(x: str, residual: str, bias: np.ndarray, gamma: np.ndarray, beta: np.ndarray, key: str) -> str:
        """LayerNorm(x + bias + residual)."""
        # Two Adds + the standard LayerNormalization rather than the contrib SkipLayerNormalization:
        # that CPU kernel is several times slower in onnxruntime 1.32 (sessions must also disable
        # SkipLayerNormFusion, see SESSION_DISABLED_OPTIMIZERS).
        xb = g.node("Add", [x, g.const(f"{key}.bias", bias)], [f"{key}.xb"], f"{key}.add_bias")
        total = g.node("Add", [xb, residual], [f"{key}.sum"], f"{key}.add_residual")
        return g.node(
            "LayerNormalization",
            [total, g.const(f"{key}.gamma", gamma), g.const(f"{key}.beta", beta)],
            [key],
            f"{key}.LayerNorm",
            axis=-1,
            epsilon=eps,
        )

    for i in range(c.num_layers):
        lp = f"encoder.layer.{i}."
        n = f"l{i}"
        # torch Linear stores [out, in]; ONNX MatMul wants [in, out]. Q, K, V packed side by side.
        qkv_w = np.concatenate([p(lp + f"attention.self.{k}.weight").T for k in ("query", "key", "value")], axis=1)
        qkv_b = np.concatenate([p(lp + f"attention.self.{k}.bias") for k in ("query", "key", "value")])
        ao_w = p(lp + "attention.output.dense.weight").T
        fi_w = p(lp + "intermediate.dense.weight").T
        fo_w = p(lp + "output.dense.weight").T

        s_qkv = smoothing(f"{n}.qkv")
        if s_qkv is not None:
            qkv_w = qkv_w * s_qkv[:, None]
        s_ao = smoothing(f"{n}.ao")
        if s_ao is not None:
            # The attention output is a convex mix of V rows, so scaling V's columns (and bias)
            # scales the ao input exactly: no extra node needed.
            h = c.hidden_size
            qkv_w[:, 2 * h :] = qkv_w[:, 2 * h :] / s_ao
            qkv_b = qkv_b.copy()
            qkv_b[2 * h :] = qkv_b[2 * h :] / s_ao
            ao_w = ao_w * s_ao[:, None]

        attn_in = smoothed_input(hidden, s_qkv, f"{n}.qkv")
        attn = g.node(
            "Attention",
            [attn_in, g.const(f"{n}.qkv.w", qkv_w), g.const(f"{n}.qkv.b", qkv_b), "mask_index"],
            [f"{n}.attn"],
            f"{n}.Attention",
            MS_DOMAIN,
            num_heads=c.num_heads,
        )
        attn_proj = g.node("MatMul", [attn, g.const(f"{n}.ao.w", ao_w)], [f"{n}.ao"], f"{n}.ao")
        hidden = add_norm(
            attn_proj,
            hidden,
            p(lp + "attention.output.dense.bias"),
            p(lp + "attention.output.LayerNorm.weight"),
            p(lp + "attention.output.LayerNorm.bias"),
            f"{n}.ln1",
        )
        s_fi = smoothing(f"{n}.fi")
        if s_fi is not None:
            fi_w = fi_w * s_fi[:, None]
        inter = g.node(
            "MatMul", [smoothed_input(hidden, s_fi, f"{n}.fi"), g.const(f"{n}.fi.w", fi_w)], [f"{n}.fi"], f"{n}.fi"
        )
        act = g.node(
            "BiasGelu",
            [inter, g.const(f"{n}.fi.b", p(lp + "intermediate.dense.bias"))],
            [f"{n}.gelu"],
            f"{n}.BiasGelu",
            MS_DOMAIN,
        )
        s_fo = smoothing(f"{n}.fo")
        if s_fo is not None:
            fo_w = fo_w * s_fo[:, None]
        out = g.node(
            "MatMul", [smoothed_input(act, s_fo, f"{n}.fo"), g.const(f"{n}.fo.w", fo_w)], [f"{n}.fo"], f"{n}.fo"
        )
        hidden = add_norm(
            out,
            hidden,
            p(lp + "output.dense.bias"),
            p(lp + "output.LayerNorm.weight"),
            p(lp + "output.LayerNorm.bias"),
            f"{n}.ln2",
        )

    # Mean pooling over real tokens, then unit length (sentence-transformers' Pooling + Normalize).
    mask_f = g.node("Cast", ["attention_mask"], ["pool.mask_f"], "pool.cast", to=TensorProto.FLOAT)
    mask_3d = g.node("Unsqueeze", [mask_f, g.const("pool.axis2", np.array([2], np.int64))], ["pool.mask3"], "pool.unsq")
    masked = g.node("Mul", [hidden, mask_3d], ["pool.masked"], "pool.mul")
    axis1 = g.const("pool.axis1", np.array([1], np.int64))
    summed = g.node("ReduceSum", [masked, axis1], ["pool.sum"], "pool.sum", keepdims=0)
    count = g.node("ReduceSum", [mask_f, axis1], ["pool.count"], "pool.count", keepdims=1)
    count = g.node("Max", [count, g.const("pool.min_count", np.array(1e-9, np.float32))], ["pool.count_c"], "pool.clip")
    mean = g.node("Div", [summed, count], ["pool.mean"], "pool.div")
    norm = g.node("ReduceL2", [mean], ["pool.norm"], "pool.l2", axes=[1], keepdims=1)
    norm = g.node("Max", [norm, g.const("pool.min_norm", np.array(1e-12, np.float32))], ["pool.norm_c"], "pool.clip2")
    g.node("Div", [mean, norm], ["embedding"], "pool.normalize")

    graph = helper.make_graph(
        g.nodes,
        "sentence_encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT32, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", c.hidden_size])],
        g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
        producer_name="paperfeed",
        producer_version=str(BUILDER_VERSION),
    )
    model.ir_version = 8  # readable by every onnxruntime from 1.10 on
    return model


def matmul_inputs(config: BertConfig) -> dict[str, str]:
    """Tensor name feeding each quantizable MatMul of the un-smoothed graph, keyed ``l{i}.{qkv,ao,fi,fo}``."""
    names: dict[str, str] = {}
    for i in range(config.num_layers):
        names[f"l{i}.qkv"] = "emb.out" if i == 0 else f"l{i - 1}.ln2"
        names[f"l{i}.ao"] = f"l{i}.attn"
        names[f"l{i}.fi"] = f"l{i}.ln1"
        names[f"l{i}.fo"] = f"l{i}.gelu"
    return names


def calibrate(
    model: onnx.ModelProto, config: BertConfig, input_ids: np.ndarray, mask: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-channel max |activation| over real tokens at every MatMul input of the un-smoothed fp32 ``model``."""
    import onnxruntime as ort

    probes = matmul_inputs(config)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for tensor in sorted(set(probes.values())):
        probe.graph.output.append(helper.make_tensor_value_info(tensor, TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    wanted = sorted(set(probes.values()))
    values = dict(zip(wanted, sess.run(wanted, {"input_ids": input_ids, "attention_mask": mask}), strict=True))
    real = mask.astype(bool)
    return {key: np.abs(values[tensor][real]).max(axis=0) for key, tensor in probes.items()}


def quantize_int8(model: onnx.ModelProto, out_path: Path, reduce_range: bool = False) -> None:
    """Dynamic int8 quantization of every MatMul and the fused Attention, weights per output channel.

    Activations are quantized per batch at run time (u8), weights ahead of time (s8, per
    channel), which is what onnxruntime's VNNI/AVX2 int8 kernels expect. ``reduce_range`` keeps
    weights to 7 bits, which avoids int16 saturation in the AVX2 kernels of CPUs without VNNI.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        model,
        out_path,
        op_types_to_quantize=["MatMul", "Attention"],
        per_channel=True,
        reduce_range=reduce_range,
        weight_type=QuantType.QInt8,
        # The contrib ops have no shape-inference types; everything they output is float.
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": TensorProto.FLOAT},
    )


def save_atomic(model: onnx.ModelProto, path: Path) -> None:
    """Write ``model`` to ``path`` via a temp file in the same folder, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        onnx.save_model(model, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
