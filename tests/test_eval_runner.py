"""The batch runner's logic with the scripted fake backend: records, errors, cache, resume rules, report."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agents.backends import Backend
from agents.errors import ConfigError, MissingDependencyError
from eval.report import write_report
from eval.runner import EvalProgress, EvalSummary, run_eval
from eval.store import RESULTS_FILE, read_records, run_lock
from prompts import load_prompt
from tests.eval_fake_run import fake_backend, fake_settings, reply_for, write_code_word_dataset
from tests.fakes import RecordingChatModel, words

STRATEGIES = ["coa", "full"]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Five questions: q2's reference is wrong on purpose, q3 makes the fake fail."""
    return write_code_word_dataset(tmp_path / "codes.jsonl", 5, explode=[3], wrong=[2])


def run(dataset: Path, out: Path, backend: Backend | None = None, **options: Any) -> EvalSummary:
    backend = backend or fake_backend()
    settings = options.pop("settings", None) or fake_settings()
    strategies = options.pop("strategies", STRATEGIES)
    options.setdefault("report", False)  # plotting takes a second or two; the report has its own tests
    return run_eval(
        [dataset], strategies, options.pop("limit", None), options.pop("seed", 0), settings, out,
        backend_factory=lambda _settings: backend, **options,
    )  # fmt: skip


def by_key(out: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["example_id"], r["strategy"]): r for r in read_records(out)}


