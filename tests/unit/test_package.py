"""The package's shape: no import cycles among alignlab's modules, counting imports inside
functions (a local import would otherwise hide a cycle), the core imports neither study, neither
study imports the other, and no module is over 700 lines."""

import ast
import importlib.util
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(importlib.util.find_spec("alignlab").origin).parent
MODULES = {str(p.relative_to(PACKAGE).with_suffix("")).replace("/", ".").removesuffix(".__init__"): p
           for p in PACKAGE.rglob("*.py")}
STUDIES = ("vaccine", "extraction")


def imports(module: str) -> set[str]:
    """The alignlab modules that ``module`` imports anywhere in its source."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("alignlab"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("alignlab")]
        found |= {n.removeprefix("alignlab").lstrip(".") for n in names} & set(MODULES)
    return found - {module}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path that ends where it starts, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles():
    assert find_cycle({m: imports(m) for m in MODULES}) is None


def test_the_cycle_finder_finds_a_planted_cycle():  # the test above can fail
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_core_imports_neither_study():
    # the entry point, the ledger and the planner tie the two studies together by design
    core = [m for m in MODULES if m.split(".")[0] not in STUDIES and m not in ("train", "claims", "plan", "provenance")]
    leaks = {m: sorted(i for i in imports(m) if i.split(".")[0] in STUDIES) for m in core}
    assert not {m: i for m, i in leaks.items() if i}


def test_the_studies_import_nothing_from_each_other():
    """The extraction study searches its own models (alignlab.alignment), not the Vaccine study's."""
    crossing = {m: sorted(i for i in imports(m) if i.split(".")[0] in STUDIES and i.split(".")[0] != m.split(".")[0])
                for m in MODULES if m.split(".")[0] in STUDIES}
    assert not {m: i for m, i in crossing.items() if i}


def test_no_module_over_700_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 700}
    assert not long, f"split these modules by what they do: {long}"


ROOT = PACKAGE.parents[1]


def test_readme_is_a_newcomers_page():
    """README: at most 200 lines, the two commands, and no file it names outside the repository."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "make reproduce" in readme and "make test" in readme


def test_docs_and_notebooks_cite_only_files_in_the_repo():
    texts = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("notebooks/*.ipynb"),
             *PACKAGE.rglob("*.md")]
    outside = [p.name for p in texts if "DESIGN.md" in p.read_text() or "../shared" in p.read_text()]
    assert not outside
    # every path README and docs cite in backticks exists
    cited = {m for p in (ROOT / "README.md", *ROOT.glob("docs/*.md"))
             for m in re.findall(r"`([\w.-]+(?:/[\w.-]+)+\.(?:py|md|yaml|jsonl|json|ipynb|jinja))`", p.read_text())}
    assert cited and not sorted(c for c in cited if not (ROOT / c).exists())
