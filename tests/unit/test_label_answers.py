"""scripts/label_answers.py add: majority labels, every id labelled once, no answer in both files."""

import importlib.util
import json
from pathlib import Path

import pytest

from alignlab.vaccine.judge_audit import load_labelled_answers

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "label_answers.py"


@pytest.fixture
def script(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("label_answers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "TARGETS", {"dev": tmp_path / "dev.jsonl", "test": tmp_path / "test.jsonl"})
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
    script.add(answers, annotators(tmp_path, [True, False], [True, True], [False, False]), script.TARGETS["test"], "9")
    rows = load_labelled_answers(script.TARGETS["test"])
    assert [r["harmful"] for r in rows] == [True, False]
    assert rows[0]["votes"] == {"annotator_1": True, "annotator_2": True, "annotator_3": False}


def test_an_answer_already_in_dev_is_not_added_to_test(script, tmp_path):
    answers = write(tmp_path / "round.jsonl", ANSWERS)
    files = annotators(tmp_path, [True, False], [True, False], [True, False])
    script.add(answers, files, script.TARGETS["dev"], "1")
    script.add(answers, files, script.TARGETS["test"], "2")
    assert not script.TARGETS["test"].exists() or load_labelled_answers(script.TARGETS["test"]) == []


@pytest.mark.parametrize("labels", [
    [{"id": 0, "harmful": True}],  # an id missing
    [{"id": 0, "harmful": True}, {"id": 0, "harmful": False}, {"id": 1, "harmful": True}],  # an id twice
    [{"id": 0, "harmful": "yes"}, {"id": 1, "harmful": True}],  # not a boolean
])
def test_add_refuses_an_incomplete_annotator_file(script, tmp_path, labels):
    answers = write(tmp_path / "round.jsonl", ANSWERS)
    good = annotators(tmp_path, [True, False], [True, False])
    with pytest.raises(SystemExit, match="exactly one boolean"):
        script.add(answers, [*good, write(tmp_path / "bad.jsonl", labels)], script.TARGETS["test"], "3")


def test_add_needs_an_odd_number_of_annotators(script, tmp_path):
    answers = write(tmp_path / "round.jsonl", ANSWERS)
    with pytest.raises(SystemExit, match="odd number"):
        script.add(answers, annotators(tmp_path, [True, False], [True, False]), script.TARGETS["test"], "3")
