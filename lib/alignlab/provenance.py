"""Which run made each claim, so that one study can be rerun without the other.

A cold cpu run of both studies takes longer than one sitting, so ``alignlab.claims`` builds each
part of the ledger (the Vaccine claims, the drift claim, the extraction and RL claims, and those of
the second target, ``make extras``) from its notebooks' results when they are present, and
otherwise keeps that part from the previous ledger, but only if the part's fingerprint is
unchanged. The fingerprint hashes what the part's numbers depend on:

- the source of the modules its stages' cache keys hash (each stage's ``CODE``), the judges and
  their labels, and the statistics and scoring it is computed with;
- the part's notebooks;
- the profile's values in the sections it reads.

So a kept claim is one this code and profile would compute again (every stage is deterministic on
CPU for a given seed); after any change to them the part reads "not run" until its notebooks run.
Each claim carries its part (``part``) and fingerprint, and kept claims say so (``kept_from_earlier_run``).
"""

from __future__ import annotations

import hashlib
import json
import pkgutil

from alignlab import paths
from alignlab.cache import code_version
from alignlab.profile import SECTIONS, load_profile
from alignlab.timing import EXTRAS


def _judge_modules() -> tuple[str, ...]:
    import alignlab.judges as judges

    return ("judges",) + tuple(m.name.removeprefix("alignlab.")
                               for m in pkgutil.walk_packages(judges.__path__, "alignlab.judges."))


def _stage_code(*code_maps) -> tuple[str, ...]:
    return tuple(sorted({module for code in code_maps for modules in code.values() for module in modules}))


def parts() -> dict[str, dict]:
    """Each part of the ledger: its notebooks, the modules and profile sections its numbers depend on."""
    from alignlab import evaluation
    from alignlab.extraction import rl
    from alignlab.extraction import stages as extraction
    from alignlab.vaccine import rho_choice, stages as vaccine

    analysis = ("stats", "scoring", "data") + _judge_modules()
    vaccine_code = _stage_code(vaccine.CODE) + evaluation.CODE + analysis
    vaccine_sections = ("run", "data", "align", "attack", "eval", "rho_sweep")
    return {
        "vaccine": {"notebooks": ("01_align", "02_attack", "03_evaluate"), "code": vaccine_code,
                    "sections": vaccine_sections},
        "drift": {"notebooks": ("01_align", "02_attack", "04_drift"), "code": vaccine_code,
                  "sections": vaccine_sections},
        "extras": {"notebooks": EXTRAS, "sections": (*vaccine_sections, "extras"),
                   "code": vaccine_code + rho_choice.CODE + ("vaccine.verdicts", "vaccine.extras_claims")},
        "extraction": {"notebooks": ("01_align", "05_sample", "06_match", "07_distill"),
                       "code": (_stage_code(extraction.CODE) + evaluation.CODE + analysis
                                + ("extraction.stages", "extraction.calibration", "extraction.dose", "extraction.ability")),
                       "sections": ("run", "data", "align", "eval", "extraction")},
        "rl": {"notebooks": ("06_match", "08_rl"),
               "code": _stage_code(rl.CODE) + analysis + ("extraction.stages", "extraction.search", "extraction.calibration"),
               "sections": ("run", "data", "align", "extraction", "rl")},
    }


def fingerprint(part: str, profile: str) -> str:
    """A hash of the code, notebooks and profile values one part of the ledger depends on."""
    spec = parts()[part]
    p = load_profile(profile)
    values = {key: getattr(p, key) for section in spec["sections"] for key in SECTIONS[section]
              if key not in ("publish", "figure_note")}  # how a run is presented, not what it computes
    digest = hashlib.sha256(code_version(*spec["code"]).encode())
    for notebook in spec["notebooks"]:
        digest.update((paths.NOTEBOOKS / f"{notebook}.ipynb").read_bytes())
    for label_file in sorted((paths.ROOT / "lib" / "alignlab" / "judges" / "labels").glob("*.jsonl")):
        digest.update(label_file.read_bytes())
    digest.update(json.dumps(values, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:12]


def previous_ledger(folder) -> list[dict]:
    path = folder / "claims.json"
    return json.loads(path.read_text()) if path.exists() else []


def kept(part: str, profile: str, previous: list[dict]) -> list[dict]:
    """The previous ledger's claims of ``part``, if its fingerprint is unchanged; else []."""
    current = fingerprint(part, profile)
    claims = [c for c in previous if c.get("part") == part]
    if not claims or any(c.get("fingerprint") != current for c in claims):
        return []
    return [{**c, "kept_from_earlier_run": True} for c in claims]


def stamp(claims: list[dict], part: str, profile: str) -> list[dict]:
    """Claims computed by this run, tagged with their part and its fingerprint."""
    current = fingerprint(part, profile)
    return [{**{k: v for k, v in c.items() if k != "kept_from_earlier_run"}, "part": part, "fingerprint": current}
            for c in claims]

