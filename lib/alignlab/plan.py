"""What a profile will cost before it runs: GPU hours, memory and disk per stage, and a preflight
check that fails in seconds on a value that would fail (or fill the disk) hours into a run.

    python -m alignlab.plan --profile paper --gpus 8

:func:`plan` gives one row per stage family (alignment, attacks, evaluation, judge, extraction
sampling per target x prefix, embeddings, FAISS, string baselines, distillation, downloads). Every
number comes from a FLOP or byte count of the profile's values times a stated throughput: the
constants below, each with its source or the assumption it is. They are estimates of compute, not
measurements: model loading is counted, Python overhead and data loading are not, so the tiny
smoke and cpu models (where overhead is everything) plan far below their real wall-clock time.

:func:`alignlab.preflight.preflight` checks a profile against this plan before it runs.

The stage rules mirror ``alignlab.vaccine.stages`` and ``alignlab.extraction.stages`` (importing
them loads torch, peft and trl: ~10 s); tests/unit/test_plan.py checks the mirrored constants.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import pandas as pd

from alignlab.model_sizes import ALIASES, MODEL_PARAMS, Model, UnknownModel, lora_params, model_size  # noqa: F401
from alignlab.profile import DOSE_SET, DOSE_TARGET, ConfigError, Profile, load_profile

# ---------------------------------------------------------------- hardware

@dataclass(frozen=True)
class Gpu:
    bf16_flops: float  # dense tensor-core peak, no sparsity (vendor datasheet, SXM)
    fp32_flops: float  # plain FP32 peak: PyTorch does not use TF32 for matmuls unless asked
    memory_gb: float


GPUS = {"H100": Gpu(989e12, 67e12, 80), "H200": Gpu(989e12, 67e12, 141), "A100": Gpu(312e12, 19.5e12, 80)}
TRAIN_MFU = 0.35  # model FLOP utilisation of LoRA training (HF Trainer, bf16, batch 5 x 256): assumed
FORWARD_MFU = 0.35  # prompt prefill, judge and embedding forward passes (batched, compute-bound): assumed
DECODE_MFU = 0.02  # HF generate, eager, batch 16-64: ~20-30 ms a step for a 7B model (kernel launches and
#                    weight + KV reads, not FLOPs, bound a step) -> 0.6k-2.5k tokens/s = 1-3 % of bf16 peak
CPU_FLOPS_PER_CORE = 20e9  # fp32 BLAS in FAISS: docs/performance.md's bench_search (IVF build, 1M x 384-d, 2 cores):
#                            ~22 GFLOP/s a core
LOAD_BYTES_PER_S = 2e9  # reading (or writing) a checkpoint from local NVMe: assumed
CUDA_OVERHEAD_GB = 2.0  # CUDA context, cuBLAS workspace, allocator slack per process: assumed

# ---------------------------------------------------------------- FLOPs and bytes per parameter

TRAIN_FLOPS = 6  # per parameter per trained token: 2 forward + 4 backward (Kaplan et al. 2020). LoRA skips
#                  the frozen weights' gradients (~4 would do): 6 is an upper bound that also covers attention
#                  at <= 512 tokens
CHECKPOINTING_FLOPS = 2  # gradient checkpointing recomputes the forward once more
VACCINE_PASSES = 2  # two forward-backward passes a step (vaccine/trainer.py); pass 1 skips weight gradients,
#                     so 2 is an upper bound (docs/performance.md: about 2x the SFT step time on CPU)
FORWARD_FLOPS = 2  # per parameter per token of a forward pass (prefill, decode, judge, embedding)
ACT_BYTES = 34  # activation bytes per token per hidden unit per layer kept for backward, 16-bit
#                 (Korthikanti et al. 2022; SDPA keeps no attention-score matrix, so no 5*a*s/h term)
ADAPTER_BYTES = 4  # LoRA adapters are fp32 (peft upcasts them); optimizer: + gradient + 2 Adam moments = 16
WEIGHT_BYTES = 2  # bf16: load_model's dtype on CUDA, so every merged aligned model is saved in bf16
CHECKPOINT_BYTES = 3 * ADAPTER_BYTES  # a Trainer checkpoint per LoRA parameter: fp32 adapter + 2 Adam moments

# ---------------------------------------------------------------- tokens and text

PROMPT_TOKENS = 64  # a chat-formatted harmful, task or benign prompt: assumed typical (BeaverTails, SST-2)
PREFIX_TOKENS = 8  # an extraction prefix: a chat-template header alone
CONTINUATION = 1.5  # extraction sampling continues a generation that stops in the user turn (Magpie) with a
#                     second generate: assumed for half of them (1.0 none .. 2.0 all)
CHARS_PER_TOKEN = 4.0  # English text with Llama / OLMo tokenisers: rule of thumb
CORPUS_TOKENS = {"tulu3_sft": 700}  # mean tokens of a first user + assistant turn: ASSUMED, not measured here
#                                     (no hub); other sets count every sample at max_length (an upper bound)
JUDGE_BATCH, JUDGE_MAX_LENGTH = 16, 512  # BeaverDamJudge defaults
EMBED_BATCH = 64  # alignlab.extraction.search.embed
JSON_BYTES_PER_CHAR = 1.2  # keys, escapes, ids around the stored text
SAMPLE_COPIES = 2.0  # a generations.jsonl record stores the text and its question + answer: the text twice

# ---------------------------------------------------------------- search and string baselines

IVF_KMEANS_ITERS = 10  # faiss IndexIVF's clustering default (index.cp.niter)
IVF_TRAIN_PER_CELL = 64  # mirrors alignlab.extraction.search._MAX_TRAIN_PER_CELL
STRING_CHARS2_PER_S = {"levenshtein": 2.09e10, "indel": 3.46e10}  # rapidfuzz cdist, one thread: pairs/s x
#   chars_a x chars_b, measured for this plan (2-core dev machine, random-word texts of 3,104 x 2,800 chars, the
#   paper's generation x Tulu lengths: 2,400 and 3,987 pairs/s; at 3,104 x 1,024 the rule is within 1.4x; short
#   250-char texts run up to 3x slower than it says). Length pruning is ignored (docs/performance.md: 1.0x on unrelated text),
#   and it runs on one core: extractOne holds the GIL and match() does not shard

# ---------------------------------------------------------------- the stage rules mirrored

ALIGNED = ("sft", "vaccine")  # alignlab.vaccine.stages.ALIGNED
BASELINES = ("random_vaccine", "kl", "ewc", "vlguard")  # alignlab.vaccine.stages.BASELINES
DISTILL_SETS = ("extracted", "original", "base generations")  # extraction.stages.distillation_sets
TASK_CLASSES = {"sst2": 2, "glue_sst2": 2, "ag_news": 4}  # FA by log-likelihood scores each class word
JUDGE_MODELS = {"beaver-dam": "PKU-Alignment/beaver-dam-7b"}  # GPU judges; the others run on the CPU

# ---------------------------------------------------------------- models and datasets


OFFLINE_ROWS = {"sst2": 872, "gsm8k": 1319, "sciq": 1000}  # SST-2 validation, GSM8K test, SciQ validation
HUB_SPLIT_ROWS = {  # (hub id, config, split) -> rows, from the dataset cards
    ("nyu-mll/glue", "sst2", "train"): 67_349, ("nyu-mll/glue", "sst2", "validation"): 872,
    ("fancyzhx/ag_news", None, "train"): 120_000, ("fancyzhx/ag_news", None, "test"): 7_600,
    ("openai/gsm8k", "main", "train"): 7_473, ("openai/gsm8k", "main", "test"): 1_319,
    ("PKU-Alignment/BeaverTails", None, "30k_train"): 27_186, ("PKU-Alignment/BeaverTails", None, "30k_test"): 3_021,
    ("tatsu-lab/alpaca_eval", "alpaca_eval", "eval"): 805,
    ("allenai/tulu-3-sft-mixture", None, "train"): 939_344,  # tulu_records keeps rows with a user + assistant turn
}
ROW_FRACTION = {"beavertails_safe": 0.40, "beavertails_unsafe": 0.50, "beavertails_test": 0.50}
# ^ lower bounds on the is_safe / unsafe share of a BeaverTails split: ASSUMED (not counted here: no hub);
#   count them with alignlab.data.load_dataset on a hub machine and replace
HUB_DATASET_GB = {"tulu3_sft": 8.0}  # parquet download + Arrow cache: assumed; the other sets are < 0.2 GB

ASSUMPTIONS = (
    f"peak: bf16 dense {GPUS['H100'].bf16_flops / 1e12:.0f} TFLOP/s, fp32 {GPUS['H100'].fp32_flops / 1e12:.0f} "
    f"(H100 SXM; H200 same compute, A100 312 / 19.5); MFU {TRAIN_MFU} training, {FORWARD_MFU} forward / prefill, "
    f"{DECODE_MFU} decoding (HF generate, memory- and launch-bound)",
    f"training FLOPs = {TRAIN_FLOPS} x (params + LoRA) x tokens (+{CHECKPOINTING_FLOPS} with gradient checkpointing), "
    f"x {VACCINE_PASSES} for Vaccine's two passes; every sample counted at max_length (upper bound)",
    f"generation FLOPs = {FORWARD_FLOPS} x params x (prompt + new tokens); prompts {PROMPT_TOKENS} tokens, "
    f"every answer runs to max_new_tokens (upper bound); extraction x {CONTINUATION} for Magpie continuations",
    f"every run loads its model (and saves its result) at {LOAD_BYTES_PER_S / 1e9:.0f} GB/s; Python overhead "
    "is not counted, so the tiny smoke / cpu models plan far below their wall-clock time",
    "data-parallel under accelerate launch (alignlab.train): training (the process count must divide the global "
    "batch), evaluation and sampling (any count, once trained); distillation, judging, embedding and search run in one "
    "notebook process",
    f"memory = bf16 weights + {4 * ADAPTER_BYTES} B per LoRA parameter + {ACT_BYTES} B x tokens x hidden x layers "
    f"of activations (+ KV cache when generating) + {CUDA_OVERHEAD_GB} GB CUDA overhead; per GPU at the 1-GPU batch",
    "disk = one bf16 merged copy per aligned / distilled model + fp32 adapters + JSON(L) + FAISS (4 B x dim x n) "
    "+ hub downloads + a training stage's last two checkpoints; a fresh cache, upper bound",
    f"checkpoints: one every save_steps steps, {CHECKPOINT_BYTES} B per LoRA parameter (adapter + Adam moments), "
    "written at the load rate and counted in the hours; checkpoint_writes_gb is what they write in all",
    f"CPU: FAISS at {CPU_FLOPS_PER_CORE / 1e9:.0f} GFLOP/s per core; string baselines at {STRING_CHARS2_PER_S} "
    "(pairs/s x chars x chars, measured, one core); cpu_core_hours, not GPU hours",
    f"unmeasured here: Tulu 3 tokens per sample {CORPUS_TOKENS['tulu3_sft']}, BeaverTails safe/unsafe shares "
    f"{ROW_FRACTION}",
)


# ---------------------------------------------------------------- the rules of a run

def alignment_size(p: Profile) -> int:
    return p.n_align + p.n_align_helpful


def target_model(p: Profile, target: str) -> str:
    """alignlab.alignment.model_path: the run's own models ("base", "sft", the doses), or a hub id."""
    if DOSE_TARGET.match(target):
        return p.model
    if target in (*ALIGNED, *BASELINES) and target != "sft":
        raise ConfigError(f"extraction_targets[{target!r}]: the extraction study searches its own models ('sft', "
                          f"'base') or a hub id / local path; {target!r} is a Vaccine-study method: pass its merged "
                          "model's path instead")
    return p.model if target in ("base", "sft") else target


