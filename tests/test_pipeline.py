"""Bad attack configurations fail before any training, with the value and the fix named."""

import pytest

from alignlab import config, pipeline
from alignlab.data import DataError


@pytest.fixture
def smoke():
    return config.load_profile("smoke")


def test_attack_mixture_has_the_asked_harmful_share(smoke):
    records = pipeline.attack_data(smoke, 0.2, seed=0)
    assert len(records) == smoke["n_finetune"]
    assert sum(r["label"] == "harmful" for r in records) == int(0.2 * smoke["n_finetune"])
    assert records == pipeline.attack_data(smoke, 0.2, seed=0) != pipeline.attack_data(smoke, 0.2, seed=1)


def test_harmful_ratio_without_harmful_samples(smoke):
    with pytest.raises(ValueError, match=r"harmful_ratio=0.2 needs 4 harmful samples but n_harmful_ft=0"):
        pipeline.attack_data(dict(smoke, n_harmful_ft=0), 0.2, seed=0)


def test_more_task_samples_than_the_data(smoke):
    with pytest.raises(DataError, match="only 872 exist"):
        pipeline.attack_data(dict(smoke, n_finetune=5000), 0.0, seed=0)


def test_unknown_safety_source(smoke):
    with pytest.raises(ValueError, match="safety_source='web' is invalid"):
        pipeline.splits(dict(smoke, safety_source="web"))


def test_alignment_set_mixes_in_the_helpful_samples(smoke):
    s = pipeline.splits(smoke)
    mixed = pipeline.alignment_set(smoke)
    assert mixed == s["alignment"] + s["helpful"] and len(s["helpful"]) == smoke["n_align_helpful"] > 0
    assert pipeline.alignment_set(dict(smoke, n_align_helpful=0)) == s["alignment"]
    assert len(pipeline.post_training_texts(smoke)) == len(mixed)
