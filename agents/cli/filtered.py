"""Reward-filtered post-training, short form: ``python -m agents.filtered --rl-log
runs/<rl run>/episodes.jsonl --min-reward 1`` is ``python -m agents.train --agent filtered --rl-log
...``, with the env settings taken from the RL run (its ``config.yaml``) unless given."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.algos.filtered import FilterError, default_rl_model_dir, expand_logs, find_checkpoint
from agents.cli.train import ERRORS, resolve_config, resume, train
from agents.core.config import merge, parse_overrides
from agents.core.envs import parse_env_kwargs
from agents.core.run import checkpoint_run_config, run_folder_of
from agents.core.trajectory import read_episodes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agents.filtered",
        description="Reward-filtered post-training: keep the RL run's episodes with return >= a threshold, "
                    "fine-tune its checkpoint on them, evaluate. The same run as "
                    "`python -m agents.train --agent filtered`; env settings default to the RL run's.",
        epilog="examples:\n"
               "  python -m agents.filtered --rl-log runs/<grpo run>/episodes.jsonl --min-reward 1\n"
               "  python -m agents.filtered --rl-log 'runs/Wordle-v0__grpo__*/episodes.jsonl' --top-fraction 0.2 "
               "--rl-model-dir runs/<grpo run>\n"
               "  python -m agents.filtered --config configs/wordle_filtered.yaml --rl-log runs/<grpo run>",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rl-log", action="append", metavar="PATH|GLOB",
                        help="episodes.jsonl of the RL run (a run folder or glob works; repeatable)")
    threshold = parser.add_mutually_exclusive_group()
    threshold.add_argument("--min-reward", type=float, default=None, help="keep episodes with return >= this")
    threshold.add_argument("--top-fraction", type=float, default=None,
                           help="keep the best fraction of episodes by return instead (e.g. 0.2)")
    parser.add_argument("--rl-model-dir", default=None, metavar="DIR",
                        help="RL run folder: loads final/, else the newest checkpoints/step_N (default: the logs' folder)")
    parser.add_argument("--epochs", type=int, default=None, help="passes over the kept data (default: 3)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: 1e-4)")
    parser.add_argument("--batch-size", type=int, default=None, help="samples per optimizer step (default: 32)")
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="run folder (default: runs/<env>__filtered__<seed>__<time>)")
    parser.add_argument("--config", default=None, metavar="YAML", help="config file, e.g. configs/wordle_filtered.yaml")
    parser.add_argument("--env", default=None, help="env id (default: the RL run's, else the logs')")
    parser.add_argument("--env-kwargs", default=None, metavar="JSON", help="env kwargs (default: the RL run's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other config key")
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: 0)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted filtered run")
    parser.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    return parser


def run_settings(args: argparse.Namespace) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """(config file, run-level flags, filtered keys) of the run these flags describe, for
    :func:`agents.cli.train.resolve_config`."""
    keys = {"rl_log": args.rl_log, "min_reward": args.min_reward, "top_fraction": args.top_fraction,
            "rl_model_dir": args.rl_model_dir, "epochs": args.epochs, "learning_rate": args.lr,
            "batch_size": args.batch_size}
    overrides: dict[str, Any] = {k: v for k, v in keys.items() if v is not None}
    # One threshold flag replaces the other kind a config file may have set.
    if args.min_reward is not None:
        overrides["top_fraction"] = None
    if args.top_fraction is not None:
        overrides["min_reward"] = None
    flags: dict[str, Any] = {"agent": "filtered", "env": args.env, "seed": args.seed, "device": args.device,
                             "run_dir": args.output_dir,
                             "env_kwargs": parse_env_kwargs(args.env_kwargs) if args.env_kwargs is not None else None}
    if args.config is None and args.env is None and args.rl_log:
        env, inherited_kwargs, inherited = inherited_env_settings(args.rl_log, args.rl_model_dir)
        flags["env"] = env
        if flags["env_kwargs"] is None:
            flags["env_kwargs"] = inherited_kwargs
        overrides = {**inherited, **overrides}
    return args.config, flags, merge(overrides, parse_overrides(args.set))


def inherited_env_settings(rl_log: Sequence[str], rl_model_dir: str | None) -> tuple[str | None, dict[str, Any] | None,
                                                                                       dict[str, Any]]:
    """(env id, env kwargs, evaluation settings) of the RL run whose logs these are, from its
    ``config.yaml``; else the env id recorded in the logs."""
    try:
        logs = expand_logs(rl_log)
        checkpoint, _ = find_checkpoint(Path(rl_model_dir) if rl_model_dir else default_rl_model_dir(logs))
    except FilterError:
        return None, None, {}  # the run itself reports the problem
    config = checkpoint_run_config(checkpoint)
    if config.get("env"):
        print(f"filtered: env settings from {run_folder_of(checkpoint) / 'config.yaml'}", file=sys.stderr)
        evaluation: dict[str, Any] = {k: config[k] for k in ("eval_env_kwargs", "eval_episodes", "eval_batch_size") if k in config}
        return str(config["env"]), config.get("env_kwargs"), evaluation
    try:
        first = next(read_episodes(logs[0]), None)
    except ValueError:
        return None, None, {}
    return (first.env_id if first is not None else None), None, {}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.resume:
        return resume(args.resume, evaluate_after=not args.no_eval)
    try:
        resolved = resolve_config(*run_settings(args))
    except ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return train(resolved, evaluate_after=not args.no_eval)


if __name__ == "__main__":
    raise SystemExit(main())
