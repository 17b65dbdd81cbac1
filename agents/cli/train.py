"""Train an agent on an env, then evaluate it: ``python -m agents.train --env Wordle-v0 [--agent sft]``.

Configuration precedence: built-in defaults < ``--config FILE`` < command-line flags <
``--set key=value``. The fully resolved config is written to the run folder. A run stopped
midway resumes with ``--resume runs/<run>``.

The steps are functions the pipeline (:mod:`agents.cli.pipeline`) and the filtered command line
call too: :func:`resolve_config` -> :func:`train` (checks, policy and data, learning, final
evaluation), or :func:`resume` for a run folder that exists.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.algos.configs import TaskSplitSettings
from agents.algos.registry import ALGORITHMS, NAMES, Algorithm, lookup
from agents.core import distributed
from agents.core.checkpoint import CheckpointError
from agents.core.config import (
    EVAL_ALL,
    ConfigError,
    RunConfig,
    build,
    field_help,
    merge,
    parse_overrides,
    read_yaml,
    to_dict,
)
from agents.core.demonstrations import DataError, demo_arrays, hh_conversations, read_conversations_jsonl
from agents.core.devices import check_device
from agents.core.envs import EnvFactory, action_kind, make_env_fn, parse_env_kwargs
from agents.core.evaluation import evaluate, format_comparison, format_table
from agents.core.loading import load_policy, policy_class
from agents.core.rollout import EpisodeSpec
from agents.core.run import Run, check_run_dir, resumable_checkpoint, run_folder_of
from agents.core.tasks import TaskSplit, read_split, split_tasks, write_split
from envs.gsm8k.demos import gsm8k_solution_conversations
from envs.mimic.demos import MimicDemoSource
from envs.protocol import ActionKind, motion_clip, scripted_policies, task_list
from envs.wordle.demos import (
    wordle_practice_conversations,
    wordle_solver_conversations,
    wordle_spelling_conversations,
)

# Built-in per-env defaults beyond the dataclasses: the tiny default model reads Wordle's
# compact prompt (one line per guess) far faster than the rules text.
ENV_DEFAULTS: dict[str, dict[str, Any]] = {"Wordle-v0": {"env_kwargs": {"prompt_style": "compact"}}}
# Box-action (continuous-control) envs have no task list: a fixed number of evaluation episodes.
BOX_ENV_DEFAULTS: dict[str, Any] = {"eval_episodes": 20}
BASELINE_POLICY = "reference"  # a Box-action policy is compared with the env's scripted reference
ERRORS = (ConfigError, DataError, CheckpointError, ValueError, FileNotFoundError)


@dataclass(frozen=True)
class Resolved:
    """A training run as configured: the run-level keys, the algorithm and its config."""

    run: RunConfig
    algorithm: Algorithm
    config: Any  # the algorithm's config dataclass
    as_dict: dict[str, Any]  # what config.yaml holds
    action_kind: ActionKind  # of the env: text (language-model policy) or box (Gaussian MLP)


# ------------------------------------------------------------------------------ configuration
def resolve_config(config_file: str | Path | None = None, flags: dict[str, Any] | None = None,
                   overrides: dict[str, Any] | None = None, flagged: Sequence[str] = ()) -> Resolved:
    """Merge built-in defaults < ``config_file`` < ``flags`` (run-level keys; ``env_kwargs`` is
    merged over the file's) < ``overrides`` (nested; a bare key that is not run-level belongs to
    the agent's section; ``flagged``: those of its keys a command-line flag set)."""
    from_file = read_yaml(config_file) if config_file else {}
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env_id = flags.get("env") or from_file.get("env") or RunConfig().env
    values: dict[str, Any] = merge(ENV_DEFAULTS.get(env_id, {}), from_file)
    env_kwargs = flags.pop("env_kwargs", None)
    values = merge(values, flags)
    if env_kwargs is not None:
        values["env_kwargs"] = {**values.get("env_kwargs", {}), **env_kwargs}
    agent = values.get("agent", RunConfig().agent)
    run_keys = set(field_help(RunConfig))
    for key, value in (overrides or {}).items():
        section = {key: value} if key in run_keys or key in NAMES else {agent: {key: value}}
        values = merge(values, section)
    agent = values.get("agent", RunConfig().agent)
    try:
        kind = action_kind(values.get("env", env_id), values.get("env_kwargs"))
    except ValueError as err:
        raise ConfigError(str(err)) from err
    if kind == "box":
        values = merge(BOX_ENV_DEFAULTS, values)
    algorithm = lookup(agent, kind)
    check_agent_flags(algorithm, flagged)
    stray = {a for a in NAMES if a in values} - {agent}
    if stray:
        raise ConfigError(f"config has a section for {sorted(stray)} but the agent is {agent!r}")
    agent_values = values.pop(agent, {}) or {}
    run_config = build(RunConfig, values, "config")
    config: Any = build(algorithm.config, agent_values, agent)
    return Resolved(run_config, algorithm, config, {**to_dict(run_config), agent: to_dict(config)}, kind)


def read_run_config(run_path: Path) -> dict[str, Any]:
    """The resolved ``config.yaml`` of a run folder being resumed, checked."""
    path = run_path / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"--resume {run_path}: no config.yaml there; is it a run folder?")
    config = read_yaml(path)
    missing = [key for key in ("env", "agent") if not config.get(key)]
    if missing:
        raise ConfigError(f"--resume {run_path}: {path} is empty or damaged (no {', '.join(missing)}); "
                          "it is not the resolved config a run writes, so there is nothing to resume")
    return config


