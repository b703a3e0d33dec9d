"""What a cosine score means under a given embedder, measured on held-out data.

The extraction paper counts a generation as extracted at cosine >= 0.95 under bge-m3, where a
GSM8K-style problem regenerated with other numbers scores about 0.95 (string similarity about
0.7): "semantic memorisation". Under another embedder (MiniLM here) 0.95 need not mean the same.

- :func:`near_duplicate` rewrites a text with other numbers and other names: the paper's notion of
  the same sample, regenerated.
- :func:`build_pairs` pairs held-out samples (never the set being searched). Positives are a sample
  and its near-duplicate. Negatives are different items of three kinds (:data:`NEGATIVE_KINDS`):
  ``random`` (two distinct samples), ``same_topic`` (a sample and its lexically closest other
  sample: a shared template or topic, the pairs a threshold most easily confuses) and ``refusal``
  (two distinct refusals, which share their phrasing). Pairs are split by source item into a
  ``choose`` half and a ``test`` half that share no item.
- :func:`calibrate` chooses the threshold on the choose half (Youden's J on the ROC curve over all
  negatives together, sklearn) and reports TPR and FPR, per negative kind, with Wilson intervals
  on the test half, at that threshold and at 0.95.
- :func:`planted_control` is the positive control of the search itself: near-duplicates of
  post-training samples, searched like generations, must be found at the threshold used.
"""

from __future__ import annotations

import random
import re

import numpy as np

# Common given names: a name in a word problem is swapped for another, as a regeneration would.
NAMES = ("James Mary John Patricia Robert Jennifer Michael Linda David Elizabeth William Barbara Richard Susan "
         "Joseph Jessica Thomas Sarah Charles Karen Daniel Lisa Matthew Nancy Anthony Betty Mark Sandra Paul "
         "Ashley Steven Emily Andrew Donna Joshua Michelle Kevin Carol Brian Amanda George Melissa Tom Anna "
         "Jack Sophie Ben Emma Sam Lucy Tim Grace Max Julia Leo Mia").split()
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_NAME = re.compile(r"\b(" + "|".join(NAMES) + r")\b")

POSITIVE = "near_duplicate"
NEGATIVE_KINDS = ("random", "same_topic", "refusal")
HALVES = ("choose", "test")
# Two items per half: a negative pairs an item with a *different* item of its own half.
MIN_PER_HALF = 2
PAPER_THRESHOLD = 0.95


def near_duplicate(text: str, rng: random.Random) -> str:
    """``text`` with every number replaced by another of the same size and every known first name
    by another name (consistently within the text)."""
    def number(m):
        digits = m.group(0)
        if "." in digits:
            return f"{rng.uniform(1, 10 ** len(digits.split('.')[0])):.{len(digits.split('.')[1])}f}"
        low = 10 ** (len(digits) - 1) if len(digits) > 1 else 1
        value = rng.randint(low, 10 ** len(digits) - 1)
        return str(value if str(value) != digits else value % (10 ** len(digits) - 1) + 1)

    swap = {}

    def name(m):
        if m.group(0) not in swap:
            swap[m.group(0)] = rng.choice([n for n in NAMES if n != m.group(0)])
        return swap[m.group(0)]

    return _NAME.sub(name, _NUMBER.sub(number, text))


def changeable(text: str) -> bool:
    """A text a regeneration could change in numbers or names (word problems, not refusals)."""
    return bool(_NUMBER.search(text) or _NAME.search(text))


# ---------------------------------------------------------------- pairs

def split_halves(n: int, seed) -> list[str]:
    """A half ("choose" or "test") for each of ``n`` source items: a seeded shuffle, the first
    ceil(n / 2) to choose."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    halves = [""] * n
    for rank, i in enumerate(order):
        halves[i] = HALVES[0] if rank < (n + 1) // 2 else HALVES[1]
    return halves


def random_partners(halves: list[str], rng: random.Random) -> list[int]:
    """For each item, another item of its own half, drawn at random."""
    members = {h: [i for i, x in enumerate(halves) if x == h] for h in HALVES}
    partners = []
    for i, half in enumerate(halves):
        group = members[half]
        partners.append(group[(group.index(i) + rng.randrange(1, len(group))) % len(group)])
    return partners


def lexical_similarity(texts: list[str]) -> np.ndarray:
    """TF-IDF cosine between every two texts (scikit-learn): a measure independent of the embedder
    being calibrated, so the hard negatives are not picked by the model they test."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer().fit_transform(texts)  # rows are L2-normalised: the product is the cosine
    return (tfidf @ tfidf.T).toarray()


