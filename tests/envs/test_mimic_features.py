"""The reward's building blocks in envs.mimic.features against their definitions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from envs.mimic import features
from envs.mimic.mocap import quat_conj, quat_mul, quat_to_matrix

PARENT = np.array([0, 1, 2, 1, 4, 5, 2, 7, 8, 1, 10, 11, 2, 13, 14])  # a tree over 16 bodies, 0 the world


def _unit_quaternions(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    values = arrays(np.float64, (*shape, 4), elements=st.floats(-1.0, 1.0))
    return values.filter(lambda q: bool(np.all(np.linalg.norm(q, axis=-1) > 0.1))).map(
        lambda q: q / np.linalg.norm(q, axis=-1, keepdims=True))


@settings(max_examples=50, deadline=None)
@given(_unit_quaternions((3, 16)), _unit_quaternions((3, 15)))
def test_pose_forms_align_a_simulated_local_rotation_with_the_reference(world, sim_world):
    # c^T M p is <conj(p) c, r>: the cosine of half the angle between the local rotations
    forms = features.pose_forms(world, PARENT)
    reference_local = quat_mul(quat_conj(world[:, PARENT]), world[:, 1:])
    sim = np.concatenate([world[:, :1], sim_world], axis=1)
    sim_local = quat_mul(quat_conj(sim[:, PARENT]), sim[:, 1:])
    bilinear = np.einsum("nbi,nbij,nbj->nb", sim[:, 1:], forms, sim[:, PARENT])
    np.testing.assert_allclose(bilinear, np.sum(sim_local * reference_local, axis=-1), atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(_unit_quaternions((40,)))
def test_the_heading_turn_is_the_same_for_a_batch_and_for_a_few_characters(roots):
    xmat = np.tile(np.eye(3), (40, 2, 1, 1))
    xmat[:, 1] = quat_to_matrix(roots)
    forward = xmat[:, 1, :, 0]
    if np.any(np.hypot(forward[:, 0], forward[:, 1]) < 1e-3):
        return  # the heading of a root pointing straight up or down is not defined
    batch = features.heading_turn(xmat)
    few = np.concatenate([features.heading_turn(xmat[k:k + 4]) for k in range(0, 40, 4)])
    np.testing.assert_array_equal(batch, few)
    # the turned forward axis has no sideways part and points ahead; verticals stay vertical
    turned = np.einsum("ni,nij->nj", forward, batch)
    np.testing.assert_allclose(turned[:, 1], 0.0, atol=1e-12)
    assert np.all(turned[:, 0] > 0)
    np.testing.assert_array_equal(batch[:, 2], np.tile([0.0, 0.0, 1.0], (40, 1)))


def test_cross_products_as_one_matrix_product():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    np.testing.assert_allclose((a[:, :, None] * b[:, None, :]).reshape(7, 9) @ features._CROSS, np.cross(a, b),
                               atol=1e-15)
