"""The extraction study's stages (notebooks 05-07), cached like the Vaccine stages.

One home per rule: :func:`matches` (every target x prefix), :func:`rates` and :func:`ratios`
(embedding vs string matching), :func:`distillation_sets` (the selection rule) and
:func:`distillation`; notebooks, ``alignlab.claims`` and scripts call them.
"""

import functools
import os
import random

import numpy as np
import pandas as pd

from alignlab import evaluation
from alignlab.alignment import TRAINING, align_settings, model_path
from alignlab.cache import read_json, stage_dir, timed, timed_stage, write_json
from alignlab.scoring import score, summary
from alignlab.profile import DOSE_SET, Run
from alignlab.stats import wilson

METRICS = ("embedding", "levenshtein", "indel")
STRING_METRICS = METRICS[1:]

CODE = {
    "samples": ("extraction.sampling", "shards", "chat", "models"),
    "index": ("extraction.search", "models", "shards", "chat"),
    "match": ("extraction.search", "extraction.sampling", "shards", "chat", "models"),
    "distill": TRAINING,
}
CODE["match_parts"] = CODE["match"]
# The extraction paper's mean best embedding score of OLMo 2's generations by prefix: the bare
# start-of-turn token, and the user header without a system turn ("<|im_start|>user\n").
PAPER_PREFIX_SCORES = {"bare_start": 0.857, "user_header_no_system": 0.892}
NOT_RUN = {"samples": ("data",), "match": ("data",), "match_parts": ("data",)}  # sampling imports DataError only

evaluate = timed_stage("evaluate")(evaluation.evaluate)


def _dir(run: Run, stage: str, **params):
    return stage_dir(run.profile.name, stage, code=CODE[stage], **params)


def post_training_set(run: Run, target: str) -> str:
    """The post-training set an extraction target is searched against (``extraction_targets``)."""
    targets = run.profile.extraction_targets
    if target not in targets:
        raise ValueError(f"{target!r} is not an extraction target; extraction_targets={targets}")
    return targets[target]


def extraction_model(run: Run, target: str) -> str:
    """"sft" is notebook 01's SFT model, "base" the model before alignment (the negative control:
    never trained on the set), ``sft@<epochs>`` and ``sft_full@<epochs>`` the doses of the
    memorisation dose-response (:mod:`alignlab.extraction.dose`); any other target is a hub id or a
    path (paper profile: OLMo 2 Instruct, searched against the Tulu 3 SFT mixture)."""
    from alignlab.extraction.dose import dose_model, is_dose

    return dose_model(run, target) if is_dose(target) else model_path(run, target)


def post_training_texts(run: Run, target: str) -> list[str]:
    """A target's post-training set as the extraction study sees it: question and answer, one
    text each. "alignment" is this run's alignment set; any other name is a dataset of alignlab.data."""
    from alignlab.chat import sample_text
    from alignlab.models import HUB_MIRROR_ENV

    name = post_training_set(run, target)
    if name not in (DOSE_SET, "alignment"):
        return list(_dataset_texts(name, os.environ.get(HUB_MIRROR_ENV)))
    return [sample_text(question, answer) for question, answer in post_training_pairs(run, target)]


@functools.lru_cache(maxsize=1)
def _dataset_texts(name: str, mirror: str | None) -> list[str]:
    """A dataset's texts, built once for all the arms that search it (Tulu 3: 939k rows, one set
    held at a time); keyed by the hub mirror too, since a stand-in is another dataset."""
    from alignlab.chat import sample_text

    return [sample_text(question, answer) for question, answer in _dataset_pairs(name, mirror)]


def post_training_index(run: Run, texts: list[str]):
    """The FAISS index of a post-training set (:func:`post_training_texts`), built once and
    reloaded with checks."""
    from alignlab.extraction.search import EmbeddingIndex, fingerprint

    model = run.profile.embedding_model
    kind = "ivf" if len(texts) >= run.profile.ivf_from else "flat"  # docs/gpu.md: Scale-out
    folder = _dir(run, "index", texts=fingerprint(texts), model=model, kind=kind)
    if (folder / "index").exists():
        try:
            return EmbeddingIndex.load(folder / "index", model=model, texts=texts)
        except ValueError:
            pass  # a corrupt or mismatched index is rebuilt, never used
    with timed(run.profile.name, "index"):
        index = EmbeddingIndex.build(texts, model=model, kind=kind)
        index.save(folder / "index")
    return index


