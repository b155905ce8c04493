"""A driver loop over a decoder-only model's layers, so methods can act between layers.

It calls the model's own modules (embedding, rotary embedding, decoder layers, final norm, LM head)
in order, as ``LlamaModel.forward`` does, and patches nothing. Llama and Qwen2 (full attention only)
share this layout. Run through ``run_layers`` with one chunk and a fresh cache, it computes exactly
what the model's ``forward`` computes.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from transformers import Cache, DynamicCache, PreTrainedModel

from agents.errors import ConfigError

SUPPORTED_MODEL_TYPES = ("llama", "qwen2")
PREFILL_CHUNK_TOKENS = 512
"""Prompt tokens sent through the layers at once: bounds the activations, as llama.cpp's batch does."""


def causal_mask(query_len: int, past_len: int) -> torch.Tensor | None:
    """Boolean mask (True = may attend) for ``query_len`` new tokens after ``past_len`` cached ones.

    None when nothing is cached (SDPA then applies its own causal mask) or for a single token.

    >>> causal_mask(2, 1).int().tolist()
    [[[[1, 1, 0], [1, 1, 1]]]]
    """
    if past_len == 0 or query_len == 1:
        return None
    keys = torch.arange(past_len + query_len)
    queries = torch.arange(query_len)[:, None] + past_len
    return (keys[None, :] <= queries)[None, None]


def cached_kv(cache: Cache, index: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Layer ``index``'s keys and values (1, kv_heads, positions, head_dim), or None while it is empty."""
    layer: Any = cache.layers[index]
    if not layer.is_initialized or layer.keys is None or not layer.keys.numel():
        return None
    return layer.keys, layer.values


def replace_kv(cache: Cache, index: int, keys: torch.Tensor, values: torch.Tensor) -> None:
    """Put pruned or merged keys and values in place of layer ``index``'s (a full-precision dynamic layer)."""
    layer: Any = cache.layers[index]
    layer.keys, layer.values = keys, values


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding of ``x`` (batch, heads, tokens, head_dim), as Llama applies it."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1)


class DecoderDriver:
    """Runs a Llama- or Qwen2-style causal LM layer by layer."""

    def __init__(self, model: PreTrainedModel) -> None:
        config = model.config
        if config.model_type not in SUPPORTED_MODEL_TYPES:
            raise ConfigError(
                f"cache compression supports {', '.join(SUPPORTED_MODEL_TYPES)} models, not {config.model_type!r}",
                help="use --compression none with a llama or qwen2 model, or the llamacpp backend",
            )
        if any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or []):
            raise ConfigError("models with sliding-window layers are not supported", help="use the llamacpp backend")
        self.model = model
        self.body: Any = model.model
        self.config = config
        layer_args = inspect.signature(self.body.layers[0].forward).parameters
        # Recent transformers layers take ``cache`` and drop ``past_key_values`` in 5.40: pass the name they have.
        self.cache_arg = "cache" if "cache" in layer_args else "past_key_values"

    @property
    def num_layers(self) -> int:
        return len(self.body.layers)

    def new_cache(self) -> DynamicCache:
        return DynamicCache(config=self.config)

    def embed(self, ids: list[int]) -> torch.Tensor:
        """Token embeddings, shape (1, tokens, hidden)."""
        return self.body.embed_tokens(torch.tensor([ids], dtype=torch.long))

    def run_layers(self, hidden: torch.Tensor, positions: torch.Tensor, cache: Cache, layers: range) -> torch.Tensor:
        """Send ``hidden`` (1, tokens, hidden) at ``positions`` (1, tokens) through ``layers``, filling ``cache``.

        New tokens attend to everything a layer has cached and causally among themselves.
        """
        position_embeddings = self.body.rotary_emb(hidden, positions)
        for index in layers:
            mask = causal_mask(hidden.shape[1], cache.get_seq_length(index))
            hidden = self.body.layers[index](
                hidden,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                position_embeddings=position_embeddings,
                **{self.cache_arg: cache},
            )
        return hidden

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-token logits for the last position of ``hidden``, shape (vocab,), in float32."""
        return self.model.lm_head(self.body.norm(hidden[:, -1:, :]))[0, -1].float()

    def queries(self, index: int, hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Layer ``index``'s rotated queries for ``hidden`` (its input), shape (1, heads, tokens, head_dim)."""
        layer = self.body.layers[index]
        attention = layer.self_attn
        states = attention.q_proj(layer.input_layernorm(hidden))
        states = states.view(1, hidden.shape[1], -1, attention.head_dim).transpose(1, 2)
        cos, sin = self.body.rotary_emb(hidden, positions)
        return rotate(states, cos, sin)

    def attention_logits(self, index: int, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Pre-softmax scores of ``queries`` (1, heads, q, d) on ``keys`` (1, kv_heads, k, d): (1, heads, q, k)."""
        attention = self.body.layers[index].self_attn
        keys = keys.repeat_interleave(attention.num_key_value_groups, dim=1)
        return torch.matmul(queries, keys.transpose(2, 3)) * attention.scaling

    def prefill(self, ids: list[int], cache: Cache, start: int = 0) -> torch.Tensor:
        """Read ``ids`` at positions ``start…`` into ``cache`` in slices; returns the last hidden state."""
        hidden = torch.empty(0)
        for offset in range(0, len(ids), PREFILL_CHUNK_TOKENS):
            piece = ids[offset : offset + PREFILL_CHUNK_TOKENS]
            positions = torch.arange(start + offset, start + offset + len(piece))[None]
            hidden = self.run_layers(self.embed(piece), positions, cache, range(self.num_layers))
        return hidden
