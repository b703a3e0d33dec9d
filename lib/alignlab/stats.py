"""The comparisons the claims test with: paired over prompts (a cluster bootstrap), equivalence
(TOST), and over training runs (a t-interval, the unit of inference for a method's verdict).

Kept apart from the stages: a stage's cache key hashes the code it runs, and no stage runs these,
so a change to a test recomputes no model.
"""

import numpy as np


def paired_difference(a, b, *, n_boot: int = 4000, seed: int = 0, alpha: float = 0.05) -> dict:
    """Mean of ``a - b`` in points (%), for 0/1 outcomes of shape (seeds, items) on the same items:
    a bootstrap that resamples items (the pairs) and, within them, seeds (a cluster bootstrap:
    items are the clusters, seeds the repeated measurements on them).

    Returns the estimate, its (1 - alpha) interval, a two-sided bootstrap p-value, the standard
    error, and the smallest effect the design detects with 80% power at this alpha
    (``mde`` = (z_{1-alpha/2} + z_{0.8}) x SE).
    """
    from scipy import stats

    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes need one shape: {a.shape} vs {b.shape}")
    diff = 100.0 * (a - b)  # (seeds, items)
    n_seeds, n_items = diff.shape
    rng = np.random.default_rng(seed)
    items = rng.integers(0, n_items, size=(n_boot, n_items))
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    boot = np.array([diff[np.ix_(s, i)].mean() for s, i in zip(seeds, items)])
    estimate = float(diff.mean())
    se = float(boot.std(ddof=1))
    low, high = np.percentile(boot, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    p_value = float(min(1.0, 2 * min((boot <= 0).mean(), (boot >= 0).mean()))) if se > 0 else 1.0
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(0.8)
    return {"estimate": estimate, "ci_low": float(low), "ci_high": float(high), "p_value": p_value, "se": se,
            "mde": float(z * se), "n_items": int(n_items), "n_seeds": int(n_seeds),
            "discordant": int(((a != b).any(axis=0)).sum())}


def equivalence(a, b, margin: float, *, n_boot: int = 4000, seed: int = 0, alpha: float = 0.05) -> dict:
    """Two one-sided tests (TOST) for |mean(a - b)| < ``margin`` points: equivalent when the
    (1 - 2 alpha) cluster-bootstrap interval of :func:`paired_difference` lies inside +-margin."""
    d = paired_difference(a, b, n_boot=n_boot, seed=seed, alpha=2 * alpha)
    return {**d, "margin": margin, "equivalent": bool(-margin < d["ci_low"] and d["ci_high"] < margin)}


def run_level_difference(a, b, *, alpha: float = 0.05) -> dict:
    """Mean of ``a - b`` in points (%) with training runs as the unit: ``a`` and ``b`` hold one
    rate per run (%; prompts are nested within runs, so each run's rate is the mean over its
    prompts), paired by run seed. A t-interval over the per-seed differences (n - 1 degrees of
    freedom), a two-sided t-test p-value, and the smallest effect the design detects with 80%
    power, mde = (t_{1-alpha/2} + t_{0.8}) x SE. Fewer than two runs, or differences that are all
    equal, give no interval (NaN bounds): an interval over identical values is not an interval."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"run_level_difference needs one rate per run, paired by seed: {a.shape} vs {b.shape}")
    diff = a - b
    n = len(diff)
    estimate = float(diff.mean()) if n else float("nan")
    if n < 2 or np.ptp(diff) == 0:
        return {"estimate": estimate, "ci_low": float("nan"), "ci_high": float("nan"), "p_value": float("nan"),
                "se": float("nan"), "mde": float("nan"), "n_runs": n, "sd_runs": float("nan")}
    se = float(stats.sem(diff))
    t = stats.t.ppf(1 - alpha / 2, n - 1)
    return {"estimate": estimate, "ci_low": estimate - t * se, "ci_high": estimate + t * se,
            "p_value": float(stats.ttest_1samp(diff, 0.0).pvalue), "se": se,
            "mde": float((t + stats.t.ppf(0.8, n - 1)) * se), "n_runs": n, "sd_runs": float(diff.std(ddof=1))}


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k / n (scipy.stats); (nan, nan) for n = 0."""
    from scipy import stats

    if n == 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def _counts(flags: np.ndarray, truth: np.ndarray) -> tuple[int, int, int, int]:
    """(true positives, harmful, true negatives, harmless) of boolean flags against labels."""
    return int((flags & truth).sum()), int(truth.sum()), int((~flags & ~truth).sum()), int((~truth).sum())


def _youden(flags: np.ndarray, truth: np.ndarray) -> float:
    """Sensitivity + specificity - 1, without intervals: what a bootstrap resample needs."""
    tp, pos, tn, neg = _counts(flags, truth)
    return (tp / pos if pos else float("nan")) + (tn / neg if neg else float("nan")) - 1


def judge_error(judge_flags, labels) -> dict:
    """A judge's sensitivity (harmful answers it flags) and specificity (harmless answers it does
    not flag) on labelled answers, each with its Wilson interval and count."""
    tp, pos, tn, neg = _counts(np.asarray(judge_flags, dtype=bool), np.asarray(labels, dtype=bool))
    return {"sensitivity": tp / pos if pos else float("nan"), "sensitivity_ci": wilson(tp, pos), "n_harmful": pos,
            "specificity": tn / neg if neg else float("nan"), "specificity_ci": wilson(tn, neg), "n_harmless": neg}


def rogan_gladen(observed, sensitivity: float, specificity: float):
    """The true rate behind a rate a judge observes, given its sensitivity and specificity (all as
    fractions): (observed + specificity - 1) / (sensitivity + specificity - 1), clipped to [0, 1]
    (Rogan and Gladen, 1978). NaN when sensitivity + specificity <= 1: a judge no better than chance
    carries no information to correct with."""
    youden = sensitivity + specificity - 1
    if not youden > 0:
        return np.full(np.shape(observed), np.nan) if np.ndim(observed) else float("nan")
    return np.clip((np.asarray(observed, dtype=float) + specificity - 1) / youden, 0.0, 1.0)


def corrected_rate(flags, judge_flags, labels, *, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> dict:
    """HS (%) corrected for the judge's error (:func:`rogan_gladen`) for one model's 0/1 ``flags``
    over its prompts, with the judge's error measured on the labelled answers (``judge_flags``
    against ``labels``). The interval is a percentile bootstrap that resamples the model's prompts
    and, independently, the labelled answers, so it carries the prompt sampling and the
    uncertainty of the judge's validation."""
    flags = np.asarray(flags, dtype=float)
    judged, truth = np.asarray(judge_flags, dtype=bool), np.asarray(labels, dtype=bool)
    error = judge_error(judged, truth)
    estimate = float(rogan_gladen(flags.mean(), error["sensitivity"], error["specificity"]))
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        f = flags[rng.integers(0, len(flags), len(flags))]
        pick = rng.integers(0, len(truth), len(truth))
        tp, pos, tn, neg = _counts(judged[pick], truth[pick])
        boot.append(rogan_gladen(f.mean(), tp / pos if pos else float("nan"), tn / neg if neg else float("nan")))
    boot = np.asarray(boot, dtype=float)
    low, high = np.nanpercentile(boot, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return {"observed": 100 * float(flags.mean()), "corrected": 100 * estimate, "ci_low": 100 * float(low),
            "ci_high": 100 * float(high), **error}


def corrected_gap(gap: dict, judge_flags, labels, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """A difference of two HS rates read by one judge, corrected for its error: the Rogan-Gladen
    correction is affine with slope 1 / (sensitivity + specificity - 1), so a gap divides by
    Youden's J. ``gap`` holds the observed estimate and interval (points); the corrected interval
    spans the gap's interval divided by J's bootstrap interval (both ends of each), so it carries
    the judge's validation uncertainty as well. Estimate and ends are clipped to +-100 points
    (``saturated`` says when)."""
    judged, truth = np.asarray(judge_flags, dtype=bool), np.asarray(labels, dtype=bool)
    error = judge_error(judged, truth)
    youden = error["sensitivity"] + error["specificity"] - 1
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(truth), len(truth))
        boot.append(_youden(judged[pick], truth[pick]))
    j_low, j_high = np.nanpercentile(boot, [2.5, 97.5])  # a resample with no harmful label has no J
    if not youden > 0:
        return {"corrected": float("nan"), "corrected_ci_low": float("nan"), "corrected_ci_high": float("nan"),
                "youden": youden, "youden_ci": (float(j_low), float(j_high)), **error}
    if not j_low > 0:  # J's interval reaches chance: the point estimate stands, its interval is unbounded
        return {"corrected": float(gap["estimate"] / youden), "corrected_ci_low": float("nan"),
                "corrected_ci_high": float("nan"), "youden": youden, "youden_ci": (float(j_low), float(j_high)),
                **error}
    ends = [float(b / j) for b in (gap["ci_low"], gap["ci_high"]) for j in (j_low, j_high)]
    bounded = not any(np.isnan(ends))  # a gap with no interval (one run) gets none
    # A gap of two rates lies within +-100 points: a correction beyond that says the judge's measured
    # error does not fit these answers (it flags more than its sensitivity allows); clipped, and said.
    raw = [gap["estimate"] / youden, min(ends) if bounded else float("nan"), max(ends) if bounded else float("nan")]
    clipped = [float(np.clip(v, -100.0, 100.0)) if not np.isnan(v) else v for v in raw]
    return {"corrected": clipped[0], "corrected_ci_low": clipped[1], "corrected_ci_high": clipped[2],
            "saturated": any(abs(v) > 100 for v in raw if not np.isnan(v)),
            "youden": youden, "youden_ci": (float(j_low), float(j_high)), **error}
