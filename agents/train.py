"""``python -m agents.train``: the command line in :mod:`agents.cli.train`."""

from agents.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
