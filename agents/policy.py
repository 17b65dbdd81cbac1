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
