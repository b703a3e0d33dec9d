"""scripts/gpu_check.py (make gpu-check): every part runs, on the CPU at toy sizes; without a GPU
and without --allow-cpu it stops at once with a message that names CUDA."""

import subprocess
import sys

import pytest
import torch

from alignlab import paths

pytestmark = pytest.mark.integration
SCRIPT = str(paths.ROOT / "scripts" / "gpu_check.py")


def test_every_part_runs_at_toy_size():
    done = subprocess.run([sys.executable, SCRIPT, "--allow-cpu", "--shape", "tiny", "--skip-stages"],
                          capture_output=True, text=True, timeout=300, cwd=paths.ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and not line.startswith("| check")]
    names = [row.split(" | ")[0] for row in rows]
    assert [n.split(",")[0].split(" step")[0] for n in names[:2]] == ["| SFT", "| Vaccine"], names
    assert len(rows) == 6, done.stdout
    eps_row = next(row for row in rows if row.startswith("| eps at rho"))
    assert "as the project adds it: error" in eps_row


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_cuda_it_stops_at_once():
    done = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, timeout=60, cwd=paths.ROOT)
    assert done.returncode == 2 and "CUDA" in done.stderr and "Traceback" not in done.stderr
