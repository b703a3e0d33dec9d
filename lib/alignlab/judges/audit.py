"""How well a judge agrees with hand labels: on real model answers of the cpu run, labelled by
three independent annotators (``labels/real_answers_*.jsonl``, protocol in ``labels/LABELLING.md``),
and on the independent hand-written held-out answers in ``labels/heldout_answers*.jsonl``; and how
far each rule of the compliance judge moves its agreement with the real-answer labels
(:func:`rule_ablation`)."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, cohen_kappa_score, precision_score, recall_score

from alignlab.stats import judge_error, wilson

LABELS = Path(__file__).with_name("labels")
# Real answers of the cpu run's models (SmolLM2-135M, 32 new tokens), each labelled by three
# annotators blind to every judge; the label is their majority. Development: rounds 1-6, which the
# compliance judge was built and revised on or whose prompts it saw. Test: round 7, on prompts no
# development label holds: the figures each HS carries (labels/LABELLING.md gives each round's use).
REAL_DEV = LABELS / "real_answers_dev.jsonl"
REAL_TEST = LABELS / "real_answers_test.jsonl"


def answer_key(prompt: str, answer: str) -> str:
    """A short hash of a (prompt, answer) pair: labelled rows are deduplicated on it."""
    return hashlib.sha256(json.dumps([prompt, answer]).encode()).hexdigest()[:16]


def load_labelled_answers(path: str | Path = REAL_TEST) -> list[dict]:
    """Hand-labelled real answers: ``prompt``, ``answer``, ``harmful`` (the annotators' majority)
    and ``votes`` ({annotator: label})."""
    from alignlab.data import DataError, read_jsonl

    rows = read_jsonl(Path(path), required=("prompt", "answer", "harmful", "votes"))
    for i, r in enumerate(rows):
        votes = list(r["votes"].values())
        if len(votes) < 3 or len(votes) % 2 == 0 or r["harmful"] != (2 * sum(votes) > len(votes)):
            raise DataError(f"{path}: row {i}: 'harmful' must be the majority of an odd number (>= 3) of votes, "
                            f"got {r['harmful']!r} from {r['votes']}; rebuild it with scripts/label_answers.py add")
    return rows


def annotator_labels(prompts, answers, paths=None) -> list[bool | None]:
    """The annotators' majority label of each (prompt, answer) pair (True = harmful), None where no
    labels file holds the pair. Rounds 1-6 hold answers of an earlier cpu run (one-epoch attack) to
    the evaluation prompts, so a run whose models answer alike can read part of its HS off the labels;
    any other run's answers are mostly unlabelled."""
    majority = {answer_key(r["prompt"], r["answer"]): bool(r["harmful"])
                for path in (paths or (REAL_DEV, REAL_TEST)) if Path(path).exists()
                for r in load_labelled_answers(path)}
    return [majority.get(answer_key(p, a)) for p, a in zip(prompts, answers, strict=True)]


def annotator_agreement(rows: list[dict]) -> dict:
    """How far the annotators agree: Cohen's kappa for each pair (NaN where a pair's votes are
    all one class), and the share of unanimous rows."""
    if not rows:
        return {"annotators": [], "kappa": {}, "min_kappa": None, "unanimous": None}
    names = sorted(set.intersection(*(set(r["votes"]) for r in rows)))
    votes = {n: [bool(r["votes"][n]) for r in rows] for n in names}
    kappas = {f"{a}-{b}": float(cohen_kappa_score(votes[a], votes[b])) if len(set(votes[a]) | set(votes[b])) > 1
              else float("nan") for a, b in itertools.combinations(names, 2)}
    defined = [k for k in kappas.values() if not np.isnan(k)]
    unanimous = np.mean([len(set(r["votes"].values())) == 1 for r in rows])
    return {"annotators": names, "kappa": kappas, "min_kappa": min(defined) if defined else None,
            "unanimous": float(unanimous)}


def audit_labelled(judges: dict, path: str | Path = REAL_TEST) -> dict:
    """Each judge's agreement with the majority labels of a labelled-answers file, and how far the
    annotators agree with one another (the ceiling a judge can be measured against)."""
    rows = load_labelled_answers(path)
    prompts, answers = [r["prompt"] for r in rows], [r["answer"] for r in rows]
    truth = np.array([bool(r["harmful"]) for r in rows])
    out = {"n": len(rows), "n_harmful": int(truth.sum()), "annotator_agreement": annotator_agreement(rows)}
    for name, judge in judges.items():
        out[name] = agreement(truth, judge(prompts, answers))
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
    return list(wilson(successes, n)) if n else None


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


def validation_pairs(judges: dict, path: Path = REAL_TEST) -> dict:
    """Per judge, its flags on the labelled answers of ``path`` and the annotators' labels, item by
    item: what a judge's sensitivity and specificity, and an HS corrected for them, are computed
    from (:func:`alignlab.stats.corrected_gap`)."""
    rows = load_labelled_answers(path)
    prompts, answers = [r["prompt"] for r in rows], [r["answer"] for r in rows]
    labels = [bool(r["harmful"]) for r in rows]
    models = [r.get("model") for r in rows]
    return {name: {"flags": [bool(f) for f in judge(prompts, answers)], "labels": labels, "models": models,
                   "groups": [model_group(m) for m in models]} for name, judge in judges.items()}


def model_group(model: str | None) -> str | None:
    """"attacked" or "before attack" from a label's ``model`` field ("<method> p=<ratio> seed=<s>",
    as scripts/label_answers.py writes it; p=None before user fine-tuning); None when unrecorded.
    A judge's error can differ between the groups (attacked answers comply in other forms)."""
    if not model:
        return None
    return "before attack" if "p=None" in model else "attacked"


def fresh_prompts(run, n: int, seed: int = 0) -> list[str]:
    """``n`` harmful prompts (AdvBench, HarmBench, Do-Not-Answer) that no split of ``run`` uses and
    no labels file holds: a test round on them is held out by prompt from every judge's development
    and from the evaluation prompts. Drawn by ``seed``."""
    import random

    from alignlab.data import harmful_prompts

    s = run.splits
    used = {r["prompt"] for split in (s.alignment, s.harmful_ft, s.harmful_eval) for r in split}
    for path in sorted(LABELS.glob("*.jsonl")):  # real answers, hand-written answers, judge development
        used |= {json.loads(line).get("prompt") for line in path.read_text().splitlines() if line.strip()}
    pool = sorted({r["prompt"] for r in harmful_prompts()} - used)
    if n > len(pool):
        raise ValueError(f"asked for {n} fresh harmful prompts but only {len(pool)} are outside the run's splits "
                         "and the labels files: lower n")
    return random.Random(seed).sample(pool, n)


def shared_prompts(dev: str | Path = REAL_DEV, test: str | Path = REAL_TEST) -> set[str]:
    """The test labels' prompts that the development labels also hold (empty: test is held out by
    prompt, so a judge built on dev never saw the requests it is tested on)."""
    return ({r["prompt"] for r in load_labelled_answers(test)} & {r["prompt"] for r in load_labelled_answers(dev)})


ABLATION_COLUMNS = ("rule", "stage", "dev_changed", "test_changed", "dev_accuracy", "dev_recall", "dev_specificity",
                    "test_accuracy", "test_recall", "test_specificity")


def rule_ablation(dev_path: str | Path = REAL_DEV, test_path: str | Path = REAL_TEST, judge=None) -> pd.DataFrame:
    """What each rule of the compliance judge does on labelled real answers: a DataFrame with one
    row per rule, in the order the judge applies them, giving how many dev and test verdicts change
    when that rule alone is disabled, and accuracy, recall (sensitivity) and specificity with it off.
    The full judge's figures are in ``.attrs["full"]`` (``{"dev": {...}, "test": {...}}``).
    ``judge``: the :class:`~alignlab.judges.compliance.ComplianceJudge` to ablate (default: with
    embeddings); its rules that are already disabled stay so."""
    from alignlab.judges.compliance import RULES, ComplianceJudge

    judge = ComplianceJudge() if judge is None else judge
    sets = {}
    for name, path in (("dev", dev_path), ("test", test_path)):
        labelled = load_labelled_answers(path)
        sets[name] = ([r["prompt"] for r in labelled], [r["answer"] for r in labelled],
                      np.array([bool(r["harmful"]) for r in labelled]))
    full = {name: np.asarray(judge(p, a), dtype=bool) for name, (p, a, _) in sets.items()}
    rows = []
    for rule in RULES:
        row = {"rule": rule.name, "stage": rule.stage}
        ablated = judge.without(rule.name)
        for name, (prompts, answers, truth) in sets.items():
            flags = np.asarray(ablated(prompts, answers), dtype=bool)
            row[f"{name}_changed"] = int((flags != full[name]).sum())
            row.update({f"{name}_{k}": v for k, v in _rates(truth, flags).items()})
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(ABLATION_COLUMNS))
    table.attrs["full"] = {name: {"n": len(truth), "n_harmful": int(truth.sum()), **_rates(truth, full[name])}
                           for name, (_, _, truth) in sets.items()}
    return table


def _rates(truth, flags) -> dict:
    """Accuracy, recall (= sensitivity) and specificity of flags against labels."""
    scores = agreement(truth, flags)
    return {"accuracy": scores["accuracy"], "recall": scores["recall"],
            "specificity": judge_error(flags, truth)["specificity"]}
