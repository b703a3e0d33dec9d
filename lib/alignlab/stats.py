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
