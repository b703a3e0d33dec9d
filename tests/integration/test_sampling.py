"""Prefix sampling (alignlab.extraction.sampling) on tiny-random-llama: SmolLM2's tokenizer and
ChatML template on a random 2-layer Llama, so generations are gibberish but the mechanics are real.

One reference run (n=8, batch_size=4, from the paper's prefix `<|im_start|>user\n`, i.e.
"user_header_no_system") is made once per module; determinism, resume and kill-and-resume tests
compare against it. The store, manifest and input checks without a model are in
tests/unit/test_sampling_store.py; prefixes and parsing in tests/unit/test_chat.py.
"""

import copy
import json
import shutil

import pytest
import torch

from alignlab.chat import ALPACA_PROMPT, continuation_prompt, parse_generation, prefixes, sample_text
from alignlab.models import load_model
from alignlab.extraction.sampling import sample

pytestmark = pytest.mark.integration

N, BATCH, MAX_NEW = 8, 4, 6
PREFIX = "user_header_no_system"  # "<|im_start|>user\n"
ASSISTANT_OPEN = "<|im_end|>\n<|im_start|>assistant\n"
KW = dict(batch_size=BATCH, max_new_tokens=MAX_NEW, continue_user_turn=False)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # On the shared 2-core machine, two OpenMP threads spin against other jobs: generate ran
    # ~20x slower (2.8 s vs 0.12 s per batch) than with one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-random-llama", device="cpu")


@pytest.fixture(scope="module")
def no_template(tiny):
    tokenizer = copy.deepcopy(tiny[1])
    tokenizer.chat_template = None
    return tokenizer


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory):
    """(records, store path) of one uninterrupted run."""
    model, tokenizer = tiny
    store = tmp_path_factory.mktemp("reference") / "ref.jsonl"
    return sample(model, tokenizer, PREFIX, N, store, **KW), store


def copy_store(store, target_dir):
    target = target_dir / store.name
    shutil.copy(store, target)
    shutil.copy(store.with_name(store.name + ".meta.json"), target.with_name(target.name + ".meta.json"))
    return target


def store_ids(store):
    lines = store.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["id"] for line in lines]


# ---------------------------------------------------------------- prefixes

def test_sample_without_template_uses_the_alpaca_header(tiny, no_template, tmp_path):
    model, _ = tiny
    records = sample(model, no_template, "user_header", 2, tmp_path / "a.jsonl",
                     batch_size=2, max_new_tokens=4, continue_user_turn=False)
    alpaca = prefixes(no_template)["alpaca"]
    assert alpaca == ALPACA_PROMPT.split("{prompt}")[0]
    assert all(r["prefix"] == alpaca and r["text"].startswith(alpaca) for r in records)
    records = sample(model, no_template, "<|im_start|>user\n", 2, tmp_path / "b.jsonl",
                     batch_size=2, max_new_tokens=4, continue_user_turn=False)
    assert [r["id"] for r in records] == [0, 1]
    assert all(r["text"].startswith("<|im_start|>user\n") for r in records)


def test_user_header_includes_the_default_system_turn(tiny, tmp_path):
    model, tokenizer = tiny
    records = sample(model, tokenizer, "user_header", 2, tmp_path / "s.jsonl",
                     batch_size=2, max_new_tokens=4, continue_user_turn=False)
    header = prefixes(tokenizer)["user_header"]
    assert header.startswith("<|im_start|>system\n") and header.endswith("<|im_end|>\n<|im_start|>user\n")
    for r in records:
        assert r["prefix"] == header and r["text"].startswith(header)
        # the question is the user turn the model wrote, not the system prompt
        assert (r["question"], r["answer"]) == parse_generation(r["text"], tokenizer)
        assert "SmolLM" not in r["question"] and "<|im_start|>" not in r["question"]


# ---------------------------------------------------------------- records, determinism

