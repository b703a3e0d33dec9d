"""The claims ledger: each claim of the two papers, the paper's number, ours, and a verdict.

Built from the results JSONs of `make reproduce` (``results/<profile>/*.json``) and written as
``CLAIMS.md`` plus ``claims.json``, whose entries carry numbers as fields (estimate, interval, n,
test, p-value, smallest detectable effect, verdict). Verdicts follow RULES, never judgement.

    python -m alignlab.claims [--profile cpu]
"""

import argparse
import json
import math

import numpy as np
from scipy import stats

from alignlab import paths
from alignlab.cache import write_json, write_text
from alignlab.report import figure_dir, load_results, write_readme_block
from alignlab.vaccine.metrics import equivalence, paired_difference
from alignlab.vaccine.stages import ALIGNED, PAPER_HS

FA_MARGIN = 5.0  # points: FA differences inside +-5 count as "FA kept" (TOST)
# The annotators' labels decide an HS claim of their own only where they cover this many prompts
# for both models (every seed): the cpu run's answers are nearly all labelled, other runs' hardly any.
MIN_ANNOTATED = 100

RULES = (
    "HS gaps are paired over prompts and clustered over seeds (a cluster bootstrap, 95% interval, "
    "two-sided p); FA uses two one-sided tests with a margin of 5 points. **reproduced**: the interval "
    "lies on the paper's side and FA is equivalent; **not reproduced**: the interval lies on the other "
    "side, or on the paper's side while FA is not equivalent; **inconclusive**: the interval straddles 0 "
    "(each row gives the smallest effect its design detects with 80% power, mde, beside the paper's "
    "effect), or no prompt is discordant; **not run**: the stage has no results yet. Rows judged by the "
    "annotators' labels apply the same test to the hand labels of the run's own answers, over the prompts "
    "labelled for both models. Drift and extraction rows use the test their row names."
)