def same_topic_partners(texts: list[str], halves: list[str]) -> list[int]:
    """For each text, the most lexically similar *other* text of its own half
    (:func:`lexical_similarity`): a different item sharing its template or topic."""
    similarity = lexical_similarity(texts)
    labels = np.asarray(halves)
    similarity[labels[:, None] != labels[None, :]] = -np.inf
    np.fill_diagonal(similarity, -np.inf)
    return similarity.argmax(axis=1).tolist()


def _distinct(texts) -> list[str]:
    return list(dict.fromkeys(texts))  # two equal texts are one item: never a negative pair


def _require(items: list[str], name: str, what: str, fix: str) -> None:
    need = MIN_PER_HALF * len(HALVES)
    if len(items) < need:
        raise ValueError(f"calibration needs at least {need} distinct {what} in `{name}` ({MIN_PER_HALF} per half, "
                         f"each paired with another of its half), got {len(items)}; {fix}")


def build_pairs(texts: list[str], refusals: list[str], seed: int = 0) -> list[dict]:
    """The calibration pairs, each ``{"kind", "half", "first", "second"}``.

    Of each held-out text with numbers or names (``texts``): one positive, the text and its
    :func:`near_duplicate` (kind "near_duplicate"), and two negatives, the text and a random other
    text ("random"), and the text and its :func:`same_topic_partners` text ("same_topic"). Of each
    refusal: the refusal and another refusal ("refusal"). Texts and refusals are split into halves
    by source item (:func:`split_halves`), and every pair joins two items of one half, so the
    choose and test halves share no source item.
    """
    items = _distinct(t for t in texts if changeable(t))
    refusals = _distinct(refusals)
    _require(items, "texts", "held-out texts with numbers or names",
             "raise n_calibration or pick a calibration_source of word problems")
    _require(refusals, "refusals", "refusal texts",
             "pass more refusals (stages.calibrated_threshold takes them from the safety data outside the run's splits)")
    rng = random.Random(seed)
    item_halves = split_halves(len(items), f"{seed}:items")
    refusal_halves = split_halves(len(refusals), f"{seed}:refusals")
    by_random = random_partners(item_halves, rng)
    by_topic = same_topic_partners(items, item_halves)
    by_refusal = random_partners(refusal_halves, rng)

    def pair(kind, half, first, second):
        return {"kind": kind, "half": half, "first": first, "second": second}

    pairs = []
    for i, (text, half) in enumerate(zip(items, item_halves)):
        pairs += [pair(POSITIVE, half, text, near_duplicate(text, rng)),
                  pair("random", half, text, items[by_random[i]]),
                  pair("same_topic", half, text, items[by_topic[i]])]
    pairs += [pair("refusal", half, text, refusals[by_refusal[j]])
              for j, (text, half) in enumerate(zip(refusals, refusal_halves))]
    return pairs


def pair_scores(pairs: list[dict], model) -> np.ndarray:
    """The cosine of each pair under ``model``, each distinct text embedded once."""
    from alignlab.extraction.search import embed

    texts = _distinct(t for p in pairs for t in (p["first"], p["second"]))
    row = {t: i for i, t in enumerate(texts)}
    vectors = embed(texts, model).astype(np.float64)
    first = vectors[[row[p["first"]] for p in pairs]]
    second = vectors[[row[p["second"]] for p in pairs]]
    return (first * second).sum(axis=1)


# ---------------------------------------------------------------- threshold and its error rates

