"""The stages' data rules and bad configurations: they fail before any training, naming the value and the fix."""

import dataclasses

import pytest

from alignlab.data import DataError
from alignlab.extraction import stages as extraction_stages
from alignlab.profile import ConfigError, load_profile, setup_run
from alignlab.vaccine import stages


def smoke_run(**changes):
    return setup_run(dataclasses.replace(load_profile("smoke"), **changes), verbose=False)


@pytest.fixture(scope="module")
def smoke():
    return smoke_run()


def test_attack_mixture_has_the_asked_harmful_share(smoke):
    records = stages.attack_data(smoke, 0.2, seed=0)
    n = smoke.profile.n_finetune
    assert len(records) == n
    assert sum(r["label"] == "harmful" for r in records) == int(0.2 * n)
    assert records == stages.attack_data(smoke, 0.2, seed=0) != stages.attack_data(smoke, 0.2, seed=1)


def test_harmful_ratio_without_harmful_samples():
    with pytest.raises(ValueError, match=r"harmful_ratio=0.2 needs 4 harmful samples but n_harmful_ft=0"):
        stages.attack_data(smoke_run(n_harmful_ft=0), 0.2, seed=0)


def test_more_task_samples_than_the_data():
    with pytest.raises(DataError, match="only 872 exist"):
        smoke_run(n_finetune=5000).splits


def test_unknown_safety_source():
    with pytest.raises(ConfigError, match="safety_source='web' is invalid"):
        smoke_run(safety_source="web")


def test_splits_are_computed_once_per_run(smoke):
    assert smoke.splits is smoke.splits


def test_alignment_set_mixes_in_the_helpful_samples(smoke):
    s = smoke.splits
    assert s.alignment_set == s.alignment + s.helpful and len(s.helpful) == smoke.profile.n_align_helpful > 0
    assert smoke_run(n_align_helpful=0).splits.alignment_set == s.alignment
    assert len(extraction_stages.post_training_texts(smoke, "sft")) == len(s.alignment_set)


def test_extraction_targets_name_their_post_training_set(smoke):
    olmo = "allenai/OLMo-2-1124-7B-Instruct"
    assert extraction_stages.extraction_model(smoke, olmo) == olmo
    with pytest.raises(ValueError, match="'olmo' is not an extraction target"):
        extraction_stages.post_training_texts(smoke, "olmo")
    with pytest.raises(DataError, match="unknown dataset 'tulu4'"):
        extraction_stages.post_training_texts(smoke_run(extraction_targets={"sft": "tulu4"}, prefix_table_target=None), "sft")


def test_any_model_can_be_an_extraction_target(tmp_path, monkeypatch):
    from alignlab import paths

    monkeypatch.setattr(paths, "CACHE", tmp_path)
    run = smoke_run(n_samples=3, extraction_targets={"tiny-random-llama": "alignment"}, main_targets=("tiny-random-llama",),
                    prefix_table_target=None)
    rows = extraction_stages.match(run, "tiny-random-llama", "user_header")
    assert len(rows) == 3 and all(r["method"] == "tiny-random-llama" and -1 <= r["embedding"] <= 1 + 1e-5 for r in rows)
    assert {r["nearest"] for r in rows} <= set(extraction_stages.post_training_texts(run, "tiny-random-llama"))


def test_paper_table_and_paired_tests_on_known_outcomes():
    """hs_table and the paired test recover a planted gap (positive control) and find none where
    the two methods agree (negative control)."""
    import numpy as np
    import pandas as pd

    from alignlab.stats import paired_difference

    rng = np.random.default_rng(0)
    sft = rng.random((3, 200)) < 0.5
    vaccine = sft & (rng.random((3, 200)) < 0.6)  # Vaccine refuses ~40% of what SFT complied with
    gap = paired_difference(sft, vaccine)
    assert gap["ci_low"] > 0 and gap["p_value"] < 0.01 and gap["mde"] < gap["estimate"]
    null = paired_difference(sft, sft)
    assert null["estimate"] == 0 and null["discordant"] == 0
    rows = pd.DataFrame([{"method": m, "harmful_ratio": 0.1, "seed": s, "hs_j": 100 * float(x[s].mean()), "fa": 50.0,
                          "flags": {"j": x[s].tolist()}, "task_correct": [True, False] * 100}
                         for m, x in (("sft", sft), ("vaccine", vaccine)) for s in range(3)])
    table = stages.hs_table(rows, ["j"])
    assert list(table["n_runs"]) == [3, 3] and table["paper_hs"].tolist() == [55.2, 48.2]
    assert table["hs_j_ci"].gt(0).all() and table["fa_ci"].eq(0).all()  # three runs: a t-interval over runs
    single = stages.hs_table(rows[rows["seed"] == 0], ["j"])  # one run: the binomial interval over its prompts
    rate = single["hs_j_mean"].iloc[0] / 100
    assert single["hs_j_ci"].iloc[0] == pytest.approx(100 * 1.96 * (rate * (1 - rate) / 200) ** 0.5)


def test_prefix_names_with_one_text_share_one_sampling(tmp_path, monkeypatch):
    """Arms are keyed by the prefix's text: a second name for the same text (a template-less model's
    user_header and user_header_no_system; here the text itself) reads the first arm's store and
    loads no model."""
    from alignlab import models, paths
    from alignlab.chat import resolve_prefix

    monkeypatch.setattr(paths, "CACHE", tmp_path)
    run = smoke_run(n_samples=3, n_samples_secondary=3, extraction_targets={"tiny-random-llama": "alignment"}, prefix_table_target=None,
                    main_targets=("tiny-random-llama",))
    first = extraction_stages.samples(run, "tiny-random-llama", "user_header")
    text = resolve_prefix(models.load_tokenizer("tiny-random-llama"), "user_header")

    def no_load(*args, **kwargs):
        raise AssertionError("a finished arm must not load the model")

    monkeypatch.setattr(models, "load_model", no_load)
    assert extraction_stages.samples(run, "tiny-random-llama", text) == first


def test_questions_and_answers_are_scored_apart(smoke, tmp_path, monkeypatch):
    """A generation that writes a training question back with a new answer matches on its question
    only; one cut off before its answer has no answer score; a copy matches both, on one sample."""
    from alignlab import paths

    monkeypatch.setattr(paths, "CACHE", tmp_path)
    (q0, a0), (q1, _), (q2, _) = extraction_stages.post_training_pairs(smoke, "sft")[:3]
    generations = [{"id": 0, "question": q0, "answer": a0}, {"id": 1, "question": q1, "answer": "Zebras sleep standing."},
                   {"id": 2, "question": q2, "answer": ""}]
    monkeypatch.setattr(extraction_stages, "samples", lambda run, target, prefix: generations)
    rows = extraction_stages.match_parts(smoke, "sft", "user_header")
    assert [round(r["question_score"], 3) for r in rows] == [1.0, 1.0, 1.0]
    assert rows[0]["answer_score"] == pytest.approx(1.0, abs=1e-3) and rows[1]["answer_score"] < 0.9
    assert rows[2]["answer_score"] is None and [r["same_sample"] for r in rows] == [True, False, False]
    assert extraction_stages.match_parts(smoke, "sft", "user_header") == rows  # cached
