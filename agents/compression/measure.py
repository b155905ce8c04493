"""How big a cache is: positions per layer and bytes, whatever the layer stores."""

from __future__ import annotations

from typing import Any

import torch
from transformers import Cache

_QUANTIZED_PARTS = ("_data", "_scale", "_shift")
"""Where optimum-quanto's tensors keep their packed values, scales and zero points."""


def tensor_bytes(value: Any) -> int:
    """Bytes held by a tensor, a quantized tensor (its packed parts) or a tuple of them; 0 for anything else."""
    if isinstance(value, torch.Tensor):
        parts = [
            getattr(value, name) for name in _QUANTIZED_PARTS if isinstance(getattr(value, name, None), torch.Tensor)
        ]
        if parts:
            return sum(tensor_bytes(part) for part in parts)
        return value.numel() * value.element_size()
    if isinstance(value, tuple | list):
        return sum(tensor_bytes(item) for item in value)
    return 0


def cache_bytes(cache: Cache) -> int:
    """Bytes of keys and values (quantized or not) held by every layer of ``cache``."""
    return sum(tensor_bytes(value) for layer in cache.layers for value in vars(layer).values())


def cache_length(cache: Cache) -> int:
    """Most positions any layer holds."""
    return max((cache.get_seq_length(index) for index in range(len(cache.layers))), default=0)
