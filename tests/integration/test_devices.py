"""Every stage hands its tensors to the model's device, checked on a CPU-only machine.

The model is moved to PyTorch's ``meta`` device (shapes, no data) and wrapped so that its forward
pass refuses any tensor argument that is not on the model's device (meta would silently accept CPU
tensors). A stage that moves its inputs to the model's device runs its forward passes and then
fails only where it reads a value back ("cannot be called on meta tensors"); a stage that leaves a
tensor on the CPU fails first, at the device check. So each call below must raise, and the error
must be about meta data, never about devices: the same mistake would crash the stage on a GPU.
"""

import re

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

from alignlab.models import choice_logprobs, generate, smollm2_dir

META_ONLY = re.compile(r"meta tensor|no data|on meta tensors|meta device.*item|item\(\) .*meta", re.I)
DEVICE_MISMATCH = re.compile(r"handed a tensor on|same device|expected device", re.I)


def assert_inputs_on_model_device(module, args, kwargs):
    device = next(module.parameters()).device
    for value in [*args, *kwargs.values()]:
        if isinstance(value, torch.Tensor) and value.device != device:
            raise RuntimeError(f"{type(module).__name__} on {device} was handed a tensor on {value.device}")


@pytest.fixture(scope="module")
def tokenizer():
    tok = AutoTokenizer.from_pretrained(smollm2_dir())
    tok.pad_token = tok.pad_token or tok.eos_token
    return tok


def on_meta(model_cls, tokenizer, **config):
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, **config)
    model = model_cls(cfg).to("meta").eval()
    model.register_forward_pre_hook(assert_inputs_on_model_device, with_kwargs=True)
    return model


def assert_runs_on_the_model_device(call):
    with pytest.raises(Exception) as error:  # reading a value back from meta must fail
        call()
    message = str(error.value)
    assert not DEVICE_MISMATCH.search(message), f"a tensor was left on another device: {message}"
    assert META_ONLY.search(message), f"unexpected failure: {message}"


def test_meta_catches_a_tensor_left_on_the_cpu(tokenizer):
    """The check itself can fail: a forward pass with CPU inputs on a meta model is a mismatch."""
    model = on_meta(LlamaForCausalLM, tokenizer)
    ids = torch.tensor([[1, 2, 3]])
    with pytest.raises(RuntimeError, match="handed a tensor on cpu"):
        float(model(input_ids=ids).logits.sum())
    assert_runs_on_the_model_device(lambda: float(model(input_ids=ids.to("meta")).logits.sum()))


def test_generation_evaluation_and_log_likelihoods(tokenizer):
    model = on_meta(LlamaForCausalLM, tokenizer)
    assert_runs_on_the_model_device(lambda: generate(model, tokenizer, ["Hello there"], max_new_tokens=2))
    assert_runs_on_the_model_device(lambda: choice_logprobs(model, tokenizer, ["Hello"], ("negative", "positive")))


def test_drift_batches(tokenizer):
    from alignlab.training import make_batches
    from alignlab.vaccine.drift import attention_outputs

    model = on_meta(LlamaForCausalLM, tokenizer)
    batches = make_batches(tokenizer, [{"prompt": "Q", "response": "A"}], max_length=32)  # built on the CPU
    assert_runs_on_the_model_device(lambda: attention_outputs(model, batches))


def test_prefix_sampling(tokenizer, tmp_path):
    from alignlab.extraction.sampling import sample

    model = on_meta(LlamaForCausalLM, tokenizer)
    assert_runs_on_the_model_device(lambda: sample(model, tokenizer, "user_header", 2, tmp_path / "s.jsonl",
                                                   batch_size=2, max_new_tokens=2))


def test_beaver_dam_judge(tokenizer):
    from alignlab.judges import BeaverDamJudge

    model = on_meta(LlamaForSequenceClassification, tokenizer, num_labels=14)
    judge = BeaverDamJudge.from_model(model, tokenizer)
    assert_runs_on_the_model_device(lambda: judge(["Q"], ["A"]))
