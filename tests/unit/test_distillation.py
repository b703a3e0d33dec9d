"""Notebook 07's distillation: the attacker's selection never reads the private set, and the
equivalence claim of extracted against original data reads its two one-sided tests."""

import pytest

from alignlab import claims
from alignlab.extraction.stages import attacker_selection

pytestmark = pytest.mark.unit


def _generation(i, question, answer, embedding):
    return {"id": i, "question": question, "answer": answer, "embedding": embedding}


def test_the_attacker_keeps_whole_distinct_samples_in_sampling_order_whatever_their_scores():
    found = [_generation(0, "How do I bake bread?", "Mix flour.", 0.1),
             _generation(1, "how do I  bake BREAD?", "Knead it.", 0.99),  # the same question: dropped
             _generation(2, "What is 2+2?", "", 0.99),  # no answer (cut off): dropped
             _generation(3, "", "An answer to nothing.", 0.99),
             _generation(4, "Name a prime.", "7.", 0.2),
             _generation(5, "Name a colour.", "Red.", 0.98)]
    assert [m["id"] for m in attacker_selection(found, 2)] == [0, 4]
    rescored = [dict(m, embedding=1 - m["embedding"]) for m in found]  # scores against the set change nothing
    assert attacker_selection(rescored, 3) == [m for m in rescored if m["id"] in (0, 4, 5)]


@pytest.mark.parametrize("low, high, discordant, verdict", [
    (-4.0, 6.0, 40, "reproduced"), (12.0, 30.0, 40, "not reproduced"), (-4.0, 16.0, 40, "inconclusive"),
    (0.0, 0.0, 0, "inconclusive"),  # no prompt on which the two differ: no interval, so no verdict
])
def test_the_equivalence_claim_follows_the_interval_and_the_margin(monkeypatch, low, high, discordant, verdict):
    equivalence = {"estimate": (low + high) / 2, "ci_low": low, "ci_high": high, "margin": 10.0,
                   "equivalent": -10.0 < low and high < 10.0, "mde": 8.0, "n_items": 200, "discordant": discordant}
    results = {"06_match": {"trained_vs_base": {}, "positive_control": {}},
               "07_distill": {"comparisons": {}, "equivalence": equivalence}}
    monkeypatch.setattr(claims, "load_results", lambda name, profile: results[name])
    (claim,) = [c for c in claims.extraction_claims("cpu") if "as well as distilling" in c["claim"]]
    assert claim["verdict"] == verdict and "+-10" in claim["ours"]


@pytest.mark.parametrize("answer, correct", [
    ("The answer is kinetic energy. It moves.", True),
    ("Kinetic energy, not potential energy.", False),  # names a distractor too
    ("The answer is energy.", False),  # only part of the option
    ("It is KINETIC   energy", True),  # case and spacing folded
    ("kinetic energetics", False),  # a word boundary, not a prefix
])
def test_a_sciq_answer_is_correct_when_it_names_the_option_and_no_distractor(answer, correct):
    from alignlab.extraction.ability import sciq_correct

    assert sciq_correct(answer, "kinetic energy", ["potential energy", "heat", "energy"]) is correct


def test_a_distractor_inside_the_correct_option_does_not_count_against_it():
    from alignlab.extraction.ability import sciq_correct

    assert sciq_correct("It is kinetic energy.", "kinetic energy", ["energy", "mass", "light"])


def _task_results(control_low, equivalence_low, equivalence_high, discordant=30):
    control = {"estimate": control_low + 5, "ci_low": control_low, "ci_high": control_low + 10, "mde": 8.0,
               "n_items": 200, "discordant": discordant}
    task = {"estimate": 0.0, "ci_low": equivalence_low, "ci_high": equivalence_high, "margin": 10.0, "mde": 6.0,
            "equivalent": -10 < equivalence_low and equivalence_high < 10, "n_items": 200, "discordant": 20}
    return {"06_match": {"trained_vs_base": {}, "positive_control": {}},
            "07_distill": {"comparisons": {}, "task_comparisons": {"sft - base": control}, "task_equivalence": task}}


@pytest.mark.parametrize("control_low, low, high, check, verdict", [
    (2.0, -4.0, 6.0, "passes", "reproduced"),
    (2.0, 12.0, 30.0, "passes", "not reproduced"),
    (-3.0, -4.0, 6.0, "fails", "not testable: post-training does not raise it"),  # nothing taught: no test
])
def test_the_task_accuracy_equivalence_is_testable_only_where_post_training_raises_accuracy(
        monkeypatch, control_low, low, high, check, verdict):
    results = _task_results(control_low, low, high)
    monkeypatch.setattr(claims, "load_results", lambda name, profile: results[name])
    rows = claims.extraction_claims("cpu")
    (control,) = [c for c in rows if "raises held-out task accuracy" in c["claim"]]
    (claim,) = [c for c in rows if "teaches the task ability" in c["claim"]]
    assert control["verdict"] == check and claim["verdict"] == verdict and "SciQ accuracy" in claim["ours"]
