"""Serve the trained checkpoint on loopback, load-test it and take the README's screenshot in Chromium.

Writes the Serving section of the results page (statuses, p50/p95 latency) and
``docs/figures/serve.png`` (the page after drawing a 7 with the mouse).

Example::

    python scripts/serve_check.py --checkpoint checkpoints/bnn.pt --data-dir /path/to/data
"""

from __future__ import annotations

import argparse
import json
import sys

from bnn import DEFAULT_CHECKPOINT, load_model
from inference.data import load_mnist
from inference.evaluation import report
from inference.evaluation.serving import Request, decide_after, draw, find_chromium, load_test, png_bytes, serve_in_thread
from inference.evaluation.sets import on_paper
from inference.web import create_app
from inference.web.app import answer_image, decode_image


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help=f"default: {DEFAULT_CHECKPOINT}")
    p.add_argument("--data-dir", default=None, help="dataset folder (default: $BNN_DATA_DIR, else ./data)")
    p.add_argument("--requests", type=int, default=500, help="requests in the load test (default: 500)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight at once (default: 8)")
    p.add_argument("--page", default="docs/results.md", help="results page whose Serving section to rewrite ('' to skip)")
    p.add_argument("--screenshot", default="docs/figures/serve.png", help="where to save the page ('' to skip)")
    args = p.parse_args(argv)
    model = load_model(args.checkpoint)
    digits = load_mnist(False, args.data_dir).images[:12].reshape(-1, 28, 28).numpy()
    good = []
    for i, digit in enumerate(digits):
        size, offset = 80 + 10 * i, 5 + i  # larger and further off-centre, digit by digit
        body = png_bytes(on_paper(digit, size, (size + 60, size + 40), (offset, 2 * offset)))
        expected = answer_image(model, decode_image(body), 100)
        good.append(Request(f"digit {i}", body, 200, {k: expected[k] for k in ("prediction", "reason", "candidates")}))
    bad = [
        Request("empty", b"", 400),
        Request("not an image", b"<html></html>", 415),
        Request("truncated", good[0].body[:300], 400),
    ]
    with serve_in_thread(create_app(model)) as url:
        result = load_test(url, good + bad, args.requests, args.concurrency, timeout=600)
        summary = result.summary()
        print(json.dumps(summary, indent=1))
        for line in result.wrong[:10]:
            print("wrong:", line)
        screenshot = None
        if args.screenshot:
            chromium = find_chromium()
            if chromium is None:
                print("no Chromium found: no screenshot (Debian: apt-get install chromium)", file=sys.stderr)
            else:
                from playwright.sync_api import sync_playwright

                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                    page = browser.new_page(viewport={"width": 1000, "height": 900})
                    page.goto(url)
                    print("drawn 7 ->", decide_after(page, lambda: draw(page, "7")))
                    page.screenshot(path=args.screenshot, full_page=True)
                    browser.close()
                screenshot = "figures/" + args.screenshot.rsplit("/", 1)[-1]
    text = report.serving_section(summary, args.checkpoint, screenshot)
    print(text)
    if args.page:
        report.replace_between_markers(args.page, "serving", text)
    return 0 if result.server_errors == 0 and not result.wrong else 1


if __name__ == "__main__":
    raise SystemExit(main())
