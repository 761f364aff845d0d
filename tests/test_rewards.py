"""Metrics against hand-computed values and the reference libraries."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer

from prompt_env import rewards
from prompt_env.tasks import Example


def labelled(label: int) -> Example:
    return Example(fields={"sentence": "x"}, label=label)


def refs(*answers: str) -> Example:
    return Example(fields={"q": "x"}, references=answers)


def test_accuracy() -> None:
    assert rewards.accuracy(np.log([0.2, 0.8]), labelled(1)) == 1.0
    assert rewards.accuracy(np.log([0.2, 0.8]), labelled(0)) == 0.0


def test_margin_piecewise() -> None:
    # p = (0.2, 0.7, 0.1): gold 1 wins by 0.5 -> 2.0 * 0.5; gold 0 loses by 0.5 -> 1.8 * -0.5
    logprobs = np.log([0.2, 0.7, 0.1]) - 3.0  # unnormalised log-probs renormalise
    assert rewards.label_margin(logprobs, labelled(1)) == pytest.approx(1.0)
    assert rewards.label_margin(logprobs, labelled(0)) == pytest.approx(-0.9)
    assert rewards.label_margin(logprobs, labelled(2), right_scale=200, wrong_scale=180) == pytest.approx(-108.0)
    assert rewards.get_reward("margin", right_scale=200)(logprobs, labelled(1)) == pytest.approx(100.0)


def test_accuracy_margin_orders_by_accuracy_then_confidence() -> None:
    sure, unsure, wrong = np.log([0.05, 0.95]), np.log([0.45, 0.55]), np.log([0.9, 0.1])
    assert rewards.accuracy_margin(sure, labelled(1)) == pytest.approx(1.0 + 0.002 * 1.8)
    assert rewards.accuracy_margin(sure, labelled(1)) > rewards.accuracy_margin(unsure, labelled(1)) > 1.0
    # on 131 inputs, one more right answer outweighs any difference in margins
    n = 131
    worse = [rewards.accuracy_margin(sure, labelled(1))] * 60 + [rewards.accuracy_margin(np.log([0.5001, 0.4999]), labelled(1))] * (n - 60)
    better = [rewards.accuracy_margin(unsure, labelled(1))] * 61 + [rewards.accuracy_margin(wrong, labelled(1))] * (n - 61)
    assert np.mean(better) > np.mean(worse)
    assert "accuracy_margin" in rewards.list_rewards("classification")


def test_label_errors() -> None:
    with pytest.raises(ValueError, match="has label 3"):
        rewards.accuracy([0.0, 0.0], labelled(3))
    with pytest.raises(ValueError, match="has no label"):
        rewards.accuracy([0.0, 0.0], refs("a"))


def test_normalize_and_exact_match() -> None:
    assert rewards.normalize_answer("The  Eiffel-Tower, an icon!") == "eiffeltower icon"
    assert rewards.exact_match("the Eiffel Tower.", refs("Louvre", "Eiffel tower")) == 1.0
    assert rewards.exact_match("Eiffel", refs("Eiffel tower")) == 0.0


def test_token_f1_hand_computed() -> None:
    # prediction tokens: [cat, sat, on, mat]; reference: [cat, sat]: P = 2/4, R = 1 -> F1 = 2/3
    assert rewards.token_f1("the cat sat on the mat", refs("a cat sat")) == pytest.approx(2 / 3)
    assert rewards.token_f1("dog", refs("cat")) == 0.0
    assert rewards.token_f1("cat", refs("dog", "cat")) == 1.0  # best reference


def test_rouge_l_matches_library() -> None:
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    prediction, reference = "police killed the gunman", "the gunman was killed by police"
    expected = scorer.score(reference, prediction)["rougeL"].fmeasure
    assert rewards.rouge_l(prediction, refs(reference)) == pytest.approx(expected)
    assert rewards.rouge_l(prediction, refs("nothing alike", reference)) == pytest.approx(expected)


def test_chrf_and_bleu_match_library() -> None:
    prediction, reference = "Das Haus ist klein", "Das Haus ist sehr klein"
    chrf = sacrebleu.sentence_chrf(prediction, [reference]).score / 100
    bleu = sacrebleu.sentence_bleu(prediction, [reference]).score / 100
    assert rewards.chrf(prediction, refs(reference)) == pytest.approx(chrf)
    assert rewards.bleu(prediction, refs(reference)) == pytest.approx(bleu)
    assert 0.0 < bleu < 1.0 and 0.0 < chrf < 1.0


def test_zscore_per_input() -> None:
    scores = np.array([[1.0, 5.0], [3.0, 5.0]])  # prompts x inputs
    z = rewards.zscore_per_input(scores)
    assert z[:, 0] == pytest.approx([-1.0, 1.0], abs=1e-6)
    assert z[:, 1] == pytest.approx([0.0, 0.0])
    assert rewards.zscore_per_input(scores.T, input_axis=0) == pytest.approx(z.T)


def test_improvement_and_token_cost() -> None:
    assert rewards.improvement(0.75, 0.5) == 0.25
    assert rewards.token_cost(1.0, 100, cost_per_token=0.001) == pytest.approx(0.9)
    with pytest.raises(ValueError):
        rewards.token_cost(1.0, -1)


def test_registry() -> None:
    assert {"accuracy", "margin", "exact_match", "f1", "rouge_l", "chrf", "bleu"} <= set(rewards.list_rewards())
    assert "accuracy" not in rewards.list_rewards("generation")

    def length_bonus(prediction: str, example: Example, per_char: float = 0.1) -> float:
        return per_char * len(prediction)

    rewards.register_reward("test_length", length_bonus, "generation", overwrite=True)
    reward = rewards.get_reward("test_length", per_char=0.5)
    assert isinstance(reward, rewards.Reward)
    assert reward.name == "test_length" and reward.kind == "generation"
    assert reward("abcd", refs("x")) == 2.0
    with pytest.raises(ValueError, match="already registered"):
        rewards.register_reward("test_length", length_bonus, "generation")
    with pytest.raises(ValueError, match="does not take options"):
        rewards.get_reward("test_length", nope=1)
    with pytest.raises(ValueError, match="unknown reward 'nope'; available"):
        rewards.get_reward("nope")
    with pytest.raises(ValueError, match="kind must be one of"):
        rewards.register_reward("bad", length_bonus, "ranking")  # type: ignore[arg-type]
    assert math.isfinite(rewards.get_reward("margin")(np.array([-1.0, -2.0]), labelled(0)))


def test_classification_rewards_ignore_a_shift_of_all_label_scores() -> None:
    """Calibrated scores are renormalised log-probs: any common shift gives the same rewards."""
    row = np.log([0.2, 0.7, 0.1])
    for shift in (-3.0, 0.0, 5.5):
        for gold in range(3):
            assert rewards.accuracy(row + shift, labelled(gold)) == rewards.accuracy(row, labelled(gold))
            assert rewards.label_margin(row + shift, labelled(gold)) == pytest.approx(
                rewards.label_margin(row, labelled(gold)))
