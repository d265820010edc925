"""Serve the page where you draw a digit and watch 100 networks vote: ``bnn-abstain serve``.

Example::

    bnn-abstain serve                      # http://127.0.0.1:8000
    bnn-abstain serve --port 9000 --checkpoint checkpoints/bnn.pt
"""

from __future__ import annotations

import argparse
import sys

from bnn import load_model
from inference.commands.flags import device


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    from bnn import DEFAULT_CHECKPOINT

    p = argparse.ArgumentParser(
        prog=prog, description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help=f"trained model (default: {DEFAULT_CHECKPOINT})")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--device", type=device, default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--num-samples", type=int, default=100, help="networks sampled per image (default: 100)")
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        p.error(f"--port must be in 0..65535, got {args.port}")
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
    uvicorn.run(create_app(model, num_samples=args.num_samples), host=args.host, port=args.port, log_level="warning")
    return 0
