"""Run the property-based and fault-injection tests and write the results page's reliability section.

Example::

    python scripts/reliability.py            # a few minutes; needs MNIST for the SIGKILL test
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from inference.evaluation import report

ROOT = Path(__file__).resolve().parents[1]


class Collector:
    """A pytest plugin that records each fault-injection test's outcome."""

    def __init__(self) -> None:
        self.faults: dict[str, str] = {}  # nodeid -> fault name
        self.outcomes: dict[str, str] = {}

    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        for item in items:
            marker = item.get_closest_marker("fault")
            if marker is not None:
                self.faults[item.nodeid] = marker.args[0]

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or report.outcome != "passed":
            self.outcomes.setdefault(report.nodeid, report.outcome)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--page", default="docs/results.md", type=report.section_page, help="results page to update ('' to print only)"
    )
    p.add_argument("--examples", type=int, default=2000, help="hypothesis examples per property (default: 2000)")
    args = p.parse_args(argv)
    collector = Collector()
    with tempfile.TemporaryDirectory() as tmp:
        # The test session writes what the property tests fed the API here (tests/conftest.py).
        os.environ["BNN_TALLY_FILE"] = tally_file = f"{tmp}/tally.json"
        os.environ["BNN_PROPERTY_EXAMPLES"] = str(args.examples)  # the test suite's own run tries fewer
        args_pytest = ["-q", "-p", "no:cacheprovider", "-m", "fault or properties", str(ROOT / "tests")]
        code = pytest.main(args_pytest, plugins=[collector])
        rows = json.loads(Path(tally_file).read_text()) if Path(tally_file).is_file() else []
    tally = {(what, outcome): count for what, outcome, count in rows}
    text = report.reliability_section(collector.faults, collector.outcomes, tally)
    print(text)
    if args.page:
        report.replace_between_markers(args.page, "reliability", text)
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
