"""Store the smoke run's outputs of the cells marked ``# NBVAL_CHECK_OUTPUT`` in notebooks/, the
reference `make test` compares with (after a change that moves a summary on purpose).

    make reproduce extras PROFILE=smoke && .venv/bin/python scripts/refresh_nbval_outputs.py
"""
import argparse
from pathlib import Path

from alignlab import paths
from alignlab.report import refresh_checked_outputs

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executed", type=Path, default=paths.RESULTS / "smoke",
                        help="folder of the executed smoke notebooks (default results/smoke)")
    for name, n in refresh_checked_outputs(parser.parse_args().executed).items():
        print(f"{name}: {n} checked cell(s) refreshed")