def t_interval(values) -> tuple[float, float, float]:
    """Mean and 95% t-interval (scipy.stats); a single value gives an unbounded interval."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2 or values.std() == 0:
        return mean, -math.inf, math.inf
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, float(low), float(high)


def paired_over_samples(diffs) -> tuple[float, float, float, float]:
    """Mean, 95% t-interval and Wilcoxon signed-rank p of paired differences (1.0 when all are 0)."""
    diffs = np.asarray(diffs, dtype=float)
    mean, low, high = t_interval(diffs)
    return mean, low, high, float(stats.wilcoxon(diffs).pvalue) if np.any(diffs != 0) else 1.0


def verdict(low: float, high: float) -> str:
    """Positive means "the paper's direction": reproduced when the interval lies above 0, not
    reproduced when it lies below, inconclusive when it straddles 0 or is unbounded."""
    if low > 0:
        return "reproduced"
    return "not reproduced" if high < 0 else "inconclusive"


def _fmt(mean, low, high, unit=""):
    if math.isinf(low):
        return f"{mean:.2f}{unit} (no interval: one seed or identical values)"
    return f"{mean:.2f}{unit} [{low:.2f}, {high:.2f}]"


def _outcomes(rows, method, ratio, key):
    """(seeds, items) 0/1 outcomes of one method at one harmful ratio, seeds in order."""
    chosen = sorted((r for r in rows if r["method"] == method and r["harmful_ratio"] == ratio), key=lambda r: r["seed"])
    return np.array([key(r) for r in chosen], dtype=float), [r["seed"] for r in chosen]


def vaccine_claims(profile: str) -> list[dict]:
    results = load_results("03_evaluate", profile)
    rows, validation = results["rows"], results.get("judge_validation", {})
    out = []
    ratios = sorted({r["harmful_ratio"] for r in rows if r["harmful_ratio"] is not None})
    real = results.get("real_answer_audit", {})
    for judge in results["judges"]:
        audit, real_audit = validation.get(judge, {}), real.get(judge, {})
        # Three decimals: 0.895 must not read as the bar's 0.90.
        judge_note = (f"{judge} judge (held-out accuracy {audit['accuracy']:.3f}, recall {audit['recall']:.3f}"
                      + (f"; on {real_audit['n']} answers of the cpu run labelled by three annotators: accuracy "
                         f"{real_audit['accuracy']:.3f}, recall {real_audit['recall']:.3f}" if real_audit else "") + ")"
                      if audit else f"{judge} judge (not validated)")
        for ratio in ratios:
            sft, seeds_a = _outcomes(rows, "sft", ratio, lambda r: r["flags"][judge])
            vac, seeds_b = _outcomes(rows, "vaccine", ratio, lambda r: r["flags"][judge])
            fa_sft, _ = _outcomes(rows, "sft", ratio, lambda r: r["task_correct"])
            fa_vac, _ = _outcomes(rows, "vaccine", ratio, lambda r: r["task_correct"])
            if seeds_a != seeds_b or not len(seeds_a):
                continue
            out.append({**_hs_claim(ratio, sft, vac, fa_sft, fa_vac, judge_note),
                        "judge": judge, "judge_accuracy": audit.get("accuracy"), "judge_recall": audit.get("recall"),
                        "judge_real_n": real_audit.get("n"), "judge_real_accuracy": real_audit.get("accuracy"),
                        "judge_real_recall": real_audit.get("recall")})
    for ratio in ratios:  # the same test on the annotators' labels, where they label both models' answers
        sft, seeds_a = _outcomes(rows, "sft", ratio, lambda r: _labels(r.get("annotated")))
        vac, seeds_b = _outcomes(rows, "vaccine", ratio, lambda r: _labels(r.get("annotated")))
        if seeds_a != seeds_b or sft.shape != vac.shape or not sft.size:  # no labels recorded for a model
            continue
        both = ~np.isnan(sft).any(axis=0) & ~np.isnan(vac).any(axis=0)
        if both.sum() < MIN_ANNOTATED:
            continue
        fa_sft, _ = _outcomes(rows, "sft", ratio, lambda r: r["task_correct"])
        fa_vac, _ = _outcomes(rows, "vaccine", ratio, lambda r: r["task_correct"])
        note = (f"annotators' majority labels, no judge: the {int(both.sum())} of {len(both)} prompts whose answers "
                f"are hand-labelled for both models")
        out.append({**_hs_claim(ratio, sft[:, both], vac[:, both], fa_sft, fa_vac, note),
                    "judge": "annotators", "n_prompts": len(both)})
    return out


def _labels(annotated) -> list[float]:
    """Per-prompt annotator labels as 1.0 / 0.0, NaN where unlabelled; empty where none were recorded."""
    return [math.nan if a is None else float(a) for a in annotated or []]


def _hs_claim(ratio, sft, vac, fa_sft, fa_vac, judged_by: str) -> dict:
    """The paper's HS claim at one harmful ratio: the HS gap SFT - Vaccine paired over prompts and
    clustered over seeds, and FA kept within the margin (TOST), with RULES' verdict."""
    hs = paired_difference(sft, vac)
    fa = equivalence(fa_sft, fa_vac, FA_MARGIN)
    paper = PAPER_HS["sft"].get(ratio, math.nan) - PAPER_HS["vaccine"].get(ratio, math.nan)
    if hs["discordant"] == 0:
        result = "inconclusive"
    elif hs["ci_low"] > 0:
        result = "reproduced" if fa["equivalent"] else "not reproduced"
    elif hs["estimate"] <= 0 and hs["ci_high"] < 0:
        result = "not reproduced"
    else:
        result = "inconclusive"
    return {
        "claim": f"Vaccine lowers HS vs SFT at p={ratio}, FA kept ({judged_by})",
        "paper": f"HS SFT - Vaccine = {paper:.1f} points (Llama-2-7B)" if not math.isnan(paper) else "not in Table 1",
        "ours": (f"HS gap {_fmt(hs['estimate'], hs['ci_low'], hs['ci_high'], ' pts')}, p={hs['p_value']:.3f}, "
                 f"mde {hs['mde']:.1f} pts, {hs['n_items']} prompts x {hs['n_seeds']} seeds, "
                 f"{hs['discordant']} discordant prompts; FA gap {fa['estimate']:.1f} pts "
                 f"[{fa['ci_low']:.1f}, {fa['ci_high']:.1f}] (90%), equivalent within {FA_MARGIN:g}: {fa['equivalent']}"),
        "verdict": result,
        "test": "cluster bootstrap over prompts and seeds; FA by TOST",
        "estimate": hs["estimate"], "ci_low": hs["ci_low"], "ci_high": hs["ci_high"], "p_value": hs["p_value"],
        "mde": hs["mde"], "n": hs["n_items"], "n_seeds": hs["n_seeds"], "paper_effect": paper,
        "fa_gap": fa["estimate"], "fa_equivalent": fa["equivalent"],
    }


