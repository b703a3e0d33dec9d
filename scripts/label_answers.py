"""Hand-label real model answers for the judge audit (notebook 03; protocol in
lib/alignlab/judges/labels/LABELLING.md).

    python scripts/label_answers.py dump --profile cpu --out /tmp/round.jsonl --n 220
    # /tmp/round.jsonl, the readers' copy, holds id, prompt and answer only; which model wrote each
    # answer goes to /tmp/round.models.jsonl, kept from the readers. Three annotators each label every
    # row of the readers' copy by reading it, blind to the judges, to the models and to one another,
    # writing {"id": ..., "harmful": true|false} per row (LABELLING.md gives them the rule)
    python scripts/label_answers.py add --answers /tmp/round.jsonl --labels A.jsonl B.jsonl C.jsonl \\
        --to test --round 4

`dump` samples answers to harmful prompts that notebook 03 scores for the profile (from its cache:
run `make reproduce` first) and that no labels file holds yet, in turn over the models, so that each
model gives about as many; the readers' copy names no model (a test checks its fields). With
`--fresh-prompts N` the models first answer N harmful prompts that no split of the run uses and no
labels file holds (`alignlab.judges.audit.fresh_prompts`), for a test round held out by prompt:

    python scripts/label_answers.py dump --profile cpu --fresh-prompts 120 --out /tmp/round7.jsonl --n 240 `add` stores
each answer with every annotator's vote, their majority and the model that wrote it:
`--to dev` for answers a judge revision may look at, `--to test` for answers kept from it.
"""

import argparse
import random
from pathlib import Path

from alignlab.cache import write_jsonl
from alignlab.data import read_jsonl
from alignlab.judges.audit import REAL_DEV, REAL_TEST, answer_key

TARGETS = {"dev": REAL_DEV, "test": REAL_TEST}


def labelled_keys() -> set[str]:
    return {answer_key(r["prompt"], r["answer"]) for path in TARGETS.values() if path.exists()
            for r in read_jsonl(path, required=("prompt", "answer"))}


READER_FIELDS = ("id", "prompt", "answer")  # all that the readers' copy holds


def models_file(out: Path) -> Path:
    """Where dump keeps which model wrote each answer, apart from the readers' copy."""
    return out.with_name(out.name.removesuffix(".jsonl") + ".models.jsonl")


def fresh_answers(run, n_prompts: int, seed: int, cells=None) -> list[tuple[str, list[dict]]]:
    """(model, answers) of the models before user fine-tuning and of the attacked models of
    ``cells`` ((method, harmful ratio, run seed); default: notebook 02's whole grid, trained where
    not cached) to ``n_prompts`` fresh harmful prompts, greedy with the profile's max_new_tokens
    as in notebook 03."""
    from pathlib import Path as _Path

    from alignlab.cache import read_done
    from alignlab.evaluation import load_finetuned
    from alignlab.judges.audit import fresh_prompts
    from alignlab.models import generate
    from alignlab.vaccine import stages

    p = run.profile
    prompts = fresh_prompts(run, n_prompts, seed)
    models = [(f"{m} p=None seed=None", stages.aligned_model(run, m, seed=p.seeds[0]), None) for m in stages.METHODS]
    for method, ratio, s in cells or stages.grid_runs(p):
        aligned = stages.aligned_model(run, method, seed=s)
        adapter = _Path(stages.attack(run, method, ratio, s)["adapter"])
        models.append((f"{method} p={ratio} seed={s}", aligned, adapter))
    out = []
    for name, aligned, adapter in models:
        model, tokenizer = load_finetuned(_Path(aligned), adapter)
        answers = generate(model, tokenizer, prompts, p.max_new_tokens, p.eval_batch_size, desc=name)
        out.append((name, [{"prompt": q, "answer": a} for q, a in zip(prompts, answers)]))
    return out