def check_envs(run_config: RunConfig) -> None:
    """Build the env once with the training and once with the evaluation kwargs: a misspelt or
    bad env argument fails now, not after training (or after the run folder exists)."""
    for kwargs in (run_config.env_kwargs, {**run_config.env_kwargs, **run_config.eval_env_kwargs}):
        make = make_env_fn(run_config.env, kwargs)
        try:
            make().close()
        except (TypeError, ValueError) as err:
            raise ConfigError(f"cannot build {run_config.env} with env kwargs {kwargs}: {err}") from err


# ------------------------------------------------------------------------------ policy and data
def make_policy(run_config: RunConfig, config: Any, kind: ActionKind, resume_dir: Path | None,
                merge_init: bool = False) -> Any:
    """The policy to train: resumed, from ``--init``, from ``--model`` or new (the built-in
    language model, or a Gaussian MLP sized by the env), with LoRA where the config asks.
    ``merge_init``: an ``--init`` checkpoint's LoRA adapter is merged into its weights, so a new
    adapter trains on top and the adapter-disabled model is the ``--init`` checkpoint itself."""
    import torch  # heavy: only a run that trains gets here

    torch.manual_seed(run_config.seed)
    start = resume_dir or run_config.init
    if kind == "box":
        if run_config.model:
            raise ConfigError("--model names a language model; Box-action envs train a Gaussian MLP policy")
        mlp = policy_class("gaussian_mlp")
        env = make_env_fn(run_config.env, run_config.env_kwargs)()
        try:
            policy = mlp.load(start, device=run_config.device) if start else mlp.for_env(
                env, hidden=config.hidden, activation=config.activation, init_log_std=config.init_log_std,
                device=run_config.device)
            policy.check_compatible(env)
        finally:
            env.close()
        return policy
    lm = policy_class("lm")
    if start:
        policy = lm.load(start, device=run_config.device, merge_lora=merge_init and resume_dir is None)
    elif run_config.model:
        policy = lm.from_pretrained(run_config.model, device=run_config.device)
    else:
        policy = lm.default(seed=run_config.seed, device=run_config.device, **config.model_config)
    if config.lora_r > 0 and policy.lora is None:
        policy.enable_lora(config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_targets)
    if distributed.rank() > 0:  # the same weights everywhere; each other rank samples with its own seed
        torch.manual_seed(int(np.random.SeedSequence([run_config.seed, distributed.rank()]).generate_state(1)[0]))
    return policy


def task_split(run_config: RunConfig, config: Any) -> TaskSplit | None:
    """The train / held-out split of the env's tasks a config asks for (``train_task_fraction``
    below 1), or None."""
    if not isinstance(config, TaskSplitSettings) or config.train_task_fraction >= 1:
        return None
    if getattr(config, "task_pool", None):
        return None  # the pool is what trains; nothing is held out
    env = make_env_fn(run_config.env, run_config.env_kwargs)()
    try:
        tasks = task_list(env)
    finally:
        env.close()
    if tasks is None:
        raise ConfigError(f"train_task_fraction < 1 needs an env with a task list; {run_config.env} has none")
    return split_tasks(tasks, config.train_task_fraction, config.split_seed)


