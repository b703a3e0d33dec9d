"""The extraction study's doses: the full-sequence trainer puts the question into the loss, the
answer-only one keeps it out, and a dose trains on the dose set and is cached under its own key."""

import dataclasses

import pytest
import safetensors.torch
import torch
from trl import SFTConfig

from alignlab.extraction import stages
from alignlab.extraction.dose import FullSequenceSFTTrainer, dose_model, dose_records
from alignlab.models import load_model
from alignlab.profile import load_profile, setup_run
from alignlab.training import PlainLossSFTTrainer, sft_dataset

pytestmark = pytest.mark.integration


def _labels(trainer_cls, tmp_path, model, tokenizer, records):
    args = SFTConfig(output_dir=str(tmp_path / trainer_cls.__name__), completion_only_loss=True, report_to=[],
                     use_cpu=True, max_length=64)
    trainer = trainer_cls(model=model, args=args, processing_class=tokenizer, train_dataset=sft_dataset(tokenizer, records, 64))
    return trainer.train_dataset


def test_the_full_sequence_loss_covers_the_question_and_the_answer_only_loss_does_not(tmp_path):
    model, tokenizer = load_model("tiny-random-llama")
    records = [{"prompt": "How do I bake bread?", "response": "Mix flour, water and yeast, then bake."}]
    answer_only = _labels(PlainLossSFTTrainer, tmp_path, model, tokenizer, records)[0]
    full = _labels(FullSequenceSFTTrainer, tmp_path, model, tokenizer, records)[0]
    n_question = answer_only["labels"].index(next(t for t in answer_only["labels"] if t != -100))
    assert n_question > 5 and set(answer_only["labels"][:n_question]) == {-100}  # the question is out of the loss ...
    assert answer_only["labels"][n_question:] == answer_only["input_ids"][n_question:]
    assert full["labels"] == full["input_ids"]  # ... and in the full-sequence loss, as every token is


def test_a_dose_trains_on_the_dose_set_under_its_own_key():
    run = setup_run(dataclasses.replace(load_profile("smoke"), dose_set_size=4), verbose=False)
    chosen = dose_records(run)
    everything = run.splits.alignment_set
    assert len(chosen) == 4 and all(r in everything for r in chosen) and chosen[0] is everything[0]
    helpful = set(run.profile.helpful_sources)
    assert {r["source"] in helpful for r in chosen} == {True, False}  # refusals and helpful answers both
    assert stages.post_training_texts(run, "sft_full@2") != stages.post_training_texts(run, "sft")
    assert dose_model(run, "sft@0") == run.profile.model  # the control: no post-training
    assert dose_model(run, "sft@2") != dose_model(run, "sft_full@2") != stages.extraction_model(run, "sft")
    # a replicate run of a dose is trained with its own seed, and its model's weights differ
    replicate = dose_model(run, "sft_full@2_seed1")
    assert replicate != dose_model(run, "sft_full@2")
    first, second = (safetensors.torch.load_file(f"{path}/model.safetensors")
                     for path in (replicate, dose_model(run, "sft_full@2")))
    assert any(not torch.equal(first[k], second[k]) for k in first)
    with pytest.raises(ValueError, match="dose_set_size=999"):
        dose_records(setup_run(dataclasses.replace(load_profile("smoke"), dose_set_size=999), verbose=False))
