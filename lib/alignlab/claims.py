"""The claims ledger: each claim of the two papers, the paper's number, ours, and a verdict.

Built from the results JSONs of `make reproduce` (``results/<profile>/*.json``) and written as
``CLAIMS.md`` plus ``claims.json``. Verdicts follow the stated RULES, never judgement.

    python -m alignlab.claims [--profile cpu]
"""

import argparse
import math

import numpy as np
from scipy import stats

from alignlab import paths
from alignlab.report import figure_dir, load_results
from alignlab.store import write_json, write_text

RULES = (
    "Intervals are 95% t-intervals over seeds (a bootstrap over generations where a stage has one "
    "sampling run, as the row says). **reproduced**: the interval lies entirely on the paper's side "
    "of the comparison and any side condition holds; **not reproduced**: the point estimate is not on "
    "the paper's side, or a side condition fails; **inconclusive**: the interval straddles the line, "
    "there is one seed only, a control shows the stage could not have detected the effect, or the stage has not run."
)


def t_interval(values) -> tuple[float, float, float]:
    """Mean and 95% t-interval; a single value gives an unbounded interval."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, -math.inf, math.inf
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def bootstrap_interval(values, seed=0, n=2000) -> tuple[float, float, float]:
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(n, len(values))).mean(axis=1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def verdict(low: float, high: float, mean: float, side_condition: bool = True) -> str:
    """Positive means "the paper's direction"."""
    if not side_condition or mean <= 0:
        return "not reproduced"
    return "reproduced" if low > 0 else "inconclusive"


def _fmt(mean, low, high, unit=""):
    if math.isinf(low):
        return f"{mean:.2f}{unit} (one seed: no interval)"
    return f"{mean:.2f}{unit} [{low:.2f}, {high:.2f}]"


def vaccine_claims(profile: str) -> list[dict]:
    results = load_results("03_evaluate", profile)
    rows = results["rows"]
    paper_hs = {"sft": {0: 48.6, 0.01: 49.8, 0.05: 52.6, 0.1: 55.2, 0.2: 60.0},
                "vaccine": {0: 42.4, 0.01: 42.2, 0.05: 42.8, 0.1: 48.2, 0.2: 56.6}}
    out = []
    ratios = sorted({r["harmful_ratio"] for r in rows if r["harmful_ratio"] is not None})
    audit = results.get("judge_audit", {})

    def audited(name, key):  # the judge's name with its accuracy on hand-labelled real answers
        accuracy = audit.get(key, {}).get("accuracy")
        if accuracy is None:
            return name
        return f"{name}; accuracy {accuracy:.2f} on {audit['n_labelled']} hand-labelled real answers"

    judges = [("hs", audited(f"{results['judge']} judge", results["judge"]))]
    if "hs_keyword" in rows[0]:
        judges.append(("hs_keyword", audited("refusal-keyword judge", "refusal-keywords")))
    for hs_key, judge_name in judges:
        for ratio in ratios:
            by = {(r["method"], r["seed"]): r for r in rows if r["harmful_ratio"] == ratio}
            seeds = sorted({s for (_, s) in by if (("sft", s) in by and ("vaccine", s) in by)})
            hs_gap = [by[("sft", s)][hs_key] - by[("vaccine", s)][hs_key] for s in seeds]
            fa_gap = [by[("sft", s)]["fa"] - by[("vaccine", s)]["fa"] for s in seeds]
            mean, low, high = t_interval(hs_gap)
            fa_mean = float(np.mean(fa_gap))
            paper = paper_hs["sft"].get(ratio, math.nan) - paper_hs["vaccine"].get(ratio, math.nan)
            out.append({
                "claim": f"Vaccine lowers HS vs SFT at p={ratio}, FA within 2 points ({judge_name})",
                "paper": f"HS SFT - Vaccine = {paper:.1f} points (Llama-2-7B)" if not math.isnan(paper) else "not in Table 1",
                "ours": f"HS gap {_fmt(mean, low, high, ' pts')}; FA gap {fa_mean:.2f} pts; {len(seeds)} seeds",
                "verdict": verdict(low, high, mean, side_condition=abs(fa_mean) <= 2),
            })
    return out


def drift_claim(profile: str) -> list[dict]:
    final = load_results("04_drift", profile)["final"]
    top = max(r["harmful_ratio"] for r in final)
    by = {(r["method"], r["seed"]): r["hed"] for r in final if r["harmful_ratio"] == top}
    seeds = sorted({s for (_, s) in by if ("sft", s) in by and ("vaccine", s) in by})
    mean, low, high = t_interval([by[("sft", s)] - by[("vaccine", s)] for s in seeds])
    return [{"claim": f"Harmful embedding drift is lower under Vaccine (p={top}, end of fine-tuning)",
             "paper": "Vaccine's HED below SFT's throughout fine-tuning (Fig. 3)",
             "ours": f"HED SFT - Vaccine = {_fmt(mean, low, high)}; {len(seeds)} seeds",
             "verdict": verdict(low, high, mean)}]


def extraction_claims(profile: str) -> list[dict]:
    out = []
    scores = load_results("06_match", profile)["scores"]
    by_prefix = {}
    for row in scores:
        by_prefix.setdefault(row["prefix"], []).append(row["embedding"])
    if "user_header" in by_prefix and "bare_start" in by_prefix:
        rng = np.random.default_rng(0)
        full, bare = np.array(by_prefix["user_header"]), np.array(by_prefix["bare_start"])
        diffs = [rng.choice(full, len(full)).mean() - rng.choice(bare, len(bare)).mean() for _ in range(2000)]
        mean = float(full.mean() - bare.mean())
        low, high = float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))
        out.append({"claim": "The full chat-template prefix (user header) scores higher than the bare start token",
                    "paper": "mean best score 0.892 vs 0.857 (seed document)",
                    "ours": f"{full.mean():.3f} vs {bare.mean():.3f}; difference {_fmt(mean, low, high)} (bootstrap over generations)",
                    "verdict": verdict(low, high, mean)})
    match = load_results("06_match", profile)
    rates = match["at_threshold"]
    ratio = match["ratio_embedding_to_levenshtein"]
    embedding_hits = rates["embedding"] > 0
    out.append({"claim": f"Embeddings reveal >= 10x more memorisation than string matching (threshold {match['threshold']})",
                "paper": ">= 10x",
                "ours": f"embedding {rates['embedding']:.1f}%, Levenshtein {rates['levenshtein']:.1f}%, Indel "
                        f"{rates['indel']:.1f}%; ratio " + ("undefined (no string match)" if ratio is None else f"{ratio:.1f}x"),
                "verdict": ("inconclusive" if not embedding_hits else
                            "reproduced" if ratio is None or ratio >= 10 else "not reproduced")})
    # ratio None: embeddings found samples and strings none, an unbounded ratio
    distill = {r["model"]: r for r in load_results("07_distill", profile)["rows"]}
    base, sft, ext, orig = (distill.get(k, {}).get("hs") for k in ("base", "sft", "distilled: extracted",
                                                                  "distilled: original"))
    if None not in (base, sft, ext, orig):
        gap = base - sft
        recovered = (base - ext) / gap if gap > 0 else math.nan
        control = (base - orig) / gap if gap > 0 else math.nan
        # If training on the same number of *original* samples recovers nothing either, the
        # distillation stage was too small to tell, whatever the extracted samples did.
        out.append({"claim": "Distillation from extracted data recovers the aligned behaviour (HS)",
                    "paper": "much of the post-trained model's ability recovered",
                    "ours": f"HS base {base:.1f}, SFT {sft:.1f}, distilled on extracted {ext:.1f} "
                            f"({recovered:.0%} of the alignment gap; rule: >= 50%), on as many original samples "
                            f"{orig:.1f} ({control:.0%})",
                    "verdict": "inconclusive" if math.isnan(recovered) or not control >= 0.5 else
                               "reproduced" if recovered >= 0.5 else "not reproduced"})
    return out


def ledger(profile: str) -> list[dict]:
    claims = []
    for build in (vaccine_claims, drift_claim, extraction_claims):
        try:
            claims += build(profile)
        except FileNotFoundError as missing:
            claims.append({"claim": build.__name__.replace("_", " "), "paper": "", "ours": str(missing),
                           "verdict": "inconclusive"})
    for claim in claims:
        claim["profile"] = profile
    return claims


def write(profile: str) -> None:
    """CLAIMS.md at the top of the repo for the cpu profile (committed); results/<profile>/ otherwise."""
    claims = ledger(profile)
    folder = paths.ROOT if profile == "cpu" else paths.RESULTS / profile
    write_json(folder / "claims.json", claims)
    lines = [f"# Claims ledger ({profile} profile)", "",
             f"Written by `make reproduce` (`python -m alignlab.claims`) from `results/{profile}/*.json`; do not edit by hand.",
             "Rules: " + RULES, "",
             "| claim | paper | ours | verdict |", "|---|---|---|---|"]
    lines += [f"| {c['claim']} | {c['paper']} | {c['ours']} | **{c['verdict']}** |" for c in claims]
    write_text(folder / "CLAIMS.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nclaims: {folder / 'CLAIMS.md'}  figures: {figure_dir(profile)}/")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Write CLAIMS.md and claims.json from the results JSONs.")
    parser.add_argument("--profile", default="cpu")
    write(parser.parse_args().profile)
