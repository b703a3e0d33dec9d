"""`make reproduce` itself, end to end on the smoke profile: killed with SIGKILL in the middle of
the attack, of sampling and of the RL arm's GRPO, then run again, it finishes with the same results
JSONs and claims as an uninterrupted run into a separate cache. The two runs share only the seed,
so the comparison is also the determinism check of whole runs. A hub token in the environment is
written nowhere."""

import json
import os
import signal
import subprocess
import time

import pytest

from alignlab import paths
from alignlab.timing import EXTRAS

FAKE_TOKEN = "hf_alignlabTestTokenThatMustNeverBeWritten"  # a hub token in the environment, as on a GPU box
RUN_TIMEOUT = 900  # seconds; a whole smoke run takes about 4 minutes on 2 cores
KILL_POINTS = ("smoke/attack/*/done.json", "smoke/samples/*/generations.jsonl", "smoke/rl/*/trainer")  # 02, 05, 08

pytestmark = pytest.mark.slow


def start(root, log):
    """`make reproduce PROFILE=smoke` with its own cache and results folders, in its own process group."""
    env = dict(os.environ, ALIGNLAB_CACHE=str(root / "cache"), ALIGNLAB_RESULTS=str(root / "results"),
               HF_TOKEN=FAKE_TOKEN)
    return subprocess.Popen(["make", "-C", str(paths.ROOT), "reproduce", "PROFILE=smoke"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def run(root, kill_at=()):
    """Run to the end; first, for each glob in ``kill_at``, kill the whole run (make, papermill and
    the kernel, as a crash would) as soon as the glob matches inside the cache, and start again."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "make.log", "ab") as log:
        for pattern in kill_at:
            proc, deadline = start(root, log), time.time() + RUN_TIMEOUT
            while not list((root / "cache").glob(pattern)):
                assert proc.poll() is None, f"the run ended before {pattern} appeared: see {root / 'make.log'}"
                assert time.time() < deadline, f"{pattern} did not appear in {RUN_TIMEOUT} s"
                time.sleep(0.5)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert start(root, log).wait(timeout=RUN_TIMEOUT) == 0, f"make reproduce failed: see {root / 'make.log'}"


def results(root) -> dict:
    """Every results JSON and the claims, with this run's cache folder written as <cache>.

    A stage that resumed from a checkpoint says so in ``resumed_from``; that is the one field
    allowed to differ, so it is dropped.
    """
    out = {}
    for path in sorted((root / "results" / "smoke").glob("*.json")):
        text = path.read_text().replace(str(root / "cache"), "<cache>")
        out[path.name] = json.loads(text, object_hook=lambda d: {k: v for k, v in d.items() if k != "resumed_from"})
    return out


@pytest.mark.skipif(not (paths.ROOT / ".venv" / ".ready").exists(), reason="needs `make setup`")
def test_killed_reproduce_finishes_with_the_results_of_an_uninterrupted_run(tmp_path):
    run(tmp_path / "whole")
    run(tmp_path / "killed", kill_at=KILL_POINTS)
    whole, killed = results(tmp_path / "whole"), results(tmp_path / "killed")
    notebooks = len([nb for nb in paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if nb.stem not in EXTRAS])  # make extras
    assert len(whole) == notebooks + 1 and whole.keys() == killed.keys()  # each notebook's results + claims.json
    for name in whole:
        assert whole[name] == killed[name], f"{name} differs after kill-and-resume"
    log = (tmp_path / "killed" / "make.log").read_text()
    assert log.count("Executing notebook with kernel") > len(whole) - 1, "the killed run must have been interrupted"
    for path in tmp_path.rglob("*"):  # executed notebooks, results, caches, logs
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert FAKE_TOKEN.encode() not in path.read_bytes(), f"the hub token was written to {path}"