def conversations(run_config: RunConfig, config: Any, split: TaskSplit | None) -> list[list[dict[str, str]]]:
    """What a language model is fine-tuned on: the ``data`` key of the sft config."""
    kwargs = run_config.env_kwargs
    if config.data == "solver":
        if not run_config.env.startswith("Wordle"):
            raise ConfigError(f"data='solver' needs a Wordle env, not {run_config.env}; give a JSONL path")
        answers = [t["answer"] for t in split[0]] if split is not None else None
        data = wordle_solver_conversations(kwargs, answers, think=config.think)
        if config.practice_games:
            seen = {c[0]["content"] for c in data}
            data += wordle_practice_conversations(kwargs, config.practice_games, seed=config.split_seed,
                                                  think=config.think, skip_prompts=seen)
        if config.spelling:
            data += wordle_spelling_conversations(kwargs)
        return data
    if config.data == "solutions":
        if not run_config.env.startswith("GSM8K"):
            raise ConfigError(f"data='solutions' needs GSM8K-v0, not {run_config.env}")
        indices = [t["index"] for t in split[0]] if split is not None else None
        return gsm8k_solution_conversations(kwargs, config.keep_calculator, indices=indices)
    if split is not None:
        raise ConfigError("train_task_fraction < 1 splits the env's tasks, which only data=solver (Wordle) "
                          "and data=solutions (GSM8K) are made of")
    if config.data.startswith("hh:"):
        return hh_conversations(config.data[3:])
    return read_conversations_jsonl(config.data)


def mlp_demonstrations(run_config: RunConfig, config: Any) -> Any:
    """What behaviour cloning of a Gaussian MLP learns from: ``data='mocap'`` extracts it from
    the humanoid's clip (and relabels DAgger rollouts); otherwise an .npz of observations/actions."""
    if config.data != "mocap":
        demo_arrays(config.data)  # a missing or malformed file fails now, not after the run folder exists
        return config.data
    env = make_env_fn(run_config.env, run_config.env_kwargs)()
    if motion_clip(env) is None:
        env.close()
        raise ConfigError(f"data='mocap' needs a HumanoidMimic env, not {run_config.env}; give an .npz path")
    return MimicDemoSource(env, labels=config.labels, reference_states=config.reference_states,
                           noisy_episodes=config.noisy_episodes, noise_std=config.noise_std, horizon=config.horizon,
                           kp_tilt=config.kp_tilt, kd_tilt=config.kd_tilt, seed=run_config.seed)


@dataclass
class Prepared:
    policy: Any
    data: Any  # what the agent's learn() gets as demos
    split: TaskSplit | None
    make_env: EnvFactory


def prepare(resolved: Resolved, run_config: RunConfig, resume_dir: Path | None) -> Prepared:
    """Policy and data for the algorithm, by what it learns from, on ``run_config``'s device. The
    policy comes first: a bad ``--init`` or ``--model`` fails before minutes of demonstration
    games. Every rank of several processes prepares the same (from the same seed)."""
    config, algorithm = resolved.config, resolved.algorithm
    make_env = make_env_fn(run_config.env, run_config.env_kwargs)
    if algorithm.learns_from == "episode_logs":
        policy, selection, split = algorithm.agent_class().prepare(run_config, config, resume_dir)
        return Prepared(policy, selection, split, make_env)
    if algorithm.learns_from == "preferences":
        # The reference is the starting model itself: an --init LoRA adapter is merged first.
        policy = make_policy(run_config, config, resolved.action_kind, resume_dir, merge_init=True)
        # Pairs mined from an RL run's logs: the env evaluation uses that run's task split.
        split = read_split(run_folder_of(run_config.init)) if config.rl_log and run_config.init else None
        return Prepared(policy, algorithm.agent_class().load_pairs(policy, config), split, make_env)
    policy = make_policy(run_config, config, resolved.action_kind, resume_dir)
    split = task_split(run_config, config)
    if algorithm.learns_from == "environment":
        return Prepared(policy, None, split, make_env)
    if resolved.action_kind == "box":
        return Prepared(policy, mlp_demonstrations(run_config, config), split, make_env)
    return Prepared(policy, conversations(run_config, config, split), split, make_env)


