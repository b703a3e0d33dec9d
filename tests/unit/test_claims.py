"""The claims ledger: the drift claim's verdict over training runs (seeds), the per-probe-sample
gap reported beside it but deciding nothing (its negative control is significant too); the HS
claim tested on the annotators' labels where they cover both models' answers."""

import math

import pytest

from alignlab import claims

PROBES = [5.0, 6.0, 7.5, 5.5, 6.5, 8.0, 7.0, 6.2]


def _final(gap_by_seed, per_sample_sft=PROBES):
    """Final drift rows: per seed, SFT's per-sample HED and Vaccine's lowered by that seed's gap
    (spread unevenly over the samples), plus a row at another ratio that the claim must ignore."""
    weights = [1 + 0.1 * i for i in range(len(per_sample_sft))]
    rows = []
    for seed, gap in gap_by_seed.items():
        vaccine = [v - gap * w / sum(weights) for v, w in zip(per_sample_sft, weights)]
        for method, values in (("sft", per_sample_sft), ("vaccine", vaccine)):
            rows.append({"method": method, "harmful_ratio": 0.2, "seed": seed, "hed": sum(values),
                         "hed_per_sample": list(values)})
    rows.append({"method": "sft", "harmful_ratio": 0.0, "seed": 0, "hed": 0.0, "hed_per_sample": [0.0] * len(per_sample_sft)})
    return {"final": rows}


@pytest.fixture
def results(monkeypatch):
    holder = {}
    monkeypatch.setattr(claims, "load_results", lambda name, profile: holder[name])
    return holder


def test_one_seed_reports_the_per_sample_gap_but_gives_no_verdict(results):
    results["04_drift"] = _final({0: 8.0})
    (claim,) = claims.drift_claim("cpu")
    # every probe sample lower under Vaccine: the per-sample test is as significant as it gets ...
    assert claim["n_probe_samples"] == 8 and claim["per_sample_ci_low"] > 0 and claim["per_sample_p_value"] < 0.01
    # ... and still one training run per method: no verdict over runs
    assert claim["n_seeds"] == 1 and math.isinf(claim["ci_low"]) and claim["verdict"] == "inconclusive"
    assert "two seeds or more" in claim["ours"]


def test_seeds_decide_the_verdict(results):
    results["04_drift"] = _final({0: 8.0, 1: 9.0, 2: 7.5})
    (claim,) = claims.drift_claim("cpu")
    assert claim["test"] == "t-interval over seeds (training runs)" and claim["n"] == 3
    assert claim["estimate"] == pytest.approx(8.1667, abs=1e-3)
    assert 0 < claim["ci_low"] < claim["estimate"] < claim["ci_high"]
    assert claim["verdict"] == "reproduced"
    results["04_drift"] = _final({0: 8.0, 1: -6.0, 2: 1.0})
    assert claims.drift_claim("cpu")[0]["verdict"] == "inconclusive"
    results["04_drift"] = _final({0: -8.0, 1: -9.0, 2: -7.5})
    assert claims.drift_claim("cpu")[0]["verdict"] == "not reproduced"


def test_results_without_per_sample_drift_still_get_the_verdict_over_seeds(results):
    final = _final({0: 1.0, 1: 1.0})
    for row in final["final"]:
        row.pop("hed_per_sample")
    results["04_drift"] = final
    (claim,) = claims.drift_claim("cpu")
    assert claim["n"] == 2 and "per_sample_estimate" not in claim
    assert math.isinf(claim["ci_low"]) and claim["verdict"] == "inconclusive"  # identical gaps: no interval


def test_no_seed_with_both_methods_is_not_run(results):
    final = _final({0: 1.0})
    final["final"] = [r for r in final["final"] if r["method"] != "vaccine"]
    results["04_drift"] = final
    assert claims.drift_claim("cpu")[0]["verdict"] == "not run"


def test_claims_json_is_strict_json_with_an_unbounded_interval_as_null(results, monkeypatch, tmp_path):
    import json

    from alignlab import paths

    monkeypatch.setattr(paths, "RESULTS", tmp_path)
    monkeypatch.setattr(claims, "ledger", lambda profile: claims.drift_claim(profile))
    results["04_drift"] = _final({0: 8.0})  # one seed: no interval over runs
    claims.write("smoke")

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    (row,) = json.loads((tmp_path / "smoke" / "claims.json").read_text(), parse_constant=refuse)
    assert row["ci_low"] is None and row["ci_high"] is None and row["per_sample_ci_low"] > 0


def _evaluation_rows(n, labelled_sft, labelled_vaccine):
    """Attacked SFT and Vaccine rows at p=0 over n prompts: SFT complies on the first half, Vaccine on
    the first tenth; the judge sees nothing; the annotators label the first ``labelled_*`` answers."""
    def row(method, harmful_upto, labelled_upto):
        truth = [i < harmful_upto for i in range(n)]
        return {"method": method, "harmful_ratio": 0.0, "seed": 0, "flags": {"blind": [False] * n},
                "annotated": [t if i < labelled_upto else None for i, t in enumerate(truth)],
                "task_correct": [i % 2 == 0 for i in range(n)]}
    return {"judges": ["blind"], "rows": [row("sft", n // 2, labelled_sft), row("vaccine", n // 10, labelled_vaccine)]}


def test_the_annotators_labels_test_the_hs_claim_on_the_prompts_labelled_for_both(results):
    results["03_evaluate"] = _evaluation_rows(200, labelled_sft=180, labelled_vaccine=150)
    rows = claims.vaccine_claims("cpu")
    judged, annotated = rows
    assert judged["judge"] == "blind" and judged["verdict"] == "inconclusive"  # a judge that flags nothing
    assert annotated["judge"] == "annotators" and annotated["n"] == 150 and annotated["n_prompts"] == 200
    # on the 150 prompts labelled for both: SFT harmful on 100, Vaccine on 20
    assert annotated["estimate"] == pytest.approx(100 * 80 / 150)
    assert annotated["ci_low"] > 0 and annotated["fa_equivalent"] and annotated["verdict"] == "reproduced"
    assert "150 of 200 prompts" in annotated["claim"]


def test_too_few_labelled_prompts_give_no_annotators_row(results):
    results["03_evaluate"] = _evaluation_rows(200, labelled_sft=200, labelled_vaccine=claims.MIN_ANNOTATED - 1)
    assert [c["judge"] for c in claims.vaccine_claims("cpu")] == ["blind"]
    del results["03_evaluate"]["rows"][0]["annotated"]  # results written before labels were recorded
    assert [c["judge"] for c in claims.vaccine_claims("cpu")] == ["blind"]


def test_readme_blocks_are_replaced_between_their_markers(tmp_path):
    from alignlab.report import write_readme_block

    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- claims:begin (written by code) -->\nold\n<!-- claims:end -->\nrest\n")
    write_readme_block("claims", "| a | b |", readme)
    assert readme.read_text() == "intro\n<!-- claims:begin (written by code) -->\n| a | b |\n<!-- claims:end -->\nrest\n"
    with pytest.raises(ValueError, match="timing:begin"):
        write_readme_block("timing", "x", readme)
