"""LoRA training on TRL's SFTTrainer, for both papers: alignment and user fine-tuning (Vaccine),
post-training and distillation (extraction). A stage passes the trainer it runs as a
:class:`TrainerSpec` (plain SFT by default; Vaccine's and the baselines' live in
:mod:`alignlab.vaccine`), so this module knows no method.

Records are rendered by the model's chat template (:func:`alignlab.chat.format_example`) and
tokenised once (:func:`tokenize_example`); the loss covers the answer only, as in the Vaccine
authors' code. Trainer checkpoints are kept while a stage runs, so an interrupted stage resumes
from its last complete checkpoint; a ``done.json`` written last (atomically) marks a finished stage.
"""

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel
from transformers import Trainer
from transformers.trainer_pt_utils import LengthGroupedSampler
from trl import SFTConfig, SFTTrainer

from alignlab.cache import read_done, read_json, write_json
from alignlab.chat import format_example
from alignlab.models import load_model, save_model
from alignlab.shards import write_on_main


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


def make_batches(tokenizer, records, batch_size: int = 8, max_length: int = 128) -> list[dict]:
    """Fixed padded batches (input_ids, attention_mask, labels; the prompt masked) of records,
    tokenised as the trainer tokenises them, for measurements beside training (Vaccine's drift, EWC's Fisher)."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rows = []
    for r in records:
        example = tokenize_example(tokenizer, r["prompt"], r["response"], max_length)
        labels = [t if m else -100 for t, m in zip(example["input_ids"], example["completion_mask"])]
        rows.append({"input_ids": example["input_ids"], "labels": labels})
    collate = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)
    return [dict(collate(rows[i:i + batch_size])) for i in range(0, len(rows), batch_size)]


class PlainLossSFTTrainer(SFTTrainer):
    """TRL's `SFTTrainer` with the model's own loss, and length-grouped batches that do not depend
    on the number of processes.

    - Loss: TRL 1.16 computes the loss through a chunked "fused LM head" that also returns each
      token's entropy and top-1 flag over the whole vocabulary, for its logged metrics. Off CUDA it
      scores every position and runs in fp32 under autocast, far slower than a bare forward +
      backward (`make bench` measures both). Here the loss is the model's own
      causal-LM loss, normalised exactly as TRL's (by ``num_items_in_batch``: Trainer's plain
      path); the token accuracy is read off the logits at no extra forward, the entropy is not logged.
    - ``train_sampling_strategy="group_by_length"``: Trainer's LengthGroupedSampler over the
      *global* batch (per-device batch x processes x accumulation) and seeded by
      ``data_seed`` and the epoch, so 1 process with batch P*b and P processes with batch b train
      on the same batches, and a resumed run sees the order an uninterrupted one does.
    """

    _log_token_accuracy = True  # VaccineTrainer's pass 1 turns it off: its step logs pass 2's

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = Trainer.compute_loss(self, model, {**inputs, "use_cache": False}, return_outputs=True,
                                             num_items_in_batch=num_items_in_batch)
        labels = inputs.get("labels")
        if labels is not None and getattr(outputs, "logits", None) is not None and self._log_token_accuracy:
            with torch.no_grad():
                targets = labels[:, 1:]
                valid = targets != -100
                correct = (outputs.logits[:, :-1].argmax(-1) == targets) & valid
                mode = "train" if model.training else "eval"
                self._metrics[mode]["mean_token_accuracy"].append(float(correct.sum() / valid.sum().clamp(min=1)))
        return (loss, outputs) if return_outputs else loss

    def _get_train_sampler(self, train_dataset=None):
        if self.args.train_sampling_strategy != "group_by_length":
            return super()._get_train_sampler(train_dataset)
        dataset = self.train_dataset if train_dataset is None else train_dataset
        global_batch = (self.args.per_device_train_batch_size * self.args.world_size
                        * self.args.gradient_accumulation_steps)
        return EpochSeededLengthGroupedSampler(global_batch, lengths=[len(ids) for ids in dataset["input_ids"]],
                                               seed=self.args.data_seed if self.args.data_seed is not None
                                               else self.args.seed)


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Trainer's LengthGroupedSampler (shuffle, then sort by length within mega-batches of up to
    50 batches) drawing each epoch's order from its own generator, seeded by (seed, epoch)."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int):  # Trainer calls it (through accelerate) at the start of every epoch
        self.epoch = epoch

    def __iter__(self):
        self.generator.manual_seed(self.seed * 100_003 + self.epoch)
        return super().__iter__()


@dataclass(frozen=True)
class TrainerSpec:
    """The trainer a LoRA stage runs: its class, its config class, and their extra arguments
    (Vaccine's rho; a baseline's penalty weight). The default is plain SFT."""

    trainer_cls: type = PlainLossSFTTrainer
    config_cls: type = SFTConfig
    config_kwargs: dict = field(default_factory=dict)
    trainer_kwargs: dict = field(default_factory=dict)


def train_lora(model, tokenizer, records, out_dir: Path, *, settings: LoraSettings, spec: TrainerSpec = TrainerSpec(),
               callbacks=()):
    """Train a new LoRA adapter (r, alpha on every linear layer) with the trainer of ``spec``.

    ``settings.batch_size`` is the global batch: under ``accelerate launch`` each of N processes
    takes batch_size / N, so a stage gives the single-process result however it is launched.
    Returns (peft model, Trainer log history, the checkpoint it resumed from or None).
    """
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
    config = spec.config_cls(**args, **spec.config_kwargs)
    torch.manual_seed(s.seed)  # the LoRA init draws from the global generator
    trainer = spec.trainer_cls(
        model=model, args=config, processing_class=tokenizer, train_dataset=sft_dataset(tokenizer, records, s.max_length),
        peft_config=LoraConfig(r=s.lora_r, lora_alpha=s.lora_alpha, lora_dropout=s.lora_dropout,
                               target_modules="all-linear", task_type="CAUSAL_LM"),
        callbacks=list(callbacks), **spec.trainer_kwargs,
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


def align(base_model: str, records, out_dir: Path, *, method: str, settings: LoraSettings,
          spec: TrainerSpec = TrainerSpec()) -> Path:
    """Alignment (or any post-training) of ``base_model`` with ``spec``'s trainer; the LoRA is merged
    into one full model. ``method`` names it in the stage's done.json."""
    out_dir = Path(out_dir)
    if read_done(out_dir) is not None:
        return out_dir / "model"
    model, tokenizer = load_model(base_model)
    peft_model, history, resumed_from = train_lora(model, tokenizer, records, out_dir / "trainer", settings=settings,
                                                   spec=spec)
    def write_stage():
        save_model(peft_model.merge_and_unload(), tokenizer, out_dir / "model")
        write_json(out_dir / "done.json", {"method": method, "losses": _losses(history), "resumed_from": resumed_from})
        shutil.rmtree(out_dir / "trainer", ignore_errors=True)  # checkpoints are only needed to resume

    write_on_main(write_stage)
    return out_dir / "model"


