"""Prefix sampling (alignlab.sampling) on tiny-random-llama: SmolLM2's tokenizer and ChatML
template on a random 2-layer Llama, so generations are gibberish but the mechanics are real.

One reference run (n=8, batch_size=4) is made once per module; determinism, resume and
kill-and-resume tests compare against it. Parsing is tested on hand-written texts.
"""

import copy
import json
import shutil

import pytest
import torch

from alignlab.data import ALPACA_PROMPT, DataError
from alignlab.models import load_model
from alignlab.sampling import (continuation_prompt, parse_generation, prefixes, resolve_prefix, sample,
                               sample_text)

N, BATCH, MAX_NEW = 8, 4, 6
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
    return load_model("tiny-random-llama")


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
    return sample(model, tokenizer, "user_header", N, store, **KW), store


def copy_store(store, target_dir):
    target = target_dir / store.name
    shutil.copy(store, target)
    shutil.copy(store.with_name(store.name + ".meta.json"), target.with_name(target.name + ".meta.json"))
    return target


def store_ids(store):
    lines = store.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["id"] for line in lines]


# ---------------------------------------------------------------- prefixes

def test_prefixes_cut_from_smollm2_template(tiny):
    _, tokenizer = tiny
    p = prefixes(tokenizer)
    # The template inserts a default system turn; the user header must not carry it.
    assert p["bare_start"] == "<|im_start|>"
    assert p["user_header"] == "<|im_start|>user\n"
    assert p["alpaca"] == ALPACA_PROMPT.split("{prompt}")[0]
    assert p["alpaca"].endswith("### Instruction:\n")
    assert p["bos"] == tokenizer.bos_token
    assert resolve_prefix(tokenizer, "user_header") == "<|im_start|>user\n"


def test_tokenizer_without_template(tiny, no_template):
    model, _ = tiny
    assert set(prefixes(no_template)) == {"alpaca", "bos"}
    for name in ("user_header", "bare_start"):
        with pytest.raises(ValueError, match="tokenizer has no chat template; pass an explicit prefix"):
            resolve_prefix(no_template, name)
    assert resolve_prefix(no_template, "<|im_start|>user\n") == "<|im_start|>user\n"
    assert resolve_prefix(no_template, "alpaca").startswith("Below is an instruction")


def test_sample_without_template_needs_explicit_prefix(tiny, no_template, tmp_path):
    model, _ = tiny
    with pytest.raises(ValueError, match="no chat template"):
        sample(model, no_template, "user_header", 2, tmp_path / "a.jsonl", **KW)
    assert not (tmp_path / "a.jsonl").exists()
    records = sample(model, no_template, "<|im_start|>user\n", 2, tmp_path / "b.jsonl",
                     batch_size=2, max_new_tokens=4, continue_user_turn=False)
    assert [r["id"] for r in records] == [0, 1]
    assert all(r["text"].startswith("<|im_start|>user\n") for r in records)


def test_resolve_prefix_names_and_literals(tiny):
    _, tokenizer = tiny
    with pytest.raises(ValueError, match="unknown prefix name 'user_headr'"):
        resolve_prefix(tokenizer, "user_headr")
    assert resolve_prefix(tokenizer, "Question", explicit=True) == "Question"
    assert resolve_prefix(tokenizer, "### Question:\n") == "### Question:\n"
    with pytest.raises(ValueError, match="empty prefix"):
        resolve_prefix(tokenizer, "")


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
    again = sample(model, tokenizer, "user_header", N, tmp_path / "again.jsonl", **KW)
    assert again == reference[0]
    other = sample(model, tokenizer, "user_header", BATCH, tmp_path / "other.jsonl", seed=1, **KW)
    assert [r["text"] for r in other] != [r["text"] for r in reference[0][:BATCH]]
    assert all(r["seed"] == 1 for r in other)


