"""Results JSONs and figures: where a notebook's numbers and plots go.

The profile that publishes (``publish: true``, the cpu profile) puts its figures in ``figures/``
(committed, shown in README) and its executed notebooks in ``docs/notebooks/``; every other
profile keeps them under ``results/<profile>/``, so that CI never overwrites a real figure.
"""

import json
import math
import re
from pathlib import Path

import numpy as np

from alignlab import paths
from alignlab.cache import write_json, write_text
from alignlab.profile import load_profile


def figure_dir(profile) -> Path:
    """figures/ for the profile that publishes (``publish``), results/<profile>/figures otherwise."""
    p = load_profile(profile)
    folder = paths.FIGURES if p.publish else paths.RESULTS / p.name / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _readme_block(name: str) -> re.Pattern:
    """README's block ``name``: its begin marker, its body, its end marker (groups 1-3)."""
    return re.compile(rf"(<!-- {re.escape(name)}:begin[^>]*-->\n)(.*?)(<!-- {re.escape(name)}:end -->)", re.S)


def write_readme_block(name: str, body: str, readme: Path | None = None) -> None:
    """Replace what README.md holds between ``<!-- NAME:begin ... -->`` and ``<!-- NAME:end -->``
    with ``body``: README's numbers are written by the code that measured them, never typed."""
    readme = readme or paths.ROOT / "README.md"
    text = readme.read_text()
    block = _readme_block(name)
    if not block.search(text):
        raise ValueError(f"{readme} has no '<!-- {name}:begin -->' ... '<!-- {name}:end -->' markers: add them "
                         "where the block belongs")
    readme.write_text(block.sub(lambda m: f"{m.group(1)}{body}\n{m.group(3)}", text, count=1))


def read_readme_block(name: str, readme: Path | None = None) -> str | None:
    """What README.md holds between the markers of block ``name`` (None without the markers)."""
    found = _readme_block(name).search((readme or paths.ROOT / "README.md").read_text())
    return found.group(2) if found else None


def savefig(fig, name: str, profile) -> list[Path]:
    """Save a figure as PNG and PDF, titled with the profile that made it (and its ``figure_note``)."""
    p = load_profile(profile)
    fig.suptitle(f"[{p.name} profile]" + (f"  {p.figure_note}" if p.figure_note else ""), fontsize=8, x=0.99,
                 ha="right")
    out = []
    for ext in ("png", "pdf"):
        path = figure_dir(p) / f"{name}.{ext}"
        fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"CreationDate": None} if ext == "pdf" else None)
        out.append(path)
    return out


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        # six decimals, but six significant digits below 1e-3: a p-value of 7e-22 must not be stored as 0
        return float(f"{obj:.6g}") if 0 < abs(obj) < 1e-3 else round(obj, 6)
    return obj


def results_path(notebook: str, profile: str) -> Path:
    return paths.RESULTS / profile / f"{notebook}.json"


def save_results(notebook: str, run, results: dict) -> Path:
    """Write ``results/<profile>/<notebook>.json`` atomically: the profile and the numbers."""
    import dataclasses

    profile = run.profile
    params = {k: v for k, v in dataclasses.asdict(profile).items() if k != "source"}
    return write_json(results_path(notebook, profile.name),
                      _plain({"notebook": notebook, "params": params, "results": results}))


def load_results(notebook: str, profile: str) -> dict:
    path = results_path(notebook, profile)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run notebooks/{notebook}.ipynb for the {profile} profile first")
    return json.loads(path.read_text())["results"]


def publish_notebooks(profile) -> list[Path]:
    """The executed notebooks of a publishing profile, copied to ``docs/notebooks/`` with their
    outputs and figures, for a reader who runs nothing; none for any other profile."""
    p = load_profile(profile)
    if not p.publish:
        return []
    folder = paths.ROOT / "docs" / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    published = []
    for nb in sorted((paths.RESULTS / p.name).glob("[0-9][0-9]_*.ipynb")):
        # paths the run printed (results, cache folders) are shown relative to the repository
        published.append(write_text(folder / nb.name, nb.read_text().replace(f"{paths.ROOT}/", "")))
    return published


CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"


def refresh_checked_outputs(executed: Path, notebooks: Path | None = None) -> dict[str, int]:
    """Copy the outputs of the cells marked ``# NBVAL_CHECK_OUTPUT`` from the executed notebooks in
    ``executed`` (``make reproduce PROFILE=smoke`` writes them to results/smoke/) into the
    notebooks in ``notebooks/``, matched by cell id, with their execution counts (nbval compares
    only a cell that ran): the reference `make test`'s nbval compares with. Every other cell keeps
    no output. Returns {notebook: cells refreshed}."""
    notebooks = notebooks or paths.ROOT / "notebooks"
    refreshed = {}
    for source in sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        ran = executed / source.name
        if not ran.exists():
            raise FileNotFoundError(f"{ran} does not exist: run `make reproduce PROFILE=smoke` first")
        ran_cells = {c.get("id"): c for c in json.loads(ran.read_text())["cells"]}
        nb = json.loads(source.read_text())
        count = 0
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and CHECK_MARKER in "".join(cell["source"]).splitlines():
                if cell.get("id") not in ran_cells:
                    raise ValueError(f"{ran}: no cell with id {cell.get('id')!r}; run the notebook again")
                # nbval compares only a cell that ran: its execution count comes with its outputs
                cell["execution_count"] = ran_cells[cell["id"]]["execution_count"]
                cell["outputs"] = ran_cells[cell["id"]].get("outputs", [])
                count += 1
        write_text(source, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        refreshed[source.stem] = count
    return refreshed
