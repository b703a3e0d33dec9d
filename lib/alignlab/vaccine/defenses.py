"""The Vaccine paper's fine-tuning-stage baselines: regularisers that hold the user's fine-tuning
near the aligned model. (VLGuard, the third, changes only the data: safety samples mixed into the
user's set, :func:`alignlab.vaccine.stages.attack_data`. RandomVaccine, the ablation, is an
alignment: ``VaccineConfig(direction="random")``.)

Both train the user's new LoRA on the merged aligned model, as every attack here does, and add a
term to the loss:

- ``kl``: lambda x KL(aligned model || student) per answer token, as the authors' ``KLDivLoss`` with
  the aligned model's distribution as the target; the aligned model is the same network with the
  new adapter switched off (no second copy in memory).
- ``ewc``: lambda x sum_i F_i (w_i - w0_i)^2 over the new LoRA's weights, F the diagonal Fisher
  (squared gradients summed over batches, as the authors compute it) of the alignment loss on
  safety data at the start of fine-tuning.

Deviations from the authors' code (git-disl/Vaccine, trainer.py), stated in docs/deviations.md: their KL takes
the softmax over the sequence axis (``dim=1``); here it is over the vocabulary, the distribution a
KL between two language models compares. Their EWC keeps training the alignment LoRA itself; here
the aligned model is merged as for every other attack, and the penalty holds the user's new LoRA at
its initial value, weighted by the Fisher of the alignment loss with respect to it.
"""

import torch
import torch.nn.functional as F

from alignlab.training import PlainLossSFTTrainer, TrainerSpec, make_batches

DEFENSES = ("kl", "ewc")


def defense_spec(name: str, lamb: float, safety_records=(), max_length: int = 128) -> TrainerSpec:
    """The trainer of a defended user fine-tuning (:func:`alignlab.training.finetune`): ``kl`` or
    ``ewc`` at weight ``lamb``; EWC's Fisher is taken on ``safety_records``."""
    if name == "kl":
        return TrainerSpec(KLTrainer, trainer_kwargs={"lamb": lamb})
    if name == "ewc":
        return TrainerSpec(EWCTrainer, trainer_kwargs={"lamb": lamb, "fisher_records": list(safety_records),
                                                       "max_length": max_length})
    raise ValueError(f"unknown defense {name!r}: use one of {DEFENSES}")


def _model_inputs(inputs: dict) -> dict:
    return {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "position_ids")}


class KLTrainer(PlainLossSFTTrainer):
    """User fine-tuning with a KL(aligned || student) penalty on the answer tokens."""

    def __init__(self, *args, lamb: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.lamb = lamb

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        answer = inputs["labels"][:, 1:] != -100  # positions that predict an answer token
        with torch.no_grad(), self.accelerator.unwrap_model(model).disable_adapter():
            aligned = model(**_model_inputs(inputs), use_cache=False).logits[:, :-1][answer]
        student = outputs.logits[:, :-1][answer]
        kl = F.kl_div(F.log_softmax(student.float(), -1), F.log_softmax(aligned.float(), -1), log_target=True,
                      reduction="batchmean")
        loss = loss + self.lamb * kl
        return (loss, outputs) if return_outputs else loss


class EWCTrainer(PlainLossSFTTrainer):
    """User fine-tuning with an EWC penalty: the new LoRA held at its initial value, weighted by
    the diagonal Fisher of the alignment loss on ``fisher_batches`` (safety data).

    F and w0 are computed when the trainer is built, from the freshly initialised LoRA (seeded by
    the run's seed), so a resumed run computes the same ones before it loads its checkpoint.
    ``fisher_records`` (prompt, response) are batched as training batches them."""

    def __init__(self, *args, lamb: float, fisher_records: list[dict], max_length: int = 128, **kwargs):
        super().__init__(*args, **kwargs)
        if not fisher_records:
            raise ValueError("EWCTrainer needs fisher_records (safety samples): the Fisher of an empty set is 0")
        self.lamb = lamb
        fisher_batches = make_batches(self.processing_class, fisher_records, max_length=max_length)
        params = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        self.initial = {n: p.detach().clone() for n, p in params.items()}
        self.fisher = {n: torch.zeros_like(p) for n, p in params.items()}
        was_training = self.model.training
        self.model.eval()  # no dropout: F is a property of the aligned model, not of one dropout draw
        for batch in fisher_batches:
            self.model.zero_grad(set_to_none=True)
            self.model(**{k: v.to(self.model.device) for k, v in batch.items()}, use_cache=False).loss.backward()
            for n, p in params.items():
                if p.grad is not None:
                    self.fisher[n] += p.grad.detach() ** 2
        self.model.zero_grad(set_to_none=True)
        self.model.train(was_training)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        penalty = sum((self.fisher[n] * (p - self.initial[n]) ** 2).sum()
                      for n, p in self.accelerator.unwrap_model(model).named_parameters() if n in self.fisher)
        loss = loss + self.lamb * penalty
        return (loss, outputs) if return_outputs else loss