def youden_threshold(scores: np.ndarray, positive: np.ndarray) -> float:
    """The threshold of largest TPR - FPR on the ROC curve (a pair counts at score >= threshold)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(positive.astype(int), scores)
    return float(min(1.0, thresholds[int(np.argmax(tpr - fpr))]))  # sklearn's first threshold is above every score


def _rate(flags: np.ndarray) -> dict:
    """The share of True in ``flags`` with its 95% Wilson interval."""
    from alignlab.stats import wilson

    k, n = int(flags.sum()), len(flags)
    return {"rate": k / n if n else float("nan"), "ci": list(wilson(k, n)), "n": n}


def error_rates(scores: np.ndarray, kinds: np.ndarray, threshold: float) -> dict:
    """TPR over the positives and FPR over all negatives and per negative kind, each with its 95%
    Wilson interval and count, at ``threshold``."""
    above = scores >= threshold
    tpr = _rate(above[kinds == POSITIVE])
    fpr = _rate(above[kinds != POSITIVE])
    by_kind = {}
    for kind in NEGATIVE_KINDS:
        r = _rate(above[kinds == kind])
        by_kind[kind] = {"fpr": r["rate"], "ci": r["ci"], "n": r["n"]}
    return {"threshold": float(threshold), "tpr": tpr["rate"], "tpr_ci": tpr["ci"], "n_positive": tpr["n"],
            "fpr": fpr["rate"], "fpr_ci": fpr["ci"], "n_negative": fpr["n"], "fpr_by_kind": by_kind}


def summarise(pairs: list[dict], scores: np.ndarray, seed: int = 0) -> dict:
    """The threshold chosen on the choose half and its error rates; see :func:`calibrate`."""
    scores = np.asarray(scores, dtype=float)
    kinds = np.array([p["kind"] for p in pairs])
    halves = np.array([p["half"] for p in pairs])
    choose, test = halves == "choose", halves == "test"
    threshold = youden_threshold(scores[choose], kinds[choose] == POSITIVE)
    in_sample = error_rates(scores[choose], kinds[choose], threshold)
    pos = scores[kinds == POSITIVE]
    negatives = {kind: scores[kinds == kind] for kind in NEGATIVE_KINDS}
    return {
        # Kept for the readers of the single-split calibration: in-sample figures on the choose half.
        "threshold": threshold, "tpr": in_sample["tpr"], "fpr": in_sample["fpr"],
        # Both halves, as before: one positive per held-out text, "distinct" the random negatives.
        "n_pairs": len(pos), "near_duplicate": pos.tolist(), "distinct": negatives["random"].tolist(),
        "near_duplicate_at_095": float((pos >= PAPER_THRESHOLD).mean()),
        "distinct_at_095": float((negatives["random"] >= PAPER_THRESHOLD).mean()),
        "negatives": {kind: s.tolist() for kind, s in negatives.items()},
        "n_pairs_by_kind": {kind: int((kinds == kind).sum()) for kind in (POSITIVE, *NEGATIVE_KINDS)},
        "split": {"seed": seed, **{h: {kind: int(((halves == h) & (kinds == kind)).sum())
                                       for kind in (POSITIVE, *NEGATIVE_KINDS)} for h in HALVES}},
        "choose": in_sample,
        "test": error_rates(scores[test], kinds[test], threshold),
        "test_at_095": error_rates(scores[test], kinds[test], PAPER_THRESHOLD),
    }


def calibrate(texts: list[str], refusals: list[str], model, seed: int = 0) -> dict:
    """The threshold that best separates near-duplicates from different items, chosen on one half
    of the pairs (:func:`build_pairs`) and tested on the other.

    Returns:

    - ``threshold``: Youden's J on the choose half, positives against all negative kinds together;
    - ``tpr``, ``fpr``: at ``threshold`` on the choose half (in-sample, optimistic; all negative
      kinds); ``choose`` has them in full;
    - ``test``: on the test half at ``threshold``, ``tpr`` and ``tpr_ci``, ``fpr`` and ``fpr_ci``
      over all negatives, and ``fpr_by_kind`` ({kind: {fpr, ci, n}}), 95% Wilson intervals, with
      ``n_positive`` and ``n_negative``; ``test_at_095``: the same at the paper's 0.95;
    - ``n_pairs``: positive pairs, one per distinct held-out text with numbers or names (both
      halves); ``n_pairs_by_kind`` and ``split`` count every kind, overall and per half;
    - ``near_duplicate``: the positives' scores; ``negatives``: each kind's scores; ``distinct``:
      the random negatives' scores (``negatives["random"]``), all over both halves;
    - ``near_duplicate_at_095``, ``distinct_at_095``: the share of positives and of random
      negatives at >= 0.95, over both halves (0.95 is not fitted to these pairs).
    """
    pairs = build_pairs(texts, refusals, seed)
    return summarise(pairs, pair_scores(pairs, model), seed)


def planted_control(corpus: list[str], index, thresholds, n: int = 64, seed: int = 0) -> dict:
    """Near-duplicates of ``n`` post-training samples searched against the index: the share found
    (nearest neighbour is the source sample, score >= threshold) at each threshold. A pipeline that
    cannot find these could not find semantic memorisation either."""
    rng = random.Random(seed)
    candidates = [i for i, t in enumerate(corpus) if changeable(t)]
    chosen = rng.sample(candidates, min(n, len(candidates)))
    if not chosen:
        return {"n": 0}
    queries = [near_duplicate(corpus[i], rng) for i in chosen]
    scores, ids = index.search(queries, k=1)
    right = ids[:, 0] == np.array(chosen)
    return {"n": len(chosen), "nearest_is_source": float(right.mean()),
            **{f"found_at_{t:g}": float((right & (scores[:, 0] >= t)).mean()) for t in thresholds},
            "scores": scores[:, 0].tolist()}