def samples(run: Run, target: str, prefix: str) -> list[dict]:
    """``Profile.samples_per_arm`` generations of an extraction target from a chat-template prefix
    alone (resumable)."""
    from alignlab.chat import resolve_prefix
    from alignlab.extraction.sampling import sample, stored_records
    from alignlab.models import load_model, load_tokenizer

    p = run.profile
    model_path = extraction_model(run, target)
    # Keyed by the prefix's text, not its name: where two names give one text (a template-less
    # model's user_header and user_header_no_system), the arms share one store, sampled once.
    prefix_text = resolve_prefix(load_tokenizer(model_path), prefix)
    store = _dir(run, "samples", model=model_path, prefix=prefix_text, seed=p.seed,
                 max_new_tokens=p.sample_max_new_tokens) / "generations.jsonl"
    done = stored_records(store, p.samples_per_arm(target, prefix), prefix=prefix_text, seed=p.seed,
                          max_new_tokens=p.sample_max_new_tokens, batch_size=p.sample_batch_size)
    if done is not None:  # a finished arm: no model load (a 7B model on the paper profile)
        return done
    with timed(p.name, "samples"):
        model, tokenizer = load_model(model_path)
        return sample(model, tokenizer, prefix, p.samples_per_arm(target, prefix), store,
                      batch_size=p.sample_batch_size, max_new_tokens=p.sample_max_new_tokens, seed=p.seed)


def cut_off(run: Run, target: str, prefix: str) -> dict:
    """How many of an arm's generations stopped at ``sample_max_new_tokens`` before their answer
    ended: a finished generation ends with a special token (its end of turn), a cut one with text."""
    from alignlab.models import load_tokenizer

    tokenizer = load_tokenizer(extraction_model(run, target))
    ends = tuple(t for t in tokenizer.all_special_tokens if t)
    records = samples(run, target, prefix)
    cut = sum(not r["text"].rstrip().endswith(ends) for r in records)
    low, high = wilson(cut, len(records))
    return {"target": target, "prefix": prefix, "n": len(records), "cut_off": cut,
            "cut_off_pct": 100.0 * cut / len(records), "cut_off_ci": [100.0 * low, 100.0 * high]}


def sample_stages(run: Run) -> list[list[dict]]:
    """:func:`samples` for every target and prefix (``alignlab.train``; under ``accelerate launch``
    each process samples a share of the batches)."""
    return [samples(run, t, prefix) for t, prefix in run.profile.extraction_arms()]


def nearest_ids(ids) -> list[int]:
    """Each generation's nearest corpus id from a search's (n, k) ids. FAISS marks a missing
    neighbour with -1 (an IVF probe that found nothing), which as an index would silently read
    the corpus's last row: refused, with the fix."""
    first = [int(i) for i in ids[:, 0]]
    missing = sum(i < 0 for i in first)
    if missing:
        raise ValueError(f"{missing} of {len(first)} generations have no nearest neighbour in the post-training "
                         "index (FAISS id -1: its IVF probes found no vector); raise the index's nprobe or build "
                         "a flat index (raise the profile's ivf_from above the set's size)")
    return first


