"""Training speed on this CPU, side by side in one run: `make bench`.

For fp32 and bf16 autocast, SmolLM2-135M with LoRA r=8 on every linear layer, batch 8 x 128 tokens:

- the bare step: forward + backward of the PEFT model, no trainer (the floor);
- the project's SFT step (`PlainLossSFTTrainer.training_step`) and Vaccine step (`VaccineTrainer`);
- TRL's `SFTTrainer` step as shipped (its fused LM head), for what the project's step removes.

Each precision runs in a fresh subprocess; within it the four steps take turns, so that a load on
the machine falls on all of them alike; figures are means over --steps steps after one warm-up.
bf16 runs the steps under `torch.autocast("cpu", torch.bfloat16)`, as Trainer's loop does
through accelerate. Also: batched greedy generation tokens/s in fp32 and bf16 weights; how much
of Vaccine's perturbation survives being added to the real model's bf16 attention outputs at the
cpu profile's rho; and the padding share of the cpu profile's training batches, shuffled, as the
length-grouped sampler makes them, and sorted. Writes docs/performance.json and the table between
the `bench` markers of docs/performance.md.

    python scripts/bench_training.py [--steps 3] [--batch 8] [--tokens 128] [--no-write | --render]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from alignlab import paths
from alignlab.report import write_readme_block

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("bare", "sft", "vaccine", "trl_sft")
LABELS = {"bare": "bare PEFT forward + backward", "sft": "project SFT step (PlainLossSFTTrainer)",
          "vaccine": "project Vaccine step (VaccineTrainer, rho=2)", "trl_sft": "TRL SFTTrainer step, as shipped"}


def step_times(precision: str, steps: int, batch: int, tokens: int) -> dict:
    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from trl import SFTConfig, SFTTrainer

    from alignlab.models import load_model
    from alignlab.training import PlainLossSFTTrainer
    from alignlab.vaccine.trainer import VaccineConfig, VaccineTrainer

    torch.manual_seed(0)
    model, tokenizer = load_model("smollm2-135m-instruct")
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    model.train()
    common = dict(output_dir="/tmp/bench_training", report_to=[], use_cpu=True, per_device_train_batch_size=batch,
                  bf16=precision == "bf16", gradient_checkpointing=False)
    kw = dict(model=model, processing_class=tokenizer, train_dataset=datasets.Dataset.from_list([{"input_ids": [1, 2]}]))
    trainers = {"sft": PlainLossSFTTrainer(args=SFTConfig(**common), **kw),
                "vaccine": VaccineTrainer(args=VaccineConfig(rho=2.0, **common), **kw),
                "trl_sft": SFTTrainer(args=SFTConfig(**common), **kw)}
    for trainer in trainers.values():
        trainer.current_gradient_accumulation_steps = 1
    ids = torch.randint(0, model.config.vocab_size, (batch, tokens), generator=torch.Generator().manual_seed(0))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}

    def bare():
        model(**inputs).loss.backward()

    run = {"bare": bare, **{k: (lambda t=t: t.training_step(model, dict(inputs))) for k, t in trainers.items()}}
    times = {k: [] for k in KINDS}
    for step in range(steps + 1):
        for kind in KINDS:
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                run[kind]()
            if step:  # step 0 warms up allocators and kernels
                times[kind].append(time.perf_counter() - start)
    return {k: sum(v) / len(v) for k, v in times.items()}


def generation_speed(precision: str, n: int, max_new_tokens: int) -> float:
    """Batched greedy generation tokens/s on the cpu profile's first n harmful evaluation prompts."""
    import torch

    from alignlab.models import generate, load_model
    from alignlab.profile import setup_run

    run = setup_run("cpu", verbose=False)
    model, tokenizer = load_model(run.profile.model, dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
    prompts = [r["prompt"] for r in run.splits.harmful_eval[:n]]
    generate(model, tokenizer, prompts[:4], 4, batch_size=4)  # warm-up
    start = time.perf_counter()
    answers = generate(model, tokenizer, prompts, max_new_tokens, batch_size=run.profile.eval_batch_size)
    seconds = time.perf_counter() - start
    return sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers) / seconds


