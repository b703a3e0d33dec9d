"""The Vaccine study's stages, each cached under ``.cache/alignlab/<profile>/<stage>/<key>``.

One home per sweep: :func:`attack_grid` (method x harmful ratio x seed), :func:`rho_sweep`,
:func:`evaluations`, :func:`hs_table` and, for ``make extras``, :func:`paper_grid` and
:func:`rho_candidate_models` are the only places those grids and tables are written; notebooks
01-04 and 09, ``alignlab.train`` and ``alignlab.claims`` call them.

A stage's key hashes every value that changes its result and the source of the code it runs
(:data:`CODE`), so an edit to the Vaccine trainer recomputes the Vaccine alignment and what
depends on it, and nothing else. ``rho`` goes from the profile to :class:`VaccineConfig` through
:func:`aligned_model` -> :func:`alignlab.vaccine.trainer.vaccine_spec` -> :func:`alignlab.alignment.aligned_model`
-> :func:`alignlab.training.align` -> ``VaccineConfig(rho=rho)``.
"""

import dataclasses
import random
from pathlib import Path

import pandas as pd

from alignlab import alignment, evaluation
from alignlab.alignment import TRAINING, align_settings
from alignlab.cache import read_done, record_ids, stage_dir, timed, timed_stage
from alignlab.profile import Profile, Run
from alignlab.scoring import score, summary
from alignlab.training import LoraSettings, TrainerSpec, finetune, make_batches
from alignlab.vaccine.defenses import DEFENSES, defense_spec
from alignlab.vaccine.drift import DriftCallback
from alignlab.vaccine.trainer import vaccine_spec

ALIGNED = ("sft", "vaccine")  # the aligned models of notebook 01
METHODS = ("base", *ALIGNED)
# The authors' baselines and ablation (profile key ``baselines``), each attacked at ``replicate_ratio``:
# RandomVaccine is an alignment (a random eps of Vaccine's norm); KL and EWC regularise the user's
# fine-tuning of the SFT-aligned model (alignlab.vaccine.defenses); VLGuard mixes safety samples into it.
BASELINES = ("random_vaccine", "kl", "ewc", "vlguard")

# The code each stage runs: its source is hashed into the stage's key (alignlab.cache.code_version).
# tests/unit/test_cache.py checks that every alignlab module these import is listed, in INFRASTRUCTURE,
# or in NOT_RUN, so a stage cannot silently depend on code its key ignores. This module itself only
# wires stages together: every value it passes on is part of the key's parameters.
CODE = {
    "align:sft": TRAINING,
    "align:vaccine": TRAINING + ("vaccine.trainer", "vaccine.attention"),
    "align:random_vaccine": TRAINING + ("vaccine.trainer", "vaccine.attention"),
    "attack": TRAINING + ("vaccine.drift", "vaccine.attention"),
    "attack:defense": TRAINING + ("vaccine.drift", "vaccine.attention", "vaccine.defenses"),  # KL, EWC
}
# Modules a stage imports without running them: an edit to them must not recompute the stage.
NOT_RUN = {"attack": ("vaccine.defenses",)}  # plain SFT: an edit to the KL / EWC penalties keeps these
# Modules that find, name and store results but never compute them.
INFRASTRUCTURE = ("cache", "paths", "assets")

evaluate = timed_stage("evaluate")(evaluation.evaluate)

# The paper's Table (Llama-2-7B, SST-2, n=1000, beaver-dam-7b): HS and FA in %.
PAPER_HS = {"sft": {0.0: 48.6, 0.01: 49.8, 0.05: 52.6, 0.1: 55.2, 0.2: 60.0},
            "vaccine": {0.0: 42.4, 0.01: 42.2, 0.05: 42.8, 0.1: 48.2, 0.2: 56.6}}
PAPER_FA = {"sft": 94.4, "vaccine": 93.4}


def attack_settings(p: Profile, seed: int) -> LoraSettings:
    """The user's fine-tuning: a new LoRA (alpha ``finetune_lora_alpha``), plain SFT, otherwise
    trained as alignment is."""
    return dataclasses.replace(align_settings(p), lr=p.finetune_lr, epochs=p.finetune_epochs,
                               batch_size=p.finetune_batch_size, lora_alpha=p.user_lora_alpha, seed=seed)


def _dir(run: Run, stage: str, code: str, **params) -> Path:
    return stage_dir(run.profile.name, stage, code=CODE[code], **params)


