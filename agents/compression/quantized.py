"""transformers' ``QuantizedCache`` with the optimum-quanto backend (4-bit, group-wise; works on CPU).

Keys and values are stored in int4 groups of 64 channels with a scale and zero point each; the most
recent ``residual_length`` tokens stay in full precision until they are flushed into the quantized part
(KIVI-style, as transformers implements it). Every position is kept: only the bytes shrink.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.compression.base import Prefilled, PromptParts
from agents.compression.driver import DecoderDriver
from agents.errors import MissingDependencyError


@dataclass(frozen=True)
class QuantizedKV:
    """All positions kept, stored in ``nbits`` (2 or 4) per value by optimum-quanto."""

    nbits: int = 4
    residual_length: int = 128
    name: str = "quantized"

    def prefill(self, driver: DecoderDriver, prompt: PromptParts) -> Prefilled:
        from transformers import QuantizedCache

        try:
            cache = QuantizedCache(
                backend="quanto", config=driver.config, nbits=self.nbits, residual_length=self.residual_length
            )
        except ImportError as error:
            raise MissingDependencyError(
                "the quantized cache needs optimum-quanto", help="pip install 'docqa[compress]'"
            ) from error
        hidden = driver.prefill(prompt.ids, cache)
        return Prefilled(cache, driver.logits(hidden), len(prompt.ids))

    def cache_limit(self, prompt: PromptParts) -> int:
        return len(prompt.ids)
