"""A scripted, recording chat model for pipeline-logic tests (never the proof that a feature works)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field, PrivateAttr

Reply = Callable[[str, int], str]
"""Given the user prompt and the call number (from 0), the reply text."""


class RecordingChatModel(BaseChatModel):
    """Replies with ``reply(prompt, n)`` and records every prompt and keyword argument."""

    _reply: Reply = PrivateAttr()
    _failures: list[Exception] = PrivateAttr(default_factory=list)
    prompts: list[str] = Field(default_factory=list)
    kwargs: list[dict[str, Any]] = Field(default_factory=list)

    def __init__(self, reply: Reply, failures: list[Exception] | None = None) -> None:
        super().__init__()
        self._reply = reply
        self._failures = list(failures or [])

    @property
    def _llm_type(self) -> str:
        return "recording-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self._failures:
            raise self._failures.pop(0)
        prompt = str(messages[-1].content)
        self.prompts.append(prompt)
        self.kwargs.append(kwargs)
        text = self._reply(prompt, len(self.prompts) - 1)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def words(text: str) -> int:
    """A tokenizer for tests: one token per whitespace-separated word."""
    return len(text.split())
