"""The OpenAI-compatible backend against a real server on 127.0.0.1 (llama_cpp.server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from agents import DocQA, Settings
from agents.backends import create_backend
from agents.errors import ConfigError, TransientBackendError
from agents.settings import BackendSettings
from tests.test_real_model import looping_ones

pytestmark = pytest.mark.server


def _settings(base_url: str, **extra: object) -> Settings:
    backend = {"kind": "openai", "base_url": base_url, "model": "smollm2", "context_window": 8192, "api_key": "local"}
    return Settings(backend=backend, **extra)


def test_pipeline_end_to_end_through_the_server(openai_server: str, short_sample: Path) -> None:
    settings = _settings(
        openai_server, chunking={"chunk_tokens": 256}, workers={"max_tokens": 64}, manager={"max_tokens": 64}
    )
    answer = DocQA(settings).ask("Who was the first keeper of the lighthouse?", [short_sample])
    assert answer.backend == "openai:smollm2"
    assert len(answer.notes) >= 3
    assert [c.role for c in answer.calls] == ["worker"] * len(answer.notes) + ["manager"]
    assert answer.answer
    # usage comes from the server's replies, and the output limit held for every call
    assert all(0 < c.completion_tokens <= 64 for c in answer.calls)


def test_output_limit_goes_over_the_wire(openai_server: str) -> None:
    model = create_backend(_settings(openai_server).backend).chat_model
    reply = model.invoke([HumanMessage("Write a long story about a lighthouse keeper.")], max_tokens=8)
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] <= 8
    assert reply.response_metadata["finish_reason"] == "length"


def test_unreachable_server_is_a_transient_error() -> None:
    backend = create_backend(
        BackendSettings(kind="openai", base_url="http://127.0.0.1:9/v1", model="m", api_key="k", timeout_s=5)
    )
    with pytest.raises(TransientBackendError, match="endpoint call failed"):
        backend.chat_model.invoke([HumanMessage("hi")])


def test_missing_model_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="needs a model name"):
        create_backend(BackendSettings(kind="openai", base_url="http://127.0.0.1:9/v1"))


def test_repeat_penalty_goes_over_the_wire(openai_server: str) -> None:
    def ones(repeat_penalty: float) -> int:
        return looping_ones(_settings(openai_server).backend.model_copy(update={"repeat_penalty": repeat_penalty}))

    assert ones(1.0) >= 10  # the served SmolLM2 loops, as in-process
    assert ones(1.3) <= 3
