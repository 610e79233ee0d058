"""A numpy forward pass for BERT sentence-transformers folders (Transformer + mean Pooling + Normalize).

Why: a repeat CLI call on a known transcript finds every caption's vector in the on-disk embedding
cache and has only the new query to encode. Importing torch and sentence-transformers and building
the model for that one text costs seconds; reading the same ``model.safetensors`` with
``safetensors.numpy``, tokenizing with ``tokenizers`` and running the few layers in numpy costs a
fraction of a second. Only folders whose modules are exactly those three (Normalize optional, since
the encoder normalises anyway) and whose network is a plain BERT (absolute positions, GELU) qualify:
:func:`supported` says so without reading weights, and anything else keeps the torch path.

The result matches sentence-transformers' own: the same tokenizer file with truncation to the
folder's ``max_seq_length``, token type 0, padding masked out of attention and pooling, and float32
arithmetic (tests/test_bert_numpy.py compares both on the tiny test model and the shipped one).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidground.errors import ConfigurationError
from vidground.models import shared_model

_TRANSFORMER = {"sentence_transformers.models.Transformer", "sentence_transformers.base.modules.transformer.Transformer",
                "sentence_transformers.sentence_transformer.modules.transformer.Transformer"}
_POOLING = {"sentence_transformers.models.Pooling", "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
            "sentence_transformers.base.modules.pooling.Pooling"}
_NORMALIZE = {"sentence_transformers.models.Normalize", "sentence_transformers.base.modules.normalize.Normalize",
              "sentence_transformers.sentence_transformer.modules.normalize.Normalize"}
#: Pooling flags of the older config format that must be off for plain mean pooling
_OTHER_POOLING = ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                  "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _max_seq_length(folder: Path, config: dict) -> int | None:
    """What sentence-transformers truncates to: ``max_seq_length`` of sentence_bert_config.json, else
    the tokenizer's ``model_max_length``; never past the position table."""
    st = _read_json(folder / "sentence_bert_config.json") or {}
    limit = st.get("max_seq_length")
    if limit is None:
        limit = (_read_json(folder / "tokenizer_config.json") or {}).get("model_max_length")
    positions = config.get("max_position_embeddings")
    if not isinstance(limit, int) or limit <= 0 or limit > 10**6:
        limit = positions
    if not isinstance(limit, int) or not isinstance(positions, int):
        return None
    return min(limit, positions)


def supported(path: str | Path) -> bool:
    """Whether the folder is a BERT + mean pooling (+ normalisation) sentence-transformers model with the
    files this forward pass reads; read from its small JSON files only."""
    folder = Path(path)
    modules = _read_json(folder / "modules.json")
    if not isinstance(modules, list) or len(modules) not in (2, 3) or not all(isinstance(m, dict) for m in modules):
        return False
    kinds = [m.get("type") for m in modules]
    if kinds[0] not in _TRANSFORMER or modules[0].get("path", "") != "" or kinds[1] not in _POOLING:
        return False
    if len(modules) == 3 and kinds[2] not in _NORMALIZE:
        return False
    pooling = _read_json(folder / str(modules[1].get("path", "")) / "config.json")
    if not isinstance(pooling, dict):
        return False
    if "pooling_mode" in pooling:
        if pooling["pooling_mode"] != "mean":
            return False
    elif not pooling.get("pooling_mode_mean_tokens") or any(pooling.get(k) for k in _OTHER_POOLING):
        return False
    st = _read_json(folder / "config_sentence_transformers.json") or {}
    if st.get("default_prompt_name"):
        return False
    config = _read_json(folder / "config.json")
    if not isinstance(config, dict) or config.get("model_type") != "bert":
        return False
    if config.get("hidden_act") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
        return False
    if not isinstance(config.get("hidden_size"), int) or not isinstance(config.get("num_attention_heads"), int) \
            or config["hidden_size"] % config["num_attention_heads"]:
        return False
    if _max_seq_length(folder, config) is None:
        return False
    return (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to about 1.2e-7 (the Chebyshev fit of Numerical Recipes' ``erfcc``), computed in float64:
    numpy has no erf, and scipy's import costs more than the whole forward pass of one query."""
    z = np.abs(x).astype(np.float64)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0)


def _gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))).astype(np.float32)