# ------------------------------------------------------------------------------ evaluation
def final_evaluation(run: Run | None, run_config: RunConfig, policy: Any, split: TaskSplit | None) -> dict[str, Any]:
    """``eval.json``: the policy on ``eval_episodes`` episodes (evaluation kwargs), or with a task
    split on its two halves (the training env's tasks); a Box-action policy beside the env's
    scripted baseline on the same episodes. Several processes each play a share of the episodes;
    rank 0 (the one with the ``run``) writes and prints the merged report."""
    report: dict[str, Any] = {}
    eval_kwargs = {**run_config.env_kwargs, **run_config.eval_env_kwargs}
    seed = run_config.seed

    def specs(tasks: Sequence[dict[str, Any]]) -> list[EpisodeSpec]:
        return [EpisodeSpec(seed=seed + i, options=dict(task)) for i, task in enumerate(tasks)]

    sets: dict[str, tuple[Any, dict[str, Any]]] = {"all": (run_config.eval_episodes, eval_kwargs)}
    if split is not None:
        train, held = split
        if run_config.eval_episodes == EVAL_ALL:  # all tasks = the two halves: report them apart
            sets = {"held_out": (specs(held), run_config.env_kwargs), "train_tasks": (specs(train), run_config.env_kwargs)}
        else:
            sets["held_out"] = (specs(held[: int(run_config.eval_episodes)]), run_config.env_kwargs)
    for name, (episodes, kwargs) in sets.items():
        report[name] = evaluate(run_config.env, policy, env_kwargs=kwargs, episodes=episodes, seed=seed,
                                batch_size=run_config.eval_batch_size,
                                episodes_path=run.dir / f"eval_episodes_{name}.jsonl" if run else None,
                                progress=run is not None)
    baseline = baseline_policy(run_config.env, eval_kwargs)
    if baseline is not None and "all" in report:
        # The env's scripted baseline on the same episodes (same seeds, so the same start phases).
        report[baseline] = evaluate(run_config.env, baseline, env_kwargs=eval_kwargs, episodes=sets["all"][0],
                                    seed=seed, batch_size=run_config.eval_batch_size,
                                    episodes_path=run.dir / f"eval_episodes_{baseline}.jsonl" if run else None,
                                    progress=run is not None)
    if run is None:
        return report
    run.write_eval(report)
    if baseline is not None and "all" in report:
        print(f"\n== evaluation: policy vs {baseline}, same {report['all']['episodes']} episodes ==\n"
              f"{format_comparison(report)}")
        return report
    for name, summary in report.items():
        print(f"\n== evaluation: {name} ==\n{format_table(summary)}")
    return report


def baseline_policy(env_id: str, env_kwargs: dict[str, Any]) -> str | None:
    """The scripted policy a Box-action policy is compared with (the humanoid's open-loop
    ``reference``), or None."""
    if action_kind(env_id, env_kwargs) != "box":
        return None
    env = make_env_fn(env_id, env_kwargs)()
    try:
        return BASELINE_POLICY if BASELINE_POLICY in scripted_policies(env) else None
    finally:
        env.close()


