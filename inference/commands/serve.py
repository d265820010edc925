"""Serve the page where you draw a digit and watch 100 networks vote: ``bnn-abstain serve``.

Example::

    bnn-abstain serve                      # http://127.0.0.1:8000
    bnn-abstain serve --port 9000 --checkpoint checkpoints/bnn.pt
    bnn-abstain serve --queue-size 8 --body-timeout 5   # busy sooner, slow uploads cut off sooner
"""

from __future__ import annotations

import argparse
import sys

from bnn import load_model
from inference.commands.flags import device


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    from bnn import DEFAULT_CHECKPOINT
    from inference.web.limits import BODY_TIMEOUT_S, QUEUE_SIZE

    p = argparse.ArgumentParser(
        prog=prog, description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help=f"trained model (default: {DEFAULT_CHECKPOINT})")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--device", type=device, default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--num-samples", type=int, default=100, help="networks sampled per image (default: 100)")
    p.add_argument(
        "--queue-size",
        type=int,
        default=QUEUE_SIZE,
        help=f"predictions pending at once, the running one included; more get 503 with Retry-After (default: {QUEUE_SIZE})",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=BODY_TIMEOUT_S,
        help=f"seconds an upload may take to arrive; a slower one gets 408 (default: {BODY_TIMEOUT_S:g})",
    )
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        p.error(f"--port must be in 0..65535, got {args.port}")
    if args.queue_size < 1:
        p.error(f"--queue-size must be at least 1, got {args.queue_size}")
    if not args.body_timeout > 0:
        p.error(f"--body-timeout must be positive, got {args.body_timeout}")
    try:
        import uvicorn

        from inference.web import create_app
    except ImportError as err:
        print(f"error: serving needs FastAPI and uvicorn ({err}); pip install 'bnn-abstain[serve]'", file=sys.stderr)
        return 2
    try:
        model = load_model(args.checkpoint, args.device)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"serving {args.checkpoint} at http://{args.host}:{args.port} (Ctrl-C stops)", flush=True)
    app = create_app(model, num_samples=args.num_samples, queue_size=args.queue_size, body_timeout=args.body_timeout)
    # The backlog holds a burst's connections until the app can answer them (503 once the queue is full).
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", backlog=4096)
    return 0
