"""End to end with the embedded model: ``docqa eval run`` on two real L-Eval questions, then resume and report.

Kept quick on two busy cores: one real L-Eval document (TOEFL lectures, ~3.5k tokens), two of its
questions, ``rag`` and ``full`` at a 768-token window, and short answers (an option letter is
all L-Eval asks for).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from eval.cli import add_eval_commands, run_eval_command
from eval.store import read_records

pytestmark = pytest.mark.real_model

TPO = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "leval" / "Closed-ended-tasks" / "tpo.jsonl"
WINDOW = 768


def docqa_eval(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="docqa")
    add_eval_commands(parser.add_subparsers(dest="command", required=True))
    return run_eval_command(parser.parse_args(["eval", *argv]))


def test_eval_run_with_the_embedded_model_on_real_leval_questions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = tmp_path / "tpo.jsonl"
    dataset.write_text(TPO.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    monkeypatch.setenv("DOCQA_RETRIEVAL__INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("DOCQA_MANAGER__MAX_TOKENS", "16")
    out = tmp_path / "run"
    options = ["--dataset", str(dataset), "--strategies", "rag,full", "--limit", "2", "--out", str(out)]
    options += ["--context-window", str(WINDOW), "--chunk-tokens", "256", "--top-k", "4"]

    assert docqa_eval("run", *options) == 0
    printed = capsys.readouterr()
    assert "| tpo | choice | rag |" in printed.out and "4/4" in printed.err  # the report, and the progress bar

    records = read_records(out)
    assert sorted((r["example_id"].split("/")[0], r["strategy"]) for r in records) == [
        ("tpo", "full"), ("tpo", "full"), ("tpo", "rag"), ("tpo", "rag"),
    ]  # fmt: skip
    for record in records:
        assert record["error"] is None, record["error"]
        assert record["prediction"].strip() and record["score"] in (0.0, 1.0)
        assert record["model_calls"] == 1 and 0 < record["completion_tokens"] <= 16
        assert 150 < record["prompt_tokens"] <= WINDOW  # real llama.cpp counts, within the window
        assert record["doc_tokens"] > 3000
    report = (out / "report.md").read_text(encoding="utf-8")
    for strategy in ("rag", "full"):
        assert f"| tpo | choice | {strategy} | " in report
        assert "| 2 | 0 |" in next(line for line in report.splitlines() if f"| {strategy} | " in line)
    for plot in ("score_by_strategy.png", "score_vs_length.png"):
        assert (out / plot).read_bytes().startswith(b"\x89PNG")

    # The same command again: everything is recorded, so nothing runs and no model is even loaded.
    assert docqa_eval("run", *options, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["ran"], summary["skipped"], summary["model_calls"]) == (0, 4, 0)

    # Forget the results but keep the response cache: everything runs again, without a model call.
    (out / "results.jsonl").unlink()
    assert docqa_eval("run", *options, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["ran"], summary["model_calls"], summary["cache_hits"]) == (4, 0, 4)
    again = {(r["example_id"], r["strategy"]): r for r in read_records(out)}
    for record in records:
        replayed = again[(record["example_id"], record["strategy"])]
        for field in ("prediction", "score", "prompt_tokens", "completion_tokens"):
            assert replayed[field] == record[field]

    report = (out / "report.md").read_text(encoding="utf-8")
    (out / "report.md").unlink()
    assert docqa_eval("report", str(out)) == 0
    assert (out / "report.md").read_text(encoding="utf-8") == report
    assert "| tpo | choice | full | " in capsys.readouterr().out
