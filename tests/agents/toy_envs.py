"""Tiny text envs for agent tests: fast, deterministic, no lexicon or data files."""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from gymnasium import spaces

CHARSET = string.printable


class TargetCharEnv(gym.Env):
    """A text bandit: reward 1 when the completion contains a ``target`` character, else 0.

    ``turns > 1`` makes it multi-turn (the observation repeats the earlier completions, one
    reward per turn), for loss-mask tests. ``reward_fn(completion, turn)`` replaces the reward
    (e.g. to inject NaN). ``info["won"]`` is true when the last turn was rewarded.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, target: str = "a", prompt: str = "say a", turns: int = 1,
                 reward_fn: Callable[[str, int], float] | None = None):
        self.target = target
        self.prompt = prompt
        self.turns = turns
        self.reward_fn = reward_fn
        self.observation_space = spaces.Text(max_length=4096, min_length=0, charset=CHARSET)
        self.action_space = spaces.Text(max_length=4096, min_length=0, charset=CHARSET)
        self._history: list[str] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._history = []
        return self._obs(), {}

    def step(self, action: str):
        turn = len(self._history)
        self._history.append(action)
        if self.reward_fn is not None:
            reward = self.reward_fn(action, turn)
        else:
            reward = 1.0 if any(c in action for c in self.target) else 0.0
        terminated = len(self._history) >= self.turns
        info = {"reward_terms": {"target": reward}, "won": reward > 0}
        return self._obs(), reward, terminated, False, info

    def _obs(self) -> str:
        return self.prompt + "".join(f"\n{i}:{a}" for i, a in enumerate(self._history))


def make_target_env(**kwargs: Any) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        return TargetCharEnv(**kwargs)

    return make
