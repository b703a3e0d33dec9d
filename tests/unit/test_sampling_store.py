"""alignlab.extraction.sampling without generating: the resumable JSONL store and its manifest
(on hand-written stores), input checks, the generation config, batch seeds and the model
fingerprint; and two parsing cases on SmolLM2's template that tests/unit/test_chat.py lacks.
Generation itself is tested in tests/integration/test_sampling.py."""

import copy
import json
from types import SimpleNamespace

import pytest
import torch

from alignlab.chat import continuation_prompt, parse_generation
from alignlab.data import DataError
from alignlab.extraction.sampling import (
    MANIFEST_FIELDS, RECORD_FIELDS, _batch_seed, _check_manifest, _decode_new, _generation_config, _load_store,
    _manifest_path, model_fingerprint, sample, stored_records,
)

pytestmark = pytest.mark.unit

META = {"prefix": "<|im_start|>user\n", "seed": 0, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 6,
        "model": "tiny#0123456789abcdef", "batch_size": 4, "continue_user_turn": False}


def rec(i, **kw):
    return {"id": i, "prefix": "<|im_start|>user\n", "text": f"<|im_start|>user\nq{i}", "question": f"q{i}",
            "answer": "", "seed": 0, **kw}


def line(r):
    return json.dumps(r) + "\n"


@pytest.fixture
def store(tmp_path):
    return tmp_path / "samples.jsonl"


def ids_on_disk(store):
    return [json.loads(x)["id"] for x in store.read_text().splitlines()]


# ---------------------------------------------------------------- the store

def test_missing_store_is_empty(store):
    assert _load_store(store) == {}
    assert not store.exists()


def test_complete_store_is_read_and_left_alone(store):
    store.write_text("".join(line(rec(i)) for i in range(5)))
    before = store.stat().st_mtime_ns, store.read_bytes()
    records = _load_store(store)
    assert list(records) == [0, 1, 2, 3, 4] and records[3] == rec(3)
    assert set(records[0]) == set(RECORD_FIELDS)
    assert (store.stat().st_mtime_ns, store.read_bytes()) == before


@pytest.mark.parametrize("tail", [
    '{"id": 5, "prefix": "<|im_st',   # killed mid-write
    line(rec(5))[:-1],                 # complete JSON but no newline yet: not known to be complete
    '{"id": 5, "pre\n',                # cut right before its newline
    "\n",                              # a blank line
])
def test_unfinished_last_line_is_dropped_and_the_file_rewritten(store, tail):
    store.write_text("".join(line(rec(i)) for i in range(5)) + tail)
    records = _load_store(store)
    assert list(records) == [0, 1, 2, 3, 4]
    assert ids_on_disk(store) == [0, 1, 2, 3, 4]  # every line parses now
    assert store.read_text().endswith("\n")


def test_duplicate_ids_keep_the_first_record(store):
    store.write_text(line(rec(0)) + line(rec(1)) + line(rec(0, question="other")) + line(rec(2)))
    records = _load_store(store)
    assert list(records) == [0, 1, 2] and records[0]["question"] == "q0"
    assert ids_on_disk(store) == [0, 1, 2]


def test_corrupt_middle_line_is_an_error(store):
    text = line(rec(0)) + line(rec(1)) + "{not json\n" + line(rec(3))
    store.write_text(text)
    with pytest.raises(DataError, match=r"samples.jsonl:3: not valid JSON.*delete it"):
        _load_store(store)
    assert store.read_text() == text  # never rewritten


@pytest.mark.parametrize("row", [{"id": 1, "text": "x"}, [1, 2], "a string"])
def test_row_that_is_not_a_record_is_an_error(store, row):
    store.write_text(line(rec(0)) + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"samples.jsonl:2: missing field\(s\).*not a sampling store"):
        _load_store(store)


# ---------------------------------------------------------------- the manifest

def test_manifest_written_for_a_new_store(store):
    _check_manifest(store, META, has_records=False)
    assert json.loads(_manifest_path(store).read_text()) == META
    assert _manifest_path(store).name == "samples.jsonl.meta.json"
    other = {**META, "seed": 7}
    _check_manifest(store, other, has_records=False)  # no records yet: the new parameters win
    assert json.loads(_manifest_path(store).read_text()) == other


def test_matching_manifest_is_accepted(store):
    _manifest_path(store).write_text(json.dumps(META))
    _check_manifest(store, dict(META), has_records=True)
    assert json.loads(_manifest_path(store).read_text()) == META


@pytest.mark.parametrize("field", MANIFEST_FIELDS)
def test_store_with_other_parameters_refused(store, field):
    _manifest_path(store).write_text(json.dumps(META))
    changed = {**META, field: "something else"}
    with pytest.raises(ValueError, match=rf"sampled with {field}=.* but this run asks {field}=.*Delete"):
        _check_manifest(store, changed, has_records=True)
    assert json.loads(_manifest_path(store).read_text()) == META


