"""Harmful embedding drift on the tiny random model: per-sample values that add up to HED."""

import pytest

pytestmark = pytest.mark.integration


def test_drift_is_recorded_per_probe_sample_and_sums_to_hed():
    from peft import LoraConfig, get_peft_model

    from alignlab.models import load_model
    from alignlab.training import make_batches
    from alignlab.vaccine.drift import DriftCallback

    model, tokenizer = load_model("tiny-random-llama", device="cpu")
    # init_lora_weights=False: a random adapter, so the model has drifted from its reference
    model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    records = [{"prompt": f"Question {i}?" + " more" * i, "response": "An answer."} for i in range(5)]
    callback = DriftCallback(make_batches(tokenizer, records, batch_size=2, max_length=32))
    callback._measure(model, step=3, write=False)
    (point,) = callback.history
    assert len(point["hed_per_sample"]) == len(records)
    assert all(v > 0 for v in point["hed_per_sample"])
    assert point["hed"] == pytest.approx(sum(point["hed_per_sample"]), rel=1e-6)
    # the adapter switched off: the model is its own reference, no drift
    with model.disable_adapter():
        callback._measure(model, step=4, write=False)
    assert callback.history[-1]["hed"] == pytest.approx(0.0, abs=1e-6)
