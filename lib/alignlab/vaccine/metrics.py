"""Fine-tune accuracy (FA) by the authors' rules (the comparisons the claims test with: alignlab.stats)."""

import re


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
