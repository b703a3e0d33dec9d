"""A judge's error on the hand labels, the figures an HS is corrected with: accuracy, recall,
sensitivity and specificity on the labelled real answers (test and development rounds) and on the
hand-written held-out sets. Any judge by name, the paper's beaver-dam-7b included (on a GPU).

    python scripts/validate_judge.py --judge compliance
"""

import argparse
import json

from alignlab.judges import JUDGES, audit, make_judge
from alignlab.stats import judge_error


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judge", default="compliance", choices=JUDGES)
    name = parser.parse_args().judge
    judges = {name: make_judge(name)}
    report = {}
    for label, path in (("real test", audit.REAL_TEST), ("real dev", audit.REAL_DEV)):
        pairs = audit.validation_pairs(judges, path)[name]  # the judge runs once per label set
        report[label] = {**audit.agreement(pairs["labels"], pairs["flags"]), **judge_error(pairs["flags"], pairs["labels"])}
    for label, path in (("hand-written v2", audit.HELDOUT_ANSWERS), ("hand-written v1", audit.HELDOUT_V1)):
        report[label] = {k: v for k, v in audit.validate_on_heldout(judges, path)[name].items() if k != "by_style"}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
