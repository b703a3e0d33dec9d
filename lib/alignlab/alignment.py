"""The alignment stage both studies build on: a merged LoRA fine-tuning of the profile's model on
the run's alignment set. Plain SFT gives notebook 01's SFT model, which the extraction study also
searches for its post-training data; the Vaccine study passes its own trainer (``spec``) and code
for its perturbed alignments."""

import dataclasses

from alignlab.cache import record_ids, stage_dir, timed
from alignlab.profile import Profile, Run
from alignlab.training import LoraSettings, TrainerSpec, align

# The code an alignment runs: its source is hashed into the stage's key (alignlab.cache.code_version).
TRAINING = ("training", "shards", "chat", "models")
# The Vaccine study's methods: trained by alignlab.vaccine.stages, never resolvable by name here.
VACCINE_METHODS = ("vaccine", "random_vaccine", "kl", "ewc", "vlguard")


def align_settings(p: Profile) -> LoraSettings:
    """The profile's alignment recipe (LoRA, optimiser, precision, checkpoints)."""
    return LoraSettings(lr=p.lr, epochs=p.align_epochs, batch_size=p.batch_size, max_length=p.max_length,
                        lora_r=p.lora_r, lora_alpha=p.lora_alpha, lora_dropout=p.lora_dropout,
                        weight_decay=p.weight_decay, warmup_ratio=p.warmup_ratio, seed=p.seed,
                        gradient_checkpointing=p.gradient_checkpointing, bf16=p.bf16,
                        group_by_length=p.group_by_length, save_steps=p.save_steps, logging_steps=p.logging_steps)


def aligned_model(run: Run, method: str = "sft", *, seed: int = 0, code: tuple[str, ...] = TRAINING,
                  rho: float | None = None, spec: TrainerSpec | None = None, epochs: int | None = None,
                  records: list[dict] | None = None) -> str:
    """Path of the merged model aligned by ``method`` in run ``seed``: trained with seed
    ``profile.seed + seed`` (LoRA init, dropout, batch order), resumable and cached under a key of
    the method, ``rho``, the data, the settings and the source of ``code``. ``epochs`` and ``records``
    override the profile's ``align_epochs`` and the run's alignment set (the extraction study's
    doses); at their defaults the key is unchanged."""
    if method != "sft" and (spec is None or code == TRAINING):
        raise ValueError(f"method {method!r} needs its trainer (spec) and the code it runs (code), or it would "
                         "train plain SFT under another name: call alignlab.vaccine.stages.aligned_model")
    p = run.profile
    settings = dataclasses.replace(align_settings(p), seed=p.seed + seed, epochs=epochs or p.align_epochs)
    data = run.splits.alignment_set if records is None else records
    out = stage_dir(p.name, "align", code=code, model=p.model, method=method, rho=rho, data=record_ids(data),
                    settings=settings)
    with timed(p.name, "align"):
        return str(align(p.model, data, out, method=method, settings=settings, spec=spec or TrainerSpec()))


def model_path(run: Run, name: str) -> str:
    """A model both studies can name: "base" is the profile's model before alignment, "sft" its
    SFT-aligned model (first run seed); any other name is a hub id or a local path."""
    if name == "base":
        return run.profile.model
    if name == "sft":
        return aligned_model(run, seed=run.profile.seeds[0])
    if name in VACCINE_METHODS:
        raise ValueError(f"{name!r} is a Vaccine-study method, trained by alignlab.vaccine.stages: pass its merged "
                         "model's path instead of its name")
    return name
