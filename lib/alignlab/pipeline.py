"""The stages the notebooks call, each cached under ``.cache/alignlab/<profile>/<stage>/<key>``.

A stage's key hashes every parameter that changes its result, so re-running a notebook with
the same profile is cheap, and changing one value recomputes only what depends on it.
"""

import random
from pathlib import Path

import numpy as np

from alignlab import paths, safety_data
from alignlab.data import helpful_records, safety_splits, task_splits
from alignlab.evaluate import finetune_accuracy, generate, make_batches
from alignlab.finetune import DriftCallback, align, finetune, load_finetuned, read_done, record_ids, stage_key
from alignlab.store import read_json, write_json

ALIGNED = ("sft", "vaccine")  # the aligned models of notebook 01


def splits(p: dict) -> dict:
    """Every data split a profile uses: safety (alignment / harmful_ft / harmful_eval), task
    (task_train / task_eval) and the benign ``helpful`` samples that alignment mixes in.

    ``safety_source: offline`` cuts the offline harmful prompts and adds our own responses;
    ``beavertails`` (paper profile) takes BeaverTails' safe / unsafe rows as the paper does.
    """
    if p["safety_source"] == "beavertails":
        from alignlab.data import _take, load_dataset

        seed = p["data_seed"]
        out = {"alignment": _take(load_dataset("beavertails_safe"), {"a": p["n_align"]}, seed, "BeaverTails safe")["a"],
               "harmful_ft": _take(load_dataset("beavertails_unsafe"), {"h": p["n_harmful_ft"]}, seed, "BeaverTails unsafe")["h"],
               "harmful_eval": _take(load_dataset("beavertails_test"), {"e": p["n_harmful_eval"]}, seed, "BeaverTails test")["e"]}
    elif p["safety_source"] == "offline":
        out = safety_splits(p["n_align"], p["n_harmful_ft"], p["n_harmful_eval"], seed=p["data_seed"])
    else:
        raise ValueError(f"safety_source={p['safety_source']!r} is invalid: use 'offline' or 'beavertails'")
    task = task_splits(p["task"], p["n_finetune"], p["n_task_eval"], seed=p["data_seed"])
    out["task_train"], out["task_eval"] = task["train"], task["eval"]
    out["helpful"] = helpful_records(p["n_align_helpful"], seed=p["data_seed"],
                                     exclude=task["train"] + task["eval"])
    return out


def alignment_set(p: dict) -> list[dict]:
    """What alignment trains on, and so the post-training set that extraction searches:
    the safety samples plus ``n_align_helpful`` benign samples with helpful answers."""
    s = splits(p)
    return s["alignment"] + s["helpful"]


def stage_dir(p: dict, stage: str, **params):
    return paths.cache_dir(p["profile"], stage) / stage_key(**params)


def align_kw(p: dict) -> dict:
    return dict(lr=p["lr"], epochs=p["align_epochs"], batch_size=p["batch_size"], max_length=p["max_length"],
                lora_r=p["lora_r"], lora_alpha=p["lora_alpha"], weight_decay=p["weight_decay"],
                warmup_ratio=p["warmup_ratio"], seed=p["seed"])


def aligned_model(p: dict, method: str, rho: float | None = None) -> str:
    """Path of the merged aligned model ("base" is the pre-alignment model itself)."""
    if method == "base":
        return p["model"]
    rho = p["rho"] if rho is None else rho
    data = alignment_set(p)
    kw = align_kw(p)
    out = stage_dir(p, "align", model=p["model"], method=method, rho=rho if method == "vaccine" else None,
                    data=record_ids(data), **kw)
    return str(align(p["model"], data, out, method=method, rho=rho, **kw))


def alignment_losses(p: dict, method: str, rho: float | None = None) -> list[dict]:
    model_dir = aligned_model(p, method, rho)
    return read_done(Path(model_dir).parent)["losses"]


def attack_data(p: dict, harmful_ratio: float, seed: int) -> list[dict]:
    """n task samples of which int(p*n) are harmful (prompt, compliant answer), shuffled by seed."""
    s = splits(p)
    n = p["n_finetune"]
    n_harmful = int(harmful_ratio * n)
    if n_harmful > len(s["harmful_ft"]):
        raise ValueError(f"harmful_ratio={harmful_ratio} needs {n_harmful} harmful samples but n_harmful_ft="
                         f"{len(s['harmful_ft'])}: raise n_harmful_ft or lower harmful_ratio")
    rng = random.Random(seed)
    records = rng.sample(s["harmful_ft"], n_harmful) + rng.sample(s["task_train"], n - n_harmful)
    rng.shuffle(records)
    return records


