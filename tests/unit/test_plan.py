"""alignlab.plan: the compute / disk plan of a profile and the preflight check. No model is loaded."""

import dataclasses
import re
import subprocess
import sys

import pytest

from alignlab import paths, plan
from alignlab.preflight import preflight
from alignlab.profile import ConfigError, load_profile

pytestmark = pytest.mark.unit

FAMILIES = ("align: sft", "align: vaccine", "align: rho sweep", "attack: grid", "attack: rho sweep",
            "evaluate: generation", "judge:", "sample:", "embed:", "faiss:", "strings:", "distill: training",
            "distill: evaluation", "downloads:")
GPU_FAMILIES = ("align: sft", "align: vaccine", "attack: grid", "evaluate: generation", "judge:", "sample:",
                "embed:", "distill: training", "distill: evaluation")
COLUMNS = ("runs", "optimizer_steps", "tokens", "flops", "gpu_hours_1", "gpu_hours_n", "peak_gpu_memory_gb",
           "disk_gb", "basis")


@pytest.fixture(scope="module")
def paper():
    return load_profile("paper")


@pytest.fixture(scope="module")
def paper_plan(paper):
    return plan.plan(paper)


def rows(table, family):
    return table[[stage.startswith(family) for stage in table.index]]


def test_paper_has_a_row_per_stage_family_with_positive_hours(paper_plan):
    assert set(COLUMNS) <= set(paper_plan.columns)
    for family in FAMILIES:
        assert len(rows(paper_plan, family)), family
    for family in GPU_FAMILIES:
        assert (rows(paper_plan, family)["gpu_hours_1"] > 0).all(), family
    assert (rows(paper_plan, "strings:")["cpu_core_hours"] > 0).all()
    assert paper_plan["basis"].str.len().gt(0).all()
    assert (paper_plan[["runs", "tokens", "flops", "gpu_hours_1", "disk_gb"]] >= 0).all().all()


def test_paper_sampling_has_a_row_per_target_and_prefix(paper, paper_plan):
    assert len(rows(paper_plan, "sample:")) == len(paper.extraction_targets) * len(paper.prefixes)