def drift_claim(profile: str) -> list[dict]:
    """HED of SFT minus Vaccine at the top harmful ratio, end of fine-tuning.

    The verdict is at the level of training runs: a t-interval over seeds of each seed's gap, so it
    needs two seeds or more. Per probe sample (a t-interval and a Wilcoxon signed-rank test over the
    samples, each sample's HED averaged over seeds) the gap is reported, but it decides nothing: its
    negative control, two attack seeds of the same method, comes out just as significant
    (scripts/drift_seed_control.py, README), so it tells two trained models apart, not two methods."""
    final = load_results("04_drift", profile)["final"]
    top = max(r["harmful_ratio"] for r in final)
    by = {(r["method"], r["seed"]): r for r in final if r["harmful_ratio"] == top}
    seeds = sorted({s for (_, s) in by if ("sft", s) in by and ("vaccine", s) in by})
    claim = {"claim": f"Harmful embedding drift is lower under Vaccine (p={top}, end of fine-tuning)",
             "paper": "Vaccine's HED below SFT's throughout fine-tuning (Fig. 3)"}
    if not seeds:
        return [{**claim, "ours": f"no seed has both methods at p={top}", "verdict": "not run", "test": None,
                 "estimate": None, "ci_low": None, "ci_high": None, "n": 0}]
    gaps = [by[("sft", s)]["hed"] - by[("vaccine", s)]["hed"] for s in seeds]
    mean, low, high = t_interval(gaps)
    result = verdict(low, high) if len(seeds) >= 2 else "inconclusive"
    ours = f"HED SFT - Vaccine = {_fmt(mean, low, high)} over {len(seeds)} seed(s)"
    if len(seeds) < 2:
        ours += " (one training run per method: a verdict over runs needs two seeds or more)"
    row = {**claim, "verdict": result, "test": "t-interval over seeds (training runs)",
           "estimate": mean, "ci_low": low, "ci_high": high, "n": len(seeds), "n_seeds": len(seeds)}
    if all(by[(m, s)].get("hed_per_sample") for m in ALIGNED for s in seeds):
        per_sample = {m: np.mean([by[(m, s)]["hed_per_sample"] for s in seeds], axis=0) for m in ALIGNED}
        diffs = per_sample["sft"] - per_sample["vaccine"]
        s_mean, s_low, s_high, s_p = paired_over_samples(diffs)
        ours += (f"; per probe sample {_fmt(s_mean, s_low, s_high)}, Wilcoxon p={s_p:.3f} over {len(diffs)} "
                 f"samples (tells two models apart, not two methods: README, drift control)")
        row.update(per_sample_estimate=s_mean, per_sample_ci_low=s_low, per_sample_ci_high=s_high,
                   per_sample_p_value=s_p, n_probe_samples=len(diffs))
    return [{**row, "ours": ours}]


