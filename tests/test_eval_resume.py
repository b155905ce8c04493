"""Resume after a crash: a real run in a subprocess, killed with SIGKILL part-way, then run again.

Every (example, strategy) must appear exactly once in the results, the report's counts must match,
and the model calls made before the kill must not be made again (they come from the cache).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from eval.store import RESULTS_FILE
from tests.eval_fake_run import write_code_word_dataset

REPO = Path(__file__).resolve().parent.parent
EXAMPLES, STRATEGIES = 10, ["coa", "full"]


def start_run(dataset: Path, out: Path, call_log: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.eval_fake_run", str(dataset), str(out), str(call_log), "--delay", "0.05"]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lines(path: Path, n: int, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_bytes().count(b"\n") >= n):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run wrote too few results in time"
        time.sleep(0.01)


def test_a_killed_run_resumes_without_running_anything_twice(tmp_path: Path) -> None:
    dataset = write_code_word_dataset(tmp_path / "codes.jsonl", EXAMPLES, explode=[4], wrong=[7])
    out, call_log = tmp_path / "run", tmp_path / "calls.log"
    results = out / RESULTS_FILE

    first = start_run(dataset, out, call_log)
    wait_for_lines(results, 5, first)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    recorded_before = results.read_bytes().count(b"\n")  # complete lines; a torn last one does not count
    assert recorded_before < EXAMPLES * len(STRATEGIES)  # killed part-way

    second = start_run(dataset, out, call_log)
    stdout, stderr = second.communicate(timeout=300)
    assert second.returncode == 0, stderr
    assert f"skipped {recorded_before} " in stdout

    records = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    keys = Counter((r["example_id"], r["strategy"]) for r in records)
    assert set(keys) == {(f"codes/q{i}", s) for i in range(EXAMPLES) for s in STRATEGIES}
    assert set(keys.values()) == {1}
    errors = {(r["example_id"], r["strategy"]) for r in records if r["error"]}
    assert errors == {("codes/q4", "coa"), ("codes/q4", "full")}

    # Only the call in flight at the kill can have been made twice: finished calls came from the cache.
    calls = call_log.read_text(encoding="utf-8").split()
    assert len(calls) - len(set(calls)) <= 1

    report = (out / "report.md").read_text(encoding="utf-8")
    for strategy in STRATEGIES:
        # 10 pairs per strategy: 9 answered (8 right, q7's reference is wrong), 1 failed
        assert re.search(rf"\| codes \| f1 \| {strategy} \| 88\.9 \| [\d.]+ to 100\.0 \| 9 \| 1 \| ", report), report
