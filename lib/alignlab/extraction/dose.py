"""Post-training doses for the extraction study's dose-response of memorisation.

An extraction target named ``sft@<epochs>`` is the profile's SFT alignment recipe run for that many
epochs (loss on the answer only, as Tulu / OLMo SFT and the Vaccine authors train); ``sft_full@<epochs>``
trains the same recipe with the loss on every token, the user's question included, which is what a
model must have learnt to write a training question back from a bare chat prefix; ``sft@0`` is the
model before post-training, the control. A dose mapped to ``alignment`` is post-trained on the whole
alignment set (``sft@<align_epochs>`` is then notebook 01's SFT model, one cache entry); one mapped to
``dose_set`` on ``dose_set_size`` samples spread evenly over it (:func:`dose_records`), so that a small
model sees each sample often enough within the budget. Each dose is a whole run with its own cosine
schedule, not a checkpoint of a longer one. A dose named with ``_seed<k>`` after it is a replicate run
of that dose, trained with seed k (the training run is the unit of inference).
"""

from typing import NamedTuple

from alignlab.profile import DOSE_SET, DOSE_TARGET
from alignlab.training import PlainLossSFTTrainer, TrainerSpec

LOSS = {"sft": "completion", "sft_full": "full_sequence"}
# The code a full-sequence dose runs besides the alignment's own: its trainer lives here.
FULL_SEQUENCE_CODE = ("extraction.dose",)


class Dose(NamedTuple):
    epochs: int
    loss: str
    seed: int | None  # None: the profile's first seed; a replicate names its own (``sft_full@40_seed1``)


def parse_dose(target: str) -> Dose | None:
    """The dose a target's name asks for, or None for any other target."""
    m = DOSE_TARGET.match(target)
    return Dose(int(m["epochs"]), LOSS[m["arm"]], None if m["seed"] is None else int(m["seed"])) if m else None


def is_dose(target: str) -> bool:
    return parse_dose(target) is not None


class FullSequenceSFTTrainer(PlainLossSFTTrainer):
    """The project's SFT trainer with the loss on every token of the rendered conversation.

    TRL builds each example's labels when it prepares the dataset, masking the prompt only when the
    config's ``completion_only_loss`` is set, so the flag is turned off before that happens."""

    def __init__(self, *args, **kwargs):
        kwargs["args"].completion_only_loss = False
        super().__init__(*args, **kwargs)


def dose_records(run) -> list[dict]:
    """The dose set: ``dose_set_size`` samples spread evenly over the alignment set, so that it holds
    refusals and helpful answers in the alignment set's proportions."""
    records, size = run.splits.alignment_set, run.profile.dose_set_size
    if size is None or size > len(records):
        raise ValueError(f"dose_set_size={size}: set it to at most the alignment set's {len(records)} samples")
    return [records[i * len(records) // size] for i in range(size)]


def dose_model(run, target: str) -> str:
    """Path of the merged model of a dose target (trained on first use, cached)."""
    from alignlab.alignment import TRAINING, aligned_model

    dose = parse_dose(target)
    if dose is None:
        raise ValueError(f"{target!r} is not a dose target: name one sft@<epochs> or sft_full@<epochs>")
    epochs, loss, seed = dose
    if epochs == 0:
        return run.profile.model
    seed = run.profile.seeds[0] if seed is None else seed
    records = dose_records(run) if run.profile.extraction_targets[target] == DOSE_SET else None
    if loss == "completion":
        return aligned_model(run, seed=seed, epochs=epochs, records=records)
    return aligned_model(run, "sft_full_sequence", seed=seed, epochs=epochs, records=records,
                         code=TRAINING + FULL_SEQUENCE_CODE, spec=TrainerSpec(trainer_cls=FullSequenceSFTTrainer))
