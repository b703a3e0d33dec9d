"""The claims ledger's drift claim: paired over probe samples, so that one seed still has an interval."""

import math

import pytest

from alignlab import claims


def _final(per_sample_sft, per_sample_vac, seeds=(0,)):
    rows = []
    for seed in seeds:
        for method, values in (("sft", per_sample_sft), ("vaccine", per_sample_vac)):
            rows.append({"method": method, "harmful_ratio": 0.2, "seed": seed, "hed": sum(values),
                         "hed_per_sample": list(values)})
    rows.append({"method": "sft", "harmful_ratio": 0.0, "seed": 0, "hed": 0.0, "hed_per_sample": [0.0] * len(per_sample_sft)})
    return {"final": rows}


@pytest.fixture
def results(monkeypatch):
    holder = {}
    monkeypatch.setattr(claims, "load_results", lambda name, profile: holder[name])
    return holder


def test_one_seed_gets_a_real_interval_over_probe_samples(results):
    sft = [5.0, 6.0, 7.5, 5.5, 6.5, 8.0, 7.0, 6.2]
    results["04_drift"] = _final(sft, [v - 1.0 - 0.1 * i for i, v in enumerate(sft)])
    (claim,) = claims.drift_claim("cpu")
    assert claim["n"] == 8 and claim["n_seeds"] == 1
    assert math.isfinite(claim["ci_low"]) and 0 < claim["ci_low"] < claim["estimate"] < claim["ci_high"]
    assert claim["verdict"] == "reproduced" and claim["p_value"] < 0.01


def test_no_difference_is_inconclusive_and_the_wrong_side_not_reproduced(results):
    sft = [5.0, 6.0, 7.5, 5.5, 6.5, 8.0, 7.0, 6.2]
    results["04_drift"] = _final(sft, [v + (0.3 if i % 2 else -0.3) for i, v in enumerate(sft)])
    assert claims.drift_claim("cpu")[0]["verdict"] == "inconclusive"
    results["04_drift"] = _final(sft, [v + 2.0 + 0.1 * i for i, v in enumerate(sft)])
    assert claims.drift_claim("cpu")[0]["verdict"] == "not reproduced"


def test_results_without_per_sample_drift_fall_back_to_seeds(results):
    final = _final([1.0, 2.0], [0.5, 1.0], seeds=(0, 1))
    for row in final["final"]:
        row.pop("hed_per_sample")
    results["04_drift"] = final
    (claim,) = claims.drift_claim("cpu")
    assert claim["test"] == "t-interval over seeds" and claim["n"] == 2
    assert math.isinf(claim["ci_low"])  # identical differences over seeds: no interval


def test_no_seed_with_both_methods_is_not_run(results):
    final = _final([1.0, 2.0], [0.5, 1.0])
    final["final"] = [r for r in final["final"] if r["method"] != "vaccine"]
    results["04_drift"] = final
    assert claims.drift_claim("cpu")[0]["verdict"] == "not run"


def test_drift_needs_the_interval_and_the_signed_rank_test_to_agree(results):
    # four probe samples, all on the paper's side: the t-interval excludes 0, but the smallest
    # Wilcoxon p with four pairs is 0.125, so the verdict stays inconclusive
    results["04_drift"] = _final([5.0, 6.0, 7.0, 8.0], [4.0, 5.1, 5.9, 7.0])
    (claim,) = claims.drift_claim("cpu")
    assert claim["ci_low"] > 0 and claim["p_value"] >= 0.05 and claim["verdict"] == "inconclusive"
