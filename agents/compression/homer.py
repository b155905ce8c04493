"""HOMER-style hierarchical context merging (Song et al., ICLR 2024, arXiv 2404.10308), on CPU.

A driver loop over the model's layers, not a patch of transformers. The context is cut into 1, 2
or 4 chunks, each ``instruction + context slice + question`` with positions local to the chunk, so
positions stay near ``budget``. Leaves go through the warm-up layers plus one block on
their own; at the last layer of every block, the context tokens least attended by the chunk's final
token are dropped (pre-softmax logit, max over heads) so that two siblings fit one chunk, then siblings
merge (instruction and question averaged, contexts concatenated) and climb the next block together.
Pruned tokens leave every lower layer's cache too, so decoding gets one cache of at most ``budget``
positions per layer; generated tokens take positions after the question. The tree is walked depth
first: memory grows with its height (log of the input), not with the input.

Differences from the paper's code: no calibration bias is subtracted from the significance scores (the
published biases come without the script that made them; HOMER subtracts a per-layer bias indexed by
distance to the last token); pruning happens after a block's last layer rather than between its
attention and MLP (the MLP is per token, so kept tokens get the same values); the schedule, targets
and merge follow the paper's code, with SDPA attention in float32 on CPU; at most 4 chunks (the paper
merges up to 16 with Llama-2-7B; see ``MAX_MERGE_LEVELS`` for what a 0.5B model does at 8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from agents.compression.base import Prefilled, PromptParts
from agents.compression.driver import DecoderDriver, cached_kv
from agents.compression.homer_chunks import Chunk, chunk_token_ids, merge_chunks
from agents.errors import ConfigError, ContextOverflowError

WARMUP_FRACTION = 12 / 32
"""Layers every leaf passes before any merging: the paper's 12 of Llama-2-7B's 32."""
MAX_MERGE_LEVELS = 2
"""At most 4 chunks. Measured (bench/kv_compression.py, Qwen2.5-Coder-0.5B-Instruct, README): every
passkey found with 2 or 4 chunks at 4k tokens when the cache kept a third of the prompt or more;
none with 8 chunks at 2k or 4k, even with pruning off or with 5 layers per merge level instead of 3.
Inputs that would need more chunks get longer ones."""


@dataclass(frozen=True)
class Schedule:
    """How one prompt is cut and which layers each level of the merge tree runs."""

    chunks: int
    height: int
    leaf_layers: range
    block: int
    """Layers per merge level above the leaves."""

    def layers_at(self, level: int) -> range:
        """Layers run by a node ``level`` merges above the leaves (0 = leaves)."""
        if level == 0:
            return self.leaf_layers
        start = self.leaf_layers.stop + self.block * (level - 1)
        return range(start, start + self.block)


def plan(prompt: PromptParts, budget: int, num_layers: int) -> Schedule:
    """The merge schedule for ``prompt`` (HOMER's ``create_homer_prefix``), with at most 4 chunks.

    Chunks hold ``budget`` tokens each, or more where 4 of that size cannot hold the context; the
    backend's window (4 × ``budget``) keeps that excess to the instruction and question repeated.

    >>> plan(PromptParts(list(range(100)), prefix_len=10, suffix_len=10), budget=40, num_layers=8)
    Schedule(chunks=4, height=2, leaf_layers=range(0, 6), block=1)
    >>> plan(PromptParts(list(range(120)), prefix_len=10, suffix_len=10), budget=40, num_layers=8).chunks
    4
    """
    slice_room = budget - prompt.prefix_len - prompt.suffix_len
    if slice_room < 2:
        raise ConfigError(
            f"cache_budget {budget} leaves no room for document text beside the instruction and question "
            f"({prompt.prefix_len + prompt.suffix_len} tokens)",
            help="raise cache_budget",
        )
    height = min(MAX_MERGE_LEVELS, math.ceil(math.log2(max(1, math.ceil(prompt.context_len / slice_room)))))
    warmup = round(num_layers * WARMUP_FRACTION)
    block = (num_layers - warmup) // (height + 1)
    if block < 1:
        raise ContextOverflowError(
            f"{prompt.context_len} context tokens need {height} merge levels, more than {num_layers} layers allow",
            help="raise cache_budget or shorten the input",
        )
    leftover = num_layers - warmup - block * (height + 1)
    return Schedule(2**height, height, range(warmup + leftover + block), block)


@dataclass(frozen=True)
class Leaf:
    """A chunk before it is embedded: token ids and their chunk-local position ids."""

    ids: list[int]
    positions: list[int]
    prefix_len: int
    suffix_len: int


@dataclass(frozen=True)
class Homer:
    """Hierarchical merging with a final cache of at most ``budget`` positions per layer.

    ``budget`` is both HOMER's chunk length and its target length (2048 each in the paper).
    ``prune=False`` only merges (for tests: with one chunk it is the plain model).
    """

    budget: int
    prune: bool = True
    name: str = "homer"

    def cache_limit(self, prompt: PromptParts) -> int:
        return min(len(prompt.ids), max(self.budget, prompt.prefix_len + prompt.suffix_len))

    def prefill(self, driver: DecoderDriver, prompt: PromptParts) -> Prefilled:
        schedule = plan(prompt, self.budget, driver.num_layers)
        ids, positions = chunk_token_ids(prompt, schedule.chunks)
        leaves = [
            Leaf(chunk, pos, prompt.prefix_len, prompt.suffix_len) for chunk, pos in zip(ids, positions, strict=True)
        ]
        root = self._reduce(driver, schedule, leaves, schedule.height, min(self.budget, len(prompt.ids)))
        return Prefilled(root.cache, driver.logits(root.hidden), int(root.positions[0, -1]) + 1)

    def _reduce(self, driver: DecoderDriver, schedule: Schedule, leaves: list[Leaf], level: int, target: int) -> Chunk:
        """Process the subtree over ``leaves`` depth first; its result holds at most ``target`` tokens.

        Leaves are embedded only when reached, so memory holds one chunk per tree level.
        """
        if len(leaves) == 1:
            leaf = leaves[0]
            chunk = Chunk(
                driver.embed(leaf.ids), torch.tensor([leaf.positions]), leaf.prefix_len, leaf.suffix_len,
                driver.new_cache(),
            )  # fmt: skip
            return self._run_block(driver, chunk, schedule.layers_at(0), target)
        half = len(leaves) // 2
        left_target, right_target = self._child_targets(leaves[half])
        left = self._reduce(driver, schedule, leaves[:half], level - 1, left_target)
        right = self._reduce(driver, schedule, leaves[half:], level - 1, right_target)
        return self._run_block(driver, merge_chunks(left, right), schedule.layers_at(level), target)

    def _child_targets(self, first_right_leaf: Leaf) -> tuple[int, int]:
        """Targets for two siblings so that their merge fits ``budget`` (HOMER's left/right target lengths)."""
        affix = first_right_leaf.prefix_len + first_right_leaf.suffix_len
        half = affix + (self.budget - affix) // 2
        length = len(first_right_leaf.ids)
        if length < half:  # a short last slice keeps all of itself
            return self.budget - (length - affix), length
        return half, half

    def _run_block(self, driver: DecoderDriver, chunk: Chunk, layers: range, target: int) -> Chunk:
        """Send ``chunk`` through ``layers``; then drop its least significant context tokens down to ``target``."""
        excess = chunk.length - target
        if not self.prune or excess <= 0:
            chunk.hidden = driver.run_layers(chunk.hidden, chunk.positions, chunk.cache, layers)
            return chunk
        last = layers[-1]
        chunk.hidden = driver.run_layers(chunk.hidden, chunk.positions, chunk.cache, layers[:-1])
        query = driver.queries(last, chunk.hidden[:, -1:], chunk.positions[:, -1:])
        chunk.hidden = driver.run_layers(chunk.hidden, chunk.positions, chunk.cache, layers[-1:])
        keys, _ = cached_kv(chunk.cache, last) or (torch.empty(0), None)
        significance = driver.attention_logits(last, query, keys).amax(dim=1)[0, 0]  # (n,): max over heads
        significance = significance.masked_fill(~chunk.context_mask(), float("inf"))
        keep = torch.ones(chunk.length, dtype=torch.bool)
        keep[significance.topk(excess, largest=False).indices] = False
        chunk.keep(keep)
        return chunk
