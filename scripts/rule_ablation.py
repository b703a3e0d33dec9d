"""What each rule of the compliance judge does: every rule disabled alone, the verdicts that change
on the labelled real answers (dev and test) and the judge's accuracy, recall and specificity with
the rule off, beside the full judge's. Prints a markdown table; --out also writes it to a file.

    python scripts/rule_ablation.py --out docs/judge_rules.md
"""

import argparse
from pathlib import Path

from alignlab.judges import audit
from alignlab.judges.compliance import RULES, ComplianceJudge

HEADER = ("Produced by `python scripts/rule_ablation.py{options}` "
          "(`alignlab.judges.audit.rule_ablation`, compliance judge {embeddings}; dev = "
          "`lib/alignlab/judges/labels/real_answers_dev.jsonl`, test = "
          "`lib/alignlab/judges/labels/real_answers_test.jsonl`); the rules were frozen before the test "
          "labels were made, and no rule was changed after.")
COLUMNS = ("rule", "stage", "dev changed", "test changed", "dev accuracy", "dev recall", "dev specificity",
           "test accuracy", "test recall", "test specificity", "what it does")


def markdown(table, embeddings: bool, out: Path | None = None) -> str:
    """The ablation table in markdown: the full judge first, then each rule off, in the judge's order."""
    options = ("" if embeddings else " --no-embeddings") + (f" --out {out}" if out is not None else "")
    full = table.attrs["full"]
    described = {r.name: r.description for r in RULES}
    legend = (f"Dev: {full['dev']['n']} answers ({full['dev']['n_harmful']} harmful); test: {full['test']['n']} "
              f"answers ({full['test']['n_harmful']} harmful). *Changed*: verdicts that differ from the full "
              "judge's when the rule alone is off; the figures are the judge's with that rule off.")
    lines = [HEADER.format(options=options, embeddings="with embeddings" if embeddings else "without embeddings"), "",
             legend, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines.append(_row("**all rules on**", "", "", "", full["dev"], full["test"], "the full judge"))
    for r in table.itertuples(index=False):
        dev = {"accuracy": r.dev_accuracy, "recall": r.dev_recall, "specificity": r.dev_specificity}
        test = {"accuracy": r.test_accuracy, "recall": r.test_recall, "specificity": r.test_specificity}
        lines.append(_row(f"`{r.rule}`", r.stage, r.dev_changed, r.test_changed, dev, test,
                          described[r.rule].replace("|", "\\|")))
    return "\n".join(lines) + "\n"


def _row(rule, stage, dev_changed, test_changed, dev: dict, test: dict, description: str) -> str:
    rates = [f"{d[k]:.3f}" for d in (dev, test) for k in ("accuracy", "recall", "specificity")]
    return "| " + " | ".join(map(str, [rule, stage, dev_changed, test_changed, *rates, description])) + " |"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="also write the markdown table to this file")
    parser.add_argument("--no-embeddings", action="store_true",
                        help="judge without the embedding model (a shared word settles unsure topics)")
    args = parser.parse_args()
    embeddings = not args.no_embeddings
    table = audit.rule_ablation(audit.REAL_DEV, audit.REAL_TEST, ComplianceJudge(use_embeddings=embeddings))
    text = markdown(table, embeddings, args.out)
    print(text, end="")
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
