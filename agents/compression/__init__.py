"""KV-cache compression for the transformers backend: one small module per method behind one interface.

``none`` keeps everything; ``fp8`` keeps every position in 8-bit floats and ``quantized`` in 4-bit integers;
``snapkv`` keeps the positions the question attends to; ``homer`` merges chunks hierarchically and reads
inputs longer than the window.
"""

from __future__ import annotations

from agents.errors import MissingDependencyError

try:
    import torch  # noqa: F401
    import transformers  # noqa: F401
except ImportError as error:  # say which extra to install instead of a bare ImportError
    raise MissingDependencyError(
        "the transformers backend needs torch and transformers", help="pip install 'docqa[compress]'"
    ) from error

from agents.compression.base import CacheCompressor, Prefilled, PromptParts
from agents.compression.measure import cache_bytes, cache_length

__all__ = ["CacheCompressor", "Prefilled", "PromptParts", "cache_bytes", "cache_length", "compressor_for"]


def compressor_for(name: str, budget: int) -> CacheCompressor:
    """The method that ``--compression NAME`` selects; ``budget`` is ``cache_budget`` (snapkv, homer)."""
    if name == "none":
        from agents.compression.none import PlainCache

        return PlainCache()
    if name in ("fp8", "quantized"):
        from agents.compression.quantized import QuantizedKV

        return QuantizedKV(name)
    if name == "snapkv":
        from agents.compression.snapkv import SnapKV

        return SnapKV(budget)
    if name == "homer":
        from agents.compression.homer import Homer

        return Homer(budget)
    raise ValueError(f"unknown compression method {name!r}")