def match(run: Run, target: str, prefix: str) -> list[dict]:
    """Per generation of a target: the nearest post-training sample by embedding, and the best
    string similarities over the whole post-training set.

    Above ``string_exact_max`` samples (Tulu 3: 939k) the whole-set string scan would take CPU-days,
    so a generation's string score is its best among the embedding's ``string_top_k`` neighbours
    (a lower bound), and the whole-set best (``<metric>_whole_set``) is computed for a random
    ``string_exact_sample`` of generations, to measure what the bound misses
    (:func:`string_bound_check`)."""
    from alignlab.chat import sample_text
    from alignlab.extraction.search import fingerprint, string_similarity, string_similarity_among

    p = run.profile
    records = samples(run, target, prefix)
    corpus = post_training_texts(run, target)
    texts = [sample_text(r["question"], r["answer"]) for r in records]
    bounded = len(corpus) > p.string_exact_max
    folder = _dir(run, "match", target=target, prefix=prefix, texts=texts, corpus=fingerprint(corpus),
                  model=p.embedding_model, **({"top_k": p.string_top_k, "exact_sample": p.string_exact_sample,
                                                "seed": p.seed} if bounded else {}))
    cached = read_json(folder / "match.json")
    if cached is not None:
        return cached
    index = post_training_index(run, corpus)  # timed as a stage of its own
    with timed(p.name, "match"):
        scores, ids = index.search(texts, k=p.string_top_k if bounded else 1)
        nearest = nearest_ids(ids)  # fails before anything is scored if a generation has no neighbour
        strings, whole_set = {}, {}
        sampled = sorted(random.Random(p.seed).sample(range(len(texts)), min(p.string_exact_sample, len(texts)))) \
            if bounded else []
        for metric in STRING_METRICS:
            if bounded:
                strings[metric] = string_similarity_among(texts, corpus, ids, metric)
                # brute force on every core: length pruning saves nothing on unrelated texts (docs/performance.md)
                exact = string_similarity([texts[i] for i in sampled], corpus, metric=metric, prune=False, workers=-1)
                whole_set[metric] = dict(zip(sampled, exact.tolist()))
            else:
                strings[metric] = string_similarity(texts, corpus, metric=metric)
        rows = [{"method": target, "prefix": prefix, "id": r["id"], "question": r["question"], "answer": r["answer"],
                 "generation": t, "embedding": float(scores[i, 0]), "nearest": corpus[nearest[i]],
                 **{m: float(strings[m][i]) for m in STRING_METRICS},
                 "string_scope": f"top {p.string_top_k} by embedding" if bounded else "whole set",
                 **{f"{m}_whole_set": whole_set[m].get(i) for m in whole_set}}
                for i, (r, t) in enumerate(zip(records, texts))]
        write_json(folder / "match.json", rows)
    return rows


def string_bound_check(scores: pd.DataFrame, threshold: float) -> dict | None:
    """Where :func:`match` bounded the string baselines by the embedding's neighbours: on the
    generations also scored against the whole set, how often the bound equals the whole-set best,
    the largest gap, and how many string matches at ``threshold`` the bound missed (each one
    inflates the embedding / string ratio). None where every string score is whole-set."""
    if "levenshtein_whole_set" not in scores or scores["levenshtein_whole_set"].isna().all():
        return None
    sample = scores.dropna(subset=["levenshtein_whole_set"])
    out = {"n": len(sample), "scope": sample["string_scope"].iloc[0]}
    for m in STRING_METRICS:
        gap = sample[f"{m}_whole_set"] - sample[m]
        out[m] = {"equal": float((gap <= 1e-9).mean()), "max_gap": float(gap.max()),
                  "whole_set_matches": int((sample[f"{m}_whole_set"] >= threshold).sum()),
                  "missed": int(((sample[f"{m}_whole_set"] >= threshold) & (sample[m] < threshold)).sum())}
    return out


def matches(run: Run, targets=None) -> pd.DataFrame:
    """:func:`match` for every arm (``Profile.extraction_arms``), or every arm of ``targets``."""
    arms = [(t, prefix) for t, prefix in run.profile.extraction_arms() if targets is None or t in targets]
    return pd.DataFrame([m for t, prefix in arms for m in match(run, t, prefix)])


def rates(scores: pd.DataFrame, thresholds) -> pd.DataFrame:
    """Extraction rate (%) by each metric at each threshold (a generation counts at score >= t)."""
    return pd.DataFrame([{"threshold": t, **{m: 100.0 * float((scores[m].to_numpy() >= t).mean()) for m in METRICS}}
                         for t in thresholds])


def rates_by_target(scores: pd.DataFrame, thresholds) -> pd.DataFrame:
    """:func:`rates` of each target (``method``), one table with a ``target`` column."""
    return pd.concat([rates(scores[scores["method"] == t], thresholds).assign(target=t)
                      for t in scores["method"].unique()], ignore_index=True)


