"""Draw and store rounds of hand labels of real model answers for the judge audit (notebook 03;
protocol and rounds: lib/alignlab/judges/labels/LABELLING.md; logic: alignlab.judges.labelling).

    python scripts/label_answers.py dump --profile cpu --out /tmp/round.jsonl --n 220
    # /tmp/round.jsonl, the readers' copy, holds id, prompt and answer only; which model wrote each
    # answer goes to /tmp/round.models.jsonl, kept from the readers. Three annotators each label every
    # row of the readers' copy by reading it, blind to the judges, to the models and to one another,
    # writing {"id": ..., "harmful": true|false} per row (LABELLING.md gives them the rule)
    python scripts/label_answers.py add --answers /tmp/round.jsonl --labels A.jsonl B.jsonl C.jsonl \\
        --to test --round 4

`dump` draws from the answers notebook 03 scores for the profile (from its cache: run `make
reproduce` first). With `--fresh-prompts N` the models first answer N harmful prompts that no split
of the run uses and no labels file holds (alignlab.judges.audit.fresh_prompts), for a test round
held out by prompt:

    python scripts/label_answers.py dump --profile cpu --fresh-prompts 120 --cells sft:0.0:0 sft:0.2:0 \\
        --out /tmp/round7.jsonl --n 240
    python scripts/label_answers.py dump --profile cpu --fresh-prompts 60 --attacked-only \\
        --cells vaccine:0.1:0 vaccine:0.1:1 sft:0.1:1 sft:0.1:2 --out /tmp/round8.jsonl --n 240

`add --to dev` stores answers a judge revision may look at, `--to test` answers kept from it.
"""

import argparse
from pathlib import Path

from alignlab.judges import labelling


def answered(profile: str, n_fresh: int, seed: int, cells, attacked_only: bool = False) -> list[tuple[str, list[dict]]]:
    """(model, answers) to draw from: notebook 03's cached answers, or every model before the
    attack (unless ``attacked_only``) and the attacked models of ``cells`` (default: notebook 02's
    grid) answering fresh prompts."""
    from alignlab.judges.audit import fresh_prompts
    from alignlab.profile import setup_run
    from alignlab.vaccine import stages

    run = setup_run(profile, verbose=False)
    if not n_fresh:
        return [(f"{e['method']} p={e['harmful_ratio']} seed={e['seed']}", e["result"]["harmful"])
                for e in stages.evaluations(run)]
    p = run.profile
    models = [] if attacked_only else [(f"{m} p=None seed=None", stages.aligned_model(run, m, seed=p.seeds[0]), None)
                                       for m in stages.METHODS]
    models += [(f"{m} p={r} seed={s}", stages.aligned_model(run, m, seed=s), stages.attack(run, m, r, s)["adapter"])
               for m, r, s in cells or stages.grid_runs(p)]
    return labelling.answer_prompts(models, fresh_prompts(run, n_fresh, seed), p.max_new_tokens, p.eval_batch_size)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="draw unlabelled answers for labelling")
    d.add_argument("--profile", default="cpu")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--n", type=int, default=220)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--fresh-prompts", type=int, default=0,
                   help="answer this many harmful prompts outside the run's splits and every labels file first")
    d.add_argument("--cells", nargs="+", default=None, metavar="METHOD:RATIO:SEED",
                   help="with --fresh-prompts: the attacked models that answer (default: notebook 02's grid)")
    d.add_argument("--attacked-only", action="store_true",
                   help="with --fresh-prompts: leave out the models before the attack")
    a = sub.add_parser("add", help="store the annotators' majority labels")
    a.add_argument("--answers", type=Path, required=True, help="the file dump wrote")
    a.add_argument("--labels", type=Path, nargs="+", required=True, help="one file per annotator")
    a.add_argument("--to", choices=sorted(labelling.TARGETS), required=True)
    a.add_argument("--round", required=True)
    args = parser.parse_args()
    try:
        if args.command == "dump":
            if (args.cells or args.attacked_only) and not args.fresh_prompts:
                raise ValueError("--cells and --attacked-only choose the models that answer fresh prompts: "
                                 "give --fresh-prompts N too")
            cells = [(m, float(r), int(s)) for m, r, s in (c.split(":") for c in args.cells)] if args.cells else None
            models = answered(args.profile, args.fresh_prompts, args.seed, cells, args.attacked_only)
            n = labelling.draw_round(models, args.out, args.n, args.seed)
            print(f"{n} unlabelled answers -> {args.out} (models: {labelling.models_file(args.out)})")
        else:
            target = labelling.TARGETS[args.to]
            n = labelling.add(args.answers, args.labels, target, args.round)
            print(f"{n} labelled answers added to {target}")
    except ValueError as error:
        raise SystemExit(str(error)) from None


if __name__ == "__main__":
    main()
