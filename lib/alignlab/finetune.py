"""LoRA training stages on Hugging Face Trainer: alignment (SFT or Vaccine) and user fine-tuning.

Both stages are cached under ``.cache/alignlab/<profile>/<stage>/<key>``, the key a hash of
every parameter and data id that changes the result. Trainer checkpoints are kept while a
stage runs, so an interrupted stage resumes from its last checkpoint; a ``done.json`` written
last (atomically) marks a finished stage.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
from accelerate import PartialState
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

from alignlab import paths
from alignlab.data import tokenize_examples
from alignlab.models import load_model, save_model
from alignlab.store import read_json, write_json
from alignlab.vaccine import VaccineConfig, VaccineTrainer

METHODS = ("sft", "vaccine")


def stage_key(**params) -> str:
    """A short, stable hash of a stage's parameters (records are keyed by their ids).

    An upstream stage's folder enters the key relative to the cache root, so the keys (and the
    results that name them) do not depend on where the cache lives.
    """
    cache = str(paths.CACHE)
    portable = {k: "<cache>" + v[len(cache):] if isinstance(v, str) and (v + os.sep).startswith(cache + os.sep) else v
                for k, v in params.items()}
    blob = json.dumps(portable, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def record_ids(records) -> list[str]:
    return [f"{r['source']}:{r['id']}:{hashlib.sha1(r['response'].encode()).hexdigest()[:8]}" for r in records]


def read_done(out_dir: Path):
    """The finished stage's summary, or None when the stage has not finished (or is corrupt)."""
    return read_json(Path(out_dir) / "done.json")


