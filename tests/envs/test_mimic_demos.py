"""Demonstrations from mocap: shapes, labels that track the reference, DART / DAgger states."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from envs.mimic import mocap
from envs.mimic.demos import (
    Demonstrations,
    MimicDemoSource,
    TrackingExpert,
    noisy_expert_rollouts,
    policy_rollouts,
    reference_demonstrations,
)
from envs.mimic.env import ReferencePolicy

pytestmark = pytest.mark.skipif(
    mocap.clip_dir() is None,
    reason="pybullet_data (pip install pybullet) ships the humanoid clips; not installed",
)
PHASES = np.linspace(0.05, 0.95, 8)


@pytest.fixture(scope="module")
def walk() -> gym.Env:
    return gym.make("envs:HumanoidMimic-v1")


def _alive(env: gym.Env, expert: TrackingExpert, seeds: range) -> float:
    times = []
    for seed in seeds:
        env.reset(seed=seed)
        while True:
            _, _, terminated, truncated, info = env.step(expert.action())
            if terminated or truncated:
                break
        times.append(info["time_alive"])
    return float(np.mean(times))


def test_reference_demonstrations_have_env_shapes_and_reference_labels(walk) -> None:
    expert = TrackingExpert(walk, labels="reference")
    demos = reference_demonstrations(walk, expert, PHASES, groups=4)
    assert demos.observations.shape == (8, 224) and demos.actions.shape == (8, 28) and len(demos) == 8
    assert demos.observations.dtype == demos.actions.dtype == np.float32
    assert demos.groups.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]  # dealt round-robin over the cycle
    env = walk.unwrapped
    for phase, obs, action in zip(PHASES, demos.observations, demos.actions, strict=True):
        assert obs[0] == pytest.approx(phase, abs=1e-6)  # the observation is the reference state's
        t = phase * env.clip.duration
        # teacher forcing: the label is the NEXT reference pose (targets inside the joint ranges)
        np.testing.assert_allclose(env.action_to_targets(action), env.clip.qpos_at(t + env.dt)[7:], atol=1e-5)


@pytest.mark.parametrize("labels", ["reference", "feedforward"])
def test_one_labelled_step_lands_on_the_next_reference_pose(walk, labels) -> None:
    expert = TrackingExpert(walk, labels=labels)
    labelled, open_loop = [], []
    for phase in PHASES:
        walk.reset(options={"phase": phase})
        labelled.append(walk.step(expert.action())[4]["mpjpe_mm"])
        walk.reset(options={"phase": phase})
        open_loop.append(walk.step(np.zeros(28, np.float32))[4]["mpjpe_mm"])
    assert np.mean(labelled) < 15.0  # mm, mean body-origin distance to the reference one step later
    assert np.mean(labelled) < 0.5 * np.mean(open_loop)


def test_feedforward_labels_add_torques_and_keep_the_humanoid_up_longer(walk) -> None:
    walk.reset(options={"phase": 0.3})
    reference, feedforward = TrackingExpert(walk, "reference"), TrackingExpert(walk, "feedforward")
    offset = walk.unwrapped.action_to_targets(feedforward.action()) - walk.unwrapped.action_to_targets(
        reference.action())
    assert 0.001 < np.abs(offset).max() < 1.0  # rad: torque / kp, gravity and inertia, not a new pose
    # Balance feedback: the expert that labels the demonstrations outlasts teacher-forced PD tracking.
    assert _alive(walk, feedforward, range(6)) > 1.2 * _alive(walk, reference, range(6))


def test_noisy_rollouts_label_visited_states_with_clean_actions(walk) -> None:
    expert = TrackingExpert(walk)
    demos, stats = noisy_expert_rollouts(walk, expert, episodes=3, horizon=12, noise_std=0.2,
                                         rng=np.random.default_rng(0), group_offset=5)
    assert len(demos) <= 36 and set(demos.groups.tolist()) == {5, 6, 7}
    assert stats["ep_len_mean"] == pytest.approx(len(demos) / 3) and 0 <= stats["fall_rate"] <= 1
    assert np.all(np.abs(demos.actions) <= 1.0)
    # Same start (same rng), no noise: the first state and its label agree (labels are the clean
    # expert action); the noise shows from the second state on.
    clean, _ = noisy_expert_rollouts(walk, expert, episodes=1, horizon=3, noise_std=0.0, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(clean.observations[0], demos.observations[0])
    np.testing.assert_array_equal(clean.actions[0], demos.actions[0])
    assert np.abs(clean.observations[1] - demos.observations[1]).max() > 1e-3


def test_dagger_labels_the_states_a_policy_visits(walk) -> None:
    expert = TrackingExpert(walk)
    policy = ReferencePolicy(walk.unwrapped)
    demos, stats = policy_rollouts(walk, expert, policy, episodes=2, horizon=8, rng=np.random.default_rng(1))
    assert len(demos) == 16 and stats["ep_len_mean"] == 8 and stats["fall_rate"] == 0.0
    # the labels are the expert's, not the actions the policy took
    taken = np.stack(policy.act(list(demos.observations))[0])
    assert np.abs(demos.actions - taken).max() > 1e-3


def test_source_is_deterministic_and_sized_by_its_settings(walk) -> None:
    def make() -> MimicDemoSource:
        return MimicDemoSource(walk, reference_states=10, noisy_episodes=2, horizon=5, seed=3, progress=False)

    first, second = make().demonstrations(), make().demonstrations()
    assert 10 < len(first) <= 20 and len(np.unique(first.groups)) == 12  # 10 reference groups + 2 rollouts
    np.testing.assert_array_equal(first.observations, second.observations)
    np.testing.assert_array_equal(first.actions, second.actions)
    assert first.groups[:10].max() < first.groups[10:].min()  # rollouts never share a reference group
    extra, _ = make().dagger(ReferencePolicy(walk.unwrapped), episodes=1, seed=0, group_offset=100)
    assert set(extra.groups.tolist()) == {100}


def test_bad_settings_and_records_are_refused(walk) -> None:
    with pytest.raises(ValueError, match="labels must be one of"):
        TrackingExpert(walk, labels="magic")
    with pytest.raises(TypeError, match="HumanoidMimicEnv"):
        TrackingExpert(gym.make("Pendulum-v1"))
    with pytest.raises(ValueError, match="differ in number"):
        Demonstrations(np.zeros((3, 2), np.float32), np.zeros((2, 1), np.float32), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="NaN"):
        Demonstrations(np.full((1, 2), np.nan, np.float32), np.zeros((1, 1), np.float32), np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="no demonstrations"):
        MimicDemoSource(walk, reference_states=0, noisy_episodes=0).demonstrations()
