"""Evaluation, for both papers: a model's greedy answers to the held-out harmful prompts (scored
for HS by a judge elsewhere), fine-tune accuracy (FA) on the user's task by the authors' rules and
by the class words' log-likelihood, and the over-refusal of benign requests.

:func:`evaluate` is a cached stage under ``.cache/alignlab/<profile>/evaluate/<key>``; its key
hashes its parameters and the source of :data:`CODE`.
"""

import re
from pathlib import Path

from alignlab.cache import read_json, record_ids, stage_dir, write_json
from alignlab.models import choice_logprobs, generate
from alignlab.profile import Run
from alignlab.shards import write_on_main
from alignlab.training import load_finetuned

# The code evaluate() runs: its source is hashed into the stage's key (tests/unit/test_cache.py).
CODE = ("evaluation", "models", "shards", "chat", "training", "data")
# Modules it imports without running them: the profile's values enter the key as parameters, and
# data's response generator serves the training sets, not evaluation.
NOT_RUN = ("profile", "responses")


def _numbers(text: str) -> list[str]:
    return [n.replace(",", "").rstrip(".") for n in re.findall(r"-?\d[\d,]*\.?\d*", text)]


def gsm8k_answer(text: str) -> str | None:
    """The number after the final-answer marker, else the last number in the text."""
    parts = re.split(r"The final answer is:?|####", text)
    if len(parts) > 1 and _numbers(parts[-1]):
        return _numbers(parts[-1])[0]
    numbers = _numbers(text)
    return numbers[-1] if numbers else None


def task_classes(task: str) -> tuple[str, ...] | None:
    """The class words of a classification task (SST-2, AG News); None for GSM8K."""
    from alignlab.data import AGNEWS_CLASSES, SST2_CLASSES

    return {"sst2": SST2_CLASSES, "glue_sst2": SST2_CLASSES, "ag_news": AGNEWS_CLASSES}.get(task)


def is_correct(task: str, answer: str, label: str) -> bool:
    """SST-2 / AG News: the class word appears in the answer; GSM8K: the final number matches."""
    if task_classes(task) is not None:
        return label.lower() in answer.lower()
    if task in ("gsm8k", "gsm8k_hub"):
        pred = gsm8k_answer(answer)
        try:
            return pred is not None and float(pred) == float(label)
        except ValueError:
            return False
    raise ValueError(f"no accuracy rule for task {task!r}: use sst2, glue_sst2, ag_news, gsm8k or gsm8k_hub")


def evaluate(run: Run, aligned: str, adapter: str | None, harmful_only: bool = False) -> dict:
    """Greedy answers of one model to the held-out harmful prompts and the task's eval set, the
    task's class log-likelihoods, and, for a model before user fine-tuning (``adapter`` None), its
    answers to held-out benign requests (over-refusal); cached. Each answer carries its prompt.
    ``harmful_only``: the harmful prompts alone (HS), for models compared on HS only."""
    p, s = run.profile, run.splits
    benign = s.benign_eval if adapter is None and not harmful_only else []
    task_eval = [] if harmful_only else s.task_eval
    out = stage_dir(p.name, "evaluate", code=CODE, aligned=aligned, adapter=adapter,
                    harmful=[r["prompt"] for r in s.harmful_eval], task_items=record_ids(task_eval), task=p.task,
                    benign=[r["prompt"] for r in benign], max_new_tokens=p.max_new_tokens,
                    task_max_new_tokens=p.task_max_new_tokens, batch_size=p.eval_batch_size) / "answers.json"
    done = read_json(out)
    if done is not None:
        return done
    model, tokenizer = load_finetuned(Path(aligned), Path(adapter) if adapter else None)
    prompts = [r["prompt"] for r in s.harmful_eval]
    answers = generate(model, tokenizer, prompts, p.max_new_tokens, p.eval_batch_size, desc="harmful prompts")
    task_prompts = [r["prompt"] for r in task_eval]
    task_answers = generate(model, tokenizer, task_prompts, p.task_max_new_tokens, p.eval_batch_size, desc="task prompts")
    classes = task_classes(p.task)
    # FA by log-likelihood: the class word the model prefers, whatever format its answer takes.
    preferred = ([classes[i] for i in choice_logprobs(model, tokenizer, task_prompts, classes).argmax(axis=1)]
                 if classes and task_prompts else [None] * len(task_prompts))
    benign_answers = generate(model, tokenizer, [r["prompt"] for r in benign], p.max_new_tokens, p.eval_batch_size,
                              desc="benign prompts")
    result = {
        "harmful": [{"prompt": q, "answer": a} for q, a in zip(prompts, answers)],
        "task": [{"prompt": r["prompt"], "answer": a, "label": r["label"], "correct": is_correct(p.task, a, r["label"]),
                  "preferred": c, "correct_loglik": c is not None and c == r["label"]}
                 for r, a, c in zip(task_eval, task_answers, preferred)],
        "benign": [{"prompt": r["prompt"], "answer": a} for r, a in zip(benign, benign_answers)],
    }
    write_on_main(lambda: write_json(out, result))  # under accelerate launch, each process answered a share
    return result