def aligned_model(run: Run, method: str, rho: float | None = None, seed: int = 0) -> str:
    """Path of the merged aligned model ("base" is the pre-alignment model itself) of run ``seed``:
    trained with seed ``profile.seed + seed`` (LoRA init, dropout, batch order), so each
    replicate run has its own alignment. ``rho`` None: the profile's; it reaches
    ``VaccineConfig(rho=...)`` through :func:`alignlab.alignment.aligned_model`. The regularised
    fine-tunings (kl, ewc, vlguard) start from SFT's model."""
    p = run.profile
    if method == "base":
        return p.model
    if method in ("kl", "ewc", "vlguard"):
        method = "sft"
    if method not in (*ALIGNED, "random_vaccine"):
        raise ValueError(f"unknown method {method!r}: use one of {METHODS + BASELINES}")
    rho = p.rho if rho is None else rho
    perturbed = method in ("vaccine", "random_vaccine")
    if not perturbed or rho == 0:  # Vaccine with rho = 0 is SFT exactly (VaccineTrainer skips pass 1)
        return alignment.aligned_model(run, "sft", seed=seed)
    return alignment.aligned_model(run, method, seed=seed, code=CODE[f"align:{method}"], rho=rho,
                                   spec=vaccine_spec(rho, "random" if method == "random_vaccine" else "gradient"))


def alignment_losses(run: Run, method: str, rho: float | None = None, seed: int = 0) -> list[dict]:
    return read_done(Path(aligned_model(run, method, rho, seed)).parent)["losses"]


def attack_data(run: Run, harmful_ratio: float, seed: int, n_safety: int = 0) -> list[dict]:
    """n task samples of which int(p*n) are harmful (prompt, compliant answer), shuffled by seed;
    with ``n_safety`` (VLGuard), that many alignment samples (harmful prompt, refusal) added."""
    s, n = run.splits, run.profile.n_finetune
    n_harmful = int(harmful_ratio * n)
    if n_harmful > len(s.harmful_ft):
        raise ValueError(f"harmful_ratio={harmful_ratio} needs {n_harmful} harmful samples but n_harmful_ft="
                         f"{len(s.harmful_ft)}: raise n_harmful_ft or lower harmful_ratio")
    if n_safety > len(s.alignment):
        raise ValueError(f"vlguard_ratio asks for {n_safety} safety samples but the alignment set has "
                         f"{len(s.alignment)}: raise n_align or lower vlguard_ratio")
    rng = random.Random(seed)
    records = rng.sample(s.harmful_ft, n_harmful) + rng.sample(s.task_train, n - n_harmful)
    records += random.Random(seed + 1).sample(s.alignment, n_safety) if n_safety else []
    rng.shuffle(records)
    return records


def attack(run: Run, method: str, harmful_ratio: float, seed: int, rho: float | None = None) -> dict:
    """User fine-tuning of run ``seed``'s aligned model, with attack seed ``seed``: the path of its
    adapter and the stage summary (losses, and harmful embedding drift on alignment batches).
    ``method`` kl / ewc / vlguard: SFT's model fine-tuned under that defense."""
    p = run.profile
    aligned = aligned_model(run, method, rho, seed)
    n_safety = int(p.vlguard_ratio * p.n_finetune) if method == "vlguard" else 0
    records = attack_data(run, harmful_ratio, seed, n_safety)
    settings = attack_settings(p, seed)
    defended = method in DEFENSES
    lamb = {"kl": p.kl_lambda, "ewc": p.ewc_lambda}.get(method)
    safety = run.splits.alignment if method == "ewc" else []  # EWC's Fisher: the alignment set's refusals
    out = _dir(run, "attack", "attack:defense" if defended else "attack", aligned=aligned, harmful_ratio=harmful_ratio,
               data=record_ids(records), drift_every=p.drift_every, n_drift=p.n_drift, settings=settings,
               **({"defense": method, "lamb": lamb, "fisher_data": record_ids(safety)} if defended else {}))
    spec = defense_spec(method, lamb, safety, settings.max_length) if defended else TrainerSpec()
    drift_records = run.splits.alignment[:p.n_drift]

    def drift_callback(tokenizer):
        batches = make_batches(tokenizer, drift_records, max_length=settings.max_length)
        return [DriftCallback(batches, every=p.drift_every, path=out / "drift.json")]

    with timed(p.name, "attack"):
        adapter = finetune(aligned, records, out, settings=settings, spec=spec, make_callbacks=drift_callback)
    return {"adapter": str(adapter), **read_done(out)}


