"""The layout: one folder per stage, imports running one way, no cycles, and the library apart from what measures it."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The stages in the order imports may run (a module may import its own stage and those before it).
#: ``evaluation`` measures the library; the commands, last, may run it.
STAGES = ("bnn", "rng", "data", "training", "posterior", "calibration", "predictive", "web", "evaluation", "commands")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for package in ("bnn", "inference") for p in (ROOT / package).rglob("*.py")}
    assert len(found) > 60
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules that ``path`` imports anywhere (functions included): ``from a.b import c`` names ``a.b.c``
    when that is a module, else ``a.b``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if full in known else node.module)
    return {n for n in names if n in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) for name, path in known.items()}


def stage(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "bnn" or len(parts) == 1:
        return parts[0]
    return "commands" if parts[1] == "__main__" else parts[1]  # python -m inference runs the command


def test_the_import_graph_has_no_cycle():
    edges, state = graph(), {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycle = path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_imports_run_one_way_through_the_stages():
    """Every module of bnn/ and inference/, sub-packages included, imports only its own stage and earlier ones
    (``inference/__init__.py``, the public facade, may import every runtime stage)."""
    for module, targets in graph().items():
        if module == "inference":
            assert all(stage(t) not in ("evaluation", "commands") for t in targets), targets
            continue
        here = stage(module)
        assert here in STAGES, f"{module} is in no stage of {STAGES}"
        for target in targets:
            there = stage(target)
            assert there != "inference", f"{module} imports the package facade; import the stage's module instead"
            assert STAGES.index(there) <= STAGES.index(here), f"{module} ({here}) imports {target} ({there})"


def test_importing_the_library_loads_no_measuring_code_and_no_plotting_or_scikit_learn():
    # torchvision (datasets only) and scipy.stats (the risk gate only) load on first use: seconds off every start-up.
    code = (
        "import sys, bnn, inference\n"
        "from inference import predict_with_abstain, calibrate, train\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'sklearn', 'skimage', 'torchvision')"
        " or m.startswith('scipy.stats')"
        " or m.startswith('inference.evaluation') or m.startswith('inference.commands')]\n"
        "print(loaded)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_every_module_opens_with_a_docstring():
    for path in [*ROOT.glob("bnn/**/*.py"), *ROOT.glob("inference/**/*.py"), *ROOT.glob("scripts/*.py")]:
        if path.name == "__init__.py" and not path.read_text().strip():
            continue
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(ROOT)} has no module docstring"
