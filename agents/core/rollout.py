"""Play episodes with a policy, many envs in lockstep so the policy sees batches.

Evaluation and GRPO play through it. Envs are plain ``gymnasium.Env`` instances, stepped
together so a language model generates for the whole batch at once, and episodes of different
lengths refill their slot from the queue. (TRPO collects fixed-length rollouts of Box-action envs
with a Gymnasium vector env instead, whose autoreset suits a batch of n_steps per env.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from agents.core.policy import Policy
from agents.core.trajectory import Episode, TurnTokens


@dataclass(frozen=True)
class EpisodeSpec:
    """How to start one episode: the reset seed and reset options."""

    seed: int | None
    options: dict[str, Any] = field(default_factory=dict)


def _json_safe_info(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k != "reward_terms"}


def play_episodes(
    make_env: Callable[[], gym.Env],
    policy: Policy,
    specs: Sequence[EpisodeSpec],
    *,
    batch_size: int = 16,
    deterministic: bool = True,
    on_episode: Callable[[Episode], None] | None = None,
) -> list[Episode]:
    """Play one episode per spec and return them in spec order.

    ``batch_size`` envs run at once; each step the policy acts on all unfinished envs
    together. Policies that record what they sampled (``policy.last_tokens`` after ``act``,
    one :class:`TurnTokens` per observation) get it stored on the episodes.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    # An env may offer each observation as chat messages too (info["messages"], e.g. GSM8K's
    # system + user turns); a policy that takes messages (a language model) gets those, rendered
    # with its own chat template, and the episode records them as what it saw.
    chat = bool(getattr(policy, "accepts_messages", False))

    def seen(obs: Any, info: dict[str, Any]) -> Any:
        return info["messages"] if chat and info.get("messages") else obs

    envs = [make_env() for _ in range(min(batch_size, len(specs)))]
    try:
        env_id = envs[0].spec.id if envs and envs[0].spec is not None else type(envs[0].unwrapped).__name__
    except IndexError:
        return []
    results: list[Episode | None] = [None] * len(specs)
    pending = list(range(len(specs)))[::-1]

    slots: list[dict[str, Any] | None] = [None] * len(envs)

    def start(slot: int) -> None:
        if not pending:
            slots[slot] = None
            return
        index = pending.pop()
        spec = specs[index]
        obs, info = envs[slot].reset(seed=spec.seed, options=dict(spec.options) or None)
        slots[slot] = {"index": index, "seed": spec.seed, "obs": seen(obs, info), "observations": [], "actions": [],
                       "rewards": [], "terms": {}, "tokens": []}

    for slot in range(len(envs)):
        start(slot)

    while any(s is not None for s in slots):
        active = [i for i, s in enumerate(slots) if s is not None]
        obs_batch = [slots[i]["obs"] for i in active]  # type: ignore[index]
        actions, _ = policy.act(obs_batch, deterministic=deterministic)
        turn_tokens: list[TurnTokens] | None = getattr(policy, "last_tokens", None)
        for k, slot in enumerate(active):
            state = slots[slot]
            assert state is not None
            action = actions[k]
            obs, reward, terminated, truncated, info = envs[slot].step(action)
            state["observations"].append(state["obs"])
            state["actions"].append(action)
            state["rewards"].append(float(reward))
            for name, value in info.get("reward_terms", {}).items():
                state["terms"][name] = state["terms"].get(name, 0.0) + float(value)
            if turn_tokens is not None:
                state["tokens"].append(turn_tokens[k])
            state["obs"] = seen(obs, info)
            if terminated or truncated:
                episode = Episode(
                    env_id=env_id,
                    seed=state["seed"],
                    observations=tuple(state["observations"]),
                    actions=tuple(a.tolist() if isinstance(a, np.ndarray) else a for a in state["actions"]),
                    rewards=tuple(state["rewards"]),
                    terminated=bool(terminated),
                    truncated=bool(truncated),
                    reward_terms=state["terms"],
                    info=_json_safe_info(info),
                    tokens=tuple(state["tokens"]) if turn_tokens is not None else None,
                )
                results[state["index"]] = episode
                if on_episode is not None:
                    on_episode(episode)
                start(slot)
    for env in envs:
        env.close()
    return [r for r in results if r is not None]
