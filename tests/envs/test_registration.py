"""Registration: the project's ids always make the project's envs. A foreign env registered first
under one of them is replaced with a warning that names it; re-importing ``envs`` stays silent."""

from __future__ import annotations

import importlib
import warnings

import gymnasium as gym
import pytest

import envs
from envs.wordle.env import WordleEnv

CARTPOLE = "gymnasium.envs.classic_control.cartpole:CartPoleEnv"


@pytest.fixture
def restore_registry():
    saved = dict(gym.registry)
    yield
    gym.registry.clear()
    gym.registry.update(saved)


def test_a_foreign_env_under_our_id_is_replaced_with_a_warning(restore_registry):
    del gym.registry["Wordle-v0"]
    gym.register("Wordle-v0", entry_point=CARTPOLE)  # another package got there first
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        importlib.reload(envs)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "Wordle-v0" in messages[0] and CARTPOLE in messages[0], messages
    env = gym.make("envs:Wordle-v0", answers=["crane", "slate"])
    assert isinstance(env.unwrapped, WordleEnv)
    env.close()


def test_reimporting_envs_is_silent_and_keeps_every_id(restore_registry):
    before = {k: v for k, v in gym.registry.items() if str(v.entry_point).startswith("envs.")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(envs)
    after = {k: v for k, v in gym.registry.items() if str(v.entry_point).startswith("envs.")}
    assert after == before and {"Wordle-v0", "GSM8K-v0", "HumanoidMimic-v1"} <= set(after)
