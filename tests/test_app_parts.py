"""The app's parts on their own: the background run and its Stop, progress text, exports, the
evaluation page, the launcher, and the doctests of ``app/`` (which pytest's testpaths leave out)."""

from __future__ import annotations

import doctest
import importlib
import json
import signal
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from agents import DocQA, Settings
from agents.backends import Backend
from agents.results import AnswerReady, DocumentsChunked, DocumentsLoaded, NoteWritten
from app import backends, launch
from app.export import answer_json, answer_markdown
from app.live import finish_run
from app.progress import describe_progress
from app.reports import ReportImage, split_report
from app.runner import PipelineRun
from app.state import SessionData, Turn
from retrieval.documents import Document
from tests.fakes import RecordingChatModel, words

DOC = Document("harbour.txt", " ".join(f"Sentence {i} tells fact {i} about the harbour." for i in range(12)))


def reply(prompt: str, n: int) -> str:
    return f"note {n} [c{n}]" if prompt.startswith("You are worker") else "Fact 3 is about the harbour [c1]."


def make_qa(model: RecordingChatModel) -> DocQA:
    backend = Backend(name="fake", chat_model=model, context_window=2048, count_tokens=words)
    return DocQA(Settings(chunking={"chunk_tokens": 40}), backend=backend)


def test_run_streams_every_event_and_the_answer() -> None:
    run = PipelineRun(make_qa(RecordingChatModel(reply)), "Which fact is 3?", [DOC]).start()
    assert run.wait(30)
    kinds = [type(event) for event in run.events()]
    assert kinds == [DocumentsLoaded, DocumentsChunked, NoteWritten, NoteWritten, NoteWritten, AnswerReady]
    assert run.answer is not None and run.answer.answer == "Fact 3 is about the harbour [c1]."
    assert not run.stopped and run.error is None and run.elapsed_s > 0


def test_stop_ends_the_run_after_the_model_call_in_progress() -> None:
    first_call_started, release = threading.Event(), threading.Event()

    def slow_reply(prompt: str, n: int) -> str:
        first_call_started.set()
        assert release.wait(30)
        return reply(prompt, n)

    model = RecordingChatModel(slow_reply)
    run = PipelineRun(make_qa(model), "Which fact is 3?", [DOC]).start()
    assert first_call_started.wait(30)
    run.request_stop()
    release.set()
    assert run.wait(30)
    assert run.stopped and run.answer is None
    assert sum(isinstance(event, NoteWritten) for event in run.events()) == 1
    assert len(model.prompts) == 1  # no worker after the stop, and no manager

    session = SessionData(history=[Turn("Which fact is 3?", "coa", ["harbour.txt"])], run=run)
    finish_run(session)
    turn = session.history[0]
    assert session.run is None and turn.stopped and turn.answer is None
    assert [note.text for note in turn.partial_notes] == ["note 0 [c0]"]


def test_a_failing_model_ends_the_run_with_its_message() -> None:
    from agents.errors import BackendError

    model = RecordingChatModel(reply, failures=[BackendError("the model broke", help="try another")])
    run = PipelineRun(make_qa(model), "Which fact is 3?", [DOC]).start()
    assert run.wait(30)
    assert run.error == "the model broke (try another)" and not run.stopped


def test_progress_says_who_reads_what() -> None:
    qa = make_qa(RecordingChatModel(reply))
    run = PipelineRun(qa, "Which fact is 3?", [DOC]).start()
    assert run.wait(30)
    events = run.events()
    assert describe_progress(events[:1], "coa").status == "Cutting the documents into chunks…"
    chunked = events[1]
    assert isinstance(chunked, DocumentsChunked)
    first, second = chunked.chunks[0], chunked.chunks[1]
    after_chunking = describe_progress(events[:2], "coa")
    assert after_chunking.status == f"Worker 1 of 3 is reading harbour.txt, chars 0-{first.char_end}…"
    assert after_chunking.fraction == 0
    one_note = describe_progress(events[:3], "coa")
    assert one_note.status == f"Worker 2 of 3 is reading harbour.txt, chars {second.char_start}-{second.char_end}…"
    assert one_note.fraction == pytest.approx(1 / 3) and len(one_note.notes) == 1
    assert describe_progress(events[:5], "coa").status.startswith("All 3 workers are done")
    assert describe_progress(events, "coa").fraction == 1.0
    assert describe_progress(events[:2], "full").status == "The model is reading 3 chunk(s) in one call…"
    assert describe_progress(events[:1], "rag").status.startswith("Embedding the documents")


