import json

import nbformat
import pytest
import yaml

from alignlab import config, paths


@pytest.mark.parametrize("profile", config.PROFILES)
def test_profiles_load_and_validate(profile):
    params = config.load_profile(profile)
    assert params["profile"] == profile


def test_unknown_profile():
    with pytest.raises(config.ConfigError, match="unknown profile 'gpu'"):
        config.load_profile("gpu")


@pytest.mark.parametrize("key, value, message", [
    ("harmful_ratio", 1.5, r"must lie in \[0, 1\]"),
    ("harmful_ratios", [0.0, -0.1], r"must lie in \[0, 1\]"),
    ("n_align", -3, "must be >= 0"),
    ("rho", -1.0, "must be >= 0"),
    ("seeds", 3, "expected a list"),
    ("lr", "fast", "expected a number"),
    ("profile", "laptop", "must be one of"),
])
def test_invalid_values_are_named(key, value, message):
    with pytest.raises(config.ConfigError, match=f"{key}=.*{message}"):
        config.validate({key: value})


def test_notebook_defaults_are_the_smoke_profile():
    """Each notebook's parameters cell must default to configs/smoke.yaml, value for value."""
    smoke = yaml.safe_load((paths.CONFIGS / "smoke.yaml").read_text())
    notebooks = sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
        namespace = {}
        exec(cells[0].source, namespace)  # literals only, so this is safe and exact
        declared = {k: v for k, v in namespace.items() if not k.startswith("__")}
        for key, value in declared.items():
            assert key in smoke, f"{path.name}: parameter {key} is missing from configs/smoke.yaml"
            assert value == smoke[key], f"{path.name}: {key}={value!r} but smoke.yaml has {smoke[key]!r}"


def test_every_profile_has_the_same_parameters():
    keys = {p: set(yaml.safe_load((paths.CONFIGS / f"{p}.yaml").read_text())) for p in config.PROFILES}
    assert keys["smoke"] == keys["cpu"] == keys["paper"], json.dumps({p: sorted(k) for p, k in keys.items()})
