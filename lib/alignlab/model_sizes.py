"""The size and shape of every model a profile can name, from each model's config.json: what
:mod:`alignlab.plan` costs a stage by."""

from dataclasses import dataclass

from alignlab.profile import ConfigError


@dataclass(frozen=True)
class Model:
    params: float
    layers: int
    hidden: int
    intermediate: int
    vocab: int
    dim: int = 0  # sentence-embedding dimension (encoders)
    hub_bytes_per_param: float = 2  # as stored on the hub (bf16 / fp16 safetensors; bge-m3 and MiniLM fp32)


MODEL_PARAMS = {  # id -> size and shape, from each model's config.json
    "meta-llama/Llama-2-7b-hf": Model(6.7e9, 32, 4096, 11008, 32000),
    "PKU-Alignment/beaver-dam-7b": Model(6.7e9, 32, 4096, 11008, 32000),  # Llama-7B with a score head
    "allenai/OLMo-2-1124-7B-Instruct": Model(7.3e9, 32, 4096, 11008, 100352),
    "Qwen/Qwen2.5-7B": Model(7.6e9, 28, 3584, 18944, 152064),
    "Open-Reasoner-Zero/Open-Reasoner-Zero-7B": Model(7.6e9, 28, 3584, 18944, 152064),  # Qwen2.5-7B after RL
    "BAAI/bge-m3": Model(0.57e9, 24, 1024, 4096, 250002, dim=1024, hub_bytes_per_param=4),  # XLM-R large
    "smollm2-135m-instruct": Model(0.135e9, 30, 576, 1536, 49152),
    "tiny-random-llama": Model(3.2e6, 2, 64, 128, 49152),  # 3.1e6 of it the tied 49152 x 64 embedding
    "all-MiniLM-L6-v2": Model(22.7e6, 6, 384, 1536, 30522, dim=384, hub_bytes_per_param=4),
}
ALIASES = {"HuggingFaceTB/SmolLM2-135M-Instruct": "smollm2-135m-instruct",
           "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2"}


class UnknownModel(ConfigError):
    """A model id whose size the planner does not know."""


def model_size(model_id: str) -> Model:
    name = ALIASES.get(model_id, model_id)
    if name not in MODEL_PARAMS:
        raise UnknownModel(f"alignlab.plan does not know the size of model {model_id!r}: add it to "
                           f"MODEL_PARAMS in lib/alignlab/model_sizes.py (params, layers, hidden, intermediate, vocab "
                           f"from its config.json); known: {sorted(MODEL_PARAMS)}")
    return MODEL_PARAMS[name]


def lora_params(m: Model, r: int) -> float:
    """LoRA on every linear layer of a Llama-style block: r x (d_in + d_out) each; q, k, v, o at
    hidden x hidden (GQA's narrower k, v ignored: an upper bound), gate, up, down at hidden x intermediate."""
    return r * m.layers * (4 * 2 * m.hidden + 3 * (m.hidden + m.intermediate))
