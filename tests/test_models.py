import time

import pytest
import torch

from alignlab.models import KNOWN_MODELS, UnknownModelError, load_model, smollm2_dir


def test_tiny_random_llama_is_seeded_and_has_the_chat_template():
    a, tokenizer = load_model("tiny-random-llama")
    b, _ = load_model("tiny-random-llama")
    assert a.config.num_hidden_layers == 2 and a.config.hidden_size == 64
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    assert "<|im_start|>" in tokenizer.chat_template
    assert tokenizer.pad_token is not None


def test_smollm2_loads_from_the_cached_safetensors_copy():
    smollm2_dir()  # converts once (about a minute on a fresh machine)
    start = time.perf_counter()
    model, tokenizer = load_model("smollm2-135m-instruct")
    assert time.perf_counter() - start < 5
    assert model.config.num_hidden_layers == 30
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False).count("<|im_start|>") == 2


@pytest.mark.parametrize("name", ["gpt-17", "./no/such/folder", "not a model"])
def test_unknown_model_lists_the_known_names(name):
    with pytest.raises(UnknownModelError, match="unknown model") as error:
        load_model(name)
    for known in KNOWN_MODELS:
        assert known in str(error.value)


def test_pickled_weights_are_refused(tmp_path):
    model, tokenizer = load_model("tiny-random-llama")
    model.config.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # a pickle, as older checkpoints ship
    with pytest.raises(UnknownModelError, match="no .safetensors weights"):
        load_model(str(tmp_path))