def grid_runs(p: Profile) -> list[tuple[str, float, int]]:
    """vaccine.stages.grid_runs: (method, harmful ratio, run seed) of every user fine-tuning."""
    runs = [(method, ratio, seed) for method in ALIGNED for ratio in p.harmful_ratios
            for seed in (p.replicate_seeds if ratio == p.replicate_ratio and p.replicate_seeds else p.seeds)]
    checks = [("sft", ratio, p.seeds[0]) for ratio in dict.fromkeys(p.check_ratios) if ratio not in p.harmful_ratios]
    return runs + checks + [(method, p.replicate_ratio, p.seeds[0]) for method in p.baselines]


def aligned_runs(p: Profile, method: str) -> int:
    """Alignments of one method: a run seed reseeds alignment (vaccine.stages.aligned_model); the
    KL, EWC and VLGuard runs fine-tune SFT's model of their seed."""
    base = {"kl": "sft", "ewc": "sft", "vlguard": "sft"}
    return len({seed for m, _, seed in grid_runs(p) if base.get(m, m) == method} | {0})


def rho_sweep_new(p: Profile) -> tuple[list[float], list[float]]:
    """The rho sweep's alignments and attacks that the cache does not already hold: rho 0 is SFT,
    rho == profile.rho is the Vaccine model, and their attack at rho_sweep_ratio with the first seed
    is in the attack grid when that ratio is one of harmful_ratios."""
    rhos = list(dict.fromkeys(p.rhos))
    aligns = [r for r in rhos if r not in (0, p.rho)]
    in_grid = p.rho_sweep_ratio in p.harmful_ratios
    attacks = [r for r in rhos if not (in_grid and r in (0, p.rho))]
    return aligns, attacks


