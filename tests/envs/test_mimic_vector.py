"""HumanoidMimicVectorEnv against Gymnasium's SyncVectorEnv over the registered single env: the
same seeds and actions give the same episodes, observations, rewards, ends and infos."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import envs  # noqa: F401  (registers the ids)
from envs.mimic import mocap
from envs.mimic.vector import HumanoidMimicVectorEnv

pytestmark = pytest.mark.skipif(
    mocap.clip_dir() is None,
    reason="pybullet_data (pip install pybullet) ships the humanoid clips; not installed",
)


def assert_same(ours: Any, theirs: Any, path: str = "") -> None:
    if isinstance(theirs, dict):
        assert sorted(ours) == sorted(theirs), path
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, np.ndarray) and theirs.dtype == object:
        assert ours.dtype == object and len(ours) == len(theirs), path
        for a, b in zip(ours, theirs, strict=True):
            assert_same(a, b, path)
    elif isinstance(theirs, np.ndarray) and theirs.dtype.kind == "f":
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, path
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-6, err_msg=path)
    else:
        np.testing.assert_array_equal(ours, theirs, err_msg=path)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("env_id", ["HumanoidMimic-v1", "HumanoidMimic-Kick-v0"])
def test_the_vector_env_plays_the_episodes_sync_vector_env_plays(env_id: str, mode: AutoresetMode) -> None:
    ours = gym.make_vec(env_id, num_envs=3, autoreset_mode=mode, max_episode_steps=16)
    theirs = gym.make_vec(env_id, num_envs=3, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode},
                          max_episode_steps=16)
    assert isinstance(ours.unwrapped, HumanoidMimicVectorEnv) and isinstance(theirs, gym.vector.SyncVectorEnv)
    assert ours.observation_space == theirs.observation_space and ours.action_space == theirs.action_space
    obs, info = ours.reset(seed=7)
    their_obs, their_info = theirs.reset(seed=7)
    assert_same(obs, their_obs)
    assert_same(info, their_info)
    rng = np.random.default_rng(0)
    terminations = truncations = 0
    scale = np.array([[1.0], [0.1], [0.1]])  # full-range random actions end episodes in falls; the limit of 16 cuts the rest
    for step in range(60):
        actions = (rng.uniform(-1, 1, (3, 28)) * scale).astype(np.float32)
        result, their_result = ours.step(actions), theirs.step(actions)
        for name, a, b in zip(("obs", "reward", "terminated", "truncated", "info"), result, their_result,
                              strict=True):
            assert_same(a, b, f"step {step} {name}")
        terminations, truncations = terminations + int(result[2].sum()), truncations + int(result[3].sum())
    assert terminations >= 3 and truncations >= 3  # both kinds of end were met, and the autoreset after them
    ours.close()
    theirs.close()


def test_bad_arguments_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="num_envs must be >= 1"):
        HumanoidMimicVectorEnv(0)
    with pytest.raises(ValueError, match="DISABLED is not supported"):
        HumanoidMimicVectorEnv(2, autoreset_mode=AutoresetMode.DISABLED)
    env = HumanoidMimicVectorEnv(2)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step"):
        env.step(np.zeros((2, 28)))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions must have shape \(2, 28\)"):
        env.step(np.zeros((3, 28)))
    bad = np.zeros((2, 28))
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity at indices \[5\]"):
        env.step(bad)
    assert [copy._t for copy in env.envs] == [copy._t0 for copy in env.envs]  # no copy moved
    env.step(np.zeros((2, 28)))  # and the vector env steps on
