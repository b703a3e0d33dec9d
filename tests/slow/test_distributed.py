"""2 processes (accelerate, gloo on CPU) with per-device batch b take the same step as 1 with batch 2b.

For plain SFT (the project's PlainLossSFTTrainer) and for Vaccine, whose perturbation is normalised over the
global batch. tests/slow/dist_train.py does one SGD step and saves the update; both runs execute once
(each runs both trainers, to pay the start-up once) and concurrently, in a module fixture.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("dist_train.py")

pytestmark = pytest.mark.slow
B = 4  # per-device batch of the 2-process run
TRAINERS = ["sft", "vaccine"]

# `--cpu` would not do: with no mpirun hostfile accelerate's simple launcher starts ONE process.
# `--multi_gpu` starts the processes through torchrun; the script's use_cpu=True then makes them
# a MULTI_CPU gloo group. The other flags stand in for an accelerate config file (none needed),
# and port 0 picks a free port.
ACCELERATE = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]


@pytest.fixture(scope="module")
def updates(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(tmp / "hf_home")}  # no accelerate config file is read: the flags are the config
    common = [str(SCRIPT), "--trainer", *TRAINERS, "--num-samples", str(2 * B)]
    runs = {
        1: [sys.executable, *common, "--per-device-batch", str(2 * B), "--out", str(tmp / "one_{trainer}.safetensors")],
        2: [*ACCELERATE, *common, "--per-device-batch", str(B), "--out", str(tmp / "two_{trainer}.safetensors")],
    }
    procs = {n: subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for n, cmd in runs.items()}
    for n, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for p in procs.values():
                p.kill()
            raise
        assert proc.returncode == 0, f"{n}-process run failed:\n{out[-4000:]}"

    result = {}
    for n, name in ((1, "one"), (2, "two")):
        for trainer in TRAINERS:
            path = tmp / f"{name}_{trainer}.safetensors"
            with safe_open(str(path), "pt") as f:
                meta = f.metadata()
            assert int(meta["num_processes"]) == n  # 2 means a real gloo group, not 2 lone processes
            assert json.loads(meta["seen"]) == list(range(2 * B))  # together, exactly the same samples
            result[n, trainer] = load_file(str(path))
    return result


@pytest.mark.parametrize("trainer", TRAINERS)
def test_two_processes_take_the_single_process_step(updates, trainer):
    one, two = updates[1, trainer], updates[2, trainer]
    assert one.keys() == two.keys() and one
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-7, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("trainer", TRAINERS)
def test_the_step_changes_every_parameter(updates, trainer):
    for name, update in updates[1, trainer].items():  # an all-zero update would make the comparison vacuous
        assert update.abs().max() > 1e-6, name


def test_vaccine_step_differs_from_sft(updates):
    assert any(not torch.allclose(updates[1, "vaccine"][n], updates[1, "sft"][n]) for n in updates[1, "sft"])


def test_alignment_stage_under_accelerate_matches_one_process(tmp_path):
    """`accelerate launch -m alignlab.train` (the multi-GPU entry point) with 2 processes trains
    the alignment stages into the same cache entries, with the same weights, as one process."""
    import yaml

    from alignlab.profile import flatten, nest

    profile = flatten(yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text()))
    # RandomVaccine runs under accelerate too; it draws each process's noise apart, so it matches one
    # process in distribution, not bit for bit, and is compared for completing only.
    profile.update(n_align=16, n_align_helpful=0, batch_size=4, rhos=[0.0], replicate_seeds=[], baselines=["random_vaccine"])
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(nest(profile)))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib"), "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf_home")}
    stage = ["-m", "alignlab.train", "--profile", str(tmp_path / "tiny.yaml"), "align"]
    for name, launcher in (("one", [sys.executable]), ("two", ACCELERATE)):
        out = subprocess.run([*launcher, *stage], cwd=ROOT, env={**env, "ALIGNLAB_CACHE": str(tmp_path / name)},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        assert out.returncode == 0, f"{name}: {out.stdout[-4000:]}"
    def models(cache):  # {method: merged weights file} of the alignment stages
        return {json.loads((p.parents[1] / "done.json").read_text())["method"]: p
                for p in sorted((cache / "smoke" / "align").glob("*/model/model.safetensors"))}

    by_method = {name: models(tmp_path / name) for name in ("one", "two")}
    assert set(by_method["one"]) == set(by_method["two"]) == {"sft", "vaccine", "random_vaccine"}
    assert [by_method["one"][m].parts[-3] for m in by_method["one"]] == \
        [by_method["two"][m].parts[-3] for m in by_method["one"]]  # same stages, same keys
    one = [by_method["one"][m] for m in ("sft", "vaccine")]
    two = [by_method["two"][m] for m in ("sft", "vaccine")]
    for a, b in zip(one, two):
        wa, wb = load_file(str(a)), load_file(str(b))
        for name in wa:
            torch.testing.assert_close(wb[name], wa[name], rtol=1e-4, atol=1e-6, msg=lambda m: f"{a.parts[-3]} {name}: {m}")
    base = load_file(str(one[0]))  # SFT and Vaccine differ, so a mix-up of stages would show
    assert any(not torch.equal(base[n], load_file(str(one[1]))[n]) for n in base)


def test_global_batch_must_split_over_the_processes(monkeypatch):
    from alignlab import data
    from alignlab.models import load_model
    from alignlab.training import LoraSettings, train_lora

    monkeypatch.setenv("WORLD_SIZE", "3")
    model, tokenizer = load_model("tiny-random-llama")
    settings = LoraSettings(lr=1e-3, epochs=1, batch_size=4, max_length=64, lora_r=8, lora_alpha=4, lora_dropout=0.0,
                            weight_decay=0.0, warmup_ratio=0.0, seed=0)
    with pytest.raises(ValueError, match="batch_size=4 is the global batch and cannot be split evenly over 3 processes"):
        train_lora(model, tokenizer, data.safety_splits(4, 0, 0)["alignment"], "/nonexistent", settings=settings)


def test_generation_split_over_two_processes_equals_one_process(tmp_path):
    """generate and choice_logprobs under accelerate launch with 2 processes: each computes a share
    of the batches, and every process gets back the answers and log-likelihoods of one process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib"), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    script = str(Path(__file__).with_name("dist_generate.py"))
    runs = {1: [sys.executable, script], 2: [*ACCELERATE, script]}
    for n, cmd in runs.items():
        out = subprocess.run([*cmd, "--out", str(tmp_path / f"{n}.json")], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        assert out.returncode == 0, f"{n} process(es): {out.stdout[-4000:]}"
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in runs)
    assert (one["num_processes"], two["num_processes"]) == (1, 2)
    assert len(set(one["answers"])) > 3  # distinct answers: a mix-up of batches would show
    assert two["answers"] == one["answers"]
    np.testing.assert_allclose(two["logprobs"], one["logprobs"], rtol=1e-5)
    assert all(p["answers"] == one["answers"] for p in two["every_process"]) and len(two["every_process"]) == 2


