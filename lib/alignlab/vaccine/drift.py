"""Harmful embedding drift (HED, Vaccine Sec. 3): how far the attention outputs on alignment data
move while a user fine-tunes the aligned model."""

from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

from alignlab.cache import read_json, write_json
from alignlab.vaccine.attention import attention_hooks, find_attention_modules, output_tensor


@torch.no_grad()
def attention_outputs(model, batches):
    """Per batch, the list of every layer's attention output (fp32, left on the model's device: on
    a GPU, HED is computed there instead of copying every layer's activations to the host); and
    the mean LM loss over batches. Batches move to the model's device here, so they can be built
    once on the CPU."""
    modules = find_attention_modules(model)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs, losses = [], []
    for batch in batches:
        captured = [None] * len(modules)

        def keep(i, output):
            captured[i] = output_tensor(output).detach().float()
            return output

        with attention_hooks(modules, keep):
            losses.append(float(model(**{k: v.to(device) for k, v in batch.items()}).loss))
        outputs.append(captured)
    model.train(was_training)
    return outputs, float(np.mean(losses))


class DriftCallback(TrainerCallback):
    """Harmful embedding drift and alignment loss, measured every ``every`` steps of fine-tuning.

    HED (Vaccine, Sec. 3): sum over layers and batches of ||h_now - h_aligned||^2, h the attention
    outputs on alignment-set batches. h_aligned comes from the same model with the fine-tuning
    adapter disabled, so a resumed run measures against the right reference. The history is
    saved to ``path`` after every measurement, so a resumed run keeps its earlier points.
    """

    summary_key = "drift"  # alignlab.training.finetune writes the history into done.json under it

    def __init__(self, batches, every: int = 5, path: Path | None = None):
        self.batches, self.every, self.path, self.reference = batches, max(1, every), path, None
        self.history = (read_json(path) if path else None) or []

    def _measure(self, model, step, write=True):
        if self.reference is None:
            with model.disable_adapter():
                self.reference, _ = attention_outputs(model, self.batches)
        outputs, loss = attention_outputs(model, self.batches)
        # Per probe sample (summed over layers and positions), so that methods can be compared
        # paired over the same samples; HED is their sum.
        per_sample = [sum(((now - ref) ** 2).flatten(1).sum(1) for now, ref in zip(batch_now, batch_ref)).cpu().tolist()
                      for batch_now, batch_ref in zip(outputs, self.reference)]
        per_sample = [float(v) for batch in per_sample for v in batch]
        self.history = [h for h in self.history if h["step"] < step] + [
            {"step": step, "hed": float(sum(per_sample)), "alignment_loss": loss, "hed_per_sample": per_sample}]
        if self.path and write:
            write_json(self.path, self.history)

    def on_train_begin(self, args, state, control, model=None, **kw):
        if state.global_step == 0:
            self._measure(model, 0, write=state.is_world_process_zero)

    def on_step_end(self, args, state, control, model=None, **kw):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self._measure(model, state.global_step, write=state.is_world_process_zero)