def finetune(aligned_dir: Path, records, out_dir: Path, *, settings: LoraSettings, spec: TrainerSpec = TrainerSpec(),
             make_callbacks=None) -> Path:
    """User fine-tuning as the Vaccine paper does it: on the merged aligned model, a new LoRA,
    ``spec``'s trainer (plain SFT by default). ``make_callbacks(tokenizer)`` gives Trainer
    callbacks; each with a ``summary_key`` has its ``history`` written into done.json under that
    key (Vaccine's harmful embedding drift: ``"drift"``)."""
    out_dir = Path(out_dir)
    if read_done(out_dir) is not None:
        return out_dir / "adapter"
    model, tokenizer = load_model(str(aligned_dir))
    callbacks = list(make_callbacks(tokenizer)) if make_callbacks else []
    peft_model, history, resumed_from = train_lora(model, tokenizer, records, out_dir / "trainer", settings=settings,
                                                   spec=spec, callbacks=callbacks)
    def write_stage():
        peft_model.save_pretrained(out_dir / "adapter.tmp")
        shutil.rmtree(out_dir / "adapter", ignore_errors=True)
        (out_dir / "adapter.tmp").rename(out_dir / "adapter")
        summaries = {cb.summary_key: cb.history for cb in callbacks if hasattr(cb, "summary_key")}
        write_json(out_dir / "done.json", {"losses": _losses(history), **summaries, "resumed_from": resumed_from})
        shutil.rmtree(out_dir / "trainer", ignore_errors=True)

    write_on_main(write_stage)
    return out_dir / "adapter"


def load_finetuned(aligned_dir: Path, adapter_dir: Path | None):
    """An aligned model with a user fine-tuning adapter merged in (None: the aligned model itself)."""
    model, tokenizer = load_model(str(aligned_dir))
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    return model.eval(), tokenizer
