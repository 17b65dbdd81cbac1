"""Train an agent on an env: ``python -m agents.train --env Wordle-v0 [--agent sft]``.

Configuration precedence: built-in defaults < ``--config FILE`` < command-line flags <
``--set key=value``. The fully resolved config is written to the run folder. A run stopped
midway resumes with ``--resume runs/<run>``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
from agents.devices import check_device
from agents.run import Run, check_run_dir, resumable_checkpoint

AGENTS = ("sft", "grpo", "filtered", "trpo")

# Built-in per-env defaults beyond the dataclasses: the tiny default model reads Wordle's
# compact prompt (one line per guess) far faster than the rules text.
ENV_DEFAULTS: dict[str, dict[str, Any]] = {"Wordle-v0": {"env_kwargs": {"prompt_style": "compact"}}}


# Text-action env packages, known without constructing the env (GSM8K loads its data when built).
TEXT_ENV_PACKAGES = ("envs.wordle.", "envs.gsm8k.")
# Built-in defaults of Box-action (continuous-control) envs: no task list, so a fixed episode count.
BOX_ENV_DEFAULTS: dict[str, Any] = {"eval_episodes": "20"}
_ACTION_KINDS: dict[tuple[str, str], str] = {}


def action_kind(env_id: str, env_kwargs: dict[str, Any] | None = None) -> str:
    """``"text"`` (language-model policy) or ``"box"`` (Gaussian MLP policy) for an env id; the
    agent's config class and policy follow from it. Unknown ids count as text (reported later)."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids)

    if env_id not in gym.registry or str(gym.registry[env_id].entry_point).startswith(TEXT_ENV_PACKAGES):
        return "text"
    key = (env_id, repr(sorted((env_kwargs or {}).items())))
    if key in _ACTION_KINDS:
        return _ACTION_KINDS[key]
    try:
        env = gym.make(env_id, **(env_kwargs or {}))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"cannot build {env_id} with env_kwargs {env_kwargs or {}}: {err}") from err
    try:
        _ACTION_KINDS[key] = "box" if isinstance(env.action_space, gym.spaces.Box) else "text"
    finally:
        env.close()
    return _ACTION_KINDS[key]


