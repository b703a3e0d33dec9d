"""LoRA training stages on TRL's SFTTrainer: alignment (SFT or Vaccine) and user fine-tuning.

Records are rendered by the model's chat template (:func:`alignlab.chat.format_example`) and
tokenised once (:func:`tokenize_example`); the loss covers the answer only, as in the Vaccine
authors' code. Trainer checkpoints are kept while a stage runs, so an interrupted stage resumes
from its last complete checkpoint; a ``done.json`` written last (atomically) marks a finished stage.
"""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel
from trl import SFTConfig

from alignlab.cache import read_done, read_json, write_json
from alignlab.chat import format_example
from alignlab.models import load_model, save_model
from alignlab.shards import write_on_main
from alignlab.vaccine.defenses import EWCTrainer, KLTrainer
from alignlab.vaccine.trainer import PlainLossSFTTrainer, VaccineConfig, VaccineTrainer

METHODS = ("sft", "vaccine", "random_vaccine")  # random_vaccine: the ablation, a random eps of Vaccine's norm


@dataclass(frozen=True)
class LoraSettings:
    """How one LoRA stage trains (a profile gives one for alignment and one for user fine-tuning)."""

    lr: float
    epochs: int
    batch_size: int  # the global batch: each of N processes takes batch_size / N
    max_length: int
    lora_r: int
    lora_alpha: float
    lora_dropout: float
    weight_decay: float
    warmup_ratio: float
    seed: int
    gradient_checkpointing: bool = False
    bf16: bool = False
    group_by_length: bool = False  # batches of similar length (less padding), over the global batch
    save_steps: int = 20  # a Trainer checkpoint every so many steps, to resume from
    logging_steps: int = 1


