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


#: What a start-up should not pay for: plotting, scikit-learn, torchvision (datasets only) and the measuring code.
HEAVY = "m.split('.')[0] in ('matplotlib', 'sklearn', 'skimage', 'torchvision') or m.startswith('inference.evaluation')"


def _loaded_after(code: str, also: str = "False") -> list[str]:
    """The heavy modules (``HEAVY``, or ``also``) that a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys\nprint([m for m in sys.modules if {HEAVY} or {also}])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return ast.literal_eval(out.stdout.strip())


def test_importing_the_library_loads_no_measuring_code_and_no_plotting_or_scikit_learn():
    # scipy.stats (the risk gate only) loads on first use too: seconds off every start-up.
    code = "import bnn, inference\nfrom inference import predict_with_abstain, calibrate, train"
    assert _loaded_after(code, also="m.startswith('scipy.stats') or m.startswith('inference.commands')") == []


def test_every_command_s_help_loads_no_measuring_code():
    # `bnn-abstain train --help` and the scripts' --help build these parsers; the evaluation loads when it runs.
    code = (
        "import importlib\nfrom inference.commands import COMMANDS\n"
        "for name in COMMANDS: importlib.import_module(f'inference.commands.{name}').parser()"
    )
    assert _loaded_after(code) == []


def test_every_module_opens_with_a_docstring():
    for path in [*ROOT.glob("bnn/**/*.py"), *ROOT.glob("inference/**/*.py"), *ROOT.glob("scripts/*.py")]:
        if path.name == "__init__.py" and not path.read_text().strip():
            continue
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(ROOT)} has no module docstring"
