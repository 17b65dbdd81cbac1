"""The policy seam shared by every agent, scripted baseline and evaluation.

A policy maps a *batch* of observations to a batch of actions. Text envs pass lists of
prompt strings and get lists of completion strings back; continuous-control envs pass lists
(or arrays) of float vectors and get arrays back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    def act(self, obs_batch: Sequence[Any], deterministic: bool = False) -> tuple[list[Any], np.ndarray]:
        """Return one action per observation and the log-probability of each under the policy."""
        ...

    def log_prob(self, obs_batch: Sequence[Any], actions: Sequence[Any]) -> Any:
        """Log-probability of given actions (a tensor for trainable policies)."""
        ...

    def save(self, directory: str | Path) -> None: ...


class PolicyAgent:
    """What every training agent does the same way around its ``policy``, its config and its
    ``run`` (a :class:`agents.core.run.Run` or None): built as ``Agent(policy, config, run=run,
    seed=seed)``; act deterministically, save, log scalars."""

    policy: Any
    config: Any
    run: Any

    def __init__(self, policy: Any, config: Any, run: Any = None, seed: int = 0) -> None:
        self.policy = policy
        self.config = config
        self.run = run
        self.seed = seed

    def predict(self, obs: Any) -> Any:
        actions, _ = self.policy.act([obs], deterministic=True)
        return actions[0]

    def save(self, directory: str | Path) -> None:
        self.policy.save(directory)

    def _log(self, metrics: dict[str, float], step: int) -> None:
        if self.run is not None:
            self.run.log(metrics, step)