def grid_runs(p: Profile) -> list[tuple[str, float, int]]:
    """(method, harmful ratio, run seed) of every user fine-tuning in notebook 02: SFT and Vaccine
    at each ratio with ``seeds``, at ``replicate_ratio`` with ``replicate_seeds`` (the replicated
    verdict), SFT alone at each of ``check_ratios`` outside the grid (the manipulation check), then
    each baseline at ``replicate_ratio`` with the first seed (single runs)."""
    runs = [(method, ratio, seed) for method in ALIGNED for ratio in p.harmful_ratios
            for seed in (p.replicate_seeds if ratio == p.replicate_ratio and p.replicate_seeds else p.seeds)]
    checks = [("sft", ratio, p.seeds[0]) for ratio in dict.fromkeys(p.check_ratios) if ratio not in p.harmful_ratios]
    return runs + checks + [(method, p.replicate_ratio, p.seeds[0]) for method in p.baselines]


def attack_grid(run: Run) -> list[dict]:
    """Every user fine-tuning run of notebook 02 (:func:`grid_runs`)."""
    return [{"method": method, "harmful_ratio": ratio, "seed": seed, **attack(run, method, ratio, seed)}
            for method, ratio, seed in grid_runs(run.profile)]


def evaluations(run: Run) -> list[dict]:
    """Every evaluation of notebook 03: the base, SFT and Vaccine models of the first run seed before
    any user fine-tuning (``harmful_ratio`` None), then each attack of :func:`attack_grid`."""
    first = run.profile.seeds[0]
    out = [{"method": method, "harmful_ratio": None, "seed": None,
            "result": evaluate(run, aligned_model(run, method, seed=first), None)} for method in METHODS]
    return out + [_attacked(run, a) for a in attack_grid(run)]


def _attacked(run: Run, a: dict) -> dict:
    """The evaluation of one user fine-tuning (``a``: method, harmful_ratio, seed, adapter)."""
    return {"method": a["method"], "harmful_ratio": a["harmful_ratio"], "seed": a["seed"],
            "result": evaluate(run, aligned_model(run, a["method"], seed=a["seed"]), a["adapter"])}


def paper_grid_runs(p: Profile) -> list[tuple[str, float, int]]:
    """(method, harmful ratio, run seed) of notebook 09's grid (``make extras``): each of
    ``grid_methods`` at each of ``grid_ratios``, with the first run seed. Cells the main study also
    runs (the replicated ratio's first run, the manipulation check's SFT runs) share its cache."""
    return [(method, ratio, p.seeds[0]) for method in p.grid_methods for ratio in p.grid_ratios]


def paper_grid(run: Run) -> list[dict]:
    """Every evaluation of :func:`paper_grid_runs`, as :func:`evaluations` lists them."""
    return [_attacked(run, {"method": method, "harmful_ratio": ratio, "seed": seed, **attack(run, method, ratio, seed)})
            for method, ratio, seed in paper_grid_runs(run.profile)]


def rho_candidate_models(run: Run) -> dict[float, str]:
    """rho -> the first run seed's model aligned at it (rho 0: SFT), for notebook 09's choice of rho."""
    first = run.profile.seeds[0]
    return {rho: aligned_model(run, "vaccine", rho=rho, seed=first) for rho in run.profile.rho_candidates}


def extras_stages(run: Run) -> list:
    """Every model notebook 09 trains and every evaluation it reads (``alignlab.train extras``)."""
    return list(rho_candidate_models(run).values()) + [e["result"] for e in paper_grid(run)]


def scored_evaluations(evaluated: list[dict], judges: dict) -> pd.DataFrame:
    """:func:`evaluations` scored by each judge: one row per model with HS per judge, FA and flags."""
    return pd.DataFrame([{"method": e["method"], "harmful_ratio": e["harmful_ratio"], "seed": e["seed"],
                          **score(e["result"], judges)} for e in evaluated])


