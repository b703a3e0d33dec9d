"""Run profiles (configs/{smoke,cpu,paper}.yaml) and validation of their values.

A profile is one flat YAML mapping of notebook parameters: papermill injects it with
``-f configs/<profile>.yaml`` and each notebook takes the names it declares. Notebooks call
:func:`validate` on their parameters so that a bad value fails before any work starts.
"""

import os
import random
from pathlib import Path

import numpy as np
import yaml

from alignlab import paths

PROFILES = ("smoke", "cpu", "paper")

# Names whose values must lie in [0, 1] (fractions) or be >= 0 (counts, rates, radii).
_FRACTIONS = {"harmful_ratio", "top_p", "threshold", "warmup_ratio"}
_FRACTION_LISTS = {"harmful_ratios", "thresholds"}
_NON_NEGATIVE = {
    "rho", "n_align", "n_align_helpful", "n_finetune", "n_eval", "n_task_eval", "n_samples", "max_new_tokens",
    "align_epochs", "finetune_epochs", "batch_size", "lr", "finetune_lr", "temperature",
    "max_length", "weight_decay", "lora_r", "lora_alpha", "seed", "n_distill",
}
_NON_NEGATIVE_LISTS = {"rhos", "seeds"}


class ConfigError(ValueError):
    """A profile or parameter value that cannot be used."""


def load_profile(name: str) -> dict:
    """The parameters of a named profile, or of a YAML file given by path."""
    path = Path(name)
    if name in PROFILES:
        path = paths.CONFIGS / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown profile {name!r}: use one of {PROFILES} or a path to a YAML file")
    with open(path) as f:
        params = yaml.safe_load(f) or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: a profile must be a mapping of parameter names to values")
    return validate(params, source=str(path))


def validate(params: dict, source: str = "parameters") -> dict:
    """Check every known parameter's range; return ``params`` unchanged."""
    def fail(key, value, rule):
        raise ConfigError(f"{source}: {key}={value!r} is invalid: {rule}")

    for key, value in params.items():
        values = value if key in _FRACTION_LISTS | _NON_NEGATIVE_LISTS else [value]
        if key in _FRACTION_LISTS | _NON_NEGATIVE_LISTS and not isinstance(value, (list, tuple)):
            fail(key, value, "expected a list")
        for v in values:
            if key in _FRACTIONS | _FRACTION_LISTS | _NON_NEGATIVE | _NON_NEGATIVE_LISTS:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    fail(key, v, "expected a number")
            if key in _FRACTIONS | _FRACTION_LISTS and not 0 <= v <= 1:
                fail(key, v, "must lie in [0, 1]")
            if key in _NON_NEGATIVE | _NON_NEGATIVE_LISTS and v < 0:
                fail(key, v, "must be >= 0")
    if "profile" in params and params["profile"] not in PROFILES:
        fail("profile", params["profile"], f"must be one of {PROFILES}")
    return params


def offline_mode(profile: str) -> None:
    """The smoke and cpu profiles never touch the network, so nothing can hang on a hub."""
    if profile != "paper":
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def seed_everything(seed: int) -> None:
    """One seed per run: Python, NumPy and torch (CPU) all follow it."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_run(params: dict) -> dict:
    """What every notebook does first: validate, go offline, seed, and print the config."""
    validate(params)
    offline_mode(params.get("profile", "smoke"))
    seed_everything(int(params.get("seed", 0)))
    import transformers

    transformers.utils.logging.disable_progress_bar()  # per-load bars; long stages keep their own tqdm
    width = max(map(len, params), default=0)
    for key, value in params.items():
        print(f"{key:<{width}} = {value!r}")
    return params
