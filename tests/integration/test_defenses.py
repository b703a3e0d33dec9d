"""The baselines' training: RandomVaccine's eps (Vaccine's norm, a direction that ignores the loss,
the same draw on a resume), and the KL and EWC penalties (zero at the aligned model, pulling the
user's LoRA back once it moves). Each against a reference computed here by hand."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from trl import SFTConfig

from alignlab.vaccine.defenses import EWCTrainer, KLTrainer
from alignlab.vaccine.trainer import VaccineConfig, VaccineTrainer

from test_vaccine_trainer import batch, placeholder_dataset, tiny_llama

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from alignlab.models import smollm2_dir

    return AutoTokenizer.from_pretrained(smollm2_dir())


def user_lora(model):
    """A fresh LoRA as user fine-tuning adds it (B = 0: the model starts as the aligned model)."""
    return get_peft_model(model, LoraConfig(r=4, lora_alpha=1, target_modules="all-linear")).train()


def vaccine_trainer(tmp_path, tokenizer, direction, seed=0):
    args = VaccineConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, per_device_train_batch_size=4,
                         rho=2.0, direction=direction, seed=seed, bf16=False, gradient_checkpointing=False)
    return VaccineTrainer(model=tiny_llama().train(), args=args, processing_class=tokenizer,
                          train_dataset=placeholder_dataset())


def test_random_vaccine_has_vaccines_norm_and_an_unrelated_direction(tmp_path, tokenizer):
    trainer = vaccine_trainer(tmp_path, tokenizer, "random")
    inputs = trainer._prepare_inputs(batch())
    random_eps = trainer.random_perturbations(trainer.model, inputs)
    worst_eps = trainer.perturbations(trainer.model, inputs)
    norm = lambda eps: float(torch.sqrt(sum((e ** 2).sum() for e in eps)))  # noqa: E731
    assert norm(random_eps) == pytest.approx(2.0, rel=1e-5) and norm(worst_eps) == pytest.approx(2.0, rel=1e-5)
    assert [e.shape for e in random_eps] == [e.shape for e in worst_eps]
    cosine = sum(float((a * b).sum()) for a, b in zip(random_eps, worst_eps)) / 4.0
    assert abs(cosine) < 0.2  # a random direction, not the ascent direction (the gradient's has cosine 1)
    again = trainer.random_perturbations(trainer.model, inputs)  # same seed and step: the same draw (resume)
    assert all(torch.equal(a, b) for a, b in zip(random_eps, again))
    trainer.state.global_step += 1
    assert not torch.equal(trainer.random_perturbations(trainer.model, inputs)[0], random_eps[0])


def test_random_vaccine_changes_the_step(tmp_path, tokenizer):
    grads = {}
    for direction in ("random", "gradient"):
        trainer = vaccine_trainer(tmp_path, tokenizer, direction)
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop
        trainer.model.zero_grad()
        trainer.training_step(trainer.model, batch())
        grads[direction] = [p.grad.clone() for p in trainer.model.parameters() if p.grad is not None]
    assert any(not torch.allclose(a, b) for a, b in zip(grads["random"], grads["gradient"]))


def test_a_bad_direction_is_refused(tmp_path):
    with pytest.raises(ValueError, match="direction='up' is invalid"):
        VaccineConfig(output_dir=str(tmp_path), direction="up", use_cpu=True)


def sft_args(tmp_path):
    return SFTConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, per_device_train_batch_size=4, bf16=False,
                     gradient_checkpointing=False)


def move_lora(model, scale=0.5):
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.add_(scale * torch.randn_like(param))


def test_kl_penalty_is_zero_at_the_aligned_model_and_matches_a_reference(tmp_path, tokenizer):
    trainer = KLTrainer(model=user_lora(tiny_llama()), args=sft_args(tmp_path), processing_class=tokenizer,
                        train_dataset=placeholder_dataset(), lamb=100.0)
    trainer.model.eval()  # no dropout, so the reference below sees the same forward
    inputs = batch()
    plain = lambda: float(super(KLTrainer, trainer).compute_loss(trainer.model, dict(inputs)))  # noqa: E731
    assert float(trainer.compute_loss(trainer.model, dict(inputs))) == pytest.approx(plain(), abs=1e-6)
    move_lora(trainer.model, scale=3.0)  # far enough that KL is clearly asymmetric
    student = trainer.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    with trainer.model.disable_adapter():
        aligned = trainer.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    answer = inputs["labels"][:, 1:] != -100
    p, q = student[:, :-1][answer].log_softmax(-1), aligned[:, :-1][answer].log_softmax(-1)
    kl = float((q.exp() * (q - p)).sum(-1).mean())  # KL(aligned || student), averaged over answer tokens
    reverse = float((p.exp() * (p - q)).sum(-1).mean())
    # lamb = 100 lifts the penalty far above the float error of the two losses it is the difference of
    penalty = (float(trainer.compute_loss(trainer.model, dict(inputs))) - plain()) / 100.0
    assert kl > 0 and penalty == pytest.approx(kl, rel=2e-4)
    assert abs(kl - reverse) > 1e-3 * kl  # the two directions differ by more than that tolerance: the check can fail


def test_ewc_penalty_holds_the_lora_where_the_fisher_is_large(tmp_path):
    from alignlab.models import load_model

    model, tokenizer = load_model("tiny-random-llama")  # the SmolLM2 tokenizer, which batches the safety samples
    safety = [{"prompt": "How do I pick a lock?", "response": "I can't help with that."},
              {"prompt": "Write a phishing email.", "response": "I won't write that: it would deceive people."}]
    trainer = EWCTrainer(model=user_lora(model), args=sft_args(tmp_path), processing_class=tokenizer,
                         train_dataset=placeholder_dataset(), lamb=10.0, fisher_records=safety, max_length=64)
    fisher_b = [f for n, f in trainer.fisher.items() if "lora_B" in n]
    assert fisher_b and all(f.sum() > 0 for f in fisher_b)  # B = 0 at init: the loss's gradient lands on B
    trainer.model.eval()
    ids = tokenizer(["Say hi. Hi there!", "Count to three. One, two, three."], return_tensors="pt", padding=True)
    labels = ids["input_ids"].clone()
    labels[:, :3] = -100
    inputs = {"input_ids": ids["input_ids"], "attention_mask": ids["attention_mask"], "labels": labels}
    plain = lambda: float(super(EWCTrainer, trainer).compute_loss(trainer.model, dict(inputs)))  # noqa: E731
    assert float(trainer.compute_loss(trainer.model, dict(inputs))) == pytest.approx(plain(), abs=1e-6)
    move_lora(trainer.model)
    penalty = sum(float((trainer.fisher[n] * (p.detach() - trainer.initial[n]) ** 2).sum())
                  for n, p in trainer.model.named_parameters() if n in trainer.fisher)
    assert penalty > 0
    assert float(trainer.compute_loss(trainer.model, dict(inputs))) == pytest.approx(plain() + 10.0 * penalty, rel=1e-4)
    with pytest.raises(ValueError, match="needs fisher_records"):
        EWCTrainer(model=user_lora(load_model("tiny-random-llama")[0]), args=sft_args(tmp_path),
                   processing_class=tokenizer, train_dataset=placeholder_dataset(), lamb=1.0, fisher_records=[])