def train_lora(model, tokenizer, records, out_dir: Path, *, method="sft", rho=2.0, lr=1e-3, epochs=1,
               batch_size=8, max_length=128, lora_r=8, lora_alpha=4, weight_decay=0.1, warmup_ratio=0.1,
               seed=0, save_steps=20, callbacks=()):
    """Train a new LoRA adapter (r, alpha on every linear layer) with SFT or Vaccine.

    ``batch_size`` is the global batch: under ``accelerate launch`` each of N processes takes
    batch_size / N, so a stage gives the single-process result however it is launched.
    Returns (peft model, Trainer log history, the checkpoint it resumed from or None).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {METHODS}")
    if not records:
        raise ValueError("no training records: check the split sizes in the profile")
    processes = int(os.environ.get("WORLD_SIZE", "1"))  # set by accelerate launch / torchrun
    if batch_size % processes:
        raise ValueError(f"batch_size={batch_size} is the global batch and cannot be split evenly over "
                         f"{processes} processes: use a multiple of {processes}")
    torch.manual_seed(seed)  # the LoRA init draws from the global generator
    peft_model = get_peft_model(model, LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0,
                                                  target_modules="all-linear", task_type="CAUSAL_LM"))
    common = dict(
        output_dir=str(out_dir), per_device_train_batch_size=batch_size // processes, num_train_epochs=epochs,
        learning_rate=lr, weight_decay=weight_decay, lr_scheduler_type="cosine", warmup_steps=warmup_ratio,  # a float < 1 is a ratio
        optim="adamw_torch", logging_steps=1, save_strategy="steps", save_steps=save_steps,
        save_total_limit=1, report_to=[], seed=seed, data_seed=seed, use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=False,
    )
    if method == "vaccine":
        args, trainer_cls = VaccineConfig(rho=rho, **common), VaccineTrainer
    else:
        args, trainer_cls = TrainingArguments(**common), Trainer
    trainer = trainer_cls(
        model=peft_model, args=args, train_dataset=tokenize_examples(tokenizer, records, max_length),
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        callbacks=list(callbacks),
    )
    resumed_from = last_complete_checkpoint(out_dir)
    trainer.train(resume_from_checkpoint=resumed_from)
    return peft_model, trainer.state.log_history, resumed_from and Path(resumed_from).name


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


def align(base_model: str, records, out_dir: Path, *, method: str, **train_kw) -> Path:
    """Alignment on (harmful prompt, refusal) records; the LoRA is merged into a full model."""
    out_dir = Path(out_dir)
    if read_done(out_dir) is not None:
        return out_dir / "model"
    model, tokenizer = load_model(base_model)
    peft_model, history, resumed_from = train_lora(model, tokenizer, records, out_dir / "trainer", method=method,
                                                   **train_kw)
    processes = PartialState()  # under accelerate launch, only the main process writes the stage
    if processes.is_main_process:
        save_model(peft_model.merge_and_unload(), tokenizer, out_dir / "model")
        write_json(out_dir / "done.json", {"method": method, "losses": _losses(history), "resumed_from": resumed_from})
        shutil.rmtree(out_dir / "trainer", ignore_errors=True)  # checkpoints are only needed to resume
    processes.wait_for_everyone()
    return out_dir / "model"


def finetune(aligned_dir: Path, records, out_dir: Path, *, callbacks=(), **train_kw) -> Path:
    """User fine-tuning as the Vaccine paper does it: on the merged aligned model, a new LoRA, plain SFT."""
    out_dir = Path(out_dir)
    if read_done(out_dir) is not None:
        return out_dir / "adapter"
    model, tokenizer = load_model(str(aligned_dir))
    peft_model, history, resumed_from = train_lora(model, tokenizer, records, out_dir / "trainer", method="sft",
                                                   callbacks=callbacks, **train_kw)
    processes = PartialState()  # under accelerate launch, only the main process writes the stage
    if processes.is_main_process:
        peft_model.save_pretrained(out_dir / "adapter.tmp")
        shutil.rmtree(out_dir / "adapter", ignore_errors=True)
        (out_dir / "adapter.tmp").rename(out_dir / "adapter")
        drift = [cb.history for cb in callbacks if isinstance(cb, DriftCallback)]
        write_json(out_dir / "done.json", {"losses": _losses(history), "drift": drift[0] if drift else [],
                                           "resumed_from": resumed_from})
        shutil.rmtree(out_dir / "trainer", ignore_errors=True)
    processes.wait_for_everyone()
    return out_dir / "adapter"


def load_finetuned(aligned_dir: Path, adapter_dir: Path | None):
    """An aligned model with a user fine-tuning adapter merged in (None: the aligned model itself)."""
    model, tokenizer = load_model(str(aligned_dir))
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    return model.eval(), tokenizer


class DriftCallback(TrainerCallback):
    """Harmful embedding drift and alignment loss, measured every ``every`` steps of fine-tuning.

    HED (Vaccine, Sec. 3): sum over layers and batches of ||h_now - h_aligned||^2, h the attention
    outputs on alignment-set batches. h_aligned comes from the same model with the fine-tuning
    adapter disabled, so a resumed run measures against the right reference. The history is
    saved to ``path`` after every measurement, so a resumed run keeps its earlier points.
    """

    def __init__(self, batches, every: int = 5, path: Path | None = None):
        self.batches, self.every, self.path, self.reference = batches, max(1, every), path, None
        self.history = (read_json(path) if path else None) or []

    def _measure(self, model, step, write=True):
        from alignlab.evaluate import attention_outputs

        if self.reference is None:
            with model.disable_adapter():
                self.reference, _ = attention_outputs(model, self.batches)
        outputs, loss = attention_outputs(model, self.batches)
        hed = sum(float(((now - ref) ** 2).sum()) for batch_now, batch_ref in zip(outputs, self.reference)
                  for now, ref in zip(batch_now, batch_ref))
        self.history = [h for h in self.history if h["step"] < step] + [
            {"step": step, "hed": hed, "alignment_loss": loss}]
        if self.path and write:
            write_json(self.path, self.history)

    def on_train_begin(self, args, state, control, model=None, **kw):
        if state.global_step == 0:
            self._measure(model, 0, write=state.is_world_process_zero)

    def on_step_end(self, args, state, control, model=None, **kw):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self._measure(model, state.global_step, write=state.is_world_process_zero)