def test_every_pair_is_recorded_with_prediction_scores_usage_and_errors(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = run(dataset, out)
    records = by_key(out)

    assert len(records) == 10 and (summary.ran, summary.errors, summary.skipped) == (10, 2, 0)
    right = records[("codes/q0", "coa")]
    assert right["prediction"] == "WORD-0" and right["score"] == 1.0 and right["references"] == ["WORD-0"]
    assert right["scores"] == {"score": 1.0, "exact_match": 1.0, "f1": 1.0}
    assert right["model_calls"] >= 3  # several workers and the manager
    assert records[("codes/q0", "full")]["model_calls"] == 1
    assert right["prompt_tokens"] > right["completion_tokens"] > 0
    assert right["doc_tokens"] and right["doc_chars"] and right["seconds"] == right["timings"]["total_s"]
    assert records[("codes/q2", "coa")]["prediction"] == "WORD-2" and records[("codes/q2", "coa")]["score"] == 0.0
    failed = records[("codes/q3", "full")]
    assert failed["prediction"] is None and failed["score"] is None and failed["scores"] is None
    assert failed["error"] == {"type": "BackendError", "message": "the fake model refuses questions that say EXPLODE"}


def test_report_counts_errors_apart_from_scores(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = run(dataset, out, report=True)
    assert summary.report is not None
    report = summary.report.read_text(encoding="utf-8")
    # 4 answered (3 right, q2 "wrong"), 1 failed: 75.0, never 60.0. Resampling [1, 1, 1, 0] gives a mean
    # of 0 with probability 0.4% and at most 0.25 with 5.1%, so the interval's 2.5% end is 25.
    assert "| codes | f1 | coa | 75.0 | 25.0 to 100.0 | 4 | 1 | 0 | " in report
    assert re.search(r"\| codes \| f1 \| full \| 75\.0 \| 25\.0 to 100\.0 \| 4 \| 1 \| 0 \| [\d,]+ \| 1\.0 \| ", report)
    assert "| coa | 75.0 | 25.0 to 100.0 | 1 | 4 | 1 | 0 |" in report
    for plot in ("score_by_strategy.png", "score_vs_length.png"):
        assert (out / plot).read_bytes().startswith(b"\x89PNG") and f"]({plot})" in report


def test_the_report_counts_answers_that_decline_apart_from_wrong_ones(tmp_path: Path) -> None:
    """q1's document lacks its code word, so both strategies say the text does not say; q2's reference
    is wrong, so its right reading scores 0 as well, but is not a refusal."""
    dataset = write_code_word_dataset(tmp_path / "codes.jsonl", 4, missing=[1], wrong=[2])
    run(dataset, tmp_path / "run", report=True)
    assert by_key(tmp_path / "run")[("codes/q1", "coa")]["prediction"] == "The text does not say."
    report = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    for strategy in STRATEGIES:
        assert f"| codes | f1 | {strategy} | 50.0 | 0.0 to 100.0 | 4 | 0 | 1 | " in report
        assert f"| {strategy} | 50.0 | 0.0 to 100.0 | 1 | 4 | 0 | 1 |" in report


def test_the_report_shows_the_seconds_spent_retrieving(dataset: Path, tmp_path: Path) -> None:
    """rag's time includes building the passage index; the report shows that part on its own."""
    settings = fake_settings(retrieval={"index_dir": tmp_path / "index"})
    out = tmp_path / "run"
    run(dataset, out, settings=settings, strategies=["rag", "full"], limit=2, report=True)
    records = by_key(out)
    rag = [r for (_, strategy), r in records.items() if strategy == "rag"]
    assert all(0 <= r["timings"]["retrieve_s"] <= r["seconds"] for r in rag)
    assert max(r["timings"]["retrieve_s"] for r in rag) > 0  # the first one embeds the document
    assert all("retrieve_s" not in r["timings"] for (_, strategy), r in records.items() if strategy == "full")

    report = (out / "report.md").read_text(encoding="utf-8")
    mean = sum(r["timings"]["retrieve_s"] for r in rag) / len(rag)
    assert re.search(rf"\| codes \| f1 \| rag \| .* \| {mean:,.1f} \|\n", report)
    assert re.search(r"\| codes \| f1 \| full \| .* \| [\d.,]+ \| – \|\n", report)


def test_a_second_identical_run_makes_no_model_calls(tmp_path: Path) -> None:
    dataset = write_code_word_dataset(tmp_path / "codes.jsonl", 4)
    out = tmp_path / "run"
    first_model = fake_backend()
    first = run(dataset, out, first_model)
    calls = len(first_model.chat_model.prompts)
    assert calls > 0 and first.model_calls == calls
    before = by_key(out)

    (out / RESULTS_FILE).unlink()  # forget the results, keep the response cache
    second_model = fake_backend()
    second = run(dataset, out, second_model)

    assert second_model.chat_model.prompts == []
    assert (second.model_calls, second.cache_hits) == (0, calls)
    after = by_key(out)
    for key, record in before.items():
        for field in ("prediction", "score", "prompt_tokens", "completion_tokens", "model_calls"):
            assert after[key][field] == record[field]


def test_rerunning_skips_recorded_pairs_and_a_run_can_grow(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = run(dataset, out, strategies=["coa"], limit=3)
    assert (first.ran, first.skipped) == (3, 0)
    model = fake_backend()
    grown = run(dataset, out, model, strategies=["coa", "full"], limit=4)
    assert (grown.ran, grown.skipped, grown.pairs) == (5, 3, 8)
    again_model = fake_backend()
    again = run(dataset, out, again_model, strategies=["coa", "full"], limit=4)
    assert (again.ran, again.skipped) == (0, 8)
    assert again_model.chat_model.prompts == []
    lines = (out / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == len({(json.loads(x)["example_id"], json.loads(x)["strategy"]) for x in lines}) == 8


def test_the_report_says_when_strategies_ran_on_different_examples(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(dataset, out, limit=2)
    assert "ran on different examples" not in write_report(out).read_text(encoding="utf-8")
    run(dataset, out, strategies=["full"], limit=4)
    report = write_report(out).read_text(encoding="utf-8")
    assert "The strategies ran on different examples (coa 2, full 4)" in report
    assert report.index("ran on different examples") < report.index("## Against full")


def test_retry_errors_runs_failed_pairs_again(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(dataset, out)
    retried = run(dataset, out, fake_backend(explode=False), retry_errors=True)
    assert (retried.ran, retried.errors) == (2, 0)
    assert by_key(out)[("codes/q3", "coa")]["prediction"] == "WORD-3"
    assert len((out / RESULTS_FILE).read_text(encoding="utf-8").splitlines()) == 12  # the later line wins
    assert "| codes | f1 | coa | 80.0 | 40.0 to 100.0 | 5 | 0 |" in write_report(out).read_text(encoding="utf-8")


def test_resuming_with_other_settings_or_seed_is_refused(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(dataset, out)
    with pytest.raises(ConfigError, match=r"other settings \(settings\.workers\.max_tokens: 32 → 48\)"):
        run(dataset, out, settings=fake_settings(workers={"max_tokens": 48}))
    with pytest.raises(ConfigError, match="seed: 0 → 1"):
        run(dataset, out, seed=1)
    edited = tmp_path / "prompts"
    edited.mkdir()
    worker = (Path(__file__).parent.parent / "prompts" / "worker.txt").read_text(encoding="utf-8")
    (edited / "worker.txt").write_text(worker.replace("Write new notes", "Write fresh notes"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"other settings \(prompts\.worker: '[0-9a-f]{12}' → '[0-9a-f]{12}'"):
        run(dataset, out, settings=fake_settings(prompts_dir=str(edited)))
    assert len(read_records(out)) == 10
    # where the embeddings are cached, threads and timeouts cannot change an answer
    elsewhere = fake_settings(
        retrieval={"index_dir": str(tmp_path / "other")},
        backend={
            "kind": "openai",
            "model": "fake",
            "base_url": "http://127.0.0.1:9/v1",
            "timeout_s": 5,
            "n_threads": 1,
        },
    )
    assert run(dataset, out, settings=elsewhere).skipped == 10


def test_runs_from_before_flash_attention_was_on_by_default_resume_as_they_were_made(
    dataset: Path, tmp_path: Path
) -> None:
    def made_by_older_docqa(out: Path) -> None:  # it wrote the llama.cpp settings for every backend, unset as null
        info = json.loads((out / "run.json").read_text(encoding="utf-8"))
        info["settings"]["backend"] |= {"kv_type": "f16", "flash_attn": None}
        (out / "run.json").write_text(json.dumps(info), encoding="utf-8")

    local, remote = tmp_path / "local", tmp_path / "remote"
    llamacpp = {"kind": "llamacpp", "model_path": str(tmp_path / "model.gguf")}
    run(dataset, local, settings=fake_settings(backend=llamacpp))
    made_by_older_docqa(local)
    # null meant off for an f16 cache: resuming with today's default would mix the two
    with pytest.raises(ConfigError, match=r"settings\.backend\.flash_attn: False → True"):
        run(dataset, local, settings=fake_settings(backend=llamacpp))
    assert run(dataset, local, settings=fake_settings(backend=llamacpp | {"flash_attn": False})).skipped == 10

    run(dataset, remote)
    assert "flash_attn" not in json.loads((remote / "run.json").read_text(encoding="utf-8"))["settings"]["backend"]
    made_by_older_docqa(remote)
    assert run(dataset, remote).skipped == 10  # llama.cpp settings cannot change a remote model's answer


def test_the_api_key_is_never_written(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    settings = fake_settings(backend={"kind": "openai", "model": "fake", "api_key": "sk-very-secret-123"})
    run(dataset, out, settings=settings)
    for path in out.iterdir():
        assert b"sk-very-secret-123" not in path.read_bytes(), path
    assert "api_key" not in json.loads((out / "run.json").read_text(encoding="utf-8"))["settings"]["backend"]
    assert {"cache.sqlite*", "run.lock"} <= set((out / ".gitignore").read_text(encoding="utf-8").splitlines())


def test_concurrency_runs_several_examples_at_once(dataset: Path, tmp_path: Path) -> None:
    lock, state = threading.Lock(), {"now": 0, "most": 0}

    def reply(prompt: str, n: int) -> str:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return reply_for(prompt)

    backend = Backend(name="fake", chat_model=RecordingChatModel(reply), context_window=2048, count_tokens=words)
    summary = run(dataset, tmp_path / "run", backend, concurrency=3)
    assert summary.ran == 10 and 2 <= state["most"] <= 3


def test_bad_options_are_refused_before_any_work(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a remote backend"):
        run(dataset, tmp_path / "run", settings=fake_settings(backend={"kind": "llamacpp"}), concurrency=2)
    with pytest.raises(ConfigError, match="at least 1"):
        run(dataset, tmp_path / "run", concurrency=0)
    with pytest.raises(ConfigError, match="unknown strategies: mapreduce"):
        run(dataset, tmp_path / "run", strategies=["coa", "mapreduce"])
    with pytest.raises(ConfigError, match="limit must be at least 1"):
        run(dataset, tmp_path / "run", limit=0)


def test_two_runs_never_write_to_one_folder_at_once(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with run_lock(out), pytest.raises(ConfigError, match="another run is writing to"):
        run(dataset, out)
    assert run(dataset, out).ran == 10  # free again once the holder is done


def test_a_configuration_error_stops_the_run(dataset: Path, tmp_path: Path) -> None:
    def reply(prompt: str, n: int) -> str:
        raise MissingDependencyError("no such extra", help="pip install it")

    backend = Backend(name="fake", chat_model=RecordingChatModel(reply), context_window=2048, count_tokens=words)
    with pytest.raises(MissingDependencyError, match="no such extra"):
        run(dataset, tmp_path / "run", backend)
    assert read_records(tmp_path / "run") == []


def test_progress_reports_each_pair(dataset: Path, tmp_path: Path) -> None:
    events: list[EvalProgress] = []
    run(dataset, tmp_path / "run", strategies=["full"], on_progress=events.append)
    assert [(e.done, e.total) for e in events] == [(i, 5) for i in range(6)]
    assert events[0].record is None and all(e.record is not None for e in events[1:])


def test_a_torn_last_line_is_dropped_and_its_pair_run_again(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(dataset, out, strategies=["full"], limit=2)
    results = out / RESULTS_FILE
    lines = results.read_text(encoding="utf-8").splitlines()
    results.write_text(lines[0] + "\n" + lines[1][:40], encoding="utf-8")  # killed while writing line 2
    assert len(read_records(out)) == 1
    summary = run(dataset, out, strategies=["full"], limit=2)
    assert summary.ran == 1
    assert [json.loads(line)["example_id"] for line in results.read_text(encoding="utf-8").splitlines()] == [
        json.loads(lines[0])["example_id"],
        json.loads(lines[1])["example_id"],
    ]


def test_chunk_sizes_are_compared_for_the_chunked_strategies_only(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = run(dataset, out, strategies=["coa", "full"], chunk_sizes=[40, 80], report=True)
    records = read_records(out)
    assert summary.pairs == 15  # 5 examples x (coa at two sizes + full once)
    sizes = {(r["example_id"], r["strategy"], r["chunk_tokens"]) for r in records}
    assert ("codes/q0", "coa", 40) in sizes and ("codes/q0", "coa", 80) in sizes and ("codes/q0", "full", None) in sizes
    small = next(r for r in records if r["example_id"] == "codes/q0" and r["chunk_tokens"] == 40)
    large = next(r for r in records if r["example_id"] == "codes/q0" and r["chunk_tokens"] == 80)
    assert (small["chunk_budget"], large["chunk_budget"]) == (40, 80)
    assert small["model_calls"] > large["model_calls"] and small["score"] == large["score"] == 1.0

    report = (out / "report.md").read_text(encoding="utf-8")
    for label in ("coa @40", "coa @80"):
        assert f"| codes | f1 | {label} | 75.0 | 25.0 to 100.0 | 4 | 1 |" in report
        assert f"| codes | {label} | 4 | 0.0 | 0.0 to 0.0 | 0 / 4 / 0 |" in report  # against full, same answers
    assert "chunk tokens: 40, 80; chunks read: 40, 80 tokens" in report
    assert "## Score against chunk size" in report and "| coa | 75.0 | 75.0 |" in report
    assert "Not chunked, for reference: full 75.0." in report
    assert (out / "score_vs_chunk_size.png").read_bytes().startswith(b"\x89PNG")

    grown = run(dataset, out, strategies=["coa", "full"], chunk_sizes=[40, 80, 120])
    assert (grown.ran, grown.skipped) == (5, 15)  # only coa at the new size


def test_the_report_names_model_settings_that_differ_from_the_defaults(dataset: Path, tmp_path: Path) -> None:
    backend = {"kind": "openai", "model": "fake", "base_url": "http://127.0.0.1:9/v1", "repeat_penalty": 1.1}
    run(dataset, tmp_path / "run", strategies=["full"], settings=fake_settings(backend=backend), report=True)
    report = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    assert "- other model settings: repeat_penalty 1.1\n" in report
    run(dataset, tmp_path / "plain", strategies=["full"], report=True)
    assert "other model settings" not in (tmp_path / "plain" / "report.md").read_text(encoding="utf-8")
    assert "prompts not the bundled ones" not in (tmp_path / "plain" / "report.md").read_text(encoding="utf-8")


def test_the_report_names_the_prompts_a_run_replaced(dataset: Path, tmp_path: Path) -> None:
    own = tmp_path / "prompts"
    own.mkdir()
    (own / "answer.txt").write_text(load_prompt("answer").text + "\nAnswer in one sentence.\n", encoding="utf-8")
    settings = fake_settings(prompts_dir=own)
    run(dataset, tmp_path / "run", strategies=["full"], settings=settings, report=True)
    report = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    assert f"- prompts not the bundled ones: answer (from {own})\n" in report
    info = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    (tmp_path / "run" / "run.json").write_text(
        json.dumps({**info, "settings": {**info["settings"], "prompts_dir": None}})
    )
    report = write_report(tmp_path / "run").read_text(encoding="utf-8")  # as if the bundled prompt had been edited
    assert "- prompts not the bundled ones: answer (the bundled ones have changed since this run)\n" in report


def test_a_chunk_size_below_the_minimum_is_refused(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="chunk sizes must be at least 32 tokens, not 8"):
        run(dataset, tmp_path / "run", chunk_sizes=[8, 512])
    assert not (tmp_path / "run" / RESULTS_FILE).exists()


def test_resuming_where_the_default_chunk_size_means_another_size_is_refused(dataset: Path, tmp_path: Path) -> None:
    """Without a chunk size, coa reads the model's calibrated size: a run resumed on a machine without
    that calibration would mix two chunk sizes under one key."""
    out, calibrations = tmp_path / "run", tmp_path / "calibration.json"
    calibrations.write_text(json.dumps({"format": 1, "models": {"fake": {"effective_tokens": 50}}}), encoding="utf-8")
    backend = replace(fake_backend(), recommended_chunk_tokens=80)
    default = {"chunk_tokens": None, "calibration_file": str(calibrations)}
    run(dataset, out, backend, strategies=["full"], limit=1, settings=fake_settings(chunking=default))
    assert "default_chunk_tokens" not in json.loads((out / "run.json").read_text(encoding="utf-8"))  # not used yet
    run(dataset, out, backend, strategies=["full", "coa"], limit=2, settings=fake_settings(chunking=default))
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["default_chunk_tokens"] == 50
    assert {r["chunk_budget"] for r in read_records(out) if r["strategy"] == "coa"} == {50}

    elsewhere = fake_settings(chunking={"chunk_tokens": None, "calibration_file": str(tmp_path / "none.json")})
    message = r"read the model's default chunk size, 50 tokens, but here it is 80 \(the backend's recommendation; cal"
    with pytest.raises(ConfigError, match=message):
        run(dataset, out, backend, strategies=["full", "coa"], limit=3, settings=elsewhere)
    assert len(read_records(out)) == 4  # nothing ran
    resumed = run(dataset, out, backend, strategies=["full", "coa"], limit=3, settings=fake_settings(chunking=default))
    assert resumed.ran == 2
