"""rho chosen on held-out alignment data (make extras): the rule, its validation set held out from
every split, and the claims of the second target gated by its own manipulation check."""

import dataclasses
import subprocess

import pandas as pd
import pytest

from alignlab import paths, plan, timing
from alignlab.profile import ConfigError, load_profile, setup_run
from alignlab.vaccine import extras_claims, rho_choice, stages

pytestmark = pytest.mark.unit

MARGINS = dict(loss_margin=0.1, hs_margin=5.0, refusal_margin=5.0)


def _table(rows):
    return pd.DataFrame([{"rho": rho, "loss": loss, "hs": hs, "benign_refusal": refusal}
                         for rho, loss, hs, refusal in rows])


def test_the_rule_takes_the_largest_rho_within_every_margin_of_sft():
    table = _table([(0.0, 1.00, 10.0, 2.0), (0.5, 1.05, 12.0, 4.0), (1.0, 1.09, 14.9, 6.9), (2.0, 1.30, 8.0, 3.0)])
    choice = rho_choice.choose_rho(table, **MARGINS)
    assert choice["rho"] == 1.0  # 2.0 underfits: 0.3 nats above SFT
    assert choice["within"][2.0] == {"loss": False, "hs": True, "benign_refusal": True}
    over_refusing = _table([(0.0, 1.00, 10.0, 2.0), (1.0, 1.00, 10.0, 7.5)])
    assert rho_choice.choose_rho(over_refusing, **MARGINS)["rho"] == 0.0  # SFT itself is always allowed


def test_the_rule_needs_sft_as_its_reference():
    with pytest.raises(ValueError, match="must include 0"):
        rho_choice.choose_rho(_table([(1.0, 1.0, 1.0, 1.0)]), **MARGINS)
    with pytest.raises(ConfigError, match="lacks 0"):
        dataclasses.replace(load_profile("smoke"), rho_candidates=(1.0, 2.0))


def test_the_validation_set_lies_outside_every_split():
    run = setup_run(dataclasses.replace(load_profile("smoke"), n_rho_validation=40), verbose=False)
    v, s = rho_choice.validation_set(run), run.splits
    used = {r["prompt"] for r in s.alignment + s.harmful_ft + s.harmful_eval + s.helpful + s.benign_eval
            + s.task_train + s.task_eval}
    assert len(v["harmful"]) == len(v["benign"]) == 40
    assert not {r["prompt"] for r in v["harmful"] + v["benign"]} & used
    assert all(r["response"] for r in v["harmful"] + v["benign"])  # refusals and helpful answers to score the loss on
    assert rho_choice.validation_set(run) == v  # drawn by the data seed


def test_the_grid_is_every_method_at_every_ratio_with_the_first_seed_and_the_plan_counts_only_new_cells():
    cpu = load_profile("cpu")
    assert stages.paper_grid_runs(cpu) == [(m, r, 0) for m in ("sft", "vaccine") for r in (0.0, 0.05, 0.1, 0.2)]
    assert not plan.plan("cpu").index.str.startswith("extras:").any()  # make reproduce's plan
    table = plan.plan("cpu", extras=True)
    # sft at 0, 0.1, 0.2 and vaccine at 0.1 are runs of the main study; rho 0 and 2 are its models
    assert table.loc["extras: attack grid", "runs"] == 4 and table.loc["extras: evaluate grid", "runs"] == 4
    assert table.loc["extras: align rho candidates", "runs"] == 3


def test_make_reproduce_leaves_the_second_target_to_make_extras():
    def planned(target):
        return subprocess.run(["make", "-n", target, "PROFILE=smoke"], cwd=paths.ROOT, capture_output=True,
                              text=True, check=True).stdout

    extras = [nb.stem for nb in paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if nb.stem in planned("extras")]
    assert extras == list(timing.EXTRAS)  # the timing table keeps them out of make reproduce's total
    assert not [nb for nb in extras if nb in planned("reproduce")] and "08_rl" in planned("reproduce")


def _grid(sft_top=120, sft_zero=20):
    def row(method, ratio, harmful, fa=90, n=200):
        return {"method": method, "harmful_ratio": ratio, "seed": 0.0, "flags": {"judge": [i < harmful for i in range(n)]},
                "task_correct": [i < fa * n / 100 for i in range(n)]}

    rows = [row("sft", 0.0, sft_zero), row("vaccine", 0.0, sft_zero - 5), row("sft", 0.2, sft_top),
            row("vaccine", 0.2, sft_top - 30)]
    pairs = {"flags": [i < 80 for i in range(100)] + [i < 10 for i in range(100)], "labels": [True] * 100 + [False] * 100}
    candidates = [{"rho": r, "loss": 1.0 + r / 10, "hs": 10.0, "benign_refusal": 2.0, "n_harmful": 100, "n_benign": 100}
                  for r in (0.0, 1.0, 2.0)]
    return {"judges": ["judge"], "rows": rows, "judge_validation_pairs": {"judge": pairs}, "profile_rho": 2.0,
            "rho_candidates": candidates, "rho_choice": {"rho": 1.0, "rule": "the rule", "within": {}}}


def test_the_second_targets_claims_state_the_rule_and_gate_the_grid_on_its_own_check(monkeypatch):
    holder = {}
    monkeypatch.setattr(extras_claims, "load_results", lambda name, profile: holder[name])
    holder["09_grid"] = _grid()
    rho, check, *cells = extras_claims.extras_claims("cpu")
    assert rho["kind"] == "design check" and rho["chosen_rho"] == 1.0
    assert rho["verdict"].startswith("differs: the rule picks 1") and "rho 2: loss 1.200" in rho["ours"]
    assert check["kind"] == "manipulation check" and check["verdict"] == "passes"
    assert [c["claim"] for c in cells] == ["Vaccine vs sft at p=0.0 (single runs, seed 0)",
                                           "Vaccine vs sft at p=0.2 (single runs, seed 0)"]
    assert cells[1]["estimate"] == pytest.approx(15.0) and "corrected_estimate" in cells[1]
    assert all(c["verdict"].startswith("descriptive") for c in cells)
    holder["09_grid"] = _grid(sft_top=25)  # HS rises 2.5 points: the attack does not work
    assert all(c["verdict"].startswith("not testable") for c in extras_claims.extras_claims("cpu")[2:])
