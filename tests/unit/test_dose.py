"""The extraction study's memorisation dose-response: dose targets in a profile, their sampling
arms, Newcombe's interval for a rate difference, and the manipulation check that gates the
embedding / string ratio."""

import pandas as pd
import pytest
from test_profile import write_profile

from alignlab import claims
from alignlab.extraction.dose import parse_dose
from alignlab.extraction.stages import memorising_arm, rate_difference, replicate_runs
from alignlab.plan import new_doses
from alignlab.profile import ConfigError, load_profile

pytestmark = pytest.mark.unit

DOSES = {"sft": "alignment", "base": "alignment", "sft@1": "alignment", "sft@4": "alignment", "sft_full@4": "alignment"}


def test_dose_names_parse_into_epochs_loss_and_seed():
    assert parse_dose("sft@10") == (10, "completion", None) and parse_dose("sft_full@4") == (4, "full_sequence", None)
    assert parse_dose("sft@0") == (0, "completion", None)  # the control: no post-training
    assert parse_dose("sft_full@40_seed2") == (40, "full_sequence", 2)  # a replicate run, trained with seed 2
    assert parse_dose("sft") is None and parse_dose("base") is None and parse_dose("sft@01") is None
    assert parse_dose("sft@4_seed") is None and parse_dose("sft@4_seed01") is None


@pytest.mark.parametrize("targets, message", [
    ({"sft": "alignment", "base": "alignment", "sft@ten": "alignment"}, "is not a dose"),
    ({"sft": "alignment", "base": "alignment", "rl@3": "alignment"}, "is not a dose"),
    ({"sft": "alignment", "base": "alignment", "sft@3": "tulu3_sft"}, "map it to 'alignment'"),
    ({"sft": "alignment", "base": "alignment", "sft@3_s1": "alignment"}, "_seed<k>"),
])
def test_a_bad_dose_target_is_refused_with_the_fix(tmp_path, targets, message):
    with pytest.raises(ConfigError, match=message):
        load_profile(write_profile(tmp_path, extraction_targets=targets, prefix_table_target=None))


def test_doses_are_sampled_on_the_first_prefix_only_at_the_main_arms_size(tmp_path):
    p = load_profile(write_profile(tmp_path, extraction_targets=DOSES, n_samples=8, n_samples_secondary=2,
                                   prefix_table_target=None))
    first, second = p.prefixes[:2]
    arms = p.extraction_arms()
    assert (("sft@4", first) in arms and ("sft@4", second) not in arms and ("sft", second) in arms
            and ("base", second) in arms)
    assert p.samples_per_arm("sft_full@4", first) == 8 and p.samples_per_arm("sft", second) == 2
    # sft@<align_epochs> (smoke: 1) is notebook 01's SFT model: the plan trains no model for it
    assert p.align_epochs == 1 and new_doses(p) == [("sft@4", 4, 32), ("sft_full@4", 4, 32)]


def test_the_prefix_table_target_is_sampled_with_every_prefix(tmp_path):
    p = load_profile(write_profile(tmp_path, extraction_targets=DOSES, prefix_table_target="sft_full@4"))
    arms = p.extraction_arms()
    assert all(("sft_full@4", prefix) in arms for prefix in p.prefixes)
    assert [prefix for t, prefix in arms if t == "sft@4"] == [p.prefixes[0]]
    with pytest.raises(ConfigError, match="not one of the dose targets"):
        load_profile(write_profile(tmp_path, extraction_targets=DOSES, prefix_table_target="sft"))


def test_newcombe_interval_matches_his_published_examples():
    # Newcombe (1998), Statistics in Medicine 17:873, Table II, method 10
    estimate, low, high = rate_difference(56, 70, 48, 80)
    assert estimate == pytest.approx(0.2) and (low, high) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert rate_difference(9, 10, 3, 10)[1:] == pytest.approx((0.1705, 0.8090), abs=1e-4)
    _, low, high = rate_difference(0, 128, 0, 128)  # two zero rates: an interval around 0, not a point
    assert low < 0 < high


def _row(target, epochs, loss, threshold, k, n=128, control_k=0, seed=0):
    estimate, low, high = rate_difference(k, n, control_k, n)
    return {"target": target, "epochs": epochs, "loss": loss, "seed": seed, "threshold": threshold, "control": "base",
            "rate_target": 100 * k / n, "rate_target_ci": [0.0, 100.0], "rate_control": 100 * control_k / n,
            "rate_diff": 100 * estimate, "rate_diff_ci": [100 * low, 100 * high], "fisher_p": 0.01, "n_target": n,
            "n_control": n}


