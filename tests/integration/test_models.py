"""alignlab.models on the offline models: tiny-random-llama and SmolLM2-135M-Instruct, both of
which need the SmolLM2 GGUF converted once to the cached safetensors copy."""

import pytest
import torch

from alignlab.models import load_model, smollm2_dir

pytestmark = pytest.mark.integration


def test_tiny_random_llama_is_seeded_and_has_the_chat_template():
    a, tokenizer = load_model("tiny-random-llama", device="cpu")
    b, _ = load_model("tiny-random-llama", device="cpu")
    assert a.config.num_hidden_layers == 2 and a.config.hidden_size == 64
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    assert "<|im_start|>" in tokenizer.chat_template
    assert tokenizer.pad_token is not None


def test_smollm2_loads_from_the_cached_safetensors_copy():
    folder = smollm2_dir()  # converts once (about a minute on a fresh machine)
    assert (folder / "model.safetensors").exists() and smollm2_dir() == folder
    model, tokenizer = load_model("smollm2-135m-instruct", device="cpu")
    assert model.config.num_hidden_layers == 30
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False).count("<|im_start|>") == 2


def test_generate_returns_answers_in_the_callers_order():
    """Prompts are batched longest first; the answers still come back in the order asked. With
    distinct lengths the batches are the same whatever the order, so reversing the prompts must
    reverse the answers exactly."""
    from alignlab.models import SMOLLM2, generate

    model, tokenizer = load_model(SMOLLM2)  # real weights: the tiny random model answers every prompt alike
    prompts = ["Hi", "How are you today?", "Name a colour", "Tell me a long story about a dragon and a knight"]
    forward = generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=2)
    backward = generate(model, tokenizer, prompts[::-1], max_new_tokens=6, batch_size=2)
    assert backward == forward[::-1]
    assert len(set(forward)) > 1  # distinct answers, or a mix-up would not show


def test_generate_and_choice_logprobs_take_no_prompts():
    """A model after user fine-tuning answers no benign requests: no prompts, no answers."""
    from alignlab.models import choice_logprobs, generate

    model, tokenizer = load_model("tiny-random-llama")
    assert generate(model, tokenizer, [], max_new_tokens=4) == []
    assert choice_logprobs(model, tokenizer, [], ("negative", "positive")).shape == (0, 2)


def test_choice_logprobs_match_the_whole_sequence_scored_one_prompt_at_a_time():
    """Scoring only the positions that predict the choice (``logits_to_keep``) under left padding
    gives what the full, unpadded sequence gives: the sum of the choice tokens' log-probabilities.
    A multi-token choice checks the slicing; SST-2's one-token class words take one forward."""
    from alignlab.models import SMOLLM2

    model, tokenizer = load_model(SMOLLM2)
    prompts = ["Is the sky blue?", "Review: a dull, lifeless film. Sentiment?"]
    for choices in (("positive", "not at all negative"), ("positive", "negative")):  # the one-forward path too
        _check_choices(model, tokenizer, prompts, choices)


def _check_choices(model, tokenizer, prompts, choices):
    from alignlab.chat import format_prompt
    from alignlab.models import choice_logprobs

    batched = choice_logprobs(model, tokenizer, prompts, choices, batch_size=2)
    for i, prompt in enumerate(prompts):
        context = tokenizer(format_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
        for j, choice in enumerate(choices):
            ids = tokenizer(choice, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([context + ids])).logits[0].float()
            logp = torch.log_softmax(logits[len(context) - 1:-1], dim=-1)
            expected = float(logp[torch.arange(len(ids)), torch.tensor(ids)].sum())
            assert batched[i, j] == pytest.approx(expected, abs=2e-3), (prompt, choice)
