"""Per-step time and peak memory of SFT vs Vaccine on SmolLM2-135M with LoRA, batch 8 x 128 tokens.

Each method runs in a fresh subprocess so that peak memory is not shared between them; the
figures printed are means over --steps steps after one warm-up step, and their ratios.
Peak memory is the process's peak resident set (ru_maxrss), reported both whole and above the
resident set after the warm-up step is set up (model, optimizer state), i.e. what a step adds.

    python scripts/bench_vaccine.py [--steps 3] [--model smollm2-135m-instruct]
"""

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(method: str, model_name: str, steps: int, batch: int, tokens: int) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    from alignlab.models import load_model
    from alignlab.vaccine import VaccineConfig, VaccineTrainer

    torch.manual_seed(0)
    model, _ = load_model(model_name)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    common = dict(output_dir="/tmp/bench_vaccine", report_to=[], use_cpu=True, per_device_train_batch_size=batch)
    if method == "vaccine":
        trainer = VaccineTrainer(model=model, args=VaccineConfig(rho=2.0, **common))
    else:
        trainer = Trainer(model=model, args=TrainingArguments(**common))
    trainer.current_gradient_accumulation_steps = 1
    ids = torch.randint(0, model.config.vocab_size, (batch, tokens), generator=torch.Generator().manual_seed(0))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for step in range(steps + 1):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        trainer.training_step(trainer.model, dict(inputs))
        if step:  # step 0 warms up allocators and kernels
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"step_s": sum(times) / len(times), "peak_mb": peak / 1024, "step_mb": (peak - base_rss) / 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--worker", choices=["sft", "vaccine"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.model, args.steps, args.batch, args.tokens)))
        return
    results = {}
    for method in ("sft", "vaccine"):
        out = subprocess.run([sys.executable, __file__, "--worker", method, "--steps", str(args.steps),
                              "--batch", str(args.batch), "--tokens", str(args.tokens), "--model", args.model],
                             check=True, capture_output=True, text=True).stdout
        results[method] = json.loads(out.strip().splitlines()[-1])
        r = results[method]
        print(f"{method:8s} step {r['step_s']:.2f} s   peak RSS {r['peak_mb']:.0f} MB   added by steps {r['step_mb']:.0f} MB")
    sft, vac = results["sft"], results["vaccine"]
    print(f"Vaccine / SFT: time {vac['step_s'] / sft['step_s']:.2f}x   peak RSS {vac['peak_mb'] / sft['peak_mb']:.2f}x   "
          f"step memory {vac['step_mb'] / max(sft['step_mb'], 1):.2f}x   "
          f"({args.model}, LoRA r=8, batch {args.batch} x {args.tokens} tokens, {args.steps} steps)")


if __name__ == "__main__":
    main()
