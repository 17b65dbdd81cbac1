"""HumanoidMimic as a Gymnasium vector env whose copies share one call for the reward and the
observation.

Each copy runs its own physics, kinematics and reference (as the single env does), and
:mod:`envs.mimic.features` computes the rewards and observations of all ``N`` copies in one
compiled call; the copies step without the wrappers ``gym.make`` puts around each single env
(this class applies the time limit itself). Episodes are the ones ``SyncVectorEnv`` over the
registered single env gives for the same seeds and actions: the tests hold the two side by side.

    envs = gym.make_vec("HumanoidMimic-v1", num_envs=8)   # this class (the registered vector entry point)
    envs = gym.make_vec("HumanoidMimic-v1", num_envs=8, vectorization_mode="sync")   # SyncVectorEnv
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from envs.mimic import features
from envs.mimic.env import HumanoidMimicEnv, step_features


class HumanoidMimicVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of :class:`~envs.mimic.env.HumanoidMimicEnv` (same arguments, passed
    through), each truncated after ``max_episode_steps`` as the registered ids' time limit does.
    ``autoreset_mode``: Gymnasium's ``NEXT_STEP`` (its default) or ``SAME_STEP`` (the finished
    episode's last observation and info in ``info["final_obs"]`` / ``info["final_info"]``)."""

    def __init__(self, num_envs: int, max_episode_steps: int | None = 600,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP, **env_kwargs: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        mode = AutoresetMode(autoreset_mode)
        if mode == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode DISABLED is not supported here: use NEXT_STEP or SAME_STEP")
        self.envs = [HumanoidMimicEnv(**env_kwargs) for _ in range(num_envs)]
        first = self.envs[0]
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.metadata = {**first.metadata, "autoreset_mode": mode}
        self.render_mode = first.render_mode
        self.single_observation_space, self.single_action_space = first.observation_space, first.action_space
        self.observation_space = batch_space(first.observation_space, num_envs)
        self.action_space = batch_space(first.action_space, num_envs)
        self._elapsed = np.zeros(num_envs, dtype=np.int64)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._needs_reset = True  # until the first reset

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Every copy from a new episode; seeds as ``SyncVectorEnv`` takes them (an int ``s``:
        ``s, s + 1, ...``)."""
        seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else \
            [None] * self.num_envs if seed is None else list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"{len(seeds)} seeds for {self.num_envs} envs")
        obs = np.empty((self.num_envs, features.OBS_DIM), dtype=np.float32)
        infos: dict[str, Any] = {}
        for i, (env, env_seed) in enumerate(zip(self.envs, seeds, strict=True)):
            obs[i], info = env.reset(seed=env_seed, options=options)
            infos = self._add_info(infos, info, i)
        self._elapsed[:] = 0
        self._autoreset[:] = False
        self._needs_reset = False
        return obs, infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        if actions.shape[:1] != (self.num_envs,):
            raise ValueError(f"actions must have shape {self.action_space.shape}, got {actions.shape}")
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        next_step = self.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        stepping = [i for i in range(self.num_envs) if not (next_step and self._autoreset[i])]
        checked = [self.envs[i]._checked_action(actions[i]) for i in stepping]  # all, before any copy moves
        diverged = [self.envs[i]._advance(a) for i, a in zip(stepping, checked, strict=True)]

        obs = np.empty((self.num_envs, features.OBS_DIM), dtype=np.float32)
        rewards = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        env_infos: list[dict[str, Any] | None] = [None] * self.num_envs
        if stepping:
            stepped_obs, stepped_rewards, terms, mpjpe = step_features([self.envs[i] for i in stepping])
            for k, i in enumerate(stepping):
                obs[i] = stepped_obs[k]
                rewards[i], terminated[i], truncated[i], env_infos[i] = self.envs[i]._conclude(
                    float(stepped_rewards[k]), terms[k], float(mpjpe[k]), diverged[k])
                self._elapsed[i] += 1
                if self.max_episode_steps is not None and self._elapsed[i] >= self.max_episode_steps:
                    truncated[i] = True  # the registered TimeLimit's truncation

        infos: dict[str, Any] = {}
        for i, env in enumerate(self.envs):
            info = env_infos[i]
            if info is None:  # NEXT_STEP: this copy ended last step; reset it, its action unused
                obs[i], info = env.reset()
                self._elapsed[i] = 0
            elif not next_step and (terminated[i] or truncated[i]):
                infos = self._add_info(infos, {"final_obs": obs[i].copy(), "final_info": info}, i)
                obs[i], info = env.reset()
                self._elapsed[i] = 0
            infos = self._add_info(infos, info, i)
        self._autoreset = terminated | truncated
        return obs, rewards, terminated, truncated, infos

    def render(self) -> tuple[Any, ...]:
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()
