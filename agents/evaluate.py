"""Evaluate a policy on an env: ``python -m agents.evaluate --env Wordle-v0 --policy solver``.

Prints a table (or one JSON object with ``--json``). One schema for every env and policy:
the common keys ``env``, ``policy`` (CLI), ``episodes``, ``mean_return``, ``std_return``,
``mean_length`` at the top level, and the env class's ``summarize_episodes`` metrics under one
key named after the env's package: ``"wordle": {"win_rate", "mean_guesses", ...}``,
``"gsm8k": {"accuracy_strict", ...}``, ``"mimic": {"mean_time_alive", "mpjpe_mm", ...}``.

``--policy runs/<run>/final`` without ``--env`` plays the env the run was trained on, with the
env kwargs of its final evaluation (``config.yaml``: ``env_kwargs`` updated by ``eval_env_kwargs``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from agents.checkpoint import MANIFEST, CheckpointError, read_manifest, write_json_atomic
from agents.devices import check_device
from agents.loading import load_policy
from agents.policy import Policy
from agents.rollout import EpisodeSpec, play_episodes
from agents.trajectory import Episode


def run_folder_of(checkpoint: str | Path) -> Path:
    """The run folder of a checkpoint: ``<run>/final``, ``<run>/best`` or ``<run>/checkpoints/step_N``."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def checkpoint_run_config(checkpoint: str | Path) -> dict[str, Any]:
    """The resolved ``config.yaml`` of the run a checkpoint belongs to; ``{}`` when there is none."""
    import yaml

    path = run_folder_of(checkpoint) / "config.yaml"
    if not (Path(checkpoint) / MANIFEST).is_file() or not path.is_file():
        return {}
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}


def checkpoint_env(checkpoint: str | Path) -> tuple[str | None, dict[str, Any]]:
    """(env id, env kwargs) a checkpoint is evaluated on by default: its run's env with the final
    evaluation's kwargs, else the ``env_id`` in its ``policy.json`` metadata (MLP policies)."""
    config = checkpoint_run_config(checkpoint)
    if config.get("env"):
        return str(config["env"]), {**(config.get("env_kwargs") or {}), **(config.get("eval_env_kwargs") or {})}
    if (Path(checkpoint) / MANIFEST).is_file():
        metadata = read_manifest(checkpoint).get("metadata") or {}
        if isinstance(metadata, dict) and metadata.get("env_id"):
            return str(metadata["env_id"]), {}
    return None, {}


def parse_env_kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--env-kwargs is not valid JSON ({err.msg} at char {err.pos}): {text!r}") from err
    if not isinstance(value, dict):
        raise ValueError(f"--env-kwargs must be a JSON object, got {type(value).__name__}")
    return value


def make_env_fn(env_id: str, env_kwargs: dict[str, Any]):
    """A zero-argument function building ``env_id`` with ``env_kwargs``; an unknown id or an
    argument the env does not take is a ``ValueError`` now, before anything is built."""
    import envs  # noqa: F401  (registers the ids)

    if env_id not in gym.registry:
        known = sorted(k for k in gym.registry if not k.startswith(("ALE/", "phys2d/", "tabular/")))
        ours = [k for k in known if gym.registry[k].entry_point.__str__().startswith("envs.")]
        raise ValueError(f"unknown env {env_id!r}; ours: {', '.join(ours)}")
    check_env_kwargs(env_id, env_kwargs)

    def make() -> gym.Env:
        try:
            return gym.make(env_id, **env_kwargs)
        except TypeError as err:  # a value of the wrong kind deep in the constructor
            raise ValueError(f"cannot build {env_id} with env kwargs {env_kwargs}: {err}") from err

    return make


