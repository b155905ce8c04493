"""transformers' ``QuantizedCache``: every position kept, in fewer bytes. Two backends, two methods:

- ``quantized``: optimum-quanto, 4-bit, in groups of 64 values with a scale and zero point each; the most
  recent ``residual_length`` tokens stay in full precision until they are flushed into the quantized part
  (KIVI-style, as transformers implements it). transformers groups each token's head vector (keys per
  token, not per channel as KIVI does), so one outlier channel sets the scale of all 64 and rounds the
  rest away. Qwen2's key biases make such channels: in Qwen2.5-Coder-0.5B, layer 8 has one of 211 where
  the median channel is 0.74. On that model it garbled passkeys at 2k tokens and answered nothing at
  16k and 32k (``bench/kv_compression.py``).
- ``fp8``: 8-bit floats (e4m3) with one scale per layer for keys and one for values, fixed by the first
  prompt slice; later values beyond its range saturate. A float's exponent keeps outlier channels and
  small ones alike: on the same model it kept every passkey the 4-bit cache lost, for a quarter of a
  float32 cache rather than a sixth, though it still changed 7 of 20 real answers, as llama.cpp's q8_0 did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.compression.base import Prefilled, PromptParts
from agents.compression.driver import DecoderDriver
from agents.errors import MissingDependencyError

BACKENDS = {"quantized": "quanto", "fp8": "fp8"}
"""The ``QuantizedCache`` backend behind each method name."""


@dataclass(frozen=True)
class QuantizedKV:
    """All positions kept: ``quantized`` in ``nbits`` (2 or 4) per value by optimum-quanto, or ``fp8``."""

    name: str = "quantized"
    """``quantized`` or ``fp8``: a key of ``BACKENDS``."""
    nbits: int = 4
    residual_length: int = 128

    def prefill(self, driver: DecoderDriver, prompt: PromptParts) -> Prefilled:
        from transformers import QuantizedCache

        backend = BACKENDS[self.name]
        options: dict[str, Any] = {}  # fp8 has one scale per tensor: transformers refuses the group-wise options
        if backend == "quanto":
            options = {"nbits": self.nbits, "residual_length": self.residual_length}
        try:
            cache = QuantizedCache(backend=backend, config=driver.config, **options)
        except ImportError as error:
            if backend == "quanto":
                raise MissingDependencyError(
                    "the quantized cache needs optimum-quanto", help="pip install 'docqa[compress]'"
                ) from error
            raise MissingDependencyError(
                f"the {self.name} cache could not load its transformers backend: {error}",
                help="pip install 'docqa[compress]' (transformers 5.x), or use --compression snapkv or none",
            ) from error
        hidden = driver.prefill(prompt.ids, cache)
        return Prefilled(cache, driver.logits(hidden), len(prompt.ids))

    def cache_limit(self, prompt: PromptParts) -> int:
        return len(prompt.ids)
