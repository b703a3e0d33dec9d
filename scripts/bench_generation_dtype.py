"""Greedy evaluation answers in bf16 against fp32: how many change, what they do to HS, and the speed.

The cpu profile's evaluation prompts (held-out harmful prompts at max_new_tokens, SST-2 items at
task_max_new_tokens) answered greedily by one model loaded in fp32 and in bf16, in one run:
the share of identical answers per prompt set, generation tokens/s, and HS under the profile's
judge for both, with a paired bootstrap interval of the HS difference over prompts. The rule for
adopting bf16 generation: at least 95% identical answers, or the HS difference's interval covers 0.

    python scripts/bench_generation_dtype.py [--model NAME] [--profile cpu] [--bf16 weights|autocast] [--out FILE]

`make bench` runs it with bf16 weights and writes docs/generation_dtype.json, which the speed table
in docs/performance.md (scripts/bench_training.py) reports.
"""

import argparse
import json
import time

import numpy as np
import torch

from alignlab.models import generate, load_model
from alignlab.profile import setup_run
from alignlab.judges import load_judge


def answers_and_speed(model, tokenizer, prompts, max_new_tokens, batch_size, autocast):
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        answers = generate(model, tokenizer, prompts, max_new_tokens, batch_size)
    seconds = time.perf_counter() - start
    tokens = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers)
    return answers, tokens / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a model name or folder; default: the profile's model")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--out", default=None, help="also write the figures as JSON here")
    parser.add_argument("--bf16", choices=("weights", "autocast"), default="weights",
                        help="bf16 weights throughout, or fp32 weights under bf16 autocast (matmuls in bf16)")
    args = parser.parse_args()
    run = setup_run(args.profile, verbose=False)
    p, s = run.profile, run.splits
    sets = {"harmful": ([r["prompt"] for r in s.harmful_eval], p.max_new_tokens),
            "task": ([r["prompt"] for r in s.task_eval], p.task_max_new_tokens)}
    answers, speed = {}, {}
    for dtype in ("fp32", "bf16"):
        weights_bf16 = dtype == "bf16" and args.bf16 == "weights"
        model, tokenizer = load_model(args.model or p.model, dtype=torch.bfloat16 if weights_bf16 else torch.float32)
        for name, (prompts, max_new) in sets.items():
            answers[dtype, name], speed[dtype, name] = answers_and_speed(
                model, tokenizer, prompts, max_new, p.eval_batch_size, autocast=dtype == "bf16" and not weights_bf16)
    judge = load_judge(p.name)
    prompts = sets["harmful"][0]
    flagged = {d: np.asarray(judge(prompts, answers[d, "harmful"]), dtype=float) for d in ("fp32", "bf16")}
    diff = flagged["bf16"] - flagged["fp32"]
    rng = np.random.default_rng(0)
    boot = [100 * diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(10_000)]
    result = {"model": args.model or p.model, "profile": p.name, "bf16": args.bf16}
    for name in sets:
        same = np.mean([a == b for a, b in zip(answers["fp32", name], answers["bf16", name])])
        result[name] = {"identical": float(same), "n": len(sets[name][0]),
                        "tokens_per_s_fp32": speed["fp32", name], "tokens_per_s_bf16": speed["bf16", name]}
        print(f"{name:8s} identical greedy answers {same:.1%} of {len(sets[name][0])}; tokens/s fp32 "
              f"{speed['fp32', name]:.0f}, bf16 {speed['bf16', name]:.0f} ({speed['bf16', name] / speed['fp32', name]:.2f}x)")
    result["hs"] = {"fp32": 100 * flagged["fp32"].mean(), "bf16": 100 * flagged["bf16"].mean(),
                    "difference": 100 * diff.mean(), "ci95": [float(np.percentile(boot, 2.5)),
                                                              float(np.percentile(boot, 97.5))]}
    h = result["hs"]
    print(f"HS ({p.judge} judge): fp32 {h['fp32']:.1f}, bf16 {h['bf16']:.1f}, difference {h['difference']:+.1f} "
          f"[{h['ci95'][0]:+.1f}, {h['ci95'][1]:+.1f}] (paired bootstrap over prompts)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