def agent_config_class(agent: str, kind: str = "text") -> type:
    if kind == "box":
        if agent == "sft":
            from agents.bc import BCConfig

            return BCConfig
        if agent == "trpo":
            from agents.trpo import TRPOConfig

            return TRPOConfig
        if agent == "filtered":  # the same agent for both kinds: it trains whatever policy it loads
            from agents.filtered import FilteredConfig

            return FilteredConfig
        raise ConfigError(f"agent {agent!r} needs text actions; on Box-action envs use: sft, trpo, filtered")
    if agent == "sft":
        from agents.sft import SFTConfig

        return SFTConfig
    if agent == "grpo":
        from agents.grpo import GRPOConfig

        return GRPOConfig
    if agent == "filtered":
        from agents.filtered import FilteredConfig

        return FilteredConfig
    if agent == "trpo":
        raise ConfigError("agent 'trpo' needs Box (continuous) actions, e.g. --env HumanoidMimic-v0")
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
    kind = action_kind(values.get("env", env_id), values.get("env_kwargs"))
    if kind == "box":
        values = merge(BOX_ENV_DEFAULTS, values)
    agent_cls = agent_config_class(agent, kind)
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
    from agents.bc import BCConfig
    from agents.filtered import FilteredConfig
    from agents.grpo import GRPOConfig
    from agents.sft import SFTConfig
    from agents.trpo import TRPOConfig

    def options(cls: type) -> str:
        return "\n".join(f"  {k:<24} {v}" for k, v in field_help(cls).items())

    sections = [
        "envs: Wordle-v0, GSM8K-v0 (text actions: language-model policy); HumanoidMimic-v0 and one id per clip",
        "      (Box actions: Gaussian MLP policy)",
        f"agents: {', '.join(AGENTS)}",
        "",
        "run-level keys (--set key=value, or top level of --config):",
        options(RunConfig),
        "",
        "sft keys (--set key=value, or under 'sft:' in --config):",
        options(SFTConfig),
        "",
        "sft keys on Box-action envs, behaviour cloning of a Gaussian MLP (--set key=value, or under 'sft:'):",
        options(BCConfig),
        "",
        "grpo keys (--set key=value, or under 'grpo:' in --config):",
        options(GRPOConfig),
        "",
        "filtered keys (--set key=value, or under 'filtered:' in --config; short form: python -m agents.filtered):",
        options(FilteredConfig),
        "",
        "trpo keys, Box-action envs (--set key=value, or under 'trpo:' in --config):",
        options(TRPOConfig),
        "",
        "examples:",
        "  python -m agents.train --env Wordle-v0",
        """  python -m agents.train --env Wordle-v0 --env-kwargs '{"answers": "answers.txt", "allowed": "allowed.txt"}'""",
        "  python -m agents.train --config configs/wordle_sft.yaml --set max_steps=200 --set train_answer_fraction=0.8",
        "  python -m agents.train --config configs/wordle_grpo.yaml --init runs/<sft-run>/final",
        "  python -m agents.train --config configs/wordle_filtered.yaml --set rl_log=runs/<grpo-run>/episodes.jsonl",
        "  python -m agents.train --config configs/mimic_walk_sft.yaml         # BC from mocap, ~3 min on 2 cores",
        "  python -m agents.train --config configs/mimic_walk_trpo.yaml --init runs/<bc-run>/final --set max_minutes=30",
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
    parser.add_argument("--resume", default=None, metavar="RUN_DIR",
                        help="continue an interrupted run from its last intact checkpoint (a finished run whose "
                             "final evaluation was cut short is evaluated)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete what --run-dir holds and start over (by default a folder that holds a run "
                             "is refused)")
    parser.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    return parser


def make_mlp_policy(run_config: RunConfig, agent_config: Any, resume_dir: Path | None):
    """The Gaussian MLP policy of a Box-action env: resumed, from ``--init``, or new (sized by the
    env; ``hidden`` / ``activation`` / ``init_log_std`` from the agent's config where it has them)."""
    import gymnasium as gym

    from agents.mlp_policy import GaussianMLPPolicy

    if run_config.model:
        raise ConfigError("--model names a language model; Box-action envs train a Gaussian MLP policy")
    env = gym.make(run_config.env, **run_config.env_kwargs)
    try:
        if resume_dir is not None or run_config.init:
            policy = GaussianMLPPolicy.load(resume_dir or run_config.init, device=run_config.device)
        else:
            policy = GaussianMLPPolicy.for_env(
                env, hidden=getattr(agent_config, "hidden", (256, 256)),
                activation=getattr(agent_config, "activation", "tanh"),
                init_log_std=getattr(agent_config, "init_log_std", -1.0), device=run_config.device)
        policy.check_compatible(env)
    finally:
        env.close()
    return policy


def make_policy(run_config: RunConfig, agent_config: Any, resume_dir: Path | None):
    import torch

    from agents.lm.policy import LMPolicy

    torch.manual_seed(run_config.seed)
    if action_kind(run_config.env, run_config.env_kwargs) == "box":
        return make_mlp_policy(run_config, agent_config, resume_dir)
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


AnswerSplit = tuple[list[str], list[str]]  # (training answers, held-out answers)


def demonstrations(run_config: RunConfig, cfg: Any) -> tuple[list, AnswerSplit | None]:
    """(conversations, the Wordle answer split or None) for the SFT data spec."""
    from agents import demos

    if cfg.data == "solver":
        if not run_config.env.startswith("Wordle"):
            raise ConfigError(f"data='solver' needs a Wordle env, not {run_config.env}; give a JSONL path")
        from envs.wordle.lexicon import load_lexicon

        lexicon = load_lexicon(run_config.env_kwargs.get("answers"), run_config.env_kwargs.get("allowed"))
        train, held_out = demos.split_answers(lexicon.answers, cfg.train_answer_fraction, cfg.split_seed)
        conversations = demos.wordle_solver_conversations(run_config.env_kwargs, train, think=cfg.think)
        if cfg.practice_games:
            seen = {c[0]["content"] for c in conversations}
            conversations += demos.wordle_practice_conversations(
                run_config.env_kwargs, cfg.practice_games, seed=cfg.split_seed, think=cfg.think, skip_prompts=seen)
        if cfg.spelling:
            conversations += demos.wordle_spelling_conversations(run_config.env_kwargs)
        return conversations, ((train, held_out) if held_out else None)
    if cfg.data == "solutions":
        if not run_config.env.startswith("GSM8K"):
            raise ConfigError(f"data='solutions' needs GSM8K-v0, not {run_config.env}")
        return demos.gsm8k_solution_conversations(run_config.env_kwargs, cfg.keep_calculator), None
    if cfg.data.startswith("hh:"):
        return demos.hh_conversations(cfg.data[3:]), None
    return demos.read_conversations_jsonl(cfg.data), None


def bc_demonstrations(run_config: RunConfig, cfg: Any) -> Any:
    """What behaviour cloning of a Box-action policy learns from: ``data='mocap'`` extracts it from
    the humanoid's clip (and relabels DAgger rollouts); otherwise an .npz of observations/actions."""
    if cfg.data != "mocap":
        from agents.bc import demo_arrays

        demo_arrays(cfg.data)  # a missing or malformed file fails now, not after the run folder exists
        return cfg.data
    import gymnasium as gym

    from envs.mimic.demos import MimicDemoSource

    env = gym.make(run_config.env, **run_config.env_kwargs)
    if getattr(env.unwrapped, "clip", None) is None:
        env.close()
        raise ConfigError(f"data='mocap' needs a HumanoidMimic env, not {run_config.env}; give an .npz path")
    return MimicDemoSource(env, labels=cfg.labels, reference_states=cfg.reference_states,
                           noisy_episodes=cfg.noisy_episodes, noise_std=cfg.noise_std, horizon=cfg.horizon,
                           kp_tilt=cfg.kp_tilt, kd_tilt=cfg.kd_tilt, seed=run_config.seed)


def write_answer_split(run: Run, split: AnswerSplit, seed: int) -> None:
    """``tasks_train.jsonl`` / ``tasks_held_out.jsonl``: the split, replayable with
    ``python -m agents.evaluate --tasks``."""
    from agents.evaluate import write_tasks
    from agents.rollout import EpisodeSpec

    for name, answers in zip(("train", "held_out"), split, strict=True):
        write_tasks(run.dir / f"tasks_{name}.jsonl",
                    [EpisodeSpec(seed=seed + i, options={"answer": a}) for i, a in enumerate(answers)])


def final_evaluation(run: Run, run_config: RunConfig, policy: Any, split: AnswerSplit | None) -> dict[str, Any]:
    from agents.evaluate import evaluate, format_table, read_tasks

    report: dict[str, Any] = {}
    env_kwargs = {**run_config.env_kwargs, **run_config.eval_env_kwargs}
    splits = {"all": run_config.eval_episodes}
    if split is not None:
        # "all" answers = the training answers + the held-out ones: evaluate the two halves instead.
        train, held = (read_tasks(run.dir / f"tasks_{name}.jsonl", run_config.seed) for name in ("train", "held_out"))
        splits = {"held_out": held, "train_answers": train} if str(run_config.eval_episodes) == "all" \
            else {"all": run_config.eval_episodes, "held_out": held[: int(run_config.eval_episodes)]}
    for name, episodes in splits.items():
        report[name] = evaluate(run_config.env, policy, env_kwargs=env_kwargs, episodes=episodes,
                                seed=run_config.seed, batch_size=run_config.eval_batch_size,
                                episodes_path=run.dir / f"eval_episodes_{name}.jsonl")
    baseline = baseline_policy(run_config.env, env_kwargs)
    if baseline is not None and "all" in report:
        # The env's scripted baseline on the same episodes (same seeds, so the same start phases).
        report[baseline] = evaluate(run_config.env, baseline, env_kwargs=env_kwargs, episodes=splits["all"],
                                    seed=run_config.seed, batch_size=run_config.eval_batch_size,
                                    episodes_path=run.dir / f"eval_episodes_{baseline}.jsonl")
        run.write_eval(report)
        print(f"\n== evaluation: policy vs {baseline}, same {report['all']['episodes']} episodes ==\n"
              f"{format_comparison(report)}")
        return report
    run.write_eval(report)
    for name, summary in report.items():
        print(f"\n== evaluation: {name} ==\n{format_table(summary)}")
    return report


BASELINE_POLICY = "reference"


def baseline_policy(env_id: str, env_kwargs: dict[str, Any]) -> str | None:
    """The scripted policy a Box-action policy is compared with after training (the humanoid's
    open-loop ``reference``), or None."""
    import gymnasium as gym

    if action_kind(env_id, env_kwargs) != "box":
        return None
    env = gym.make(env_id, **env_kwargs)
    try:
        return BASELINE_POLICY if BASELINE_POLICY in getattr(env.unwrapped, "scripted_policies", {}) else None
    finally:
        env.close()


def format_comparison(report: dict[str, dict[str, Any]]) -> str:
    """Evaluation summaries side by side, one column each (nested env metrics flattened)."""
    def flat(summary: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in summary.items():
            out.update({f"{key}.{k}": v for k, v in value.items()} if isinstance(value, dict) else {key: value})
        return out

    columns = {"policy" if name == "all" else name: flat(summary) for name, summary in report.items()}
    keys = list(dict.fromkeys(k for c in columns.values() for k in c))
    cells = {name: [f"{v:.4f}" if isinstance(v, float) else str(v) for v in (c.get(k, "") for k in keys)]
             for name, c in columns.items()}
    widths = {name: max(len(name), *map(len, cells[name])) for name in columns}
    width = max(len(k) for k in keys)
    lines = [f"{'':<{width}}  " + "  ".join(f"{name:>{widths[name]}}" for name in columns)]
    for row, key in enumerate(keys):
        lines.append(f"{key:<{width}}  " + "  ".join(f"{cells[name][row]:>{widths[name]}}" for name in columns))
    return "\n".join(lines)


def read_run_config(run_path: Path) -> dict[str, Any]:
    """The resolved ``config.yaml`` of a run folder given to ``--resume``, checked."""
    path = run_path / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"--resume {run_path}: no config.yaml there; is it a run folder?")
    config = read_yaml(path)
    missing = [key for key in ("env", "agent") if not config.get(key)]
    if missing:
        raise ConfigError(f"--resume {run_path}: {path} is empty or damaged (no {', '.join(missing)}); "
                          "it is not the resolved config a run writes, so there is nothing to resume")
    return config


def finish_run(run_path: Path, evaluate: bool = True, quiet: bool = False) -> int:
    """A run with ``final/``: write a missing ``eval.json`` (the run stopped during its final
    evaluation), else report that it is finished (unless ``quiet``)."""
    config = read_run_config(run_path)
    wanted = evaluate and str(config.get("eval_episodes", "all")) != "0"
    if (run_path / "eval.json").is_file() or not wanted:
        if not quiet:
            print(f"{run_path} already finished (final/ exists); nothing to resume.")
        return 0
    from agents.evaluate import make_env_fn
    from agents.filtered import answer_split
    from agents.loading import load_policy

    run_config = build(RunConfig, {k: v for k, v in config.items() if k in field_help(RunConfig)}, "config")
    print(f"{run_path} has final/ but no eval.json (its final evaluation was interrupted): evaluating "
          "final/ now (--no-eval skips this)", file=sys.stderr)
    probe = make_env_fn(run_config.env, run_config.env_kwargs)()
    try:
        policy = load_policy(str(run_path / "final"), probe, device=run_config.device)
    finally:
        probe.close()
    run = Run(run_path, tensorboard=False)
    final_evaluation(run, run_config, policy, answer_split(run_path))
    run.close()
    return 0


def check_envs(run_config: RunConfig) -> None:
    """Build the env once with the training and with the evaluation kwargs: a misspelt or bad
    env argument fails now, not after training (or after the run folder exists)."""
    from agents.evaluate import make_env_fn

    for kwargs in (run_config.env_kwargs, {**run_config.env_kwargs, **run_config.eval_env_kwargs}):
        make = make_env_fn(run_config.env, kwargs)
        try:
            make().close()
        except (TypeError, ValueError) as err:
            raise ConfigError(f"cannot build {run_config.env} with env kwargs {kwargs}: {err}") from err


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        resume_dir = None
        if args.resume:
            if args.overwrite:
                raise ConfigError("--resume continues a run and --overwrite starts one over; give one of them")
            run_path = Path(args.resume)
            read_run_config(run_path)
            if (run_path / "final").is_dir():
                return finish_run(run_path, evaluate=not args.no_eval)
            args.config, args.run_dir = str(run_path / "config.yaml"), str(run_path)
            resume_dir = resumable_checkpoint(run_path)
            if resume_dir is None:
                print(f"{run_path} has no complete checkpoint yet; starting it over.", file=sys.stderr)
        run_config, agent_config, resolved = resolve_config(args)
        check_device(run_config.device)
        check_envs(run_config)
        run_dir = Path(run_config.run_dir) if run_config.run_dir else Run.default_dir(
            run_config.env, run_config.agent, run_config.seed)
        check_run_dir(run_dir, resume=bool(args.resume), overwrite=args.overwrite)
        resolved["run_dir"] = str(run_dir)
        if run_config.agent == "filtered":
            from agents.filtered import prepare

            policy, selection, split = prepare(run_config, agent_config, resume_dir)
        else:
            policy = make_policy(run_config, agent_config, resume_dir)
        # Demonstrations after the policy: a bad --init or --model fails before minutes of solver games.
        make_env = None
        bc_demos = None  # Box-action sft: a demonstration source or an .npz path
        if run_config.agent == "grpo":
            from agents.evaluate import make_env_fn
            from agents.grpo import train_answers

            make_env = make_env_fn(run_config.env, run_config.env_kwargs)
            train, held = train_answers(make_env, agent_config)
            conversations, split = [], ((train, held) if train is not None and held else None)
        elif run_config.agent == "filtered":
            conversations = []  # the data is the selection's kept episodes
        elif run_config.agent == "trpo":
            from agents.evaluate import make_env_fn

            make_env = make_env_fn(run_config.env, run_config.env_kwargs)
            conversations, split = [], None
        elif action_kind(run_config.env, run_config.env_kwargs) == "box":
            conversations, split, bc_demos = [], None, bc_demonstrations(run_config, agent_config)
        else:
            conversations, split = demonstrations(run_config, agent_config)
    except (ConfigError, DataError, CheckpointError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    if args.overwrite and run_dir.exists():
        print(f"--overwrite: deleting the earlier run in {run_dir}", file=sys.stderr)
        shutil.rmtree(run_dir)
    run = Run(run_dir, resolved)
    if args.resume and resume_dir is None:
        run.start_over()  # nothing of the interrupted attempt may mix with the new one
    if split is not None:
        write_answer_split(run, split, run_config.seed)
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
        elif run_config.agent == "filtered":
            from agents.filtered import FilteredAgent

            FilteredAgent(policy, agent_config, run=run, seed=run_config.seed, selection=selection).learn(
                resume_from=resume_dir)
        elif run_config.agent == "trpo":
            from agents.trpo import TRPOAgent

            # From a checkpoint (--init: BC), the critic is fitted first before the policy moves.
            TRPOAgent(policy, agent_config, run=run, seed=run_config.seed,
                      warm_up_critic=bool(run_config.init)).learn(make_env, resume_from=resume_dir)
        elif bc_demos is not None:
            from agents.bc import BCAgent

            BCAgent(policy, agent_config, run=run, seed=run_config.seed).learn(
                None, demos=bc_demos, resume_from=resume_dir)
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
        final_evaluation(run, run_config, policy, split)
    run.close()
    print(f"\nfinal checkpoint: {run.final_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