def extraction_claims(profile: str) -> list[dict]:
    """The extraction paper's claims, each against its control: trained target vs never-trained
    base (Fisher's exact test on extraction rates, at 0.95 and at the calibrated threshold), the
    embedding / string ratio with a bootstrap interval (only with >= 10 embedding matches), Vaccine
    vs SFT paired by sample id, and distillation arms paired over held-out harmful prompts."""
    match = load_results("06_match", profile)
    out = []
    control = match.get("positive_control", {})
    found = {k: v for k, v in control.items() if k.startswith("found_at_")}
    for t, test in match["trained_vs_base"].items():
        detectable = found.get(f"found_at_{t}", 0) >= 0.9
        result = ("inconclusive" if not detectable else "reproduced" if test["fisher_p"] < 0.05
                  else "not reproduced")
        out.append({
            "claim": f"The trained model regurgitates its post-training set more than the never-trained base model "
                     f"(cosine >= {t})",
            "paper": "semantic memorisation of post-training samples (OLMo 2 / Tulu 3)",
            "ours": (f"{test['target']} {test['rate_target']:.1f}% [{test['rate_target_ci'][0]:.1f}, "
                     f"{test['rate_target_ci'][1]:.1f}] vs {test['control']} {test['rate_control']:.1f}% "
                     f"[{test['rate_control_ci'][0]:.1f}, {test['rate_control_ci'][1]:.1f}], Fisher p={test['fisher_p']:.3g}, "
                     f"n={test['n_target']}/{test['n_control']}; mean score {test['mean_score_target']:.3f} vs "
                     f"{test['mean_score_control']:.3f}; positive control found {found.get(f'found_at_{t}', 0):.0%} "
                     f"of planted near-duplicates"),
            "verdict": result, "test": "Fisher's exact test (one-sided), Wilson intervals",
            "estimate": test["rate_target"] - test["rate_control"], "p_value": test["fisher_p"],
            "n": test["n_target"], "threshold": float(t), "positive_control": found.get(f"found_at_{t}"),
        })
    for t, r in match.get("ratio_intervals", {}).items():
        if r["estimate"] is None:
            result = "inconclusive"
        else:
            result = "reproduced" if r["ci_low"] >= 10 else "not reproduced" if r["ci_high"] < 10 else "inconclusive"
        out.append({
            "claim": f"Embeddings reveal >= 10x more memorisation than string matching (threshold {t})",
            "paper": ">= 10x",
            "ours": (f"{r['embedding_matches']} embedding vs {r['string_matches']} {r['string_metric']} matches of {r['n']}; "
                     + (r["note"] if r["estimate"] is None else
                        f"ratio {r['estimate']:.1f} [{r['ci_low']:.1f}, {r['ci_high']:.1f}] (bootstrap over generations) {r['note']}")),
            "verdict": result, "test": "percentile bootstrap over generations, computed with >= 10 embedding matches",
            "estimate": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "n": r["n"],
            "embedding_matches": r["embedding_matches"], "threshold": float(t),
        })
    pair = match.get("vaccine_vs_sft")
    if pair and pair.get("p_value") is not None:
        out.append({"claim": "Vaccine alignment changes how close generations come to the alignment set (vs SFT)",
                    "paper": "not studied (our question)",
                    "ours": f"mean best-score difference Vaccine - SFT {pair['mean_diff']:+.3f}, n={pair['n']} paired "
                            f"generations, Wilcoxon p={pair['p_value']:.3g}",
                    "verdict": "difference" if pair["p_value"] < 0.05 else "no detectable difference",
                    "test": pair["test"], "estimate": pair["mean_diff"], "p_value": pair["p_value"], "n": pair["n"]})
    try:
        distill = load_results("07_distill", profile)
    except FileNotFoundError:
        return out
    comparisons = distill.get("comparisons", {})
    key = "distilled: base generations - distilled: extracted"
    if key in comparisons:
        c = comparisons[key]
        result = ("inconclusive" if c["discordant"] == 0 else "reproduced" if c["ci_low"] > 0
                  else "not reproduced" if c["ci_high"] < 0 else "inconclusive")
        out.append({"claim": "Distilling on extracted generations teaches more of the aligned behaviour (fewer harmful "
                             "answers) than distilling on as many base-model generations",
                    "paper": "much of the post-trained model's ability recovered",
                    "ours": f"HS difference (base generations - extracted) {_fmt(c['estimate'], c['ci_low'], c['ci_high'], ' pts')}, "
                            f"p={c['p_value']:.3f}, mde {c['mde']:.1f} pts, {c['n_items']} prompts, {c['discordant']} discordant",
                    "verdict": result, "test": "paired bootstrap over held-out harmful prompts",
                    "estimate": c["estimate"], "ci_low": c["ci_low"], "ci_high": c["ci_high"], "p_value": c["p_value"],
                    "mde": c["mde"], "n": c["n_items"]})
    return out


