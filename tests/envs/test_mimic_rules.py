"""HumanoidMimic's episode rules against DeepMimic's: reference velocities, per-loop root re-sync,
the reward of the fall step, fall-contact bodies per clip, the end of a non-looping clip."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from envs.mimic import mocap
from envs.mimic.env import HumanoidMimicEnv
from envs.mimic.humanoid import BODY_NAMES
from envs.mimic.mocap import qpos_velocity

pytestmark = pytest.mark.skipif(
    mocap.clip_dir() is None,
    reason="pybullet_data (pip install pybullet) ships the humanoid clips; not installed",
)
LOOPING = [c for c in mocap.available_clips() if mocap.Clip(c).loops]

# --fall_contact_bodies of DeepMimic's args/train_humanoid3d_<clip>_args.txt (body indices in
# humanoid3d's order, which BODY_NAMES follows); roll and the getups set --enable_char_contact_fall false.
DEEPMIMIC_ARGS = {
    "walk": [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14],
    "run": [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14],
    "backflip": [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14],
    "cartwheel": [0, 1, 2, 3, 4, 6, 7, 9, 10, 12, 13],
    "crawl": [0, 1, 2],
    "roll": [],
    "getup_facedown": [],
    "getup_faceup": [],
}


def _velocity_term_moving_along_the_reference(env: HumanoidMimicEnv, t: float) -> float:
    """The velocity term of a character whose state is the reference pose at ``t`` and whose velocity
    is that pose's own time derivative (a one-sided difference inside the frame interval)."""
    clip, h = env.clip, 1e-6
    env.set_state_to_reference(t)
    env._set_clip_state(env.data, clip.qpos_at(t), qpos_velocity(clip.qpos_at(t), clip.qpos_at(t + h), h))
    mujoco.mj_forward(env.model, env.data)
    mujoco.mj_subtreeVel(env.model, env.data)
    return env._reward()[1]["velocity"]


@pytest.mark.parametrize("motion", mocap.available_clips())
def test_a_character_moving_along_the_reference_scores_the_velocity_term_at_every_phase(motion):
    env = HumanoidMimicEnv(motion=motion)
    starts, spans = env.clip.times[:-1], np.diff(env.clip.times)
    for fraction in (0.0, 0.5, 0.9):  # every frame interval: at its frame, half-way, near the next
        for t in starts + fraction * spans:
            term = _velocity_term_moving_along_the_reference(env, float(t))
            assert term >= 0.99, (motion, float(t), term)


def test_the_other_velocity_rules_fall_short_where_the_issue_measured():
    # v0's Euler-angle differences on backflip; DeepMimic's lerp between frames on run
    for motion, rule in (("backflip", "euler"), ("run", "lerped")):
        env = HumanoidMimicEnv(motion=motion, reference_velocity=rule)
        starts, spans = env.clip.times[:-1], np.diff(env.clip.times)
        terms = [_velocity_term_moving_along_the_reference(env, float(t)) for t in starts + 0.5 * spans]
        assert min(terms) < 0.5, (motion, rule, min(terms))


def _hold_on_the_reference(env: HumanoidMimicEnv, t: float, drift: np.ndarray) -> float:
    """Put the character on the clip's reference state at ``t``, moved horizontally by ``drift``
    (leaving the env's own reference, re-synced or not, as it is); its root term."""
    qpos, qvel = env._track.model_state([t])  # the clip's own, without the env's shift
    env.data.qpos[:], env.data.qvel[:] = qpos[0], qvel[0]
    env.data.qpos[:2] += drift
    mujoco.mj_forward(env.model, env.data)
    mujoco.mj_subtreeVel(env.model, env.data)
    return env._reward()[1]["root"]


def _root_term_across_a_loop_boundary(env: HumanoidMimicEnv, loop: int, drift: np.ndarray) -> tuple[float, float]:
    """Root terms of a character held on the reference but ``drift`` away, half a step before loop
    ``loop`` starts and just after, the step across the start made in the simulator."""
    env.reset(seed=0, options={"phase": 0.0})
    t = loop * env.clip.duration - 0.5 * env.dt
    env.set_state_to_reference(t)
    before = _hold_on_the_reference(env, t, drift)
    _, _, terminated, _, _ = env.step(env.targets_to_action(env.reference_qpos(t + env.dt)[7:]))
    assert not terminated
    return before, _hold_on_the_reference(env, env._t, drift)


@pytest.mark.parametrize("motion", LOOPING)
def test_each_new_loop_starts_with_the_reference_root_on_the_character(motion):
    drift = np.array([0.3, -0.2])  # 0.36 m: exp(-5 * 0.13) = 0.52 on the root term
    synced, unsynced = HumanoidMimicEnv(motion=motion), HumanoidMimicEnv(motion=motion, sync_root=False)
    for loop in (1, 2, 3):
        before, after = _root_term_across_a_loop_boundary(synced, loop, drift)
        assert before < 0.6 and after >= 0.99, (motion, loop, before, after)
        assert _root_term_across_a_loop_boundary(unsynced, loop, drift)[1] < 0.6


