"""The Vaccine step against a straightforward reference implementation of the authors' algorithm,
on TRL's SFTTrainer: plain, with LoRA, with gradient accumulation, under gradient checkpointing and
in bf16 autocast."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, OPTConfig, OPTForCausalLM
from trl import SFTConfig, SFTTrainer

from alignlab.vaccine.attention import find_attention_modules
from alignlab.training import EpochSeededLengthGroupedSampler, PlainLossSFTTrainer
from alignlab.vaccine.trainer import VaccineConfig, VaccineTrainer, add_perturbation

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from alignlab.models import smollm2_dir

    return AutoTokenizer.from_pretrained(smollm2_dir())


def tiny_llama(seed=0):
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                        num_attention_heads=4, num_key_value_heads=2))


def placeholder_dataset():
    """SFTTrainer requires a train_dataset; these tests call training_step on their own batch."""
    import datasets

    return datasets.Dataset.from_list([{"input_ids": [1, 2, 3]}])


def batch(seed=1, b=4, t=12):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 97, (b, t), generator=g)
    labels = ids.clone()
    labels[:, :4] = -100  # a masked prompt, as in training
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def reference_grads(model, inputs, rho):
    """The authors' way: backward with hooks that keep attention-output grads, zero_grad, perturbed pass."""
    modules = find_attention_modules(model)
    kept = []

    def keep(mod, args, out):
        out[0].retain_grad()
        kept.append(out[0])

    handles = [m.register_forward_hook(keep) for m in modules]
    model(**inputs).loss.backward()
    for h in handles:
        h.remove()
    grads = [t.grad.detach() for t in kept]
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    eps = [rho * g / (norm + 1e-7) for g in grads]
    model.zero_grad()
    handles = [m.register_forward_hook(lambda mod, args, out, e=e: (out[0] + e,) + out[1:])
               for m, e in zip(modules, eps)]
    model(**inputs).loss.backward()
    for h in handles:
        h.remove()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def trainer_grads(model, inputs, rho, tmp_path, tokenizer, trainer_cls=VaccineTrainer, **kw):
    """One training_step's gradients; with bf16 the step runs under autocast, as in training
    (Trainer's loop wraps the forward through accelerate's prepare)."""
    args_cls = VaccineConfig if trainer_cls is VaccineTrainer else SFTConfig
    extra = {"rho": rho} if trainer_cls is VaccineTrainer else {}
    kw = {"bf16": False, "gradient_checkpointing": False, **kw}  # SFTConfig defaults both to True
    args = args_cls(output_dir=str(tmp_path), report_to=[], use_cpu=True, per_device_train_batch_size=4, **extra, **kw)
    trainer = trainer_cls(model=model, args=args, processing_class=tokenizer, train_dataset=placeholder_dataset())
    trainer.current_gradient_accumulation_steps = args.gradient_accumulation_steps  # set by Trainer's loop
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        trainer.training_step(trainer.model, dict(inputs))
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def assert_same(a, b, rtol=1e-4, atol=1e-6):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=rtol, atol=atol, msg=name)


def training_model(lora: bool):
    """The seeded tiny Llama in train mode, with a (non-zero) LoRA adapter when ``lora``."""
    model = tiny_llama()
    if lora:
        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=4, target_modules="all-linear",
                                                 init_lora_weights=False))
    return model.train()


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_vaccine_step_matches_reference(tmp_path, tokenizer, lora):
    expected = reference_grads(training_model(lora), batch(), rho=2.0)
    got = trainer_grads(training_model(lora), batch(), rho=2.0, tmp_path=tmp_path, tokenizer=tokenizer)
    assert_same(got, expected)


def test_perturbation_changes_gradients(tmp_path, tokenizer):
    sft = trainer_grads(tiny_llama().train(), batch(), 0.0, tmp_path, tokenizer)
    vaccine = trainer_grads(tiny_llama().train(), batch(), 2.0, tmp_path, tokenizer)
    assert any(not torch.allclose(sft[n], vaccine[n]) for n in sft)  # the test above can fail


def test_rho_zero_is_sft(tmp_path, tokenizer):
    sft = trainer_grads(tiny_llama().train(), batch(), None, tmp_path, tokenizer, trainer_cls=PlainLossSFTTrainer)
    vaccine = trainer_grads(tiny_llama().train(), batch(), 0.0, tmp_path, tokenizer)
    assert_same(vaccine, sft, rtol=0, atol=0)