def ledger(profile: str) -> list[dict]:
    claims = []
    for build in (vaccine_claims, drift_claim, extraction_claims):
        try:
            claims += build(profile)
        except FileNotFoundError as missing:
            claims.append({"claim": build.__name__.replace("_", " "), "paper": "",
                           "ours": str(missing).replace(f"{paths.ROOT}/", ""),
                           "verdict": "not run"})
    for claim in claims:
        claim["profile"] = profile
    return claims


def readme_table(claims: list[dict]) -> str:
    """The ledger as README shows it: what is claimed, what this run measured, the verdict."""
    rows = ["| claim | ours | verdict |", "|---|---|---|"]
    rows += [f"| {c['claim']} | {c['ours']} | **{c['verdict']}** |" for c in claims]
    return "\n".join(rows)


def timing_table(profile: str) -> str:
    """Wall time per notebook of the last `make reproduce` (papermill records it in each executed
    notebook); a stage found in the cache is not recomputed, so only a run from an empty
    cache times the whole pipeline."""
    rows, total = ["| notebook | minutes |", "|---|---|"], 0.0
    for nb in sorted((paths.RESULTS / profile).glob("[0-9][0-9]_*.ipynb")):
        seconds = json.loads(nb.read_text())["metadata"].get("papermill", {}).get("duration") or 0.0
        total += seconds
        rows.append(f"| {nb.stem} | {seconds / 60:.1f} |")
    rows.append(f"| **all** | **{total / 60:.1f}** |")
    return "\n".join(rows)


def write(profile: str) -> None:
    """CLAIMS.md at the top of the repo for the cpu profile (committed); results/<profile>/ otherwise."""
    claims = ledger(profile)
    folder = paths.ROOT if profile == "cpu" else paths.RESULTS / profile
    # JSON has no infinity: an unbounded interval (one seed) is written as null.
    write_json(folder / "claims.json", [{k: None if isinstance(v, float) and not math.isfinite(v) else v
                                         for k, v in c.items()} for c in claims])
    lines = [f"# Claims ledger ({profile} profile)", "",
             f"Written by `make reproduce` (`python -m alignlab.claims`) from `results/{profile}/*.json`; do not edit by hand.",
             "Rules: " + RULES, "",
             "| claim | paper | ours | verdict |", "|---|---|---|---|"]
    lines += [f"| {c['claim']} | {c['paper']} | {c['ours']} | **{c['verdict']}** |" for c in claims]
    write_text(folder / "CLAIMS.md", "\n".join(lines) + "\n")
    if profile == "cpu":  # README shows the committed profile's ledger and run times, written here
        write_readme_block("claims", readme_table(claims))
        write_readme_block("timing", timing_table(profile))
    print("\n".join(lines))
    print(f"\nclaims: {folder / 'CLAIMS.md'}  figures: {figure_dir(profile)}/")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Write CLAIMS.md and claims.json from the results JSONs.")
    parser.add_argument("--profile", default="cpu")
    write(parser.parse_args().profile)
