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


PENALTY_WINDOW = 64
"""Generated tokens the repeat penalty looks back over (llama.cpp's default ``last_n_tokens_size``)."""


def penalize_repeats(logits: torch.Tensor, recent: list[int], penalty: float) -> torch.Tensor:
    """``logits`` with every token in ``recent`` made less likely, as llama.cpp's ``repeat_penalty``
    does: a positive logit divided by ``penalty``, a negative one multiplied.

    >>> penalize_repeats(torch.tensor([2.0, -1.0, 1.0]), [0, 1, 0], 2.0).tolist()
    [1.0, -2.0, 1.0]
    """
    if penalty == 1.0 or not recent:
        return logits
    ids = torch.tensor(sorted(set(recent)))
    seen = logits[ids]
    penalized = logits.clone()
    penalized[ids] = torch.where(seen > 0, seen / penalty, seen * penalty)
    return penalized


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
    repeat_penalty: float = 1.0,
    seed: int = 0,
    should_stop: Callable[[list[int]], bool] | None = None,
) -> Decoded:
    """Generate up to ``max_new_tokens`` after ``state``, extending its cache one position at a time.

    ``repeat_penalty`` applies to the last ``PENALTY_WINDOW`` generated tokens, as in llama.cpp.
    """
    generator = torch.Generator().manual_seed(seed)
    tokens: list[int] = []
    logits, position = state.logits, state.next_position
    while len(tokens) < max_new_tokens:
        logits = penalize_repeats(logits, tokens[-PENALTY_WINDOW:], repeat_penalty)
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