def perturbation_survival(batch: int) -> dict:
    """On a batch of the cpu profile's alignment set, at the profile's rho, under bf16 autocast: how
    much of eps arrives at the attention outputs (alignlab.vaccine.trainer.perturbation_arrival)."""
    from peft import LoraConfig, get_peft_model

    from alignlab.models import load_model
    from alignlab.profile import setup_run
    from alignlab.training import sft_dataset
    from alignlab.vaccine.trainer import VaccineConfig, VaccineTrainer, perturbation_arrival

    run = setup_run("cpu", verbose=False)
    p = run.profile
    model, tokenizer = load_model(p.model)
    model = get_peft_model(model, LoraConfig(r=p.lora_r, lora_alpha=p.lora_alpha, target_modules="all-linear",
                                             task_type="CAUSAL_LM")).train()
    data = sft_dataset(tokenizer, run.splits.alignment_set[:batch], p.max_length)
    trainer = VaccineTrainer(model=model, processing_class=tokenizer, train_dataset=data,
                             args=VaccineConfig(output_dir="/tmp/bench_training", report_to=[], use_cpu=True, rho=p.rho,
                                                bf16=True, gradient_checkpointing=False, completion_only_loss=True))
    trainer.current_gradient_accumulation_steps = 1
    inputs = trainer.data_collator(list(trainer.train_dataset))  # the batch as training pads and masks it
    arrival = perturbation_arrival(trainer, model, inputs)
    return {"bf16": arrival["native"], "fp32": arrival["project"], "rho": p.rho,
            "attention_dtype": arrival["attention_dtype"], "eps_over_h_rms": arrival["eps_over_h"]}


def padding(batch: int) -> dict:
    """Padding tokens / all tokens of the cpu profile's alignment batches, and the share of batches
    that mix refusals and helpful answers: shuffled, as the length-grouped sampler draws them, sorted."""
    import random

    from alignlab.models import load_model
    from alignlab.profile import setup_run
    from alignlab.training import EpochSeededLengthGroupedSampler, tokenize_example

    run = setup_run("cpu", verbose=False)
    p = run.profile
    _, tokenizer = load_model(p.model)
    records = run.splits.alignment_set  # refusals first, then helpful answers
    lengths = [len(tokenize_example(tokenizer, r["prompt"], r["response"], p.max_length)["input_ids"]) for r in records]
    helpful = [i >= len(run.splits.alignment) for i in range(len(records))]

    def batches(order):
        return [order[i:i + batch] for i in range(0, len(order), batch)]

    def share(order):
        padded = sum(len(b) * max(lengths[j] for j in b) for b in batches(order))
        return 1 - sum(lengths) / padded

    def mixed(order):
        return sum(len({helpful[j] for j in b}) == 2 for b in batches(order)) / len(batches(order))

    shuffled = list(range(len(lengths)))
    random.Random(0).shuffle(shuffled)
    grouped = list(EpochSeededLengthGroupedSampler(batch, lengths, seed=p.data_seed))
    return {"n": len(lengths), "longest": max(lengths), "batch": batch,
            "shuffled": share(shuffled), "grouped": share(grouped), "sorted": share(sorted(shuffled, key=lengths.__getitem__)),
            "mixed_shuffled": mixed(shuffled), "mixed_grouped": mixed(grouped)}


def worker(args) -> dict:
    what = args.worker
    if what in ("fp32", "bf16"):
        return {"steps": step_times(what, args.steps, args.batch, args.tokens),
                "generation_tokens_per_s": generation_speed(what, args.gen_prompts, args.gen_tokens)}
    if what == "perturbation":
        return perturbation_survival(args.batch)
    return padding(args.batch)


