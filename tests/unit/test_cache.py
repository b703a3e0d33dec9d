"""Stage keys carry the code they run: an edit recomputes exactly the stages that run the edited code."""

import ast
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from alignlab import alignment, cache, evaluation, paths
from alignlab.extraction import stages as extraction_stages
from alignlab.profile import setup_run
from alignlab.vaccine import rho_choice, stages

pytestmark = pytest.mark.unit


PACKAGE = Path(importlib.util.find_spec("alignlab").origin).parent


def is_module(short: str) -> bool:
    return bool(short) and (PACKAGE / (short.replace(".", "/") + ".py")).is_file()


def alignlab_imports(module: str) -> set[str]:
    """alignlab modules that ``module`` imports anywhere (top level or inside functions)."""
    tree = ast.parse((PACKAGE / (module.replace(".", "/") + ".py")).read_text())
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("alignlab"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("alignlab")]
        for name in names:
            short = name.removeprefix("alignlab").lstrip(".")
            if is_module(short):
                found.add(short)
    return found


def closure(modules, not_run=()) -> set[str]:
    """Every module reachable from ``modules`` by imports, not looking inside ``not_run``."""
    todo, seen = list(modules), set()
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            if m not in not_run:
                todo += alignlab_imports(m)
    return seen


def _stage_code(study) -> dict:
    """{stage: (modules its key hashes, modules it imports without running)} of a stage module;
    alignlab.evaluation declares one stage, the others a mapping."""
    if isinstance(study.CODE, tuple):
        return {"evaluate": (study.CODE, study.NOT_RUN)}
    return {stage: (modules, study.NOT_RUN.get(stage, ())) for stage, modules in study.CODE.items()}


@pytest.mark.parametrize("study", [stages, extraction_stages, evaluation, rho_choice],
                         ids=["vaccine", "extraction", "evaluation", "rho_choice"])
def test_every_stage_declares_the_code_it_imports(study):
    """A stage's key hashes the modules in its CODE entry. Every alignlab module those import must
    be declared too, or be infrastructure, or be named in NOT_RUN, so no code escapes the key."""
    for stage, (modules, not_run) in _stage_code(study).items():
        not_run = set(not_run)
        allowed = set(modules) | set(stages.INFRASTRUCTURE) | not_run
        missing = closure(modules, not_run) - allowed
        assert not missing, f"stage {stage!r} runs code its key ignores: add {sorted(missing)} to CODE or NOT_RUN"


def test_code_version_follows_the_source(tmp_path, monkeypatch):
    before = cache.code_version("vaccine.trainer", "chat")
    assert before == cache.code_version("chat", "vaccine.trainer")  # order does not matter
    edit_source(monkeypatch, tmp_path, "vaccine.trainer")
    assert cache.code_version("vaccine.trainer", "chat") != before
    assert cache.code_version("chat") == cache.code_version("chat")
    with pytest.raises(ValueError, match="no module alignlab.nope"):
        cache.code_version("nope")


def edit_source(monkeypatch, tmp_path, module):
    """Make ``alignlab.<module>`` look edited to code_version (a copy with one more comment line)."""
    real_find_spec = importlib.util.find_spec
    spec = real_find_spec(f"alignlab.{module}")
    edited = tmp_path / Path(spec.origin).name
    shutil.copy(spec.origin, edited)
    with open(edited, "a") as f:
        f.write("\n# an edit\n")

    def find_spec(name, *args):
        found = real_find_spec(name, *args)
        if name == f"alignlab.{module}":
            found = importlib.util.spec_from_file_location(name, edited)
        return found

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def run_fake_pipeline(monkeypatch, cache_root):
    """The Vaccine stages of the smoke profile with training and generation stubbed out: each stage
    writes its marker with what it is, so the cache shows which stages a run (re)computed."""
    monkeypatch.setattr(paths, "CACHE", cache_root)

    def fake_align(base, records, out, *, method, settings, spec=None):
        cache.write_json(Path(out) / "done.json", {"stage": f"align:{method}", "losses": []})
        return Path(out) / "model"

    def fake_finetune(aligned, records, out, *, settings, spec=None, make_callbacks=None):
        cache.write_json(Path(out) / "done.json", {"stage": f"attack:{aligned}", "losses": [], "drift": []})
        return Path(out) / "adapter"

    monkeypatch.setattr(alignment, "align", fake_align)
    monkeypatch.setattr(stages, "finetune", fake_finetune)
    monkeypatch.setattr(evaluation, "load_finetuned", lambda aligned, adapter: (None, None))
    monkeypatch.setattr(evaluation, "generate", lambda model, tok, prompts, *a, **k: ["ok"] * len(prompts))
    monkeypatch.setattr(evaluation, "choice_logprobs",
                        lambda model, tok, prompts, choices: np.zeros((len(prompts), len(choices))))
    stages.evaluations(setup_run("smoke", verbose=False))
    return {str(p.parent.relative_to(cache_root)) for p in cache_root.rglob("*.json")}


def _recomputed(monkeypatch, tmp_path, module):
    original = run_fake_pipeline(monkeypatch, tmp_path / "a")
    edit_source(monkeypatch, tmp_path, module)
    edited = run_fake_pipeline(monkeypatch, tmp_path / "b")
    by_stage = lambda folders, stage: {f for f in folders if f.split("/")[1] == stage}  # noqa: E731
    return ({stage: len(by_stage(edited - original, stage)) for stage in ("align", "attack", "evaluate")},
            {stage: len(by_stage(edited & original, stage)) for stage in ("align", "attack", "evaluate")})


def test_editing_the_vaccine_perturbation_recomputes_what_it_runs_in(tmp_path, monkeypatch):
    """vaccine.attention runs in the Vaccine and RandomVaccine alignments and in every attack (drift)."""
    smoke = setup_run("smoke", verbose=False).profile
    n_attacks = len(stages.grid_runs(smoke))
    aligned_sft = {s for m, _, s in stages.grid_runs(smoke) if m == "sft"}
    recomputed, kept = _recomputed(monkeypatch, tmp_path, "vaccine.attention")
    n_vaccine = len({s for m, _, s in stages.grid_runs(smoke) if m == "vaccine"}) + 1  # + random_vaccine
    assert recomputed == {"align": n_vaccine, "attack": n_attacks, "evaluate": n_attacks + 1}
    # Kept: the SFT alignments, and the evaluations of the base and SFT models before any attack.
    assert kept == {"align": len(aligned_sft), "attack": 0, "evaluate": 2}


def test_editing_a_defense_recomputes_its_attacks_only(tmp_path, monkeypatch):
    smoke = setup_run("smoke", verbose=False).profile
    n_defended = len([m for m in smoke.baselines if m in ("kl", "ewc")])
    recomputed, kept = _recomputed(monkeypatch, tmp_path, "vaccine.defenses")
    assert n_defended and recomputed == {"align": 0, "attack": n_defended, "evaluate": n_defended}
    assert kept["attack"] == len(stages.grid_runs(smoke)) - n_defended


def test_stage_keys_do_not_depend_on_where_the_cache_lives(tmp_path, monkeypatch):
    keys = []
    for root in (tmp_path / "a", tmp_path / "b"):
        monkeypatch.setattr(paths, "CACHE", root)
        keys.append(cache.stage_key(aligned=str(root / "smoke" / "align" / "123" / "model"), seed=0))
    assert keys[0] == keys[1]
    assert cache.stage_key(aligned=str(tmp_path / "b-other" / "model"), seed=0) != keys[1]  # only the cache root is dropped
