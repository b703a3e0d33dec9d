"""One SGD step of SFT (the project's PlainLossSFTTrainer, a TRL SFTTrainer) or Vaccine on a tiny seeded Llama; saves the update.

Run by tests/slow/test_distributed.py in one process (``python tests/slow/dist_train.py``) and in several
(``accelerate launch --multi_gpu --num_processes 2 ...``; with ``use_cpu=True`` below, the
processes join a gloo group on the CPU). Not a test module itself: pytest does not collect it.

What makes the runs comparable:
- The data is exactly one global batch (``--num-samples`` = per-device batch x processes) of
  equal-length sequences with no masked label, so each process's mean loss is exactly its
  share of the global mean.
- ``train_sampling_strategy="sequential"``: accelerate shards the batches of the one sampler
  across processes (process k gets batch k), so the processes together see samples
  0 .. n-1, as the single process does. The indices actually trained on are recorded and saved.
- Plain SGD (no momentum, no weight decay), constant lr, no gradient clipping: the update is
  -lr x the gradient, so any difference in gradient shows up, and nothing rescales it away.

Saves, on the main process, {parameter name: parameter after - parameter before} for every
trainable parameter to a .safetensors file (``--out``; ``{trainer}`` in it becomes sft/vaccine,
so one start-up can run both), with metadata num_processes and the sample indices trained on.
"""

import argparse
import json
import tempfile

import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from safetensors.torch import save_file
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
from trl import SFTConfig

from alignlab.models import smollm2_dir
from alignlab.training import PlainLossSFTTrainer
from alignlab.vaccine.trainer import VaccineConfig, VaccineTrainer

VOCAB, SEQ_LEN = 97, 12


def tiny_llama(seed=0):
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2))


def dataset(n, seed=1):
    import datasets

    ids = torch.randint(0, VOCAB, (n, SEQ_LEN), generator=torch.Generator().manual_seed(seed))
    rows = [{"idx": i, "input_ids": ids[i].tolist(), "attention_mask": [1] * SEQ_LEN, "labels": ids[i].tolist()}
            for i in range(n)]
    return datasets.Dataset.from_list(rows).with_format("torch")  # SFTTrainer takes a Dataset


class RecordingCollator:
    """Stacks the features and remembers which sample indices went into a batch."""

    def __init__(self):
        self.seen = []

    def __call__(self, features):
        self.seen.extend(int(f["idx"]) for f in features)
        return {k: torch.stack([f[k] for f in features]) for k in ("input_ids", "attention_mask", "labels")}


def train_one_step(kind, opts, tmp):
    """One step of `kind` ("sft" or "vaccine") from the seeded model; returns (update, indices trained on)."""
    common = dict(output_dir=tmp, report_to=[], use_cpu=True, per_device_train_batch_size=opts.per_device_batch,
                  max_steps=1, optim="sgd", learning_rate=opts.lr, lr_scheduler_type="constant",
                  weight_decay=0.0, max_grad_norm=0.0, seed=0, data_seed=0, train_sampling_strategy="sequential",
                  remove_unused_columns=False, ddp_find_unused_parameters=False, save_strategy="no",
                  logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0,
                  bf16=False, gradient_checkpointing=False,  # SFTConfig defaults both to True
                  dataset_kwargs={"skip_prepare_dataset": True})  # the batches are built here, tokenised
    if kind == "vaccine":
        args, trainer_cls = VaccineConfig(rho=opts.rho, **common), VaccineTrainer
    else:
        args, trainer_cls = SFTConfig(**common), PlainLossSFTTrainer
    if opts.num_samples != opts.per_device_batch * args.world_size:
        raise SystemExit(f"--num-samples {opts.num_samples} must be --per-device-batch {opts.per_device_batch} "
                         f"x {args.world_size} processes: one step over the whole data set")

    model = tiny_llama()
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    collator = RecordingCollator()
    trainer = trainer_cls(model=model, args=args, train_dataset=dataset(opts.num_samples), data_collator=collator,
                          processing_class=AutoTokenizer.from_pretrained(smollm2_dir()))
    trainer.train()
    after = dict(trainer.accelerator.unwrap_model(trainer.model).named_parameters())
    update = {n: (after[n].detach() - before[n]).contiguous() for n in before}
    return update, sorted(gather_object(collator.seen)), trainer.accelerator


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainer", nargs="+", choices=["sft", "vaccine"], required=True,
                        help="one or more; each starts from the same seeded model (one start-up for several runs)")
    parser.add_argument("--per-device-batch", type=int, required=True)
    parser.add_argument("--num-samples", type=int, required=True, help="must be per-device batch x processes")
    parser.add_argument("--rho", type=float, default=2.0)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--out", required=True,
                        help="the .safetensors file for the update; '{trainer}' in it is replaced by sft/vaccine")
    opts = parser.parse_args()
    if len(opts.trainer) > 1 and "{trainer}" not in opts.out:
        parser.error("--out needs '{trainer}' in it when several trainers are given")

    with tempfile.TemporaryDirectory() as tmp:
        for kind in opts.trainer:
            update, seen, accelerator = train_one_step(kind, opts, tmp)
            if accelerator.is_main_process:
                save_file(update, opts.out.replace("{trainer}", kind),
                          metadata={"num_processes": str(accelerator.num_processes), "seen": json.dumps(seen),
                                    "trainer": kind})
    PartialState().destroy_process_group()  # before interpreter shutdown, as alignlab.train does (see there)


if __name__ == "__main__":
    main()
