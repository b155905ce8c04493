"""How many tokens of document a worker may read, following Chain-of-Agents.

The paper's budget is the window minus the question and the worker instruction; it ignores the
incoming note, which grows. We also reserve room for the note (as long as a worker's output may
be, since the note is the previous worker's output) and for this worker's own output.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.errors import InputError

CHAT_TEMPLATE_TOKENS = 64
"""Room for the chat template's role markers around the system and user messages."""
APPROXIMATE_TOKENIZER_MARGIN = 0.85
"""When tokens are only approximated (another model's tokenizer), use 85% of the budget."""
MIN_CHUNK_TOKENS = 32


@dataclass(frozen=True)
class ChunkBudget:
    """The arithmetic behind a chunk size, kept for reports and tests."""

    context_window: int
    prompt_tokens: int
    """System prompt, worker instruction and question, with an empty chunk and note."""
    note_tokens: int
    output_tokens: int
    window_budget: int
    """What the window leaves for document text."""
    cap: int | None
    """The configured (or recommended) chunk size, if any."""

    @property
    def tokens(self) -> int:
        """The chunk size used: the window budget, or the cap if that is smaller."""
        return min(self.window_budget, self.cap) if self.cap else self.window_budget


def chunk_budget(
    *,
    context_window: int,
    prompt_tokens: int,
    note_tokens: int,
    output_tokens: int,
    cap: int | None = None,
    exact_tokenizer: bool = True,
) -> ChunkBudget:
    """Budget B = window − prompt − note reserve − output − template markup.

    >>> chunk_budget(context_window=8192, prompt_tokens=200, note_tokens=256, output_tokens=256).tokens
    7416
    >>> chunk_budget(context_window=8192, prompt_tokens=200, note_tokens=256, output_tokens=256, cap=512).tokens
    512
    """
    room = context_window - prompt_tokens - note_tokens - output_tokens - CHAT_TEMPLATE_TOKENS
    if not exact_tokenizer:
        room = int(room * APPROXIMATE_TOKENIZER_MARGIN)
    if room < MIN_CHUNK_TOKENS:
        raise InputError(
            f"the question and instructions leave no room for document text in a {context_window}-token window "
            f"(prompt {prompt_tokens}, note reserve {note_tokens}, output {output_tokens} tokens)",
            help="shorten the question, lower the workers' max_tokens, or use a model with a larger --context-window",
        )
    return ChunkBudget(context_window, prompt_tokens, note_tokens, output_tokens, room, cap)
