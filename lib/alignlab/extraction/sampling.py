"""Sample generations from a model given only a chat-template prefix (templates: alignlab.chat).

"Extracting alignment data in open models" (Barbero et al., 2025) and Magpie (Xu et al., 2024):
feed a post-trained model the start of its chat template, e.g. ``<|im_start|>user\\n``, and it
writes a user question from its training distribution; give it the assistant header and it
answers. Each record is one (question, answer) sample to embed and match against the
post-training set.

    sample(model, tok, ...)      n records, streamed to a resumable append-only JSONL store

Determinism: batch k always covers record ids [k*B, (k+1)*B) and is always generated with B rows
(rows past n are generated and thrown away), with torch seeded from (seed, k*B). So record i
depends only on (model, prefix, seed, sampling parameters, batch_size), never on n or on where a
run was killed; a resumed run regenerates the whole batch holding the first missing id and keeps
only the ids it lacks.
"""

import contextlib
import hashlib
import json
import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

from alignlab.cache import write_json, write_jsonl
from alignlab.chat import continuation_prompt, parse_generation, resolve_prefix
from alignlab.data import DataError
from alignlab.shards import deal, processes, write_on_main

RECORD_FIELDS = ("id", "prefix", "text", "question", "answer", "seed")
MANIFEST_FIELDS = ("prefix", "seed", "temperature", "top_p", "max_new_tokens", "model", "batch_size",
                   "continue_user_turn")

# ---------------------------------------------------------------- store

def _manifest_path(store: Path) -> Path:
    return store.with_name(store.name + ".meta.json")


def _load_store(store: Path, repair: bool = True) -> dict[int, dict]:
    """id -> record. A truncated last line (a run killed mid-write) is dropped and the file
    rewritten without it (``repair=False``: a DataError instead, and the file is left as it is);
    a bad line elsewhere is a DataError naming the line."""
    if not store.exists():
        return {}
    raw = store.read_text(encoding="utf-8")
    lines = raw.split("\n")
    # After split, a complete file ends with "" (its final newline); anything else is a partial line.
    tail_partial = lines[-1] != ""
    body = lines[:-1]
    records, dropped = {}, tail_partial
    for lineno, line in enumerate(body, 1):
        if not line.strip():
            dropped = True
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if lineno == len(body) and not tail_partial:
                dropped = True  # a last line cut short right before its newline
                continue
            raise DataError(f"{store}:{lineno}: not valid JSON ({e.msg}); the store is corrupt, "
                            "delete it to start over") from None
        missing = [k for k in RECORD_FIELDS if not isinstance(row, dict) or k not in row]
        if missing:
            raise DataError(f"{store}:{lineno}: missing field(s) {missing}; not a sampling store")
        if row["id"] in records:
            dropped = True  # never keep two records with one id: the first written wins
            continue
        records[row["id"]] = row
    if dropped and not repair:
        raise DataError(f"{store}: a line to drop (cut short, blank or a repeated id); sample() repairs it")
    if dropped:
        write_jsonl(store, records.values())
    return records


def _check_manifest(store: Path, meta: dict, has_records: bool) -> None:
    manifest = _manifest_path(store)
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            old = None
        if has_records:
            if not isinstance(old, dict):
                raise ValueError(f"{manifest} is unreadable, so the records in {store} cannot be checked; "
                                 f"delete {store} and {manifest} to start over")
            for field in MANIFEST_FIELDS:
                if old.get(field) != meta[field]:
                    raise ValueError(
                        f"{store} was sampled with {field}={old.get(field)!r} but this run asks "
                        f"{field}={meta[field]!r}; resuming would mix two samplings. Delete {store} and "
                        f"{manifest} to start over, or pass another store_path")
            return
    elif has_records:
        raise ValueError(f"{store} holds records but has no manifest {manifest.name}, so its sampling "
                         f"parameters are unknown; delete {store} to start over")
    write_json(manifest, meta)