def test_evaluation_and_sampling_under_accelerate_match_one_process(tmp_path):
    """`alignlab.train evaluate sample` under `accelerate launch` with 2 processes (each a share of
    the batches, merged by the main process) writes the same files as one process."""
    import shutil

    import yaml

    from alignlab.profile import flatten, nest

    profile = flatten(yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text()))
    # Several batches per stage, and an odd count, so both processes work and a last round is short.
    profile.update(harmful_ratios=[0.2], rhos=[0.0], eval_batch_size=3, n_samples=10, n_samples_secondary=5,
                   sample_batch_size=2, prefixes=["user_header"], replicate_seeds=[], baselines=[],
                   extraction_targets={"sft": "alignment", "base": "alignment"}, prefix_table_target=None)  # no doses: sampling, not training
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(nest(profile)))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib"), "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf_home"),
           "CUDA_VISIBLE_DEVICES": ""}  # gloo on the CPU, as in CI, even on a machine with a GPU

    def run(launcher, cache, *stages):
        out = subprocess.run([*launcher, "-m", "alignlab.train", "--profile", str(tmp_path / "tiny.yaml"), *stages],
                             cwd=ROOT, env={**env, "ALIGNLAB_CACHE": str(cache)}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=300)
        assert out.returncode == 0, f"{launcher[0]} {stages}: {out.stdout[-4000:]}"

    run([sys.executable], tmp_path / "one", "align", "attack")  # the models both evaluate, trained once
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    run([sys.executable], tmp_path / "one", "evaluate", "sample")
    run(ACCELERATE, tmp_path / "two", "evaluate", "sample")

    def written(cache):
        root = cache / "smoke"
        return {str(p.relative_to(root)): p.read_text() for pattern in ("evaluate/*/answers.json", "samples/*/*.jsonl")
                for p in root.glob(pattern)}

    one, two = written(tmp_path / "one"), written(tmp_path / "two")
    assert sum(k.startswith("evaluate/") for k in one) == 5  # base, sft, vaccine; 2 attacks (sft is the rho-0 one)
    assert sum(k.startswith("samples/") for k in one) == 2  # the extraction targets sft and base x one prefix
    assert one.keys() == two.keys()
    for name in one:
        assert two[name] == one[name], name
