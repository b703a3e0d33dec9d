"""Kill-and-resume, partial checkpoints and corrupt cache entries: nothing computed is lost,
nothing half-written is used."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from alignlab import data, paths
from alignlab.cache import read_done, read_json, write_json
from alignlab.training import LoraSettings, align, last_complete_checkpoint

pytestmark = pytest.mark.integration

ALIGN = """
import sys
from alignlab.data import safety_splits
from alignlab.training import LoraSettings, align
from alignlab.vaccine.trainer import vaccine_spec
records = safety_splits(16, 0, 0, seed=0)["alignment"]
settings = LoraSettings(lr=1e-3, epochs=2, batch_size=4, max_length=64, lora_r=8, lora_alpha=4, lora_dropout=0.0,
                        weight_decay=0.1, warmup_ratio=0.1, seed=0, save_steps=2,  # checkpoint often
                        bf16=True, group_by_length=True)  # as the cpu profile trains: autocast, grouped batches
align("tiny-random-llama", records, sys.argv[1], method="vaccine", settings=settings, spec=vaccine_spec(2.0))
"""


def run_align(out_dir):
    return subprocess.Popen([sys.executable, "-c", ALIGN, str(out_dir)], env=dict(os.environ, PYTHONPATH=str(paths.ROOT / "lib")),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_training_resumes_after_sigkill(tmp_path):
    whole = run_align(tmp_path / "whole")
    assert whole.wait(timeout=300) == 0
    killed = run_align(tmp_path / "killed")
    deadline = time.time() + 300
    while last_complete_checkpoint(tmp_path / "killed" / "trainer", delete_partial=False) is None:
        assert killed.poll() is None and time.time() < deadline, "no checkpoint was written"
        time.sleep(0.2)
    time.sleep(0.5)  # kill at an arbitrary point after the first checkpoint, maybe mid-save
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert read_done(tmp_path / "killed") is None, "the killed run must not look finished"
    assert run_align(tmp_path / "killed").wait(timeout=300) == 0
    a, b = read_done(tmp_path / "whole"), read_done(tmp_path / "killed")
    assert a["resumed_from"] is None and b["resumed_from"].startswith("checkpoint-"), "the second run must resume"
    assert [h["step"] for h in a["losses"]] == [h["step"] for h in b["losses"]] == list(range(1, 9))
    for x, y in zip(a["losses"], b["losses"]):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-4), x["step"]
    wa = load_file(tmp_path / "whole" / "model" / "model.safetensors")
    wb = load_file(tmp_path / "killed" / "model" / "model.safetensors")
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-4, atol=1e-6)
    assert not (tmp_path / "killed" / "trainer").exists(), "checkpoints are removed once the stage is done"


def test_partial_checkpoint_is_never_resumed(tmp_path):
    for step, files in ((2, ["trainer_state.json", "optimizer.pt", "scheduler.pt"]), (4, ["optimizer.pt"])):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name in files:
            (folder / name).write_text("{}")
    (tmp_path / "checkpoint-6").mkdir()
    (tmp_path / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')  # killed mid-write
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    assert not (tmp_path / "checkpoint-4").exists() and not (tmp_path / "checkpoint-6").exists()


def test_corrupt_stage_marker_reruns_the_stage(tmp_path):
    records = data.safety_splits(8, 0, 0, seed=0)["alignment"]
    kw = dict(method="sft", settings=LoraSettings(lr=1e-3, epochs=1, batch_size=4, max_length=64, lora_r=8,
                                                           lora_alpha=4, lora_dropout=0.0, weight_decay=0.1,
                                                           warmup_ratio=0.1, seed=0))
    align("tiny-random-llama", records, tmp_path, **kw)
    first = read_done(tmp_path)
    (tmp_path / "done.json").write_text(json.dumps(first)[:20])  # a torn write
    assert read_done(tmp_path) is None
    align("tiny-random-llama", records, tmp_path, **kw)
    assert read_done(tmp_path) == first


def test_corrupt_response_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path)
    prompts = ["Explain how to pick a lock", "Write a phishing email"]
    expected = data.cached_responses(prompts, "refusal", 0)
    (cached,) = (tmp_path / "responses").glob("refusal-*.jsonl")
    cached.write_text(cached.read_text()[:30])
    assert data.cached_responses(prompts, "refusal", 0) == expected
    assert [json.loads(line)["response"] for line in cached.read_text().splitlines()] == expected


def test_atomic_json_write_leaves_no_temp_files(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    write_json(tmp_path / "a.json", {"x": 2})
    assert read_json(tmp_path / "a.json") == {"x": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert read_json(tmp_path / "missing.json") is None
