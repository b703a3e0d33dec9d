"""alignlab.alignment: the core alignment stage refuses to train or resolve a Vaccine-study method
by name (it would train plain SFT under another name), and its keys are the Vaccine stages' keys."""

import pytest

from alignlab import alignment, paths
from alignlab.profile import setup_run
from alignlab.vaccine import stages

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def run():
    return setup_run("smoke", verbose=False)


def test_a_vaccine_method_needs_its_trainer_and_code(run):
    with pytest.raises(ValueError, match="needs its trainer"):
        alignment.aligned_model(run, "vaccine")


@pytest.mark.parametrize("name", alignment.VACCINE_METHODS)
def test_model_path_refuses_vaccine_methods_by_name(run, name):
    with pytest.raises(ValueError, match="Vaccine-study method"):
        alignment.model_path(run, name)


def test_model_path_resolves_base_sft_and_ids(run, monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "CACHE", tmp_path)
    monkeypatch.setattr(alignment, "align", lambda base, data, out, **kw: out / "model")  # no training
    assert alignment.model_path(run, "base") == run.profile.model
    assert alignment.model_path(run, "some/hub-id") == "some/hub-id"
    assert alignment.model_path(run, "sft") == stages.aligned_model(run, "sft", seed=run.profile.seeds[0])
    assert stages.aligned_model(run, "kl") == stages.aligned_model(run, "sft")  # the defenses fine-tune SFT's model
    assert stages.aligned_model(run, "vaccine", rho=0.0) == stages.aligned_model(run, "sft")  # rho 0 is SFT
    assert stages.aligned_model(run, "vaccine") != stages.aligned_model(run, "sft")
    assert set(alignment.VACCINE_METHODS) == {"vaccine", *stages.BASELINES}


def test_the_plans_mirror_refuses_the_same_names():
    from alignlab import plan

    assert set(plan.ALIGNED + plan.BASELINES) - {"sft"} == set(alignment.VACCINE_METHODS)
