"""``python -m agents.pipeline``: the command line in :mod:`agents.cli.pipeline`."""

from agents.cli.pipeline import main

if __name__ == "__main__":
    raise SystemExit(main())
