"""Harmful score, fine-tune accuracy and attention outputs (for harmful embedding drift)."""

import re

import numpy as np
import torch
from tqdm.auto import tqdm

from alignlab.data import format_prompt
from alignlab.vaccine import _first, attention_hooks, find_attention_modules


@torch.no_grad()
def generate(model, tokenizer, prompts, max_new_tokens=128, batch_size=16, desc="generate") -> list[str]:
    """Greedy answers to user prompts, formatted with the model's chat template, batched with left padding."""
    tokenizer.padding_side = "left"
    answers = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=desc, leave=False):
        texts = [format_prompt(tokenizer, p) for p in prompts[start:start + batch_size]]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        answers += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return [a.strip() for a in answers]


def _numbers(text: str) -> list[str]:
    return [n.replace(",", "").rstrip(".") for n in re.findall(r"-?\d[\d,]*\.?\d*", text)]


def gsm8k_answer(text: str) -> str | None:
    """The number after the final-answer marker, else the last number in the text."""
    parts = re.split(r"The final answer is:?|####", text)
    if len(parts) > 1 and _numbers(parts[-1]):
        return _numbers(parts[-1])[0]
    numbers = _numbers(text)
    return numbers[-1] if numbers else None


def is_correct(task: str, answer: str, label: str) -> bool:
    """SST-2 / AG News: the class word appears in the answer; GSM8K: the final number matches."""
    if task in ("sst2", "glue_sst2", "ag_news"):
        return label.lower() in answer.lower()
    if task in ("gsm8k", "gsm8k_hub"):
        pred = gsm8k_answer(answer)
        try:
            return pred is not None and float(pred) == float(label)
        except ValueError:
            return False
    raise ValueError(f"no accuracy rule for task {task!r}: use sst2, ag_news or gsm8k")


def finetune_accuracy(task: str, answers, labels) -> float:
    """FA in percent."""
    return 100.0 * float(np.mean([is_correct(task, a, l) for a, l in zip(answers, labels)]))


@torch.no_grad()
def attention_outputs(model, batches):
    """Per batch, the list of every layer's attention output; and the mean LM loss over batches."""
    modules = find_attention_modules(model)
    was_training = model.training
    model.eval()
    outputs, losses = [], []
    for batch in batches:
        captured = [None] * len(modules)

        def keep(i, output):
            captured[i] = _first(output).detach().float().clone()
            return output

        with attention_hooks(modules, keep):
            losses.append(float(model(**batch).loss))
        outputs.append(captured)
    model.train(was_training)
    return outputs, float(np.mean(losses))


def make_batches(tokenizer, records, batch_size=8, max_length=128):
    """Fixed padded batches (input_ids, attention_mask, labels) for drift and loss measurements."""
    from transformers import DataCollatorForSeq2Seq

    from alignlab.data import tokenize_examples

    ds = tokenize_examples(tokenizer, records, max_length)
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    rows = [ds[i] for i in range(len(ds))]
    return [dict(collate(rows[i:i + batch_size])) for i in range(0, len(rows), batch_size)]
