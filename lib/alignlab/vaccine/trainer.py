"""Vaccine: perturbation-aware alignment (Huang, Hu, Liu; NeurIPS 2024, arXiv 2402.01109).

Each training step, as the authors' code does it:

1. Pass 1: forward and backward on the batch; record g_l = d loss / d (output of the
   self-attention module of layer l). No optimizer step.
2. One global norm ||g|| = sqrt(sum_l ||g_l||^2); eps_l = rho * g_l / (||g|| + 1e-7), the
   ascent direction that most increases the loss for a perturbation of size rho.
3. Pass 2: forward with eps_l added to each attention output as a constant, backward. The
   optimizer steps on these gradients only.

Pass 1 here asks autograd for d loss / d eps only (``torch.autograd.grad``), not for the
weights' gradients, so nothing lands in ``.grad`` between the passes and its graph is freed
before pass 2: the same gradients as "backward, zero_grad", at less time and memory.
Pass 2 is the ordinary ``Trainer.training_step``, so gradient accumulation, mixed precision
and multi-process training (accelerate) behave exactly as for SFT. With several processes the
norm ||g|| is over the global batch (summed across processes), so P processes with batch b
take the same step as one process with batch P*b (tests/slow/test_distributed.py).
"""

from dataclasses import dataclass, field

import torch
from trl import SFTConfig

from alignlab.training import PlainLossSFTTrainer, TrainerSpec
from alignlab.vaccine.attention import attention_hooks, find_attention_modules, output_tensor, replace_output_tensor


def add_perturbation(output, eps: torch.Tensor):
    """The attention output with ``eps`` added.

    Under autocast the attention output is bf16, and eps (rho spread over every layer and token)
    is far smaller than most of its elements: bf16 keeps 8 bits of mantissa, so an eps added in
    bf16 arrives partly as rounding error (`make bench` measures how much on SmolLM2 at the cpu
    profile's rho). So under autocast eps is added in fp32 and the sum stays fp32: the residual
    stream it joins is fp32 when the weights are (the CPU profiles), and autocast casts it again
    for the next matmul. Without autocast the model computes in its own dtype throughout, and eps
    is added in that dtype.
    """
    h = output_tensor(output)
    if torch.is_autocast_enabled(h.device.type) and h.dtype != torch.float32:
        return replace_output_tensor(output, h.float() + eps.float())
    return replace_output_tensor(output, h + eps.to(h.dtype))


DIRECTIONS = ("gradient", "random")


@dataclass
class VaccineConfig(SFTConfig):
    rho: float = field(default=2.0, metadata={"help": "Perturbation radius; 0 is plain SFT."})
    direction: str = field(default="gradient", metadata={
        "help": "gradient: Vaccine's worst-case eps; random: the ablation, a Gaussian direction of the same norm"})

    def __post_init__(self):
        super().__post_init__()
        if self.rho < 0:
            raise ValueError(f"VaccineConfig: rho={self.rho} is invalid: the perturbation radius must be >= 0")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"VaccineConfig: direction={self.direction!r} is invalid: use one of {DIRECTIONS}")


