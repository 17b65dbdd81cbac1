"""The imitation reward and the observation of a batch of simulated characters, in one numpy pass.

Every array has a leading batch axis ``N``: one env passes its own state with ``N = 1`` (views,
no copies), :class:`~envs.mimic.vector.HumanoidMimicVectorEnv` stacks its ``N`` copies. On
arrays of 15 bodies numpy's per-call cost, not the arithmetic, is most of the time, so a batch
of ``N`` costs about what one character does. Per-body arrays are in MuJoCo's body order
(bodies ``1..15``; the root is body 1, row 0), see :class:`Skeleton`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import mujoco
import numpy as np

from envs.mimic.humanoid import BODY_NAMES, END_EFFECTORS

# DeepMimic's imitation reward (released code): term -> (weight, error scale).
REWARD_TERMS: dict[str, tuple[float, float]] = {
    "pose": (0.5, 2.0),
    "velocity": (0.05, 0.1),
    "end_effector": (0.15, 40.0),
    "root": (0.2, 5.0),
    "com": (0.1, 10.0),
}
REWARD_WEIGHTS = np.array([w for w, _ in REWARD_TERMS.values()])
REWARD_SCALES = np.array([k for _, k in REWARD_TERMS.values()])

# Rows of heading_frame_rows per character: positions, forward/up axes (interleaved), linear and
# angular velocities of the 15 bodies.
POSITIONS, AXES, LINEAR, ANGULAR, ROWS = 0, 15, 45, 60, 75
OBS_DIM = 2 + 3 * 14 + 6 * 15 + 3 * 15 + 3 * 15
_NEXT, _LAST = np.array([1, 2, 0]), np.array([2, 0, 1])  # a x b = a[NEXT] b[LAST] - a[LAST] b[NEXT]


class Skeleton:
    """Where the reward's quantities sit in MuJoCo's arrays, in MuJoCo's body order: the
    character's bodies are ``1..nbody-1`` (the world is body 0), so a state's arrays are read as
    slices, not gathered. The root is body 1 (row 0 of every per-body result). Each method takes
    the arrays of one state (``xmat`` as ``(nbody, 3, 3)``) or of a batch of states (leading axes)."""

    def __init__(self, model: mujoco.MjModel) -> None:
        names = [model.body(i).name for i in range(1, model.nbody)]
        if sorted(names) != sorted(BODY_NAMES) or names[0] != "root":
            raise RuntimeError(f"the model's bodies after the world must be the character's, root first; got {names}")
        self.names = names
        self.root = 1
        self.parent = model.body_parentid[1:].copy()  # the root's parent is the world: identity, at rest
        self.end_effector = np.array([names.index(n) for n in END_EFFECTORS])  # rows of a per-body result
        self.order = np.array([names.index(n) for n in BODY_NAMES])  # rows in BODY_NAMES order

    def local_rotations(self, xmat: np.ndarray) -> np.ndarray:
        """R_parent^T R_child of every body (the root's: its world rotation; a welded wrist's: constant)."""
        return np.matmul(np.swapaxes(xmat[..., self.parent, :, :], -1, -2), xmat[..., 1:, :, :])

    def local_angular_velocities(self, xmat: np.ndarray, cvel: np.ndarray) -> np.ndarray:
        """Angular velocity of every body relative to its parent, in the body's frame (the root's:
        world angular velocity, world frame)."""
        omega = cvel[..., :3]
        relative = omega[..., 1:, :] - omega[..., self.parent, :]
        local = np.matmul(relative[..., None, :], xmat[..., 1:, :, :])[..., 0, :]
        local[..., 0, :] = relative[..., 0, :]
        return local


class SimState(NamedTuple):
    """What the reward and observation read of ``N`` simulated characters (MuJoCo's arrays after
    kinematics, stacked): ``xpos (N, nbody, 3)``, ``xmat (N, nbody, 3, 3)``, ``cvel (N, nbody, 6)``,
    and the root's ``subtree_com``, ``subtree_linvel`` and ``qvel[:3]``, each ``(N, 3)``."""

    xpos: np.ndarray
    xmat: np.ndarray
    cvel: np.ndarray
    com: np.ndarray
    com_velocity: np.ndarray
    root_velocity: np.ndarray


