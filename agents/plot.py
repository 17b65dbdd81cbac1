"""``python -m agents.plot``: the command line in :mod:`agents.cli.plot`."""

from agents.cli.plot import main

if __name__ == "__main__":
    raise SystemExit(main())
