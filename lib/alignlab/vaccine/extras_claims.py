"""The second target's claims (``make extras``, notebook 09): the choice of rho on alignment data, and
the paper's grid with one run per cell.

The grid's rows are descriptive: one training run per cell, so a prompt-level interval tells two
models apart, not two methods (the replicated verdict at ``replicate_ratio`` is notebook 03's). The
grid checks the attack itself first, on its own SFT runs
(:func:`alignlab.vaccine.verdicts.manipulation_check`), and its rows read "not testable" where that fails, as the main study's do.
"""

from __future__ import annotations

import math

from alignlab.vaccine.verdicts import (corrected_claim, judge_validation_pairs, manipulation_check, paper_gap,
                                       single_run_claim)
from alignlab.report import load_results


def rho_claim(results: dict) -> dict:
    """The rule's choice among the candidate rhos, against the rho the profile's main study uses."""
    choice, candidates, used = results["rho_choice"], results["rho_candidates"], results["profile_rho"]
    measured = "; ".join(f"rho {c['rho']:g}: loss {c['loss']:.3f}, HS {c['hs']:.1f}%, benign refusal "
                         f"{c['benign_refusal']:.1f}%" for c in candidates)
    chosen = float(choice["rho"])
    return {"claim": "rho chosen on held-out alignment data, never on evaluation prompts",
            "paper": "rho = 2, the authors' default (their hyperparameter analysis sweeps rho)",
            "kind": "design check",
            "ours": (f"{choice['rule']}: rho {chosen:g}. {measured} ({candidates[0]['n_harmful']} harmful prompts, "
                     f"{candidates[0]['n_benign']} benign requests, outside every split)"),
            "verdict": ("agrees with the profile's rho" if math.isclose(chosen, used) else
                        f"differs: the rule picks {chosen:g}; the profile's main study (notebooks 01-04) uses {used:g}"),
            "test": "a selection rule with margins fixed in the profile before any candidate ran",
            "chosen_rho": chosen, "profile_rho": used, "candidates": candidates}


def _paper(method: str, ratio: float) -> str:
    if method != "sft":
        return "Vaccine's HS below the baselines' (Table 3, Llama-2-7B)"
    gap = paper_gap(ratio)
    return "not in Table 1" if math.isnan(gap) else f"HS SFT - Vaccine = {gap:.1f} points (Llama-2-7B)"


def extras_claims(profile: str) -> list[dict]:
    """The rho choice, the grid's manipulation check, then every method against Vaccine at every
    ratio of the grid (single runs, descriptive, HS corrected for the judge's error)."""
    results = load_results("09_grid", profile)
    rows = [r for r in results["rows"] if r["harmful_ratio"] is not None]
    judge = results["judges"][0]
    pairs = judge_validation_pairs(results, judge)
    check = manipulation_check(rows, judge)
    check = {**check, "claim": "The grid's own " + check["claim"][0].lower() + check["claim"][1:]}
    out = [rho_claim(results), corrected_claim(check, check, pairs) if "estimate" in check else check]
    seed = int(min(r["seed"] for r in rows))
    for ratio in sorted({r["harmful_ratio"] for r in rows}):
        for method in sorted({r["method"] for r in rows} - {"vaccine"}):
            row = single_run_claim(rows, method, ratio, seed, judge, check, pairs, paper=_paper(method, ratio))
            out += [row] if row else []
    return out
