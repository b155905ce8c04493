"""The chunk budget arithmetic (Chain-of-Agents' B, with room for the note and the output)."""

from __future__ import annotations

import pytest

from agents.budget import CHAT_TEMPLATE_TOKENS, chunk_budget
from agents.errors import InputError


def test_budget_is_window_minus_prompt_note_output_and_markup() -> None:
    budget = chunk_budget(context_window=8192, prompt_tokens=300, note_tokens=256, output_tokens=200)
    assert budget.window_budget == 8192 - 300 - 256 - 200 - CHAT_TEMPLATE_TOKENS
    assert budget.tokens == budget.window_budget


def test_cap_applies_only_below_the_window_budget() -> None:
    assert (
        chunk_budget(context_window=8192, prompt_tokens=300, note_tokens=256, output_tokens=256, cap=512).tokens == 512
    )
    assert (
        chunk_budget(context_window=1024, prompt_tokens=300, note_tokens=256, output_tokens=256, cap=4096).tokens == 148
    )


def test_approximate_tokenizer_keeps_a_margin() -> None:
    exact = chunk_budget(context_window=4096, prompt_tokens=100, note_tokens=100, output_tokens=100)
    approx = chunk_budget(
        context_window=4096, prompt_tokens=100, note_tokens=100, output_tokens=100, exact_tokenizer=False
    )
    assert approx.tokens == int(exact.tokens * 0.85)


def test_no_room_left_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="no room for document text") as raised:
        chunk_budget(context_window=600, prompt_tokens=300, note_tokens=128, output_tokens=128)
    assert "--context-window" in raised.value.help
