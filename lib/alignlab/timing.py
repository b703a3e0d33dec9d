"""What a profile costs from an empty cache, from measured stage times.

Every stage writes ``timing.json`` beside its result when it computes it (:func:`alignlab.cache.timed`).
A whole cold run of the cpu profile takes hours, so its cost is summed from those measurements,
whenever each stage was computed: for each stage family of :mod:`alignlab.plan` (which counts how
many runs of it the profile makes), the median of its clean measurements times its count. A
measurement is clean when the stage ran from the start (not resumed), alone in its timer, and with
the cores to itself (:func:`_clean`).
The sum leaves out what no stage times: loading libraries, judging, statistics and figures; the
warm run's notebook times (README) bound those.

    python -m alignlab.timing --profile cpu
"""

from __future__ import annotations

import argparse
import json
import math
import statistics

import pandas as pd

from alignlab import paths
from alignlab.cache import TIMING, read_json, write_json
from alignlab.profile import load_profile
from alignlab.report import read_readme_block

# plan.py stage family -> (cache stage, its variant or None: the method of an alignment, the
# prompts of an evaluation; the notebook that computes it in a cold `make reproduce`, or `make
# extras` for notebook 09). A family
# absent here is timed inside another: embeddings inside the index and the match, string scores
# inside the match, the judge inside notebook 03's own time.
FAMILIES = {
    "align: sft": ("align", "sft", "01_align"),
    "align: vaccine": ("align", "vaccine", "01_align"),
    "align: random_vaccine": ("align", "random_vaccine", "02_attack"),
    "attack: grid": ("attack", None, "02_attack"),
    "evaluate: generation": ("evaluate", "harmful and task", "03_evaluate"),
    "align: rho sweep": ("align", "vaccine", "04_drift"),
    "align: dose": ("align", ("sft", "sft_full_sequence"), "05_sample"),  # the extraction doses, trained by 05
    "attack: rho sweep": ("attack", None, "04_drift"),
    "sample:": ("samples", None, "05_sample"),
    "faiss:": ("index", None, "06_match"),
    "distill: training": ("distill", None, "07_distill"),
    "distill: evaluation": ("evaluate", "harmful only", "07_distill"),
    "distill: task accuracy": ("task_accuracy", None, "07_distill"),
    "rl: grpo": ("rl", None, "08_rl"),
    "rl: sampling": ("rl_samples", None, "08_rl"),
    "extras: align": ("align", "vaccine", "09_grid"),
    "extras: attack": ("attack", None, "09_grid"),
    "extras: evaluate": ("evaluate", "harmful and task", "09_grid"),
    "extras: rho validation": ("rho_validation", None, "09_grid"),
}
# The second target's notebooks (`make extras`): timed apart from `make reproduce`.
EXTRAS = ("09_grid",)
# Notebook 01 aligns each method's first run; the other run seeds are aligned by notebook 02's attacks.
FIRST_RUN_ONLY = {"align: sft", "align: vaccine"}
# The share of every core a stage's process must get to count as timed without contention.
BUSY_SHARE = 0.8
# One match (search and string scores) per sampled arm, after notebook 06 builds the index.
MATCH = ("match", None, "06_match")
# One search of the questions and answers apart per target, on the first prefix (extraction.stages.match_parts).
MATCH_PARTS = ("match_parts", None, "06_match")


def _variant(stage: str, folder) -> str | None:
    if stage == "align":
        return (read_json(folder / "done.json") or {}).get("method")
    if stage == "evaluate":
        answers = read_json(folder / "answers.json") or {}
        return "harmful and task" if answers.get("task") else "harmful only"
    return None


def _clean(t: dict) -> bool:
    """Ran from the start, alone in its timer, and with the cores to itself: either nothing else was
    runnable when it finished, or the process got most of every core the whole time (a job at a
    lower priority raises the load average without slowing it)."""
    alone = t["load_average_1m"] <= t["cpu_count"] + 0.5
    busy = (t.get("cpu_seconds") or 0.0) >= BUSY_SHARE * t["cpu_count"] * t["seconds"]
    return not t["resumed"] and t["shared_with"] == 1 and (alone or busy)


