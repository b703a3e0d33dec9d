"""alignlab.judges.labelling and scripts/label_answers.py: a drawn round gives the readers id,
prompt and answer only (the model apart); add stores majority labels and the model, every id
labelled once, no answer in both files."""

import importlib.util
import json
from pathlib import Path

import pytest

from alignlab.judges import labelling
from alignlab.judges.audit import load_labelled_answers

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "label_answers.py"


@pytest.fixture
def script(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("label_answers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(labelling, "TARGETS", {"dev": tmp_path / "dev.jsonl", "test": tmp_path / "test.jsonl"})
    return module


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


ANSWERS = [{"id": 0, "prompt": "p0", "answer": "a0"}, {"id": 1, "prompt": "p1", "answer": "a1"}]


def annotators(tmp_path, *labels):
    return [write(tmp_path / f"ann{k}.jsonl", [{"id": i, "harmful": v} for i, v in enumerate(votes)])
            for k, votes in enumerate(labels)]


def test_add_stores_the_majority_with_every_vote(script, tmp_path):
    answers = write(tmp_path / "round.jsonl", ANSWERS)
    labelling.add(answers, annotators(tmp_path, [True, False], [True, True], [False, False]), labelling.TARGETS["test"], "9")
    rows = load_labelled_answers(labelling.TARGETS["test"])
    assert [r["harmful"] for r in rows] == [True, False]
    assert rows[0]["votes"] == {"annotator_1": True, "annotator_2": True, "annotator_3": False}


def test_an_answer_already_in_dev_is_not_added_to_test(script, tmp_path):
    answers = write(tmp_path / "round.jsonl", ANSWERS)
    files = annotators(tmp_path, [True, False], [True, False], [True, False])
    labelling.add(answers, files, labelling.TARGETS["dev"], "1")
    labelling.add(answers, files, labelling.TARGETS["test"], "2")
    assert not labelling.TARGETS["test"].exists() or load_labelled_answers(labelling.TARGETS["test"]) == []


@pytest.mark.parametrize("labels", [
    [{"id": 0, "harmful": True}],  # an id missing
    [{"id": 0, "harmful": True}, {"id": 0, "harmful": False}, {"id": 1, "harmful": True}],  # an id twice
    [{"id": 0, "harmful": "yes"}, {"id": 1, "harmful": True}],  # not a boolean
])
def test_add_refuses_an_incomplete_annotator_file(script, tmp_path, labels):
    answers = write(tmp_path / "round.jsonl", ANSWERS)
    good = annotators(tmp_path, [True, False], [True, False])
    with pytest.raises(ValueError, match="exactly one boolean"):
        labelling.add(answers, [*good, write(tmp_path / "bad.jsonl", labels)], labelling.TARGETS["test"], "3")


def test_add_needs_an_odd_number_of_annotators(script, tmp_path):
    answers = write(tmp_path / "round.jsonl", ANSWERS)
    with pytest.raises(ValueError, match="odd number"):
        labelling.add(answers, annotators(tmp_path, [True, False], [True, False]), labelling.TARGETS["test"], "3")


def test_dump_gives_the_readers_no_model(script, tmp_path, monkeypatch):
    """Blinding: the file the annotators receive holds id, prompt and answer, nothing else; which
    model wrote each answer is kept in a file of its own, and add joins it back."""
    from alignlab import profile
    from alignlab.vaccine import stages

    evaluations = [{"method": m, "harmful_ratio": r, "seed": 0,
                    "result": {"harmful": [{"prompt": f"p{i}", "answer": f"{m} {r} {i}"} for i in range(3)]}}
                   for m, r in (("sft", 0.0), ("vaccine", 0.2))]
    monkeypatch.setattr(stages, "evaluations", lambda run: evaluations)
    monkeypatch.setattr(profile, "setup_run", lambda name, verbose=False: None)
    out = tmp_path / "round.jsonl"
    assert labelling.draw_round(script.answered("smoke", 0, 0, None), out, n=4, seed=0) == 4
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and all(tuple(r) == labelling.READER_FIELDS for r in rows)
    assert not any("sft" in json.dumps(list(r)) or "model" in r for r in rows)
    models = {r["id"]: r["model"] for r in map(json.loads, labelling.models_file(out).read_text().splitlines())}
    assert set(models) == {r["id"] for r in rows} and {m.split()[0] for m in models.values()} == {"sft", "vaccine"}
    labelling.add(out, annotators(tmp_path, *[[True, False, True, False]] * 3), labelling.TARGETS["test"], "r1")
    stored = load_labelled_answers(labelling.TARGETS["test"])
    assert [r["model"] for r in stored] == [models[r["id"]] for r in rows]
