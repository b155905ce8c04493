"""The Streamlit app under Streamlit's AppTest, with a scripted fake model behind it.

The fake is injected by replacing ``app.backends.backend_for``, the one place the app gets its
model; everything else (uploads, settings, the background run, rendering) is the real app.
The real model in a real browser is in ``test_app_browser.py``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from agents import Settings
from agents.backends import Backend
from app import backends
from app.limits import MAX_UPLOAD_BYTES
from tests.fakes import RecordingChatModel, words
from tests.test_loaders import HTML, encrypt_pdf, make_docx, make_pdf

APP = Path(__file__).resolve().parent.parent / "app" / "main.py"
TIMEOUT_S = 60
KEEPER = b"Tobias Wren was the first keeper of Kessel Point. He lit the lamp in 1871. "
TIDES = b"The causeway floods at high tide. Boats land on the western shore. "
API_KEY = "sk-test-DO-NOT-ECHO-1234567890"


def reply(prompt: str, n: int) -> str:
    """Workers write a numbered note; the manager (or the single call) answers citing the first chunk."""
    if prompt.startswith("You are worker"):
        return f"note {n}: Wren kept the light [c0]."
    return "The first keeper was Tobias Wren [c0]."


@dataclass
class Recorded:
    """What one run of the app handed to the pipeline."""

    settings: Settings
    model: RecordingChatModel


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[Recorded]:
    """Every pipeline run the app starts, with its settings and its fake model's prompts."""
    recorded: list[Recorded] = []

    def fake_backend_for(settings: Settings) -> Backend:
        model = RecordingChatModel(reply)
        recorded.append(Recorded(settings, model))
        return Backend(name="fake", chat_model=model, context_window=2048, count_tokens=words)

    monkeypatch.setattr(backends, "backend_for", fake_backend_for)
    return recorded


