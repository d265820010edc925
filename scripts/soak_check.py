"""Serve the trained checkpoint on loopback for hours at a steady mixed load, and trace how the server holds up.

``scripts/serve_check.py`` measures minutes; a slow leak (memory, sockets left open, threads) or a
latency that creeps up shows only over hours. This sends the same mix of clients (good images, bad
bodies, slow bodies, clients that leave before their answer) at a steady rate, samples the server's
resident memory, open descriptors and threads and the interval's answer latency at a fixed
interval, and reports each one's drift over the run's second half (a Theil-Sen slope per hour with
its 95% interval). Writes the results page's "Serving over hours" section, its JSON
(``docs/soak_check.json``) and ``docs/figures/soak.png``. Only 127.0.0.1 is targeted.

Example::

    python scripts/soak_check.py --checkpoint checkpoints/bnn.pt --data-dir /path/to/data          # one hour
    python scripts/soak_check.py --hours 0.02 --trace-every 5 --page '' --json '' --figure ''      # a minute
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bnn import DEFAULT_CHECKPOINT, load_model
from inference.evaluation import plots, report
from inference.evaluation.serving import digit_requests, serve_in_process
from inference.evaluation.soak import SOAK_MIX, run_traffic


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help=f"default: {DEFAULT_CHECKPOINT}")
    p.add_argument("--data-dir", default=None, help="dataset folder (default: $BNN_DATA_DIR, else ./data)")
    p.add_argument("--hours", type=float, default=1.0, help="the soak's length (default: 1)")
    p.add_argument("--rate", type=float, default=10.0, help="requests arriving per second (default: 10)")
    p.add_argument("--trace-every", type=float, default=60.0, help="seconds between samples of the server (default: 60)")
    p.add_argument("--body-timeout", type=float, default=2.0, help="the server's body timeout (default: 2)")
    p.add_argument(
        "--page",
        default="docs/results.md",
        type=report.section_page,
        help="results page whose soak section to rewrite ('' to skip)",
    )
    p.add_argument("--json", default="docs/soak_check.json", help="JSON output ('' to skip)")
    p.add_argument("--figure", default="docs/figures/soak.png", help="the trace's figure ('' to skip)")
    args = p.parse_args(argv)
    seconds = 3600 * args.hours
    if seconds <= 0 or args.rate <= 0 or not 0 < args.trace_every <= seconds / 4:
        p.error("--hours and --rate must be positive, and --trace-every at most a quarter of the run (4 samples at least)")
    good, bad = digit_requests(load_model(args.checkpoint), args.data_dir)
    requests = round(seconds * args.rate)
    with serve_in_process(args.checkpoint, "--body-timeout", str(args.body_timeout)) as (url, pid):
        traffic = run_traffic(url, good, bad, requests, seconds, SOAK_MIX, server_pid=pid, trace_every=args.trace_every)
    results = {
        "checkpoint": args.checkpoint,
        "soak_mix": SOAK_MIX,
        "rate": args.rate,
        "body_timeout_s": args.body_timeout,
        "trace_every_s": args.trace_every,
        "soak": traffic.summary(),
    }
    failures = traffic.wrong + [f"{traffic.unanswered} requests unanswered"] * bool(traffic.unanswered)
    for line in failures[:10]:
        print("wrong:", line)
    figure = None
    if args.figure:
        plots.soak_trace(traffic.trace).savefig(args.figure, dpi=110)
        figure = "figures/" + Path(args.figure).name
    text = report.soak_section(results, figure)
    print(text)
    print("drift:", json.dumps(results["soak"]["drift"]))
    if args.json:
        report.write_json(results, args.json)
    if args.page:
        report.replace_between_markers(args.page, "soak", text)
    return 0 if traffic.server_errors == 0 and not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