def new_doses(p: Profile) -> list[tuple[str, int, int]]:
    """(target, epochs, samples) of the extraction doses that train a model of their own (extraction.dose):
    not ``sft@0`` (the base model), nor ``sft@<align_epochs>`` on the alignment set (notebook 01's SFT model)."""
    out = []
    for target in p.dose_targets():
        m, on_dose_set = DOSE_TARGET.match(target), p.extraction_targets[target] == DOSE_SET
        epochs = int(m["epochs"])
        if epochs and not (m["arm"] == "sft" and epochs == p.align_epochs and not on_dose_set):
            out.append((target, epochs, p.dose_set_size if on_dose_set else alignment_size(p)))
    return out


def distill_size(p: Profile) -> int:
    """extraction.stages.distillation_sets: n_distill samples a set, at most the trained target's
    (main_targets[0]) generations on the first prefix."""
    trained = p.main_targets[0]
    found = p.samples_per_arm(trained, p.prefixes[0]) if trained in p.extraction_targets else 0
    return min(p.n_distill, found)


def data_parallel(batch: int, gpus: int) -> int:
    """Processes a training stage can use: the largest divisor of its global batch <= gpus (train_lora)."""
    return max(d for d in range(1, min(batch, gpus) + 1) if batch % d == 0)


# ---------------------------------------------------------------- cost models

def _hours(flops: float, peak: float, mfu: float) -> float:
    return flops / (peak * mfu) / 3600


def _load_hours(m: Model, runs: float, copies: int = 1) -> float:
    return runs * copies * WEIGHT_BYTES * m.params / LOAD_BYTES_PER_S / 3600


def train_memory_gb(m: Model, lora: float, batch: int, seq: int, checkpointing: bool) -> float:
    tokens = batch * seq
    per_layer = ACT_BYTES * tokens * m.hidden
    activations = (m.layers * 2 * tokens * m.hidden + per_layer) if checkpointing else m.layers * per_layer
    logits = 8 * tokens * m.vocab  # fp32 logits and their gradient
    return (WEIGHT_BYTES * m.params + 4 * ADAPTER_BYTES * lora + activations + logits) / 1e9 + CUDA_OVERHEAD_GB


def _infer_memory_gb(m: Model, batch: int, seq: int, *, bytes_per_param: float = WEIGHT_BYTES,
                     kv_cache: bool = True) -> float:
    kv = 2 * m.layers * m.hidden * 2 * batch * seq if kv_cache else 0  # k and v, bf16, no GQA: upper bound
    activations = ACT_BYTES * batch * seq * m.hidden * bytes_per_param / 2  # one layer's worth, no grad
    return (bytes_per_param * m.params + kv + activations) / 1e9 + CUDA_OVERHEAD_GB


def _row(stage, *, runs=0, steps=0, tokens=0.0, flops=0.0, hours_1=0.0, hours_n=None, memory=0.0, disk=0.0,
         checkpoints=0.0, cpu_hours=0.0, parallel="one process", basis=""):
    return {"stage": stage, "runs": int(runs), "optimizer_steps": int(steps), "tokens": float(tokens),
            "flops": float(flops), "gpu_hours_1": hours_1, "gpu_hours_n": hours_1 if hours_n is None else hours_n,
            "peak_gpu_memory_gb": memory, "disk_gb": disk, "checkpoint_writes_gb": checkpoints,
            "cpu_core_hours": cpu_hours, "parallel": parallel, "basis": basis}