def new_session() -> AppTest:
    """A fresh browser session on the app, after its first run."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.run()
    assert not at.exception
    return at


def upload(at: AppTest, *files: tuple[str, bytes]) -> None:
    at.file_uploader(key="uploads").set_value([(name, data, "application/octet-stream") for name, data in files])
    at.run()
    assert not at.exception


def ask(at: AppTest, question: str) -> None:
    at.chat_input[0].set_value(question)
    at.run()
    assert not at.exception


def table_files(at: AppTest) -> list[str]:
    """The names in the documents table (none if there is no table)."""
    return list(at.table[0].value["File"]) if at.table else []


def page_text(at: AppTest) -> str:
    """Every text the page shows to the user, joined."""
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "code", "text", "title", "metric")
    parts = [str(getattr(element, "value", "")) for kind in kinds for element in at.get(kind)]
    parts += [element.label for element in at.expander]
    parts += [str(frame.value.to_dict()) for frame in at.table]
    return "\n".join(parts)


def test_upload_ask_answer(runs: list[Recorded]) -> None:
    at = new_session()
    assert at.chat_input[0].disabled  # nothing to ask about yet
    upload(at, ("keeper.txt", KEEPER * 4), ("report.pdf", make_pdf()), ("orchard.docx", make_docx()))

    assert table_files(at) == ["keeper.txt", "report.pdf", "orchard.docx"]
    rows = at.table[0].value.set_index("File")
    assert rows.loc["report.pdf", "Pages"] == "3" and rows.loc["keeper.txt", "Pages"] == "—"
    assert int(rows.loc["keeper.txt", "Tokens (approx.)"]) > 40
    assert not at.chat_input[0].disabled

    ask(at, "Who was the first keeper?")
    assert len(runs) == 1
    worker_prompts = runs[0].model.prompts[:-1]
    assert any("Tobias Wren" in p for p in worker_prompts) and any("bananas" in p for p in worker_prompts)
    text = page_text(at)
    assert "Who was the first keeper?" in text
    assert "The first keeper was Tobias Wren [c0]." in text
    labels = [expander.label for expander in at.expander]
    assert labels[0].startswith("[c0] keeper.txt, chars 0-")  # the citation, with its file
    assert labels[1] == "Notes from the workers (3)"
    assert "note 0: Wren kept the light" in text
    assert [m.label for m in at.metric] == ["Model calls", "Tokens in", "Tokens out", "Seconds"]
    assert at.metric[0].value == "4"
    assert [b.label for b in at.get("download_button")] == ["Markdown", "JSON"]

    ask(at, "When was the lamp first lit?")  # the conversation stays
    assert len(runs) == 2
    user_messages = [m for m in at.chat_message if m.name == "user"]
    assert len(user_messages) == 2
    assert len(at.get("download_button")) == 4


def test_bad_files_are_named_and_the_others_still_load(runs: list[Recorded]) -> None:
    at = new_session()
    upload(
        at,
        ("keeper.md", KEEPER),
        ("locked.pdf", encrypt_pdf(make_pdf(), "secret")),
        ("broken.pdf", b"%PDF-1.7 this is not really a pdf"),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256))),
        ("blank.txt", b"   \n\n  "),
        ("page.html", HTML.encode()),
        ("pdf-named.docx", make_pdf()),
        ("huge.txt", b"a" * (MAX_UPLOAD_BYTES + 1)),
    )
    errors = [error.value for error in at.error]
    expected = {
        "locked.pdf": "encrypted PDF",
        "broken.pdf": "not a valid PDF",
        "photo.png": "content is not PDF, DOCX, HTML or UTF-8 text",
        "blank.txt": "no extractable text",
        "pdf-named.docx": "does not match the extension",
        "huge.txt": "larger than the 50 MB limit",
    }
    assert len(errors) == len(expected)
    for name, reason in expected.items():
        assert any(error.startswith(f"{name}:") and reason in error for error in errors), (name, errors)
    assert table_files(at) == ["keeper.md", "page.html"]

    ask(at, "Who was the first keeper?")
    prompts = "\n".join(runs[0].model.prompts)
    assert "Tobias Wren" in prompts and "Cider production doubled" in prompts
    assert "The first keeper was Tobias Wren [c0]." in page_text(at)


def test_settings_reach_the_pipeline(runs: list[Recorded], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    at = new_session()
    at.sidebar.radio(key="model").set_value("openai").run()
    at.sidebar.text_input(key="base_url").input("http://127.0.0.1:9999/v1")
    at.sidebar.text_input(key="model_name").input("local-model")
    at.sidebar.text_input(key="api_key").input(API_KEY)
    at.sidebar.number_input(key="context_window").set_value(4096)
    at.sidebar.selectbox(key="strategy").set_value("full")
    at.sidebar.number_input(key="chunk_tokens").set_value(64)
    at.run()
    upload(at, ("keeper.txt", KEEPER * 10))
    ask(at, "Who was the first keeper?")

    settings = runs[0].settings
    assert settings.strategy == "full"
    assert settings.chunking.chunk_tokens == 64
    backend = settings.backend
    assert (backend.kind, backend.base_url, backend.model, backend.context_window) == (
        "openai", "http://127.0.0.1:9999/v1", "local-model", 4096,
    )  # fmt: skip
    assert backend.api_key is not None and backend.api_key.get_secret_value() == API_KEY
    assert at.sidebar.text_input(key="api_key").proto.type == at.sidebar.text_input(key="api_key").proto.PASSWORD
    # "full" is one call over the chunks that fit; the 64-token cap made several.
    assert len(runs[0].model.prompts) == 1
    assert "The first keeper was Tobias Wren [c0]." in page_text(at)
    # The key is never shown, logged, or put in an export.
    assert API_KEY not in page_text(at)
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(settings)


def test_retrieval_strategy_gets_its_number_of_passages(runs: list[Recorded]) -> None:
    at = new_session()
    assert [n.key for n in at.sidebar.number_input] == ["chunk_tokens"]  # only retrieval strategies take passages
    at.sidebar.selectbox(key="strategy").set_value("coa-rag").run()
    at.sidebar.number_input(key="coa_top_k").set_value(3).run()
    upload(at, ("keeper.txt", KEEPER * 20), ("tides.txt", TIDES * 20))
    ask(at, "Who was the first keeper?")

    settings = runs[0].settings
    assert (settings.strategy, settings.retrieval.coa_top_k) == ("coa-rag", 3)
    assert "The first keeper was Tobias Wren [c0]." in page_text(at)
    index_dir = settings.retrieval.index_dir
    assert index_dir.is_dir() and any(index_dir.iterdir())  # this session's own index


def test_two_sessions_never_see_each_others_documents_or_history(runs: list[Recorded]) -> None:
    alice, bob = new_session(), new_session()
    upload(alice, ("keeper.txt", KEEPER))
    ask(alice, "Who was the first keeper?")

    bob.run()
    assert table_files(bob) == [] and not bob.chat_message and bob.chat_input[0].disabled
    assert "keeper.txt" not in page_text(bob)

    upload(bob, ("tides.txt", TIDES))
    ask(bob, "When does the causeway flood?")
    alice.run()
    assert table_files(alice) == ["keeper.txt"] and table_files(bob) == ["tides.txt"]
    assert "When does the causeway flood?" not in page_text(alice)
    assert "Who was the first keeper?" not in page_text(bob)
    alice_prompts, bob_prompts = "\n".join(runs[0].model.prompts), "\n".join(runs[1].model.prompts)
    assert "Tobias Wren" in alice_prompts and "causeway" not in alice_prompts
    assert "causeway" in bob_prompts and "Tobias Wren" not in bob_prompts
    assert runs[0].settings.retrieval.index_dir != runs[1].settings.retrieval.index_dir


def test_removing_a_file_removes_its_document(runs: list[Recorded]) -> None:
    at = new_session()
    upload(at, ("keeper.txt", KEEPER), ("tides.txt", TIDES))
    upload(at, ("tides.txt", TIDES))
    assert table_files(at) == ["tides.txt"]
    ask(at, "When does the causeway flood?")
    assert "Tobias Wren" not in "\n".join(runs[0].model.prompts)


def test_a_failed_run_shows_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    at = new_session()
    at.sidebar.radio(key="model").set_value("gguf").run()
    assert at.sidebar.info and at.chat_input[0].disabled  # no path yet: cannot ask
    at.sidebar.text_input(key="model_path").input("/nonexistent/model.gguf").run()
    upload(at, ("keeper.txt", KEEPER))
    ask(at, "Who was the first keeper?")
    assert any("model file not found: /nonexistent/model.gguf" in error.value for error in at.error)
    assert not at.chat_input[0].disabled  # the user may fix the settings and ask again
