"""Token-by-token decoding from a prefilled cache, the same for every compression method."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from agents.compression.base import Prefilled
from agents.compression.driver import DecoderDriver


@dataclass(frozen=True)
class Decoded:
    """What decoding produced and why it stopped."""

    tokens: list[int]
    """Generated token ids, without the end-of-turn token that stopped them."""
    finish_reason: str
    """``"stop"`` (end of turn or a stop condition) or ``"length"`` (``max_new_tokens`` reached)."""


def next_token(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> int:
    """Greedy at temperature 0 (ties go to the lowest id), otherwise a sample from ``softmax(logits / t)``."""
    if temperature <= 0:
        return int(logits.argmax())
    probabilities = (logits / temperature).softmax(dim=-1)
    return int(torch.multinomial(probabilities, 1, generator=generator))


def decode(
    driver: DecoderDriver,
    state: Prefilled,
    max_new_tokens: int,
    *,
    end_ids: set[int],
    temperature: float = 0.0,
    seed: int = 0,
    should_stop: Callable[[list[int]], bool] | None = None,
) -> Decoded:
    """Generate up to ``max_new_tokens`` after ``state``, extending its cache one position at a time."""
    generator = torch.Generator().manual_seed(seed)
    tokens: list[int] = []
    logits, position = state.logits, state.next_position
    while len(tokens) < max_new_tokens:
        token = next_token(logits, temperature, generator)
        if token in end_ids:
            return Decoded(tokens, "stop")
        tokens.append(token)
        if should_stop is not None and should_stop(tokens):
            return Decoded(tokens, "stop")
        hidden = driver.run_layers(
            driver.embed([token]), torch.tensor([[position]]), state.cache, range(driver.num_layers)
        )
        logits, position = driver.logits(hidden), position + 1
    return Decoded(tokens, "length")