def attack(p: dict, method: str, harmful_ratio: float, seed: int, rho: float | None = None) -> dict:
    """User fine-tuning of one aligned model: returns paths of its adapter and the stage summary."""
    aligned = aligned_model(p, method, rho)
    records = attack_data(p, harmful_ratio, seed)
    kw = dict(lr=p["finetune_lr"], epochs=p["finetune_epochs"], batch_size=p["finetune_batch_size"],
              max_length=p["max_length"], lora_r=p["lora_r"], lora_alpha=p["lora_alpha"],
              weight_decay=p["weight_decay"], warmup_ratio=p["warmup_ratio"], seed=seed)
    out = stage_dir(p, "attack", aligned=aligned, harmful_ratio=harmful_ratio, data=record_ids(records),
                    drift_every=p["drift_every"], **kw)
    if read_done(out) is None:
        from alignlab.models import load_model

        _, tokenizer = load_model(aligned)
        drift = DriftCallback(make_batches(tokenizer, splits(p)["alignment"][:p["n_drift"]], max_length=p["max_length"]),
                              every=p["drift_every"], path=out / "drift.json")
        finetune(aligned, records, out, callbacks=[drift], **kw)
    else:
        finetune(aligned, records, out, **kw)
    return {"adapter": str(out / "adapter"), **read_done(out)}


def evaluate(p: dict, judge, aligned: str, adapter: str | None) -> dict:
    """HS on the held-out harmful prompts and FA on the task's eval set, answers kept; cached."""
    out = stage_dir(p, "evaluate", aligned=aligned, adapter=adapter, judge=judge.name,
                    n_eval=p["n_harmful_eval"], n_task_eval=p["n_task_eval"], max_new_tokens=p["max_new_tokens"],
                    task_max_new_tokens=p["task_max_new_tokens"], data_seed=p["data_seed"], task=p["task"],
                    safety_source=p["safety_source"]) / "result.json"
    done = read_json(out)
    if done is not None:
        return done
    s = splits(p)
    model, tokenizer = load_finetuned(Path(aligned), Path(adapter) if adapter else None)
    harmful_prompts = [r["prompt"] for r in s["harmful_eval"]]
    harmful_answers = generate(model, tokenizer, harmful_prompts, p["max_new_tokens"], desc="harmful prompts")
    task_answers = generate(model, tokenizer, [r["prompt"] for r in s["task_eval"]], p["task_max_new_tokens"],
                            desc="task prompts")
    flagged = judge(harmful_prompts, harmful_answers)
    result = {
        "hs": 100.0 * float(np.mean(flagged)),
        "fa": finetune_accuracy(p["task"], task_answers, [r["label"] for r in s["task_eval"]]),
        "judge": judge.name, "judge_accuracy": judge.accuracy,
        "harmful_answers": harmful_answers, "flagged": [bool(f) for f in flagged], "task_answers": task_answers,
    }
    write_json(out, result)
    return result


def evaluations(p: dict, judge) -> list[dict]:
    """Every evaluation of notebook 03: the base, SFT and Vaccine models before any user
    fine-tuning, then each aligned model after the attack at every harmful ratio and seed."""
    out = [{"method": method, "harmful_ratio": None, "seed": None,
            "result": evaluate(p, judge, aligned_model(p, method), None)} for method in ("base", *ALIGNED)]
    for method in ALIGNED:
        for harmful_ratio in p["harmful_ratios"]:
            for seed in p["seeds"]:
                run = attack(p, method, harmful_ratio, seed)
                out.append({"method": method, "harmful_ratio": harmful_ratio, "seed": seed,
                            "result": evaluate(p, judge, aligned_model(p, method), run["adapter"])})
    return out


def judge(p: dict):
    """The HS judge and its validation. Offline: our EmbeddingJudge, trained on responses to the
    alignment and harmful_ft prompts and validated on the held-out harmful_eval prompts with
    phrasings it never saw; paper profile: beaver-dam-7b."""
    from alignlab.judge import EmbeddingJudge, make_judge

    if p["judge"] != "embedding":
        return make_judge(p["judge"]), {}
    s = splits(p)
    train = [r["prompt"] for r in s["alignment"] + s["harmful_ft"]]
    heldout = [r["prompt"] for r in s["harmful_eval"]]
    folder = stage_dir(p, "judge", train=train, heldout=heldout, seed=p["seed"], version=safety_data.VERSION)
    validation = read_json(folder / "validation.json")
    if validation is not None and (folder / "judge.npz").exists():
        j = EmbeddingJudge.load(folder / "judge.npz")
        j.accuracy = validation["accuracy"]
        return j, validation
    j = EmbeddingJudge().fit(train, seed=p["seed"])
    validation = j.validate(heldout, seed=p["seed"] + 1)
    j.save(folder / "judge.npz")
    write_json(folder / "validation.json", validation)
    return j, validation


