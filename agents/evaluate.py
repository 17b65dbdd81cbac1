"""``python -m agents.evaluate``: the command line in :mod:`agents.cli.evaluate`."""

from agents.cli.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
