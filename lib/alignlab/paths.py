"""Every path the project uses, resolved from the package, never from the working directory.

papermill runs a kernel where it was launched and nbval in the notebook's folder, so a
relative path would break under one of them.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
CONFIGS = ROOT / "configs"
FIGURES = ROOT / "figures"
# Executed notebooks and results JSONs of `make reproduce` (ignored by git).
RESULTS = Path(os.environ.get("ALIGNLAB_RESULTS", ROOT / "results"))
# Checkpoints, generations, indexes and converted models (ignored by git).
CACHE = Path(os.environ.get("ALIGNLAB_CACHE", ROOT / ".cache" / "alignlab"))


def cache_dir(*parts: str) -> Path:
    """A folder under the cache, created on first use."""
    path = CACHE.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
