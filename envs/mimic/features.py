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
# (x, y, z, x, y): a x b = a5[1:4] b5[2:5] - a5[2:5] b5[1:4], views of one gather each
_WRAP = np.array([0, 1, 2, 0, 1])
# the heading turn, row-major, from the root's unit forward axis (fx, fy): (fx, fy) @ _TURN_MAP +
# _TURN_VERTICAL is [[fx, -fy, 0], [fy, fx, 0], [0, 0, 1]]
_TURN_MAP = np.array([[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
_TURN_VERTICAL = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])

# Rows of a tracked array (:func:`tracked_features`), 3-vectors: what the reward's squared-error
# terms compare, one array per character, so that the simulated and the reference side differ in
# one operation and every weighted sum of squares is one matrix product.
TRACKED: dict[str, slice] = {
    "angular_velocity": slice(0, 15),  # each body's relative to its parent, body frame (root: world)
    "end_effector": slice(15, 19),  # feet and hands, heading frame, heights from the ground
    "body_position": slice(19, 34),  # world
    "root_velocity": slice(34, 35),
    "com_velocity": slice(35, 36),
}
TRACKED_ROWS = 36


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

    def local_angular_velocities(self, xmat: np.ndarray, cvel: np.ndarray, out: np.ndarray | None = None,
                                 ) -> np.ndarray:
        """Angular velocity of every body relative to its parent, in the body's frame (the root's:
        world angular velocity, world frame); ``out``: where to write them, ``(..., 15, 3)``."""
        omega = cvel[..., :3]
        relative = omega[..., 1:, :] - omega[..., self.parent, :]
        local = np.matmul(relative[..., None, :], xmat[..., 1:, :, :],
                          out=None if out is None else out[..., None, :])[..., 0, :]
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
    tracked: np.ndarray  # (N, TRACKED_ROWS, 3): tracked_features of the reference character


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
    rows[:, ANGULAR:] = cvel[:, 1:, :3]
    # cvel's linear part is the velocity at the subtree's centre of mass: move it to each origin
    ang, arm = cvel[:, 1:, _WRAP], (xpos[:, 1:] - state.com[:, None, :])[..., _WRAP]
    lin = rows[:, LINEAR:ANGULAR]
    np.multiply(ang[..., 1:4], arm[..., 2:5], out=lin)  # ang x arm
    lin -= ang[..., 2:5] * arm[..., 1:4]
    lin += cvel[:, 1:, 3:]
    return np.matmul(rows, heading_turn(xmat))


def heading_turn(xmat: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)``: H^T of each character, H its root's heading (a turn about the vertical):
    ``v @ H^T`` turns world row vectors into the heading frame."""
    forward = xmat[:, 1, :2, 0]  # the root's forward axis, horizontal part
    unit = forward / np.hypot(forward[:, 0], forward[:, 1])[:, None]
    return (unit @ _TURN_MAP + _TURN_VERTICAL).reshape(len(xmat), 3, 3)


def tracked_features(skeleton: Skeleton, state: SimState, turned: np.ndarray) -> np.ndarray:
    """``(N, TRACKED_ROWS, 3)``: each character's :data:`TRACKED` rows, the same function for the
    simulated and the reference side. ``turned``: :func:`heading_frame_rows`, or its first rows
    (the positions) alone."""
    rows = np.empty((len(turned), TRACKED_ROWS, 3))
    skeleton.local_angular_velocities(state.xmat, state.cvel, out=rows[:, TRACKED["angular_velocity"]])
    ee = rows[:, TRACKED["end_effector"]]
    ee[:] = turned[:, skeleton.end_effector]
    ee[..., 2] += state.xpos[:, 1:2, 2]
    rows[:, TRACKED["body_position"]] = state.xpos[:, 1:]
    rows[:, TRACKED["root_velocity"]] = state.root_velocity[:, None]
    rows[:, TRACKED["com_velocity"]] = state.com_velocity[:, None]
    return rows


class RewardWeights:
    """DeepMimic's error sums as matrices: ``errors = squared tracked differences (flattened) @
    squares + squared joint angles @ angles`` (terms in :data:`REWARD_TERMS` order), from the
    joint weights (per body, MuJoCo's body order, summing to 1)."""

    def __init__(self, joint_weights: np.ndarray) -> None:
        bodies, terms = len(joint_weights), len(REWARD_TERMS)
        self.angles = np.zeros((bodies, terms))
        self.angles[:, 0] = joint_weights  # pose
        self.angles[0, 3] += 0.1  # root: its rotation
        squares = np.zeros((TRACKED_ROWS, 3, terms))
        squares[TRACKED["angular_velocity"], :, 1] = joint_weights[:, None]  # velocity
        squares[TRACKED["angular_velocity"].start, :, 3] += 0.001  # root: its angular velocity
        ee = TRACKED["end_effector"]
        squares[ee, :, 2] = 1.0 / (ee.stop - ee.start)  # the mean over end effectors
        squares[TRACKED["body_position"].start, :, 3] = 1.0  # root: its position
        squares[TRACKED["root_velocity"], :, 3] = 0.01
        squares[TRACKED["com_velocity"], :, 4] = 0.1
        self.squares = squares.reshape(3 * TRACKED_ROWS, terms)
        # per body, its 3 squared position differences summed
        self.body_sums = np.kron(np.eye(bodies), np.ones((3, 1)))


def imitation_reward(skeleton: Skeleton, weights: RewardWeights, state: SimState, turned: np.ndarray,
                     ref: ReferenceRows, ref_shift: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DeepMimic's imitation reward of each character against its reference: the rewards
    ``(N,)``, the terms ``exp(-k_i e_i)`` ``(N, 5)`` (order of :data:`REWARD_TERMS`) and the
    MPJPE in mm ``(N,)``. ``turned``: :func:`heading_frame_rows`; ``ref_shift (N, 2)``: the
    horizontal move of each reference root (``sync_root``)."""
    n = len(turned)
    local = skeleton.local_rotations(state.xmat).reshape(n, -1, 1, 9)
    cos_diff = np.matmul(local, ref.local_rotations.reshape(n, -1, 9, 1)).reshape(n, -1)  # trace(R^T R_ref)
    cos_diff -= 1.0
    cos_diff *= 0.5
    angle_sq = np.arccos(np.minimum(np.maximum(cos_diff, -1.0, out=cos_diff), 1.0, out=cos_diff))
    angle_sq *= angle_sq
    diff = tracked_features(skeleton, state, turned)
    diff -= ref.tracked
    diff[:, TRACKED["body_position"], :2] -= ref_shift[:, None, :]
    diff *= diff
    errors = diff.reshape(n, -1) @ weights.squares
    errors += angle_sq @ weights.angles
    errors *= -REWARD_SCALES
    terms = np.exp(errors, out=errors)
    distances = np.sqrt(diff[:, TRACKED["body_position"]].reshape(n, -1) @ weights.body_sums)
    mpjpe_mm = distances.sum(axis=1) * (1000.0 / distances.shape[1])
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