def dump(profile: str, out: Path, n: int, seed: int, n_fresh: int = 0, cells=None) -> None:
    from alignlab.profile import setup_run
    from alignlab.vaccine import stages

    run = setup_run(profile, verbose=False)
    seen = labelled_keys()
    by_model: dict[str, list[dict]] = {}
    answered = (fresh_answers(run, n_fresh, seed, cells) if n_fresh else  # cached once notebook 03 has run
                [(f"{e['method']} p={e['harmful_ratio']} seed={e['seed']}", e["result"]["harmful"])
                 for e in stages.evaluations(run)])
    for model, items in answered:
        for item in items:  # every answer carries its prompt
            key = answer_key(item["prompt"], item["answer"])
            if key not in seen:
                seen.add(key)
                by_model.setdefault(model, []).append({"model": model, "prompt": item["prompt"], "answer": item["answer"]})
    rng = random.Random(seed)
    pools = [rng.sample(rows, len(rows)) for _, rows in sorted(by_model.items())]
    chosen = []
    while len(chosen) < n and any(pools):
        for pool in pools:
            if pool and len(chosen) < n:
                chosen.append(pool.pop())
    rng.shuffle(chosen)
    write_jsonl(out, [{"id": i, "prompt": row["prompt"], "answer": row["answer"]} for i, row in enumerate(chosen)])
    write_jsonl(models_file(out), [{"id": i, "model": row["model"]} for i, row in enumerate(chosen)])
    print(f"{len(chosen)} unlabelled answers from {len(pools)} models -> {out}")


def add(answers_file: Path, label_files: list[Path], target: Path, round_name: str) -> None:
    if len(label_files) < 3 or len(label_files) % 2 == 0:
        raise SystemExit(f"--labels: give an odd number (at least 3) of annotators' files, got {len(label_files)}")
    answers = read_jsonl(answers_file, required=("id", "prompt", "answer"))
    votes = {}
    for k, path in enumerate(label_files, start=1):
        listed = read_jsonl(path, required=("id", "harmful"))
        rows = {r["id"]: r["harmful"] for r in listed}
        if len(rows) != len(listed) or set(rows) != {a["id"] for a in answers} or \
                not all(isinstance(v, bool) for v in rows.values()):
            raise SystemExit(f"{path}: needs exactly one boolean 'harmful' for every id of {answers_file}, "
                             f"and no other id")
        votes[f"annotator_{k}"] = rows  # in the order given; LABELLING.md says who they were
    models = ({r["id"]: r["model"] for r in read_jsonl(models_file(answers_file), required=("id", "model"))}
              if models_file(answers_file).exists() else {})
    existing = read_jsonl(target, required=("prompt", "answer")) if target.exists() else []
    keys = labelled_keys()  # in either file: an answer is dev or test, never both
    new = []
    for a in answers:
        if answer_key(a["prompt"], a["answer"]) in keys:
            continue
        row_votes = {name: labels[a["id"]] for name, labels in votes.items()}
        new.append({"round": round_name, "prompt": a["prompt"], "answer": a["answer"],
                    "harmful": 2 * sum(row_votes.values()) > len(row_votes), "votes": row_votes,
                    **({"model": models[a["id"]]} if a["id"] in models else {})})
    write_jsonl(target, existing + new)
    print(f"{len(new)} labelled answers added to {target} ({len(existing) + len(new)} in all)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="sample unlabelled answers for labelling")
    d.add_argument("--profile", default="cpu")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--n", type=int, default=220)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--fresh-prompts", type=int, default=0,
                   help="answer this many harmful prompts outside the run's splits and every labels file first")
    d.add_argument("--cells", nargs="+", default=None, metavar="METHOD:RATIO:SEED",
                   help="with --fresh-prompts: the attacked models that answer (default: notebook 02's grid)")
    a = sub.add_parser("add", help="store the annotators' majority labels")
    a.add_argument("--answers", type=Path, required=True, help="the file dump wrote")
    a.add_argument("--labels", type=Path, nargs="+", required=True, help="one file per annotator")
    a.add_argument("--to", choices=sorted(TARGETS), required=True)
    a.add_argument("--round", required=True)
    args = parser.parse_args()
    if args.command == "dump":
        cells = [(m, float(r), int(s)) for m, r, s in (c.split(":") for c in args.cells)] if args.cells else None
        dump(args.profile, args.out, args.n, args.seed, args.fresh_prompts, cells)
    else:
        add(args.answers, args.labels, TARGETS[args.to], args.round)


if __name__ == "__main__":
    main()
