"""A sentence-transformers BERT model (all-MiniLM-L6-v2 and its kin) run on torch alone.

``sentence_transformers`` imports transformers, scikit-learn and scipy: 9–12 s before the first vector
on a small machine, against 2.5 s for torch. A run that embeds one edited chunk, or a server that embeds
one query, pays that on every start. The model is a plain BERT encoder followed by mean (or CLS) pooling,
so it is computed here from its safetensors weights and its ``tokenizer.json``, with the same
tokenization, truncation and pooling (vectors agree with sentence-transformers to about 1e-7; a test
keeps them so). A model directory of any other shape returns ``None`` from :meth:`BertEncoder.load`, and
the caller falls back to sentence-transformers.

Usage::

    encoder = BertEncoder.load(model_dir)          # None unless it is this kind of model
    vectors = encoder.encode(["What is Sage?"], batch_size=10)   # (1, 384), unit length
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer

_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"
_POOLING_MODES = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")


def _read(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text())
    return value


def _pooling_mode(model_dir: Path) -> str | None:
    """``mean_tokens`` or ``cls_token`` when the directory is Transformer → Pooling (→ Normalize)."""
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file() or not (model_dir / "model.safetensors").is_file():
        return None
    modules: list[dict[str, str]] = json.loads(modules_file.read_text())
    if [m.get("type") for m in modules] not in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE]):
        return None
    pooling_dir = model_dir / modules[1]["path"]
    pooling = _read(pooling_dir / "config.json")
    chosen = [mode for mode in _POOLING_MODES if pooling.get(f"pooling_mode_{mode}")]
    if chosen not in (["mean_tokens"], ["cls_token"]) or pooling.get("include_prompt") is False:
        return None
    return chosen[0]


def _is_plain_bert(config: dict[str, Any]) -> bool:
    return (
        config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and not config.get("is_decoder", False)
    )


class BertEncoder:
    """The encoder, its tokenizer and its pooling; ``encode`` returns unit-length float32 rows."""

    def __init__(self, model_dir: Path, config: dict[str, Any], pooling: str, lowercase: bool, max_seq_length: int):
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        self.model_dir = model_dir
        self.pooling = pooling
        self.lowercase = lowercase
        self.max_seq_length = max_seq_length
        self.dimension = int(config["hidden_size"])
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        self._eps = float(config["layer_norm_eps"])
        weights = load_file(str(model_dir / "model.safetensors"))
        self._weights: dict[str, torch.Tensor] = {name.removeprefix("bert."): w for name, w in weights.items()}
        pad_id = int(config.get("pad_token_id", 0))
        tokenizer: Tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(max_seq_length)
        tokenizer.enable_padding(pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id) or "[PAD]")
        self._tokenizer = tokenizer

    @classmethod
    def load(cls, model_dir: Path) -> BertEncoder | None:
        pooling = _pooling_mode(model_dir)
        config_file = model_dir / "config.json"
        if pooling is None or not config_file.is_file() or not _is_plain_bert(config := _read(config_file)):
            return None
        settings_file = model_dir / "sentence_bert_config.json"
        settings = _read(settings_file) if settings_file.is_file() else {}
        max_seq_length = int(settings.get("max_seq_length") or config["max_position_embeddings"])
        return cls(model_dir, config, pooling, bool(settings.get("do_lower_case")), max_seq_length)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Batches of similar length (as sentence-transformers makes them: less padding), in input order."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            vectors[batch] = self._forward([texts[i] for i in batch])
        return vectors

    def _forward(self, texts: list[str]) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        w, hidden = self._weights, self.dimension

        def norm(x: torch.Tensor, name: str) -> torch.Tensor:
            return F.layer_norm(x, (hidden,), w[f"{name}.weight"], w[f"{name}.bias"], self._eps)

        def dense(x: torch.Tensor, name: str) -> torch.Tensor:
            return F.linear(x, w[f"{name}.weight"], w[f"{name}.bias"])

        encodings = self._tokenizer.encode_batch([t.lower() for t in texts] if self.lowercase else texts)
        with torch.inference_mode():
            ids = torch.tensor([e.ids for e in encodings])
            mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.float32)
            segments = torch.tensor([e.type_ids for e in encodings])
            size, length = ids.shape
            x = (
                w["embeddings.word_embeddings.weight"][ids]
                + w["embeddings.position_embeddings.weight"][:length]
                + w["embeddings.token_type_embeddings.weight"][segments]
            )
            x = norm(x, "embeddings.LayerNorm")
            padding = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min  # padding is never attended
            for layer in range(self._layers):
                at = f"encoder.layer.{layer}"
                q, k, v = (
                    dense(x, f"{at}.attention.self.{part}").view(size, length, self._heads, -1).transpose(1, 2)
                    for part in ("query", "key", "value")
                )
                attended = F.scaled_dot_product_attention(q, k, v, attn_mask=padding)
                attended = attended.transpose(1, 2).reshape(size, length, hidden)
                x = norm(dense(attended, f"{at}.attention.output.dense") + x, f"{at}.attention.output.LayerNorm")
                inner = F.gelu(dense(x, f"{at}.intermediate.dense"))
                x = norm(dense(inner, f"{at}.output.dense") + x, f"{at}.output.LayerNorm")
            if self.pooling == "cls_token":
                pooled = x[:, 0]
            else:
                weights = mask[:, :, None]
                pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            result: np.ndarray = F.normalize(pooled, dim=1).numpy()
            return result
