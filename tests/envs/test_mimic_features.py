"""The compiled reward and observation of envs.mimic.features against their definitions, written
with plain numpy (quaternion products, cross products, DeepMimic's weighted sums)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.mimic import features
from envs.mimic.env import HumanoidMimicEnv
from envs.mimic.humanoid import BODY_NAMES
from envs.mimic.mocap import quat_conj, quat_mul, quat_to_matrix


@pytest.fixture(scope="module")
def walk() -> HumanoidMimicEnv:
    return HumanoidMimicEnv(motion="walk")


def _random_states(rng: np.random.Generator, n: int, near: features.SimState | None = None,
                   ) -> features.SimState:
    """``n`` characters in arbitrary poses and motions (body 0 is the world: at rest; the root
    about upright, so that its heading is well defined), or close to the characters ``near`` (so
    that no reward term is near 0 and every error counts)."""
    scale = 1.0 if near is None else 0.01
    quats = rng.normal(scale=scale, size=(n, 16, 4))
    if near is None:
        yaw = rng.uniform(-np.pi, np.pi, n)
        quats[:, 1] = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], axis=-1) + 0.2 * quats[:, 1]
    else:
        quats += near.xquat
    quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
    quats[:, 0] = [1.0, 0.0, 0.0, 0.0]
    xpos, cvel, rest = (rng.normal(scale=scale, size=shape) for shape in ((n, 16, 3), (n, 16, 6), (3, n, 3)))
    if near is not None:
        xpos, cvel, rest = xpos + near.xpos, cvel + near.cvel, rest + np.stack(near[4:])
    xpos[:, 0], cvel[:, 0] = 0.0, 0.0
    return features.SimState(xpos, quat_to_matrix(quats), quats, cvel, *rest)


def _heading_frame(xmat: np.ndarray) -> np.ndarray:
    """The matrix taking world vectors into the heading frame: a turn about the vertical by
    minus the angle of the root's forward axis (its horizontal part)."""
    heading = np.arctan2(xmat[1, 1, 0], xmat[1, 0, 0])
    c, s = np.cos(heading), np.sin(heading)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def _observation(state: features.SimState, c: int, phase: float, order: np.ndarray) -> np.ndarray:
    xpos, xmat, cvel = state.xpos[c, 1:], state.xmat[c, 1:], state.cvel[c, 1:]
    axes = np.stack([xmat[:, :, 0], xmat[:, :, 2]], axis=1).reshape(-1, 3)  # forward, up of each body
    linear = cvel[:, 3:] + np.cross(cvel[:, :3], xpos - state.com[c])  # at the body's origin
    rows = np.concatenate([xpos - xpos[0], axes, linear, cvel[:, :3]]) @ _heading_frame(state.xmat[c]).T
    return np.concatenate([[phase, xpos[0, 2]], rows.ravel()])[order]


def _local_rotations(xquat: np.ndarray, parent: np.ndarray) -> np.ndarray:
    return quat_mul(quat_conj(xquat[parent]), xquat[1:])


def _tracked(state: features.SimState, c: int, skeleton: features.Skeleton) -> dict[str, np.ndarray]:
    xpos, xmat, spin = state.xpos[c], state.xmat[c], state.cvel[c, :, :3]
    relative = spin[1:] - spin[skeleton.parent]
    local_spin = np.einsum("bi,bij->bj", relative, xmat[1:])  # R^T w
    local_spin[0] = relative[0]  # the root's in the world frame
    ee = skeleton.end_effector + 1
    ends = (xpos[ee] - xpos[1]) @ _heading_frame(xmat).T
    ends[:, 2] = xpos[ee, 2]
    return {"spin": local_spin, "ends": ends, "positions": xpos[1:], "root_velocity": state.root_velocity[c],
            "com_velocity": state.com_velocity[c]}


