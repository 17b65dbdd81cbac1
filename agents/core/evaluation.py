"""Playing a policy on an env's episodes and summarising them in one schema for every env.

A summary holds ``env``, ``episodes``, ``mean_return``, ``std_return``, ``mean_length`` and, for
an env that scores its episodes (``envs.protocol.ScoresEpisodes``), its own metrics under its
``metrics_key``: ``"wordle": {"win_rate", "mean_guesses", ...}``, ``"gsm8k": {"accuracy_strict",
...}``, ``"mimic": {"mean_time_alive", "mpjpe_mm", ...}``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from agents.core import distributed
from agents.core.config import EVAL_ALL
from agents.core.envs import make_env_fn
from agents.core.loading import load_policy
from agents.core.policy import Policy
from agents.core.rollout import EpisodeSpec, play_episodes
from agents.core.trajectory import Episode, write_episodes
from envs.protocol import episode_metrics, progress_postfix, task_list


def episode_specs(env: gym.Env, episodes: str | int | Sequence[EpisodeSpec], seed: int) -> list[EpisodeSpec]:
    """``all`` asks the env for its full task list (Wordle: every answer once, in order)."""
    if isinstance(episodes, Sequence) and not isinstance(episodes, str):
        return list(episodes)
    if str(episodes) == EVAL_ALL:
        tasks = task_list(env)
        if tasks is None:
            raise ValueError(f"--episodes all is not defined for {env.spec.id if env.spec else env}; give a number")
        return [EpisodeSpec(seed=seed + i, options=opts) for i, opts in enumerate(tasks)]
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
    own = episode_metrics(env, episodes)
    if own is not None:
        key, metrics = own
        summary[key] = metrics
    return summary


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
    sampling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``sampling`` overrides fields of a language-model policy's own sampling settings
    (``max_new_tokens``, ``no_repeat_ngram_size``: 0 = off)."""
    make = make_env_fn(env_id, env_kwargs or {})
    probe = make()
    try:
        # A scripted name or checkpoint path as given; for a policy object, its kind ("lm", ...).
        policy_name = policy if isinstance(policy, str) else getattr(policy, "kind", type(policy).__name__)
        if isinstance(policy, str):
            policy = load_policy(policy, probe, seed=seed, device=device)
        if not deterministic and hasattr(policy, "kind"):
            import torch  # heavy: scripted policies evaluate without it

            torch.manual_seed(seed)  # trained policies sample from torch's RNG: same seed, same episodes
        if sampling:
            own = getattr(policy, "sampling", None)
            if own is None:
                flags = ", ".join("--" + k.replace("_", "-") for k in sampling)
                raise ValueError(f"{flags} applies to language-model policies only")
            setattr(policy, "sampling", dataclasses.replace(own, **sampling))  # noqa: B010
        # Several processes (torchrun) each play every N-th episode; all get the merged list.
        specs = distributed.shard(episode_specs(probe, episodes, seed))
        bar = tqdm(total=len(specs), desc=f"eval {env_id}", unit="ep", disable=not progress, file=sys.stderr)
        done: list[Episode] = []

        def on_episode(ep: Episode) -> None:
            done.append(ep)
            bar.update(1)
            postfix = progress_postfix(probe, done)
            if postfix:
                bar.set_postfix(postfix, refresh=False)

        results = distributed.gather(play_episodes(make, policy, specs, batch_size=batch_size,
                                                   deterministic=deterministic, on_episode=on_episode))
        bar.close()
        if episodes_path is not None and distributed.is_main():
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
