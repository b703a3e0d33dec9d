"""Greedy answers and class log-likelihoods of SmolLM2 for 7 prompts, in batches of 2.

Run by tests/slow/test_distributed.py in one process and under ``accelerate launch`` with 2
(gloo on the CPU): alignlab.shards deals the 4 batches out (a short last round) and every process
gets all results back. The main process saves them, with what each process got, to ``--out``.
Not a test module itself: pytest does not collect it.
"""

import argparse
import json

from accelerate.utils import gather_object

from alignlab.models import SMOLLM2, choice_logprobs, generate, load_model
from alignlab.shards import processes

# Distinct lengths, so the longest-first batches are fixed and a mix-up changes the answers.
PROMPTS = ["Hi", "Name a colour.", "What is two plus two?", "Write a haiku about the sea, please.",
           "Explain in one sentence why the sky looks blue on a clear day.",
           "Give me three tips for keeping a small vegetable garden healthy through a dry summer.",
           "Summarise the plot of a story in which a dragon and a knight become friends after a long "
           "misunderstanding about a stolen crown."]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    out = parser.parse_args().out
    model, tokenizer = load_model(SMOLLM2)
    answers = generate(model, tokenizer, PROMPTS, max_new_tokens=8, batch_size=2)
    logprobs = choice_logprobs(model, tokenizer, PROMPTS, ("negative", "positive"), batch_size=2).tolist()
    every_process = gather_object([{"answers": answers, "logprobs": logprobs}])
    group = processes()
    if group.is_main_process:
        with open(out, "w", encoding="utf-8") as f:
            json.dump({"num_processes": group.num_processes, "answers": answers, "logprobs": logprobs,
                       "every_process": every_process}, f)
    group.destroy_process_group()  # before interpreter shutdown, as alignlab.train does (see there)


if __name__ == "__main__":
    main()
