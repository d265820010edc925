"""The library a user imports stays apart from the code that measures it."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEASURING = ("inference.evaluation", "inference.ood")


def test_importing_the_library_loads_no_measuring_code_and_no_plotting_or_scikit_learn():
    code = (
        "import sys, bnn, inference\n"
        "from inference import predict_with_abstain, calibrate, train\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'sklearn', 'skimage')"
        f" or m.startswith({MEASURING!r})]\n"
        "print(loaded)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_no_runtime_module_imports_the_measuring_code():
    """Read every import statement: bnn/ and inference/*.py never name inference.evaluation or inference.ood."""
    runtime = [*ROOT.glob("bnn/*.py"), *ROOT.glob("inference/*.py")]
    assert len(runtime) > 10
    for path in runtime:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            assert not any(name.startswith(MEASURING) for name in names), f"{path.name} imports {names}"


def test_every_module_opens_with_a_docstring():
    for path in [*ROOT.glob("bnn/**/*.py"), *ROOT.glob("inference/**/*.py"), *ROOT.glob("scripts/*.py")]:
        if path.name == "__init__.py" and not path.read_text().strip():
            continue
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(ROOT)} has no module docstring"
