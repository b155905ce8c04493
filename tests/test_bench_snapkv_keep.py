"""The snapkv diagnostic reports what snapkv really keeps, checked against the plain model.

Runs ``bench/snapkv_keep.py`` and ``bench/kv_compression.py`` as users do, with the real embedded model
(SmolLM2) at 512 tokens, into a temporary results folder. A reading that leaves every layer whole is
no compression, so it must keep every digit and answer what the uncompressed trial answered.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.backends.llamacpp import embedded_model_path

pytestmark = pytest.mark.real_model

REPO = Path(__file__).resolve().parent.parent
TRIAL = ("--length", "512", "--seed", "0", "--depth", "0.5", "--threads", "1")


def run(script: str, *args: str) -> None:
    command = [sys.executable, str(REPO / "bench" / script), "--model", str(embedded_model_path()), *args]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_reading_with_every_layer_whole_keeps_every_digit_and_answers_as_the_plain_model(tmp_path: Path) -> None:
    run("kv_compression.py", "--lengths", "512", "--depths", "0.5", "--seeds", "1", "--threads", "1",
        "--configs", "transformers:none", "--results", str(tmp_path))  # fmt: skip
    plain = json.loads((tmp_path / "kv_trials" / "transformers-none-512.jsonl").read_text(encoding="utf-8"))

    run("snapkv_keep.py", *TRIAL, "--readings", "16:5", "16:5:99", "--results", str(tmp_path))

    saved = json.loads((tmp_path / "snapkv_keep.json").read_text(encoding="utf-8"))
    (trial,) = saved.values()
    assert trial["key"] == plain["key"] and trial["prompt_tokens"] == plain["prompt_tokens"]
    digits = len(trial["key_positions"])
    assert digits >= 2  # the needle states the key twice, in one token or more each
    pruned, whole = trial["readings"]
    assert [r["reading"] for r in trial["readings"]] == ["16:5", "16:5:99"]
    assert whole["answer"] == plain["answer"]
    assert {head for layer in whole["kept"] for head in layer} == {"1" * digits}
    assert len(pruned["kept"]) == len(whole["kept"]) > 1  # one entry per layer
    assert all(len(head) == digits and set(head) <= {"0", "1"} for layer in pruned["kept"] for head in layer)
    assert any("0" in head for layer in pruned["kept"] for head in layer)  # 16 of ~500 positions drops some digit
