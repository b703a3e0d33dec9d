"""Which run made each claim: a part of the ledger whose notebooks did not run keeps its last
claims only while its fingerprint (code, notebooks, profile values) is unchanged."""

import dataclasses
import json

import pytest

from alignlab import claims, paths, provenance, timing
from alignlab.profile import load_profile
from alignlab.vaccine import extras_claims

pytestmark = pytest.mark.unit


def test_a_fingerprint_moves_with_the_values_its_part_reads_and_only_those(monkeypatch):
    cpu = load_profile("cpu")
    before = {part: provenance.fingerprint(part, "cpu") for part in ("vaccine", "extraction")}
    fewer_samples = dataclasses.replace(cpu, n_samples=cpu.n_samples + 1)  # extraction section
    monkeypatch.setattr(provenance, "load_profile", lambda name: fewer_samples)
    assert provenance.fingerprint("vaccine", "cpu") == before["vaccine"]
    assert provenance.fingerprint("extraction", "cpu") != before["extraction"]
    other_rho = dataclasses.replace(cpu, rho=cpu.rho + 1)  # align section: both parts train on the alignment
    monkeypatch.setattr(provenance, "load_profile", lambda name: other_rho)
    assert all(provenance.fingerprint(part, "cpu") != before[part] for part in before)


def test_a_fingerprint_moves_with_a_notebook_and_a_stage_module(tmp_path, monkeypatch):
    before = provenance.fingerprint("drift", "cpu")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for nb in paths.NOTEBOOKS.glob("*.ipynb"):
        (notebooks / nb.name).write_bytes(nb.read_bytes())
    monkeypatch.setattr(paths, "NOTEBOOKS", notebooks)
    assert provenance.fingerprint("drift", "cpu") == before
    (notebooks / "04_drift.ipynb").write_text((notebooks / "04_drift.ipynb").read_text() + " ")
    assert provenance.fingerprint("drift", "cpu") != before
    monkeypatch.setattr(provenance, "code_version", lambda *modules: "edited" if "vaccine.trainer" in modules else "")
    assert provenance.fingerprint("extraction", "cpu") != provenance.fingerprint("vaccine", "cpu")
    assert "vaccine.trainer" in provenance.parts()["drift"]["code"]
    assert "vaccine.trainer" not in provenance.parts()["extraction"]["code"]


def _results_missing(name, profile):
    raise FileNotFoundError(f"results/{profile}/{name}.json does not exist")


def test_the_ledger_keeps_a_part_that_did_not_run_only_with_its_fingerprint(monkeypatch):
    monkeypatch.setattr(claims, "load_results", _results_missing)
    monkeypatch.setattr(extras_claims, "load_results", _results_missing)
    current = provenance.fingerprint("vaccine", "cpu")
    earlier = [{"claim": "Vaccine lowers HS", "ours": "11.5 pts", "verdict": "inconclusive", "part": "vaccine",
                "fingerprint": current},
               {"claim": "drift", "ours": "2e5", "verdict": "inconclusive", "part": "drift", "fingerprint": "0ld"}]
    ledger = claims.ledger("cpu", earlier)
    kept = [c for c in ledger if c.get("kept_from_earlier_run")]
    assert [c["claim"] for c in kept] == ["Vaccine lowers HS"]
    by_part = {c["part"]: c for c in ledger}
    assert by_part["drift"]["verdict"] == "not run" and by_part["extraction"]["verdict"] == "not run"
    assert by_part["extras"]["verdict"] == "not run"
    assert "earlier run" in claims.readme_table(ledger) and "this run" not in claims.readme_table(ledger)


def test_a_claim_this_run_computes_carries_its_part_and_fingerprint(monkeypatch):
    monkeypatch.setattr(claims, "drift_claim", lambda profile: [{"claim": "drift", "verdict": "inconclusive",
                                                                 "kept_from_earlier_run": True}])
    monkeypatch.setattr(claims, "load_results", _results_missing)
    monkeypatch.setattr(extras_claims, "load_results", _results_missing)
    (drift,) = [c for c in claims.ledger("cpu") if c["part"] == "drift"]
    assert drift["fingerprint"] == provenance.fingerprint("drift", "cpu") and "kept_from_earlier_run" not in drift


def test_the_timing_table_marks_what_an_earlier_run_measured(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    published = tmp_path / "docs" / "notebooks"
    published.mkdir(parents=True)
    executed = tmp_path / "results" / "cpu"
    executed.mkdir(parents=True)
    for folder, name, seconds in ((published, "01_align", 60), (published, "05_sample", 1), (executed, "05_sample", 120)):
        (folder / f"{name}.ipynb").write_text(json.dumps({"metadata": {"papermill": {"duration": seconds}}}))
    (tmp_path / "README.md").write_text("<!-- timing:begin -->\n| notebook | a | b |\n|---|---|---|\n"
                                        "| 01_align | 1.0 | 13.3 |\n| 05_sample | 0.0 | 9.7 |\n<!-- timing:end -->\n")
    (executed / "stage_times.json").write_text(json.dumps(
        {"by_notebook": {"01_align": None, "05_sample": 30.0}, "unmeasured": ["align: vaccine"], "total_minutes": None,
         "rows": [{"notebook": "01_align", "stage": "align: vaccine"}]}))
    table = timing.readme_table("cpu")
    assert "| 01_align | 1.0 (earlier run) | 13.3 (earlier run) |" in table
    assert "| 05_sample | 2.0 | 30.0 |" in table and "| **all (`make reproduce`)** | **3.0** | **43.3** |" in table
    assert "without a clean measurement" not in table


def test_the_timing_table_shows_the_second_target_apart_from_the_main_total(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    executed = tmp_path / "results" / "cpu"
    executed.mkdir(parents=True)
    (tmp_path / "docs" / "notebooks").mkdir(parents=True)
    (tmp_path / "README.md").write_text("")
    for name, seconds in (("05_sample", 120), ("09_grid", 600)):
        (executed / f"{name}.ipynb").write_text(json.dumps({"metadata": {"papermill": {"duration": seconds}}}))
    (executed / "stage_times.json").write_text(json.dumps({"by_notebook": {"05_sample": 30.0, "09_grid": 70.0},
                                                           "unmeasured": [], "rows": []}))
    table = timing.readme_table("cpu").splitlines()
    assert table[-2:] == ["| **all (`make reproduce`)** | **2.0** | **30.0** |", "| 09_grid (`make extras`) | 10.0 | 70.0 |"]
    (tmp_path / "README.md").write_text("<!-- timing:begin -->\n" + "\n".join(table) + "\n<!-- timing:end -->\n")
    assert timing._earlier_cold_minutes() == {"05_sample": 30.0, "09_grid": 70.0}


def test_a_part_not_run_names_its_missing_results_wherever_they_live(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "elsewhere")

    def missing(name, profile):
        raise FileNotFoundError(f"{paths.RESULTS / profile / name}.json does not exist")

    monkeypatch.setattr(claims, "load_results", missing)
    monkeypatch.setattr(extras_claims, "load_results", missing)
    (extras,) = [c for c in claims.ledger("smoke") if c["part"] == "extras"]
    assert extras["verdict"] == "not run" and extras["ours"] == "results/smoke/09_grid.json does not exist"