def hs_table(scored: pd.DataFrame, judge_names) -> pd.DataFrame:
    """The paper's table: HS per judge and FA by method and harmful ratio, the mean over runs with
    a 95% half-width (``_ci``): a t-interval over runs where a cell has two or more, else the
    binomial interval over the prompts (items) of its one run, which says nothing about other runs.
    The paper's numbers beside them."""
    from scipy import stats

    attacked = scored.dropna(subset=["harmful_ratio"])
    rows = []
    for (method, ratio), cell in attacked.groupby(["method", "harmful_ratio"]):
        row = {"method": method, "harmful_ratio": ratio, "n_runs": len(cell)}
        for column in [*(f"hs_{j}" for j in judge_names), "fa"]:
            values = cell[column].astype(float)
            row[f"{column}_mean"] = float(values.mean())
            if len(cell) >= 2:
                row[f"{column}_ci"] = float(stats.t.ppf(0.975, len(cell) - 1) * values.std(ddof=1) / len(cell) ** 0.5)
            else:
                n = len(cell["task_correct"].iloc[0]) if column == "fa" else len(cell["flags"].iloc[0].get(column[3:], []))
                rate = values.iloc[0] / 100
                row[f"{column}_ci"] = float(100 * 1.96 * (rate * (1 - rate) / n) ** 0.5) if n else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    table["paper_hs"] = [PAPER_HS.get(m, {}).get(r) for m, r in zip(table["method"], table["harmful_ratio"])]
    table["paper_fa"] = table["method"].map(PAPER_FA)
    return table


def drift_rows(attacks: list[dict]) -> pd.DataFrame:
    """Every drift measurement of :func:`attack_grid`'s runs, one row per (run, step)."""
    return pd.DataFrame([{"method": a["method"], "harmful_ratio": a["harmful_ratio"], "seed": a["seed"], **point}
                         for a in attacks for point in a["drift"]])


def final_drift(drift: pd.DataFrame) -> pd.DataFrame:
    """Each run's last drift measurement (end of fine-tuning): what ``alignlab.claims`` tests."""
    return drift.loc[drift.groupby(["method", "harmful_ratio", "seed"])["step"].idxmax()]


def rho_attack(run: Run, rho: float) -> dict:
    """The rho sweep's user fine-tuning of the model aligned at ``rho`` (rho 0 = SFT): at
    ``rho_sweep_ratio`` with the first seed; :func:`attack`'s summary plus the aligned model's path."""
    p = run.profile
    method = "sft" if rho == 0 else "vaccine"
    return {"aligned": aligned_model(run, method, rho=rho, seed=p.seeds[0]),
            **attack(run, method, p.rho_sweep_ratio, p.seeds[0], rho=rho)}


def rho_sweep(run: Run, judges: dict) -> pd.DataFrame:
    """Notebook 04's sweep: for each rho, align (rho 0 = SFT), attack at ``rho_sweep_ratio`` with
    the first seed, evaluate; HS per judge, FA and the final drift."""
    rows = []
    for rho in run.profile.rhos:
        attacked = rho_attack(run, rho)
        scores = score(evaluate(run, attacked["aligned"], attacked["adapter"]), judges)
        rows.append({"rho": rho, **summary(scores),
                     "final_hed": attacked["drift"][-1]["hed"] if attacked["drift"] else None})
    return pd.DataFrame(rows)


def align_stages(run: Run) -> list[str]:
    """Every aligned model a run needs: those of the attack grid and the rho sweep (``alignlab.train``)."""
    first = run.profile.seeds[0]
    grid = dict.fromkeys(aligned_model(run, m, seed=s) for m, _, s in grid_runs(run.profile))
    return [aligned_model(run, m, seed=first) for m in ALIGNED] + list(grid) + [
        aligned_model(run, "vaccine", rho=r, seed=first) for r in run.profile.rhos]


def attack_stages(run: Run) -> list[str]:
    """Every user fine-tuning a run needs: :func:`attack_grid` and the rho sweep's (``alignlab.train``)."""
    return [a["adapter"] for a in attack_grid(run)] + [rho_attack(run, r)["adapter"] for r in run.profile.rhos]


def evaluate_stages(run: Run) -> list[dict]:
    """Every evaluation notebooks 03 and 04 read: :func:`evaluations` and the rho sweep's
    (``alignlab.train``; under ``accelerate launch`` each process answers a share of the prompts)."""
    swept = [rho_attack(run, r) for r in run.profile.rhos]
    return [e["result"] for e in evaluations(run)] + [evaluate(run, a["aligned"], a["adapter"]) for a in swept]
