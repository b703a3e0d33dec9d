"""Sample generations from a model given only a chat-template prefix.

"Extracting alignment data in open models" (Barbero et al., 2025) and Magpie (Xu et al., 2024):
feed a post-trained model the start of its chat template, e.g. ``<|im_start|>user\\n``, and it
writes a user question from its training distribution; give it the assistant header and it
answers. Each record is one (question, answer) sample to embed and match against the
post-training set.

    prefixes(tokenizer)          named prefix variants cut from the tokenizer's own chat template
    resolve_prefix(tok, x)       a variant name or an explicit prefix string -> the prefix text
    sample(model, tok, ...)      n records, streamed to a resumable append-only JSONL store
    parse_generation(text, tok)  raw text -> (question, answer)
    continuation_prompt(...)     the text to continue when a generation stopped inside the user turn
    sample_text(record)          what to embed: question + "\\n" + answer

Determinism: batch k always covers record ids [k*B, (k+1)*B) and is always generated with B rows
(rows past n are generated and thrown away), with torch seeded from (seed, k*B). So record i
depends only on (model, prefix, seed, sampling parameters, batch_size), never on n or on where a
run was killed; a resumed run regenerates the whole batch holding the first missing id and keeps
only the ids it lacks.
"""

import hashlib
import json
import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

from alignlab.data import ALPACA_PROMPT, DataError, has_chat_template
from alignlab.store import write_json, write_jsonl

NO_TEMPLATE_MSG = "tokenizer has no chat template; pass an explicit prefix string or use 'alpaca'"
TEMPLATE_PREFIXES = ("bare_start", "user_header")
PREFIX_NAMES = ("bare_start", "user_header", "bos", "alpaca")
ALPACA_PREFIX = ALPACA_PROMPT.split("{prompt}")[0]          # "Below is ... ### Instruction:\n"
ALPACA_RESPONSE = ALPACA_PROMPT.split("{prompt}")[1]        # "\n\n### Response:\n"
ALPACA_INSTRUCTION_MARK = "### Instruction:"
ALPACA_RESPONSE_MARK = "### Response:"
RECORD_FIELDS = ("id", "prefix", "text", "question", "answer", "seed")
MANIFEST_FIELDS = ("prefix", "seed", "temperature", "top_p", "max_new_tokens", "model", "batch_size",
                   "continue_user_turn")

# Sentinel message contents: rendered through the template, then located to cut it into markers.
_S, _U1, _A1, _U2 = "@@SYS0@@", "@@USER1@@", "@@ASST1@@", "@@USER2@@"


# ---------------------------------------------------------------- template markers

class _Markers:
    """Strings cut from one tokenizer's chat template (None fields when it has no template)."""

    def __init__(self, tokenizer):
        self.special = _special_tokens(tokenizer)
        self.lead = ""                 # conversation start the template emits once (a BOS), if any
        self.headers = {}              # role -> header as rendered, e.g. "user": "<|im_start|>user\n"
        self.turn_ends = []            # stripped end-of-turn markers, e.g. ["<|im_end|>"]
        self.assistant_open = None     # closes a user turn and opens the assistant's (continuation)
        self.bare_start = None
        if not has_chat_template(tokenizer):
            return

        def render(messages, generation_prompt=False):
            return tokenizer.apply_chat_template(messages, tokenize=False,
                                                 add_generation_prompt=generation_prompt)

        user1, asst1, user2 = ({"role": "user", "content": _U1}, {"role": "assistant", "content": _A1},
                               {"role": "user", "content": _U2})
        u_only = render([user1])
        u_gen = render([user1], generation_prompt=True)
        ua = render([user1, asst1])
        user_end = _after(u_only, _U1)                       # "<|im_end|>\n"
        assistant_end = _after(ua, _A1)                      # "<|im_end|>\n"
        self.assistant_open = _after(u_gen, _U1)             # "<|im_end|>\n<|im_start|>assistant\n"
        self.headers["assistant"] = _strip_common_prefix(self.assistant_open, user_end)
        # The user header is cut from a *second* user turn: the text between the first assistant
        # answer and the second question is (end of assistant turn) + (user header). Cutting the
        # first user turn instead would drag in what the template puts before it, e.g. SmolLM2's
        # default system turn "<|im_start|>system\nYou are a helpful AI assistant ...<|im_end|>\n".
        try:
            uau = render([user1, asst1, user2])
            between = uau[uau.index(_A1) + len(_A1):uau.index(_U2)]
            user_header = _strip_common_prefix(between, assistant_end)
        except Exception:  # a template refusing multi-turn: cut after the last end of turn instead
            before = u_only[:u_only.index(_U1)]
            user_header = before.rsplit(user_end, 1)[-1] if user_end.strip() else before
        try:
            su = render([{"role": "system", "content": _S}, user1])
            self.headers["system"] = su[:su.index(_S)]
        except Exception:  # templates without a system role (Gemma) raise
            pass
        # A BOS the template writes once at the start of the conversation (Llama 3, OLMo 2) belongs
        # in the prefix, as it is in the paper's `<|endoftext|><|user|>`; SmolLM2 has none (its
        # bos_token is `<|im_start|>` itself, already the start of the header).
        bos = tokenizer.bos_token
        if bos and u_only.startswith(bos) and not user_header.startswith(bos):
            self.lead = bos
        self.headers["user"] = user_header
        if "system" in self.headers and self.lead and self.headers["system"].startswith(self.lead):
            self.headers["system"] = self.headers["system"][len(self.lead):]
        self.turn_ends = [m for m in dict.fromkeys((user_end.strip(), assistant_end.strip())) if m]
        self.bare_start = self.lead + _bare_start(user_header, self.special)