# ---------------------------------------------------------------- extraction (05-07)

IVF_FROM = 200_000  # post-training sets at least this large get an IVF index (README: Scale-out)


def post_training_set(p: dict, target: str) -> str:
    """The post-training set an extraction target is searched against (``extraction_targets``)."""
    targets = p["extraction_targets"]
    if target not in targets:
        raise ValueError(f"{target!r} is not an extraction target; extraction_targets={targets}")
    return targets[target]


def extraction_model(p: dict, target: str) -> str:
    """"sft" / "vaccine" are notebook 01's aligned models; any other target is a hub id or a path
    (paper profile: OLMo 2 Instruct, searched against the Tulu 3 SFT mixture)."""
    return aligned_model(p, target) if target in ALIGNED else target


def post_training_texts(p: dict, target: str) -> list[str]:
    """A target's post-training set as the extraction study sees it: question and answer, one text
    each. "alignment" is this pipeline's alignment set; any other name is a dataset of alignlab.data."""
    from alignlab.data import load_dataset

    name = post_training_set(p, target)
    records = alignment_set(p) if name == "alignment" else load_dataset(name)
    return [f"{r['prompt']}\n{r['response']}" for r in records]


def post_training_index(p: dict, target: str):
    """The FAISS index of a target's post-training set, built once and reloaded with checks."""
    from alignlab.search import EmbeddingIndex, fingerprint

    texts = post_training_texts(p, target)
    folder = stage_dir(p, "index", texts=fingerprint(texts), model=p["embedding_model"])
    if (folder / "index").exists():
        try:
            return EmbeddingIndex.load(folder / "index", model=p["embedding_model"], texts=texts)
        except ValueError:
            pass  # a corrupt or mismatched index is rebuilt, never used
    index = EmbeddingIndex.build(texts, model=p["embedding_model"], kind="ivf" if len(texts) >= IVF_FROM else "flat")
    index.save(folder / "index")
    return index


def samples(p: dict, method: str, prefix: str) -> list[dict]:
    """``n_samples`` generations of an extraction target from a chat-template prefix alone (resumable)."""
    from alignlab.models import load_model
    from alignlab.sampling import sample

    aligned = extraction_model(p, method)
    store = stage_dir(p, "samples", aligned=aligned, prefix=prefix, seed=p["seed"],
                      max_new_tokens=p["sample_max_new_tokens"]) / "generations.jsonl"
    model, tokenizer = load_model(aligned)
    return sample(model, tokenizer, prefix, p["n_samples"], store, batch_size=p["sample_batch_size"],
                  max_new_tokens=p["sample_max_new_tokens"], seed=p["seed"])


def match(p: dict, method: str, prefix: str) -> list[dict]:
    """Per generation of a target: the nearest post-training sample by embedding, and the best
    string similarities over the whole post-training set."""
    from alignlab.sampling import sample_text
    from alignlab.search import fingerprint, string_similarity

    records = samples(p, method, prefix)
    corpus = post_training_texts(p, method)
    texts = [sample_text(r) for r in records]
    folder = stage_dir(p, "match", method=method, prefix=prefix, texts=texts, corpus=fingerprint(corpus),
                       model=p["embedding_model"])
    cached = read_json(folder / "match.json")
    if cached is not None:
        return cached
    scores, ids = post_training_index(p, method).search(texts, k=1)
    levenshtein = string_similarity(texts, corpus, metric="levenshtein")
    indel = string_similarity(texts, corpus, metric="indel")
    rows = [{"method": method, "prefix": prefix, "id": r["id"], "question": r["question"], "answer": r["answer"],
             "generation": t, "embedding": float(s[0]),
             "nearest": corpus[int(i[0])], "levenshtein": float(lv), "indel": float(idl)}
            for r, t, s, i, lv, idl in zip(records, texts, scores, ids, levenshtein, indel)]
    write_json(folder / "match.json", rows)
    return rows


def distill(p: dict, name: str, records: list[dict]) -> str:
    """The pre-alignment model fine-tuned (LoRA, merged) on ``records``: the distillation stage."""
    kw = dict(align_kw(p), epochs=p["distill_epochs"])
    out = stage_dir(p, "distill", name=name, model=p["model"], data=[(r["prompt"], r["response"]) for r in records], **kw)
    return str(align(p["model"], records, out, method="sft", **kw))


def generated_record(match_row: dict) -> dict:
    """A parsed generation (question, answer) as a training record."""
    from alignlab.data import record

    return record(match_row["question"], match_row["answer"], "",
                  f"generated:{match_row['method']}:{match_row['prefix']}", match_row["id"])
