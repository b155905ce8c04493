"""HOMER's chunks: instruction + context slice + question, with positions local to the chunk.

A chunk carries the hidden states after the layers it has been through, their position ids, and
its own cache for those layers (one entry per token, in every layer). ``keep`` drops tokens from
all three at once, which is HOMER's propagative refinement: a token pruned at a high layer is also
gone from the lower layers' caches, so the cache handed to decoding has one length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from agents.compression.base import PromptParts
from agents.compression.driver import cached_kv, replace_kv


@dataclass
class Chunk:
    """One chunk part-way up the layers (shapes: hidden (1, n, h), positions (1, n))."""

    hidden: torch.Tensor
    positions: torch.Tensor
    prefix_len: int
    suffix_len: int
    cache: DynamicCache

    @property
    def length(self) -> int:
        return int(self.hidden.shape[1])

    def context_mask(self) -> torch.Tensor:
        """True for context tokens (the only ones HOMER may drop), shape (n,)."""
        mask = torch.zeros(self.length, dtype=torch.bool)
        mask[self.prefix_len : self.length - self.suffix_len] = True
        return mask

    def keep(self, mask: torch.Tensor) -> None:
        """Keep only the tokens where ``mask`` (n,) is True, in the hidden states and in every cached layer."""
        self.hidden = self.hidden[:, mask]
        self.positions = self.positions[:, mask]
        for index in range(len(self.cache.layers)):
            if (kv := cached_kv(self.cache, index)) is not None:
                replace_kv(self.cache, index, kv[0][:, :, mask], kv[1][:, :, mask])


def chunk_token_ids(prompt: PromptParts, count: int) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids and position ids of ``count`` chunks that share the prompt's prefix and suffix.

    The context is cut into ``count`` slices of ``ceil(context / count)`` tokens (the last ones may be
    shorter or empty). With several chunks, the question sits at the same positions in every chunk
    (after a full-length slice), so averaging question tokens across chunks mixes like with like.

    >>> ids, positions = chunk_token_ids(PromptParts([1, 5, 6, 7, 9], prefix_len=1, suffix_len=1), 2)
    >>> ids, positions
    ([[1, 5, 6, 9], [1, 7, 9]], [[0, 1, 2, 3], [0, 1, 3]])
    """
    context, slice_len = prompt.context, math.ceil(prompt.context_len / count)
    all_ids, all_positions = [], []
    for index in range(count):
        piece = context[index * slice_len : (index + 1) * slice_len]
        all_ids.append(prompt.prefix + piece + prompt.suffix)
        suffix_start = prompt.prefix_len + (slice_len if count > 1 else len(piece))
        positions = list(range(prompt.prefix_len + len(piece)))
        all_positions.append(positions + list(range(suffix_start, suffix_start + prompt.suffix_len)))
    return all_ids, all_positions


def _parts(tensor: torch.Tensor, dim: int, prefix_len: int, suffix_len: int) -> tuple[torch.Tensor, ...]:
    length = tensor.shape[dim]
    return (
        tensor.narrow(dim, 0, prefix_len),
        tensor.narrow(dim, prefix_len, length - prefix_len - suffix_len),
        tensor.narrow(dim, length - suffix_len, suffix_len),
    )


def _merge_tensors(left: torch.Tensor, right: torch.Tensor, dim: int, prefix_len: int, suffix_len: int) -> torch.Tensor:
    """[mean of prefixes, left context, right context, mean of suffixes] along ``dim``."""
    left_prefix, left_context, left_suffix = _parts(left, dim, prefix_len, suffix_len)
    right_prefix, right_context, right_suffix = _parts(right, dim, prefix_len, suffix_len)
    return torch.cat(
        [(left_prefix + right_prefix) / 2, left_context, right_context, (left_suffix + right_suffix) / 2], dim=dim
    )


def merge_chunks(left: Chunk, right: Chunk | None) -> Chunk:
    """HOMER's merge: instruction and question parts averaged, contexts concatenated, in every cached layer.

    Position ids are concatenated the same way (the left chunk's prefix, both contexts, the right
    chunk's suffix), so merged tokens keep the positions they were encoded at.
    """
    if right is None:
        return left
    p, s = left.prefix_len, left.suffix_len
    left_pos, right_pos = _parts(left.positions, 1, p, s), _parts(right.positions, 1, p, s)
    left.positions = torch.cat([left_pos[0], left_pos[1], right_pos[1], right_pos[2]], dim=1)
    left.hidden = _merge_tensors(left.hidden, right.hidden, 1, p, s)
    for index in range(len(left.cache.layers)):
        mine, theirs = cached_kv(left.cache, index), cached_kv(right.cache, index)
        if mine is not None and theirs is not None:
            keys = _merge_tensors(mine[0], theirs[0], 2, p, s)
            replace_kv(left.cache, index, keys, _merge_tensors(mine[1], theirs[1], 2, p, s))
    return left
