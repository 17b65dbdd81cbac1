"""Vector envs of the text ids: ``AsyncVectorEnv``, with or without shared memory, plays exactly
what ``SyncVectorEnv`` plays (Gymnasium 1.4's shared memory alone returned every prompt as '0000…')."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids, repairs shared-memory Text observations)

WORDLE = ("envs:Wordle-v0", {"answers": ["crane", "slate", "eerie", "elder", "speed", "abide"],
                             "reward": "shaped", "prompt_style": "compact"},
          ["<guess>crane</guess>", "<guess>zzzzz</guess>", "no tag at all", "<guess>slate</guess>"])
GSM8K_TEST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gsm8k" / "test.jsonl"
SEEDS = [3, 11, 12]


def play(env_id: str, env_kwargs: dict, actions: list[str], mode: str, vector_kwargs: dict | None = None):
    venv = gym.make_vec(env_id, num_envs=len(SEEDS), vectorization_mode=mode, vector_kwargs=vector_kwargs,
                        **env_kwargs)
    try:
        obs, _ = venv.reset(seed=SEEDS)
        trace = [tuple(obs)]
        for action in actions:
            obs, reward, terminated, truncated, _ = venv.step([action] * len(SEEDS))
            trace.append((tuple(obs), reward.tolist(), terminated.tolist(), truncated.tolist()))
        return trace
    finally:
        venv.close()


def gsm8k_case():
    if not GSM8K_TEST.is_file():
        pytest.skip(f"GSM8K test split not found at {GSM8K_TEST}")
    # one-step episodes: the second step is the vector env's autoreset to a new problem
    return "envs:GSM8K-v0", {"data_path": str(GSM8K_TEST)}, ["The answer is #### 18", "#### 3", "#### 42"]


@pytest.mark.parametrize("which", ["wordle", "gsm8k"])
@pytest.mark.parametrize("vector_kwargs", [None, {"shared_memory": True}, {"shared_memory": False}])
def test_async_vector_env_matches_sync(which, vector_kwargs):
    env_id, env_kwargs, actions = WORDLE if which == "wordle" else gsm8k_case()
    expected = play(env_id, env_kwargs, actions, "sync")
    got = play(env_id, env_kwargs, actions, "async", vector_kwargs)
    batches = [expected[0], *(obs for obs, *_ in expected[1:])]
    assert any(len(set(batch)) > 1 for batch in batches)  # the seeds pick different tasks
    for step, (want, have) in enumerate(zip(expected, got, strict=True)):
        assert have == want, f"step {step}"
    rewards = np.array([r for _, r, _, _ in expected[1:]])
    assert rewards.any() or which == "gsm8k"  # wordle's shaped terms are non-zero


def test_async_without_copy_returns_a_live_view_that_copies_to_strings():
    env_id, env_kwargs, _ = WORDLE
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="async", vector_kwargs={"copy": False},
                        **env_kwargs)
    try:
        first, _ = venv.reset(seed=0, options={"answer": "crane"})
        before = copy.deepcopy(first)
        assert isinstance(before, tuple) and before == ("", "") == first  # no guesses yet
        obs, *_ = venv.step(["<guess>slate</guess>", "<guess>crane</guess>"])
        assert obs[0] == "slate xx✓x✓" and list(obs[-1:]) == ["crane ✓✓✓✓✓"]
        assert obs is first and before == ("", "")  # one live view; the copy stays as it was
        assert pickle.loads(pickle.dumps(obs)) == ("slate xx✓x✓", "crane ✓✓✓✓✓")
    finally:
        venv.close()