def measurements(profile: str) -> pd.DataFrame:
    """Every stored stage time of ``profile``'s cache: stage, variant, seconds, clean."""
    rows = []
    for path in sorted(paths.CACHE.joinpath(profile).glob(f"*/*/{TIMING}")):
        t = read_json(path)
        if t is None:
            continue
        rows.append({"stage": t["stage"], "variant": _variant(t["stage"], path.parent), "seconds": t["seconds"],
                     "items": _items(t["stage"], path.parent), "clean": _clean(t), "key": path.parent.name})
    return pd.DataFrame(rows, columns=["stage", "variant", "seconds", "items", "clean", "key"])


def _items(stage: str, folder) -> int | None:
    """What a stage's time is divided by where runs of one family differ in size: the generations of
    a sampling arm, the optimizer steps of an alignment (the extraction doses train for more epochs)
    or of a GRPO run."""
    store = folder / "generations.jsonl"
    if stage in ("samples", "rl_samples") and store.exists():
        return sum(1 for line in store.open() if line.strip())
    done = read_json(folder / "done.json") or {}
    steps = done.get("losses") if stage == "align" else done.get("rewards") if stage == "rl" else None
    return steps[-1]["step"] if steps else None


def _family(stage: str) -> tuple[str, str | None, str] | None:
    return next((spec for prefix, spec in FAMILIES.items() if stage.startswith(prefix)), None)


def cold_cost(profile: str) -> pd.DataFrame:
    """One row per (notebook, stage family): the runs the profile makes (plan), the clean
    measurements of that stage, their median and the family's cold minutes (NaN if unmeasured)."""
    from alignlab.plan import plan

    measured = measurements(profile)
    measured = measured.loc[measured["clean"].astype(bool)]
    p = load_profile(profile)
    planned = plan(profile, extras=True)
    runs_by_family = planned["runs"]
    families = [(family, _family(family), runs) for family, runs in runs_by_family.items()]
    families = [(family, spec, runs) for family, spec, runs in families if spec is not None and runs]
    arms = sum(runs for family, spec, runs in families if spec[0] == "samples")
    rows = []
    searches = [("match: search and strings", MATCH, arms),
                ("match: question and answer parts", MATCH_PARTS, len(p.extraction_targets))]
    for family, (stage, variant, notebook), runs in families + searches:
        chosen = measured["variant"].isin(variant) if isinstance(variant, tuple) else measured["variant"] == variant
        times = measured[(measured["stage"] == stage) & (chosen if variant else True)]
        if stage == "samples":
            seconds = times["seconds"] / times["items"] * _arm_size(p, family)
        elif stage == "rl_samples":
            seconds = times["seconds"] / times["items"] * p.n_rl_samples
        elif stage in ("align", "rl"):  # per step, times the steps of one of the family's runs
            seconds = times["seconds"] / times["items"] * planned.loc[family, "optimizer_steps"] / runs
        else:
            seconds = times["seconds"]
        median = statistics.median(seconds) / 60 if len(times) else float("nan")
        split = [("01_align", 1), ("02_attack", runs - 1)] if family in FIRST_RUN_ONLY else [(notebook, runs)]
        rows += [{"notebook": nb, "stage": family, "runs": n, "measured": len(times), "median_minutes": median,
                  "cold_minutes": n * median} for nb, n in split if n]
    return pd.DataFrame(rows).sort_values("notebook", kind="stable")


def _arm_size(p, family: str) -> int:
    """Generations of the arm a plan row names ("sample: sft x user_header")."""
    target, prefix = family.removeprefix("sample:").strip().split(" x ")
    return p.samples_per_arm(target, prefix)


def _finite(value):
    """JSON has no NaN: an unmeasured number is written as null."""
    return None if isinstance(value, float) and math.isnan(value) else value