def table(r: dict) -> str:
    tokens = r["batch"] * r["tokens"]
    rows = ["| step, batch {b} x {t} tokens | fp32 s | bf16 s | fp32 tokens/s | bf16 tokens/s | bf16 / fp32 |".format(
                b=r["batch"], t=r["tokens"]), "|---|---|---|---|---|---|"]
    for kind in KINDS:
        f, b = r["fp32"]["steps"][kind], r["bf16"]["steps"][kind]
        rows.append(f"| {LABELS[kind]} | {f:.2f} | {b:.2f} | {tokens / f:.0f} | {tokens / b:.0f} | {f / b:.2f}x |")
    s = {p: r[p]["steps"] for p in ("fp32", "bf16")}
    g, pert, pad = (r["fp32"]["generation_tokens_per_s"], r["bf16"]["generation_tokens_per_s"]), r["perturbation"], \
        r["padding"]
    lines = [*rows, "",
             f"- Project SFT step / bare step: {s['fp32']['sft'] / s['fp32']['bare']:.2f}x fp32, "
             f"{s['bf16']['sft'] / s['bf16']['bare']:.2f}x bf16 (TRL's step as shipped: "
             f"{s['fp32']['trl_sft'] / s['fp32']['bare']:.2f}x, {s['bf16']['trl_sft'] / s['bf16']['bare']:.2f}x). "
             f"Vaccine / SFT: {s['fp32']['vaccine'] / s['fp32']['sft']:.2f}x fp32, "
             f"{s['bf16']['vaccine'] / s['bf16']['sft']:.2f}x bf16.",
             f"- Batched greedy generation ({r['gen_prompts']} prompts, {r['gen_tokens']} new tokens): "
             f"{g[0]:.0f} tokens/s fp32, {g[1]:.0f} bf16 weights ({g[1] / g[0]:.2f}x).",
             f"- Vaccine's eps (rho={pert['rho']}, eps / attention output {pert['eps_over_h_rms']:.1e} in RMS) added to the "
             f"{pert['attention_dtype']} attention outputs: added in bf16, ||(h+eps)-h|| / ||eps|| = "
             f"{pert['bf16']['kept']:.2f} with error {pert['bf16']['error']:.2f} of ||eps||; added in fp32 "
             f"(add_perturbation): {pert['fp32']['kept']:.3f}, error {pert['fp32']['error']:.1e}.",
             *generation_dtype_line(),
             f"- Padding in the cpu profile's alignment batches of {pad['batch']} ({pad['n']} samples, longest "
             f"{pad['longest']} tokens): shuffled {pad['shuffled']:.0%}, length-grouped sampler {pad['grouped']:.0%}, "
             f"sorted {pad['sorted']:.0%}. Batches that mix refusals and helpful answers: shuffled "
             f"{pad['mixed_shuffled']:.0%}, length-grouped {pad['mixed_grouped']:.0%}."]
    return "\n".join(lines)


def generation_dtype_line() -> list[str]:
    """The verdict of scripts/bench_generation_dtype.py, when it has written docs/generation_dtype.json."""
    path = ROOT / "docs" / "generation_dtype.json"
    if not path.exists():
        return []
    r = json.loads(path.read_text())
    h = r["hs"]
    adopted = r["harmful"]["identical"] >= 0.95 or h["ci95"][0] <= 0 <= h["ci95"][1]
    return [f"- Greedy evaluation answers of {r['model']} in bf16 ({r['bf16']}) against fp32 "
            f"(scripts/bench_generation_dtype.py): {r['harmful']['identical']:.0%} of {r['harmful']['n']} harmful-prompt "
            f"answers and {r['task']['identical']:.0%} of {r['task']['n']} SST-2 answers identical; HS {h['fp32']:.1f} "
            f"fp32 vs {h['bf16']:.1f} bf16, difference {h['difference']:+.1f} [{h['ci95'][0]:+.1f}, {h['ci95'][1]:+.1f}]. "
            + ("Adopted (95% identical, or HS unchanged within its interval)." if adopted else
               "Not adopted: under 95% identical, and the HS difference's interval excludes 0, so evaluation and sampling "
               "generate in fp32.")]


def write(result: dict) -> None:
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "performance.json").write_text(json.dumps(result, indent=1) + "\n")
    write_readme_block("bench", table(result), paths.ROOT / "docs" / "performance.md")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--gen-prompts", type=int, default=64)
    parser.add_argument("--gen-tokens", type=int, default=32)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ as it is")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: write docs/performance.md's table again from docs/performance.json")
    parser.add_argument("--worker", choices=("fp32", "bf16", "perturbation", "padding"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.render:
        write(json.loads((ROOT / "docs" / "performance.json").read_text()))
        return
    result = {"batch": args.batch, "tokens": args.tokens, "steps": args.steps, "gen_prompts": args.gen_prompts,
              "gen_tokens": args.gen_tokens}
    for what in ("fp32", "bf16", "perturbation", "padding"):
        out = subprocess.run([sys.executable, __file__, "--worker", what, *sys.argv[1:]], check=True,
                             capture_output=True, text=True).stdout
        result[what] = json.loads(out.strip().splitlines()[-1])
    print(table(result))
    if not args.no_write:
        write(result)


if __name__ == "__main__":
    main()
