"""The KV-cache benchmark loses nothing it measured: each trial is logged as it ends, and a rerun resumes.

Runs ``bench/kv_compression.py`` as users do, with the real embedded model (SmolLM2) at 512 tokens, into a
temporary results folder. SmolLM2 rarely finds the key at any length, so only the bookkeeping is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agents.backends.llamacpp import embedded_model_path

pytestmark = pytest.mark.real_model

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench" / "kv_compression.py"
BOTH = ("transformers:none", "llamacpp:f16")


def run_bench(results: Path, seeds: int, *extra: str, configs: tuple[str, ...] = BOTH) -> str:
    command = [
        sys.executable, str(BENCH), "--model", str(embedded_model_path()), "--lengths", "512", "--depths", "0.5",
        "--threads", "1", "--seeds", str(seeds), "--results", str(results), "--configs", *configs, *extra,
    ]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(REPO)}  # this checkout's code, wherever the package is installed from
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def rows(results: Path) -> dict[str, dict[str, Any]]:
    saved = json.loads((results / "kv_compression.json").read_text(encoding="utf-8"))["rows"]
    return {row["config"]: row for row in saved}


def log_path(results: Path, config: str) -> Path:
    return results / "kv_trials" / f"{config.replace(':', '-')}-512.jsonl"


def logged(results: Path, config: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_path(results, config).read_text(encoding="utf-8").splitlines()]


def test_a_rerun_with_more_seeds_measures_only_the_new_trials(tmp_path: Path) -> None:
    out = run_bench(tmp_path, 1)
    first = {config: logged(tmp_path, config) for config in BOTH}
    assert {config: len(lines) for config, lines in first.items()} == dict.fromkeys(BOTH, 1)
    assert out.count("trial seed 0 depth 0.5") == 2
    assert {c: (r["trials"], r["runs"]) for c, r in rows(tmp_path).items()} == dict.fromkeys(BOTH, (1, 1))

    out = run_bench(tmp_path, 2)
    assert "trial seed 0" not in out and out.count("trial seed 1 depth 0.5") == 2
    for config in BOTH:
        lines = logged(tmp_path, config)
        assert [line["seed"] for line in lines] == [0, 1]
        assert lines[0] == first[config][0]  # seed 0 was not measured again
    measured = rows(tmp_path)
    assert {c: (r["trials"], r["runs"]) for c, r in measured.items()} == dict.fromkeys(BOTH, (2, 2))
    assert all(r["peak_mib"] == max(line["peak_mib"] for line in logged(tmp_path, c)) for c, r in measured.items())

    out = run_bench(tmp_path, 2)  # everything is logged: no trial runs, the same rows come back
    assert "trial seed" not in out
    assert {c: r["answers"] for c, r in rows(tmp_path).items()} == {c: r["answers"] for c, r in measured.items()}


def test_a_stopped_row_keeps_its_trials_and_the_row_measured_before(tmp_path: Path) -> None:
    config = ("transformers:none",)
    run_bench(tmp_path, 1, configs=config)
    measured = rows(tmp_path)

    # One second is too short to load torch and the model: the worker is stopped before its first trial.
    out = run_bench(tmp_path, 2, "--timeout", "1", configs=config)
    assert "stopped after 1 s" in out
    assert "1 trials kept in" in out and "the same command resumes from them" in out
    assert rows(tmp_path) == measured  # the failed rerun did not replace the measured row
    assert len(logged(tmp_path, "transformers:none")) == 1

    # A line cut short by a kill mid-write is dropped; the trial it held is measured again.
    with log_path(tmp_path, "transformers:none").open("a", encoding="utf-8") as log:
        log.write('{"seed": 1, "depth": 0.5, "answ')
    out = run_bench(tmp_path, 2, configs=config)
    assert "trial seed 1 depth 0.5" in out and "trial seed 0" not in out
    assert rows(tmp_path)["transformers:none"]["trials"] == 2
    assert [trial["seed"] for trial in logged(tmp_path, "transformers:none")] == [0, 1]  # every line whole
    assert "trial seed" not in run_bench(tmp_path, 2, configs=config)