@pytest.mark.parametrize("accumulation", [1, 2])
def test_plain_loss_is_trls_loss(tmp_path, tokenizer, accumulation):
    """The project's SFT step (the model's own loss) gives TRL's gradients (its fused LM head), with
    and without gradient accumulation: only where the loss is computed changed."""
    trl = trainer_grads(training_model(lora=True), batch(), None, tmp_path, tokenizer, trainer_cls=SFTTrainer,
                        gradient_accumulation_steps=accumulation)
    plain = trainer_grads(training_model(lora=True), batch(), None, tmp_path, tokenizer,
                          trainer_cls=PlainLossSFTTrainer, gradient_accumulation_steps=accumulation)
    assert_same(plain, trl)


def test_gradient_accumulation_scales_like_sft(tmp_path, tokenizer):
    """With accumulation the pass-2 loss is divided by the steps, exactly as Trainer does for SFT."""
    one = trainer_grads(tiny_llama().train(), batch(), 2.0, tmp_path, tokenizer)
    accumulated = trainer_grads(tiny_llama().train(), batch(), 2.0, tmp_path, tokenizer, gradient_accumulation_steps=2)
    # The eps direction is scale-free, so only the pass-2 division by 2 remains.
    assert_same({n: 2 * g for n, g in accumulated.items()}, one)


def test_hooks_removed_even_when_a_pass_raises(tmp_path, tokenizer):
    model = tiny_llama().train()
    trainer = VaccineTrainer(model=model, processing_class=tokenizer, train_dataset=placeholder_dataset(),
                             args=VaccineConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False))
    trainer.current_gradient_accumulation_steps = 1
    bad = batch()
    bad["input_ids"] = bad["input_ids"] + 1000  # out of vocabulary: the forward pass raises
    with pytest.raises(Exception):
        trainer.training_step(trainer.model, bad)
    assert all(not m._forward_hooks for m in find_attention_modules(model))


@pytest.mark.parametrize("make", [
    lambda: tiny_llama(),
    lambda: GPT2LMHeadModel(GPT2Config(vocab_size=97, n_embd=32, n_layer=3, n_head=4)),
    lambda: OPTForCausalLM(OPTConfig(vocab_size=97, hidden_size=32, ffn_dim=64, num_hidden_layers=3,
                                     num_attention_heads=4, word_embed_proj_dim=32)),
], ids=["llama", "gpt2", "opt"])
def test_attention_modules_found_generically(make):
    assert len(find_attention_modules(make())) == 3


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="rho=-1"):
        VaccineConfig(output_dir=str(tmp_path), rho=-1.0, report_to=[], bf16=False)
    with pytest.raises(ValueError, match="no self-attention module"):
        find_attention_modules(torch.nn.Sequential(torch.nn.Linear(2, 2)))


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_gradient_checkpointing_keeps_the_perturbation(tmp_path, tokenizer, lora):
    """Under activation checkpointing the layers run twice; pass 1's zero leaves must stay in the
    graph (non-reentrant checkpointing), or eps would be 0 and Vaccine silently SFT."""
    expected = reference_grads(training_model(lora), batch(), rho=2.0)
    sft = trainer_grads(training_model(lora), batch(), 0.0, tmp_path, tokenizer)
    got = trainer_grads(training_model(lora), batch(), 2.0, tmp_path, tokenizer, gradient_checkpointing=True,
                        gradient_checkpointing_kwargs={"use_reentrant": False})
    assert_same(got, expected)
    assert any(not torch.allclose(sft[n], got[n]) for n in sft)  # eps did not vanish


def test_default_gradient_checkpointing_keeps_the_perturbation(tmp_path, tokenizer):
    """With no checkpointing kwargs, transformers checkpoints non-reentrantly: a user of the class
    who only sets gradient_checkpointing=True gets Vaccine, not SFT."""
    expected = reference_grads(training_model(True), batch(), rho=2.0)
    got = trainer_grads(training_model(True), batch(), 2.0, tmp_path, tokenizer, gradient_checkpointing=True,
                        gradient_checkpointing_kwargs=None)
    assert_same(got, expected)


def test_reentrant_checkpointing_is_refused(tmp_path, tokenizer):
    with pytest.raises(ValueError, match="use_reentrant"):
        trainer_grads(training_model(True), batch(), 2.0, tmp_path, tokenizer, gradient_checkpointing=True,
                      gradient_checkpointing_kwargs={"use_reentrant": True})