def test_store_without_or_with_unreadable_manifest_refused(store):
    with pytest.raises(ValueError, match="has no manifest samples.jsonl.meta.json"):
        _check_manifest(store, META, has_records=True)
    assert not _manifest_path(store).exists()
    _manifest_path(store).write_text("{cut")
    with pytest.raises(ValueError, match="unreadable"):
        _check_manifest(store, META, has_records=True)


# ---------------------------------------------------------------- input checks (before any model use)

@pytest.mark.parametrize("kwargs, message", [
    (dict(n=-1), "n must be"), (dict(n=2.5), "n must be"), (dict(prefix=""), "empty prefix"),
    (dict(temperature=-0.5), "temperature"), (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"),
    (dict(batch_size=0), "batch_size"), (dict(max_new_tokens=0), "max_new_tokens"),
])
def test_bad_input(store, kwargs, message):
    args = {"prefix": "user_header", "n": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        sample(None, None, args.pop("prefix"), args.pop("n"), store, **args)
    assert not store.exists() and not _manifest_path(store).exists()


# ---------------------------------------------------------------- generation settings, seeds, fingerprint

def test_generation_config_samples_the_full_distribution():
    from transformers import GenerationConfig

    model = SimpleNamespace(generation_config=GenerationConfig(eos_token_id=2, top_k=50, min_p=0.1))
    tokenizer = SimpleNamespace(eos_token_id=3, pad_token_id=None)
    config, eos = _generation_config(model, tokenizer, 12, temperature=0.7, top_p=0.9)
    assert eos == {2, 3} and config.eos_token_id == [2, 3] and config.pad_token_id == 2
    assert config.do_sample and config.num_beams == 1 and config.max_new_tokens == 12
    assert (config.temperature, config.top_p, config.top_k, config.min_p) == (0.7, 0.9, 0, 0.0)
    assert config.repetition_penalty == 1.0
    greedy, _ = _generation_config(model, SimpleNamespace(eos_token_id=2, pad_token_id=5), 4, 0, 1.0)
    assert not greedy.do_sample and greedy.eos_token_id == [2] and greedy.pad_token_id == 5


def test_decode_new_stops_after_the_first_eos():
    tokenizer = SimpleNamespace(decode=lambda ids, **kw: " ".join(map(str, ids)))
    assert _decode_new(tokenizer, torch.tensor([5, 6, 2, 7, 0, 0]), {2}) == "5 6 2"
    assert _decode_new(tokenizer, torch.tensor([5, 6, 7]), {2, 3}) == "5 6 7"


def test_batch_seed():
    seeds = {_batch_seed(s, start) for s in range(3) for start in (0, 4, 8)}
    assert len(seeds) == 9 and all(0 <= x < 2 ** 63 for x in seeds)
    assert _batch_seed(1, 4) == _batch_seed(1, 4)


def test_model_fingerprint_tells_a_finetuned_model_from_its_base():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=1))
    base = model_fingerprint(model)
    assert base == model_fingerprint(copy.deepcopy(model))
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.model.layers[1].mlp.down_proj.weight.mul_(1.01)
    assert model_fingerprint(other) != base
    model.config._name_or_path = "my/model"
    assert model_fingerprint(model).startswith("my/model#") and model_fingerprint(model) != base


# ---------------------------------------------------------------- parsing cases test_chat.py lacks



def test_answered_turn_needs_no_continuation(smollm2_tokenizer):
    text = "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>"
    assert continuation_prompt(text, smollm2_tokenizer) is None
    assert parse_generation(text, smollm2_tokenizer) == ("Q", "A")


def test_template_less_tokenizer_sees_no_chat_turns(smollm2_tokenizer):
    base = copy.deepcopy(smollm2_tokenizer)
    base.chat_template = None
    assert parse_generation("<|im_start|>user\nQ<|im_end|>", base) == ("user\nQ", "")
    assert parse_generation("### Instruction:\nDo X\n\n### Response:\nDone", base) == ("Do X", "Done")


def test_stored_records_only_for_a_finished_store(store):
    """What lets extraction skip loading the model: all n records and a manifest, else None."""
    assert stored_records(store, 2) is None  # no store
    store.write_text("".join(json.dumps(rec(i)) + "\n" for i in range(3)))
    assert stored_records(store, 2) is None  # no manifest
    _manifest_path(store).write_text(json.dumps(META))
    assert [r["id"] for r in stored_records(store, 3)] == [0, 1, 2]
    assert stored_records(store, 4) is None  # one short: sample() must run
    assert stored_records(store, 3, seed=0, batch_size=4) is not None
    assert stored_records(store, 3, batch_size=8) is None  # sampled otherwise: sample() refuses it, saying why
    store.write_text(store.read_text() + '{"id": 3, "pre')
    assert stored_records(store, 3) is None  # cut mid-line: sample() repairs it