# ------------------------------------------------------------------------------ running
def train(resolved: Resolved, *, resume_dir: Path | None = None, resuming: bool = False,
          overwrite: bool = False, evaluate_after: bool = True) -> int:
    """Check, prepare, train and evaluate one run; the exit status (2: bad input, nothing written).
    ``resuming``: the run folder is this run's own (``resume_dir`` None: it starts over)."""
    try:
        if distributed.requested() and not resolved.algorithm.distributed:
            raise ConfigError(f"agent {resolved.algorithm.name!r} runs in one process for now; start it without "
                              "torchrun (or with --nproc_per_node 1)")
        # Several processes (torchrun): each rank its own device; one run folder, rank 0's.
        run_config = copy.copy(resolved.run)
        run_config.device = distributed.start(run_config.device)
        check_device(run_config.device)
        check_envs(run_config)
        run_dir = Path(run_config.run_dir) if run_config.run_dir else Run.default_dir(
            run_config.env, run_config.agent, run_config.seed)
        run_dir = distributed.broadcast(run_dir)
        if distributed.is_main():
            check_run_dir(run_dir, resume=resuming, overwrite=overwrite)
        distributed.barrier()
        prepared = prepare(resolved, run_config, resume_dir)
        failed = None
    except ERRORS as err:
        failed = str(err)
    main_rank = distributed.is_main()
    failures = [f for f in distributed.gather([failed]) if f] if distributed.size() > 1 else [failed] if failed else []
    if failures:
        if main_rank or failed:
            print(f"error: {failed or failures[0]}", file=sys.stderr)
        return 2

    run = None
    if main_rank:
        if overwrite and run_dir.exists():
            print(f"--overwrite: deleting the earlier run in {run_dir}", file=sys.stderr)
            shutil.rmtree(run_dir)
        run = Run(run_dir, {**resolved.as_dict, "run_dir": str(run_dir)})
        if resuming and resume_dir is None:
            run.start_over()  # nothing of the interrupted attempt may mix with the new one
        if prepared.split is not None:
            write_split(run.dir, prepared.split)
    policy = prepared.policy
    if main_rank:
        data_note = f"; {len(prepared.data):,} demonstration conversations" if isinstance(prepared.data, list) else ""
        processes = f" x {distributed.size()} processes" if distributed.size() > 1 else ""
        print(f"run folder: {run_dir}\npolicy: {policy.num_parameters():,} parameters "
              f"({policy.num_parameters(trainable_only=True):,} trainable) on {policy.device}{processes}{data_note}",
              file=sys.stderr)
        if resume_dir is not None:
            print(f"resuming from {resume_dir}", file=sys.stderr)
    agent = resolved.algorithm.agent_class()(policy, resolved.config, run=run, seed=run_config.seed)
    try:
        agent.learn(prepared.make_env, demos=prepared.data, resume_from=resume_dir)
    except KeyboardInterrupt:
        if main_rank:
            print(f"\ninterrupted; resume with: python -m agents.train --resume {run_dir}", file=sys.stderr)
        if run is not None:
            run.close()
        return 130
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        if run is not None:
            run.close()
        return 2
    if evaluate_after and run_config.evaluates:
        final_evaluation(run, run_config, policy, prepared.split)
    if run is not None:
        run.close()
        print(f"\nfinal checkpoint: {run.final_dir}")
    distributed.barrier()
    return 0


def finish_run(run_path: Path, evaluate_after: bool = True, quiet: bool = False) -> int:
    """A run with ``final/``: write a missing ``eval.json`` (the run stopped during its final
    evaluation), else report that it is finished (unless ``quiet``)."""
    config = read_run_config(run_path)
    run_config = build(RunConfig, {k: v for k, v in config.items() if k in field_help(RunConfig)}, "config")
    if (run_path / "eval.json").is_file() or not (evaluate_after and run_config.evaluates):
        if not quiet:
            print(f"{run_path} already finished (final/ exists); nothing to resume.")
        return 0
    print(f"{run_path} has final/ but no eval.json (its final evaluation was interrupted): evaluating "
          "final/ now (--no-eval skips this)", file=sys.stderr)
    probe = make_env_fn(run_config.env, run_config.env_kwargs)()
    try:
        policy = load_policy(str(run_path / "final"), probe, device=run_config.device)
    finally:
        probe.close()
    run = Run(run_path, tensorboard=False)
    final_evaluation(run, run_config, policy, read_split(run_path))
    run.close()
    return 0


# What --set may change on --resume: keys that only say when a run stops (no schedule, batch or
# model depends on them), so the resumed run is the same run with a longer budget.
RESUME_BUDGET_KEYS = ("total_steps", "max_minutes")