def checkpoint_gb(p: Profile, lora: float, runs: int, steps_per_run: int) -> tuple[float, float]:
    """(GB written, GB on disk at most) by Trainer checkpoints: one every ``save_steps`` steps of each
    run, adapter and Adam state; the stage keeps only its last (save_total_limit=1), two during a save,
    and deletes it once done, so the planned disk counts the peak, not the writes."""
    one = CHECKPOINT_BYTES * lora / 1e9
    return runs * (steps_per_run // p.save_steps) * one, 2 * one if steps_per_run >= p.save_steps else 0.0


def _training(stage, p, gpu, gpus, *, model_id, runs, samples, epochs, batch, passes=1.0, disk=0.0,
              extra_forward_tokens=0.0, note=""):
    """LoRA training runs (alignment, attack, distillation) on ``samples`` records each."""
    m = model_size(model_id)
    lora = lora_params(m, p.lora_r)
    steps = runs * math.ceil(samples / batch) * epochs
    written, peak = checkpoint_gb(p, lora, runs, math.ceil(samples / batch) * epochs)
    tokens = runs * samples * epochs * p.max_length
    per_token = (TRAIN_FLOPS + CHECKPOINTING_FLOPS * p.gradient_checkpointing) * (m.params + lora) * passes
    flops = tokens * per_token + FORWARD_FLOPS * m.params * extra_forward_tokens
    compute = _hours(flops, gpu.bf16_flops, TRAIN_MFU)
    load = _load_hours(m, runs, copies=2)  # load the model, save the merged model (an adapter: less; upper bound)
    load += written * 1e9 / LOAD_BYTES_PER_S / 3600  # checkpoint writes
    dp = data_parallel(batch, gpus)
    return _row(stage, runs=runs, steps=steps, tokens=tokens, flops=flops, hours_1=compute + load,
                hours_n=compute / dp + load,
                memory=train_memory_gb(m, lora, batch, p.max_length, p.gradient_checkpointing) if runs else 0.0,
                disk=disk + peak, checkpoints=written,
                parallel=f"data-parallel on {dp} of {gpus} GPU(s) (global batch {batch})",
                basis=f"{runs} run(s) x {samples} samples x {epochs} epochs x max_length {p.max_length} tokens; "
                      f"{TRAIN_FLOPS} x (params {m.params:.3g} + LoRA {lora:.3g})"
                      + (f" x {passes} passes" if passes != 1 else "") + f" x tokens at MFU {TRAIN_MFU}{note}")


def _generation(stage, gpu, *, model_id, runs, prefill, decode, batch, seq, gpus=1, disk=0.0, basis=""):
    """Batched generation: prefill at FORWARD_MFU, decoding at DECODE_MFU, one load per run (per
    process). ``gpus`` > 1: the batches split over the processes (``alignlab.train evaluate|sample``)."""
    m = model_size(model_id)
    flops = FORWARD_FLOPS * m.params * (prefill + decode)
    compute = (_hours(FORWARD_FLOPS * m.params * prefill, gpu.bf16_flops, FORWARD_MFU)
               + _hours(FORWARD_FLOPS * m.params * decode, gpu.bf16_flops, DECODE_MFU))
    load = _load_hours(m, runs)
    return _row(stage, runs=runs, tokens=prefill + decode, flops=flops, hours_1=compute + load,
                hours_n=compute / gpus + load, memory=_infer_memory_gb(m, batch, seq), disk=disk,
                parallel=f"data-parallel on {gpus} GPU(s) (alignlab.train)" if gpus > 1 else "one process (notebook)",
                basis=f"{basis}; {FORWARD_FLOPS} x params {m.params:.3g} x tokens, prefill at MFU {FORWARD_MFU}, "
                      f"decoding at {DECODE_MFU}")


# ---------------------------------------------------------------- stage families

def alignment_stages(p: Profile, gpu: Gpu, gpus: int) -> list[dict]:
    m = model_size(p.model)
    merged = WEIGHT_BYTES * m.params / 1e9
    aligns, _ = rho_sweep_new(p)
    common = dict(model_id=p.model, samples=alignment_size(p), epochs=p.align_epochs, batch=p.batch_size)
    merged_note = "; disk: one bf16 merged copy per model"
    return [
        _training("align: sft", p, gpu, gpus, runs=aligned_runs(p, "sft"), disk=merged * aligned_runs(p, "sft"),
                  note="; one per run seed" + merged_note, **common),
        _training("align: vaccine", p, gpu, gpus, runs=aligned_runs(p, "vaccine"), passes=VACCINE_PASSES,
                  disk=merged * aligned_runs(p, "vaccine"), note="; one per run seed" + merged_note, **common),
        *([_training("align: random_vaccine", p, gpu, gpus, runs=1, disk=merged, note="; one pass, a random eps"
                     + merged_note, **common)] if "random_vaccine" in p.baselines else []),
        _training("align: rho sweep", p, gpu, gpus, runs=len(aligns), passes=VACCINE_PASSES,
                  disk=merged * len(aligns), note=f"; rhos {aligns} (0 and rho={p.rho} are cached)" + merged_note,
                  **common),
        *[_training(f"align: dose {target}", p, gpu, gpus, runs=1, disk=merged,
                    note="; a dose of the extraction study's dose-response" + merged_note,
                    **{**common, "epochs": epochs, "samples": samples}) for target, epochs, samples in new_doses(p)],
    ]


def attack_stages(p: Profile, gpu: Gpu, gpus: int) -> list[dict]:
    m = model_size(p.model)
    adapter = ADAPTER_BYTES * lora_params(m, p.lora_r) / 1e9
    steps_per_run = math.ceil(p.n_finetune / p.finetune_batch_size) * p.finetune_epochs
    drift_tokens = (steps_per_run // p.drift_every + 1) * p.n_drift * p.max_length * 2  # adapter on and off
    _, rho_attacks = rho_sweep_new(p)
    grid = len(grid_runs(p))
    common = dict(model_id=p.model, samples=p.n_finetune, epochs=p.finetune_epochs, batch=p.finetune_batch_size)
    note = f"; + drift forwards on {p.n_drift} samples every {p.drift_every} steps; disk: fp32 adapters"
    return [
        _training("attack: grid", p, gpu, gpus, runs=grid, disk=adapter * grid,
                  extra_forward_tokens=grid * drift_tokens,
                  note=f"; {len(ALIGNED)} methods x {len(p.harmful_ratios)} ratios x their run seeds, + "
                       f"{len(set(p.check_ratios) - set(p.harmful_ratios))} SFT check runs, + "
                       f"{len(p.baselines)} baselines" + note,
                  **common),
        _training("attack: rho sweep", p, gpu, gpus, runs=len(rho_attacks), disk=adapter * len(rho_attacks),
                  extra_forward_tokens=len(rho_attacks) * drift_tokens,
                  note=f"; rhos {rho_attacks} at ratio {p.rho_sweep_ratio}, seed {p.seeds[0]}" + note, **common),
    ]


def _evaluation(stage, p: Profile, gpu: Gpu, models: int, before_finetuning: int, gpus: int = 1,
                harmful_only: bool = False) -> dict:
    """evaluate(): greedy answers to the harmful and task prompts, class log-likelihoods, and
    benign answers for the models before user fine-tuning (``harmful_only``: the harmful prompts
    alone, as for the distilled models)."""
    n_benign = 0 if harmful_only else p.n_benign_eval
    n_task = 0 if harmful_only else p.n_task_eval
    sequences = models * (p.n_harmful_eval + n_task) + before_finetuning * n_benign
    decode = (models * (p.n_harmful_eval * p.max_new_tokens + n_task * p.task_max_new_tokens)
              + before_finetuning * n_benign * p.max_new_tokens)
    loglik = models * n_task * TASK_CLASSES.get(p.task, 0) * (PROMPT_TOKENS + 2)
    chars = (sequences * PROMPT_TOKENS + decode) * CHARS_PER_TOKEN * JSON_BYTES_PER_CHAR
    return _generation(stage, gpu, model_id=p.model, runs=models, prefill=sequences * PROMPT_TOKENS + loglik,
                       decode=decode, batch=p.eval_batch_size, seq=PROMPT_TOKENS + p.max_new_tokens, gpus=gpus,
                       disk=chars / 1e9,
                       basis=f"{models} models x ({p.n_harmful_eval} harmful x {p.max_new_tokens} + {n_task} "
                             f"task x {p.task_max_new_tokens} new tokens)"
                             + (f" + {before_finetuning} x {n_benign} benign" if n_benign else ""))


def evaluation_stages(p: Profile, gpu: Gpu, gpus: int) -> list[dict]:
    _, rho_attacks = rho_sweep_new(p)
    before = 1 + len(ALIGNED)  # base, sft, vaccine before user fine-tuning
    models = before + len(grid_runs(p)) + len(rho_attacks)
    return [_evaluation("evaluate: generation", p, gpu, models, before, gpus)]


def judge_stages(p: Profile, gpu: Gpu, gpus: int) -> list[dict]:
    """Every score() call: notebook 03 (all evaluations), 04 (each rho), 07 (base, sft, distilled)."""
    before = 1 + len(ALIGNED)
    scored = (before + len(grid_runs(p)) + len(p.rhos)
              + 2 + len(DISTILL_SETS))
    items = scored * p.n_harmful_eval
    seq = min(PROMPT_TOKENS + p.max_new_tokens, JUDGE_MAX_LENGTH)
    if p.judge not in JUDGE_MODELS:
        return [_row(f"judge: {p.judge}", runs=scored, tokens=items * seq, cpu_hours=0.0, parallel="CPU",
                     basis=f"{scored} scorings x {p.n_harmful_eval} answers on the CPU (rules)")]
    m = model_size(JUDGE_MODELS[p.judge])
    tokens = items * seq
    flops = FORWARD_FLOPS * m.params * tokens
    return [_row(f"judge: {p.judge}", runs=scored, tokens=tokens, flops=flops,
                 hours_1=_hours(flops, gpu.bf16_flops, FORWARD_MFU) + _load_hours(m, 1),
                 memory=_infer_memory_gb(m, JUDGE_BATCH, JUDGE_MAX_LENGTH, kv_cache=False),
                 parallel="one process (notebook)",
                 basis=f"{scored} scorings (03: every evaluation, 04: {len(p.rhos)} rhos, 07: 5 models; not cached) "
                       f"x {p.n_harmful_eval} answers x {seq} tokens; forward at MFU {FORWARD_MFU}")]


def sampling_stages(p: Profile, gpu: Gpu, gpus: int) -> list[dict]:
    rows = []
    for target, prefix in p.extraction_arms():
        # sft@0 is the base model, and extraction.stages.samples keys an arm by model and prefix: base's arm serves it
        untrained = (dose := DOSE_TARGET.match(target)) and int(dose["epochs"]) == 0
        if untrained and "base" in p.extraction_targets and \
                p.samples_per_arm("base", prefix) >= p.samples_per_arm(target, prefix):
            continue
        n = p.samples_per_arm(target, prefix)
        generated = math.ceil(n / p.sample_batch_size) * p.sample_batch_size  # always full batches
        decode = generated * p.sample_max_new_tokens * CONTINUATION
        chars = n * (PREFIX_TOKENS + p.sample_max_new_tokens * CONTINUATION) * CHARS_PER_TOKEN
        rows.append(_generation(
            f"sample: {target} x {prefix}", gpu, model_id=target_model(p, target), runs=1,
            prefill=generated * PREFIX_TOKENS * CONTINUATION, decode=decode, batch=p.sample_batch_size,
            seq=PREFIX_TOKENS + p.sample_max_new_tokens, gpus=gpus,
            disk=chars * SAMPLE_COPIES * JSON_BYTES_PER_CHAR / 1e9,
            basis=f"{generated} generations (batches of {p.sample_batch_size}) x {p.sample_max_new_tokens} "
                  f"new tokens x {CONTINUATION} (continuations)"))
    return rows


def _corpora(p: Profile) -> dict[str, tuple[int, int]]:
    """Each post-training set searched: (samples, tokens per sample); the index is built once per set."""
    out = {}
    for name in dict.fromkeys(p.extraction_targets.values()):
        n = alignment_size(p) if name == "alignment" else p.dose_set_size if name == DOSE_SET else dataset_rows(name)
        out[name] = (n, CORPUS_TOKENS.get(name, p.max_length))
    return out


def _ivf(n: int) -> tuple[int, int]:
    """extraction.search.default_nlist / default_nprobe."""
    nlist = max(1, min(int(round(4 * math.sqrt(n))), n // 39))
    return nlist, min(nlist, max(16, int(math.ceil(math.sqrt(nlist)))))


def _queries(p: Profile, corpus: str) -> int:
    return sum(p.samples_per_arm(t, prefix) for t, prefix in p.extraction_arms() if p.extraction_targets[t] == corpus)


def search_stages(p: Profile, gpu: Gpu, gpus: int) -> list[dict]:
    """Embeddings (GPU, bf16: models.load_embedder casts the embedder on a GPU), FAISS (CPU), and the
    string baselines (CPU, one core), per post-training set."""
    e = model_size(p.embedding_model)
    rows = []
    gen_tokens = PREFIX_TOKENS + p.sample_max_new_tokens * CONTINUATION
    for name, (n, per_text) in _corpora(p).items():
        flops = FORWARD_FLOPS * e.params * n * per_text
        rows.append(_row(f"embed: {name}", runs=1, tokens=n * per_text, flops=flops,
                         hours_1=_hours(flops, gpu.bf16_flops, FORWARD_MFU) + _load_hours(e, 1),
                         memory=_infer_memory_gb(e, EMBED_BATCH, per_text, bytes_per_param=2, kv_cache=False),
                         parallel="one process (notebook)",
                         basis=f"{n:,} samples x {per_text} tokens; {FORWARD_FLOPS} x {e.params:.3g} params, "
                               f"bf16 peak at MFU {FORWARD_MFU}; memory at the mean length (sentence-transformers "
                               "sorts by length: the first batch, up to the model's max_seq_length, is the largest)"))
        queries = _queries(p, name)
        kind = "ivf" if n >= p.ivf_from else "flat"
        if kind == "ivf":
            nlist, nprobe = _ivf(n)
            train = min(n, IVF_TRAIN_PER_CELL * nlist)
            build = 2 * e.dim * nlist * (IVF_KMEANS_ITERS * train + n)
            search = 2 * e.dim * queries * (nlist + nprobe * n / nlist)
            index_bytes = 4 * e.dim * n + 8 * n + 4 * e.dim * nlist
            how = f"IVF nlist {nlist}, nprobe {nprobe}, k-means {IVF_KMEANS_ITERS} iterations on {train:,}"
        else:
            build, search = 0.0, 2 * e.dim * queries * n
            index_bytes = 4 * e.dim * n
            how = "flat (exact)"
        rows.append(_row(f"faiss: {name}", runs=1, flops=build + search,
                         cpu_hours=(build + search) / CPU_FLOPS_PER_CORE / 3600, disk=index_bytes / 1e9,
                         parallel="CPU (FAISS OpenMP: divide by cores)",
                         basis=f"{how}; {queries:,} queries x dim {e.dim}; index 4 B x dim x {n:,}"))
        gen_chars, corpus_chars = gen_tokens * CHARS_PER_TOKEN, per_text * CHARS_PER_TOKEN
        if n > p.string_exact_max:  # extraction.stages.match: the embedding's top-k, whole set on a sample
            arms = [p.samples_per_arm(t, prefix) for t, prefix in p.extraction_arms()
                    if p.extraction_targets[t] == name]
            exact = sum(min(p.string_exact_sample, a) for a in arms)
            pairs = queries * p.string_top_k + exact * n
            how = (f"{queries:,} generations x top {p.string_top_k} by embedding + {exact:,} sampled generations "
                   f"x the whole set of {n:,}")
            parallel = "CPU; the whole-set sample on every core (rapidfuzz cdist workers=-1)"
        else:
            pairs = queries * n
            how = f"{queries:,} generations x {n:,} samples"
            parallel = "CPU, one core (wall = core hours)"
        rates = {k: v / (gen_chars * corpus_chars) for k, v in STRING_CHARS2_PER_S.items()}
        cpu = sum(pairs / rate for rate in rates.values()) / 3600
        match_bytes = queries * (2 * gen_chars + corpus_chars) * JSON_BYTES_PER_CHAR
        rows.append(_row(f"strings: {name}", runs=len(STRING_CHARS2_PER_S), tokens=0, cpu_hours=cpu,
                         disk=match_bytes / 1e9, parallel=parallel,
                         basis=f"{how} = {pairs:.3g} pairs at "
                               + ", ".join(f"{k} {r:,.0f}" for k, r in rates.items())
                               + f" pairs/s ({gen_chars:.0f} x {corpus_chars:.0f} chars)"))
    queries = sum(_queries(p, name) for name in _corpora(p))
    flops = FORWARD_FLOPS * e.params * queries * gen_tokens
    rows.append(_row("embed: generations", runs=1, tokens=queries * gen_tokens, flops=flops,
                     parallel="one process (notebook)",
                     hours_1=_hours(flops, gpu.fp32_flops, FORWARD_MFU),
                     memory=_infer_memory_gb(e, EMBED_BATCH, int(gen_tokens), bytes_per_param=4, kv_cache=False),
                     basis=f"{queries:,} generations x {gen_tokens:.0f} tokens, fp32 at MFU {FORWARD_MFU}"))
    return rows


def distillation_stages(p: Profile, gpu: Gpu, gpus: int) -> list[dict]:
    m = model_size(p.model)
    n = distill_size(p)
    train = _training("distill: training", p, gpu, gpus, model_id=p.model, runs=len(DISTILL_SETS), samples=n,
                      epochs=p.distill_epochs, batch=p.batch_size,
                      disk=len(DISTILL_SETS) * WEIGHT_BYTES * m.params / 1e9,
                      note=f"; {n} samples a set (n_distill); disk: bf16 merged copies")
    models = len(DISTILL_SETS)  # base and sft are cached from notebook 03
    return [train, _evaluation("distill: evaluation", p, gpu, models, models, harmful_only=True)]


# Open-Reasoner-Zero's template around a GSM8K problem, in SmolLM2's tokens (extraction.rl.rl_prompt)
RL_PROMPT_TOKENS = 180


def rl_stages(p: Profile, gpu: Gpu, gpus: int) -> list[dict]:
    """Notebook 08 (extraction.rl): GRPO where ``rl_target`` is 'grpo' (each step generates its groups,
    then trains on them), and one sampling arm each for the RL target and its control."""
    if p.rl_target is None:
        return []
    rows = []
    if p.rl_target == "grpo":
        completions = p.rl_steps * p.rl_prompts_per_step * p.rl_num_generations
        rows.append(_training("rl: grpo", p, gpu, 1, model_id=p.model, runs=1, samples=completions, epochs=1,
                              batch=p.rl_prompts_per_step * p.rl_num_generations,
                              extra_forward_tokens=completions * (RL_PROMPT_TOKENS + p.rl_max_completion_length),
                              note=f"; {p.rl_steps} steps of {p.rl_prompts_per_step} prompts x "
                                   f"{p.rl_num_generations} completions, generated first (counted as forward tokens)"))
    generated = 2 * math.ceil(p.n_rl_samples / p.sample_batch_size) * p.sample_batch_size
    rows.append(_generation("rl: sampling", gpu, model_id=target_model(p, "base") if p.rl_target == "grpo"
                            else p.rl_target, runs=2, prefill=generated * RL_PROMPT_TOKENS,
                            decode=generated * p.rl_sample_max_new_tokens, batch=p.sample_batch_size,
                            seq=RL_PROMPT_TOKENS + p.rl_sample_max_new_tokens, gpus=gpus,
                            basis=f"2 arms (target, control) x {p.n_rl_samples} generations x "
                                  f"{p.rl_sample_max_new_tokens} new tokens"))
    return rows


def task_accuracy_stages(p: Profile, gpu: Gpu, gpus: int) -> list[dict]:
    """Notebook 07's held-out SciQ answers (extraction.ability): base, SFT and each distilled model."""
    models = 2 + len(DISTILL_SETS)
    return [_generation("distill: task accuracy", gpu, model_id=p.model, runs=models,
                        prefill=models * p.n_task_heldout * PROMPT_TOKENS,
                        decode=models * p.n_task_heldout * p.max_new_tokens, batch=p.eval_batch_size,
                        seq=PROMPT_TOKENS + p.max_new_tokens, gpus=gpus,
                        basis=f"{models} models x {p.n_task_heldout} SciQ items x {p.max_new_tokens} new tokens")]


def extras_stages(p: Profile, gpu: Gpu, gpus: int) -> list[dict]:
    """``make extras`` (notebook 09), beyond what ``make reproduce`` already trains: the candidate rhos'
    alignments, the grid cells outside the main grid, and each candidate's validation answers."""
    rhos = [r for r in dict.fromkeys(p.rho_candidates) if r not in (0, p.rho, *p.rhos)]
    main = set(grid_runs(p))
    cells = [run for run in dict.fromkeys((m, r, p.seeds[0]) for m in p.grid_methods for r in p.grid_ratios)
             if run not in main]
    n = p.n_rho_validation
    validation = _generation("extras: rho validation", gpu, model_id=p.model, runs=len(p.rho_candidates),
                             prefill=len(p.rho_candidates) * 2 * n * (PROMPT_TOKENS + p.max_length),
                             decode=len(p.rho_candidates) * 2 * n * p.max_new_tokens, batch=p.eval_batch_size,
                             seq=PROMPT_TOKENS + p.max_new_tokens,
                             basis=f"{len(p.rho_candidates)} rhos x {2 * n} held-out samples: a loss forward and "
                                   f"{p.max_new_tokens} new tokens")
    common = dict(model_id=p.model, samples=alignment_size(p), epochs=p.align_epochs, batch=p.batch_size)
    return [
        _training("extras: align rho candidates", p, gpu, gpus, runs=len(rhos), passes=VACCINE_PASSES,
                  note=f"; rhos {rhos} (the others are trained by make reproduce)", **common),
        _training("extras: attack grid", p, gpu, gpus, runs=len(cells), model_id=p.model, samples=p.n_finetune,
                  epochs=p.finetune_epochs, batch=p.finetune_batch_size,
                  note=f"; {len(cells)} (method, ratio) cells outside the main grid"),
        _evaluation("extras: evaluate grid", p, gpu, len(cells), 0, gpus),
        validation,
    ]


def _hub_id(name: str) -> bool:
    """alignlab.models._looks_like_hub_id: "owner/name", not a path."""
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/"))


def download_stages(p: Profile, gpu: Gpu, gpus: int) -> list[dict]:
    """The hub cache: every hub model and dataset a run reads (HF_HOME may be another disk)."""
    rl_models = [m for m in (p.rl_target, p.rl_control) if m not in (None, "grpo", "base")]
    ids = [p.model, *(target_model(p, t) for t in p.extraction_targets), *rl_models, p.embedding_model,
           *([JUDGE_MODELS[p.judge]] if p.judge in JUDGE_MODELS else [])]
    hub = [i for i in dict.fromkeys(ids) if _hub_id(i) and i not in ALIASES]
    model_gb = sum(model_size(i).params * model_size(i).hub_bytes_per_param for i in hub) / 1e9
    sets = [s for s in p.extraction_targets.values() if s in HUB_DATASET_GB]
    data_gb = sum(HUB_DATASET_GB[s] for s in dict.fromkeys(sets))
    return [_row("downloads: hub cache", runs=len(hub), disk=model_gb + data_gb, parallel="network",
                 basis=f"{', '.join(hub) or 'none'} at their hub dtype; datasets {sets or 'small'}")]


STAGES = (alignment_stages, attack_stages, evaluation_stages, judge_stages, sampling_stages, search_stages,
          distillation_stages, task_accuracy_stages, rl_stages, download_stages)  # make reproduce
EXTRA_STAGES = (extras_stages,)  # make extras


def plan(profile, *, gpus: int = 1, gpu: str = "H100", extras: bool = False) -> pd.DataFrame:
    """One row per stage: runs, optimizer steps, tokens, FLOPs, hours on one GPU and on ``gpus``
    (wall clock; data-parallel where the stage allows), peak GPU memory, disk, CPU core hours, and
    the basis of each number, for ``make reproduce`` (``extras``: and ``make extras``). See the
    module constants for every assumption."""
    p = load_profile(profile)
    if gpu not in GPUS:
        raise ValueError(f"unknown gpu {gpu!r}: use one of {sorted(GPUS)} (or add it to GPUS)")
    if gpus < 1:
        raise ValueError(f"gpus={gpus}: must be >= 1")
    rows = [row for family in STAGES + (EXTRA_STAGES if extras else ()) for row in family(p, GPUS[gpu], gpus)]
    return pd.DataFrame(rows).set_index("stage")


def totals(table: pd.DataFrame) -> pd.Series:
    summed = table[["runs", "optimizer_steps", "tokens", "flops", "gpu_hours_1", "gpu_hours_n", "disk_gb",
                    "checkpoint_writes_gb", "cpu_core_hours"]].sum()
    return pd.concat([summed, pd.Series({"peak_gpu_memory_gb": table["peak_gpu_memory_gb"].max()})])


def dataset_rows(name: str) -> int:
    """Rows of a dataset alignlab.data loads by name (known sizes; BeaverTails: stated lower bounds)."""
    from alignlab import data

    if name in OFFLINE_ROWS:
        return OFFLINE_ROWS[name]
    if name in data.HUB_DATASETS:
        key = tuple(data.HUB_DATASETS[name][:3])
        if key not in HUB_SPLIT_ROWS:
            raise KeyError(f"no known size for {name!r} {key}: add it to HUB_SPLIT_ROWS in lib/alignlab/plan.py")
        return int(HUB_SPLIT_ROWS[key] * ROW_FRACTION.get(name, 1.0))
    raise ConfigError(f"{name!r} is not a dataset alignlab.data can load (offline: {sorted(data.OFFLINE_LOADERS)}, "
                      f"hub: {sorted(data.HUB_DATASETS)})")



# ---------------------------------------------------------------- CLI

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", help="a profile name in configs/ or a YAML path")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs for the data-parallel stages")
    parser.add_argument("--gpu", default="H100", choices=sorted(GPUS))
    parser.add_argument("--extras", action="store_true", help="add make extras' stages (notebook 09)")
    args = parser.parse_args(argv)
    table = plan(args.profile, gpus=args.gpus, gpu=args.gpu, extras=args.extras)
    shown = table.drop(columns=["basis"])
    with pd.option_context("display.width", 250, "display.max_columns", None, "display.max_colwidth", 60,
                           "display.float_format", "{:,.4g}".format):
        print(shown.to_string())
        print(f"\ntotal ({args.gpu}; gpu_hours_n = wall-clock hours on {args.gpus} GPU(s)):\n"
              f"{totals(table).to_string()}")
    p = load_profile(args.profile)
    _, peak = checkpoint_gb(p, lora_params(model_size(p.model), p.lora_r), 1, p.save_steps)
    print(f"\ncheckpoint disk: {table['checkpoint_writes_gb'].sum():,.1f} GB written in all (one every "
          f"save_steps={p.save_steps} steps), at most {peak:,.2f} GB on disk at once per training stage")
    print("\nbasis:")
    for stage, basis in table["basis"].items():
        print(f"  {stage}: {basis}")
    print("\nassumptions:")
    for line in ASSUMPTIONS:
        print(f"  - {line}")
    print(f"\nbefore running it: python -m alignlab.preflight --profile {args.profile} --gpu {args.gpu}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