def test_paper_counts_follow_the_profile(paper, paper_plan):
    p = paper
    grid = rows(paper_plan, "attack: grid").iloc[0]
    assert grid["runs"] == 2 * len(p.harmful_ratios) * len(p.seeds) + len(p.baselines)  # paper: 3 seeds everywhere
    assert grid["tokens"] == grid["runs"] * p.n_finetune * p.finetune_epochs * p.max_length
    sft = paper_plan.loc["align: sft"]
    runs = len(set(p.seeds) | set(p.replicate_seeds))  # a run seed reseeds alignment: one model per seed
    assert sft["runs"] == runs == plan.aligned_runs(p, "vaccine")
    assert sft["optimizer_steps"] == runs * -(-(p.n_align + p.n_align_helpful) // p.batch_size) * p.align_epochs
    # Vaccine: the same tokens, twice the FLOPs (two passes)
    assert paper_plan.loc["align: vaccine", "flops"] == pytest.approx(plan.VACCINE_PASSES * sft["flops"])
    # rho 0 (SFT) and rho = profile.rho (Vaccine) are cached, so the sweep trains the others only
    assert paper_plan.loc["align: rho sweep", "runs"] == len([r for r in p.rhos if r not in (0, p.rho)])
    # disk: a bf16 merged copy per aligned model, and the stage's last two checkpoints while it trains
    lora = plan.lora_params(plan.model_size(p.model), p.lora_r)
    assert sft["disk_gb"] == pytest.approx(runs * 2 * 6.7e9 / 1e9 + 2 * plan.CHECKPOINT_BYTES * lora / 1e9)
    # the 939,344-sample Tulu 3 index: 4 B x 1024 x n, IVF (>= the profile's ivf_from)
    assert paper_plan.loc["faiss: tulu3_sft", "disk_gb"] == pytest.approx(4 * 1024 * 939_344 / 1e9, rel=0.01)
    assert "IVF" in paper_plan.loc["faiss: tulu3_sft", "basis"]


def test_totals_scale_down_with_gpus_for_data_parallel_stages(paper):
    one, eight = plan.plan(paper, gpus=1), plan.plan(paper, gpus=8)
    assert (one["gpu_hours_n"] == one["gpu_hours_1"]).all()
    training = [s for s in one.index if s.startswith(("align:", "attack:", "distill: training")) and one.loc[s, "runs"]]
    for stage in training:  # global batch 5: 5 of the 8 GPUs, ideal data parallelism plus unchanged loading
        assert eight.loc[stage, "gpu_hours_n"] < one.loc[stage, "gpu_hours_n"] / 2, stage
        assert "5 of 8" in eight.loc[stage, "parallel"]
    sharded = [s for s in one.index if s.startswith(("evaluate:", "sample:"))]  # alignlab.train, any process count
    assert len(sharded) > 1
    for stage in sharded:
        assert eight.loc[stage, "gpu_hours_n"] < one.loc[stage, "gpu_hours_n"] / 2, stage
        assert "data-parallel on 8 GPU(s)" in eight.loc[stage, "parallel"]
    for stage in ("distill: evaluation", "embed: tulu3_sft"):  # one notebook process
        assert eight.loc[stage, "gpu_hours_n"] == one.loc[stage, "gpu_hours_n"]
    assert plan.totals(eight)["gpu_hours_n"] < plan.totals(one)["gpu_hours_n"]
    assert plan.totals(eight)["gpu_hours_1"] == pytest.approx(plan.totals(one)["gpu_hours_1"])


def test_data_parallel_divides_the_global_batch():
    assert plan.data_parallel(5, 8) == 5
    assert plan.data_parallel(5, 4) == 1
    assert plan.data_parallel(8, 4) == 4
    assert plan.data_parallel(4, 1) == 1


def test_smoke_plans_in_seconds_of_gpu_time():
    total = plan.totals(plan.plan("smoke"))
    assert 0 < total["gpu_hours_1"] * 3600 < 60
    assert total["disk_gb"] < 1


def test_unknown_model_names_the_id_and_the_table(paper):
    with pytest.raises(ConfigError, match=r"'my-org/my-model'.*MODEL_PARAMS"):
        plan.plan(dataclasses.replace(paper, model="my-org/my-model"))


def test_unknown_gpu_is_refused(paper):
    with pytest.raises(ValueError, match="unknown gpu"):
        plan.plan(paper, gpu="TPU")


@pytest.mark.parametrize("name", ["smoke", "cpu", "paper"])
def test_preflight_passes_with_a_large_disk(name):
    p = load_profile(name)
    if not {p.main_targets[0], p.main_targets[-1]} <= set(p.extraction_targets):
        # e.g. cpu.yaml without a `base` target while main_targets defaults to (sft, base): notebook 07's
        # distillation_sets would fail on it (post_training_set: not an extraction target), so preflight must too
        with pytest.raises(ConfigError, match="main_targets"):
            preflight(p, free_disk_gb=1e6)
        return
    # Only warnings remain: the one a filtered helpful source gives, none on the paper profile's GPU.
    expected = ["helpful_max_chars filters the helpful sources: their sizes above are upper bounds"] if p.helpful_max_chars else []
    assert preflight(p, free_disk_gb=1e6) == expected


def test_preflight_refuses_a_split_larger_than_its_source(paper):
    for profile in (paper, load_profile("cpu")):
        with pytest.raises(ConfigError, match=r"n_align.*100000.*lower it"):
            preflight(dataclasses.replace(profile, n_align=100000), free_disk_gb=1e6)


def test_preflight_refuses_too_few_harmful_samples_for_the_ratios(paper):
    bad = dataclasses.replace(paper, harmful_ratios=(0.0, 0.5), replicate_ratio=0.5, n_finetune=1000, n_harmful_ft=100)
    with pytest.raises(ConfigError, match=r"harmful ratio 0.5 x n_finetune 1000 needs 500 .* n_harmful_ft = 100"):
        preflight(bad, free_disk_gb=1e6)


def test_preflight_refuses_too_little_disk(paper):
    needed = plan.totals(plan.plan(paper))["disk_gb"]
    with pytest.raises(ConfigError, match=r"GB of disk .* 1\.0 GB free.*ALIGNLAB_CACHE"):
        preflight(paper, free_disk_gb=1.0)
    preflight(paper, free_disk_gb=needed + 1)


def test_preflight_lists_every_problem_at_once(paper):
    bad = dataclasses.replace(paper, n_align=100000, n_harmful_ft=0)
    with pytest.raises(ConfigError) as error:
        preflight(bad, free_disk_gb=0.5)
    message = str(error.value)
    assert "n_align" in message and "harmful ratio" in message and "GB free" in message


def test_preflight_refuses_a_hub_post_training_set_on_an_offline_profile():
    cpu = load_profile("cpu")
    bad = dataclasses.replace(cpu, extraction_targets={**cpu.extraction_targets, "tiny-random-llama": "tulu3_sft"})
    with pytest.raises(ConfigError, match="tulu3_sft.*never reads the hub"):
        preflight(bad, free_disk_gb=1e6)


def test_preflight_refuses_a_vaccine_method_as_an_extraction_target():
    """The extraction study resolves only its own models by name (alignlab.alignment.model_path):
    any other name would be read as a hub id, so a Vaccine method is refused with the fix."""
    cpu = load_profile("cpu")
    bad = dataclasses.replace(cpu, extraction_targets={**cpu.extraction_targets, "vaccine": "alignment"})
    with pytest.raises(ConfigError, match="'vaccine'.*Vaccine-study method.*path"):
        preflight(bad, free_disk_gb=1e6)


def test_mirrored_constants_match_the_stage_modules():
    """plan.py mirrors these rather than import the stage modules (torch, peft, trl: ~10 s)."""
    vaccine = (paths.ROOT / "lib/alignlab/vaccine/stages.py").read_text()
    search = (paths.ROOT / "lib/alignlab/extraction/search.py").read_text()
    assert re.search(r'^ALIGNED = \("sft", "vaccine"\)', vaccine, re.M) and plan.ALIGNED == ("sft", "vaccine")
    baselines = "(" + ", ".join(f'"{name}"' for name in plan.BASELINES) + ")"
    assert re.search(rf"^BASELINES = {re.escape(baselines)}", vaccine, re.M)
    assert re.search(rf"^_MAX_TRAIN_PER_CELL = {plan.IVF_TRAIN_PER_CELL}\b", search, re.M)


def test_the_grid_rule_is_the_stages_rule():
    from alignlab.vaccine import stages

    for name in ("smoke", "cpu", "paper"):
        p = load_profile(name)
        assert plan.grid_runs(p) == stages.grid_runs(p), name
    checked = dataclasses.replace(load_profile("smoke"), harmful_ratios=(0.2,), check_ratios=(0.0, 0.2))
    assert plan.grid_runs(checked) == stages.grid_runs(checked)


def test_check_ratios_add_sft_only_runs_outside_the_grid():
    """The manipulation check needs SFT at p=0 and a high ratio; check_ratios adds those runs for
    SFT alone (first seed) where the method grid lacks them, and nothing where it has them."""
    smoke = load_profile("smoke")
    checked = dataclasses.replace(smoke, harmful_ratios=(0.2,), check_ratios=(0.0, 0.2), baselines=())
    extra = set(plan.grid_runs(checked)) - set(plan.grid_runs(dataclasses.replace(checked, check_ratios=())))
    assert extra == {("sft", 0.0, smoke.seeds[0])}


def test_checkpoint_writes_follow_save_steps(paper, paper_plan):
    """Every run of a stage writes a checkpoint (adapter + Adam moments) every save_steps steps."""
    p = paper
    lora = plan.lora_params(plan.model_size(p.model), p.lora_r)
    grid = rows(paper_plan, "attack: grid").iloc[0]
    steps_per_run = -(-p.n_finetune // p.finetune_batch_size) * p.finetune_epochs
    expected = grid["runs"] * (steps_per_run // p.save_steps) * plan.CHECKPOINT_BYTES * lora / 1e9
    assert grid["checkpoint_writes_gb"] == pytest.approx(expected) and expected > 0
    often = plan.plan(dataclasses.replace(p, save_steps=20))
    assert rows(often, "attack: grid").iloc[0]["checkpoint_writes_gb"] == pytest.approx(expected * (
        (steps_per_run // 20) / (steps_per_run // p.save_steps)))
    assert often["gpu_hours_1"].sum() > paper_plan["gpu_hours_1"].sum()  # the writes take time


def test_cli_prints_the_plan_and_names_the_preflight():
    done = subprocess.run([sys.executable, "-m", "alignlab.plan", "--profile", "smoke"],
                          capture_output=True, text=True, timeout=60, cwd=paths.ROOT)
    assert done.returncode == 0, done.stderr
    assert "align: vaccine" in done.stdout and "total" in done.stdout and "assumptions:" in done.stdout
    assert "checkpoint disk:" in done.stdout
    assert done.stdout.rstrip().endswith("python -m alignlab.preflight --profile smoke --gpu H100")


def test_preflight_cli_says_ok_or_exits_1_on_a_failed_check():
    def preflight_cli(*extra):
        return subprocess.run([sys.executable, "-m", "alignlab.preflight", "--profile", "smoke", *extra],
                              capture_output=True, text=True, timeout=60, cwd=paths.ROOT)

    done = preflight_cli()
    assert done.returncode == 0 and done.stdout.rstrip().endswith("preflight: ok"), done.stderr
    failed = preflight_cli("--free-disk-gb", "0")
    assert failed.returncode == 1 and "preflight: FAILED" in failed.stdout


def test_preflight_refuses_a_dose_set_larger_than_the_alignment_set():
    cpu = load_profile("cpu")
    with pytest.raises(ConfigError, match="dose_set_size = 999.*lower dose_set_size"):
        preflight(dataclasses.replace(cpu, dose_set_size=999), free_disk_gb=1e6)
