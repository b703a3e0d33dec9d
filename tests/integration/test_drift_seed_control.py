"""scripts/drift_seed_control.py on the smoke profile: every pair of the run-level drift control
is printed with its paired test, and the profile's own seed is refused."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "drift_seed_control.py"


def run_script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), "--profile", "smoke", *args], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)


def test_prints_the_claim_the_controls_and_the_replication():
    out = run_script("--seed", "1")
    assert out.returncode == 0, out.stdout[-3000:]
    lines = [line for line in out.stdout.splitlines() if "Wilcoxon p=" in line]
    assert [line.split()[0] for line in lines] == ["claim:", "control:", "control:", "replication:"]
    assert "SFT seed 0 - SFT seed 1" in lines[1] and "Vaccine seed 0 - Vaccine seed 1" in lines[2]


def test_the_profiles_own_seed_is_refused():
    out = run_script("--seed", "0")
    assert out.returncode == 2 and "--seed 0 is the profile's own seed" in out.stdout
