"""alignlab.profile: every configs/*.yaml loads into a frozen, validated Profile, and every bad
value fails at load time with the key, the file and the fix in the message."""

import dataclasses
import os
import subprocess

import pytest
import yaml

from alignlab import paths
from alignlab.profile import (SECTION_OF, SECTIONS, ConfigError, Profile, available_profiles, flatten, from_mapping,
                              load_profile, nest, setup_run)

pytestmark = pytest.mark.unit

PROFILES = available_profiles()


def smoke_raw() -> dict:
    """configs/smoke.yaml's values as Profile's flat keys (:func:`nest` lays them out as a file)."""
    return flatten(yaml.safe_load((paths.CONFIGS / "smoke.yaml").read_text()))


def write_profile(tmp_path, **changes) -> str:
    raw = nest({**smoke_raw(), **changes})
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_every_field_has_one_section():
    fields = [f.name for f in dataclasses.fields(Profile) if f.name not in ("name", "source")]
    listed = [k for keys in SECTIONS.values() for k in keys]
    assert sorted(listed) == sorted(fields)  # each field once, no stale names


def test_a_key_in_the_wrong_section_or_at_the_top_is_refused_with_its_section(tmp_path):
    raw = nest(smoke_raw())
    raw["attack"]["lr"] = raw["align"].pop("lr")
    with pytest.raises(ConfigError, match="'lr' is in section 'attack' but belongs in 'align': move it there"):
        from_mapping(raw, source="mine.yaml")
    flat_key = {**nest(smoke_raw()), "judge": "compliance"}
    del flat_key["eval"]["judge"]
    with pytest.raises(ConfigError, match="'judge' sits at the top level: move it into section 'eval'"):
        from_mapping(flat_key, source="mine.yaml")
    with pytest.raises(ConfigError, match="section 'eval' must be a mapping"):
        from_mapping({**nest(smoke_raw()), "eval": ["judge"]}, source="mine.yaml")


def test_nest_and_flatten_are_inverses():
    flat = smoke_raw()
    assert flatten(nest(flat)) == flat and set(nest(flat)) <= {"profile", *SECTIONS}
    assert all(SECTION_OF[k] == section for section, keys in nest(flat).items() if section != "profile" for k in keys)


def test_available_profiles_are_the_config_files():
    assert PROFILES == tuple(sorted(p.stem for p in paths.CONFIGS.glob("*.yaml")))
    assert {"smoke", "cpu", "paper"} <= set(PROFILES)


@pytest.mark.parametrize("name", PROFILES)
def test_every_config_file_loads(name):
    profile = load_profile(name)
    assert isinstance(profile, Profile)
    assert profile.name == name
    assert profile.source == str(paths.CONFIGS / f"{name}.yaml")
    assert load_profile(profile) is profile  # a Profile passes through
    assert profile.offline == (name != "paper")


