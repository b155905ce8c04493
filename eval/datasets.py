"""Long-document QA datasets as a flat list of examples, whatever their file format.

Three JSONL formats, told apart by the keys of their first line:

- **L-Eval**: ``{"input": document, "instructions": [q, ...], "outputs": [a, ...], "evaluation": ...}``,
  one example per instruction; ids ``<task>/<line>/<instruction index>``.
- **LongBench**: ``{"context", "input", "answers": [...], "_id"?}``; ids ``<task>/<_id or line>``.
- **Plain**: ``{"id"?, "context" or "documents": [paths], "question", "answers": [...] or "...",
  "metric"?}``; document paths are relative to the JSONL file; ids ``<task>/<id or line>``.

The task is the file's stem (``quality.jsonl`` → ``quality``). Each task is scored with one metric
(see ``eval.metrics``): L-Eval's ``evaluation`` field decides it (``exam`` → option letters, the
final number, true/false or containment, whichever the references are; ``f1``; ``rouge`` →
ROUGE-L), LongBench's summarisation tasks use ROUGE-L, everything else token F1.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agents.backends.base import CountTokens, approximate_token_counter
from agents.errors import InputError
from agents.state import Source
from eval.metrics import METRICS
from retrieval.documents import Document

Row = tuple[int, dict[str, Any]]
"""A JSONL line number (from 1) and the object on it."""

LEVAL_EXAM_HINT = "\nPlease directly give the answer without any additional output or explanation."
"""What L-Eval's own harness appends to closed-ended questions (not to GSM's step-by-step ones)."""
_HINTED_METRICS = {"choice", "multi_choice", "true_false", "contains"}
LONGBENCH_ROUGE_TASKS = {"gov_report", "qmsum", "multi_news", "vcsum", "samsum"}
_OPTION_WORD = re.compile(r"\(?[A-D]{1,4}\)?[.:]?")
_NUMBER = re.compile(r"-?[\d,]*\d(\.\d+)?")


@dataclass(frozen=True)
class Example:
    """One question about one document (or set of files), with its reference answers."""

    id: str
    """Stable across runs and machines, e.g. ``"quality/3/7"``."""
    task: str
    question: str
    """What the pipeline is asked (for L-Eval exams, the instruction plus L-Eval's answer-format hint)."""
    answers: tuple[str, ...]
    metric: str
    """The ``eval.metrics.METRICS`` name this example is scored with."""
    context: str = ""
    """The document text, for formats that inline it."""
    documents: tuple[str, ...] = ()
    """File paths to read instead, for the plain format."""
    doc_chars: int | None = None
    doc_tokens: int | None = None
    """Document length in cl100k tokens (the same scale for every model); set by ``measure_lengths``."""

    def sources(self) -> list[Source]:
        """What ``DocQA.aask`` reads: the files, or the inline text as one document."""
        if self.documents:
            return list(self.documents)
        return [Document(source=f"{self.task} document", text=self.context)]


def read_jsonl(path: Path) -> list[Row]:
    """The non-blank lines of a JSONL file as objects; an error names the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise InputError(
            f"{path}: cannot be read: {error.strerror or error}", help="check the --dataset path"
        ) from error
    rows: list[Row] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(
                f"{path}:{number}: not valid JSON: {error.msg}", help="one JSON object per line"
            ) from error
        if not isinstance(row, dict):
            raise InputError(f"{path}:{number}: not a JSON object", help="one JSON object per line")
        rows.append((number, row))
    if not rows:
        raise InputError(f"{path}: no examples", help="the file is empty")
    return rows


def detect_format(row: dict[str, Any], path: Path) -> str:
    """``"leval"``, ``"longbench"`` or ``"plain"`` from an example's keys."""
    keys = set(row)
    if {"input", "instructions", "outputs"} <= keys:
        return "leval"
    if {"context", "input", "answers"} <= keys:
        return "longbench"
    if {"question", "answers"} <= keys and keys & {"context", "documents"}:
        return "plain"
    raise InputError(
        f"{path}: keys {sorted(keys)} match no known dataset format",
        help="expected L-Eval (input, instructions, outputs), LongBench (context, input, answers) "
        "or plain (context or documents, question, answers)",
    )


def exam_metric(references: Sequence[str]) -> str:
    """How L-Eval scores an ``exam`` task, judged from its references.

    >>> exam_metric(["(B) The boat", "A"]), exam_metric(["ABD", "C"]), exam_metric(["18", "1,200"])
    ('choice', 'multi_choice', 'number')
    >>> exam_metric(["True [fact: False]"]), exam_metric(["The role of art in society"])
    ('true_false', 'contains')
    """
    first_words = [reference.split()[0] if reference.split() else "" for reference in references]
    if all(_OPTION_WORD.fullmatch(word) for word in first_words):
        return "multi_choice" if any(len(re.sub(r"[^A-D]", "", w)) > 1 for w in first_words) else "choice"
    if all(_NUMBER.fullmatch(reference.strip()) for reference in references):
        return "number"
    if all(word in ("True", "False") for word in first_words):
        return "true_false"
    return "contains"


def leval_metric(rows: Sequence[Row]) -> str:
    """The task's metric: the most common scorable ``evaluation`` of its rows, else F1."""
    kinds = Counter(row.get("evaluation") for _, row in rows if row.get("evaluation") in ("exam", "f1", "rouge"))
    if not kinds:
        return "f1"
    kind = kinds.most_common(1)[0][0]
    if kind == "exam":
        return exam_metric([str(output) for _, row in rows for output in row["outputs"]])
    return "rouge_l" if kind == "rouge" else "f1"


def _leval_examples(path: Path, rows: Sequence[Row]) -> list[Example]:
    task, metric = path.stem, leval_metric(rows)
    hint = LEVAL_EXAM_HINT if metric in _HINTED_METRICS else ""
    examples = []
    for line, row in rows:
        instructions, outputs = row["instructions"], row["outputs"]
        if len(instructions) != len(outputs):
            raise InputError(f"{path}:{line}: {len(instructions)} instructions but {len(outputs)} outputs")
        for index, (instruction, output) in enumerate(zip(instructions, outputs, strict=True)):
            examples.append(
                Example(
                    f"{task}/{line}/{index}", task, instruction.strip() + hint, (str(output),), metric, row["input"]
                )
            )
    return examples


def _answers(value: Any, where: str) -> tuple[str, ...]:
    answers = (value,) if isinstance(value, str) else tuple(str(answer) for answer in value or ())
    if not answers:
        raise InputError(f"{where}: no reference answers", help="give at least one answer")
    return answers


def _longbench_examples(path: Path, rows: Sequence[Row]) -> list[Example]:
    task = path.stem
    examples = []
    for line, row in rows:
        name = str(row.get("dataset") or task).removesuffix("_e")
        metric = "rouge_l" if name in LONGBENCH_ROUGE_TASKS else "f1"
        answers = _answers(row["answers"], f"{path}:{line}")
        example_id = f"{task}/{row.get('_id', line)}"
        examples.append(Example(example_id, task, str(row["input"]).strip(), answers, metric, str(row["context"])))
    return examples


def _plain_example(path: Path, line: int, row: dict[str, Any]) -> Example:
    where, task = f"{path}:{line}", path.stem
    metric = row.get("metric", "f1")
    if metric not in METRICS:
        raise InputError(f"{where}: unknown metric {metric!r}", help=f"use one of {', '.join(METRICS)}")
    documents = row.get("documents") or ()
    if isinstance(documents, str):
        documents = [documents]
    paths = tuple(str(path.parent / document) for document in documents)
    if not paths and not row.get("context"):
        raise InputError(f"{where}: neither context nor documents", help="give the document text or file paths")
    answers = _answers(row["answers"], where)
    example_id = f"{task}/{row.get('id', line)}"
    return Example(example_id, task, str(row["question"]).strip(), answers, metric, str(row.get("context", "")), paths)


def load_dataset(path: str | Path) -> list[Example]:
    """Every example in one JSONL file, in file order, with the document length in characters."""
    path = Path(path)
    rows = read_jsonl(path)
    kind = detect_format(rows[0][1], path)
    if kind == "leval":
        examples = _leval_examples(path, rows)
    elif kind == "longbench":
        examples = _longbench_examples(path, rows)
    else:
        examples = [_plain_example(path, line, row) for line, row in rows]
    return [replace(e, doc_chars=len(e.context)) if not e.documents else e for e in examples]


def sample_examples(examples: Sequence[Example], limit: int | None, seed: int) -> list[Example]:
    """``limit`` examples drawn with ``seed`` (all, shuffled, without a limit).

    A larger limit with the same seed keeps the smaller sample as its first part, so a run can grow.
    """
    order = list(examples)
    random.Random(seed).shuffle(order)
    return order if limit is None else order[:limit]


def measure_lengths(examples: Iterable[Example], count_tokens: CountTokens | None = None) -> list[Example]:
    """The examples with ``doc_chars`` and ``doc_tokens`` filled in (each distinct document measured once)."""
    from retrieval.loaders import load_documents

    count = count_tokens or approximate_token_counter()
    measured: dict[Any, tuple[int, int]] = {}
    result = []
    for example in examples:
        key = example.documents or example.context
        if key not in measured:
            documents = load_documents(example.documents)
            text = "\n\n".join(d.text for d in documents) if example.documents else example.context
            measured[key] = (len(text), count(text))
        chars, tokens = measured[key]
        result.append(replace(example, doc_chars=chars, doc_tokens=tokens))
    return result


def dataset_paths(values: Iterable[str]) -> list[Path]:
    """``--dataset`` values (repeatable, comma-separated) as JSONL paths; a folder means its ``*.jsonl``."""
    paths: list[Path] = []
    for value in values:
        for part in filter(None, (p.strip() for p in value.split(","))):
            path = Path(part).expanduser()
            paths.extend(sorted(path.glob("*.jsonl")) if path.is_dir() else [path])
    if not paths:
        raise InputError("no dataset given", help="pass --dataset PATH.jsonl")
    return paths


def select_examples(datasets: Iterable[str | Path], limit: int | None, seed: int) -> list[Example]:
    """``limit`` examples per dataset file, sampled with ``seed``, measured; ids checked unique."""
    selected: list[Example] = []
    for path in datasets:
        selected.extend(sample_examples(load_dataset(path), limit, seed))
    duplicates = [i for i, n in Counter(e.id for e in selected).items() if n > 1]
    if duplicates:
        raise InputError(
            f"example ids occur more than once: {', '.join(duplicates[:5])}",
            help="give each dataset file a distinct name, and each plain example a distinct id",
        )
    return measure_lengths(selected)