class ReferenceRows(NamedTuple):
    """The reference's reward features at ``N`` times (:meth:`ReferenceTrack.rows`, or one row of
    each of ``N`` tracks stacked), positions unshifted."""

    local_rotations: np.ndarray  # (N, 15, 3, 3)
    local_angular_velocities: np.ndarray  # (N, 15, 3)
    end_effectors: np.ndarray  # (N, 4, 3)
    body_pos: np.ndarray  # (N, 15, 3)
    root_velocity: np.ndarray  # (N, 3)
    com_velocity: np.ndarray  # (N, 3)


def sim_state(datas: Sequence[mujoco.MjData], root: int) -> SimState:
    """The arrays of the characters in ``datas`` (after kinematics): views for one, stacked for several."""
    if len(datas) == 1:
        d = datas[0]
        return SimState(d.xpos[None], d.xmat.reshape(1, -1, 3, 3), d.cvel[None], d.subtree_com[root:root + 1],
                        d.subtree_linvel[root:root + 1], d.qvel[None, :3])
    return SimState(np.stack([d.xpos for d in datas]), np.stack([d.xmat for d in datas]).reshape(len(datas), -1, 3, 3),
                    np.stack([d.cvel for d in datas]), np.stack([d.subtree_com[root] for d in datas]),
                    np.stack([d.subtree_linvel[root] for d in datas]), np.stack([d.qvel[:3] for d in datas]))


def heading_frame_rows(state: SimState) -> np.ndarray:
    """``(N, 75, 3)``: each character in its root's heading frame (the world turned about the
    vertical by the root's heading, centred on the root): positions relative to the root, forward
    and up axes, linear velocities of the body origins, angular velocities."""
    xpos, xmat, cvel = state.xpos, state.xmat, state.cvel
    n = len(xpos)
    rows = np.empty((n, ROWS, 3))
    np.subtract(xpos[:, 1:], xpos[:, 1:2], out=rows[:, POSITIONS:AXES])
    rows[:, AXES:LINEAR:2] = xmat[:, 1:, :, 0]  # the rotation's first column: the forward axis
    rows[:, AXES + 1:LINEAR:2] = xmat[:, 1:, :, 2]  # its third: the up axis
    ang, lin = rows[:, ANGULAR:], rows[:, LINEAR:ANGULAR]
    ang[:] = cvel[:, 1:, :3]
    # cvel's linear part is the velocity at the subtree's centre of mass: move it to each origin
    arm = xpos[:, 1:] - state.com[:, None, :]
    np.subtract(ang[..., _NEXT] * arm[..., _LAST], ang[..., _LAST] * arm[..., _NEXT], out=lin)  # ang x arm
    lin += cvel[:, 1:, 3:]
    forward = xmat[:, 1, :2, 0]
    forward = forward / np.sqrt(np.einsum("ni,ni->n", forward, forward))[:, None]
    turn = np.zeros((n, 3, 3))  # H^T: v @ H^T turns world row vectors into the heading frame
    turn[:, 0, 0] = turn[:, 1, 1] = forward[:, 0]
    turn[:, 1, 0], turn[:, 0, 1] = forward[:, 1], -forward[:, 1]
    turn[:, 2, 2] = 1.0
    return np.matmul(rows, turn)


def end_effector_positions(skeleton: Skeleton, state: SimState, turned: np.ndarray) -> np.ndarray:
    """``(N, 4, 3)``: feet and hands relative to the root in its heading frame (``turned``:
    :func:`heading_frame_rows`), heights from the ground."""
    ee = turned[:, skeleton.end_effector]
    ee[..., 2] += state.xpos[:, 1:2, 2]
    return ee