def _match(doses, calibrated=0.82):
    ratio = {"n": 128, "embedding_matches": 12, "string_matches": 1, "string_metric": "levenshtein",
             "estimate": 12.0, "ci_low": 11.0, "ci_high": 40.0, "note": ""}
    return {"dose_response": doses, "calibration": {"threshold": calibrated}, "trained_vs_base": {},
            "ratio_intervals": {"0.95": ratio}, "ratio_arm": "sft_full@4", "positive_control": {}}


@pytest.mark.parametrize("top_k, passes", [(12, True), (2, False)])
def test_the_memorisation_check_gates_the_ratio_verdict(monkeypatch, top_k, passes):
    doses = [_row("sft@1", 1, "completion", t, 0) for t in (0.95, 0.82)]
    doses += [_row("sft_full@4", 4, "full_sequence", t, top_k) for t in (0.95, 0.82)]
    monkeypatch.setattr(claims, "load_results", lambda name, profile: {"06_match": _match(doses)}[name]
                        if name == "06_match" else (_ for _ in ()).throw(FileNotFoundError(name)))
    check, *rest = claims.extraction_claims("cpu")
    assert check["kind"] == "manipulation check" and check["passes"] is passes and check["threshold"] == 0.82
    assert check["verdict"] == ("passes" if passes else "fails")
    assert len(check["dose_response"]) == 4 and "sft_full@4" in check["ours"]
    (ratio,) = [c for c in rest if c["claim"].startswith("Embeddings reveal")]
    assert ratio["verdict"] == ("reproduced" if passes else "not testable: no dose of post-training memorises")


def test_the_memorising_arm_is_the_largest_gap_whose_interval_clears_zero():
    doses = pd.DataFrame([_row("sft@4", 4, "completion", 0.8, 6), _row("sft_full@4", 4, "full_sequence", 0.8, 30),
                          _row("sft_full@4", 4, "full_sequence", 0.95, 1)])
    assert memorising_arm(doses, 0.8) == "sft_full@4"
    assert memorising_arm(doses, 0.95) is None


@pytest.mark.parametrize("replicate_k, passes", [(20, True), (1, False)])
def test_the_memorisation_check_needs_every_training_run_of_the_top_dose(monkeypatch, replicate_k, passes):
    doses = [_row("sft@4", 4, "completion", 0.82, 3)]
    doses += [_row("sft_full@4", 4, "full_sequence", 0.82, 30),
              _row("sft_full@4_seed1", 4, "full_sequence", 0.82, replicate_k, seed=1)]
    monkeypatch.setattr(claims, "load_results", lambda name, profile: {"06_match": _match(doses)}[name]
                        if name == "06_match" else (_ for _ in ()).throw(FileNotFoundError(name)))
    check = claims.extraction_claims("cpu")[0]
    assert check["runs"] == 2 and check["passes"] is passes
    assert ("2 of 2" if passes else "1 of 2") in check["ours"] and "sft_full@4_seed1" in check["ours"]
    assert [r["target"] for r in replicate_runs(doses, 0.82)] == ["sft_full@4", "sft_full@4_seed1"]


@pytest.mark.parametrize("diff, p_value, verdict", [(0.04, 0.01, "reproduced"), (-0.04, 0.01, "not reproduced"),
                                                     (0.04, 0.3, "inconclusive")])
def test_the_prefix_claim_reads_the_paired_comparison(monkeypatch, diff, p_value, verdict):
    doses = [_row("sft_full@4", 4, "full_sequence", 0.82, 30)]
    header_vs_bare = {"first": "sft_full@4|user_header_no_system", "second": "sft_full@4|bare_start", "n": 32,
                      "mean_diff": diff, "mean_diff_ci": [diff - 0.03, diff + 0.03], "p_value": p_value, "test": "t"}
    monkeypatch.setattr(claims, "load_results", lambda name, profile: {**_match(doses), "header_vs_bare": header_vs_bare}
                        if name == "06_match" else (_ for _ in ()).throw(FileNotFoundError(name)))
    (claim,) = [c for c in claims.extraction_claims("cpu") if c["claim"].startswith("The user header")]
    assert claim["verdict"] == verdict and "sft_full@4" in claim["ours"]


def test_on_a_tie_the_replicated_loss_is_the_one_checked():
    doses = [_row("sft@4", 4, "completion", 0.82, 0), _row("sft_full@4", 4, "full_sequence", 0.82, 0),
             _row("sft_full@4_seed1", 4, "full_sequence", 0.82, 0, seed=1)]
    assert [r["target"] for r in replicate_runs(doses, 0.82)] == ["sft_full@4", "sft_full@4_seed1"]