def _deepmimic_reward(sim: features.SimState, ref: features.SimState, c: int, skeleton: features.Skeleton,
                      joint_weights: np.ndarray) -> tuple[float, np.ndarray, float]:
    """DeepMimic's imitation reward written term by term (SceneImitate::CalcRewardImitate)."""
    a, b = _tracked(sim, c, skeleton), _tracked(ref, c, skeleton)
    cosines = np.abs(np.sum(_local_rotations(sim.xquat[c], skeleton.parent)
                            * _local_rotations(ref.xquat[c], skeleton.parent), axis=-1))
    angles = 2.0 * np.arccos(np.minimum(cosines, 1.0))
    spin_errors = np.sum((a["spin"] - b["spin"]) ** 2, axis=-1)
    errors = {
        "pose": np.sum(joint_weights * angles ** 2),
        "velocity": np.sum(joint_weights * spin_errors),
        "end_effector": np.mean(np.sum((a["ends"] - b["ends"]) ** 2, axis=-1)),
        "root": (np.sum((a["positions"][0] - b["positions"][0]) ** 2) + 0.1 * angles[0] ** 2
                 + 0.01 * np.sum((a["root_velocity"] - b["root_velocity"]) ** 2) + 0.001 * spin_errors[0]),
        "com": 0.1 * np.sum((a["com_velocity"] - b["com_velocity"]) ** 2),
    }
    terms = np.array([np.exp(-scale * errors[name]) for name, (_, scale) in features.REWARD_TERMS.items()])
    mpjpe = 1000.0 * np.mean(np.linalg.norm(a["positions"] - b["positions"], axis=-1))
    return float(features.REWARD_WEIGHTS @ terms), terms, float(mpjpe)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5))
def test_compiled_observation_and_reward_match_their_definitions(walk, seed, n):
    rng = np.random.default_rng(seed)
    sim = _random_states(rng, n)
    ref = _random_states(rng, n, near=sim)
    skeleton, order = walk._skeleton, walk._obs_order
    joint_weights = rng.uniform(0.0, 1.0, 15)
    joint_weights /= joint_weights.sum()
    phase = rng.uniform(0.0, 1.0, n)
    rows = features.ReferenceRows(features.local_rotations(ref.xquat, skeleton.parent),
                                  features.tracked_features(skeleton, ref))
    obs, rewards, terms, mpjpe = features.observe_and_reward(
        skeleton, features.RewardWeights(joint_weights), order, sim, phase, rows)
    assert obs.dtype == np.float32 and obs.shape == (n, features.OBS_DIM)
    np.testing.assert_array_equal(features.observations(order, sim, phase), obs)
    for c in range(n):
        np.testing.assert_allclose(obs[c], _observation(sim, c, phase[c], order).astype(np.float32), rtol=1e-6, atol=1e-6)
        reward, expected_terms, expected_mpjpe = _deepmimic_reward(sim, ref, c, skeleton, joint_weights)
        assert np.all(expected_terms > 1e-3)  # (a close reference: every term's error counts)
        np.testing.assert_allclose(terms[c], expected_terms, rtol=1e-9)
        assert rewards[c] == pytest.approx(reward, rel=1e-9, abs=1e-12)
        assert mpjpe[c] == pytest.approx(expected_mpjpe, rel=1e-9)
        # each character's values are its own: the same in a batch as alone
        alone = features.observe_and_reward(skeleton, features.RewardWeights(joint_weights), order,
                                            features.SimState(*(x[c:c + 1] for x in sim)), phase[c:c + 1],
                                            features.ReferenceRows(*(x[c:c + 1] for x in rows)))
        np.testing.assert_array_equal(alone[0][0], obs[c])
        assert alone[1][0] == rewards[c] and alone[3][0] == mpjpe[c]


def test_the_observation_table_reads_the_bodies_in_order(walk):
    # entries 2-4: the chest relative to the root; 44-49: the root's forward and up axes; all in
    # the heading frame of a root turned by 90 degrees about the vertical
    state = _random_states(np.random.default_rng(0), 1)
    names = walk._skeleton.names
    chest, root = names.index(BODY_NAMES[1]) + 1, names.index("root") + 1
    state.xmat[0, root] = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    obs = features.observations(walk._obs_order, state, np.array([0.5]))[0]
    offset = state.xpos[0, chest] - state.xpos[0, root]
    np.testing.assert_allclose(obs[:5], [0.5, state.xpos[0, root, 2], offset[1], -offset[0], offset[2]], atol=1e-6)
    np.testing.assert_allclose(obs[44:50], [1.0, 0.0, 0.0, 0.0, 0.0, 1.0], atol=1e-6)
