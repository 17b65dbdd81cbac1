"""Evaluate a policy on an env: ``python -m agents.evaluate --env Wordle-v0 --policy solver``.

Prints a table (or one JSON object with ``--json``) in the schema of
:mod:`agents.core.evaluation`: ``env``, ``policy``, ``episodes``, ``mean_return``, ``std_return``,
``mean_length``, and the env's own metrics under its key (``"wordle": {"win_rate", ...}``).

``--policy runs/<run>/final`` without ``--env`` plays the env the run was trained on, with the
env kwargs of its final evaluation (``config.yaml``: ``env_kwargs`` updated by ``eval_env_kwargs``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from agents.core.checkpoint import CheckpointError, write_json_atomic
from agents.core.devices import check_device
from agents.core.envs import parse_env_kwargs
from agents.core.evaluation import evaluate, format_table
from agents.core.run import checkpoint_env
from agents.core.tasks import read_tasks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agents.evaluate",
        description="Play episodes with a policy and report env metrics (win rate, guesses, time alive, ...).",
    )
    parser.add_argument("--env", default=None,
                        help="registered env id (default: a checkpoint's own env and eval kwargs, else Wordle-v0)")
    parser.add_argument("--env-kwargs", default=None, metavar="JSON",
                        help='env constructor kwargs as JSON, e.g. \'{"answers": "path/answers.txt"}\'')
    parser.add_argument("--policy", default="solver", metavar="NAME_OR_DIR",
                        help="scripted policy name (Wordle: solver, random; GSM8K: reference; humanoid: reference, "
                             "random), a checkpoint directory such as runs/<run>/final, or a language model as it "
                             "comes: a named model (python -m agents.models list), a .gguf file, a Hugging Face "
                             "directory or hub id (default: %(default)s)")
    parser.add_argument("--episodes", default="100", metavar="N|all",
                        help="number of episodes, or 'all' (Wordle: every answer once, in order) (default: %(default)s)")
    parser.add_argument("--tasks", default=None, metavar="JSONL",
                        help="play exactly these episodes: one JSON object of reset options per line, e.g. "
                             "a run's tasks_held_out.jsonl (overrides --episodes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode; episode i uses seed+i")
    parser.add_argument("--batch-size", type=int, default=64, help="episodes played in lockstep (default: %(default)s)")
    parser.add_argument("--sample", action="store_true", help="sample actions instead of acting deterministically")
    parser.add_argument("--no-repeat-ngram", type=int, default=None, metavar="N",
                        help="language models: no run of N tokens may occur twice in a completion "
                             "(0 = off; default: the checkpoint's own setting)")
    parser.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                        help="language models: longest completion per turn (default: the checkpoint's own "
                             "setting; 128 for a model as it comes)")
    parser.add_argument("--device", default=None, help="torch device for checkpoint policies (default: cuda if available)")
    parser.add_argument("--episodes-out", default=None, metavar="PATH", help="also write the episodes as JSON lines")
    parser.add_argument("--out", default=None, metavar="PATH", help="also write the summary JSON to this file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def check_writable(path: str | Path, flag: str) -> None:
    """Fail before the work when an output file cannot be written (a missing or unwritable folder)."""
    folder = Path(path).parent
    if Path(path).is_dir():
        raise ValueError(f"{flag} {path} is a folder; give a file path")
    if not folder.is_dir():
        raise ValueError(f"{flag} {path}: the folder {folder} does not exist")
    try:
        tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-").close()  # deleted on close
    except OSError as err:
        raise ValueError(f"{flag} {path}: cannot write in {folder} ({err.strerror})") from err


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        for path, flag in ((args.out, "--out"), (args.episodes_out, "--episodes-out")):
            if path:
                check_writable(path, flag)
        check_device(args.device)
        env_id, env_kwargs = args.env, parse_env_kwargs(args.env_kwargs)
        if env_id is None:
            trained_env, trained_kwargs = checkpoint_env(args.policy)
            env_id, env_kwargs = trained_env or "Wordle-v0", {**trained_kwargs, **env_kwargs}
        summary = evaluate(
            env_id,
            args.policy,
            env_kwargs=env_kwargs,
            episodes=read_tasks(args.tasks, args.seed) if args.tasks else args.episodes,
            seed=args.seed,
            batch_size=args.batch_size,
            deterministic=not args.sample,
            progress=not args.json,
            device=args.device,
            episodes_path=args.episodes_out,
            sampling={k: v for k, v in (("no_repeat_ngram_size", args.no_repeat_ngram),
                                        ("max_new_tokens", args.max_new_tokens)) if v is not None},
        )
    except (ValueError, CheckpointError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # The result first: a failed write below must not throw the evaluation away.
    print(json.dumps(summary) if args.json else format_table(summary), flush=True)
    if args.out:
        try:
            write_json_atomic(args.out, summary)
        except OSError as err:
            print(f"error: could not write --out {args.out}: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