def resume(run_path: str | Path, evaluate_after: bool = True, budget: dict[str, Any] | None = None) -> int:
    """Continue the run in ``run_path`` from its newest intact checkpoint (or start it over when
    it has none), or finish the evaluation of a run that has ``final/``. ``budget``: new values of
    :data:`RESUME_BUDGET_KEYS` (its ``config.yaml`` is rewritten with them)."""
    run_path = Path(run_path)
    budget = dict(budget or {})
    for name in NAMES:  # trpo.max_minutes=... spells the same key
        if isinstance(budget.get(name), dict):
            budget.update(budget.pop(name))
    try:
        read_run_config(run_path)
        other = sorted(set(budget) - set(RESUME_BUDGET_KEYS))
        if other:
            raise ConfigError(f"--resume continues a run with its own config; --set may change only its budget "
                              f"({', '.join(RESUME_BUDGET_KEYS)}), not {', '.join(other)}")
        if (run_path / "final").is_dir():
            if budget:
                raise ConfigError(f"{run_path} already finished (final/ exists): its budget cannot be extended; "
                                  f"start a new run from it with --init {run_path / 'final'}")
            return finish_run(run_path, evaluate_after)
        resolved = resolve_config(run_path / "config.yaml", {"run_dir": str(run_path)}, budget)
    except ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    resume_dir = resumable_checkpoint(run_path)
    if resume_dir is None:
        print(f"{run_path} has no complete checkpoint yet; starting it over.", file=sys.stderr)
    return train(resolved, resume_dir=resume_dir, resuming=True, evaluate_after=evaluate_after)


# ------------------------------------------------------------------------------ the command line
def build_parser() -> argparse.ArgumentParser:
    def options(cls: type) -> str:
        # the algorithm's own keys first, then the groups it shares with others
        shared = {name for base in cls.__mro__[1:] for name in getattr(base, "__dataclass_fields__", {})}
        keys = sorted(field_help(cls).items(), key=lambda item: item[0] in shared)
        return "\n".join(f"  {k:<24} {v}" for k, v in keys)

    sections = [
        "envs: Wordle-v0, GSM8K-v0 (text actions: language-model policy); HumanoidMimic-v1 and one id per clip",
        "      (Box actions: Gaussian MLP policy)",
        "agents (name, the actions it takes, what it does):",
        *(f"  {a.name:<9} {' + '.join(a.action_kinds):<11} {a.summary}" for a in ALGORITHMS),
        "",
        "run-level keys (--set key=value, or top level of --config):",
        options(RunConfig),
    ]
    for algorithm in ALGORITHMS:
        kinds = " and ".join({"text": "text-action", "box": "Box-action"}[k] for k in algorithm.action_kinds) + " envs"
        sections += ["", f"{algorithm.name} keys on {kinds}: {algorithm.summary} (--set key=value, or under "
                         f"'{algorithm.name}:' in --config)", options(algorithm.config)]
    sections += [
        "",
        "examples:",
        "  python -m agents.train --env Wordle-v0",
        """  python -m agents.train --env Wordle-v0 --env-kwargs '{"answers": "answers.txt", "allowed": "allowed.txt"}'""",
        "  python -m agents.train --config configs/wordle_sft.yaml --set max_steps=200 --set train_task_fraction=0.8",
        "  python -m agents.train --config configs/wordle_grpo.yaml --init runs/<sft-run>/final",
        "  python -m agents.train --config configs/wordle_filtered.yaml --rl-log runs/<grpo-run>/episodes.jsonl",
        "  python -m agents.train --config configs/hh_dpo.yaml --init runs/<hh-sft-run>/final     # DPO on HH pairs",
        "  python -m agents.train --config configs/gsm8k_dpo.yaml --init runs/<grpo-run>/final --rl-log runs/<grpo-run>",
        "  python -m agents.train --config configs/mimic_walk_sft.yaml         # BC from mocap, ~3 min on 2 cores",
        "  python -m agents.train --config configs/mimic_walk_trpo.yaml --init runs/<bc-run>/final --set max_minutes=30",
        "  python -m agents.train --resume runs/Wordle-v0__sft__0__20260101-120000",
        "  python -m agents.train --resume runs/<trpo-run> --set max_minutes=90       # a longer budget",
    ]
    parser = argparse.ArgumentParser(
        prog="python -m agents.train", description="Train an agent on an env, then evaluate it.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog="\n".join(sections))
    parser.add_argument("--env", default=None, help="env id (default: Wordle-v0)")
    parser.add_argument("--agent", default=None, choices=NAMES, help="agent (default: sft)")
    parser.add_argument("--config", default=None, metavar="YAML", help="config file, e.g. configs/wordle_sft.yaml")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    parser.add_argument("--model", default=None, metavar="PATH", help="Hugging Face checkpoint dir (default: built-in tiny model)")
    parser.add_argument("--env-kwargs", default=None, metavar="JSON", help="env kwargs as JSON, merged over the config's")
    parser.add_argument("--init", default=None, metavar="DIR", help="start from a checkpoint, e.g. runs/<run>/final")
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: 0)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--run-dir", default=None, metavar="DIR", help="run folder (default: runs/<env>__<agent>__<seed>__<time>)")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR",
                        help="continue an interrupted run from its last intact checkpoint with its own config "
                             "(a finished run whose final evaluation was cut short is evaluated); --set "
                             "total_steps=N / max_minutes=M extends its budget")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete what --run-dir holds and start over (by default a folder that holds a run "
                             "is refused)")
    parser.add_argument("--data", default=None, metavar="SOURCE",
                        help="what sft and dpo learn from (the agent's 'data' key): 'hh:PATH' (HH-RLHF chosen / "
                             "rejected transcripts), a JSONL path (dpo: prompt|messages, chosen, rejected rows), "
                             "'solver', 'solutions', 'mocap' (sft)")
    parser.add_argument("--rl-log", nargs="+", default=None, metavar="LOG",
                        help="episodes.jsonl of RL runs (or their run folders) that filtered and dpo learn from "
                             "(the agent's 'rl_log' key): dpo mines best-vs-worst pairs per task from them")
    parser.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    return parser