def tokenize_example(tokenizer, prompt: str, response: str, max_length: int) -> dict:
    """One training example as the trainer sees it: ``input_ids`` of the rendered conversation
    (:func:`alignlab.chat.format_example`, whose text already holds BOS and end of turn where the
    template puts them, so no special token is added twice) and ``completion_mask`` (1 on the
    answer), cut to ``max_length`` tokens."""
    prompt_text, completion = format_example(tokenizer, prompt, response)
    n_prompt = len(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
    ids = tokenizer(prompt_text + completion, add_special_tokens=False)["input_ids"][:max_length]
    return {"input_ids": ids, "completion_mask": [0] * min(n_prompt, len(ids)) + [1] * max(0, len(ids) - n_prompt)}


def sft_dataset(tokenizer, records, max_length: int):
    """Records as a pre-tokenised TRL dataset (``input_ids``, ``completion_mask``): TRL then
    masks the prompt out of the loss (``completion_only_loss``) and adds no BOS or EOS of its own."""
    import datasets

    return datasets.Dataset.from_list([tokenize_example(tokenizer, r["prompt"], r["response"], max_length)
                                       for r in records])


@dataclass(frozen=True)
class Defense:
    """A fine-tuning-stage regulariser of :mod:`alignlab.vaccine.defenses` and its weight."""

    name: str  # kl or ewc
    lamb: float


def train_lora(model, tokenizer, records, out_dir: Path, *, method: str, rho: float, settings: LoraSettings,
               callbacks=(), defense: Defense | None = None, fisher_batches=()):
    """Train a new LoRA adapter (r, alpha on every linear layer) with SFT, Vaccine (radius ``rho``)
    or RandomVaccine; plain SFT only, with ``defense``: its penalty added to the loss (EWC's Fisher
    from ``fisher_batches``).

    ``settings.batch_size`` is the global batch: under ``accelerate launch`` each of N processes
    takes batch_size / N, so a stage gives the single-process result however it is launched.
    Returns (peft model, Trainer log history, the checkpoint it resumed from or None).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {METHODS}")
    if not records:
        raise ValueError("no training records: check the split sizes in the profile")
    s = settings
    processes = int(os.environ.get("WORLD_SIZE", "1"))  # set by accelerate launch / torchrun
    if s.batch_size % processes:
        raise ValueError(f"batch_size={s.batch_size} is the global batch and cannot be split evenly over "
                         f"{processes} processes: use a multiple of {processes}")
    on_cuda = torch.cuda.is_available()
    args = dict(
        output_dir=str(out_dir), per_device_train_batch_size=s.batch_size // processes, num_train_epochs=s.epochs,
        learning_rate=s.lr, weight_decay=s.weight_decay, lr_scheduler_type="cosine",
        warmup_steps=s.warmup_ratio,  # a float < 1 is a ratio of the total steps
        optim="adamw_torch", logging_steps=s.logging_steps, save_strategy="steps", save_steps=s.save_steps,
        save_total_limit=1, report_to=[], seed=s.seed, data_seed=s.seed, use_cpu=not on_cuda,
        dataloader_num_workers=0, disable_tqdm=False, max_length=s.max_length, completion_only_loss=True,
        # SFTConfig defaults both to True; the profile decides (bf16 autocast: CUDA, or a CPU with bf16 units).
        bf16=s.bf16, activation_checkpointing=s.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},  # reentrant checkpointing would drop eps
        train_sampling_strategy="group_by_length" if s.group_by_length else "random",
    )
    if defense is not None and method != "sft":
        raise ValueError(f"defense={defense.name!r} regularises plain SFT fine-tuning, not method={method!r}")
    perturbed = method in ("vaccine", "random_vaccine")
    config = (VaccineConfig(rho=rho, direction="random" if method == "random_vaccine" else "gradient", **args)
              if perturbed else SFTConfig(**args))
    trainer_cls, extra = (VaccineTrainer if perturbed else PlainLossSFTTrainer), {}
    if defense is not None:
        trainer_cls, extra = {"kl": (KLTrainer, {"lamb": defense.lamb}),
                              "ewc": (EWCTrainer, {"lamb": defense.lamb, "fisher_batches": list(fisher_batches)})
                              }[defense.name]
    torch.manual_seed(s.seed)  # the LoRA init draws from the global generator
    trainer = trainer_cls(
        model=model, args=config, processing_class=tokenizer, train_dataset=sft_dataset(tokenizer, records, s.max_length),
        peft_config=LoraConfig(r=s.lora_r, lora_alpha=s.lora_alpha, lora_dropout=s.lora_dropout,
                               target_modules="all-linear", task_type="CAUSAL_LM"),
        callbacks=list(callbacks), **extra,
    )
    resumed_from = last_complete_checkpoint(out_dir)
    trainer.train(resume_from_checkpoint=resumed_from)
    return trainer.model, trainer.state.log_history, resumed_from and Path(resumed_from).name


def last_complete_checkpoint(out_dir, *, delete_partial: bool = True) -> str | None:
    """The newest Trainer checkpoint that was written to the end.

    Trainer writes a checkpoint file by file, so a process killed mid-save leaves a folder that
    would crash (or silently mislead) a resume. trainer_state.json is written after the weights,
    optimizer and scheduler, so a checkpoint is complete when it parses and they exist.
    Partial ones are deleted before a resume; an observer of a live run must pass
    delete_partial=False, or it would delete the checkpoint the trainer is writing.
    """
    folders = sorted(Path(out_dir).glob("checkpoint-*"), key=lambda f: int(f.name.split("-")[-1]))
    for folder in reversed(folders):
        complete = (read_json(folder / "trainer_state.json") is not None
                    and (folder / "optimizer.pt").exists() and (folder / "scheduler.pt").exists())
        if complete:
            return str(folder)
        if delete_partial:
            shutil.rmtree(folder, ignore_errors=True)
    return None


def _losses(log_history) -> list[dict]:
    return [{"step": h["step"], "loss": h["loss"]} for h in log_history if "loss" in h]


def align(base_model: str, records, out_dir: Path, *, method: str, rho: float, settings: LoraSettings) -> Path:
    """Alignment with SFT or Vaccine (radius ``rho``); the LoRA is merged into one full model."""
    out_dir = Path(out_dir)
    if read_done(out_dir) is not None:
        return out_dir / "model"
    model, tokenizer = load_model(base_model)
    peft_model, history, resumed_from = train_lora(model, tokenizer, records, out_dir / "trainer", method=method,
                                                   rho=rho, settings=settings)
    def write_stage():
        save_model(peft_model.merge_and_unload(), tokenizer, out_dir / "model")
        write_json(out_dir / "done.json", {"method": method, "losses": _losses(history), "resumed_from": resumed_from})
        shutil.rmtree(out_dir / "trainer", ignore_errors=True)  # checkpoints are only needed to resume

    write_on_main(write_stage)
    return out_dir / "model"


def finetune(aligned_dir: Path, records, out_dir: Path, *, settings: LoraSettings, drift_records=(),
             drift_every: int = 1, defense: Defense | None = None, safety_records=()) -> Path:
    """User fine-tuning as the Vaccine paper does it: on the merged aligned model, a new LoRA, plain
    SFT. With ``drift_records``, harmful embedding drift is measured on them every ``drift_every`` steps.
    ``defense``: a KL or EWC penalty (EWC's Fisher on ``safety_records``)."""
    from alignlab.vaccine.drift import DriftCallback, make_batches

    out_dir = Path(out_dir)
    if read_done(out_dir) is not None:
        return out_dir / "adapter"
    model, tokenizer = load_model(str(aligned_dir))
    callbacks = []
    if drift_records:
        callbacks.append(DriftCallback(make_batches(tokenizer, drift_records, max_length=settings.max_length),
                                       every=drift_every, path=out_dir / "drift.json"))
    fisher_batches = (make_batches(tokenizer, safety_records, max_length=settings.max_length)
                      if defense is not None and defense.name == "ewc" else ())
    peft_model, history, resumed_from = train_lora(model, tokenizer, records, out_dir / "trainer", method="sft", rho=0.0,
                                                   settings=settings, callbacks=callbacks, defense=defense,
                                                   fisher_batches=fisher_batches)
    def write_stage():
        peft_model.save_pretrained(out_dir / "adapter.tmp")
        shutil.rmtree(out_dir / "adapter", ignore_errors=True)
        (out_dir / "adapter.tmp").rename(out_dir / "adapter")
        drift = [cb.history for cb in callbacks if hasattr(cb, "history")]
        write_json(out_dir / "done.json", {"losses": _losses(history), "drift": drift[0] if drift else [],
                                           "resumed_from": resumed_from})
        shutil.rmtree(out_dir / "trainer", ignore_errors=True)

    write_on_main(write_stage)
    return out_dir / "adapter"


def load_finetuned(aligned_dir: Path, adapter_dir: Path | None):
    """An aligned model with a user fine-tuning adapter merged in (None: the aligned model itself)."""
    model, tokenizer = load_model(str(aligned_dir))
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    return model.eval(), tokenizer


