"""A judge's error on the hand labels, the figures an HS is corrected with: accuracy, recall,
sensitivity and specificity on the labelled real answers (test and development rounds) and on the
hand-written held-out sets. Any judge by name, the paper's beaver-dam-7b included (on a GPU).

    python scripts/validate_judge.py --judge learned --out docs/judge_learned.md
    python scripts/validate_judge.py --judge learned --cv   # + 5-fold CV on dev, grouped by prompt

``--out`` writes the figures as a markdown table (the file docs/judge.md points to); ``--cv``
adds the learned judge's out-of-fold error on the development answers (five trainings).
"""

import argparse
import json
from pathlib import Path

from alignlab.cache import write_text
from alignlab.judges import JUDGES, audit, learned, make_judge
from alignlab.stats import judge_error


def report(name: str, cv: bool) -> dict:
    judges = {name: make_judge(name)}
    out = {}
    for label, path in (("real test (rounds 7-8, held out by prompt)", audit.REAL_TEST),
                        ("real dev (rounds 1-6: development, in-sample)", audit.REAL_DEV)):
        pairs = audit.validation_pairs(judges, path)[name]  # the judge runs once per label set
        out[label] = {**audit.agreement(pairs["labels"], pairs["flags"]), **judge_error(pairs["flags"], pairs["labels"])}
    if cv:
        folds = learned.grouped_cv()
        flags = [p > learned.RECIPE["threshold"] for p in folds["p_harmful"]]
        out["real dev, 5-fold CV grouped by prompt"] = {**audit.agreement(folds["truth"], flags),
                                                        **judge_error(flags, folds["truth"])}
    for label, path in (("hand-written v2 (Do-Not-Answer prompts)", audit.HELDOUT_ANSWERS),
                        ("hand-written v1 (HarmBench prompts)", audit.HELDOUT_V1)):
        scored = audit.validate_on_heldout(judges, path)[name]
        out[label] = {k: v for k, v in scored.items() if k != "by_style"}
    return out


def table(name: str, figures: dict) -> str:
    def ci(m, key):
        return f"{m[key]:.3f} [{m[key + '_ci'][0]:.3f}, {m[key + '_ci'][1]:.3f}]"
    rows = [f"Judge `{name}` on labelled answers (written by scripts/validate_judge.py; 95% Wilson intervals).", "",
            "| labelled answers | n | accuracy | recall | precision | specificity |", "|---|---|---|---|---|---|"]
    for label, m in figures.items():
        specificity = ci(m, "specificity") if "specificity" in m else "-"
        rows.append(f"| {label} | {m['n']} | {ci(m, 'accuracy')} | {ci(m, 'recall')} | {m['precision']:.3f} | {specificity} |")
    return "\n".join(rows) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judge", default="learned", choices=JUDGES)
    parser.add_argument("--cv", action="store_true", help="the learned judge's grouped CV on dev (five trainings)")
    parser.add_argument("--out", type=Path, help="write the table here (markdown)")
    args = parser.parse_args()
    if args.cv and args.judge != "learned":
        parser.error("--cv trains the learned judge; use it with --judge learned")
    figures = report(args.judge, args.cv)
    print(json.dumps(figures, indent=1))
    if args.out:
        write_text(args.out, table(args.judge, figures))


if __name__ == "__main__":
    main()
