"""Draw on the page as a new user would, in Chromium: digits, and letters and shapes that are no digit.

Every drawing of :mod:`inference.evaluation.drawings` (hand-made templates, jittered with a seed) is
drawn with the mouse on the served page, and the decision the page shows is read back. The same
drawings rendered in Python with the page's pen go through the library directly, for comparison.
Every ``--sample-every`` drawings the page's own memory is read from Chromium (its JavaScript heap
after a garbage collection, its DOM nodes and event listeners), so that a page left open and drawn
on for hours would show a leak as a slope per 100 drawings; the page is driven by input events
alone, so that Playwright's own helper script is not counted with it. Writes the "Drawn on the page"
section of the results page and ``docs/page_check.json``.

Example::

    python scripts/page_check.py --checkpoint checkpoints/bnn.pt --variants 5   # 210 drawings, about 3.5 minutes
    python scripts/page_check.py --kinds 2 --variants 1 --page '' --json ''      # a smoke run of 6 drawings
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from bnn import DEFAULT_CHECKPOINT, load_model
from inference import predict_with_abstain
from inference.evaluation import report
from inference.evaluation.drawings import DIGITS, NOT_DIGITS, render, variants
from inference.evaluation.serving import PAGE_METRICS, drawn_decision, find_chromium, page_metrics, serve_in_thread
from inference.evaluation.soak import drift
from inference.web import create_app


def outcome(expected: str | None, shown: str) -> str:
    """``right``, ``wrong`` or ``refused``: what the page's text says about a drawing of ``expected`` (None: no digit)."""
    if shown.startswith(("I don't know", "Draw a digit")):
        return "refused"
    return "right" if expected is not None and shown.split(" or ")[0] == expected else "wrong"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help=f"default: {DEFAULT_CHECKPOINT}")
    p.add_argument("--variants", type=int, default=5, help="jittered variants of every template (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the jitter (default: 0)")
    p.add_argument(
        "--page", default="docs/results.md", type=report.section_page, help="results page whose section to rewrite ('' to skip)"
    )
    p.add_argument("--json", default="docs/page_check.json", help="JSON output ('' to skip)")
    p.add_argument("--sample-every", type=int, default=10, help="drawings between samples of the page's memory (default: 10)")
    p.add_argument("--kinds", type=int, default=None, help="draw only the first N digits and N other kinds (a quick run)")
    args = p.parse_args(argv)
    if args.sample_every < 1:
        p.error("--sample-every must be at least 1")
    if args.kinds is not None and args.kinds < 1:
        p.error("--kinds must be at least 1")
    digits, not_digits = (dict(list(kinds.items())[: args.kinds]) for kinds in (DIGITS, NOT_DIGITS))
    model = load_model(args.checkpoint)
    drawings = [(name, True, d) for name, d in variants(digits, args.variants, args.seed)]
    drawings += [(name, False, d) for name, d in variants({k: [v] for k, v in not_digits.items()}, args.variants, args.seed + 1)]
    rendered = predict_with_abstain(model, [render(d) for _, _, d in drawings], preprocess="mnist")
    rows = []
    chromium = find_chromium()
    if chromium is None:
        print("no Chromium found (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with serve_in_thread(create_app(model)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(url)
        trace = [{"drawings": 0, **page_metrics(page)}]
        for i, (name, is_digit, drawing) in enumerate(drawings):
            expected = name if is_digit else None
            shown = drawn_decision(page, drawing)
            in_python = rendered.answers()[i]
            rows.append({"name": name, "digit": is_digit, "page": outcome(expected, shown), "shown": shown,
                         "python": outcome(expected, in_python)})  # fmt: skip
            if (i + 1) % args.sample_every == 0 or i + 1 == len(drawings):
                trace.append({"drawings": i + 1, **page_metrics(page)})
        browser.close()
    results = {"variants": args.variants, "kinds": args.kinds, "seed": args.seed, "checkpoint": args.checkpoint}
    results["drawings"] = rows
    results["browser"] = {
        "trace": trace,
        "drift": {key: drift(trace, key, along="drawings", per=100) for key in PAGE_METRICS.values()},
    }
    for kind, is_digit in (("digits", True), ("not digits", False)):
        for where in ("page", "python"):
            counts = Counter(r[where] for r in rows if r["digit"] == is_digit)
            total = sum(counts.values())
            results[f"{kind}, {where}"] = {k: counts[k] / total for k in ("right", "wrong", "refused")} | {"n": total}
    answered = Counter(r["name"] for r in rows if not r["digit"] and r["page"] != "refused")
    results["answered kinds"] = dict(answered.most_common())
    text = report.drawn_section(results)
    print(text)
    if args.json:
        report.write_json(results, args.json)
    if args.page:
        report.replace_between_markers(args.page, "drawn", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
