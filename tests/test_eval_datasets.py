"""Dataset loaders: the real L-Eval files, and small LongBench-format and plain-format files written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.errors import InputError
from eval.datasets import (
    LEVAL_EXAM_HINT,
    dataset_paths,
    load_dataset,
    measure_lengths,
    sample_examples,
    select_examples,
)
from retrieval.documents import Document

LEVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "leval"
LEVAL_METRICS = {
    "coursera": "multi_choice",
    "gsm100": "number",
    "quality": "choice",
    "sci_fi": "true_false",
    "topic_retrieval_longchat": "contains",
    "tpo": "choice",
    "gov_report_summ": "rouge_l",
    "meeting_summ": "rouge_l",
    "multidoc_qa": "f1",
    "natural_question": "f1",
    "news_summ": "rouge_l",
    "paper_assistant": "rouge_l",
    "patent_summ": "rouge_l",
    "review_summ": "rouge_l",
    "scientific_qa": "f1",
    "tv_show_summ": "rouge_l",
}


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("task", sorted(LEVAL_METRICS))
def test_every_real_leval_file_loads_one_example_per_instruction(task: str) -> None:
    path = next(LEVAL.glob(f"*/{task}.jsonl"))
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    examples = load_dataset(path)

    assert len(examples) == sum(len(row["instructions"]) for row in rows)
    assert len({e.id for e in examples}) == len(examples)
    assert {e.task for e in examples} == {task}
    assert {e.metric for e in examples} == {LEVAL_METRICS[task]}
    first = examples[0]
    assert first.id == f"{task}/1/0"
    assert first.answers == (rows[0]["outputs"][0],)
    assert first.context == rows[0]["input"] and first.doc_chars == len(rows[0]["input"])
    last = examples[-1]
    assert last.id == f"{task}/{len(rows)}/{len(rows[-1]['instructions']) - 1}"


def test_leval_closed_questions_carry_leval_answer_hint_and_gsm_does_not() -> None:
    tpo = load_dataset(LEVAL / "Closed-ended-tasks" / "tpo.jsonl")[0]
    assert tpo.question.startswith("why did frantzen go to the sales barn\nA. to study human form")
    assert tpo.question.endswith(LEVAL_EXAM_HINT)
    assert tpo.answers == ("A",)
    gsm = load_dataset(LEVAL / "Closed-ended-tasks" / "gsm100.jsonl")[0]
    assert not gsm.question.endswith(LEVAL_EXAM_HINT)
    assert gsm.answers == ("18",)
    open_question = load_dataset(LEVAL / "Open-ended-tasks" / "natural_question.jsonl")[0]
    assert LEVAL_EXAM_HINT not in open_question.question


def test_inline_documents_become_one_document_to_read() -> None:
    example = load_dataset(LEVAL / "Closed-ended-tasks" / "tpo.jsonl")[0]
    (source,) = example.sources()
    assert isinstance(source, Document)
    assert source.text == example.context


def test_sampling_is_seeded_and_a_larger_sample_extends_a_smaller_one() -> None:
    quality = LEVAL / "Closed-ended-tasks" / "quality.jsonl"
    first = select_examples([quality], 5, seed=0)
    assert [e.id for e in first] == [e.id for e in select_examples([quality], 5, seed=0)]
    assert [e.id for e in first] != [e.id for e in select_examples([quality], 5, seed=1)]
    assert [e.id for e in select_examples([quality], 8, seed=0)][:5] == [e.id for e in first]
    # lengths: cl100k tokens, fewer than characters, the same for questions about one document
    assert all(e.doc_tokens is not None and e.doc_chars is not None and 0 < e.doc_tokens < e.doc_chars for e in first)
    everything = sample_examples(load_dataset(quality), None, seed=0)
    assert sorted(e.id for e in everything) == sorted(e.id for e in load_dataset(quality))


def test_limit_and_seed_apply_per_dataset_file() -> None:
    tpo, quality = LEVAL / "Closed-ended-tasks" / "tpo.jsonl", LEVAL / "Closed-ended-tasks" / "quality.jsonl"
    both = select_examples([tpo, quality], 3, seed=0)
    assert [e.task for e in both] == ["tpo"] * 3 + ["quality"] * 3
    assert [e.id for e in both[3:]] == [e.id for e in select_examples([quality], 3, seed=0)]


def test_longbench_format(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "hotpotqa.jsonl",
        [
            {"input": "Who wrote it?", "context": "Passage 1: Ann wrote it.", "answers": ["Ann"], "_id": "abc",
             "dataset": "hotpotqa", "length": 5, "all_classes": None},
            {"input": " Where? ", "context": "In Oslo.", "answers": ["Oslo", "Oslo, Norway"]},
        ],
    )  # fmt: skip
    first, second = load_dataset(path)
    assert (first.id, first.task, first.question, first.answers, first.metric) == (
        "hotpotqa/abc", "hotpotqa", "Who wrote it?", ("Ann",), "f1",
    )  # fmt: skip
    assert first.context == "Passage 1: Ann wrote it." and first.doc_chars == 24
    assert (second.id, second.question, second.answers) == ("hotpotqa/2", "Where?", ("Oslo", "Oslo, Norway"))


def test_longbench_summaries_are_scored_with_rouge(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "gov_report_e.jsonl",
        [{"input": "", "context": "A long report.", "answers": ["A summary."], "dataset": "gov_report_e"}],
    )
    assert load_dataset(path)[0].metric == "rouge_l"


def test_plain_format_with_text_or_files(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Alpha text.", encoding="utf-8")
    (docs / "b.md").write_text("# Beta\n\nBeta text.", encoding="utf-8")
    path = write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"id": "x1", "context": "Inline text.", "question": "What?", "answers": "Inline"},
            {"documents": ["docs/a.txt", "docs/b.md"], "question": "Which?", "answers": ["Beta"], "metric": "rouge_l"},
        ],
    )
    inline, files = load_dataset(path)
    assert (inline.id, inline.answers, inline.metric, inline.context) == ("mine/x1", ("Inline",), "f1", "Inline text.")
    assert files.id == "mine/2" and files.metric == "rouge_l"
    assert files.sources() == [str(docs / "a.txt"), str(docs / "b.md")]
    (measured,) = measure_lengths([files])
    assert measured.doc_chars is not None and measured.doc_chars >= len("Alpha text.") + len("Beta text.")
    assert measured.doc_tokens is not None and measured.doc_tokens > 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"context": "x", "question": "q", "answers": ["a"], "metric": "bleu"}, "unknown metric 'bleu'"),
        ({"question": "q", "answers": ["a"], "context": ""}, "neither context nor documents"),
        ({"context": "x", "question": "q", "answers": []}, "no reference answers"),
        ({"text": "x", "q": "y"}, "match no known dataset format"),
    ],
)
def test_unusable_examples_name_the_file(tmp_path: Path, row: dict[str, object], message: str) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [row])
    with pytest.raises(InputError, match=message) as raised:
        load_dataset(path)
    assert str(path) in str(raised.value)


def test_broken_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"context": "x", "question": "q", "answers": ["a"]}\n\n{"context": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.jsonl:3: not valid JSON"):
        load_dataset(path)
    with pytest.raises(InputError, match="cannot be read"):
        load_dataset(tmp_path / "missing.jsonl")


def test_example_ids_must_be_unique_across_datasets(tmp_path: Path) -> None:
    row = {"id": "1", "context": "x", "question": "q", "answers": ["a"]}
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = write_jsonl(tmp_path / "one" / "set.jsonl", [row])
    second = write_jsonl(tmp_path / "two" / "set.jsonl", [row])
    with pytest.raises(InputError, match="set/1"):
        select_examples([first, second], None, 0)


def test_dataset_paths_are_repeatable_comma_separated_or_folders(tmp_path: Path) -> None:
    for name in ("b.jsonl", "a.jsonl", "notes.txt"):
        (tmp_path / name).write_text("", encoding="utf-8")
    assert dataset_paths(["x.jsonl,y.jsonl", "z.jsonl"]) == [Path("x.jsonl"), Path("y.jsonl"), Path("z.jsonl")]
    assert dataset_paths([str(tmp_path)]) == [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    with pytest.raises(InputError, match="no dataset"):
        dataset_paths([" , "])
