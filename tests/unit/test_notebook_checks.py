"""The nbval references: every notebook has one summary cell marked NBVAL_CHECK_OUTPUT, whose
stored output `make test` compares; scripts/refresh_nbval_outputs.py refreshes only those cells."""

import json

import pytest

from alignlab import paths
from alignlab.report import CHECK_MARKER, refresh_checked_outputs

pytestmark = pytest.mark.unit


def _cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _marked(cell) -> bool:
    return CHECK_MARKER in "".join(cell["source"]).splitlines()


@pytest.mark.parametrize("notebook", sorted(paths.ROOT.glob("notebooks/[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_each_notebook_checks_one_summary_cell_and_stores_only_its_output(notebook):
    cells = _cells(notebook)
    marked = [c for c in cells if _marked(c)]
    assert len(marked) == 1, f"{notebook.name}: mark one small summary cell with {CHECK_MARKER}"
    assert marked[0]["outputs"] and marked[0]["execution_count"], \
        f"{notebook.name}: its reference output (and the count nbval needs) is missing: run scripts/refresh_nbval_outputs.py"
    assert not [c for c in cells if not _marked(c) and c["outputs"]], f"{notebook.name}: strip the other cells' outputs"


def test_refresh_copies_the_marked_cells_outputs_only(tmp_path):
    def notebook(outputs, count=None):
        cells = [{"cell_type": "code", "id": "a", "metadata": {}, "execution_count": count, "outputs": outputs,
                  "source": [CHECK_MARKER + "\n", "print(1)"]},
                 {"cell_type": "code", "id": "b", "metadata": {}, "execution_count": None, "outputs": outputs,
                  "source": ["print(2)"]}]
        return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}

    out = [{"output_type": "execute_result", "execution_count": 7, "data": {"text/plain": "1"}, "metadata": {}}]
    (tmp_path / "src").mkdir()
    (tmp_path / "ran").mkdir()
    (tmp_path / "src" / "01_x.ipynb").write_text(json.dumps(notebook([])))
    (tmp_path / "ran" / "01_x.ipynb").write_text(json.dumps(notebook(out, count=3)))
    assert refresh_checked_outputs(tmp_path / "ran", tmp_path / "src") == {"01_x": 1}
    a, b = json.loads((tmp_path / "src" / "01_x.ipynb").read_text())["cells"]
    assert a["outputs"] == out and a["execution_count"] == 3 and b["outputs"] == [] and b["execution_count"] is None
    (tmp_path / "ran" / "01_x.ipynb").unlink()
    with pytest.raises(FileNotFoundError, match="make reproduce PROFILE=smoke"):
        refresh_checked_outputs(tmp_path / "ran", tmp_path / "src")


def test_published_notebooks_show_paths_relative_to_the_repository(tmp_path, monkeypatch):
    from alignlab import report

    monkeypatch.setattr(paths, "ROOT", tmp_path)
    monkeypatch.setattr(paths, "RESULTS", tmp_path / "results")
    (tmp_path / "results" / "cpu").mkdir(parents=True)
    (tmp_path / "results" / "cpu" / "01_x.ipynb").write_text(json.dumps({"text": f"{tmp_path}/results/cpu/01_x.json"}))
    (published,) = report.publish_notebooks("cpu")
    assert published == tmp_path / "docs" / "notebooks" / "01_x.ipynb"
    assert json.loads(published.read_text()) == {"text": "results/cpu/01_x.json"}
    assert report.publish_notebooks("smoke") == []  # only the publishing profile
