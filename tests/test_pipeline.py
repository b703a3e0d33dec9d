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
    assert len(pipeline.post_training_texts(smoke, "sft")) == len(mixed)


def test_extraction_targets_name_their_post_training_set(smoke):
    assert pipeline.extraction_model(smoke, "allenai/OLMo-2-1124-7B-Instruct") == "allenai/OLMo-2-1124-7B-Instruct"
    with pytest.raises(ValueError, match="'olmo' is not an extraction target"):
        pipeline.post_training_texts(smoke, "olmo")
    with pytest.raises(DataError, match="unknown dataset 'tulu4'"):
        pipeline.post_training_texts(dict(smoke, extraction_targets={"sft": "tulu4"}), "sft")


def test_any_model_can_be_an_extraction_target(smoke, tmp_path, monkeypatch):
    from alignlab import paths

    monkeypatch.setattr(paths, "CACHE", tmp_path)
    p = dict(smoke, n_samples=3, extraction_targets={"tiny-random-llama": "alignment"})
    rows = pipeline.match(p, "tiny-random-llama", "user_header")
    assert len(rows) == 3 and all(r["method"] == "tiny-random-llama" and -1 <= r["embedding"] <= 1 + 1e-5 for r in rows)
    assert {r["nearest"] for r in rows} <= set(pipeline.post_training_texts(p, "tiny-random-llama"))
