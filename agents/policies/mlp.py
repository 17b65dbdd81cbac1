"""Gaussian MLP policy for continuous-action (``Box``) envs: the policy of ``sft`` (behaviour
cloning), ``trpo`` and ``filtered`` on the humanoid.

``obs -> normalise -> MLP -> action mean``; a state-independent ``log_std`` per action
dimension makes it a diagonal Gaussian. Observation normalisation lives *in* the policy (running
mean / variance buffers, merged batch by batch with the parallel Welford rule), so a checkpoint
carries everything needed to act: ``policy.json`` (kind, sizes, metadata) + ``model.safetensors``
(weights and normalisation buffers; loading runs no code).

Actions are returned unclipped: the env clips them to its bounds (HumanoidMimic clips to
[-1, 1]), and log-probabilities stay those of the Gaussian that was sampled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from agents.core.checkpoint import CheckpointError, atomic_directory, read_manifest, write_json_atomic
from agents.policies.activations import ACTIVATIONS

WEIGHTS = "model.safetensors"
OBS_CLIP = 10.0  # normalised observations are clipped to +-10 (as SB3's VecNormalize)
_VAR_EPS = 1e-4


def build_mlp(inputs: int, hidden: Sequence[int], outputs: int, activation: str,
              init: Callable[[torch.nn.Linear, bool], None] | None = None) -> torch.nn.Sequential:
    """``Linear -> activation`` per hidden size, then a linear head. ``init(layer, is_head)``
    re-initialises each layer as soon as it is built (so one seed gives the same weights)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    layers: list[torch.nn.Module] = []
    width = inputs
    for size in [*hidden, outputs]:
        linear = torch.nn.Linear(width, size)
        is_head = len(layers) == 2 * len(hidden)
        if init is not None:
            init(linear, is_head)
        layers.append(linear)
        if not is_head:
            layers.append(getattr(torch.nn, ACTIVATIONS[activation])())
        width = size
    return torch.nn.Sequential(*layers)


def merge_moments(count: float, mean: Any, var: Any, batch: np.ndarray) -> tuple[float, Any, Any]:
    """Running (count, mean, variance) after a batch along axis 0 (the parallel Welford rule)."""
    b_count, b_mean, b_var = float(len(batch)), batch.mean(axis=0), batch.var(axis=0)
    total = count + b_count
    delta = b_mean - mean
    m2 = var * count + b_var * b_count + delta**2 * count * b_count / total
    return total, mean + delta * b_count / total, m2 / total


