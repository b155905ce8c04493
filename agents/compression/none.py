"""The reference: a plain ``DynamicCache`` that keeps every key and value."""

from __future__ import annotations

from dataclasses import dataclass

from agents.compression.base import Prefilled, PromptParts
from agents.compression.driver import DecoderDriver


@dataclass(frozen=True)
class PlainCache:
    """No compression: the prompt is read in slices into a full-precision cache."""

    name: str = "none"

    def prefill(self, driver: DecoderDriver, prompt: PromptParts) -> Prefilled:
        cache = driver.new_cache()
        hidden = driver.prefill(prompt.ids, cache)
        return Prefilled(cache, driver.logits(hidden), len(prompt.ids))

    def cache_limit(self, prompt: PromptParts) -> int:
        return len(prompt.ids)