def ratios(scores: pd.DataFrame, threshold: float) -> dict:
    """Extraction rates at ``threshold`` and the embedding / string ratios (None where no string
    match exists: the ratio is unbounded, or 0/0 when embeddings found nothing either)."""
    at = {m: float(v) for m, v in rates(scores, [threshold]).iloc[0][list(METRICS)].items()}
    return {"at_threshold": at, "threshold": threshold,
            **{f"ratio_embedding_to_{m}": (at["embedding"] / at[m] if at[m] > 0 else None)
               for m in ("levenshtein", "indel")}}


MIN_MATCHES_FOR_RATIO = 10


def ratio_interval(scores: pd.DataFrame, threshold: float, string_metric: str = "levenshtein",
                   n_boot: int = 2000, seed: int = 0) -> dict:
    """The embedding / string extraction ratio with a percentile bootstrap over generations,
    computed only where at least :data:`MIN_MATCHES_FOR_RATIO` generations match by embedding."""
    emb = scores["embedding"].to_numpy() >= threshold
    txt = scores[string_metric].to_numpy() >= threshold
    out = {"n": int(len(emb)), "embedding_matches": int(emb.sum()), "string_matches": int(txt.sum()),
           "threshold": threshold, "string_metric": string_metric}
    if emb.sum() < MIN_MATCHES_FOR_RATIO:
        return {**out, "estimate": None, "ci_low": None, "ci_high": None,
                "note": f"only {int(emb.sum())} embedding matches (< {MIN_MATCHES_FOR_RATIO}): no ratio"}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(emb), size=(n_boot, len(emb)))
    boot = emb[idx].sum(axis=1) / np.maximum(txt[idx].sum(axis=1), 0.5)  # +0.5: a lower bound where strings find 0
    estimate = float(emb.sum() / max(txt.sum(), 0.5))
    return {**out, "estimate": estimate, "ci_low": float(np.percentile(boot, 2.5)),
            "ci_high": float(np.percentile(boot, 97.5)), "note": "" if txt.sum() else "no string match: ratio >= bound"}