class GaussianMLPPolicy(torch.nn.Module):
    """Diagonal-Gaussian MLP policy with built-in observation normalisation.

    ``metadata`` is free-form JSON saved with the weights; it holds at least ``env_id`` and, for
    the humanoid, ``motion`` (the clip name), which :meth:`check_compatible` compares with the
    env. ``device`` defaults to the CPU, not CUDA: a network this small acting one env step at a
    time spends more on host-device copies than it saves.
    """

    kind = "gaussian_mlp"
    obs_mean: torch.Tensor  # buffers (saved with the weights)
    obs_var: torch.Tensor
    obs_count: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (256, 256),
        activation: str = "tanh",
        init_log_std: float = -1.0,
        metadata: dict[str, Any] | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__()
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"obs_dim and act_dim must be >= 1, got {obs_dim} and {act_dim}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        if any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden sizes must be >= 1, got {list(hidden)}")
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden = [int(h) for h in hidden]
        self.activation = activation
        self.metadata: dict[str, Any] = dict(metadata or {})

        def init(linear: torch.nn.Linear, is_head: bool) -> None:
            # A small output layer starts every action near the mean of its range (CleanRL, SB3).
            torch.nn.init.orthogonal_(linear.weight, gain=0.01 if is_head else 2**0.5)
            torch.nn.init.zeros_(linear.bias)

        self.mean_net = build_mlp(self.obs_dim, self.hidden, self.act_dim, activation, init=init)
        self.log_std = torch.nn.Parameter(torch.full((self.act_dim,), float(init_log_std)))
        self.register_buffer("obs_mean", torch.zeros(self.obs_dim, dtype=torch.float64))
        self.register_buffer("obs_var", torch.ones(self.obs_dim, dtype=torch.float64))
        self.register_buffer("obs_count", torch.zeros((), dtype=torch.float64))
        self.to(torch.device(device) if device is not None else torch.device("cpu"))

    @classmethod
    def for_env(cls, env: Any, metadata: dict[str, Any] | None = None, **kwargs: Any) -> GaussianMLPPolicy:
        """A policy sized for ``env``; ``metadata`` gets the env id and, for the humanoid, the clip."""
        obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
        if obs_shape is None or len(obs_shape) != 1 or act_shape is None or len(act_shape) != 1:
            raise ValueError(f"a Gaussian MLP needs flat Box observations and actions, got {obs_shape} and {act_shape}")
        meta: dict[str, Any] = {"env_id": env.spec.id if env.spec is not None else type(env.unwrapped).__name__}
        clip = getattr(env.unwrapped, "clip", None)
        if clip is not None:
            meta["motion"] = clip.name
        meta.update(metadata or {})
        return cls(obs_shape[0], act_shape[0], metadata=meta, **kwargs)

    @property
    def device(self) -> torch.device:
        return self.log_std.device

    # ----------------------------------------------------------------- observation statistics
    def update_obs_stats(self, obs: np.ndarray) -> None:
        """Merge a ``[N, obs_dim]`` batch into the running mean / variance (parallel Welford)."""
        batch = np.asarray(obs, dtype=np.float64).reshape(-1, self.obs_dim)
        if len(batch) == 0:
            return
        if not np.all(np.isfinite(batch)):
            raise ValueError("observations hold NaN or infinity; refusing to update the normalisation")
        count, mean, var = merge_moments(float(self.obs_count), self.obs_mean.cpu().numpy(),
                                         self.obs_var.cpu().numpy(), batch)
        self.obs_mean.copy_(torch.from_numpy(mean))
        self.obs_var.copy_(torch.from_numpy(var))
        self.obs_count.fill_(count)

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        scaled = (obs.to(torch.float64) - self.obs_mean) / torch.sqrt(self.obs_var + _VAR_EPS)
        return scaled.clamp(-OBS_CLIP, OBS_CLIP).to(torch.float32)

    # ----------------------------------------------------------------- the distribution
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Action means of raw (unnormalised) observations."""
        return self.mean_net(self.normalize(obs))

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Normal:
        """The Gaussian over actions for raw observations ``[B, obs_dim]`` (sum log-probs over the last dim)."""
        mean = self.forward(obs)
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean))

    def _obs_tensor(self, obs_batch: Any) -> torch.Tensor:
        obs = torch.as_tensor(np.asarray(obs_batch, dtype=np.float32), device=self.device)
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"observations must have shape [B, {self.obs_dim}], got {list(obs.shape)}")
        return obs

    @torch.no_grad()
    def act(self, obs_batch: Any, deterministic: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(actions [B, act_dim] float32, log-probs [B])``; deterministic acts the mean."""
        dist = self.distribution(self._obs_tensor(obs_batch))
        actions = dist.mean if deterministic else dist.sample()
        logp = dist.log_prob(actions).sum(-1)
        return actions.cpu().numpy().astype(np.float32), logp.cpu().numpy()

    def log_prob(self, obs_batch: Any, actions: Any) -> torch.Tensor:
        """Log-probabilities ``[B]`` of ``actions`` (differentiable)."""
        obs = obs_batch if isinstance(obs_batch, torch.Tensor) else self._obs_tensor(obs_batch)
        act = torch.as_tensor(np.asarray(actions, dtype=np.float32), device=self.device) \
            if not isinstance(actions, torch.Tensor) else actions.to(self.device, torch.float32)
        if act.ndim != 2 or act.shape[1] != self.act_dim:
            raise ValueError(f"actions must have shape [B, {self.act_dim}], got {list(act.shape)}")
        return self.distribution(obs.to(self.device)).log_prob(act).sum(-1)

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # ----------------------------------------------------------------- persistence
    def manifest(self) -> dict[str, Any]:
        return {"kind": self.kind, "obs_dim": self.obs_dim, "act_dim": self.act_dim, "hidden": self.hidden,
                "activation": self.activation, "metadata": self.metadata}

    def save(self, directory: str | Path) -> None:
        """``policy.json`` + ``model.safetensors`` (weights and normalisation), written atomically."""
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        with atomic_directory(directory) as staging:
            save_file(tensors, str(staging / WEIGHTS))
            write_json_atomic(staging / "policy.json", self.manifest())

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> GaussianMLPPolicy:
        directory = Path(directory)
        manifest = read_manifest(directory)
        if manifest["kind"] != cls.kind:
            raise CheckpointError(f"{directory} holds a {manifest['kind']!r} policy, not a {cls.kind!r} one")
        try:
            obs_dim, act_dim = int(manifest["obs_dim"]), int(manifest["act_dim"])
            hidden = [int(h) for h in manifest["hidden"]]
            activation = str(manifest["activation"])
            metadata = manifest.get("metadata") or {}
            if not isinstance(metadata, dict):
                raise TypeError("metadata must be an object")
            policy = cls(obs_dim, act_dim, hidden, activation, metadata=metadata, device=device)
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{directory / 'policy.json'} is not a valid {cls.kind} manifest: {err}") from err
        weights = directory / WEIGHTS
        if not weights.is_file():
            raise CheckpointError(f"{directory} is incomplete: {WEIGHTS} is missing")
        try:
            state = load_file(str(weights))
            policy.load_state_dict(state, strict=True)
        except (SafetensorError, OSError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"{weights} is corrupt or does not match policy.json: {err}") from err
        return policy

    def check_compatible(self, env: Any) -> None:
        """Refuse an env whose observation / action sizes or motion clip differ from training's."""
        if not isinstance(env.observation_space, spaces.Box) or not isinstance(env.action_space, spaces.Box):
            raise CheckpointError(
                f"this Gaussian MLP checkpoint acts on float-vector (Box) envs such as "
                f"{self.metadata.get('env_id', 'HumanoidMimic-v1')}, but this env has "
                f"{type(env.observation_space).__name__} observations and {type(env.action_space).__name__} actions")
        obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
        if obs_shape != (self.obs_dim,):
            raise CheckpointError(
                f"the policy reads observations of size {self.obs_dim} but the env gives {obs_shape}; "
                f"it was trained on {self.metadata.get('env_id', 'another env')}")
        if act_shape != (self.act_dim,):
            raise CheckpointError(f"the policy outputs {self.act_dim} actions but the env takes {act_shape}")
        motion = self.metadata.get("motion")
        clip = getattr(env.unwrapped, "clip", None)
        if motion is not None and clip is not None and clip.name != motion:
            raise CheckpointError(
                f"the policy was trained on motion {motion!r} but the env plays {clip.name!r}; "
                f"use the motion it was trained on (env kwarg motion={motion!r})")