def test_profile_is_frozen_and_lists_become_tuples():
    profile = load_profile("smoke")
    assert isinstance(profile.seeds, tuple) and isinstance(profile.harmful_ratios, tuple)
    assert profile.seeds == tuple(smoke_raw()["seeds"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.n_align = 3
    assert profile == load_profile("smoke")  # `source` does not enter the comparison
    assert profile.user_lora_alpha == profile.lora_alpha  # finetune_lora_alpha unset


def test_a_yaml_path_loads_like_a_name(tmp_path):
    path = write_profile(tmp_path, n_align=3)
    profile = load_profile(path)
    assert profile.n_align == 3 and profile.source == path
    assert dataclasses.replace(profile, n_align=24, source="") == load_profile("smoke")


def test_unknown_key_names_the_key_the_file_and_a_suggestion(tmp_path):
    path = write_profile(tmp_path, n_algin=5)
    with pytest.raises(ConfigError) as error:
        load_profile(path)
    message = str(error.value)
    assert "'n_algin'" in message
    assert path in message
    assert "did you mean 'n_align' (section 'data')?" in message


@pytest.mark.parametrize("key, value", [
    ("n_align", "many"),
    ("seeds", 3),
    ("n_align", True),             # a bool is not an int ...
    ("seeds", [0, False]),         # ... not even inside a list
    ("lr", True),                  # ... nor a float
    ("lr", "fast"),
    ("harmful_ratios", 0.1),
    ("extraction_targets", {"sft": 3}),
    ("gradient_checkpointing", 1),
    ("model", 7),
])
def test_wrong_type_names_the_key(tmp_path, key, value):
    path = write_profile(tmp_path, **{key: value})
    with pytest.raises(ConfigError, match=rf"{key}=.*wrong type") as error:
        load_profile(path)
    assert path in str(error.value)


@pytest.mark.parametrize("key, value, bound", [
    ("warmup_ratio", 2, "must be <= 1"),
    ("lr", 0, "must be > 0"),
    ("lr", -0.001, "must be > 0"),
    ("rho", -1, "must be >= 0"),
    ("n_align", 0, "must be >= 1"),
    ("harmful_ratios", [0.0, 1.5], "must be <= 1"),
    ("rhos", [2.0, -0.5], "must be >= 0"),
    ("max_length", 4, "must be >= 8"),
])
def test_out_of_range_names_the_key_and_the_bound(tmp_path, key, value, bound):
    path = write_profile(tmp_path, **{key: value})
    with pytest.raises(ConfigError, match=rf"{key}=.*out of range: {bound}") as error:
        load_profile(path)
    assert path in str(error.value)


@pytest.mark.parametrize("key, value", [("judge", "llama-guard"), ("task", "mnli"), ("safety_source", "web")])
def test_value_outside_the_choices_lists_them(key, value):
    with pytest.raises(ConfigError, match=rf"{key}=.*use one of"):
        from_mapping(nest({**smoke_raw(), key: value}), source="test")


def test_empty_seeds(tmp_path):
    with pytest.raises(ConfigError, match="seeds is empty"):
        load_profile(write_profile(tmp_path, seeds=[]))


@pytest.mark.parametrize("key, named", [("rho", "align.rho"), ("profile", "profile"), ("judge", "eval.judge")])
def test_missing_key_is_named_with_its_section(key, named):
    raw = smoke_raw()
    del raw[key]
    with pytest.raises(ConfigError, match=rf"mine.yaml: missing key\(s\) {named}"):
        from_mapping(nest(raw), source="mine.yaml")


def test_keys_with_defaults_may_be_left_out():
    raw = smoke_raw()
    for key in ("lora_dropout", "finetune_lora_alpha", "gradient_checkpointing", "bf16"):
        raw.pop(key, None)
    profile = from_mapping(nest(raw), source="test")
    assert (profile.lora_dropout, profile.finetune_lora_alpha, profile.bf16) == (0.0, None, False)
    assert from_mapping(nest({**raw, "finetune_lora_alpha": 16}), "test").user_lora_alpha == 16


def test_unknown_profile_lists_the_profiles():
    with pytest.raises(ConfigError, match="unknown profile 'gpu'") as error:
        load_profile("gpu")
    for name in PROFILES:
        assert name in str(error.value)


@pytest.mark.parametrize("text, message", [("profile: [unclosed", "not valid YAML"),
                                           ("- a\n- b\n", "must be a mapping")])
def test_malformed_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_profile(str(path))


def test_make_reproduce_refuses_an_unknown_profile():
    result = subprocess.run(["make", "-n", "reproduce", "PROFILE=nope"], cwd=paths.ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "unknown profile 'nope'" in result.stderr
    for name in PROFILES:
        assert name in result.stderr


def test_setup_run(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(paths, "CACHE", tmp_path)  # the generated responses are cached there
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)     # restored after the test
    run = setup_run("smoke")
    assert run.profile == load_profile("smoke")
    assert "n_align" in capsys.readouterr().out   # the profile is printed
    assert os.environ["HF_HUB_OFFLINE"] == os.environ["TRANSFORMERS_OFFLINE"] == "1"
    p = run.profile
    assert run.splits.counts() == {"alignment": p.n_align, "helpful": p.n_align_helpful,
                                   "harmful_ft": p.n_harmful_ft, "harmful_eval": p.n_harmful_eval,
                                   "task_train": p.n_finetune, "task_eval": p.n_task_eval,
                                   "benign_eval": p.n_benign_eval}
    assert run.splits is run.splits  # computed once per run
    assert run.splits.alignment_set == run.splits.alignment + run.splits.helpful


def test_a_gpu_profile_stops_at_once_without_cuda(monkeypatch):
    """The paper profile on a machine whose torch sees no CUDA device (a CPU-only build here):
    a ConfigError naming CUDA and the fix before anything loads; ALLOW_CPU lets tests through."""
    import torch

    from alignlab.profile import ALLOW_CPU_ENV, ConfigError, load_profile, require_cuda

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(ALLOW_CPU_ENV, raising=False)
    paper = load_profile("paper")
    assert paper.needs_cuda and not load_profile("paper-dryrun").needs_cuda and not load_profile("cpu").needs_cuda
    with pytest.raises(ConfigError, match="needs a CUDA GPU.*make setup-cuda"):
        require_cuda(paper)
    require_cuda(load_profile("cpu"))  # CPU profiles never ask
    monkeypatch.setenv(ALLOW_CPU_ENV, "1")
    require_cuda(paper)


def test_train_on_a_gpu_profile_without_cuda_exits_with_the_message(monkeypatch, capsys):
    import torch

    from alignlab import train
    from alignlab.profile import ALLOW_CPU_ENV

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(ALLOW_CPU_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_:
        train.main(["--profile", "paper", "align"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "CUDA" in err and "Traceback" not in err


def test_a_profile_inherits_and_states_only_what_differs(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text("inherits: paper\nprofile: child\ndata: {n_align: 7}\nrun: {offline: true}\n")
    p, paper = load_profile(child), load_profile("paper")
    assert p.name == "child" and p.n_align == 7 and p.offline and not paper.offline
    same = {f.name for f in dataclasses.fields(Profile)} - {"name", "n_align", "offline", "source"}
    assert all(getattr(p, k) == getattr(paper, k) for k in same)
    dryrun = load_profile("paper-dryrun")  # configs/paper-dryrun.yaml inherits paper's extraction targets
    assert dryrun.extraction_targets == paper.extraction_targets and dryrun.n_align < paper.n_align


def test_inheritance_stays_strict_and_refuses_a_loop(tmp_path):
    (tmp_path / "typo.yaml").write_text("inherits: paper\nprofile: typo\ndata: {n_algin: 7}\n")
    with pytest.raises(ConfigError, match="unknown key 'n_algin' in section 'data': did you mean 'n_align'"):
        load_profile(tmp_path / "typo.yaml")
    (tmp_path / "a.yaml").write_text(f"inherits: {tmp_path / 'b.yaml'}\nprofile: a\n")
    (tmp_path / "b.yaml").write_text(f"inherits: {tmp_path / 'a.yaml'}\nprofile: b\n")
    with pytest.raises(ConfigError, match="'inherits' makes a loop"):
        load_profile(tmp_path / "a.yaml")


def test_behaviour_follows_fields_not_names():
    from alignlab import report

    assert [n for n in available_profiles() if load_profile(n).publish] == ["cpu"]
    assert [n for n in available_profiles() if not load_profile(n).offline] == ["paper"]
    assert report.figure_dir("cpu") == paths.FIGURES
    assert report.figure_dir("smoke") == paths.RESULTS / "smoke" / "figures"