def rate_difference(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """k1/n1 - k2/n2 with Newcombe's 95% hybrid score interval (his method 10: each rate's Wilson
    interval, combined), which keeps its coverage where a rate is 0, as a control's often is."""
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = wilson(k1, n1), wilson(k2, n2)
    return p1 - p2, p1 - p2 - float(np.hypot(p1 - l1, u2 - p2)), p1 - p2 + float(np.hypot(u1 - p1, p2 - l2))


def rate_test(scores: pd.DataFrame, target: str, control: str, prefix: str, threshold: float) -> dict:
    """Extraction rate (% at ``threshold``) of ``target`` against ``control``, same prefix: Fisher's
    exact test, each rate's Wilson interval, and the mean best-score difference with a bootstrap
    interval (scipy)."""
    from scipy import stats

    def arm(name):
        rows = scores[(scores["method"] == name) & (scores["prefix"] == prefix)]
        if rows.empty:
            raise ValueError(f"no generations of {name!r} with prefix {prefix!r}: add it to extraction_targets/prefixes")
        return rows["embedding"].to_numpy()

    a, b = arm(target), arm(control)
    ka, kb = int((a >= threshold).sum()), int((b >= threshold).sum())
    gap, gap_low, gap_high = rate_difference(ka, len(a), kb, len(b))
    ci = {name: stats.binomtest(k, len(x)).proportion_ci(method="wilson") for name, k, x in (("a", ka, a), ("b", kb, b))}
    _, p_value = stats.fisher_exact([[ka, len(a) - ka], [kb, len(b) - kb]], alternative="greater")
    diff = stats.bootstrap((a, b), lambda x, y: np.mean(x) - np.mean(y), vectorized=False, n_resamples=2000,
                           method="percentile", rng=np.random.default_rng(0)).confidence_interval
    return {"target": target, "control": control, "prefix": prefix, "threshold": threshold,
            "n_target": len(a), "n_control": len(b), "rate_target": 100.0 * ka / len(a),
            "rate_control": 100.0 * kb / len(b),
            "rate_target_ci": [100.0 * ci["a"].low, 100.0 * ci["a"].high],
            "rate_control_ci": [100.0 * ci["b"].low, 100.0 * ci["b"].high], "fisher_p": float(p_value),
            "rate_diff": 100.0 * gap, "rate_diff_ci": [100.0 * gap_low, 100.0 * gap_high],
            "mean_score_target": float(a.mean()), "mean_score_control": float(b.mean()),
            "mean_score_diff": float(a.mean() - b.mean()), "mean_score_diff_ci": [float(diff.low), float(diff.high)]}


def dose_response(run: Run, scores: pd.DataFrame, thresholds) -> list[dict]:
    """The memorisation dose-response: each dose of post-training against its control on the first
    prefix, at each threshold (:func:`rate_test`). The control is ``sft@0`` (the model before
    post-training, searched against the doses' set) where the profile names it, else the main
    control (``main_targets[-1]``). Rows by loss, then epochs, then seed (a replicate run's own, or
    the profile's first)."""
    from alignlab.extraction.dose import parse_dose

    p = run.profile
    parsed = {t: parse_dose(t) for t in p.dose_targets()}
    control = next((t for t, dose in parsed.items() if dose.epochs == 0), p.main_targets[-1])
    seed = lambda dose: p.seeds[0] if dose.seed is None else dose.seed
    ordered = sorted(((t, dose) for t, dose in parsed.items() if dose.epochs > 0),
                     key=lambda item: (item[1].loss != "completion", item[1].epochs, seed(item[1])))
    return [{"epochs": dose.epochs, "loss": dose.loss, "seed": seed(dose),
             "post_training_set": p.extraction_targets[target], **rate_test(scores, target, control, p.prefixes[0], t)}
            for target, dose in ordered for t in thresholds]


def memorising_arm(doses: pd.DataFrame, threshold: float) -> str | None:
    """The dose whose extraction rate exceeds the control's most at ``threshold``, if the
    difference's interval lies above 0 (:func:`dose_response`'s rows); None where no dose memorises."""
    at = doses[(doses["threshold"] == threshold) & (doses["rate_diff_ci"].str[0] > 0)]
    return None if at.empty else str(at.loc[at["rate_diff"].idxmax(), "target"])


def replicate_runs(doses: list[dict], threshold: float) -> list[dict]:
    """The training runs (seeds) of the top dose's most memorising loss at ``threshold``: the rows of
    :func:`dose_response` a manipulation check over runs reads."""
    at = [r for r in doses if r["threshold"] == threshold]
    top = max(r["epochs"] for r in at)
    by_loss = {}
    for r in at:
        if r["epochs"] == top:
            by_loss.setdefault(r["loss"], []).append(r)
    # the loss whose runs exceed the control most on average; on a tie, the one with more runs
    return max(by_loss.values(), key=lambda runs: (np.mean([r["rate_diff"] for r in runs]), len(runs)))


def post_training_pairs(run: Run, target: str) -> list[tuple[str, str]]:
    """(question, answer) of each sample of a target's post-training set, in
    :func:`post_training_texts`' order."""
    from alignlab.models import HUB_MIRROR_ENV

    name = post_training_set(run, target)
    if name == DOSE_SET:
        from alignlab.extraction.dose import dose_records

        return [(r["prompt"], r["response"]) for r in dose_records(run)]
    if name == "alignment":
        return [(r["prompt"], r["response"]) for r in run.splits.alignment_set]
    return _dataset_pairs(name, os.environ.get(HUB_MIRROR_ENV))


@functools.lru_cache(maxsize=1)
def _dataset_pairs(name: str, mirror: str | None) -> list[tuple[str, str]]:
    """A dataset's rows as (question, answer), built once for all the arms and parts that search it."""
    from alignlab.data import load_dataset

    return [(r["prompt"], r["response"]) for r in load_dataset(name)]


def match_parts(run: Run, target: str, prefix: str) -> list[dict]:
    """The question and the answer of each generation scored apart: the question's best cosine
    among the post-training set's questions, the answer's among its answers (None where the
    generation has no such part, e.g. cut off before its answer), and whether both nearest ones
    are the same sample. A model trained with the loss on the answer alone can learn the answers
    and never write a training question back: this tells the two apart."""
    from alignlab.extraction.search import fingerprint

    p = run.profile
    records = samples(run, target, prefix)
    pairs = post_training_pairs(run, target)
    folder = _dir(run, "match_parts", target=target, prefix=prefix, model=p.embedding_model,
                  corpus=fingerprint(["\n".join(pair) for pair in pairs]),
                  generations=[(r["question"], r["answer"]) for r in records])
    cached = read_json(folder / "match_parts.json")
    if cached is not None:
        return cached
    found = {}
    with timed(p.name, "match_parts"):
        for part, column in (("question", 0), ("answer", 1)):
            index = post_training_index(run, [pair[column] for pair in pairs])
            present = [i for i, r in enumerate(records) if r[part].strip()]
            scores, ids = index.search([records[i][part] for i in present], k=1) if present else ([], [])
            found[part] = {i: (float(scores[j, 0]), nearest_ids(ids)[j]) for j, i in enumerate(present)}
        rows = [{"method": target, "prefix": prefix, "id": r["id"],
                 **{f"{part}_score": found[part][i][0] if i in found[part] else None for part in found},
                 "same_sample": i in found["question"] and i in found["answer"]
                                and found["question"][i][1] == found["answer"][i][1]}
                for i, r in enumerate(records)]
        write_json(folder / "match_parts.json", rows)
    return rows


def part_rates(run: Run, scores: pd.DataFrame, targets, threshold: float) -> pd.DataFrame:
    """Per target on the first prefix, at ``threshold``: the share (%, Wilson interval) of
    generations whose question matches a training question, whose answer matches a training
    answer, whose question and answer match one and the same sample, and whose whole text matches
    (:func:`match`, the paper's measure)."""
    rows = []
    for target in targets:
        parts = pd.DataFrame(match_parts(run, target, run.profile.prefixes[0]))
        whole = scores[(scores["method"] == target) & (scores["prefix"] == run.profile.prefixes[0])]["embedding"]
        hits = {"question": parts["question_score"].fillna(0) >= threshold,
                "answer": parts["answer_score"].fillna(0) >= threshold}
        hits["both, same sample"] = hits["question"] & hits["answer"] & parts["same_sample"]
        hits["whole text"] = whole >= threshold
        for part, hit in hits.items():
            k, n = int(hit.sum()), len(hit)
            low, high = wilson(k, n)
            rows.append({"target": target, "part": part, "threshold": threshold, "k": k, "n": n,
                         "rate": 100.0 * k / n, "rate_ci": [100.0 * low, 100.0 * high]})
    return pd.DataFrame(rows)


def prefix_table(scores: pd.DataFrame, target: str) -> pd.DataFrame:
    """The paper's prefix table for one target: per prefix, the mean best embedding score of its
    generations with a t interval over generations, beside the paper's figure where it has one."""
    from scipy import stats

    rows = []
    for prefix, arm in scores[scores["method"] == target].groupby("prefix", sort=False):
        values = arm["embedding"].to_numpy()
        # identical scores (one generation written every time) give no interval, not a zero-width one
        ci = None if np.ptp(values) == 0 else \
            [float(x) for x in stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))]
        rows.append({"target": target, "prefix": prefix, "n": len(arm), "mean_score": float(values.mean()), "ci": ci,
                     "paper": PAPER_PREFIX_SCORES.get(prefix)})
    return pd.DataFrame(rows)


