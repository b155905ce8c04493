"""Answer scores as the long-document QA benchmarks define them; each is in [0, 1], best over references.

- ``exact_match`` and ``f1``: SQuAD normalisation (lower case, no punctuation, no articles ``a``,
  ``an``, ``the``, whitespace collapsed), then equality or token-overlap F1.
- ``rouge_l``: ROUGE-L F-measure from ``rouge-score`` (no stemming, as L-Eval scores it).
- ``choice`` and ``multi_choice``: L-Eval's closed-ended multiple choice. The option letters A–D are
  read from the prediction and compared with the reference's (``"(B) Their …"`` → ``B``). With
  several correct options (``multi_choice``, e.g. coursera), a strict subset of them scores 0.25.
  Unlike L-Eval, a prediction with no option letter scores 0 instead of being guessed as ``A``.
- ``number``: the final number, GSM-style (``"… The answer is 18."`` → ``18``).
- ``true_false``: the first ``true``/``false`` in the prediction against the reference's.
- ``contains``: the reference, ignoring case and spaces, appears in the prediction's first line.

>>> score_prediction("The Cat sat.", ["a cat sat down"], "f1")["score"]
0.8
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from agents.errors import MissingDependencyError

ScoreFn = Callable[[str, str], float]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
# An option letter standing alone ("B", "(B)", "B.", "Answer: B") or a run of them ("ABD").
_OPTION_TOKEN = re.compile(r"(?<![A-Za-z0-9])([A-D]{1,4})(?![A-Za-z0-9])")
_ARTICLE_A_AFTER = re.compile(r"\s+[a-z]")
_ANSWER_IS = re.compile(r"[Tt]he answer is:?\s*\$?(\S+)")
_TRUE_FALSE = re.compile(r"true|false")
_DECLINES = re.compile(r"\b(?:does|do|did)(?: not|n[’']t) say\b", re.IGNORECASE)
MULTI_CHOICE_PARTIAL = 0.25
"""L-Eval's credit for picking some but not all of several correct options."""


def normalize_answer(text: str) -> str:
    """SQuAD normalisation.

    >>> normalize_answer("The  Cat, sat!")
    'cat sat'
    """
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised strings are equal."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall after normalisation; 1.0 when both are empty.

    >>> round(token_f1("cat sat on mat", "the cat sat"), 3)
    0.667
    """
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    try:
        from rouge_score import rouge_scorer
    except ImportError as error:
        raise MissingDependencyError(
            "ROUGE-L needs the rouge-score package", help="pip install 'docqa[eval]'"
        ) from error
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of tokens)."""
    return float(_rouge_scorer().score(reference, prediction)["rougeL"].fmeasure)


def option_letters(text: str, *, multiple: bool = False) -> str:
    """The option letters a prediction picks, sorted: the first one, or with ``multiple`` all of them.

    A capital ``A`` followed by a lower-case word is the article, not an option, except at the start.

    >>> option_letters("I think (C) is right")
    'C'
    >>> option_letters("B and D, as A careful reader sees.", multiple=True)
    'BD'
    """
    text, letters = text.strip(), ""
    for match in _OPTION_TOKEN.finditer(text):
        token = match.group(1)
        if token == "A" and match.start() > 0 and _ARTICLE_A_AFTER.match(text, match.end()):
            continue  # the article
        if not multiple:
            return token[0]
        letters += token
    return "".join(sorted(set(letters)))


def reference_letters(reference: str) -> str:
    """The option letters of a reference answer: its first word without brackets (``"(B) …"`` → ``B``)."""
    words = reference.split()
    return "".join(sorted(set(re.sub(r"[^A-D]", "", words[0])))) if words else ""


def choice_match(prediction: str, reference: str) -> float:
    """1.0 when the first option letter of the prediction is the reference's."""
    expected = reference_letters(reference)
    return float(bool(expected) and option_letters(prediction) == expected)


def multi_choice_match(prediction: str, reference: str) -> float:
    """1.0 for exactly the reference's options; 0.25 for a non-empty strict subset of them."""
    expected, predicted = reference_letters(reference), option_letters(prediction, multiple=True)
    if not predicted or not expected:
        return 0.0
    if predicted == expected:
        return 1.0
    return MULTI_CHOICE_PARTIAL if set(predicted) < set(expected) else 0.0


def final_number(text: str) -> str:
    """The answer number, L-Eval's way: after "The answer is", else the last number of the first paragraph;
    digits only, up to a decimal point.

    >>> final_number("She sells 9 eggs for $2 each, so she makes 18 dollars.\\n\\nNext question")
    '18'
    >>> final_number("The answer is 1,250.5")
    '1250'
    """
    found = _ANSWER_IS.search(text)
    if found:
        word = found.group(1)
    else:
        candidates = [w for w in text.split("\n\n")[0].split() if any(c.isdigit() for c in w)]
        word = candidates[-1] if candidates else ""
    digits = ""
    for char in word:
        if char == ".":
            break
        if char.isdigit():
            digits += char
    return digits


def number_match(prediction: str, reference: str) -> float:
    """1.0 when both hold the same final number."""
    expected = final_number(reference)
    return float(bool(expected) and final_number(prediction) == expected)


def _first_true_false(text: str) -> str:
    found = _TRUE_FALSE.search(text.lower())
    return found.group(0) if found else ""


def true_false_match(prediction: str, reference: str) -> float:
    """1.0 when the first true/false of the prediction is the reference's (before any ``[fact: …]``)."""
    expected = _first_true_false(reference.split("[fact:")[0])
    return float(bool(expected) and _first_true_false(prediction) == expected)


def contains_match(prediction: str, reference: str) -> float:
    """1.0 when the reference appears in the prediction's first non-trivial line (case and spaces ignored)."""
    lines = [line for line in prediction.split("\n") if len(line) > 1]
    first = lines[0] if lines else prediction

    def squash(text: str) -> str:
        return text.lower().replace(" ", "")

    return float(bool(reference.strip()) and squash(reference) in squash(first))


METRICS: dict[str, ScoreFn] = {
    "exact_match": exact_match,
    "f1": token_f1,
    "rouge_l": rouge_l,
    "choice": choice_match,
    "multi_choice": multi_choice_match,
    "number": number_match,
    "true_false": true_false_match,
    "contains": contains_match,
}
"""Every metric by name; a task's examples are scored with one of them."""


def best_over_references(metric: ScoreFn, prediction: str, references: Sequence[str]) -> float:
    """The best score over the references (0.0 without any).

    >>> best_over_references(exact_match, "Paris", ["London", "paris."])
    1.0
    """
    return max((metric(prediction, reference) for reference in references), default=0.0)


def declines(prediction: str) -> bool:
    """Whether the answer says the text does not say: what docqa's answer prompts ask a model to write
    when it finds no answer. Such an answer scores 0 like a wrong one; the report counts them apart.

    >>> declines("The text does not say."), declines("The notes don't say [c2]"), declines("Yes [c1]")
    (True, True, False)
    """
    return bool(_DECLINES.search(prediction))


def score_prediction(prediction: str, references: Sequence[str], metric: str) -> dict[str, float]:
    """``score`` by the task's ``metric``, with ``exact_match`` and ``f1`` alongside for comparison."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    return {
        "score": best_over_references(METRICS[metric], prediction, references),
        "exact_match": best_over_references(exact_match, prediction, references),
        "f1": best_over_references(token_f1, prediction, references),
    }