def _after(text: str, sentinel: str) -> str:
    return text[text.index(sentinel) + len(sentinel):]


def _strip_common_prefix(text: str, other: str) -> str:
    return text[len(os.path.commonprefix([text, other])):]


def _special_tokens(tokenizer) -> list[str]:
    tokens = set(tokenizer.all_special_tokens)
    for tok in getattr(tokenizer, "added_tokens_decoder", {}).values():
        if getattr(tok, "special", False):
            tokens.add(str(tok))
    return sorted((t for t in tokens if t), key=len, reverse=True)


def _bare_start(header: str, special: list[str]) -> str:
    """The start-of-turn marker alone: the header cut just before the role name when the name
    follows a marker token (`<|im_start|>` in ChatML, `<|start_header_id|>` in Llama 3). When the
    role name is part of the marker itself (OLMo 2's `<|user|>`), there is no role-free start
    token: the header without its trailing whitespace."""
    ends = set()
    for tok in special:
        start = header.find(tok)
        while start >= 0:
            ends.add(start + len(tok))
            start = header.find(tok, start + 1)
    pos = header.find("user")
    while pos > 0:
        if pos in ends or header[pos - 1] == ">":
            return header[:pos]
        pos = header.find("user", pos + 1)
    return header.rstrip() or header


_MARKERS_CACHE: dict = {}


def _markers(tokenizer) -> _Markers:
    key = (getattr(tokenizer, "chat_template", None), tokenizer.bos_token, tokenizer.eos_token,
           tuple(tokenizer.all_special_tokens), len(tokenizer))
    if key not in _MARKERS_CACHE:
        if len(_MARKERS_CACHE) > 64:
            _MARKERS_CACHE.clear()
        _MARKERS_CACHE[key] = _Markers(tokenizer)
    return _MARKERS_CACHE[key]


# ---------------------------------------------------------------- prefixes

def prefixes(tokenizer) -> dict[str, str]:
    """Named prefix variants, cut from the tokenizer's own chat template (nothing hard-coded):

        bare_start   the start-of-turn token alone: `<|im_start|>` for ChatML (for templates whose
                     turn marker names the role, OLMo 2's `<|user|>`, the marker without its newline)
        user_header  the user turn header: `<|im_start|>user\\n` for ChatML (plus a BOS the template
                     writes once at the conversation start, e.g. Llama 3's `<|begin_of_text|>`)
        bos          the BOS token alone, a control; the EOS token when the tokenizer has no BOS
                     (e.g. `<|endoftext|>`). Note: SmolLM2 declares bos_token = `<|im_start|>`, so
                     for it "bos" is the same string as "bare_start".
        alpaca       the Alpaca header ("Below is an instruction ... ### Instruction:\\n"), for
                     template-less base models

    A tokenizer without a chat template gets only "alpaca" and "bos".
    """
    out = {}
    markers = _markers(tokenizer)
    if markers.bare_start is not None:
        out["bare_start"] = markers.bare_start
        out["user_header"] = markers.lead + markers.headers["user"]
    control = tokenizer.bos_token or tokenizer.eos_token
    if control:
        out["bos"] = control
    out["alpaca"] = ALPACA_PREFIX
    return out