def test_exports_hold_answer_citations_notes_and_usage() -> None:
    answer = make_qa(RecordingChatModel(reply)).ask("Which fact is 3?", [DOC])
    markdown = answer_markdown(answer)
    assert markdown.startswith("# Which fact is 3?\n\nFact 3 is about the harbour [c1].\n")
    cited = answer.citations[0].chunk
    assert f"**[c1] harbour.txt, chars {cited.char_start}-{cited.char_end}**" in markdown
    assert f"> {cited.text.strip()}" in markdown  # the cited passage, quoted
    assert "**Worker 3** · harbour.txt, chars" in markdown and "> note 2 [c2]" in markdown
    assert "- Model calls: 4;" in markdown
    data = json.loads(answer_json(answer))
    assert data["answer"] == answer.answer and data["usage"]["model_calls"] == 4
    assert data["citations"][0]["file"] == "harbour.txt" and len(data["notes"]) == 3


def test_report_is_cut_around_its_local_plots(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "accuracy.png")
    report = "# Run\n\n![Accuracy by strategy](accuracy.png)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n![x](../secret.png)"
    parts = split_report(report, tmp_path)
    assert parts == [
        "# Run\n\n",
        ReportImage((tmp_path / "accuracy.png").resolve(), "Accuracy by strategy"),
        "\n\n| a | b |\n|---|---|\n| 1 | 2 |\n![x](../secret.png)",  # outside the folder: left alone
    ]


def _evaluation_page() -> None:
    from app.evaluation_page import render_evaluation_page

    render_evaluation_page()


def test_evaluation_page_shows_report_and_plots(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "2025-01-01"
    run.mkdir(parents=True)
    table = "| strategy | accuracy |\n|---|---|\n| coa | 0.9 |"
    (run / "report.md").write_text(f"# Results\n\n{table}\n\n![Accuracy](acc.png)\n")
    Image.new("RGB", (8, 8), "red").save(run / "acc.png")
    Image.new("RGB", (8, 8), "blue").save(run / "latency.png")
    (tmp_path / "empty").mkdir()

    at = AppTest.from_function(_evaluation_page, default_timeout=30)
    at.run()
    assert at.info  # asks for a folder
    at.text_input(key="eval-folder").input(str(run)).run()
    assert any("| coa | 0.9 |" in m.value for m in at.markdown)
    assert [image.captions for image in at.image] == [["Accuracy"], ["latency.png"]]  # shown by the report, then not
    at.text_input(key="eval-folder").input(str(tmp_path / "runs")).run()  # a folder of runs
    assert at.selectbox(key="eval-run").value == run
    assert len(at.image) == 2
    at.text_input(key="eval-folder").input(str(tmp_path / "empty")).run()
    assert "holds no report.md and no PNG plots" in at.warning[0].value
    at.text_input(key="eval-folder").input(str(tmp_path / "missing")).run()
    assert "no such folder" in at.error[0].value


def test_launch_runs_streamlit_with_the_app_and_passes_options_on(monkeypatch: pytest.MonkeyPatch) -> None:
    commands: list[list[str]] = []

    class FakeServer:
        def __init__(self, command: list[str]) -> None:
            commands.append(command)

        def wait(self) -> int:
            return 3

    monkeypatch.setattr(launch.subprocess, "Popen", FakeServer)
    assert launch.main(["--server.port", "8600"]) == 3
    command = commands[0]
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", str(launch.APP_SCRIPT)]
    assert launch.APP_SCRIPT.is_file()
    assert command[-2:] == ["--server.port", "8600"]  # last, so they win over the defaults
    assert command[command.index("--server.maxUploadSize") + 1] == "50"
    assert command[command.index("--browser.gatherUsageStats") + 1] == "false"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


@pytest.mark.parametrize("module", ["app.uploads", "app.export", "app.render", "app.progress", "app.sidebar",
                                    "app.reports"])  # fmt: skip
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.real_model
def test_the_app_loads_the_local_model_with_every_backend_setting() -> None:
    settings = Settings(backend={"kv_type": "q8_0", "repeat_penalty": 1.3, "n_threads": 1})
    backend = backends.backend_for(settings)
    assert backend is not None
    assert backend.name == "llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf+kv-q8_0"
    assert backend.chat_model.repeat_penalty == 1.3  # type: ignore[attr-defined]
    assert backends.backend_for(settings) is backend  # loaded once, then shared
    assert backends.backend_for(Settings(backend={"n_threads": 1})) is not backend
