"""Train an agent on an env: ``python -m agents.train --env Wordle-v0 [--agent sft]``.

Configuration precedence: built-in defaults < ``--config FILE`` < command-line flags <
``--set key=value``. The fully resolved config is written to the run folder. A run stopped
midway resumes with ``--resume runs/<run>``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from agents.checkpoint import CheckpointError
from agents.config import (
    ConfigError,
    RunConfig,
    build,
    field_help,
    merge,
    parse_overrides,
    read_yaml,
    to_dict,
)
from agents.demos import DataError
from agents.run import Run, resumable_checkpoint

AGENTS = ("sft", "grpo")

# Built-in per-env defaults beyond the dataclasses: the tiny default model reads Wordle's
# compact prompt (one line per guess) far faster than the rules text.
ENV_DEFAULTS: dict[str, dict[str, Any]] = {"Wordle-v0": {"env_kwargs": {"prompt_style": "compact"}}}


def agent_config_class(agent: str) -> type:
    if agent == "sft":
        from agents.sft import SFTConfig

        return SFTConfig
    if agent == "grpo":
        from agents.grpo import GRPOConfig

        return GRPOConfig
    raise ConfigError(f"unknown agent {agent!r}; available: {', '.join(AGENTS)}")


def resolve_config(args: argparse.Namespace) -> tuple[RunConfig, Any, dict[str, Any]]:
    """Merge defaults, YAML, flags and --set into (run config, agent config, plain dict)."""
    from_file = read_yaml(args.config) if args.config else {}
    env_id = args.env or from_file.get("env") or RunConfig().env
    values: dict[str, Any] = merge(ENV_DEFAULTS.get(env_id, {}), from_file)
    flags = {"env": args.env, "agent": args.agent, "seed": args.seed, "device": args.device,
             "model": args.model, "init": args.init, "run_dir": args.run_dir}
    values = merge(values, {k: v for k, v in flags.items() if v is not None})
    if args.env_kwargs is not None:
        from agents.evaluate import parse_env_kwargs

        values["env_kwargs"] = {**values.get("env_kwargs", {}), **parse_env_kwargs(args.env_kwargs)}
    agent = values.get("agent", "sft")
    overrides = parse_overrides(args.set or [])
    run_keys = set(field_help(RunConfig))
    for key, value in overrides.items():
        # A bare key that is neither run-level nor a section name belongs to the agent's section.
        if key in run_keys or key in AGENTS:
            values = merge(values, {key: value})
        else:
            values = merge(values, {agent: {key: value}})
    agent = values.get("agent", "sft")
    agent_cls = agent_config_class(agent)
    sections = {a for a in AGENTS if a in values}
    stray = sections - {agent}
    if stray:
        raise ConfigError(f"config has a section for {sorted(stray)} but the agent is {agent!r}")
    agent_values = values.pop(agent, {}) or {}
    run_config = build(RunConfig, values, "config")
    agent_config = build(agent_cls, agent_values, agent)
    resolved = {**to_dict(run_config), agent: to_dict(agent_config)}
    return run_config, agent_config, resolved


def build_parser() -> argparse.ArgumentParser:
    from agents.grpo import GRPOConfig
    from agents.sft import SFTConfig

    def options(cls: type) -> str:
        return "\n".join(f"  {k:<24} {v}" for k, v in field_help(cls).items())

    sections = [
        "envs: Wordle-v0, GSM8K-v0 (HumanoidMimic-v0 trains once its agents land)",
        f"agents: {', '.join(AGENTS)}",
        "",
        "run-level keys (--set key=value, or top level of --config):",
        options(RunConfig),
        "",
        "sft keys (--set key=value, or under 'sft:' in --config):",
        options(SFTConfig),
        "",
        "grpo keys (--set key=value, or under 'grpo:' in --config):",
        options(GRPOConfig),
        "",
        "examples:",
        "  python -m agents.train --env Wordle-v0",
        """  python -m agents.train --env Wordle-v0 --env-kwargs '{"answers": "answers.txt", "allowed": "allowed.txt"}'""",
        "  python -m agents.train --config configs/wordle_sft.yaml --set max_steps=200 --set train_answer_fraction=0.8",
        "  python -m agents.train --config configs/wordle_grpo.yaml --init runs/<sft-run>/final",
        "  python -m agents.train --resume runs/Wordle-v0__sft__0__20260101-120000",
    ]
    epilog = "\n".join(sections)
    parser = argparse.ArgumentParser(
        prog="python -m agents.train", description="Train an agent on an env, then evaluate it.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    parser.add_argument("--env", default=None, help="env id (default: Wordle-v0)")
    parser.add_argument("--agent", default=None, choices=AGENTS, help="agent (default: sft)")
    parser.add_argument("--config", default=None, metavar="YAML", help="config file, e.g. configs/wordle_sft.yaml")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    parser.add_argument("--model", default=None, metavar="PATH", help="Hugging Face checkpoint dir (default: built-in tiny model)")
    parser.add_argument("--env-kwargs", default=None, metavar="JSON", help="env kwargs as JSON, merged over the config's")
    parser.add_argument("--init", default=None, metavar="DIR", help="start from a checkpoint, e.g. runs/<run>/final")
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: 0)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--run-dir", default=None, metavar="DIR", help="run folder (default: runs/<env>__<agent>__<seed>__<time>)")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    parser.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    return parser


def make_policy(run_config: RunConfig, agent_config: Any, resume_dir: Path | None):
    import torch

    from agents.lm.policy import LMPolicy

    torch.manual_seed(run_config.seed)
    if resume_dir is not None:
        return LMPolicy.load(resume_dir, device=run_config.device)
    if run_config.init:
        policy = LMPolicy.load(run_config.init, device=run_config.device)
    elif run_config.model:
        policy = LMPolicy.from_pretrained(run_config.model, device=run_config.device)
    else:
        policy = LMPolicy.default(seed=run_config.seed, device=run_config.device, **agent_config.model_config)
    if agent_config.lora_r > 0 and policy.lora is None:
        policy.enable_lora(agent_config.lora_r, agent_config.lora_alpha, agent_config.lora_dropout,
                           agent_config.lora_targets)
    return policy


def demonstrations(run_config: RunConfig, cfg: Any) -> tuple[list, list[str] | None]:
    """(conversations, held-out Wordle answers or None) for the SFT data spec."""
    from agents import demos

    if cfg.data == "solver":
        if not run_config.env.startswith("Wordle"):
            raise ConfigError(f"data='solver' needs a Wordle env, not {run_config.env}; give a JSONL path")
        from envs.wordle.lexicon import load_lexicon

        lexicon = load_lexicon(run_config.env_kwargs.get("answers"), run_config.env_kwargs.get("allowed"))
        train, held_out = demos.split_answers(lexicon.answers, cfg.train_answer_fraction, cfg.split_seed)
        conversations = demos.wordle_solver_conversations(run_config.env_kwargs, train, think=cfg.think)
        return conversations, (held_out or None)
    if cfg.data == "solutions":
        if not run_config.env.startswith("GSM8K"):
            raise ConfigError(f"data='solutions' needs GSM8K-v0, not {run_config.env}")
        return demos.gsm8k_solution_conversations(run_config.env_kwargs, cfg.keep_calculator), None
    if cfg.data.startswith("hh:"):
        return demos.hh_conversations(cfg.data[3:]), None
    return demos.read_conversations_jsonl(cfg.data), None


def final_evaluation(run: Run, run_config: RunConfig, policy: Any, held_out: list[str] | None) -> dict[str, Any]:
    from agents.evaluate import evaluate, format_table
    from agents.rollout import EpisodeSpec

    report: dict[str, Any] = {}
    env_kwargs = {**run_config.env_kwargs, **run_config.eval_env_kwargs}
    report["all"] = evaluate(run_config.env, policy, env_kwargs=env_kwargs,
                             episodes=run_config.eval_episodes, seed=run_config.seed,
                             batch_size=run_config.eval_batch_size,
                             episodes_path=run.dir / "eval_episodes.jsonl")
    if held_out:
        specs = [EpisodeSpec(seed=run_config.seed + i, options={"answer": a}) for i, a in enumerate(held_out)]
        report["held_out"] = evaluate(run_config.env, policy, env_kwargs=env_kwargs, episodes=specs,
                                      batch_size=run_config.eval_batch_size)
    run.write_eval(report)
    for name, summary in report.items():
        print(f"\n== evaluation: {name} ==\n{format_table(summary)}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        resume_dir = None
        if args.resume:
            run_path = Path(args.resume)
            if not (run_path / "config.yaml").is_file():
                raise ConfigError(f"--resume {run_path}: no config.yaml there; is it a run folder?")
            if (run_path / "final").is_dir():
                print(f"{run_path} already finished (final/ exists); nothing to resume.")
                return 0
            args.config, args.run_dir = str(run_path / "config.yaml"), str(run_path)
            resume_dir = resumable_checkpoint(run_path)
            if resume_dir is None:
                print(f"{run_path} has no complete checkpoint yet; starting it over.", file=sys.stderr)
        run_config, agent_config, resolved = resolve_config(args)
        import gymnasium as gym

        import envs  # noqa: F401

        if run_config.env not in gym.registry:
            raise ConfigError(f"unknown env {run_config.env!r}")
        run_dir = Path(run_config.run_dir) if run_config.run_dir else Run.default_dir(
            run_config.env, run_config.agent, run_config.seed)
        resolved["run_dir"] = str(run_dir)
        policy = make_policy(run_config, agent_config, resume_dir)
        # Demonstrations after the policy: a bad --init or --model fails before minutes of solver games.
        make_env = None
        if run_config.agent == "grpo":
            from agents.evaluate import make_env_fn
            from agents.grpo import train_answers

            make_env = make_env_fn(run_config.env, run_config.env_kwargs)
            conversations, held_out = [], (train_answers(make_env, agent_config)[1] or None)
        else:
            conversations, held_out = demonstrations(run_config, agent_config)
    except (ConfigError, DataError, CheckpointError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    run = Run(run_dir, resolved)
    data_note = f"; {len(conversations):,} demonstration conversations" if conversations else ""
    print(f"run folder: {run.dir}\npolicy: {policy.num_parameters():,} parameters "
          f"({policy.num_parameters(trainable_only=True):,} trainable) on {policy.device}{data_note}",
          file=sys.stderr)
    if resume_dir is not None:
        print(f"resuming from {resume_dir}", file=sys.stderr)
    try:
        if run_config.agent == "grpo":
            from agents.grpo import GRPOAgent

            GRPOAgent(policy, agent_config, run=run, seed=run_config.seed).learn(make_env, resume_from=resume_dir)
        else:
            from agents.sft import SFTAgent

            SFTAgent(policy, agent_config, run=run, seed=run_config.seed).learn(
                None, demos=conversations, resume_from=resume_dir)
    except KeyboardInterrupt:
        print(f"\ninterrupted; resume with: python -m agents.train --resume {run.dir}", file=sys.stderr)
        run.close()
        return 130
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        run.close()
        return 2
    if not args.no_eval and str(run_config.eval_episodes) != "0":
        final_evaluation(run, run_config, policy, held_out)
    run.close()
    (run.dir / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")
    print(f"\nfinal checkpoint: {run.final_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
