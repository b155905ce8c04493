"""The transformers backend with the real embedded SmolLM2 GGUF: HOMER over several chunks, and the pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from langchain_core.messages import HumanMessage, SystemMessage

from agents import DocQA, Document, Settings
from agents.backends import create_backend
from agents.backends.transformers_backend import TransformersChatModel
from agents.compression.homer import plan
from agents.errors import ConfigError, ContextOverflowError
from agents.materials import render_block
from agents.settings import BackendSettings
from prompts import load_prompts
from retrieval.documents import Chunk

pytestmark = pytest.mark.real_model

FACT = Document("note.txt", "The station's radio call sign is KESSEL-7. It was assigned in 1954.")
FILLER = " ".join(f"On day {day} the keeper logged calm seas and a clear lamp." for day in range(1, 29))


@pytest.fixture(scope="module", autouse=True)
def restore_threads() -> Iterator[None]:
    """The backend sets torch's process-wide thread count from ``n_threads``; put it back afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_homer_reads_an_input_longer_than_one_chunk() -> None:
    budget = 256
    settings = BackendSettings(kind="transformers", compression="homer", cache_budget=budget, n_threads=1)
    backend = create_backend(settings)
    assert backend.name == "transformers:SmolLM2-135M-Instruct.Q4_1.gguf+homer"
    chat_model = backend.chat_model
    assert isinstance(chat_model, TransformersChatModel)
    document = f'<document id="c1">\n{FILLER} The radio call sign is KESSEL-7. {FILLER}\n</document>'
    messages = [
        SystemMessage("You answer only from the document."),
        HumanMessage(f"Read this text.\n{document}\n\nQuestion: What is the radio call sign?"),
    ]
    prompt = chat_model._loaded.prompt_parts([{"role": "system", "content": "You answer only from the document."}])
    assert prompt.ids  # the template renders without a document too

    reply = chat_model.invoke(messages, max_tokens=16)
    stats = chat_model.last_stats
    assert stats is not None
    assert 800 < stats.prompt_tokens <= 1024
    parts = chat_model._loaded.prompt_parts([{"role": "user", "content": str(messages[1].content)}])
    assert plan(parts, budget, 30).chunks == 4  # several chunks, merged over two levels
    assert backend.context_window == 4 * budget
    assert stats.cached_positions <= budget
    assert isinstance(reply.content, str) and reply.content.strip()
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] == stats.prompt_tokens
    assert 0 < reply.usage_metadata["output_tokens"] == stats.generated_tokens <= 16


def test_homer_chunks_only_the_quoted_material_of_docqas_own_prompts() -> None:
    """The instruction HOMER copies into every chunk is all the text before the first block of material.

    The system prompt names the ``<document>`` and ``<notes>`` markers in a sentence; that mention is
    not material, or chunks after the first would lose the rest of the system prompt and the task.
    """
    backend = create_backend(BackendSettings(kind="transformers", compression="homer", n_threads=1))
    loaded = backend.chat_model._loaded  # type: ignore[attr-defined]
    prompts = load_prompts()
    block = render_block(Chunk("c1", 1, "note.txt", FILLER, 0, len(FILLER), 300))
    worker = prompts.worker.render(question="Who?", previous_note="- nothing yet", documents=block, position="2")
    answer = prompts.answer.render(question="Who?", documents=block)
    for user, first_material in ((worker, "<notes>"), (answer, '<document id="c1"')):
        messages = [{"role": "system", "content": prompts.system.render()}, {"role": "user", "content": user}]
        parts = loaded.prompt_parts(messages)
        prefix = loaded.tokenizer.decode(parts.prefix)
        suffix = loaded.tokenizer.decode(parts.suffix)
        assert prompts.system.render() in prefix and user.split(first_material)[0] in prefix
        assert user.rsplit("</document>", 1)[1].strip() in suffix
        assert "Who?" in (prefix if user is worker else suffix)
        assert FILLER[:40] not in prefix + suffix


@pytest.mark.parametrize("compression", ["none", "fp8", "quantized", "snapkv", "homer"])
def test_pipeline_end_to_end_with_the_transformers_backend(compression: str) -> None:
    budget = 64 if compression == "snapkv" else 1024  # homer's budget must hold the instruction and question
    settings = Settings(
        strategy="full",
        backend={"kind": "transformers", "compression": compression, "cache_budget": budget, "n_threads": 1},
        manager={"max_tokens": 32},
    )
    qa = DocQA(settings)
    suffix = "" if compression == "none" else f"+{compression}"
    assert qa.backend.name == f"transformers:SmolLM2-135M-Instruct.Q4_1.gguf{suffix}"
    assert qa.backend.exact_tokenizer
    assert qa.backend.context_window == (4 * budget if compression == "homer" else 8192)
    answer = qa.ask("What is the station's radio call sign?", [FACT])

    assert "KESSEL" in answer.answer.upper()
    (call,) = answer.calls
    assert 0 < call.completion_tokens <= 32
    stats = qa.backend.chat_model.last_stats  # type: ignore[attr-defined]
    assert stats.prompt_tokens == call.prompt_tokens
    if compression == "snapkv":
        # Pruned to the budget plus the question window (the prompt's text after the document, 32 to 128 tokens).
        assert 64 + 32 <= stats.cached_positions <= 64 + 128 < stats.prompt_tokens
    else:  # none, fp8 and quantized keep every position; homer reads this short prompt as one chunk within its budget
        assert stats.cached_positions == stats.prompt_tokens < budget


def test_a_prompt_longer_than_the_window_is_a_context_overflow(tmp_path: Path) -> None:
    backend = create_backend(BackendSettings(kind="transformers", context_window=256, n_threads=1))
    assert backend.context_window == 256 and backend.recommended_chunk_tokens == 256
    with pytest.raises(ContextOverflowError, match="exceed the 256-token window"):
        backend.chat_model.invoke([("user", FILLER)], max_tokens=16)
    not_a_model = tmp_path / "notes.gguf"
    not_a_model.write_text("not a model", encoding="utf-8")
    with pytest.raises(ConfigError, match="transformers could not load"):
        create_backend(BackendSettings(kind="transformers", model_path=not_a_model))
