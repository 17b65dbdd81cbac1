"""``python -m agents.filtered``: the command line in :mod:`agents.cli.filtered`."""

from agents.cli.filtered import main

if __name__ == "__main__":
    raise SystemExit(main())