def resolve_prefix(tokenizer, name_or_text: str, explicit: bool = False) -> str:
    """The prefix text for a variant name ("bare_start", "user_header", "bos", "alpaca") or an
    explicit prefix string.

    A string that is a known name is that variant. Any other string is taken literally if it
    contains a character that cannot appear in a Python identifier (`<|im_start|>user\\n`, "### ");
    an identifier-like string ("user_headr") is refused as an unknown name, so a typo never becomes
    a prefix. Pass explicit=True to use any string literally, e.g. "Question".
    """
    if not isinstance(name_or_text, str):
        raise TypeError(f"prefix must be a string, got {type(name_or_text).__name__}")
    if not name_or_text:
        raise ValueError("empty prefix: pass a variant name " f"{PREFIX_NAMES} or a non-empty prefix string")
    if explicit:
        return name_or_text
    if name_or_text in PREFIX_NAMES:
        available = prefixes(tokenizer)
        if name_or_text not in available:
            if name_or_text in TEMPLATE_PREFIXES:
                raise ValueError(NO_TEMPLATE_MSG)
            raise ValueError(f"prefix {name_or_text!r} is not available for this tokenizer (it has neither "
                             "a BOS nor an EOS token); pass an explicit prefix string or use 'alpaca'")
        return available[name_or_text]
    if name_or_text.isidentifier():
        raise ValueError(f"unknown prefix name {name_or_text!r}: use one of {PREFIX_NAMES}, or pass "
                         "explicit=True to use it literally as the prefix text")
    return name_or_text


# ---------------------------------------------------------------- parsing

def _strip_special(text: str, special: list[str]) -> str:
    for tok in special:
        text = text.replace(tok, "")
    return text.strip()


def _chat_turns(text: str, markers: _Markers) -> list[tuple[str, int, int]]:
    """(role, header start, content start) for every role header in text, in order. Headers are
    matched without trailing whitespace, so `<|im_start|>user` followed by a space still counts."""
    found = []
    for role, header in markers.headers.items():
        needle = header.rstrip()
        if not needle:
            continue
        pos = text.find(needle)
        while pos >= 0:
            found.append((pos, pos + len(needle), role))
            pos = text.find(needle, pos + len(needle))
    found.sort()
    turns, last_end = [], -1
    for start, end, role in found:
        if start >= last_end:  # headers never overlap; keep the first of overlapping matches
            turns.append((role, start, end))
            last_end = end
    return turns


def _turn_content(text: str, start: int, stop: int, markers: _Markers) -> str:
    segment = text[start:stop]
    for end in markers.turn_ends:
        cut = segment.find(end)
        if cut >= 0:
            segment = segment[:cut]
    return _strip_special(segment, markers.special)


def _structure(text: str, tokenizer):
    """(question, answer, kind, open_question): kind is "chat", "alpaca" or None; open_question is
    True when the text ends inside the question turn (nothing after it), i.e. Magpie's case."""
    markers = _markers(tokenizer)
    turns = _chat_turns(text, markers) if markers.headers else []
    alpaca_at = text.find(ALPACA_INSTRUCTION_MARK)
    if turns and (alpaca_at < 0 or turns[0][1] < alpaca_at):
        contents = []
        for k, (role, _, content_start) in enumerate(turns):
            stop = turns[k + 1][1] if k + 1 < len(turns) else len(text)
            contents.append((role, _turn_content(text, content_start, stop, markers)))
        roles = [r for r, _ in contents]
        q = roles.index("user") if "user" in roles else 0
        answer = contents[q + 1][1] if q + 1 < len(contents) and roles[q + 1] == "assistant" else ""
        open_question = q == len(contents) - 1 and roles[q] == "user"
        return contents[q][1], answer, "chat", open_question
    if alpaca_at >= 0:
        body = text[alpaca_at + len(ALPACA_INSTRUCTION_MARK):]
        nxt = body.find(ALPACA_INSTRUCTION_MARK)
        if nxt >= 0:
            body = body[:nxt]
        question, has_response, answer = body.partition(ALPACA_RESPONSE_MARK)
        special = markers.special
        return _strip_special(question, special), _strip_special(answer, special), "alpaca", not has_response
    return _strip_special(text, markers.special), "", None, False


