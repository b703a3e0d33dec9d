"""Before any attack: do the aligned models refuse harm and still help?

Trains (or loads from the stage cache) a profile's SFT- and Vaccine-aligned models and prints, for
the base model and both, the harmful score under each judge, FA by the paper's rule and by the
class words' log-likelihood, and the refusal rate on held-out benign requests. These are the
pre-attack rows of notebook 03, from the same cached stages, so a later `make reproduce` reuses them.

    python scripts/check_aligned.py [--profile cpu]
"""

import argparse

import pandas as pd

from alignlab.evaluation import evaluate
from alignlab.judges import judge_set
from alignlab.profile import setup_run
from alignlab.scoring import score, summary
from alignlab.vaccine import stages


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    run = setup_run(parser.parse_args().profile, verbose=False)
    judges = judge_set(run.profile)
    rows = []
    for method in stages.METHODS:
        scores = score(evaluate(run, stages.aligned_model(run, method), None), judges)
        rows.append({"model": method, **summary(scores)})
    p = run.profile
    print(f"profile {p.name}: {p.n_harmful_eval} harmful prompts, {p.n_task_eval} {p.task} items, "
          f"{p.n_benign_eval} benign requests (all %)")
    print(pd.DataFrame(rows).set_index("model").round(1).to_string())


if __name__ == "__main__":
    main()