def test_greedy_ignores_seed(tiny, tmp_path):
    model, tokenizer = tiny
    kw = dict(batch_size=2, max_new_tokens=4, temperature=0, continue_user_turn=False)
    a = sample(model, tokenizer, "user_header", 2, tmp_path / "a.jsonl", seed=0, **kw)
    b = sample(model, tokenizer, "user_header", 2, tmp_path / "b.jsonl", seed=5, **kw)
    assert a[0]["text"] == a[1]["text"] == b[0]["text"]


# ---------------------------------------------------------------- resume

def test_resume_smaller_n_then_larger_equals_fresh(reference, tiny, tmp_path):
    # n=3 leaves batch 0 partial: resuming must regenerate it whole and keep only id 3
    model, tokenizer = tiny
    store = tmp_path / "grow.jsonl"
    first = sample(model, tokenizer, "user_header", 3, store, **KW)
    assert first == reference[0][:3]
    assert store_ids(store) == [0, 1, 2]
    assert sample(model, tokenizer, "user_header", N, store, **KW) == reference[0]
    assert store_ids(store) == list(range(N))
    # asking for fewer than stored returns a prefix of the records, touching nothing
    assert sample(model, tokenizer, "user_header", 2, store, **KW) == reference[0][:2]
    assert store_ids(store) == list(range(N))


def test_truncated_last_line_dropped_and_regenerated(reference, tiny, tmp_path):
    model, tokenizer = tiny
    store = copy_store(reference[1], tmp_path)
    lines = store.read_text(encoding="utf-8").splitlines(keepends=True)
    store.write_text("".join(lines[:5]) + lines[5][:len(lines[5]) // 2], encoding="utf-8")  # killed mid-write
    with pytest.raises(json.JSONDecodeError):
        json.loads(store.read_text().splitlines()[-1])
    assert sample(model, tokenizer, "user_header", N, store, **KW) == reference[0]
    assert store_ids(store) == list(range(N))  # every line parses, no duplicate ids


def test_kill_and_resume_after_three_lines(reference, tiny, tmp_path):
    model, tokenizer = tiny
    store = copy_store(reference[1], tmp_path)
    lines = store.read_text(encoding="utf-8").splitlines(keepends=True)
    store.write_text("".join(lines[:3]), encoding="utf-8")
    assert sample(model, tokenizer, "user_header", N, store, **KW) == reference[0]
    assert store_ids(store) == list(range(N))


def test_corrupt_middle_line_is_an_error(reference, tiny, tmp_path):
    model, tokenizer = tiny
    store = copy_store(reference[1], tmp_path)
    lines = store.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = "{not json\n"
    store.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match=r":3: not valid JSON"):
        sample(model, tokenizer, "user_header", N, store, **KW)


@pytest.mark.parametrize("change, field", [
    (dict(seed=1), "seed"), (dict(temperature=0.7), "temperature"), (dict(top_p=0.9), "top_p"),
    (dict(max_new_tokens=MAX_NEW + 1), "max_new_tokens"), (dict(prefix="bare_start"), "prefix"),
])
def test_store_with_other_parameters_refused(reference, tiny, tmp_path, change, field):
    model, tokenizer = tiny
    store = copy_store(reference[1], tmp_path)
    before = store.read_bytes()
    kw = {**KW, **change}
    prefix = kw.pop("prefix", "user_header")
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
        sample(other, tokenizer, "user_header", N, store, **KW)
    store.with_name(store.name + ".meta.json").unlink()
    with pytest.raises(ValueError, match="no manifest"):
        sample(model, tokenizer, "user_header", N, store, **KW)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=-1), "n must be"), (dict(prefix=""), "empty prefix"), (dict(temperature=-0.5), "temperature"),
    (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"),
])
def test_bad_input(tiny, tmp_path, kwargs, message):
    model, tokenizer = tiny
    args = {"prefix": "user_header", "n": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        sample(model, tokenizer, args.pop("prefix"), args.pop("n"), tmp_path / "s.jsonl", **{**KW, **args})
    assert not (tmp_path / "s.jsonl").exists()


# ---------------------------------------------------------------- parsing

@pytest.mark.parametrize("text, expected", [
    ("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>", ("What is 2+2?", "4")),
    ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM<|im_end|>\n"
     "<|im_start|>user\n  Name a colour. <|im_end|>\n<|im_start|>assistant\nBlue.\nOr red.<|im_end|>\n"
     "<|im_start|>user\nAnother?<|im_end|>", ("Name a colour.", "Blue.\nOr red.")),
    ("<|im_start|>user\nHow do I", ("How do I", "")),                        # cut by max_new_tokens
    ("<|im_start|>user\nHi there<|im_end|>", ("Hi there", "")),               # Magpie: stopped after the question
    ("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA half answ", ("Q", "A half answ")),
    ("Just some text<|endoftext|>", ("Just some text", "")),                  # no turn structure
    ("<|im_start|>Free text", ("Free text", "")),
    (ALPACA_PROMPT.format(prompt="List three fruits.") + "Apple, pear, plum.<|endoftext|>",
     ("List three fruits.", "Apple, pear, plum.")),
    (ALPACA_PROMPT.split("{prompt}")[0] + "Write a poem", ("Write a poem", "")),
])
def test_parse_generation(tiny, text, expected):
    assert parse_generation(text, tiny[1]) == expected


