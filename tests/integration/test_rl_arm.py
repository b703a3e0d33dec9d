"""The RL-data arm end to end on the smoke profile: GRPO trains a model, cached under its key (with
rewards all equal it stays the base model), and both arms are sampled from ORZ's prefix; the held-out SciQ items of
the task-accuracy measure lie outside every split of the run."""

import dataclasses

import pytest
import safetensors.torch

from alignlab.extraction import ability, rl
from alignlab.profile import load_profile, setup_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def smoke():
    return setup_run("smoke", verbose=False)


def test_grpo_trains_a_cached_model_and_both_arms_sample_from_the_template(smoke):
    p = smoke.profile
    path = rl.rl_model(smoke)
    assert path.endswith("model") and rl.rl_model(smoke) == path  # the second call reads the cache
    curve = rl.reward_curve(smoke)
    assert [r["step"] for r in curve] == list(range(1, p.rl_steps + 1))
    assert all(0.0 <= r["reward"] <= 1.5 for r in curve)
    from alignlab.models import load_model

    # A random model never tags an answer in 8 tokens: every group's rewards are equal, so GRPO has no
    # advantage to follow and the merged model is the base model (why the cpu profile adds a format reward).
    assert all(r["reward"] == 0.0 for r in curve)
    trained = safetensors.torch.load_file(f"{path}/model.safetensors")
    base = load_model(p.model)[0].state_dict()
    assert all(base[k].equal(v) for k, v in trained.items() if k in base)
    rows = rl.rl_matches(smoke)
    assert {r["arm"] for r in rows} == {"target", "control"} and len(rows) == 2 * p.n_rl_samples
    assert all(-1.01 <= r["score"] <= 1.01 for r in rows)


def test_the_rl_questions_and_the_sciq_items_lie_outside_the_runs_splits(smoke):
    taken = {(r["source"], str(r["id"])) for r in smoke.splits.helpful + smoke.splits.benign_eval
             + smoke.splits.task_train + smoke.splits.task_eval}
    assert not {("gsm8k", str(r["id"])) for r in rl.rl_records(smoke)} & taken
    items = ability.held_out_items(smoke)
    assert len(items) == smoke.profile.n_task_heldout and not {("sciq", str(r["id"])) for r in items} & taken
    assert items == ability.held_out_items(smoke)  # drawn by the data seed


def test_too_many_held_out_items_is_refused_with_the_fix():
    run = setup_run(dataclasses.replace(load_profile("smoke"), n_task_heldout=5000), verbose=False)
    with pytest.raises(ValueError, match="n_task_heldout=5000.*lower it"):
        ability.held_out_items(run)