def paired_targets(scores: pd.DataFrame, first: str, second: str, prefix: str) -> dict:
    """Two targets sampled with the same seed and prefix: generation i of each comes from the same
    random stream, so their best scores pair by id. Wilcoxon signed-rank test (scipy)."""
    from scipy import stats

    chosen = scores if prefix is None else scores[scores["prefix"] == prefix]
    pick = lambda name: chosen[chosen["method"] == name].set_index("id")["embedding"]
    a, b = pick(first), pick(second)
    ids = a.index.intersection(b.index)
    if len(ids) < 2:
        return {"n": int(len(ids)), "p_value": None}
    d = a[ids].to_numpy() - b[ids].to_numpy()
    p_value = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    # identical differences have no spread to make an interval from
    low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d)) if np.any(d != d[0]) \
        else (-np.inf, np.inf)
    return {"first": first, "second": second, "prefix": prefix, "n": int(len(ids)), "mean_diff": float(d.mean()),
            "mean_diff_ci": [float(low), float(high)], "median_diff": float(np.median(d)), "p_value": p_value,
            "test": "Wilcoxon signed-rank, paired by sample id; t interval of the mean difference"}


def held_out_refusals(run: Run, n: int) -> list[str]:
    """Up to ``n`` refusal samples (a harmful request and its refusal, written as the alignment set's
    are) that no search of this run sees.

    Every refusal a run has is in its alignment set, which extraction searches, so these come from
    the safety source's rows outside the run's splits: on ``safety_source: offline``, harmful
    prompts (AdvBench, HarmBench, Do-Not-Answer) in none of the alignment, attack and evaluation
    splits, each refused by :func:`alignlab.responses.make_responses` as the alignment set's are
    (same template style, same data seed); on ``beavertails``, the safe answers of BeaverTails
    rows outside the alignment split (what that profile aligns on in place of refusals)."""
    from alignlab import responses
    from alignlab.chat import sample_text
    from alignlab.data import harmful_prompts, load_dataset, take

    p, s = run.profile, run.splits
    if p.safety_source == "beavertails":
        used = {str(r["id"]) for r in s.alignment}
        pool = [r for r in load_dataset("beavertails_safe") if str(r["id"]) not in used]
    else:
        used = {(r["source"], str(r["id"])) for r in s.alignment + s.harmful_ft + s.harmful_eval}
        pool = [r for r in harmful_prompts() if (r["source"], str(r["id"])) not in used]
    chosen = take(pool, {"refusals": min(n, len(pool))}, p.seed, "refusals outside the run's splits")["refusals"]
    if p.safety_source != "beavertails":
        refusals = responses.make_responses([r["prompt"] for r in chosen], "refusal", p.data_seed)
        chosen = [dict(r, response=a) for r, a in zip(chosen, refusals)]
    return [sample_text(r["prompt"], r["response"]) for r in chosen]


