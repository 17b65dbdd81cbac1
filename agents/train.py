"""``python -m agents.train``: the command line in :mod:`agents.cli.train`."""

from agents.cli.train import main
from agents.core import distributed

if __name__ == "__main__":
    distributed.leave(main())