# Flags that describe a new run; a resumed run has its own config.yaml.
RESUME_EXCLUSIVE = ("env", "agent", "config", "model", "env_kwargs", "init", "seed", "device", "run_dir", "data",
                    "rl_log")

# Flags that each set one key of the agent's section (as --set key=... would).
AGENT_FLAGS = {"data": "--data", "rl_log": "--rl-log"}


def check_agent_flags(algorithm: Algorithm, flagged: Sequence[str]) -> None:
    """A flag for a key the chosen agent does not have names the agents that do."""
    for key in flagged:
        if key not in field_help(algorithm.config):
            owners = sorted({a.name for a in ALGORITHMS if key in field_help(a.config)})
            raise ConfigError(f"{AGENT_FLAGS[key]} is for the {' and '.join(owners)} agents, not {algorithm.name!r} "
                              "(choose one with --agent or --config)")


def resolve_args(args: argparse.Namespace) -> Resolved:
    """The run the command-line flags describe."""
    flags = {"env": args.env, "agent": args.agent, "seed": args.seed, "device": args.device, "model": args.model,
             "init": args.init, "run_dir": args.run_dir, "env_kwargs": parse_env_kwargs(args.env_kwargs)
             if args.env_kwargs is not None else None}
    overrides = parse_overrides(args.set or [])
    flagged = {key: getattr(args, key) for key in AGENT_FLAGS if getattr(args, key) is not None}
    for key, value in flagged.items():  # a flag sets its key as --set would; both at once is an error
        if key in overrides:
            raise ConfigError(f"{AGENT_FLAGS[key]} and --set {key}=... both given; give one")
        overrides[key] = value
    return resolve_config(args.config, flags, overrides, flagged=list(flagged))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.resume and args.overwrite:
        print("error: --resume continues a run and --overwrite starts one over; give one of them", file=sys.stderr)
        return 2
    try:
        # Every path that may have joined a process group leaves it: a gloo group still alive at
        # interpreter exit aborts the process ("terminate called without an active exception").
        if args.resume:
            given = [f"--{name.replace('_', '-')}" for name in RESUME_EXCLUSIVE if getattr(args, name) is not None]
            if given:
                print(f"error: --resume continues a run with its own config.yaml; {', '.join(given)} cannot change "
                      f"it (--set may extend its budget: {', '.join(RESUME_BUDGET_KEYS)})", file=sys.stderr)
                return 2
            try:
                budget = parse_overrides(args.set or [])
            except ERRORS as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            return resume(args.resume, evaluate_after=not args.no_eval, budget=budget)
        try:
            resolved = resolve_args(args)
        except ERRORS as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return train(resolved, overwrite=args.overwrite, evaluate_after=not args.no_eval)
    finally:
        distributed.stop()


if __name__ == "__main__":
    distributed.leave(main())