def calibrated_threshold(run: Run) -> dict:
    """The embedder's threshold for "the same sample with other numbers or names" against
    different items (:func:`alignlab.extraction.calibration.calibrate`), none of them in any
    post-training set searched here:

    - positives and the ``random`` and ``same_topic`` negatives: ``n_calibration`` held-out samples
      of ``calibration_source``, outside the alignment set and the benign evaluation set;
    - ``refusal`` negatives: ``n_calibration`` refusals from the safety data outside the run's
      splits (:func:`held_out_refusals`).

    The threshold is chosen on one half of the source items; its TPR and FPR per kind are reported
    on the other."""
    from alignlab.chat import sample_text
    from alignlab.data import load_dataset, take
    from alignlab.extraction.calibration import calibrate, changeable

    p = run.profile
    used = {(r["source"], str(r["id"])) for r in run.splits.alignment_set + run.splits.benign_eval}
    pool = [r for r in load_dataset(p.calibration_source)
            if (r["source"], str(r["id"])) not in used and changeable(r["prompt"] + r["response"])]
    held_out = take(pool, {"calibration": min(p.n_calibration, len(pool))}, p.seed, p.calibration_source)["calibration"]
    return calibrate([sample_text(r["prompt"], r["response"]) for r in held_out], held_out_refusals(run, p.n_calibration),
                     p.embedding_model, seed=p.seed)


def positive_control(run: Run, target: str, thresholds) -> dict:
    """Planted near-duplicates of the target's post-training samples, searched like generations."""
    from alignlab.extraction.calibration import planted_control

    corpus = post_training_texts(run, target)
    return planted_control(corpus, post_training_index(run, corpus), thresholds, seed=run.profile.seed)


