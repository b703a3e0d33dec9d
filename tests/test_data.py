import gzip
import json

import pytest

from alignlab import data
from alignlab.assets import MissingAssetError, asset_dir


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


def test_splits_are_disjoint_seeded_and_sized():
    a = data.safety_splits(30, 20, 10, seed=0)
    b = data.safety_splits(30, 20, 10, seed=0)
    c = data.safety_splits(30, 20, 10, seed=1)
    assert a == b and a != c
    assert [len(a[k]) for k in ("alignment", "harmful_ft", "harmful_eval")] == [30, 20, 10]
    prompts = [r["prompt"] for k in a for r in a[k]]
    assert len(set(prompts)) == len(prompts)
    assert all(r["response"] for r in a["alignment"] + a["harmful_ft"])
    assert all(r["response"] == "" for r in a["harmful_eval"])
    task = data.task_splits("sst2", 50, 20, seed=0)
    assert not {r["id"] for r in task["train"]} & {r["id"] for r in task["eval"]}


def test_too_many_or_negative_counts():
    with pytest.raises(data.DataError, match="only 872 exist"):
        data.task_splits("sst2", 900, 10)
    with pytest.raises(data.DataError, match="negative"):
        data.task_splits("sst2", -1, 10)


def test_unknown_dataset_lists_the_names():
    with pytest.raises(data.DataError, match="unknown dataset 'beavertail'.*advbench"):
        data.load_dataset("beavertail")


def test_missing_asset_package_names_the_install_command():
    with pytest.raises(MissingAssetError, match="unknown asset package"):
        asset_dir("llm_smollm3")


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


@pytest.fixture(scope="module")
def tokenizer():
    from alignlab.models import load_model

    return load_model("tiny-random-llama")[1]


def test_chat_formatting_and_prompt_masking(tokenizer):
    prompt, full = data.format_example(tokenizer, "Say hi", "Hi!")
    assert prompt.endswith("<|im_start|>assistant\n") and full.startswith(prompt)
    row = data.tokenize_examples(tokenizer, [data.record("Say hi", "Hi!")], max_length=128)[0]
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert row["labels"][:n_prompt] == [-100] * n_prompt
    assert tokenizer.decode(row["labels"][n_prompt:]).startswith("Hi!<|im_end|>")


def test_alpaca_template_for_base_models(tokenizer):
    import copy

    base = copy.deepcopy(tokenizer)
    base.chat_template = None
    prompt, full = data.format_example(base, "Say hi", "Hi!")
    assert prompt.startswith("Below is an instruction") and prompt.endswith("### Response:\n")
    assert full == prompt + "Hi!" + base.eos_token


def test_helpful_records_avoid_the_task_splits():
    task = data.task_splits("gsm8k", 1000, 200, seed=0)
    helpful = data.helpful_records(100, seed=0, exclude=task["train"] + task["eval"])
    assert len(helpful) == 100 and all(r["source"] == "gsm8k" and r["response"] for r in helpful)
    assert not {r["id"] for r in helpful} & {r["id"] for r in task["train"] + task["eval"]}
    assert helpful == data.helpful_records(100, seed=0, exclude=task["train"] + task["eval"])
    assert data.helpful_records(0) == []
    with pytest.raises(data.DataError, match="GSM8K helpful answers: asked for 200 records"):
        data.helpful_records(200, seed=0, exclude=task["train"] + task["eval"])
