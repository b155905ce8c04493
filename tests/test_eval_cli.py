"""The ``docqa eval`` argument parsing and the ``report`` command (the real run is in test_eval_real_model)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from agents.cli import settings_from_args
from agents.errors import InputError
from agents.settings import Settings
from eval.cli import _strategies, add_eval_commands, run_eval_command
from eval.datasets import dataset_paths
from eval.runner import run_eval
from eval.store import fingerprint_differences, run_fingerprint
from tests.eval_fake_run import fake_backend, fake_settings, write_code_word_dataset


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="docqa")
    add_eval_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["eval", *argv])


def test_run_options_reuse_the_ask_options() -> None:
    args = parse(
        "run", "--dataset", "a.jsonl,b.jsonl", "--dataset", "c.jsonl", "--out", "runs/x",
        "--context-window", "2048", "--chunk-tokens", "512,1024", "--limit", "5", "--concurrency", "2",
        "--backend", "transformers", "--compression", "homer", "--cache-budget", "2048", "--repeat-penalty", "1.1",
    )  # fmt: skip
    assert dataset_paths(args.dataset) == [Path("a.jsonl"), Path("b.jsonl"), Path("c.jsonl")]
    assert (args.limit, args.seed, args.concurrency, args.retry_errors) == (5, 0, 2, False)
    settings = settings_from_args(args)
    assert (settings.backend.context_window, settings.chunking.chunk_tokens) == (2048, None)
    assert (settings.backend.compression, settings.backend.cache_budget) == ("homer", 2048)
    # decoding options change answers, so a run folder made without them refuses to resume with them
    assert "settings.backend.repeat_penalty: None → 1.1" in fingerprint_differences(
        run_fingerprint(Settings(), 0), run_fingerprint(settings, 0)
    )
    assert args.chunk_sweep == [512, 1024]  # compared within the run, see test_eval_runner
    assert _strategies(args) == ["coa", "rag-reorder", "full"]
    assert _strategies(parse("run", "--dataset", "a", "--out", "o", "--strategies", "full, rag")) == ["full", "rag"]
    assert _strategies(parse("run", "--dataset", "a", "--out", "o", "--strategy", "coa-rag")) == ["coa-rag"]


def test_run_needs_a_dataset_and_an_out_folder(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("run", "--out", "runs/x")
    assert "--dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("run", "--dataset", "a.jsonl")


def test_report_command_rewrites_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = write_code_word_dataset(tmp_path / "codes.jsonl", 2)
    out = tmp_path / "run"
    run_eval([dataset], ["full"], None, 0, fake_settings(), out, backend_factory=lambda _: fake_backend(), report=False)
    assert not (out / "report.md").exists()

    assert run_eval_command(parse("report", str(out))) == 0
    assert "| codes | f1 | full | 100.0 | 100.0 to 100.0 | 2 | 0 |" in capsys.readouterr().out
    assert (out / "report.md").exists() and (out / "score_by_strategy.png").exists()


def test_report_on_a_folder_without_results_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no results.jsonl") as raised:
        run_eval_command(parse("report", str(tmp_path)))
    assert str(tmp_path) in str(raised.value)


def test_compare_pairs_strategies_across_run_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two runs over the same questions (here: the same ids, the second with two wrong references)."""
    for folder in ("right", "wrong"):
        (tmp_path / folder).mkdir()
    right = write_code_word_dataset(tmp_path / "right" / "codes.jsonl", 3)
    wrong = write_code_word_dataset(tmp_path / "wrong" / "codes.jsonl", 3, wrong=[0, 1])
    for dataset, out in ((right, tmp_path / "a"), (wrong, tmp_path / "b")):
        run_eval([dataset], ["full"], None, 0, fake_settings(), out, backend_factory=lambda _: fake_backend())

    assert run_eval_command(parse("compare", str(tmp_path / "a"), str(tmp_path / "b"))) == 0
    printed = capsys.readouterr().out
    assert "## Against full (a), on the same examples" in printed
    assert re.search(r"\| codes \| full \(b\) \| 3 \| -66\.7 \| -100\.0 to [-0-9.]+ \| 0 / 1 / 2 \|", printed)
    with pytest.raises(InputError, match="two run folders or more"):
        run_eval_command(parse("compare", str(tmp_path / "a")))
    with pytest.raises(InputError, match=r"no strategy 'coa' to compare with") as raised:
        run_eval_command(parse("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--baseline", "coa"))
    assert raised.value.help == "pick one of: full"