def imitation_reward(skeleton: Skeleton, joint_weights: np.ndarray, state: SimState, turned: np.ndarray,
                     ref: ReferenceRows, ref_shift: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DeepMimic's imitation reward of each character against its reference: the rewards
    ``(N,)``, the terms ``exp(-k_i e_i)`` ``(N, 5)`` (order of :data:`REWARD_TERMS`) and the
    MPJPE in mm ``(N,)``. ``turned``: :func:`heading_frame_rows`; ``ref_shift (N, 2)``: the
    horizontal move of each reference root (``sync_root``)."""
    cos_diff = np.einsum("bnij,bnij->bn", skeleton.local_rotations(state.xmat), ref.local_rotations)
    cos_diff -= 1.0
    cos_diff *= 0.5
    rot_sq = np.arccos(np.minimum(np.maximum(cos_diff, -1.0, out=cos_diff), 1.0, out=cos_diff))
    rot_sq *= rot_sq
    vel_diff = skeleton.local_angular_velocities(state.xmat, state.cvel)
    vel_diff -= ref.local_angular_velocities
    vel_sq = np.einsum("bni,bni->bn", vel_diff, vel_diff)
    ee_diff = end_effector_positions(skeleton, state, turned)
    ee_diff -= ref.end_effectors
    body_diff = state.xpos[:, 1:] - ref.body_pos
    body_diff[..., :2] -= ref_shift[:, None, :]
    root_vel_diff = state.root_velocity - ref.root_velocity
    com_diff = state.com_velocity - ref.com_velocity
    errors = np.empty((len(cos_diff), len(REWARD_TERMS)))
    errors[:, 0] = rot_sq @ joint_weights
    errors[:, 1] = vel_sq @ joint_weights
    errors[:, 2] = np.einsum("bni,bni->b", ee_diff, ee_diff) / ee_diff.shape[1]
    errors[:, 3] = (np.einsum("bi,bi->b", body_diff[:, 0], body_diff[:, 0]) + 0.1 * rot_sq[:, 0]
                    + 0.01 * np.einsum("bi,bi->b", root_vel_diff, root_vel_diff) + 0.001 * vel_sq[:, 0])
    errors[:, 4] = 0.1 * np.einsum("bi,bi->b", com_diff, com_diff)
    terms = np.exp(-REWARD_SCALES * errors)
    mpjpe_mm = np.sqrt(np.einsum("bni,bni->bn", body_diff, body_diff)).sum(axis=1) * (1000.0 / body_diff.shape[1])
    return terms @ REWARD_WEIGHTS, terms, mpjpe_mm


def observations(order: np.ndarray, phase: np.ndarray, root_height: np.ndarray, turned: np.ndarray) -> np.ndarray:
    """``(N, 224)`` float32 (table in :class:`~envs.mimic.env.HumanoidMimicEnv`): ``order`` is
    :func:`observation_order`'s, ``phase`` and ``root_height`` are ``(N,)``."""
    flat = np.empty((len(turned), 2 + 3 * ROWS))
    flat[:, 0] = phase
    flat[:, 1] = root_height
    flat[:, 2:] = turned.reshape(len(turned), -1)
    return flat[:, order].astype(np.float32)


def observation_order(body_order: np.ndarray) -> np.ndarray:
    """Where each observation entry sits in ``[phase, height, heading-frame rows flattened]``;
    ``body_order``: the rows of the bodies in the observation's order (root first)."""
    def entries(first_row: int, rows_per_body: int, bodies: np.ndarray) -> list[int]:
        return [2 + 3 * (first_row + rows_per_body * b) + i for b in bodies for i in range(3 * rows_per_body)]
    order = np.array([0, 1, *entries(POSITIONS, 1, body_order[1:]), *entries(AXES, 2, body_order),
                      *entries(LINEAR, 1, body_order), *entries(ANGULAR, 1, body_order)])
    assert len(order) == OBS_DIM
    return order