def test_bf16_autocast_agrees_with_fp32_reference(tmp_path, tokenizer):
    """bf16 autocast (the CPU has avx512_bf16; the paper profile trains in bf16 on GPUs): the
    Vaccine gradients stay within bf16 tolerance of the fp32 reference (relative error of the
    whole gradient vector < 5%, cosine > 0.99)."""
    expected = reference_grads(tiny_llama().train(), batch(), rho=2.0)
    got = trainer_grads(tiny_llama().train(), batch(), 2.0, tmp_path, tokenizer, bf16=True)
    flat_expected = torch.cat([g.flatten() for g in expected.values()])
    flat_got = torch.cat([got[n].flatten().float() for n in expected])
    relative = float((flat_got - flat_expected).norm() / flat_expected.norm())
    cosine = float(torch.nn.functional.cosine_similarity(flat_got, flat_expected, dim=0))
    assert relative < 0.05 and cosine > 0.99, (relative, cosine)


def test_perturbation_survives_bf16_attention_outputs():
    """Under autocast an attention output is bf16 and eps is far smaller than its elements:
    added in bf16, most of eps would arrive as rounding error here (the negative control below);
    add_perturbation adds it in fp32, so it arrives whole."""
    g = torch.Generator().manual_seed(0)
    h = torch.randn(4, 16, 64, generator=g).bfloat16()
    eps = 1e-3 * torch.randn(4, 16, 64, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        added = add_perturbation((h, None), eps)[0]
    # ||what arrived - eps|| / ||eps||: 0 when eps arrives whole
    error = float((added.float() - h.float() - eps).norm() / eps.norm())
    error_if_bf16 = float(((h + eps.bfloat16()).float() - h.float() - eps).norm() / eps.norm())
    assert error < 1e-4 and error_if_bf16 > 0.5, (error, error_if_bf16)  # 1e-4: fp32 rounding of h + eps


def test_bf16_vaccine_keeps_the_perturbations_effect(tmp_path, tokenizer):
    """What eps changes in the gradients (Vaccine minus SFT, same batch) in bf16 autocast points
    where it points in fp32. rho=1e-4 puts eps at ~2e-4 of this model's attention outputs in RMS,
    the ratio SmolLM2 has at rho=2 (`make bench`). Tolerance: cosine > 0.5. The bf16 backward's
    own rounding caps the cosine near 0.9 even at radii where nothing rounds away; at this rho
    the project's step gives about 0.68, and the same step with eps added in bf16 about -0.1, so
    0.5 tells the two apart."""
    rho = 1e-4

    def effect(bf16):
        sft = trainer_grads(training_model(lora=True), batch(), 0.0, tmp_path, tokenizer, bf16=bf16)
        vaccine = trainer_grads(training_model(lora=True), batch(), rho, tmp_path, tokenizer, bf16=bf16)
        return torch.cat([(vaccine[n].float() - sft[n].float()).flatten() for n in sft])

    cosine = float(torch.nn.functional.cosine_similarity(effect(True), effect(False), dim=0))
    assert cosine > 0.5, cosine


def test_length_grouped_sampler_is_seeded_by_epoch():
    """Each epoch's order comes from (seed, epoch) alone, so a run resumed in epoch e draws the order
    an uninterrupted one does; epochs differ; global batches are of similar length."""
    lengths = [int(x) for x in torch.randint(5, 200, (96,), generator=torch.Generator().manual_seed(0))]

    def order(epoch, seed=0):
        sampler = EpochSeededLengthGroupedSampler(8, lengths, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(2) == order(2) and order(1) != order(2) and order(1, seed=1) != order(1)
    assert sorted(order(1)) == list(range(96))

    def padding(indices):
        batches = [indices[i:i + 8] for i in range(0, len(indices), 8)]
        return sum(len(b) * max(lengths[j] for j in b) for b in batches) - sum(lengths)

    assert padding(order(0)) < 0.5 * padding(list(range(96)))


def test_length_grouping_is_over_the_global_batch(tmp_path, tokenizer):
    """Trainer's own group_by_length groups per-device batches; the project's sampler groups batches
    of per-device batch x processes x accumulation, so one process with batch P*b and P processes
    with batch b (accelerate hands each a consecutive share of the global batch) train alike."""
    import datasets

    data = datasets.Dataset.from_list([{"input_ids": list(range(1, 2 + i % 9))} for i in range(40)])
    args = SFTConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, per_device_train_batch_size=4,
                     gradient_accumulation_steps=2, train_sampling_strategy="group_by_length", bf16=False,
                     gradient_checkpointing=False)
    trainer = PlainLossSFTTrainer(model=tiny_llama(), args=args, processing_class=tokenizer, train_dataset=data)
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, EpochSeededLengthGroupedSampler) and sampler.batch_size == 4 * 2 * args.world_size