def model_fingerprint(model) -> str:
    """The model's name plus a hash of an evenly strided sample of every parameter: tells a
    fine-tuned checkpoint from its base without reading all weights."""
    name = getattr(model.config, "_name_or_path", "") or getattr(model, "name_or_path", "") or ""
    h = hashlib.sha256(type(model).__name__.encode())
    with torch.no_grad():
        for pname, p in model.named_parameters():
            flat = p.detach().reshape(-1)
            step = max(1, flat.numel() // 256)
            h.update(pname.encode())
            h.update(str(tuple(p.shape)).encode() + str(p.dtype).encode())
            h.update(flat[::step][:256].float().cpu().numpy().tobytes())
    return f"{name or type(model).__name__}#{h.hexdigest()[:16]}"


# ---------------------------------------------------------------- generation

def _batch_seed(seed: int, start: int) -> int:
    digest = hashlib.sha256(f"alignlab.sampling:{seed}:{start}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _generation_config(model, tokenizer, max_new_tokens, temperature, top_p):
    from transformers import GenerationConfig

    eos = model.generation_config.eos_token_id
    eos = list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    sampling = temperature > 0
    # Every filter set explicitly: a None would be filled from the model's generation_config or
    # transformers' defaults (top_k=50!), and the paper samples from the full distribution.
    extra = dict(temperature=float(temperature), top_p=float(top_p), top_k=0) if sampling else {}
    if sampling and getattr(model.generation_config, "min_p", None) is not None:
        extra["min_p"] = 0.0  # only when the model sets one: a min_p warper costs time even at 0
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=sampling, num_beams=1,
                              repetition_penalty=1.0, no_repeat_ngram_size=0, typical_p=1.0,
                              epsilon_cutoff=0.0, eta_cutoff=0.0, eos_token_id=eos, pad_token_id=pad,
                              **extra)
    return config, set(eos)


def _decode_new(tokenizer, ids: torch.Tensor, eos: set) -> str:
    """Generated ids up to and including the first EOS (what follows is padding)."""
    ids = ids.tolist()
    for k, t in enumerate(ids):
        if t in eos:
            ids = ids[:k + 1]
            break
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def _generate(model, tokenizer, texts: list[str], config, eos: set) -> list[str]:
    """One batched generate over texts (left padded); returns each text + its continuation."""
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        enc = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt").to(model.device)
    finally:
        tokenizer.padding_side = side
    if enc["input_ids"].shape[1] == 0:
        raise ValueError(f"prefix {texts[0]!r} tokenises to no tokens")
    out = model.generate(**enc, generation_config=config)
    width = enc["input_ids"].shape[1]
    return [text + _decode_new(tokenizer, row[width:], eos) for text, row in zip(texts, out)]


def _sample_batch(model, tokenizer, prefix, rows, batch_seed, config, eos, continue_user_turn):
    devices = [model.device.index or 0] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.inference_mode():
        torch.manual_seed(batch_seed)
        texts = _generate(model, tokenizer, [prefix] * rows, config, eos)
        if continue_user_turn:
            todo = [(r, c) for r, t in enumerate(texts) if (c := continuation_prompt(t, tokenizer)) is not None]
            if todo:
                done = _generate(model, tokenizer, [c for _, c in todo], config, eos)
                for (r, _), text in zip(todo, done):
                    texts[r] = text
    return texts


def stored_records(store_path, n: int, **parameters) -> list[dict] | None:
    """The first n records of a store that already holds them all, sampled with ``parameters``
    (manifest fields such as prefix, seed, batch_size), else None: a caller can skip loading the
    model. Nothing is repaired or rewritten here; on None, :func:`sample` repairs the store, or
    refuses one sampled otherwise with an error that says so."""
    store = Path(store_path)
    if not store.exists() or not _manifest_path(store).exists():
        return None
    try:
        manifest = json.loads(_manifest_path(store).read_text(encoding="utf-8"))
        if any(manifest.get(field) != value for field, value in parameters.items()):
            return None
        records = _load_store(store, repair=False)
    except (json.JSONDecodeError, DataError, AttributeError):
        return None  # a store to repair or refuse: sample() does it, saying why
    return [records[i] for i in range(n)] if all(i in records for i in range(n)) else None


def sample(model, tokenizer, prefix: str, n: int, store_path, *, batch_size: int = 16,
           max_new_tokens: int = 128, temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
           continue_user_turn: bool = True, explicit_prefix: bool = False) -> list[dict]:
    """Generate n records from a prefix alone, streamed to an append-only JSONL store.

    prefix: a variant name or prefix text (see resolve_prefix; explicit_prefix=True takes it
    literally). Tokenised with add_special_tokens=False. temperature == 0 is greedy decoding.

    Each record is {"id", "prefix", "text" (prefix + generation, special tokens kept), "question",
    "answer", "seed" (the run's seed)}. With continue_user_turn, a generation that stops inside
    the user turn (answer empty) is continued after the template's assistant header in a second
    batched generate with the same sampling parameters (Magpie), so a record holds a whole sample.

    The store is resumable: a run killed at any point, or asked for a larger n later, continues
    from the first missing id and yields the same records as one uninterrupted run (see the module
    docstring). `<store>.meta.json` records the sampling parameters; a store written with other
    parameters is refused with a ValueError. Returns the n records in id order.
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if prefix == "":
        raise ValueError("empty prefix: the model needs at least one token to start from")
    prefix_text = resolve_prefix(tokenizer, prefix, explicit=explicit_prefix)

    store = Path(store_path)
    store.parent.mkdir(parents=True, exist_ok=True)
    meta = {"prefix": prefix_text, "seed": seed, "temperature": float(temperature), "top_p": float(top_p),
            "max_new_tokens": max_new_tokens, "model": model_fingerprint(model), "batch_size": batch_size,
            "continue_user_turn": bool(continue_user_turn)}
    # Under accelerate launch the main process repairs the store and checks its manifest, and
    # alone appends to it; every process samples its share of the batches (alignlab.shards).
    group = processes()
    records = {}

    def check_store():  # may rewrite a store cut short mid-line, so only the main process runs it
        records.update(_load_store(store))
        _check_manifest(store, meta, has_records=bool(records))

    write_on_main(check_store)
    if not group.is_main_process:
        records = _load_store(store)  # repaired and checked by the main process
    main = group.is_main_process

    missing = [i for i in range(n) if i not in records]
    starts = sorted({i - i % batch_size for i in missing})
    config, eos = _generation_config(model, tokenizer, max_new_tokens, temperature, top_p)

    def sample_batch(start):
        # Always the full batch, whatever n: record i never depends on the batch it shared.
        return _sample_batch(model, tokenizer, prefix_text, batch_size, _batch_seed(seed, start),
                             config, eos, continue_user_turn)

    with tqdm(total=n, initial=n - len(missing), desc="sampling", leave=False, disable=not main) as bar, \
            (open(store, "a", encoding="utf-8") if main else contextlib.nullcontext()) as f:
        for start, texts in deal(starts, sample_batch):
            new = []
            for i, text in enumerate(texts, start):
                if i >= n or i in records:
                    continue
                question, answer = parse_generation(text, tokenizer)
                records[i] = {"id": i, "prefix": prefix_text, "text": text, "question": question,
                              "answer": answer, "seed": seed}
                new.append(records[i])
            if main:
                f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in new))
                f.flush()
                os.fsync(f.fileno())
            bar.update(len(new))
    group.wait_for_everyone()
    return [records[i] for i in range(n)]
