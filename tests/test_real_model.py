"""The embedded local model end to end: real llama.cpp, real SmolLM2, a multi-chunk document."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from agents import DocQA, Settings
from agents.backends import create_backend
from agents.results import NoteWritten, PassagesRetrieved
from agents.settings import BackendSettings

pytestmark = pytest.mark.real_model


def test_embedded_model_answers_a_multi_chunk_document(short_sample: Path) -> None:
    settings = Settings(chunking={"chunk_tokens": 256}, workers={"max_tokens": 96}, manager={"max_tokens": 96})
    qa = DocQA(settings)
    events: list[object] = []
    answer = qa.ask("Who was the first keeper of the lighthouse?", [short_sample], on_event=events.append)

    assert qa.backend.name == "llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf"
    assert qa.backend.context_window == 8192
    n_chunks = len(answer.notes)
    assert n_chunks >= 3
    assert sum(isinstance(e, NoteWritten) for e in events) == n_chunks
    assert [c.role for c in answer.calls] == ["worker"] * n_chunks + ["manager"]
    assert answer.answer.strip()
    assert all(note.sources[0].n_tokens <= 256 for note in answer.notes)
    # Real token counts from llama.cpp, within the configured output limits.
    assert all(0 < c.completion_tokens <= 96 for c in answer.calls)
    assert all(c.prompt_tokens > c.completion_tokens for c in answer.calls[:-1])
    # The chunks cover the document in order.
    text = short_sample.read_text(encoding="utf-8")
    assert "".join(note.sources[0].text for note in answer.notes) == text


def test_embedded_tokenizer_is_the_models_own() -> None:
    backend = DocQA(Settings()).backend
    # SmolLM2's BPE differs from cl100k; a word-ish count would not give these.
    assert backend.count_tokens("Kessel Point Lighthouse") == len(
        backend.chat_model._model.llama.tokenize(b"Kessel Point Lighthouse", add_bos=False)  # type: ignore[attr-defined]
    )
    assert backend.exact_tokenizer


@pytest.mark.parametrize("strategy", ["full", "rag", "rag-reorder", "coa-rag"])
def test_every_strategy_runs_with_the_embedded_model(strategy: str, short_sample: Path, tmp_path: Path) -> None:
    settings = Settings(
        strategy=strategy,
        chunking={"chunk_tokens": 256},
        workers={"max_tokens": 48},
        manager={"max_tokens": 48},
        retrieval={"top_k": 4, "coa_top_k": 6, "index_dir": tmp_path},
    )
    events: list[object] = []
    answer = DocQA(settings).ask("Who was the first keeper of the lighthouse?", [short_sample], on_event=events.append)
    assert answer.strategy == strategy
    assert answer.answer.strip()
    assert all(0 < c.completion_tokens <= 48 for c in answer.calls)
    if strategy == "coa-rag":
        assert len(answer.notes) >= 2 and len(answer.calls) == len(answer.notes) + 1
        retrieved = next(e for e in events if isinstance(e, PassagesRetrieved))
        assert retrieved.n_passages >= 3
        assert (
            sum(len(note.sources) for note in answer.notes) == len(retrieved.passages) == min(6, retrieved.n_passages)
        )
    else:
        assert len(answer.calls) == 1 and answer.notes == []
        assert answer.context and answer.calls[0].prompt_tokens <= 8192 - 48


# Twelve "one," make the greedy loop hold whatever the thread count or what llama.cpp's cache holds
# from the previous prompt; after five, the first token was a knife edge between "One," and "One.".
LOOPING_PROMPT = "Count: one, one, one, one, one, one, one, one, one, one, one, one,"


def looping_ones(backend: BackendSettings) -> int:
    """How often the backend's reply to ``LOOPING_PROMPT`` says "one,"."""
    model = create_backend(backend).chat_model
    reply = model.invoke([HumanMessage(LOOPING_PROMPT)], max_tokens=40)
    return str(reply.content).lower().split().count("one,")


def test_repeat_penalty_stops_the_embedded_model_looping() -> None:
    assert looping_ones(BackendSettings(repeat_penalty=1.0)) >= 10  # greedy SmolLM2 keeps counting "one, one, one, …"
    assert looping_ones(BackendSettings(repeat_penalty=1.3)) <= 3
