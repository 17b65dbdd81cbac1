"""Turn a ``--policy`` argument into a policy: a scripted name or a checkpoint directory.

Scripted policies belong to their env: an env class lists them in ``scripted_policies``
(name -> factory taking the unwrapped env). ``random`` works everywhere. Checkpoints name
their kind in ``policy.json``; each kind's class has ``load(directory, device=...)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.checkpoint import CheckpointError, read_manifest
from agents.policy import Policy

# kind in policy.json -> "module:Class"; imported lazily so light commands stay fast.
POLICY_KINDS: dict[str, str] = {
    "lm": "agents.lm.policy:LMPolicy",
    "gaussian_mlp": "agents.mlp_policy:GaussianMLPPolicy",
}


class RandomPolicy:
    """Uniform samples from the action space (the env may offer a better-informed one)."""

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        self.action_space = env.action_space
        self.action_space.seed(seed)

    def act(self, obs_batch: Sequence[Any], deterministic: bool = False) -> tuple[list[Any], np.ndarray]:
        actions = [self.action_space.sample() for _ in obs_batch]
        return actions, np.zeros(len(actions))

    def log_prob(self, obs_batch: Sequence[Any], actions: Sequence[Any]) -> np.ndarray:
        raise NotImplementedError("the uniform random policy has no tractable log-probability")

    def save(self, directory: str | Path) -> None:
        raise NotImplementedError("scripted policies are not saved; name them with --policy instead")


def scripted_policy_names(env: gym.Env) -> list[str]:
    names = set(getattr(env.unwrapped, "scripted_policies", {}))
    return sorted(names | {"random"})


def load_policy(spec: str, env: gym.Env, *, seed: int | None = None, device: str | None = None) -> Policy:
    """Resolve ``spec`` (a scripted policy name or a checkpoint directory) for ``env``."""
    scripted = getattr(env.unwrapped, "scripted_policies", {})
    if spec in scripted:
        return scripted[spec](env.unwrapped, seed=seed)
    if spec == "random":
        return RandomPolicy(env, seed=seed)
    path = Path(spec)
    if not path.exists():
        raise CheckpointError(
            f"--policy {spec!r} is neither a scripted policy for this env "
            f"({', '.join(scripted_policy_names(env))}) nor an existing checkpoint directory"
        )
    manifest = read_manifest(path)
    kind = manifest["kind"]
    if kind not in POLICY_KINDS:
        raise CheckpointError(f"{path}: unknown policy kind {kind!r} (known: {', '.join(POLICY_KINDS)})")
    module_name, class_name = POLICY_KINDS[kind].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    policy: Policy = cls.load(path, device=device)
    check = getattr(policy, "check_compatible", None)
    if check is not None:
        check(env)
    return policy
