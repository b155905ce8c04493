"""Metrics on hand-worked examples, including the edge cases: empty prediction, several references, extra words."""

from __future__ import annotations

import doctest
import importlib

import pytest

from eval.metrics import (
    best_over_references,
    choice_match,
    contains_match,
    declines,
    exact_match,
    final_number,
    multi_choice_match,
    normalize_answer,
    number_match,
    option_letters,
    reference_letters,
    rouge_l,
    score_prediction,
    token_f1,
    true_false_match,
)


@pytest.mark.parametrize("module", ["eval.metrics", "eval.datasets", "eval.store"])
def test_docstring_examples(module: str) -> None:
    # eval/ is not among pytest's doctest paths, so its examples are run here.
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_normalisation_lowercases_and_drops_punctuation_articles_and_extra_space() -> None:
    assert normalize_answer("  The Eiffel-Tower,  in an  instant! ") == "eiffeltower in instant"
    assert normalize_answer("Theatre") == "theatre"  # "the" only as a word


def test_exact_match() -> None:
    assert exact_match("The Eiffel Tower!", "eiffel tower") == 1.0
    assert exact_match("The Eiffel Tower in Paris", "Eiffel Tower") == 0.0  # extra words
    assert exact_match("", "Eiffel Tower") == 0.0


def test_token_f1_by_hand() -> None:
    # prediction [cat, sat], reference [cat, sat, down]: P = 2/2, R = 2/3, F1 = 2·1·⅔ / (1 + ⅔) = 0.8
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    # extra words: [paris, is, capital, of, france] vs [paris]: P = 1/5, R = 1, F1 = 1/3
    assert token_f1("Paris is the capital of France.", "Paris") == pytest.approx(1 / 3)
    # a repeated token counts once per occurrence in the reference: P = 1/2, R = 1
    assert token_f1("cat cat", "cat") == pytest.approx(2 / 3)
    assert token_f1("dog", "cat") == 0.0


def test_token_f1_empty_prediction_scores_zero_unless_the_reference_is_empty_too() -> None:
    assert token_f1("", "Paris") == 0.0
    assert token_f1("the", "Paris") == 0.0  # nothing left after normalisation
    assert token_f1("", "") == 1.0


def test_several_references_take_the_best() -> None:
    # "in 1966" vs "1966": P = 1/2, R = 1 → 2/3; vs "July 1966": P = 1/2, R = 1/2 → 1/2
    assert best_over_references(token_f1, "in 1966", ["July 1966", "1966"]) == pytest.approx(2 / 3)
    assert best_over_references(exact_match, "1966", ["July 1966", "1966."]) == 1.0
    assert best_over_references(token_f1, "anything", []) == 0.0
    scores = score_prediction("in 1966", ["July 1966", "1966"], "f1")
    assert scores == {"score": pytest.approx(2 / 3), "exact_match": 0.0, "f1": pytest.approx(2 / 3)}


def test_rouge_l_by_hand() -> None:
    # LCS of [the cat sat on the mat] and [the cat is on the mat] is [the cat on the mat]: 5 of 6 each way
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    # extra words: LCS 2, P = 2/6, R = 2/2, F = 0.5
    assert rouge_l("well the cat is there now", "cat is") == pytest.approx(0.5)
    assert rouge_l("", "the cat") == 0.0
    assert score_prediction("the cat", ["a dog", "the cat"], "rouge_l")["score"] == 1.0


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("B", "B"),
        ("(C) They were careless.", "C"),
        ("The answer is D.", "D"),
        ("Based on the passage, B", "B"),
        ("A. to study human form and movement", "A"),
        ("A careful reader picks D", "A"),  # a leading "A" is taken as the option, as L-Eval does
        ("I think a dog ate it, so A is wrong and C is right", "C"),  # "A is": read as the article
        ("It was A tall man: D", "D"),  # an "A" inside a sentence before a lower-case word is the article
        ("I don't know", ""),
        ("", ""),
    ],
)
def test_option_letters(prediction: str, expected: str) -> None:
    assert option_letters(prediction) == expected


def test_reference_letters_come_from_the_first_word() -> None:
    assert reference_letters("(B) Their subconscious knew it") == "B"
    assert reference_letters("ABD") == "ABD"
    assert reference_letters("DB") == "BD"


def test_choice_match_compares_option_letters() -> None:
    reference = "(B) Their subconscious knew that Korvin was an insoluble problem."
    assert choice_match("B", reference) == 1.0
    assert choice_match("(B) Their subconscious, I believe.", reference) == 1.0
    assert choice_match("C", reference) == 0.0
    assert choice_match("", reference) == 0.0
    assert choice_match("Their subconscious knew", reference) == 0.0  # no letter: no guess, unlike L-Eval


def test_multi_choice_gives_partial_credit_for_a_strict_subset() -> None:
    assert multi_choice_match("ABD", "ABD") == 1.0
    assert multi_choice_match("A, B and D", "ABD") == 1.0
    assert multi_choice_match("D B A", "ABD") == 1.0
    assert multi_choice_match("AB", "ABD") == 0.25
    assert multi_choice_match("ABC", "ABD") == 0.0  # one wrong option spoils it
    assert multi_choice_match("", "ABD") == 0.0
    assert multi_choice_match("C", "C") == 1.0


def test_number_match_reads_the_final_number() -> None:
    assert final_number("Janet sells 16 - 3 - 4 = 9 eggs at $2, so she makes 18 dollars.") == "18"
    assert final_number("The answer is 18.\n\nQuestion: next") == "18"
    assert number_match("She makes 9 * 2 = 18 dollars a day.", "18") == 1.0
    assert number_match("The answer is 1,200", "1200") == 1.0
    assert number_match("The answer is 17", "18") == 0.0
    assert number_match("", "18") == 0.0
    assert number_match("no idea", "18") == 0.0


def test_true_false_match_reads_the_first_verdict() -> None:
    reference = "True [fact: False]"
    assert true_false_match("True.", reference) == 1.0
    assert true_false_match("That is true in the story, though false in reality", reference) == 1.0
    assert true_false_match("It is false.", reference) == 0.0
    assert true_false_match("", reference) == 0.0


def test_contains_match_looks_in_the_first_line_ignoring_case_and_spaces() -> None:
    reference = "The role of art in society"
    assert contains_match("The first topic was the role of art in society.", reference) == 1.0
    assert contains_match("The roleof Art in Society", reference) == 1.0
    assert contains_match("Art.\nThe role of art in society", reference) == 0.0  # only the first line counts
    assert contains_match("", reference) == 0.0


def test_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        score_prediction("a", ["a"], "bleu")


def test_declines_spots_the_answer_the_prompts_ask_for_when_the_text_lacks_one() -> None:
    assert declines("The text does not say.")
    assert declines("The notes DO NOT SAY who wrote it [c2].")
    assert declines("The document doesn’t say; it only lists the dates.")  # a typographic apostrophe
    assert not declines("")
    assert not declines("(B) The text says the budget was small.")
    assert not declines("She does not sayonara anyone.")
    assert score_prediction("The text does not say.", ["(C) The budget"], "choice")["score"] == 0.0