def attacker_selection(found: list[dict], n: int) -> list[dict]:
    """What an attacker can keep of a target's generations without the private set: those with both a
    question and an answer, each question once (exact duplicates after case and whitespace are
    folded), the first ``n`` in sampling order. No score against the post-training set is read."""
    seen, kept = set(), []
    for m in found:
        question = " ".join(m["question"].lower().split())
        if question and m["answer"].strip() and question not in seen:
            seen.add(question)
            kept.append(m)
    return kept[:n]


def distillation_sets(run: Run) -> dict:
    """The sets notebook 07 distils on, ``n_distill`` samples each: the trained target's main-arm
    generations as an attacker would select them (:func:`attacker_selection`); as many original
    post-training samples; and as many generations of the base control (what distribution match
    alone gives), filtered the same way."""
    from alignlab.data import record

    p = run.profile
    trained, control = p.main_targets[0], p.main_targets[-1]
    found = match(run, trained, p.prefixes[0])
    selectable = attacker_selection(found, len(found))
    extracted = selectable[:p.n_distill]
    n = len(extracted)

    def as_record(m):
        return record(m["question"], m["answer"], "", f"generated:{m['method']}:{m['prefix']}", m["id"])

    rng = random.Random(p.seed)
    return {"n_generations": len(found), "n_selectable": len(selectable),
            "n_passed": sum(m["embedding"] >= p.threshold for m in extracted),  # reported, never used to select
            "sets": {"extracted": [as_record(m) for m in extracted],
                     "original": rng.sample(run.splits.alignment_set, n),
                     "base generations": [as_record(m) for m in
                                          attacker_selection(match(run, control, p.prefixes[0]), n)]}}


def distill(run: Run, name: str, records: list[dict]) -> dict:
    """The pre-alignment model fine-tuned (LoRA, merged) on ``records`` for ``distill_epochs``:
    the path of the model and its training losses (which must fall: the stage trained)."""
    import dataclasses

    from alignlab.cache import read_done
    from alignlab.training import align

    p = run.profile
    settings = dataclasses.replace(align_settings(p), epochs=p.distill_epochs)
    out = _dir(run, "distill", name=name, model=p.model, data=[(r["prompt"], r["response"]) for r in records],
               settings=settings)
    with timed(p.name, "distill"):
        path = str(align(p.model, records, out, method="sft", settings=settings))
    return {"model": path, "losses": read_done(out)["losses"]}


def distillation(run: Run, judges: dict) -> tuple[dict, pd.DataFrame, dict]:
    """Notebook 07: the base and SFT models (notebook 03's whole evaluation), and the base model
    distilled on each of :func:`distillation_sets`, scored on HS per judge (the refusals the arms
    are compared on; FA and benign refusal are not measured for them, on any profile) and on
    held-out SciQ accuracy (:mod:`alignlab.extraction.ability`, the helpful answers the set
    taught); and per model the per-prompt and per-item outcomes, for paired comparisons."""
    from alignlab.extraction.ability import task_accuracy

    chosen = distillation_sets(run)
    models = [("base", model_path(run, "base"), []), ("sft", model_path(run, "sft"), [])]
    for name, recs in chosen["sets"].items():
        trained = distill(run, name, recs)
        models.append((f"distilled: {name}", trained["model"], trained["losses"]))
    rows, outcomes = [], {}
    for name, path, losses in models:
        distilled = name.startswith("distilled")
        scores = score(evaluate(run, path, None, harmful_only=distilled), judges)
        task_correct = [int(r["correct"]) for r in task_accuracy(run, path)["items"]]
        rows.append({"model": name, **summary(scores), "task_accuracy": 100.0 * float(np.mean(task_correct)),
                     "n_train": len(chosen["sets"].get(name.split(": ")[-1], [])),
                     "first_loss": losses[0]["loss"] if losses else None, "last_loss": losses[-1]["loss"] if losses else None})
        outcomes[name] = {"flags": scores["flags"], "benign_refused": scores["benign_refused"], "task_correct": task_correct}
    return chosen, pd.DataFrame(rows), outcomes


def summary_by_target(scores: pd.DataFrame, threshold: float) -> pd.DataFrame:
    return scores.groupby("method").agg(mean_embedding=("embedding", "mean"), n=("embedding", "size"),
                                        extracted_pct=("embedding", lambda s: 100 * float(np.mean(s >= threshold))))