class VaccineTrainer(PlainLossSFTTrainer):
    """TRL's `SFTTrainer` whose steps train against the worst-case attention perturbation."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, VaccineConfig):
            raise TypeError("VaccineTrainer needs args=VaccineConfig(...), which carries rho")
        # transformers 5 resolves the deprecated gradient_checkpointing* names into these
        if self.args.activation_checkpointing and (self.args.activation_checkpointing_kwargs or {}).get("use_reentrant"):
            # Reentrant checkpointing runs each layer's forward under no_grad and replays it in
            # backward: pass 1's zero leaves never reach the graph, so eps would be 0 and the step SFT.
            raise ValueError("VaccineTrainer cannot train under reentrant gradient checkpointing "
                             "(activation_checkpointing_kwargs / gradient_checkpointing_kwargs with "
                             "use_reentrant=True): pass 1 would see no gradient at the attention outputs and "
                             "Vaccine would silently be SFT. Use use_reentrant=False (transformers' default when "
                             "no kwargs are given), or turn checkpointing off.")
        self._attention = find_attention_modules(self.model)

    def perturbations(self, model, inputs, num_items_in_batch=None) -> list[torch.Tensor]:
        """eps_l for every attention output of this batch (pass 1)."""
        deltas = []

        def add_zero_leaf(i, output):
            # d loss / d delta at delta = 0 is exactly d loss / d (attention output), and a leaf
            # exists even where nothing upstream is trainable.
            delta = torch.zeros_like(output_tensor(output), requires_grad=True)
            deltas.append(delta)
            return replace_output_tensor(output, output_tensor(output) + delta)

        model.train()
        inputs = self._prepare_inputs(inputs)
        # no_sync: pass 1 has no weight gradients to all-reduce; each process perturbs its own
        # samples with their own gradients, and only the norm below is shared.
        self._log_token_accuracy = False
        try:
            with attention_hooks(self._attention, add_zero_leaf), self.accelerator.no_sync(model), \
                    self.compute_loss_context_manager():
                loss = self.compute_loss(model, inputs, num_items_in_batch=num_items_in_batch)
                # Scaled as Trainer scales pass 2 (a no-op for the direction, kept for fidelity).
                loss = loss / getattr(self, "current_gradient_accumulation_steps",
                                      self.args.gradient_accumulation_steps)
                grads = torch.autograd.grad(loss, deltas, allow_unused=True)
        finally:
            self._log_token_accuracy = True
        grads = [torch.zeros_like(d) if g is None else g.detach() for d, g in zip(deltas, grads)]
        squared = sum((g.float() ** 2).sum() for g in grads)
        if self.accelerator.num_processes > 1:
            # One norm over the global batch, not per process. Each process's loss is a mean
            # over its own b samples: P (processes) times those samples' share of the mean over
            # the global batch of P*b (exact for equal token counts, and always with
            # average_tokens_across_devices, where Trainer divides by the global token count
            # and multiplies by P). So each process's g_l is P x the single-process gradient of
            # its samples, and the sum of squared norms over processes is (P ||g||)^2, with g
            # the single-process gradient for the union of the batches: eps = rho g / ||g||, the
            # single-process eps for that batch (up to the 1e-7). The authors' DDP runs normalised
            # per process; we follow the single-process algorithm so scaling out changes nothing.
            squared = self.accelerator.reduce(squared, reduction="sum")
        norm = torch.sqrt(squared)
        # fp32, whatever the autocast dtype of g: add_perturbation adds it in fp32 under autocast.
        return [self.args.rho * g.float() / (norm.float() + 1e-7) for g in grads]

    def random_perturbations(self, model, inputs) -> list[torch.Tensor]:
        """RandomVaccine, the ablation: eps_l = rho z_l / ||z|| with z Gaussian and one norm over
        every layer (and process) as in pass 1, so eps has Vaccine's size and a direction that
        ignores the loss. No pass 1: every attention output has shape (batch, tokens, hidden).
        z is drawn from a generator seeded by (seed, step, process), so a resumed run draws what an
        uninterrupted one did; several processes draw their shares apart, so they match one process
        in distribution, not bit for bit. (The authors' random_vaccine adds N(0, rho) noise per element instead,
        a perturbation far larger than Vaccine's; README, Deviations.)"""
        shape = (*inputs["input_ids"].shape, self.model.config.hidden_size)  # self.model: not DDP-wrapped
        generator = torch.Generator().manual_seed(
            (self.args.seed * 1_000_003 + self.state.global_step) * 1_009 + self.accelerator.process_index)
        z = [torch.randn(shape, generator=generator) for _ in self._attention]
        squared = sum((t ** 2).sum() for t in z)
        if self.accelerator.num_processes > 1:
            squared = self.accelerator.reduce(squared.to(self.accelerator.device), reduction="sum").cpu()
        norm = torch.sqrt(squared)
        return [(self.args.rho * t / (norm + 1e-7)).to(self.accelerator.device) for t in z]

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.args.rho == 0:  # eps = 0: pass 1 would be wasted work, and this is SFT exactly
            return super().training_step(model, inputs, num_items_in_batch)
        if self.args.direction == "random":
            eps = self.random_perturbations(model, inputs)
        else:
            eps = self.perturbations(model, inputs, num_items_in_batch)

        with attention_hooks(self._attention, lambda i, output: add_perturbation(output, eps[i])):
            return super().training_step(model, inputs, num_items_in_batch)


def vaccine_spec(rho: float, direction: str = "gradient") -> TrainerSpec:
    """The trainer of a Vaccine (``direction`` "gradient") or RandomVaccine ("random") alignment
    for :func:`alignlab.training.align`; rho 0 is plain SFT (the trainer skips pass 1)."""
    return TrainerSpec(VaccineTrainer, VaccineConfig, {"rho": rho, "direction": direction})


def perturbation_arrival(trainer: "VaccineTrainer", model, inputs, autocast_dtype=torch.bfloat16) -> dict:
    """How much of eps reaches the attention outputs, measured on one batch under autocast: eps from
    pass 1 at the trainer's rho, then for the outputs h of a forward pass, ||(h + eps) - h|| / ||eps||
    ("kept") and ||(h + eps) - h - eps|| / ||eps|| ("error"), with eps added in h's dtype ("native")
    and as :func:`add_perturbation` adds it ("project"); and ||eps|| / ||h|| ("eps_over_h")."""
    device = next(model.parameters()).device.type
    with torch.autocast(device, dtype=autocast_dtype):
        eps = trainer.perturbations(model, dict(inputs))
        outputs = []
        with attention_hooks(trainer._attention, lambda i, out: outputs.append(output_tensor(out).detach()) or out), \
                torch.no_grad():
            model(**trainer._prepare_inputs(dict(inputs)))
        sums = {"native": [0.0, 0.0], "project": [0.0, 0.0]}
        for h, e in zip(outputs, eps):
            for how, added in (("native", h + e.to(h.dtype)), ("project", output_tensor(add_perturbation(h, e)))):
                arrived = added.float() - h.float()
                sums[how][0] += float((arrived ** 2).sum())
                sums[how][1] += float(((arrived - e) ** 2).sum())
    eps_sq = sum(float((e ** 2).sum()) for e in eps)
    h_sq = sum(float((h.float() ** 2).sum()) for h in outputs)
    return {**{how: {"kept": (a / eps_sq) ** 0.5, "error": (b / eps_sq) ** 0.5} for how, (a, b) in sums.items()},
            "eps_over_h": (eps_sq / h_sq) ** 0.5, "attention_dtype": str(outputs[0].dtype).replace("torch.", "")}