def test_parse_without_template_falls_back_to_alpaca_or_whole_text(no_template):
    assert parse_generation("### Instruction:\nDo X\n\n### Response:\nDone", no_template) == ("Do X", "Done")
    assert parse_generation("<|im_start|>user\nQ<|im_end|>", no_template) == ("user\nQ", "")


def test_continuation_prompt(tiny):
    _, tokenizer = tiny
    assert continuation_prompt("<|im_start|>user\nWhat?<|im_end|>", tokenizer) == \
        "<|im_start|>user\nWhat?" + ASSISTANT_OPEN
    assert continuation_prompt("<|im_start|>user\nHow do", tokenizer) == "<|im_start|>user\nHow do" + ASSISTANT_OPEN
    assert continuation_prompt("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>", tokenizer) is None
    assert continuation_prompt("no structure", tokenizer) is None
    alpaca = ALPACA_PROMPT.split("{prompt}")[0] + "Do X<|endoftext|>"
    assert continuation_prompt(alpaca, tokenizer) == ALPACA_PROMPT.format(prompt="Do X")
    assert ASSISTANT_OPEN in continuation_prompt("<|im_start|>user\nWhat?<|im_end|>", tokenizer)


def test_sample_text():
    assert sample_text({"question": "Q?", "answer": "A."}) == "Q?\nA."
    assert sample_text({"question": "Q?", "answer": ""}) == "Q?"


# ---------------------------------------------------------------- Magpie continuation

def test_continuation_extends_open_user_turns(reference, tiny, tmp_path):
    # The random model never writes an assistant header itself, so every user turn is still open
    # after the first pass (cut by max_new_tokens) and must be closed and answered.
    model, tokenizer = tiny
    records = sample(model, tokenizer, "user_header", BATCH, tmp_path / "c.jsonl",
                     **{**KW, "continue_user_turn": True})
    for cont, plain in zip(records, reference[0][:BATCH]):
        assert ASSISTANT_OPEN not in plain["text"] and plain["answer"] == ""
        # the first pass is unchanged (same RNG stream), then the template's assistant header
        assert cont["text"].startswith(continuation_prompt(plain["text"], tokenizer))
        assert cont["text"].count(ASSISTANT_OPEN) == 1
        assert cont["question"] == plain["question"]
        assert cont["answer"] and cont["answer"] == parse_generation(cont["text"], tokenizer)[1]
        assert sample_text(cont) == cont["question"] + "\n" + cont["answer"]


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
        records = sample(model, tokenizer, "user_header", BATCH, tmp_path / "m.jsonl",
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
