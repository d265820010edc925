"""Serve the trained checkpoint on loopback: a load test, a soak, an overload burst, and the README's screenshot.

Writes the Serving section of the results page and its JSON (``docs/serve_check.json``), and
``docs/figures/serve.png`` (the page after drawing a 7 with the mouse). The server runs as
``bnn-abstain serve`` in a process of its own, so its memory is measured apart from the clients'.

- load test: good images and bad bodies, a fixed number in flight;
- soak: requests arriving at a steady rate for minutes, mixing good images, bad bodies, slow
  bodies (half sent, then nothing) and clients that disconnect before their answer;
- burst: thousands of requests at once against a small queue.

Only 127.0.0.1 is targeted, and every part is bounded in time and count.

Example::

    python scripts/serve_check.py --checkpoint checkpoints/bnn.pt --data-dir /path/to/data
    python scripts/serve_check.py --soak-requests 2000 --soak-seconds 30 --burst 500 --screenshot ''   # quicker
"""

from __future__ import annotations

import argparse
import json
import sys

from bnn import DEFAULT_CHECKPOINT, load_model
from inference.evaluation import report
from inference.evaluation.serving import decide_after, digit_requests, draw, find_chromium, load_test, serve_in_process
from inference.evaluation.soak import SOAK_MIX, run_traffic
from inference.web import QUEUE_SIZE


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help=f"default: {DEFAULT_CHECKPOINT}")
    p.add_argument("--data-dir", default=None, help="dataset folder (default: $BNN_DATA_DIR, else ./data)")
    p.add_argument("--requests", type=int, default=500, help="requests in the load test (default: 500)")
    p.add_argument("--concurrency", type=int, default=8, help="load test: requests in flight at once (default: 8)")
    p.add_argument("--soak-requests", type=int, default=20_000, help="requests in the soak (default: 20000; 0 skips it)")
    p.add_argument("--soak-seconds", type=float, default=300.0, help="the soak's length (default: 300)")
    p.add_argument("--body-timeout", type=float, default=2.0, help="the server's body timeout in the soak (default: 2)")
    p.add_argument("--burst", type=int, default=2000, help="requests sent at once in the burst (default: 2000; 0 skips it)")
    p.add_argument("--burst-queue", type=int, default=8, help="the server's queue size in the burst (default: 8)")
    p.add_argument(
        "--page",
        default="docs/results.md",
        type=report.section_page,
        help="results page whose Serving section to rewrite ('' to skip)",
    )
    p.add_argument("--json", default="docs/serve_check.json", help="JSON output ('' to skip)")
    p.add_argument("--screenshot", default="docs/figures/serve.png", help="where to save the page ('' to skip)")
    args = p.parse_args(argv)
    good, bad = digit_requests(load_model(args.checkpoint), args.data_dir)
    results: dict = {"checkpoint": args.checkpoint, "queue_size": QUEUE_SIZE, "soak_mix": SOAK_MIX}
    failures = []
    with serve_in_process(args.checkpoint, "--body-timeout", str(args.body_timeout)) as (url, pid):
        load = load_test(url, good + bad, args.requests, args.concurrency, timeout=600)
        results["load"] = load.summary()
        failures += load.wrong
        print("load test:", json.dumps(results["load"]), flush=True)
        if args.soak_requests:
            soak = run_traffic(url, good, bad, args.soak_requests, args.soak_seconds, SOAK_MIX, server_pid=pid)
            results["soak"] = soak.summary() | {"body_timeout_s": args.body_timeout}
            failures += soak.wrong + [f"{soak.unanswered} soak requests unanswered"] * bool(soak.unanswered)
            print("soak:", json.dumps(results["soak"]), flush=True)
        screenshot = take_screenshot(url, args.screenshot) if args.screenshot else None
    if args.burst:
        with serve_in_process(args.checkpoint, "--queue-size", str(args.burst_queue)) as (url, pid):
            load_test(url, good, 20, 2)  # warm: the first predictions allocate what later ones reuse
            burst = run_traffic(url, good, bad, args.burst, 0.0, {"good": 1.0}, server_pid=pid)
            results["burst"] = burst.summary() | {"queue_size": args.burst_queue}
            failures += burst.wrong + [f"{burst.unanswered} burst requests unanswered"] * bool(burst.unanswered)
            print("burst:", json.dumps(results["burst"]), flush=True)
    for line in failures[:10]:
        print("wrong:", line)
    text = report.serving_section(results, screenshot)
    print(text)
    if args.json:
        report.write_json(results, args.json)
    if args.page:
        report.replace_between_markers(args.page, "serving", text)
    server_errors = sum(results[k]["server_errors"] for k in ("load", "soak", "burst") if k in results)
    return 0 if server_errors == 0 and not failures else 1


def take_screenshot(url: str, path: str) -> str | None:
    """Draw a 7 on the served page in Chromium and save the page to ``path``; the path relative to docs/."""
    chromium = find_chromium()
    if chromium is None:
        print("no Chromium found: no screenshot (Debian: apt-get install chromium)", file=sys.stderr)
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(url)
        print("drawn 7 ->", decide_after(page, lambda: draw(page, "7")))
        page.screenshot(path=path, full_page=True)
        browser.close()
    return "figures/" + path.rsplit("/", 1)[-1]


if __name__ == "__main__":
    raise SystemExit(main())
