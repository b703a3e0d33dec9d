"""A profile checked in seconds against what its run will need, before any stage starts: every split
within the rows its source holds, enough harmful samples for the harmful ratios, every post-training
set loadable, and the planned disk (:func:`alignlab.plan.plan`) within the free disk.

    python -m alignlab.preflight --profile paper [--gpu H100] [--free-disk-gb N]
    preflight("paper")   # raises ConfigError listing every problem, with its value and fix
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys

from alignlab import paths
from alignlab.plan import GPUS, alignment_size, dataset_rows, distill_size, plan
from alignlab.profile import DOSE_SET, ConfigError, Profile, load_profile

@functools.lru_cache(maxsize=1)
def _harmful_prompt_count() -> int:
    from alignlab import data

    return len(data.harmful_prompts())


def _split_problems(p: Profile) -> tuple[list[str], list[str]]:
    from alignlab import data

    problems, warnings = [], []

    def need(what: str, asked: int, source: str, rows_of) -> None:
        try:
            rows = rows_of()
        except KeyError as e:
            warnings.append(f"{what}: not checked ({e.args[0]})")
            return
        except ConfigError as e:
            problems.append(f"{what}: {e}")
            return
        if asked > rows:
            problems.append(f"{what} = {asked} but {source} holds {rows:,} rows: lower it to <= {rows:,}")

    if p.safety_source == "offline":
        need(f"n_align + n_harmful_ft + n_harmful_eval ({p.n_align} + {p.n_harmful_ft} + {p.n_harmful_eval})",
             p.n_align + p.n_harmful_ft + p.n_harmful_eval, "AdvBench + HarmBench + Do-Not-Answer (deduplicated)",
             _harmful_prompt_count)
    else:
        for field, name in (("n_align", "beavertails_safe"), ("n_harmful_ft", "beavertails_unsafe"),
                            ("n_harmful_eval", "beavertails_test")):
            need(field, getattr(p, field), f"{name} (at least; ROW_FRACTION)", lambda name=name: dataset_rows(name))
    train_split = getattr(data, "HUB_TASK_TRAIN", {}).get(p.task)
    if train_split:  # a hub task trains on its train split and evaluates on its held-out one
        need("n_finetune", p.n_finetune, f"{train_split}", lambda: dataset_rows(train_split))
        need("n_task_eval", p.n_task_eval, f"{p.task}", lambda: dataset_rows(p.task))
    else:
        need(f"n_finetune + n_task_eval ({p.n_finetune} + {p.n_task_eval})", p.n_finetune + p.n_task_eval,
             f"task {p.task!r}", lambda: dataset_rows(p.task))
    sources = p.helpful_sources
    benign = p.n_align_helpful + p.n_benign_eval
    if benign:
        taken = p.n_finetune + p.n_task_eval if "gsm8k" in sources and p.task in ("gsm8k", "gsm8k_hub") else 0
        need(f"n_align_helpful + n_benign_eval ({p.n_align_helpful} + {p.n_benign_eval})", benign,
             f"{' + '.join(sources)} less the task's {taken} rows",
             lambda: sum(dataset_rows(s) for s in sources) - taken)
    for ratio in dict.fromkeys((*p.harmful_ratios, *p.check_ratios, p.rho_sweep_ratio)):
        k = int(ratio * p.n_finetune)  # vaccine.stages.attack_data
        if k > p.n_harmful_ft:
            problems.append(f"harmful ratio {ratio} x n_finetune {p.n_finetune} needs {k} harmful samples but "
                            f"n_harmful_ft = {p.n_harmful_ft}: raise n_harmful_ft to >= {k} or lower the ratio")
    for target, name in p.extraction_targets.items():
        if name in ("alignment", DOSE_SET) or name in data.OFFLINE_LOADERS:
            continue
        if name not in data.HUB_DATASETS:
            problems.append(f"extraction_targets[{target!r}] = {name!r} is not a dataset alignlab.data can load: "
                            f"use 'alignment', {sorted(data.OFFLINE_LOADERS)} or {sorted(data.HUB_DATASETS)}")
        elif p.offline and not p.hub_mirror:
            problems.append(f"extraction_targets[{target!r}] = {name!r} is a hub dataset but profile {p.name!r} "
                            "never reads the hub: use 'alignment', an offline set, or a hub_mirror")
    main = p.main_targets
    missing = [t for t in (main[0], main[-1]) if t not in p.extraction_targets]
    if missing:
        problems.append(f"main_targets {main}: {missing} not in extraction_targets, but notebook 07 distils from the "
                        f"first's generations and compares with the last's: add them (e.g. sft: alignment)")
    elif distill_size(p) > alignment_size(p):
        problems.append(f"n_distill = {p.n_distill}: distillation_sets draws as many originals from the "
                        f"alignment set of {alignment_size(p)}: lower n_distill to <= {alignment_size(p)}")
    if p.dose_set_size and p.dose_set_size > alignment_size(p):
        problems.append(f"dose_set_size = {p.dose_set_size}: the doses' set is drawn from the alignment set of "
                        f"{alignment_size(p)}: lower dose_set_size to <= {alignment_size(p)}")
    if p.helpful_max_chars:
        warnings.append("helpful_max_chars filters the helpful sources: their sizes above are upper bounds")
    return problems, warnings


def preflight(profile, *, free_disk_gb: float | None = None, gpu: str = "H100") -> list[str]:
    """Raise ConfigError, listing every problem with its value and fix, before any stage starts.
    Returns warnings (worth reading, not fatal)."""
    p = load_profile(profile)
    problems, warnings = _split_problems(p)
    table = plan(p, gpu=gpu)
    planned = float(table["disk_gb"].sum())
    if free_disk_gb is None:
        paths.CACHE.mkdir(parents=True, exist_ok=True)
        free_disk_gb = shutil.disk_usage(paths.CACHE).free / 1e9
    if p.hub_mirror:  # the plan prices the real hub models; the mirror's stand-ins are tiny
        warnings.append(f"hub_mirror is set: the plan's {planned:,.1f} GB of disk and every size are those of "
                        "the real hub models and datasets, not of the mirror's stand-ins")
    elif planned > free_disk_gb:
        problems.append(f"the run plans {planned:,.1f} GB of disk (merged models, adapters, indexes, downloads) but "
                        f"{paths.CACHE} has {free_disk_gb:,.1f} GB free: free space, or point ALIGNLAB_CACHE (and "
                        "HF_HOME) at a larger disk")
    big = table[table["peak_gpu_memory_gb"] > GPUS[gpu].memory_gb]
    warnings += [f"{stage}: ~{mem:.0f} GB peak exceeds the {gpu}'s {GPUS[gpu].memory_gb:.0f} GB"
                 for stage, mem in big["peak_gpu_memory_gb"].items()]
    if problems:
        raise ConfigError(f"preflight of profile {p.name!r} ({p.source or 'in memory'}): {len(problems)} problem(s):\n"
                          + "\n".join(f"  - {x}" for x in problems))
    return warnings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", help="a profile name in configs/ or a YAML path")
    parser.add_argument("--gpu", default="H100", choices=sorted(GPUS))
    parser.add_argument("--free-disk-gb", type=float, default=None, help="default: free space of the cache folder")
    args = parser.parse_args(argv)
    try:
        warnings = preflight(args.profile, free_disk_gb=args.free_disk_gb, gpu=args.gpu)
    except ConfigError as e:
        print(f"preflight: FAILED\n{e}")
        return 1
    for w in warnings:
        print(f"preflight warning: {w}")
    print("preflight: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