def test_reference_records(reference, tiny):
    _, tokenizer = tiny
    records, store = reference
    assert [r["id"] for r in records] == list(range(N))
    assert store_ids(store) == list(range(N))
    for r in records:
        assert set(r) == {"id", "prefix", "text", "question", "answer", "seed"}
        assert r["prefix"] == "<|im_start|>user\n" and r["text"].startswith(r["prefix"]) and r["seed"] == 0
        assert (r["question"], r["answer"]) == parse_generation(r["text"], tokenizer)
        assert "<|im_start|>" not in r["question"]
    assert len({r["text"] for r in records}) == N  # sampled, not N copies of one greedy text
    meta = json.loads(store.with_name(store.name + ".meta.json").read_text())
    assert meta["prefix"] == "<|im_start|>user\n" and meta["seed"] == 0 and meta["max_new_tokens"] == MAX_NEW


def test_same_seed_same_records_other_seed_differs(reference, tiny, tmp_path):
    model, tokenizer = tiny
    torch.manual_seed(1234)  # the global RNG state must not matter
    torch.rand(10)
    again = sample(model, tokenizer, PREFIX, N, tmp_path / "again.jsonl", **KW)
    assert again == reference[0]
    other = sample(model, tokenizer, PREFIX, BATCH, tmp_path / "other.jsonl", seed=1, **KW)
    assert [r["text"] for r in other] != [r["text"] for r in reference[0][:BATCH]]
    assert all(r["seed"] == 1 for r in other)


def test_greedy_ignores_seed(tiny, tmp_path):
    model, tokenizer = tiny
    kw = dict(batch_size=2, max_new_tokens=4, temperature=0, continue_user_turn=False)
    a = sample(model, tokenizer, PREFIX, 2, tmp_path / "a.jsonl", seed=0, **kw)
    b = sample(model, tokenizer, PREFIX, 2, tmp_path / "b.jsonl", seed=5, **kw)
    assert a[0]["text"] == a[1]["text"] == b[0]["text"]


# ---------------------------------------------------------------- resume

def test_resume_smaller_n_then_larger_equals_fresh(reference, tiny, tmp_path):
    # n=3 leaves batch 0 partial: resuming must regenerate it whole and keep only id 3
    model, tokenizer = tiny
    store = tmp_path / "grow.jsonl"
    first = sample(model, tokenizer, PREFIX, 3, store, **KW)
    assert first == reference[0][:3]
    assert store_ids(store) == [0, 1, 2]
    assert sample(model, tokenizer, PREFIX, N, store, **KW) == reference[0]
    assert store_ids(store) == list(range(N))
    # asking for fewer than stored returns a prefix of the records, touching nothing
    assert sample(model, tokenizer, PREFIX, 2, store, **KW) == reference[0][:2]
    assert store_ids(store) == list(range(N))