def check_env_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Refuse keyword arguments that neither the env's constructor nor ``gym.make`` takes."""
    import inspect

    from gymnasium.envs.registration import load_env_creator

    spec = gym.registry[env_id]
    creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    if creator is None:
        return
    params = inspect.signature(creator).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    takes = [name for name, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    of_make = set(inspect.signature(gym.make).parameters) - {"id", "kwargs"}
    unknown = sorted(set(env_kwargs) - set(takes) - of_make)
    if unknown:
        raise ValueError(f"{env_id} takes no argument(s) {', '.join(map(repr, unknown))} (env kwargs); "
                         f"it takes: {', '.join(takes)}")


def as_make_env(env: str | Callable[[], gym.Env]) -> Callable[[], gym.Env]:
    """An agent's ``learn(env)`` argument as an env factory: an env id (default kwargs) or a
    zero-argument function such as ``make_env_fn(env_id, kwargs)``."""
    if isinstance(env, str):
        return make_env_fn(env, {})
    if not callable(env):
        raise TypeError("env must be an env id or a function that builds the env (make_env_fn(env_id, kwargs))")
    return env


def read_tasks(path: str | Path, seed: int = 0) -> list[EpisodeSpec]:
    """Episodes from a JSON-lines file of reset options, one object per episode (episode i uses
    seed + i): ``{"answer": "crane"}`` (Wordle), ``{"index": 7}`` (GSM8K), ``{"phase": 0.25}``
    (humanoid). Training runs with a held-out split write theirs as ``tasks_*.jsonl``."""
    from envs.jsonl import read_json_lines

    if not Path(path).is_file():
        raise ValueError(f"--tasks {str(path)!r} does not exist (a JSON-lines file of reset options)")
    specs = []
    for where, row in read_json_lines(path, error=ValueError):
        if not isinstance(row, dict):
            raise ValueError(f"{where}: a task must be a JSON object of reset options, got {type(row).__name__}")
        specs.append(EpisodeSpec(seed=seed + len(specs), options=row))
    if not specs:
        raise ValueError(f"{path}: no tasks in the file")
    return specs


def write_tasks(path: str | Path, specs: Sequence[EpisodeSpec]) -> None:
    lines = "".join(json.dumps(spec.options) + "\n" for spec in specs)
    Path(path).write_text(lines, encoding="utf-8")


def episode_specs(env: gym.Env, episodes: str | int | Sequence[EpisodeSpec], seed: int) -> list[EpisodeSpec]:
    """``all`` asks the env for its full task list (Wordle: every answer once, in order)."""
    if isinstance(episodes, Sequence) and not isinstance(episodes, str):
        return list(episodes)
    if str(episodes) == "all":
        tasks = getattr(env.unwrapped, "all_tasks", None)
        if tasks is None:
            raise ValueError(f"--episodes all is not defined for {env.spec.id if env.spec else env}; give a number")
        return [EpisodeSpec(seed=seed + i, options=opts) for i, opts in enumerate(tasks())]
    try:
        count = int(episodes)
    except ValueError as err:
        raise ValueError(f"--episodes must be a positive integer or 'all', got {episodes!r}") from err
    if count < 1:
        raise ValueError(f"--episodes must be >= 1, got {count}")
    return [EpisodeSpec(seed=seed + i) for i in range(count)]


def summarize(env: gym.Env, episodes: Sequence[Episode]) -> dict[str, Any]:
    returns = np.array([e.return_ for e in episodes], dtype=float)
    summary: dict[str, Any] = {
        "env": env.spec.id if env.spec else type(env.unwrapped).__name__,
        "episodes": len(episodes),
        "mean_return": float(returns.mean()) if len(returns) else 0.0,
        "std_return": float(returns.std()) if len(returns) else 0.0,
        "mean_length": float(np.mean([e.length for e in episodes])) if episodes else 0.0,
    }
    extra = getattr(env.unwrapped, "summarize_episodes", None)
    if extra is not None:
        summary[env_family(env)] = extra(episodes)
    return summary


def env_family(env: gym.Env) -> str:
    """The key of an env's own metrics: its package under ``envs/`` (``envs.wordle.env`` -> ``wordle``),
    else its class name in lower case."""
    parts = type(env.unwrapped).__module__.split(".")
    return parts[1] if parts[0] == "envs" and len(parts) > 1 else type(env.unwrapped).__name__.lower()


def evaluate(
    env_id: str,
    policy: Policy | str,
    *,
    env_kwargs: dict[str, Any] | None = None,
    episodes: int | str | Sequence[EpisodeSpec] = 100,
    seed: int = 0,
    batch_size: int = 64,
    deterministic: bool = True,
    progress: bool = True,
    device: str | None = None,
    episodes_path: str | Path | None = None,
    no_repeat_ngram_size: int | None = None,
) -> dict[str, Any]:
    """``no_repeat_ngram_size`` overrides a language-model policy's own setting (0 = off)."""
    make = make_env_fn(env_id, env_kwargs or {})
    probe = make()
    try:
        # A scripted name or checkpoint path as given; for a policy object, its kind ("lm", ...).
        policy_name = policy if isinstance(policy, str) else getattr(policy, "kind", type(policy).__name__)
        if isinstance(policy, str):
            policy = load_policy(policy, probe, seed=seed, device=device)
        if not deterministic and hasattr(policy, "kind"):
            import torch

            torch.manual_seed(seed)  # trained policies sample from torch's RNG: same seed, same episodes
        if no_repeat_ngram_size is not None:
            sampling = getattr(policy, "sampling", None)
            if sampling is None:
                raise ValueError("--no-repeat-ngram applies to language-model policies only")
            policy.sampling = dataclasses.replace(sampling, no_repeat_ngram_size=no_repeat_ngram_size)
        specs = episode_specs(probe, episodes, seed)
        bar = tqdm(total=len(specs), desc=f"eval {env_id}", unit="ep", disable=not progress, file=sys.stderr)
        done: list[Episode] = []

        def on_episode(ep: Episode) -> None:
            done.append(ep)
            bar.update(1)
            wins = getattr(probe.unwrapped, "progress_postfix", None)
            if wins is not None:
                bar.set_postfix(wins(done), refresh=False)

        results = play_episodes(make, policy, specs, batch_size=batch_size, deterministic=deterministic,
                                on_episode=on_episode)
        bar.close()
        if episodes_path is not None:
            from agents.trajectory import write_episodes

            write_episodes(episodes_path, results, append=False)
        return {**summarize(probe, results), "policy": policy_name}
    finally:
        probe.close()


def format_table(summary: dict[str, Any]) -> str:
    """One row per metric; the env's own metrics as ``wordle.win_rate`` and so on."""
    rows = []

    def add(key: str, value: Any) -> None:
        if isinstance(value, dict):
            value = "  ".join(f"{k}:{v}" for k, v in value.items())
        elif isinstance(value, float):
            value = f"{value:.4f}"
        rows.append((key, str(value)))

    for key, value in summary.items():
        if isinstance(value, dict):  # the env's metrics
            for inner_key, inner in value.items():
                add(f"{key}.{inner_key}", inner)
        else:
            add(key, value)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


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
                        help="scripted policy name (Wordle: solver, random; humanoid: reference, random) "
                             "or a checkpoint directory such as runs/<run>/final (default: %(default)s)")
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
    parser.add_argument("--device", default=None, help="torch device for checkpoint policies (default: cuda if available)")
    parser.add_argument("--episodes-out", default=None, metavar="PATH", help="also write the episodes as JSON lines")
    parser.add_argument("--out", default=None, metavar="PATH", help="also write the summary JSON to this file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def check_writable(path: str | Path, flag: str) -> None:
    """Fail before the work when an output file cannot be written (a missing or unwritable folder)."""
    import tempfile

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
            no_repeat_ngram_size=args.no_repeat_ngram,
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
