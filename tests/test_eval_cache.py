"""The SQLite response cache: round trips, persistence, and use as a LangChain chat model's cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration

from agents.backends.messages import chat_result
from eval.cache import SQLiteResponseCache
from tests.fakes import RecordingChatModel


def test_round_trip_keeps_text_usage_and_metadata_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = SQLiteResponseCache(path)
    assert cache.lookup("prompt", "model") is None
    cache.update("prompt", "model", chat_result("Hello", 12, 1, "stop").generations)
    cache.close()

    reopened = SQLiteResponseCache(path)
    (generation,) = reopened.lookup("prompt", "model") or []
    assert isinstance(generation, ChatGeneration) and isinstance(generation.message, AIMessage)
    assert generation.message.content == "Hello"
    assert generation.message.usage_metadata == {"input_tokens": 12, "output_tokens": 1, "total_tokens": 13}
    assert generation.message.response_metadata == {"finish_reason": "stop"}
    assert reopened.lookup("prompt", "other model") is None  # keyed by the llm_string too
    assert (reopened.hits, reopened.misses, len(reopened)) == (1, 1, 1)
    reopened.clear()
    assert len(reopened) == 0


def test_a_chat_model_with_the_cache_calls_once_per_distinct_prompt(tmp_path: Path) -> None:
    model = RecordingChatModel(lambda prompt, n: f"reply {n}")
    model.cache = SQLiteResponseCache(tmp_path / "cache.sqlite")

    async def ask(text: str, max_tokens: int = 16) -> str:
        return str((await model.ainvoke([HumanMessage(text)], max_tokens=max_tokens)).content)

    assert asyncio.run(ask("a")) == "reply 0"
    assert asyncio.run(ask("a")) == "reply 0"  # from the cache
    assert asyncio.run(ask("b")) == "reply 1"
    assert asyncio.run(ask("a", max_tokens=8)) == "reply 2"  # other call options are another entry
    assert model.prompts == ["a", "b", "a"]
    # This fake reports no token usage: a cached reply must not carry an invented usage either.
    cached = asyncio.run(model.ainvoke([HumanMessage("b")], max_tokens=16))
    assert cached.usage_metadata is None or "input_tokens" in cached.usage_metadata