def test_the_reference_follows_the_clip_between_loop_starts():
    # the shift taken at a loop start stays for the whole loop; the next start takes a new one
    env = HumanoidMimicEnv(motion="walk")
    _root_term_across_a_loop_boundary(env, 1, np.array([0.3, -0.2]))
    shift = env._ref_shift.copy()
    assert np.linalg.norm(shift) > 0.3
    for _ in range(5):
        env.step(env.targets_to_action(env.reference_qpos(env._t + env.dt)[7:]))
        np.testing.assert_array_equal(env._ref_shift, shift)
        np.testing.assert_allclose(env.ref_data.qpos[:2], env.clip.qpos_at(env._t)[:2] + shift, atol=1e-12)


def _lay_on_its_back(env: HumanoidMimicEnv) -> None:
    """The clip's first pose turned onto its back, low enough that the chest touches the ground."""
    env.reset(seed=0, options={"phase": 0.0})
    env.data.qpos[:7] = [0.0, 0.0, 0.08, np.cos(np.pi / 4), 0.0, -np.sin(np.pi / 4), 0.0]
    env.data.qvel[:] = 0.0


@pytest.mark.parametrize("zero_fall_reward", [True, False])
def test_the_step_of_a_fall_is_rewarded_zero(zero_fall_reward):
    env = HumanoidMimicEnv(motion="walk", zero_fall_reward=zero_fall_reward)
    _lay_on_its_back(env)
    _, reward, terminated, _, info = env.step(np.zeros(28))
    assert terminated and info["fallen"]
    if zero_fall_reward:
        assert reward == 0.0 and not any(info["reward_terms"].values())
    else:
        assert reward > 0.0


def test_the_step_before_a_fall_keeps_its_reward():
    env = HumanoidMimicEnv(motion="walk")
    env.reset(seed=0, options={"phase": 0.0})
    _, reward, terminated, _, info = env.step(env.targets_to_action(env.reference_qpos(env.dt)[7:]))
    assert not terminated and "fallen" not in info and reward > 0.5


@pytest.mark.parametrize("motion", sorted(DEEPMIMIC_ARGS))
def test_fall_contact_bodies_are_deepmimics_per_clip(motion):
    env = HumanoidMimicEnv(motion=motion)
    assert env.fall_contact_bodies == tuple(BODY_NAMES[i] for i in DEEPMIMIC_ARGS[motion])


@pytest.mark.parametrize("motion, falls", [("walk", True), ("crawl", True), ("roll", False),
                                           ("getup_faceup", False)])
def test_a_back_on_the_ground_is_a_fall_only_where_deepmimic_says(motion, falls):
    env = HumanoidMimicEnv(motion=motion, min_root_height=0.0)  # contacts alone decide here
    _lay_on_its_back(env)
    _, _, terminated, _, _ = env.step(np.zeros(28))
    touching = {env.model.body(env.model.geom_bodyid[g]).name for g in env.data.contact.geom[: env.data.ncon].ravel()}
    assert "chest" in touching and terminated is falls


def test_explicit_fall_bodies_and_bad_rule_values():
    env = HumanoidMimicEnv(motion="walk", fall_bodies=["chest", "root"])
    assert env.fall_contact_bodies == ("root", "chest")
    assert HumanoidMimicEnv(motion="walk", fall_bodies=[]).fall_contact_bodies == ()
    with pytest.raises(ValueError, match=r"unknown bodies.*torso"):
        HumanoidMimicEnv(motion="walk", fall_bodies=["torso"])
    with pytest.raises(ValueError, match="fall_bodies must be"):
        HumanoidMimicEnv(motion="walk", fall_bodies="sometimes")
    with pytest.raises(ValueError, match="reference_velocity must be"):
        HumanoidMimicEnv(motion="walk", reference_velocity="finite")
    with pytest.raises(ValueError, match="clip_end must be"):
        HumanoidMimicEnv(motion="walk", clip_end="loop")


def test_v1_ids_have_deepmimics_rules_and_v0_ids_keep_the_old_ones():
    v1 = gym.make("envs:HumanoidMimic-Crawl-v1").unwrapped
    assert (v1.sync_root, v1.reference_velocity, v1.zero_fall_reward, v1.clip_end) == \
        (True, "quaternion", True, "terminate")
    assert v1.fall_contact_bodies == ("root", "chest", "neck")
    with pytest.warns(DeprecationWarning, match="out of date"):
        v0 = gym.make("envs:HumanoidMimic-Crawl-v0").unwrapped
    assert (v0.sync_root, v0.reference_velocity, v0.zero_fall_reward, v0.clip_end) == \
        (False, "euler", False, "truncate")
    assert v0.fall_contact_bodies == HumanoidMimicEnv(motion="crawl", fall_bodies="auto").fall_contact_bodies
