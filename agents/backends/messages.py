"""Conversions shared by the backends that speak the OpenAI chat format."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatResult


def to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as ``{"role": ..., "content": ...}`` dicts with plain-text content."""
    converted = convert_to_openai_messages(list(messages))
    return [
        {"role": m["role"], "content": m["content"] if isinstance(m["content"], str) else str(m["content"])}
        for m in converted
    ]


def chat_result(text: str, prompt_tokens: int, completion_tokens: int, finish_reason: str | None) -> ChatResult:
    """A one-message result carrying token usage the way LangChain reports it."""
    message = AIMessage(
        content=text,
        usage_metadata={
            "input_tokens": prompt_tokens,
            "output_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        response_metadata={"finish_reason": finish_reason},
    )
    return ChatResult(generations=[ChatGeneration(message=message)])