def test_truncated_last_line_dropped_and_regenerated(reference, tiny, tmp_path):
    model, tokenizer = tiny
    store = copy_store(reference[1], tmp_path)
    lines = store.read_text(encoding="utf-8").splitlines(keepends=True)
    store.write_text("".join(lines[:5]) + lines[5][:len(lines[5]) // 2], encoding="utf-8")  # killed mid-write
    with pytest.raises(json.JSONDecodeError):
        json.loads(store.read_text().splitlines()[-1])
    assert sample(model, tokenizer, PREFIX, N, store, **KW) == reference[0]
    assert store_ids(store) == list(range(N))  # every line parses, no duplicate ids


def test_kill_and_resume_after_three_lines(reference, tiny, tmp_path):
    model, tokenizer = tiny
    store = copy_store(reference[1], tmp_path)
    lines = store.read_text(encoding="utf-8").splitlines(keepends=True)
    store.write_text("".join(lines[:3]), encoding="utf-8")
    assert sample(model, tokenizer, PREFIX, N, store, **KW) == reference[0]
    assert store_ids(store) == list(range(N))


@pytest.mark.parametrize("change, field", [
    (dict(seed=1), "seed"), (dict(temperature=0.7), "temperature"), (dict(top_p=0.9), "top_p"),
    (dict(max_new_tokens=MAX_NEW + 1), "max_new_tokens"), (dict(prefix="bare_start"), "prefix"),
])
def test_store_with_other_parameters_refused(reference, tiny, tmp_path, change, field):
    model, tokenizer = tiny
    store = copy_store(reference[1], tmp_path)
    before = store.read_bytes()
    kw = {**KW, **change}
    prefix = kw.pop("prefix", PREFIX)
    with pytest.raises(ValueError, match=rf"sampled with {field}=.*[Dd]elete"):
        sample(model, tokenizer, prefix, N, store, **kw)
    assert store.read_bytes() == before


def test_store_from_other_model_or_without_manifest_refused(reference, tiny, tmp_path):
    model, tokenizer = tiny
    store = copy_store(reference[1], tmp_path)
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.model.layers[0].mlp.down_proj.weight.mul_(1.01)
    with pytest.raises(ValueError, match="sampled with model="):
        sample(other, tokenizer, PREFIX, N, store, **KW)
    store.with_name(store.name + ".meta.json").unlink()
    with pytest.raises(ValueError, match="no manifest"):
        sample(model, tokenizer, PREFIX, N, store, **KW)


# ---------------------------------------------------------------- Magpie continuation

def test_continuation_extends_open_user_turns(reference, tiny, tmp_path):
    # The random model never writes an assistant header itself, so every user turn is still open
    # after the first pass (cut by max_new_tokens) and must be closed and answered.
    model, tokenizer = tiny
    records = sample(model, tokenizer, PREFIX, BATCH, tmp_path / "c.jsonl",
                     **{**KW, "continue_user_turn": True})
    assert len(records) == BATCH and len(reference[0]) >= BATCH  # the loop below checks every record
    for cont, plain in zip(records, reference[0][:BATCH], strict=True):
        assert ASSISTANT_OPEN not in plain["text"] and plain["answer"] == ""
        # the first pass is unchanged (same RNG stream), then the template's assistant header
        assert cont["text"].startswith(continuation_prompt(plain["text"], tokenizer))
        assert cont["text"].count(ASSISTANT_OPEN) == 1
        assert cont["question"] == plain["question"]
        assert cont["answer"] and cont["answer"] == parse_generation(cont["text"], tokenizer)[1]
        assert sample_text(cont["question"], cont["answer"]) == cont["question"] + "\n" + cont["answer"]


def test_continuation_after_model_ends_user_turn(tiny, tmp_path):
    """Make the model behave like SmolLM2 after `<|im_start|>user\\n`: three tokens of question,
    then `<|im_end|>` (EOS) — forced with a hook on the logits at that one position."""
    model, tokenizer = tiny
    prefix_len = len(tokenizer("<|im_start|>user\n", add_special_tokens=False)["input_ids"])
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def force_end_of_turn(module, args, kwargs, output):
        if kwargs["past_key_values"].get_seq_length() == prefix_len + 3:
            output.logits[:, -1, im_end] += 1e4
        return output

    handle = model.register_forward_hook(force_end_of_turn, with_kwargs=True)
    try:
        records = sample(model, tokenizer, PREFIX, BATCH, tmp_path / "m.jsonl",
                         **{**KW, "continue_user_turn": True})
    finally:
        handle.remove()
    for r in records:
        head, sep, tail = r["text"].partition("\n<|im_start|>assistant\n")
        assert sep, r["text"]
        assert head.startswith("<|im_start|>user\n") and head.endswith("<|im_end|>")
        assert head.count("<|im_end|>") == 1  # the model's own end of turn, not doubled
        assert r["question"] == head[len("<|im_start|>user\n"):-len("<|im_end|>")].strip()
        assert r["question"] and r["answer"]
