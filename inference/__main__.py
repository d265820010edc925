"""``python -m inference`` is ``bnn-abstain``."""

from inference.commands import main

raise SystemExit(main())