def write(profile: str) -> dict:
    """results/<profile>/stage_times.json: the cold cost by notebook and stage, and its total."""
    table = cold_cost(profile)
    # a notebook with an unmeasured stage has no total (NaN, null in the file), never a partial one
    by_notebook = table.groupby("notebook")["cold_minutes"].apply(lambda m: m.sum(skipna=False))
    main = table.loc[~table["notebook"].isin(EXTRAS)]  # make reproduce; make extras is totalled apart
    out = {"rows": [{k: _finite(v) for k, v in row.items()} for row in table.to_dict(orient="records")],
           "by_notebook": {nb: _finite(v) for nb, v in by_notebook.items()},
           "unmeasured": sorted(set(main.loc[main["median_minutes"].isna(), "stage"])),
           "total_minutes": _finite(main["cold_minutes"].sum(skipna=False)),
           "extras_minutes": _finite(table.loc[table["notebook"].isin(EXTRAS), "cold_minutes"].sum(skipna=False))}
    write_json(paths.RESULTS / profile / "stage_times.json", out)
    return out



def readme_table(profile: str) -> str:
    """Per notebook: the wall time of its last run (papermill records it in each executed notebook;
    a stage found in the cache is not recomputed), and the cold compute of the stages the notebook
    computes from an empty cache, summed from measured stage times (``results/<profile>/stage_times.json``,
    :mod:`alignlab.timing`). A notebook this run did not execute shows its published copy's time
    (``docs/notebooks/``), and where this cache holds no complete measurement of its stages, the
    cold compute README showed before; both are marked as from an earlier run."""
    cold = read_json(paths.RESULTS / profile / "stage_times.json") or {"by_notebook": {}, "unmeasured": []}
    earlier = _earlier_cold_minutes()

    def minutes(value):
        return "not measured" if value is None else f"{value:.1f}"

    executed = {nb.stem: nb for nb in (paths.RESULTS / profile).glob("[0-9][0-9]_*.ipynb")}
    published = {nb.stem: nb for nb in (paths.ROOT / "docs" / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    rows = ["| notebook | last run (min) | cold: its stages' compute (min) |", "|---|---|---|"]
    extra_rows = []
    total_run = total_cold = 0.0
    for name in sorted(executed.keys() | (published.keys() if load_profile(profile).publish else set())):
        source = executed.get(name) or published[name]
        seconds = json.loads(source.read_text())["metadata"].get("papermill", {}).get("duration") or 0.0
        run_cell = f"{seconds / 60:.1f}" + ("" if name in executed else " (earlier run)")
        if name not in cold["by_notebook"]:
            stages, cold_minutes = "none", 0.0
        elif cold["by_notebook"][name] is not None:
            stages, cold_minutes = minutes(cold["by_notebook"][name]), cold["by_notebook"][name]
        elif name in earlier:
            stages, cold_minutes = f"{earlier[name]:.1f} (earlier run)", earlier[name]
        else:
            stages, cold_minutes = "not measured", math.nan
        if name in EXTRAS:  # the second target is timed apart from make reproduce
            extra_rows.append(f"| {name} (`make extras`) | {run_cell} | {stages} |")
            continue
        total_run, total_cold = total_run + seconds, total_cold + cold_minutes
        rows.append(f"| {name} | {run_cell} | {stages} |")
    rows.append(f"| **all (`make reproduce`)** | **{total_run / 60:.1f}** | "
                f"**{minutes(None if math.isnan(total_cold) else total_cold)}** |")
    rows += extra_rows
    unmeasured = [s for s in cold["unmeasured"] if not _measured_earlier(s, cold, earlier)]
    if unmeasured:
        rows += ["", f"Stages without a clean measurement yet: {', '.join(unmeasured)}."]
    return "\n".join(rows)


def _earlier_cold_minutes() -> dict[str, float]:
    """notebook -> the cold minutes README's timing table showed (only measured values)."""
    out = {}
    for line in (read_readme_block("timing") or "").splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0][:2].isdigit():
            try:
                out[cells[0].split()[0]] = float(cells[2].split()[0])
            except ValueError:
                pass  # "none", "not measured"
    return out


def _measured_earlier(stage: str, cold: dict, earlier: dict) -> bool:
    """A stage family unmeasured in this cache whose notebook's cold compute the earlier table holds."""
    notebooks = {row["notebook"] for row in cold.get("rows", []) if row["stage"] == stage}
    return bool(notebooks) and notebooks <= set(earlier)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    args = parser.parse_args()
    print(cold_cost(args.profile).to_string(index=False, float_format="{:.1f}".format))
    print(json.dumps(write(args.profile)["by_notebook"], indent=1, default=float))
