"""``python -m agents.models``: the command line in :mod:`agents.cli.models`."""

from agents.cli.models import main

if __name__ == "__main__":
    raise SystemExit(main())
