"""The RL-data arm (notebook 08): ORZ's template and its prefix, the question a generation wrote,
the verifiable reward, ORZ's data format, and the tests the claims read."""

import pytest

from alignlab import claims
from alignlab.extraction import rl

pytestmark = pytest.mark.unit


def test_the_prefix_is_the_template_up_to_the_question(smollm2_tokenizer):
    prefix = rl.extraction_prefix(smollm2_tokenizer)
    prompt = rl.rl_prompt(smollm2_tokenizer, "  What is 2 + 3?  ")
    assert prompt.startswith(prefix) and prompt[len(prefix):] == "What is 2 + 3?\n\nAssistant: <think>"
    assert prefix.startswith("<|im_start|>A conversation between User and Assistant.")  # ORZ puts BOS first
    assert prefix.endswith("This is the problem:\n")


def test_a_tokenizer_without_bos_gets_none(smollm2_tokenizer):
    smollm2_tokenizer.bos_token = None  # Qwen2.5's tokenizer has none
    assert rl.extraction_prefix(smollm2_tokenizer).startswith("A conversation")


@pytest.mark.parametrize("generation, question", [
    ("Tom has 3 cats. How many legs?\n\nAssistant: <think> 12", "Tom has 3 cats. How many legs?"),
    ("A question cut off before the assistant", "A question cut off before the assistant"),
    ("Ends at the end of text.<|endoftext|>", "Ends at the end of text."),
])
def test_the_written_question_ends_at_the_assistant_turn(generation, question):
    assert rl.written_question("PREFIX:" + generation, "PREFIX:") == question


def test_a_generation_without_the_prefix_is_refused():
    with pytest.raises(ValueError, match="does not start with the extraction prefix"):
        rl.written_question("something else", "PREFIX:")


@pytest.mark.parametrize("completion, number", [
    ("<think>so</think> <answer>42</answer>", "42"),
    ("<answer>\\boxed{1,234}</answer>", "1234"),
    ("<answer>first 3</answer> then <answer>it is 7.</answer>", "7"),
    ("the answer is \\boxed{5}", "5"),
    ("the answer is 42", None),  # untagged: ORZ scores only tagged answers
    ("<answer>none</answer>", None),
])
def test_the_final_answer_is_the_tagged_number(completion, number):
    assert rl.final_answer(completion) == number


def test_the_rewards_score_correctness_and_tags():
    completions = ["<answer>18</answer>", "<answer>17</answer>", "18"]
    assert rl.correctness_reward(completions, ["18", "18", "18"]) == [1.0, 0.0, 0.0]
    assert rl.correctness_reward(["<answer>18.0</answer>"], ["18"]) == [1.0]
    assert rl.format_reward(completions) == [0.5, 0.5, 0.0]


def test_orz_rows_read_as_dialogues_or_hub_columns():
    dialogue = [{"from": "human", "value": " Solve x. "}, {"from": "assistant", "ground_truth": {"value": 3}}]
    hub = {"0": dialogue[0], "1": dialogue[1]}
    records = rl.orz_records([dialogue, hub])
    assert [(r["prompt"], r["label"], r["id"]) for r in records] == [("Solve x.", "3", "0"), ("Solve x.", "3", "1")]


def _curve(rewards):
    return [{"step": i + 1, "reward": r, "correct": 0.0, "formatted": r} for i, r in enumerate(rewards)]


def test_the_reward_rise_needs_its_interval_above_zero():
    assert rl.reward_rise(_curve([0.0, 0.1, 0.0, 0.2, 0.2, 0.3, 0.4, 0.5, 0.45]))["passes"]
    assert not rl.reward_rise(_curve([0.2, 0.0, 0.3, 0.1, 0.2, 0.1, 0.0, 0.3, 0.1]))["passes"]
    flat = rl.reward_rise(_curve([0.0] * 9))
    assert flat["ci_low"] is None and not flat["passes"]  # identical values: no interval
    assert rl.reward_rise([]) is None  # trained elsewhere: nothing to check


def test_the_extraction_test_counts_matches_per_arm():
    rows = ([{"arm": "target", "score": s} for s in (0.99, 0.97, 0.5, 0.4)]
            + [{"arm": "control", "score": s} for s in (0.3, 0.2, 0.96, 0.1)])
    t = rl.extraction_test(rows, 0.95)
    assert (t["k_target"], t["k_control"], t["n_target"]) == (2, 1, 4)
    assert t["rate_diff"] == pytest.approx(25.0) and t["rate_diff_ci"][0] < 0 < t["rate_diff_ci"][1]


def _rl_results(rise_passes, diff_low):
    rise = {"estimate": 0.2, "ci_low": 0.1 if rise_passes else -0.1, "ci_high": 0.3, "n_steps": 16, "per_third": 5,
            "passes": rise_passes}
    test = {"threshold": 0.8, "k_target": 20, "n_target": 64, "k_control": 0, "n_control": 64, "rate_diff": 31.2,
            "rate_diff_ci": [diff_low, diff_low + 23.0], "fisher_p": 1e-6}
    scores = [{"arm": "target", "score": 0.9}, {"arm": "control", "score": 0.3}]
    return {"target": "grpo", "control": "base", "n_questions": 16, "reward_rise": rise, "threshold": 0.8,
            "tests": {"0.8": test}, "scores": scores}


@pytest.mark.parametrize("rise_passes, diff_low, check, verdict", [
    (True, 20.0, "passes", "reproduced"),
    (True, -2.0, "passes", "inconclusive"),
    (True, -60.0, "passes", "not reproduced"),  # the control writes them back more often
    (False, 20.0, "fails", "not testable: the RL run did not learn"),
])
def test_the_rl_claim_is_gated_by_the_reward_check(monkeypatch, rise_passes, diff_low, check, verdict):
    monkeypatch.setattr(claims, "load_results", lambda name, profile: _rl_results(rise_passes, diff_low))
    check_row, claim = claims.rl_claims("cpu")
    assert check_row["verdict"] == check and claim["verdict"] == verdict


def test_a_target_trained_elsewhere_has_no_reward_check(monkeypatch):
    results = dict(_rl_results(True, 20.0), reward_rise=None)
    monkeypatch.setattr(claims, "load_results", lambda name, profile: results)
    (claim,) = claims.rl_claims("paper")
    assert claim["verdict"] == "reproduced"