def _linear(x: np.ndarray, wb: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``x @ W + b`` over the last axis as one 2-D product: numpy's stacked (3-D) matmul is many times slower."""
    w, b = wb
    return (x.reshape(-1, x.shape[-1]) @ w + b).reshape(*x.shape[:-1], w.shape[1])


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class NumpyBertEncoder:
    """A BERT sentence encoder in numpy: ``encode(texts)`` gives unit-length float32 vectors."""

    def __init__(self, path: str | Path):
        folder = Path(path)
        if not supported(folder):
            raise ConfigurationError(
                f"{str(folder)!r} is not a BERT + mean-pooling sentence-transformers folder with model.safetensors "
                f"and tokenizer.json; load it with sentence-transformers instead")
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = _read_json(folder / "config.json")
        self.path = str(folder)
        self.max_seq_length = int(_max_seq_length(folder, config))  # type: ignore[arg-type]
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        try:
            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            raw = load_file(str(folder / "model.safetensors"))
        except Exception as exc:  # noqa: BLE001 - a corrupt file raises the library's own types
            raise ConfigurationError(f"cannot read the model files in {str(folder)!r}: {exc}") from None
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_seq_length)
        # sentence-transformers lowercases itself only when sentence_bert_config.json says so
        self.lowercase = bool((_read_json(folder / "sentence_bert_config.json") or {}).get("do_lower_case"))
        w = {k.removeprefix("bert."): v for k, v in raw.items()}
        try:
            self.word = w["embeddings.word_embeddings.weight"].astype(np.float32)
            self.position = w["embeddings.position_embeddings.weight"].astype(np.float32)
            self.token_type = w["embeddings.token_type_embeddings.weight"][0].astype(np.float32)
            self.emb_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
            self.layers = []
            for i in range(int(config["num_hidden_layers"])):
                p = f"encoder.layer.{i}."

                def dense(name: str, p: str = p) -> tuple[np.ndarray, np.ndarray]:
                    # stored (out, in); kept (in, out) and contiguous so every product is x @ W
                    return (np.ascontiguousarray(w[p + name + ".weight"].T, dtype=np.float32),
                            w[p + name + ".bias"].astype(np.float32))

                q, k, v = dense("attention.self.query"), dense("attention.self.key"), dense("attention.self.value")
                self.layers.append({
                    "qkv": (np.concatenate([q[0], k[0], v[0]], axis=1), np.concatenate([q[1], k[1], v[1]])),
                    "attn_out": dense("attention.output.dense"),
                    "attn_norm": (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                    "up": dense("intermediate.dense"),
                    "down": dense("output.dense"),
                    "out_norm": (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
                })
        except KeyError as exc:
            raise ConfigurationError(f"{str(folder)!r}: model.safetensors has no tensor {exc.args[0]!r}") from None
        self.dim = int(self.word.shape[1])

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        texts = [t.lower() if self.lowercase else t for t in texts]
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit vectors, one row per text; texts of similar length are batched together so padding stays small."""
        ids = self.tokenize(texts)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            out[rows] = self._forward([ids[i] for i in rows])
        return out

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        n, length = len(batch), max(len(b) for b in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, b in enumerate(batch):
            ids[i, :len(b)] = b
            mask[i, :len(b)] = 1.0
        x = self.word[ids] + self.position[:length] + self.token_type
        x = _layer_norm(x, *self.emb_norm, self.eps)
        hidden = x.shape[-1]
        head = hidden // self.heads
        # padded keys get a huge negative score (transformers uses the most negative float): softmax weight exactly 0
        bias = ((1.0 - mask) * np.float32(-1e30))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head))
        for layer in self.layers:
            qkv = _linear(x, layer["qkv"])
            # contiguous (batch, head, token, dim) blocks: numpy's stacked matmul uses BLAS only on those
            q, k, v = (np.ascontiguousarray(qkv[..., j * hidden:(j + 1) * hidden].reshape(n, length, self.heads, head)
                                            .transpose(0, 2, 1, 3)) for j in range(3))
            scores = (q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2))) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, hidden)
            x = _layer_norm(_linear(ctx, layer["attn_out"]) + x, *layer["attn_norm"], self.eps)
            up = _gelu(_linear(x, layer["up"]))
            x = _layer_norm(_linear(up, layer["down"]) + x, *layer["out_norm"], self.eps)
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def numpy_encoder(path: str | Path) -> NumpyBertEncoder:
    """The process's numpy encoder for a folder (read once)."""
    return shared_model(("numpy-bert", str(path)), lambda: NumpyBertEncoder(path))
