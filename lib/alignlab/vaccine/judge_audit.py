"""How well a judge agrees with hand labels: on real model answers (stored as hashes, no model
text) and on the independent hand-written held-out answers in ``labels/heldout_answers*.jsonl``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, precision_score, recall_score

from alignlab.vaccine.judge import check_pairs

LABELS = Path(__file__).with_name("labels")
REAL_LABELS = LABELS / "real_answers.jsonl"
# Real answers of the cpu run labelled blind to the judge and kept out of its development: the
# judge's figures on real answers (REAL_LABELS, from earlier runs and this run's first sample,
# guided its last revision).
REAL_LABELS_BLIND = LABELS / "real_answers_blind.jsonl"


def answer_key(prompt: str, answer: str) -> str:
    """The key a hand label is stored under: a hash of the (prompt, answer) pair. The labels file
    holds no model text, so nothing a model wrote to a harmful prompt is committed."""
    return hashlib.sha256(json.dumps([prompt, answer]).encode()).hexdigest()[:16]


def load_real_labels(path: str | Path = REAL_LABELS) -> dict[str, bool]:
    """Hand labels of real model answers, {answer_key: harmful}; the labelling rule is in
    notebook 03 and README."""
    from alignlab.data import read_jsonl

    return {r["key"]: bool(r["harmful"]) for r in read_jsonl(Path(path), required=("key", "harmful"))}


def audit(judges: dict, prompts: Sequence[str], answers: Sequence[str], labels: dict[str, bool]) -> dict:
    """Accuracy, precision and recall of each judge on the hand-labelled pairs among (prompts,
    answers): the check on real outputs that a validation on our own responses cannot give.

    Pairs are matched on :func:`answer_key`, so only answers that were generated exactly as when
    they were labelled count; ``n_labelled`` says how many did (0 on another profile or model).
    """
    check_pairs(prompts, answers)
    pairs = {answer_key(q, a): (q, a) for q, a in zip(prompts, answers)}
    keys = sorted(k for k in pairs if k in labels)
    truth = np.array([labels[k] for k in keys], dtype=bool)
    out = {"n_labelled": len(keys), "n_harmful": int(truth.sum())}
    if not keys:
        return out
    qs, answers_ = [pairs[k][0] for k in keys], [pairs[k][1] for k in keys]
    for name, judge in judges.items():
        out[name] = agreement(truth, judge(qs, answers_))
    return out


def agreement(truth, flagged) -> dict:
    """Accuracy, precision and recall of a judge's flags against hand labels (True = harmful),
    with 95% Wilson intervals for accuracy (over all labels) and recall (over the harmful ones)."""
    truth, flagged = np.asarray(truth, dtype=bool), np.asarray(flagged, dtype=bool)
    correct, caught = int((truth == flagged).sum()), int((truth & flagged).sum())
    return {"n": int(len(truth)), "accuracy": float(accuracy_score(truth, flagged)),
            "accuracy_ci": _wilson(correct, len(truth)),
            "precision": float(precision_score(truth, flagged, zero_division=np.nan)),
            "recall": float(recall_score(truth, flagged, zero_division=np.nan)),
            "recall_ci": _wilson(caught, int(truth.sum()))}


def _wilson(successes: int, n: int) -> list[float] | None:
    if n == 0:
        return None
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(ci.low), float(ci.high)]


# Two hand-written held-out sets, to HarmBench prompts (v1) and Do-Not-Answer prompts (v2). v1 was
# scored once, and its per-style accuracies guided a revision of the compliance judge (on new
# development answers only); v2 was written afterwards, blind to the judge, for the final figures.
HELDOUT_V1 = LABELS / "heldout_answers.jsonl"
HELDOUT_ANSWERS = LABELS / "heldout_answers_v2.jsonl"


def load_heldout_answers(path: str | Path = HELDOUT_ANSWERS) -> list[dict]:
    """The hand-written labelled answers to held-out HarmBench prompts (no judge is built from
    them): ``prompt``, ``answer``, ``label`` (True = harmful) and ``style``."""
    from alignlab.data import read_jsonl

    return read_jsonl(Path(path), required=("prompt", "answer", "label", "style"))


def validate_on_heldout(judges: dict, path: str | Path = HELDOUT_ANSWERS) -> dict:
    """Each judge's agreement with the held-out hand labels, overall and per answer style."""
    rows = load_heldout_answers(path)
    prompts, answers = [r["prompt"] for r in rows], [r["answer"] for r in rows]
    truth = np.array([bool(r["label"]) for r in rows])
    styles = sorted({r["style"] for r in rows})
    out = {}
    for name, judge in judges.items():
        flagged = np.asarray(judge(prompts, answers), dtype=bool)
        out[name] = agreement(truth, flagged)
        out[name]["by_style"] = {s: float(np.mean([f == t for f, t, r in zip(flagged, truth, rows) if r["style"] == s]))
                                 for s in styles}
    return out
