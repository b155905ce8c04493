"""What every cache-compression method shares: the prompt it reads, what it hands to decoding, its interface.

A method turns a prompt into a *prefilled* state: a KV cache (compressed or not), the logits for the
first new token, and the position that token takes. Decoding (``agents.compression.decoding``) is the
same for every method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch
    from transformers import Cache

    from agents.compression.driver import DecoderDriver


@dataclass(frozen=True)
class PromptParts:
    """A tokenized prompt, split into instruction (prefix), context and question (suffix).

    Only HOMER uses the split (the prefix and suffix are copied into every chunk); the other methods
    read ``ids`` whole. ``prefix_len + context_len + suffix_len == len(ids)``.
    """

    ids: list[int]
    prefix_len: int
    suffix_len: int

    def __post_init__(self) -> None:
        if self.prefix_len < 0 or self.suffix_len < 0 or self.prefix_len + self.suffix_len > len(self.ids):
            raise ValueError(f"bad split {self.prefix_len}+{self.suffix_len} of {len(self.ids)} tokens")

    @property
    def context_len(self) -> int:
        return len(self.ids) - self.prefix_len - self.suffix_len

    @property
    def prefix(self) -> list[int]:
        return self.ids[: self.prefix_len]

    @property
    def context(self) -> list[int]:
        return self.ids[self.prefix_len : len(self.ids) - self.suffix_len]

    @property
    def suffix(self) -> list[int]:
        return self.ids[len(self.ids) - self.suffix_len :]


@dataclass
class Prefilled:
    """The state after a prompt was read: what decoding continues from."""

    cache: Cache
    """Keys and values of every layer, as the method chose to keep them."""
    logits: torch.Tensor
    """Next-token logits after the prompt's last token, shape ``(vocab,)``."""
    next_position: int
    """Position id of the first generated token (after the question, whatever was dropped)."""


class CacheCompressor(Protocol):
    """One KV-cache compression method."""

    @property
    def name(self) -> str:
        """The ``--compression`` value, e.g. ``"snapkv"``."""
        ...

    def prefill(self, driver: DecoderDriver, prompt: PromptParts) -> Prefilled:
        """Read the prompt and return the cache that decoding will use."""
        ...

    def cache_limit(self, prompt: PromptParts) -> int:
        """Most positions per layer and head that ``prefill`` leaves in the cache for this prompt."""
        ...
