"""Stage times: written beside a result only when the stage computed it, and summed into a cold
cost only from clean measurements."""

import json
import math
import os

import pytest

from alignlab import cache, paths, timing
from alignlab.plan import plan
from alignlab.profile import load_profile
from test_cache import run_fake_pipeline

pytestmark = pytest.mark.unit


def test_timed_writes_into_the_folder_the_block_wrote_and_marks_a_resumed_stage(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path)
    partial = paths.cache_dir("smoke", "attack", "resumed")
    (partial / "checkpoint").write_text("half")
    untouched = paths.cache_dir("smoke", "attack", "cached")
    cache.write_json(untouched / "done.json", {})
    for old in (partial / "checkpoint", untouched / "done.json"):  # written in an earlier run
        os.utime(old, (0, 0))
    empty = paths.cache_dir("smoke", "attack", "fresh")  # made by a process killed before it wrote anything
    with cache.timed("smoke", "attack"):
        cache.write_json(partial / "done.json", {})
        cache.write_json(empty / "done.json", {})
    assert not (untouched / cache.TIMING).exists()
    fresh, resumed = (cache.read_json(paths.CACHE / "smoke/attack" / key / cache.TIMING) for key in ("fresh", "resumed"))
    assert fresh["stage"] == "attack" and fresh["shared_with"] == 2 and not fresh["resumed"]
    assert resumed["resumed"]
    with cache.timed("smoke", "attack"):  # the same results read back at once, within the file times' margin
        pass
    assert cache.read_json(paths.CACHE / "smoke/attack/fresh" / cache.TIMING) == fresh


def test_a_pipeline_times_each_stage_it_computes_and_none_it_finds_cached(tmp_path, monkeypatch):
    run_fake_pipeline(monkeypatch, tmp_path)
    timings = sorted(tmp_path.rglob(cache.TIMING))
    stages = {t.parent.parent.name for t in timings}
    assert stages == {"align", "attack", "evaluate"}
    assert all(json.loads(t.read_text())["stage"] == t.parent.parent.name for t in timings)
    for f in tmp_path.rglob("*"):  # as if computed in an earlier session, before stages were timed
        if f.name == cache.TIMING:
            f.unlink()
        elif f.is_file():
            os.utime(f, (0, 0))
    run_fake_pipeline(monkeypatch, tmp_path)  # the stubbed trainers rewrite their markers; evaluate reads its cache
    retimed = {t.parent.parent.name for t in tmp_path.rglob(cache.TIMING) if t.stat().st_mtime > 0}
    assert retimed == {"align", "attack"}


def _timing(stage, key, seconds, *, resumed=False, load=1.0, cpu=0.0, done=None, answers=None):
    folder = paths.cache_dir("smoke", stage, key)
    cache.write_json(folder / cache.TIMING, {"stage": stage, "seconds": seconds, "resumed": resumed, "shared_with": 1,
                                            "cpu_seconds": cpu, "cpu_count": 2, "load_average_1m": load})
    if done is not None:
        cache.write_json(folder / "done.json", done)
    if answers is not None:
        cache.write_json(folder / "answers.json", answers)


def test_cold_cost_uses_clean_medians_times_the_planned_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    planned = plan("smoke")
    steps = int(planned.loc["align: sft", "optimizer_steps"] / planned.loc["align: sft", "runs"])
    done = {"method": "sft", "losses": [{"step": steps, "loss": 1.0}]}  # alignments are timed per optimizer step
    for key, seconds in (("a", 60), ("b", 120), ("c", 600)):
        _timing("align", key, seconds, done=done)
    _timing("align", "resumed", 6, resumed=True, done=done)  # not clean: times a remainder
    _timing("align", "busy", 6000, load=4.0, cpu=600, done=done)  # not clean: another job had the cores
    _timing("align", "served", 120, load=4.0, cpu=230, done=done)  # clean: it had the cores all along
    _timing("evaluate", "full", 30, answers={"task": [{"x": 1}]})
    _timing("evaluate", "harmful", 3, answers={"task": []})
    table = timing.cold_cost("smoke")
    sft = table[table["stage"] == "align: sft"]
    assert list(sft["notebook"]) == ["01_align", "02_attack"] and set(sft["measured"]) == {4}
    assert sft["median_minutes"].iloc[0] == pytest.approx(2.0)
    assert (sft["cold_minutes"] == sft["runs"] * 2.0).all()
    evaluations = table.set_index("stage")["median_minutes"]
    assert evaluations["evaluate: generation"] == pytest.approx(0.5)
    assert evaluations["distill: evaluation"] == pytest.approx(0.05)
    assert math.isnan(evaluations["attack: grid"])  # never measured
    dose = table[table["stage"] == "align: dose sft_full@2"].iloc[0]  # smoke: 2 epochs where SFT runs 1
    dose_steps = planned.loc["align: dose sft_full@2", "optimizer_steps"]
    assert dose["notebook"] == "05_sample" and dose["median_minutes"] == pytest.approx(2.0 * dose_steps / steps)
    for key, (seconds, n) in {"long": (40, 4), "short": (20, 2)}.items():  # 10 s a generation, whatever the arm's size
        _timing("samples", key, seconds)
        (paths.CACHE / "smoke/samples" / key / "generations.jsonl").write_text("{}\n" * n)
    arm = load_profile("smoke").samples_per_arm("sft", "user_header")
    sampled = timing.cold_cost("smoke").set_index("stage")["median_minutes"]
    assert sampled["sample: sft x user_header"] == pytest.approx(10 * arm / 60)
    written = timing.write("smoke")
    assert written["by_notebook"]["02_attack"] is None and written["total_minutes"] is None
    assert "attack: grid" in written["unmeasured"]
    json.loads((tmp_path / "results/smoke/stage_times.json").read_text())  # valid JSON: no NaN


def test_the_rl_arm_is_timed_per_grpo_step_and_per_generation(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    p = load_profile("smoke")
    for key, (seconds, steps) in {"short": (60, 1), "long": (240, 4)}.items():  # 60 s a step, whatever the run
        _timing("rl", key, seconds, done={"rewards": [{"step": s + 1, "reward": 0.0} for s in range(steps)]})
    for key, (seconds, n) in {"half": (30, 3), "whole": (60, 6)}.items():  # 10 s a generation
        _timing("rl_samples", key, seconds)
        (paths.CACHE / "smoke/rl_samples" / key / "generations.jsonl").write_text("{}\n" * n)
    rows = timing.cold_cost("smoke").set_index("stage")
    assert rows.loc["rl: grpo", "notebook"] == "08_rl"
    assert rows.loc["rl: grpo", "median_minutes"] == pytest.approx(60 * p.rl_steps / 60)
    assert rows.loc["rl: sampling", "median_minutes"] == pytest.approx(10 * p.n_rl_samples / 60)
    assert rows.loc["rl: sampling", "cold_minutes"] == pytest.approx(2 * 10 * p.n_rl_samples / 60)
