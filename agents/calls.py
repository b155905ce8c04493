"""One model call, with docqa's retry policy and its cost recorded."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from agents.backends.base import Backend
from agents.errors import BackendError, DocQAError, TransientBackendError
from agents.results import ModelCall

RETRY_BASE_DELAY_S = 1.0


async def call_model(
    backend: Backend,
    *,
    system: str,
    user: str,
    max_tokens: int,
    max_retries: int,
    role: Literal["worker", "manager"],
    index: int,
) -> tuple[str, ModelCall]:
    """Send one system + user message pair; return the reply text and its cost.

    Transient failures are retried up to ``max_retries`` times with exponential back-off; every
    other failure is raised as a typed ``DocQAError`` at once.
    """
    messages = [SystemMessage(system), HumanMessage(user)]
    started = time.perf_counter()
    for attempt in range(max_retries + 1):
        try:
            reply = await backend.chat_model.ainvoke(messages, max_tokens=max_tokens)
            break
        except TransientBackendError:
            if attempt == max_retries:
                raise
            await asyncio.sleep(RETRY_BASE_DELAY_S * 2**attempt)
        except DocQAError:
            raise
        except Exception as error:  # a user-supplied chat model may raise anything
            raise BackendError(f"{backend.name} failed: {type(error).__name__}: {error}") from error
    seconds = time.perf_counter() - started
    text = reply.content if isinstance(reply.content, str) else str(reply.content)
    prompt_tokens, completion_tokens = _usage(reply, backend, system + user, text)
    return text.strip(), ModelCall(role, index, prompt_tokens, completion_tokens, seconds, retries=attempt)


def _usage(reply: AIMessage, backend: Backend, prompt: str, text: str) -> tuple[int, int]:
    """Token counts as the model reported them, else as our tokenizer counts them."""
    # A cached reply of a model that reported no usage carries usage_metadata without token counts.
    if reply.usage_metadata and "input_tokens" in reply.usage_metadata:
        return reply.usage_metadata["input_tokens"], reply.usage_metadata["output_tokens"]
    return backend.count_tokens(prompt), backend.count_tokens(text)
