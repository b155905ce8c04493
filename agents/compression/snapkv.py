"""SnapKV-style pruning (Li et al. 2024, arXiv 2404.14469): keep what the question attends to.

The prompt is read whole, except its observation window: the question, i.e. the text after the last
document (``PromptParts.suffix``), at least ``window`` and at most ``max_window`` tokens. The window is
then sent through the layers one layer at a time; at each layer its attention over the earlier
positions (softmax, summed over the window's queries, averaged over the query heads that share a
key/value head, smoothed by average pooling) ranks the cached positions, and only the ``budget`` best
of each key/value head are kept, plus the window itself. Decoding then sees ``budget + window``
positions per layer and head; new tokens take positions after the original prompt.

Differences from the paper: the window follows the question rather than being a fixed 32 tokens (docqa's
prompts end with instructions after the question); the prompt is prefilled in 512-token slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import Cache

from agents.compression.base import Prefilled, PromptParts
from agents.compression.driver import DecoderDriver, cached_kv, replace_kv


@dataclass(frozen=True)
class SnapKV:
    """Per layer and key/value head, the ``budget`` earlier positions the last ``window`` tokens attend to most."""

    budget: int
    window: int = 32
    max_window: int = 128
    kernel: int = 5
    name: str = "snapkv"

    def window_len(self, prompt: PromptParts) -> int:
        """Observation window: the question (the prompt's suffix), clamped to ``[window, max_window]``."""
        return min(len(prompt.ids), max(self.window, min(prompt.suffix_len, self.max_window)))

    def cache_limit(self, prompt: PromptParts) -> int:
        return min(len(prompt.ids), self.budget + self.window_len(prompt))

    def prefill(self, driver: DecoderDriver, prompt: PromptParts) -> Prefilled:
        head_len = len(prompt.ids) - self.window_len(prompt)
        cache = driver.new_cache()
        if head_len:
            driver.prefill(prompt.ids[:head_len], cache)
        return self.read_window(driver, prompt, cache)

    def read_window(self, driver: DecoderDriver, prompt: PromptParts, cache: Cache) -> Prefilled:
        """Send the window through the layers one at a time over ``cache`` (the prompt before the window),
        pruning each layer's cache as soon as the window has attended to it."""
        ids = prompt.ids
        head_len = len(ids) - self.window_len(prompt)
        hidden = driver.embed(ids[head_len:])
        positions = torch.arange(head_len, len(ids))[None]
        for index in range(driver.num_layers):
            queries = driver.queries(index, hidden, positions)
            hidden = driver.run_layers(hidden, positions, cache, range(index, index + 1))
            if head_len > self.budget:
                self._prune_layer(driver, index, queries, cache, head_len)
        return Prefilled(cache, driver.logits(hidden), len(ids))

    def kept_positions(
        self, driver: DecoderDriver, index: int, queries: torch.Tensor, keys: torch.Tensor, head_len: int
    ) -> torch.Tensor:
        """Layer ``index``'s first ``head_len`` positions to keep, ascending: (1, kv_heads, budget)."""
        votes = window_votes(driver.attention_logits(index, queries, keys), head_len, keys.shape[1], self.kernel)
        return votes.topk(self.budget, dim=-1).indices.sort(dim=-1).values

    def _prune_layer(
        self, driver: DecoderDriver, index: int, queries: torch.Tensor, cache: Cache, head_len: int
    ) -> None:
        keys, values = cached_kv(cache, index) or (torch.empty(0), torch.empty(0))
        keep = self.kept_positions(driver, index, queries, keys, head_len)
        gather = keep[..., None].expand(-1, -1, -1, keys.shape[-1])
        kept_keys = torch.cat([keys[:, :, :head_len].gather(2, gather), keys[:, :, head_len:]], dim=2)
        kept_values = torch.cat([values[:, :, :head_len].gather(2, gather), values[:, :, head_len:]], dim=2)
        replace_kv(cache, index, kept_keys, kept_values)


def window_votes(logits: torch.Tensor, head_len: int, kv_heads: int, kernel: int) -> torch.Tensor:
    """How much the window's queries attend to each earlier position, per key/value head: (1, kv_heads, head_len).

    ``logits`` (1, heads, window, head_len + window) are pre-softmax scores; the window is causal
    among itself.
    """
    window = logits.shape[2]
    future = torch.ones(window, window, dtype=torch.bool).triu(1)
    logits = logits.clone()
    logits[..., head_len:] = logits[..., head_len:].masked_fill(future, float("-inf"))
    weights = logits.float().softmax(dim=-1)[..., :head_len].sum(dim=2)  # (1, heads, head_len)
    weights = weights.view(1, kv_heads, -1, head_len).mean(dim=2)
    return F.avg_pool1d(weights, kernel_size=kernel, stride=1, padding=kernel // 2, count_include_pad=False)
