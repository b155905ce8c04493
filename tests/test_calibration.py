"""``docqa calibrate``: the search with a fake reader of known reach, the store, chunk sizes following it,
and the real embedded model through the CLI."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agents import DocQA, Settings
from agents.backends import Backend
from agents.calibration import (
    PLACES,
    Calibration,
    LengthResult,
    apply_calibration,
    calibrate,
    load_calibrations,
    plant,
    save_calibration,
)
from agents.errors import ConfigError
from retrieval.documents import Document
from tests.conftest import SAMPLE
from tests.fakes import RecordingChatModel, words

FACT = re.compile(r"The access code for the ([a-z ]+) is (\d{5})\.")


def short_sighted_backend(reach: int, window: int = 4096) -> Backend:
    """A fake that finds the code only when the fact starts within the first ``reach`` words of its document."""

    def reply(prompt: str, _n: int) -> str:
        if "<document" not in prompt:
            return "The notes do not say."  # the manager of a coa run
        document = prompt.split("<document", 1)[1].rsplit("</document>", 1)[0]  # one block or several
        asked = re.search(r"What is the access code for the ([a-z ]+)\?", prompt)
        for match in FACT.finditer(document):
            if asked and match.group(1) == asked.group(1) and words(document[: match.start()]) < reach:
                return f"The code is {match.group(2)}."
        return "The document does not say."

    return Backend("fake-reader", RecordingChatModel(reply), context_window=window, count_tokens=words)


def settings(tmp_path: Path, **chunking: object) -> Settings:
    return Settings(chunking={"calibration_file": str(tmp_path / "calibration.json"), **chunking})


def test_plant_builds_a_context_of_about_the_length_with_the_fact_at_its_depth() -> None:
    sentences = [f"Filler sentence number {i} is here." for i in range(50)]  # 6 words each
    context, question, code = plant([(s, words(s)) for s in sentences], 200, 0.5, random.Random(1), words)
    fact = FACT.search(context)
    assert fact is not None and fact.group(2) == code and fact.group(1) in PLACES
    assert question == f"What is the access code for the {fact.group(1)}?"
    assert 190 <= words(context) <= 200
    assert 0.4 < words(context[: fact.start()]) / words(context) < 0.6


def test_the_effective_window_is_the_longest_length_read_reliably(tmp_path: Path) -> None:
    seen = []
    result = calibrate(
        settings(tmp_path), backend=short_sighted_backend(reach=200), lengths=[512, 64, 128, 256],
        filler=SAMPLE.read_text(encoding="utf-8"), on_trial=seen.append,
    )  # fmt: skip
    # at 256 words the fact at 90% depth (~230 words in) is out of reach: 4 of 6 < 0.8, so the search stops
    assert [(r.length, r.found, r.trials) for r in result.lengths] == [(64, 6, 6), (128, 6, 6), (256, 4, 6)]
    assert result.effective_tokens == 128 and not result.limited_by_window
    assert len(seen) == 18 and [t.found for t in seen[-6:]] == [True, True, True, True, False, False]
    assert all(t.code in t.answer for t in seen if t.found)


def test_a_model_that_reads_its_whole_window_is_limited_by_it(tmp_path: Path) -> None:
    result = calibrate(settings(tmp_path), backend=short_sighted_backend(reach=10_000, window=1536))
    tested = [r.length for r in result.lengths]
    assert tested == [256, 512, 1024] and result.effective_tokens == 1024 and result.limited_by_window


def test_nothing_read_means_no_effective_window(tmp_path: Path) -> None:
    backend = short_sighted_backend(reach=0)
    result = calibrate(settings(tmp_path), backend=backend, lengths=[64, 128], trials_per_depth=1)
    assert result.effective_tokens is None and [r.length for r in result.lengths] == [64]


def test_bad_options_and_a_window_too_small_are_refused(tmp_path: Path) -> None:
    backend = short_sighted_backend(reach=100, window=512)
    with pytest.raises(ConfigError, match="none of the lengths fit one call in this 512-token window"):
        calibrate(settings(tmp_path), backend=backend, lengths=[4096])
    with pytest.raises(ConfigError, match="depths must lie between 0 and 1"):
        calibrate(settings(tmp_path), backend=backend, depths=[1.5])
    with pytest.raises(ConfigError, match="min accuracy"):
        calibrate(settings(tmp_path), backend=backend, min_accuracy=0)


def stored(effective: int | None, model: str = "fake-reader") -> Calibration:
    return Calibration(model, effective, 4096, 0.8, [LengthResult(128, 6, 6)], date="2026-11-23")


def test_chunk_sizes_follow_the_stored_calibration_unless_told_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    save_calibration(path, stored(300))
    save_calibration(path, stored(900, model="another-model"))
    assert load_calibrations(path)["fake-reader"]["effective_tokens"] == 300
    document = " ".join(f"Sentence {i} of the long report says little." for i in range(400))

    def budget(**chunking: object) -> int:
        qa = DocQA(settings(tmp_path, **chunking), backend=short_sighted_backend(reach=10))
        return qa.ask("What is the access code for the net loft?", [Document("report.txt", document)]).chunk_budget

    assert budget() == 300
    assert budget(chunk_tokens=200) == 200  # an explicit size wins
    assert budget(use_calibration=False) > 3000  # the fake recommends nothing: the window's budget
    save_calibration(path, stored(None))  # a calibration that found nothing sets nothing
    assert budget() > 3000


def test_a_corrupt_calibration_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"calibration\.json: not a docqa calibration file"):
        apply_calibration(short_sighted_backend(reach=10), settings(tmp_path).chunking)


@pytest.mark.real_model
def test_the_cli_calibrates_the_embedded_model_and_its_chunks_follow(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    command = [
        sys.executable, "-m", "agents.cli", "calibrate", "--lengths", "64,128", "--depths", "0.5",
        "--trials", "1", "--json",
    ]  # fmt: skip
    environment = {**os.environ, "DOCQA_CHUNKING__CALIBRATION_FILE": str(path)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=environment, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["model"] == "llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf" and result["saved_to"] == str(path)
    assert [row["length"] for row in result["lengths"]][:1] == [64]
    for trial in result["trials"]:  # each verdict matches the answer the real model gave
        assert trial["found"] == (trial["code"] in trial["answer"]) and 40 <= trial["length"] <= 128
    # SmolLM2 reads a fact in 64 tokens of plain prose (it fails past a few hundred words)
    assert result["effective_tokens"] in (64, 128)
    assert load_calibrations(path)[result["model"]]["effective_tokens"] == result["effective_tokens"]
    qa = DocQA(Settings(chunking={"calibration_file": str(path)}))
    assert qa.backend.recommended_chunk_tokens == result["effective_tokens"]
