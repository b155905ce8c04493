"""What each strategy puts in the prompts (scripted fake model, real embeddings), and citations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agents import DocQA, Settings
from agents.backends import Backend
from agents.errors import InputError
from agents.results import PassagesRetrieved
from retrieval.documents import Document
from retrieval.reorder import reorder_for_long_context
from tests.fakes import RecordingChatModel, words

TOPICS = ["lighthouse lens", "harbour pilots", "fog signals", "keeper's cottage", "storm damage", "tide tables"]
PARAGRAPHS = [
    f"Part {i} is about {topic}. " + " ".join(f"The {topic} record {i}.{j} was written in the log." for j in range(12))
    for i, topic in enumerate(TOPICS * 3)
]
DOC = Document("station.txt", "\n\n".join(PARAGRAPHS))
IDS = re.compile(r'<document id="(\w+)"')


def reply(prompt: str, n: int) -> str:
    return "FINAL" if "Answer the question" in prompt else f"note-{n}"


def make_qa(tmp_path: Path, strategy: str, *, window: int = 4096, **sections) -> tuple[DocQA, RecordingChatModel]:
    model = RecordingChatModel(reply)
    backend = Backend(name="fake", chat_model=model, context_window=window, count_tokens=words)
    settings = Settings(
        strategy=strategy, retrieval={"index_dir": tmp_path / "index", **sections}, workers={"max_tokens": 64}
    )
    return DocQA(settings, backend=backend), model


def test_full_reads_as_much_as_fits_from_the_start_in_one_call(tmp_path: Path) -> None:
    qa, model = make_qa(tmp_path, "full", window=1200)
    answer = qa.ask("What about fog signals?", [DOC])
    assert len(model.prompts) == 1 and answer.notes == []
    prompt = model.prompts[0]
    assert "Part 0 is about lighthouse lens" in prompt
    assert "Part 17 is about" not in prompt  # the window ran out long before the end
    ids = IDS.findall(prompt)
    assert ids == [f"c{i}" for i in range(len(ids))]  # from the start, in order
    assert [chunk.id for chunk in answer.context] == ids
    assert words(prompt) <= 1200 - qa.settings.manager.max_tokens


def test_rag_puts_passages_best_first_and_the_question_after(tmp_path: Path) -> None:
    qa, model = make_qa(tmp_path, "rag", top_k=5)
    events: list[object] = []
    qa.ask("What was written about fog signals?", [DOC], on_event=events.append)
    ranked = next(e for e in events if isinstance(e, PassagesRetrieved)).passages
    prompt = model.prompts[0]
    assert len(model.prompts) == 1
    assert IDS.findall(prompt) == [hit.chunk.id for hit in ranked]
    assert "fog signals" in ranked[0].chunk.text
    assert prompt.index("Question:") > prompt.rindex("</document>")


def test_rag_reorder_puts_best_first_and_second_best_last(tmp_path: Path) -> None:
    qa, model = make_qa(tmp_path, "rag-reorder", top_k=6)
    events: list[object] = []
    qa.ask("What was written about storm damage?", [DOC], on_event=events.append)
    ranked = [hit.chunk.id for hit in next(e for e in events if isinstance(e, PassagesRetrieved)).passages]
    order = IDS.findall(model.prompts[0])
    assert order == reorder_for_long_context(ranked)
    assert order[0] == ranked[0] and order[-1] == ranked[1]


def test_rag_drops_passages_that_do_not_fit_the_window(tmp_path: Path) -> None:
    qa, model = make_qa(tmp_path, "rag", window=900, top_k=12)
    answer = qa.ask("What about tide tables?", [DOC])
    assert 0 < len(answer.context) < 12
    assert words(model.prompts[0]) <= 900 - qa.settings.manager.max_tokens


def test_coa_rag_workers_read_retrieved_passages_in_document_order(tmp_path: Path) -> None:
    qa, model = make_qa(tmp_path, "coa-rag", coa_top_k=8)
    qa.settings.chunking.chunk_tokens = 400
    answer = qa.ask("What about the keeper's cottage?", [DOC])
    read = [chunk for note in answer.notes for chunk in note.sources]
    assert len(read) == 8
    assert [c.char_start for c in read] == sorted(c.char_start for c in read)
    assert 1 < len(answer.notes) < 8  # several passages per worker
    for note, prompt in zip(answer.notes, model.prompts, strict=False):
        assert IDS.findall(prompt) == [chunk.id for chunk in note.sources]
    assert "note-" in model.prompts[-1] and "<document" not in model.prompts[-1]  # manager: last note only


def test_retrieval_strategies_need_a_question(tmp_path: Path) -> None:
    qa, _ = make_qa(tmp_path, "rag")
    with pytest.raises(InputError, match="needs a question"):
        qa.summarize([DOC])


def test_only_real_citations_are_reported(tmp_path: Path) -> None:
    model = RecordingChatModel(
        lambda prompt, n: "FINAL see [c1] and [c77], [sic]" if "Readers went" in prompt else "- x [c1]"
    )
    backend = Backend(name="fake", chat_model=model, context_window=4096, count_tokens=words)
    qa = DocQA(Settings(chunking={"chunk_tokens": 300}), backend=backend)
    answer = qa.ask("q?", [DOC])
    assert [c.id for c in answer.citations] == ["c1"]
    assert answer.dropped_citations == 1
    cited = answer.citations[0].chunk
    assert cited == answer.notes[1].sources[0]
    data = answer.to_dict()["citations"][0]
    assert data == {"id": "c1", "file": "station.txt", "page": None, "text": cited.text}