def parse_generation(text: str, tokenizer) -> tuple[str, str]:
    """(question, answer) of a raw text (prefix + generation, special tokens kept).

    Chat: the text is cut into turns at the template's role headers; the question is the first
    user turn's content (the first turn's, if there is no user turn) and the answer the content of
    the turn right after it if that is an assistant turn, else "". Contents stop at the
    end-of-turn marker (`<|im_end|>`), lose special tokens and surrounding whitespace.
    Alpaca: "### Instruction:" ... "### Response:" ...; whichever structure starts first wins.
    No structure at all: question = the whole text without special tokens, answer = "".
    """
    question, answer, _, _ = _structure(text, tokenizer)
    return question, answer


def continuation_prompt(text: str, tokenizer) -> str | None:
    """The text to continue so a generation that stopped inside the user turn gets an answer, or
    None when there is nothing to continue (an answer exists, or no question turn is open).

    Chat: trailing end-of-turn / EOS tokens are dropped and the template's own
    "close user turn + assistant header" appended (`<|im_end|>\\n<|im_start|>assistant\\n` for
    ChatML, the text after the user content in a render with add_generation_prompt=True); a
    question cut off by max_new_tokens is closed the same way. Alpaca: "\\n\\n### Response:\\n".
    """
    _, answer, kind, open_question = _structure(text, tokenizer)
    if answer or not open_question:
        return None
    markers = _markers(tokenizer)
    # trailing end-of-turn markers and special tokens (EOS, `<|endoftext|>`, a dangling `<|im_start|>`)
    ends = [m for m in markers.turn_ends + markers.special if m]
    trimmed, changed = text, True
    while changed:
        changed = False
        for end in ends:
            if trimmed.rstrip().endswith(end):
                trimmed, changed = trimmed.rstrip()[:-len(end)], True
    if kind == "chat":
        return trimmed + markers.assistant_open
    return trimmed.rstrip() + ALPACA_RESPONSE


def sample_text(record: dict) -> str:
    """The text to embed and match: question + "\\n" + answer, or the question alone."""
    question, answer = record.get("question", ""), record.get("answer", "")
    return f"{question}\n{answer}" if answer else question


# ---------------------------------------------------------------- store

def _manifest_path(store: Path) -> Path:
    return store.with_name(store.name + ".meta.json")


def _load_store(store: Path) -> dict[int, dict]:
    """id -> record. A truncated last line (a run killed mid-write) is dropped and the file
    rewritten without it; a bad line elsewhere is a DataError naming the line."""
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
    records = _load_store(store)
    _check_manifest(store, meta, has_records=bool(records))

    missing = [i for i in range(n) if i not in records]
    starts = sorted({i - i % batch_size for i in missing})
    config, eos = _generation_config(model, tokenizer, max_new_tokens, temperature, top_p)
    with tqdm(total=n, initial=n - len(missing), desc="sampling", leave=False) as bar, \
            open(store, "a", encoding="utf-8") as f:
        for start in starts:
            # Always the full batch, whatever n: record i never depends on the batch it shared.
            texts = _sample_batch(model, tokenizer, prefix_text, batch_size, _batch_seed(seed, start),
                                  config, eos, continue_user_turn)
            new = []
            for i, text in enumerate(texts, start):
                if i >= n or i in records:
                    continue
                question, answer = parse_generation(text, tokenizer)
                records[i] = {"id": i, "prefix": prefix_text, "text": text, "question": question,
                              "answer": answer, "seed": seed}
                new.append(records[i])
            f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in new))
            f.flush()
            os.fsync(f.fileno())
            bar.update(len(new))
    return [records[i] for i in range(n)]
