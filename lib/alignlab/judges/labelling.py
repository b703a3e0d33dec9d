"""Labelling rounds of real answers for the judge audit (protocol and rounds:
``lib/alignlab/judges/labels/LABELLING.md``; command line: ``scripts/label_answers.py``).

:func:`draw_round` writes a blind round: answers no labels file holds, drawn in turn over the
models that wrote them, the readers' copy holding id, prompt and answer only and which model wrote
each kept in a file of its own. :func:`add` stores the annotators' majority with every vote and the
model, in the development or the test file, never both.
"""

import random
from pathlib import Path

from alignlab.cache import write_jsonl
from alignlab.data import read_jsonl
from alignlab.judges.audit import REAL_DEV, REAL_TEST, answer_key

TARGETS = {"dev": REAL_DEV, "test": REAL_TEST}
READER_FIELDS = ("id", "prompt", "answer")  # all that the readers' copy holds


def labelled_keys() -> set[str]:
    """The (prompt, answer) keys that either labels file holds."""
    return {answer_key(r["prompt"], r["answer"]) for path in TARGETS.values() if path.exists()
            for r in read_jsonl(path, required=("prompt", "answer"))}


def models_file(out: Path) -> Path:
    """Where :func:`draw_round` keeps which model wrote each answer, apart from the readers' copy."""
    return out.with_name(out.name.removesuffix(".jsonl") + ".models.jsonl")


def draw_round(answered: list[tuple[str, list[dict]]], out: Path, n: int, seed: int) -> int:
    """From (model, answers with their prompts) pairs, ``n`` answers that no labels file holds, in
    turn over the models so that each gives about as many; writes the readers' copy to ``out`` and
    the models to :func:`models_file`. Returns how many were drawn."""
    seen = labelled_keys()
    by_model: dict[str, list[dict]] = {}
    for model, items in answered:
        for item in items:
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
    return len(chosen)


def answer_prompts(models: list[tuple[str, str, str | None]], prompts: list[str], max_new_tokens: int,
                   batch_size: int) -> list[tuple[str, list[dict]]]:
    """(name, answers) of each (name, aligned model, adapter or None) to ``prompts``: greedy, as
    notebook 03 answers its prompts."""
    from alignlab.evaluation import load_finetuned
    from alignlab.models import generate

    out = []
    for name, aligned, adapter in models:
        model, tokenizer = load_finetuned(Path(aligned), Path(adapter) if adapter else None)
        answers = generate(model, tokenizer, prompts, max_new_tokens, batch_size, desc=name)
        out.append((name, [{"prompt": q, "answer": a} for q, a in zip(prompts, answers)]))
    return out


def add(answers_file: Path, label_files: list[Path], target: Path, round_name: str) -> int:
    """Store each answer of a drawn round with every annotator's vote (``annotator_<k>`` in the
    order given), their majority and the model that wrote it, in ``target``; an answer that either
    labels file already holds is skipped. Returns how many were added."""
    if len(label_files) < 3 or len(label_files) % 2 == 0:
        raise ValueError(f"labels: give an odd number (at least 3) of annotators' files, got {len(label_files)}")
    answers = read_jsonl(answers_file, required=("id", "prompt", "answer"))
    votes = {}
    for k, path in enumerate(label_files, start=1):
        listed = read_jsonl(path, required=("id", "harmful"))
        rows = {r["id"]: r["harmful"] for r in listed}
        if len(rows) != len(listed) or set(rows) != {a["id"] for a in answers} or \
                not all(isinstance(v, bool) for v in rows.values()):
            raise ValueError(f"{path}: needs exactly one boolean 'harmful' for every id of {answers_file}, "
                             f"and no other id")
        votes[f"annotator_{k}"] = rows
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
    return len(new)
