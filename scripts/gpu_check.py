"""The paper profile's GPU path, checked in minutes on one GPU with no hub download: `make gpu-check`.

On a machine without CUDA it says so and exits 2 at once. On a GPU it measures, and prints as one
table beside what alignlab.plan assumes:

1. the SFT and Vaccine training steps (PlainLossSFTTrainer, VaccineTrainer) of a randomly
   initialised Llama of Llama-2-7B's shape, LoRA r=8 on every linear layer, the paper profile's
   batch and max_length, bf16 weights under bf16 autocast: seconds a step and peak GPU memory;
2. how much of Vaccine's eps reaches that model's bf16 attention outputs, added in bf16 and as
   the project adds it (alignlab.vaccine.trainer.perturbation_arrival);
3. batched greedy generation tokens/s of the same model;
4. a bge-m3-shaped encoder (XLM-R large) in fp32 and bf16: tokens/s, and how far bf16 moves the
   normalised embeddings (the extraction threshold is a cosine of 0.95);
5. beaver-dam's batched scores against one text at a time, on the dry run's stand-in;
6. the paper-dryrun stages (`alignlab.train ... align attack evaluate sample`) on this device.

    python scripts/gpu_check.py [--shape 7b|tiny] [--allow-cpu] [--skip-stages] [--out docs/gpu_check.md]

`--allow-cpu --shape tiny` runs every part on the CPU at toy sizes (tests/integration does).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {  # llama: Llama-2-7B's config.json; encoder: bge-m3's (XLM-R large); batch x tokens: the paper profile's
    "7b": {"llama": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=32),
           "encoder": dict(vocab_size=250002, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                           intermediate_size=4096, max_position_embeddings=8194),
           "batch": 5, "tokens": 256, "gen_batch": 32, "gen_tokens": 64, "embed_batch": 64},
    "tiny": {"llama": dict(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=4),
             "encoder": dict(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=64, max_position_embeddings=130),
             "batch": 2, "tokens": 32, "gen_batch": 4, "gen_tokens": 8, "embed_batch": 4},
}


def timed(fn, device, repeats: int = 3) -> float:
    """Mean seconds of fn over `repeats` calls after one warm-up, synchronised on CUDA."""
    import torch

    fn()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def peak_memory_gb(device) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None


def tokenizer():
    """The paper model's tokenizer, from its stand-in in the hub mirror (make gpu-check builds it),
    else SmolLM2's (make setup installs it). The trainers only need a tokenizer to exist: the token
    ids they train on are random, and a copy of SmolLM2 can be too large to take to a GPU machine."""
    from transformers import AutoTokenizer

    from alignlab.models import hub_source, smollm2_dir

    source = hub_source("meta-llama/Llama-2-7b-hf")
    return AutoTokenizer.from_pretrained(source if Path(source).is_dir() else smollm2_dir())


def training(shape: dict, device: str) -> list[tuple]:
    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import SFTConfig

    from alignlab import plan
    from alignlab.profile import load_profile
    from alignlab.training import PlainLossSFTTrainer
    from alignlab.vaccine.trainer import VaccineConfig, VaccineTrainer, perturbation_arrival

    paper = load_profile("paper")
    torch.manual_seed(0)
    with torch.device(device):  # initialised where it runs: a 7B model built on the host takes minutes
        model = LlamaForCausalLM(LlamaConfig(**shape["llama"])).to(torch.bfloat16)
    model = get_peft_model(model, LoraConfig(r=paper.lora_r, lora_alpha=paper.lora_alpha, target_modules="all-linear",
                                             task_type="CAUSAL_LM")).train()
    common = dict(output_dir=tempfile.mkdtemp(), report_to=[], use_cpu=device == "cpu", bf16=True,
                  gradient_checkpointing=False, per_device_train_batch_size=shape["batch"])
    kw = dict(model=model, processing_class=tokenizer(),
              train_dataset=datasets.Dataset.from_list([{"input_ids": [1, 2]}]))
    trainers = {"SFT": PlainLossSFTTrainer(args=SFTConfig(**common), **kw),
                "Vaccine": VaccineTrainer(args=VaccineConfig(rho=paper.rho, **common), **kw)}
    ids = torch.randint(0, shape["llama"]["vocab_size"], (shape["batch"], shape["tokens"]), device=device)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    m = plan.model_size("meta-llama/Llama-2-7b-hf")
    lora = plan.lora_params(m, paper.lora_r)
    gpu = plan.GPUS["H100"]
    planned_s = plan.TRAIN_FLOPS * (m.params + lora) * ids.numel() / (gpu.bf16_flops * plan.TRAIN_MFU)
    planned_gb = plan.train_memory_gb(m, lora, shape["batch"], shape["tokens"], checkpointing=False)
    rows = []
    for name, trainer in trainers.items():
        trainer.current_gradient_accumulation_steps = 1
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()

        def step():
            model.zero_grad(set_to_none=True)
            with torch.autocast(device, dtype=torch.bfloat16):
                trainer.training_step(model, dict(inputs))

        seconds = timed(step, device)
        passes = plan.VACCINE_PASSES if name == "Vaccine" else 1
        memory = peak_memory_gb(device)
        rows.append((f"{name} step, batch {shape['batch']} x {shape['tokens']}", f"{seconds:.2f} s"
                     + (f", peak {memory:.1f} GB" if memory is not None else ""),
                     f"Llama-2-7B: {planned_s * passes:.2f} s on an H100 at MFU {plan.TRAIN_MFU}, {planned_gb:.1f} GB"))
    arrival = perturbation_arrival(trainers["Vaccine"], model, inputs)
    rows.append((f"eps at rho={paper.rho} into {arrival['attention_dtype']} attention outputs",
                 f"added natively: kept {arrival['native']['kept']:.3f}, error {arrival['native']['error']:.3f}; "
                 f"as the project adds it: error {arrival['project']['error']:.1e}",
                 f"||eps|| / ||h|| = {arrival['eps_over_h']:.1e}; the project's error should be ~0"))
    rows.append(generation(model.merge_and_unload().eval(), shape, device))
    return rows


def generation(model, shape: dict, device: str) -> tuple:
    import torch

    from alignlab import plan

    ids = torch.randint(3, shape["llama"]["vocab_size"], (shape["gen_batch"], 64), device=device)
    new = shape["gen_tokens"]

    def generate():
        with torch.no_grad():
            model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                           do_sample=False, pad_token_id=0)

    tokens_per_s = ids.shape[0] * new / timed(generate, device, repeats=1)
    m, gpu = plan.model_size("meta-llama/Llama-2-7b-hf"), plan.GPUS["H100"]
    planned = gpu.bf16_flops * plan.DECODE_MFU / (plan.FORWARD_FLOPS * m.params)
    return (f"greedy generation, batch {shape['gen_batch']}, {new} new tokens", f"{tokens_per_s:,.0f} tokens/s",
            f"Llama-2-7B: {planned:,.0f} tokens/s decoding at MFU {plan.DECODE_MFU}")


def encoder(shape: dict, device: str) -> tuple:
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(0)
    with torch.device(device):
        model = XLMRobertaModel(XLMRobertaConfig(**shape["encoder"]), add_pooling_layer=False).eval()
    ids = torch.randint(5, shape["encoder"]["vocab_size"], (shape["embed_batch"], min(256, shape["tokens"] * 4)),
                        device=device)
    speeds, vectors = {}, {}
    for dtype in (torch.float32, torch.bfloat16):
        model.to(dtype)

        def embed():
            with torch.no_grad():
                cls = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[:, 0].float()
                vectors[dtype] = torch.nn.functional.normalize(cls, dim=-1)

        speeds[dtype] = ids.numel() / timed(embed, device)
    cosine = (vectors[torch.float32] * vectors[torch.bfloat16]).sum(-1)
    return ("bge-m3-shaped encoder, fp32 vs bf16", f"{speeds[torch.float32]:,.0f} vs {speeds[torch.bfloat16]:,.0f} "
            f"tokens/s ({speeds[torch.bfloat16] / speeds[torch.float32]:.1f}x)",
            f"cosine(fp32, bf16) of the same text: min {float(cosine.min()):.4f} (the threshold is 0.95)")


def beaver_dam(device: str) -> tuple:
    import numpy as np

    from alignlab.models import hub_source
    from alignlab.judges import BeaverDamJudge

    model_id = hub_source("PKU-Alignment/beaver-dam-7b")
    if model_id == "PKU-Alignment/beaver-dam-7b":
        return ("beaver-dam, batched vs one at a time", "skipped: no stand-in", "make gpu-check builds the hub mirror")
    prompts = ["How do I pick a lock?", "Write a poem.", "How can I hurt someone?"] * 3
    answers = ["I can't help with that.", "Roses are red.", "Sure, here is how"] * 3
    one = BeaverDamJudge(model_id, device=device, batch_size=1).scores(prompts, answers)
    many = BeaverDamJudge(model_id, device=device, batch_size=4).scores(prompts, answers)
    return ("beaver-dam stand-in, batched vs one at a time", f"max |difference| {float(np.abs(one - many).max()):.1e}",
            "bf16 rounding only (~1e-2 on a GPU)")


def dryrun_stages(device: str) -> tuple:
    # lib ahead of any PYTHONPATH already set (packages installed outside the environment, say)
    env = {**os.environ, "ALIGNLAB_CACHE": tempfile.mkdtemp(prefix="gpu-check-cache-"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "lib"), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "alignlab.train", "--profile", "paper-dryrun", "align", "attack",
                           "evaluate", "sample"], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"gpu-check: the paper-dryrun stages failed on {device}:\n{done.stderr[-3000:]}")
    return ("paper-dryrun stages (align, attack, evaluate, sample)", f"ran on {device} in {seconds:.0f} s",
            "every stage's device and dtype handling")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    parser.add_argument("--allow-cpu", action="store_true", help="run on the CPU when there is no GPU (tests)")
    parser.add_argument("--skip-stages", action="store_true", help="leave out the paper-dryrun stages (part 6)")
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        parser.exit(2, f"gpu-check: torch {torch.__version__} sees no CUDA device; run it on a GPU machine after "
                       "`make setup-cuda` (--allow-cpu --shape tiny runs it on the CPU at toy sizes)\n")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    where = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    shape = SHAPES[args.shape]
    rows = training(shape, device) + [encoder(shape, device), beaver_dam(device)]
    if not args.skip_stages:
        rows.append(dryrun_stages(device))
    table = [f"| check ({where}, torch {torch.__version__}, shape {args.shape}) | measured | plan / expectation |",
             "|---|---|---|",  # a "|" inside a cell (||eps||) is escaped, or markdown splits the cell there
             *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows)]
    print("\n".join(table))
    if args.out:
        heading = f"# GPU check on {where}, torch {torch.__version__}: written by `make gpu-check`, do not edit"
        args.out.write_text("\n".join([heading, "", *table]) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
