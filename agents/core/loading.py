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

from agents.core.checkpoint import MANIFEST, CheckpointError, read_manifest
from agents.core.policy import Policy
from envs.protocol import scripted_policies

# The policy registry: kind in policy.json -> "module:Class", imported when a checkpoint of that
# kind loads (core names no policy class; light commands never import torch).
POLICY_KINDS: dict[str, str] = {
    "lm": "agents.policies.lm.policy:LMPolicy",
    "gaussian_mlp": "agents.policies.mlp:GaussianMLPPolicy",
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
    return sorted(set(scripted_policies(env)) | {"random"})


def policy_class(kind: str) -> Any:
    """The class of a policy kind of :data:`POLICY_KINDS` (imported now)."""
    if kind not in POLICY_KINDS:
        raise CheckpointError(f"unknown policy kind {kind!r} (known: {', '.join(POLICY_KINDS)})")
    module_name, class_name = POLICY_KINDS[kind].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def load_policy(spec: str, env: gym.Env, *, seed: int | None = None, device: str | None = None) -> Policy:
    """Resolve ``spec`` for ``env``: a scripted policy name, a checkpoint directory, or a language
    model as it comes (a named model, a ``.gguf`` file, a Hugging Face directory or hub id: the
    untrained "before" of a post-training table)."""
    scripted = scripted_policies(env)
    if spec in scripted:
        return scripted[spec](env.unwrapped, seed=seed)
    if spec == "random":
        return RandomPolicy(env, seed=seed)
    path = Path(spec)
    if (path / MANIFEST).is_file() or (path.is_dir() and not (path / "config.json").is_file()):
        manifest = read_manifest(path)  # (says what is wrong with a folder that is no checkpoint)
        kind = manifest["kind"]
        if kind not in POLICY_KINDS:
            raise CheckpointError(f"{path}: unknown policy kind {kind!r} (known: {', '.join(POLICY_KINDS)})")
        policy: Policy = policy_class(kind).load(path, device=device)
    else:
        language_model = policy_class("lm")
        if not language_model.is_model_source(spec):
            raise CheckpointError(
                f"--policy {spec!r} is neither a scripted policy for this env "
                f"({', '.join(scripted_policy_names(env))}) nor an existing checkpoint directory, nor a language "
                "model (a named model: python -m agents.models list; a .gguf file; a Hugging Face directory "
                "or hub id)")
        policy = language_model.from_pretrained(spec, device=device)
    check = getattr(policy, "check_compatible", None)
    if check is not None:
        check(env)
    return policy
