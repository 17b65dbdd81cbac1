"""The imitation reward and the observation of a batch of simulated characters, in one numpy pass.

Every array has a leading batch axis ``N``: one env passes its own state with ``N = 1`` (views,
no copies), :class:`~envs.mimic.vector.HumanoidMimicVectorEnv` stacks its ``N`` copies. On
arrays of 15 bodies numpy's per-call cost, not the arithmetic, is most of the time, so a batch
of ``N`` costs about what one character does. Per-body arrays are in MuJoCo's body order
(bodies ``1..15``; the root is body 1, row 0), see :class:`Skeleton`.
"""

from __future__ import annotations

import math
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

# Rows of a character's heading-frame rows (:func:`observations`): positions, forward/up axes
# (interleaved), linear and angular velocities of the 15 bodies.
POSITIONS, AXES, LINEAR, ANGULAR, ROWS = 0, 15, 45, 60, 75
OBS_DIM = 2 + 3 * 14 + 6 * 15 + 3 * 15 + 3 * 15
# a x b = (a b^T).ravel() @ _CROSS (the Levi-Civita symbol): a batch of cross products in two calls
_CROSS = np.zeros((9, 3))
for _i, _j, _k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
    _CROSS[3 * _i + _j, _k], _CROSS[3 * _j + _i, _k] = 1.0, -1.0
# q @ _RIGHT_MUL is the matrix of p -> p q (row-major, 16 entries, each +-1 times one component of
# q); _RIGHT_MUL_OF_CONJUGATE gives the matrix of p -> conj(p) q
_RIGHT_MUL = np.zeros((4, 16))
for _entry, (_component, _sign) in enumerate(zip([0, 1, 2, 3, 1, 0, 3, 2, 2, 3, 0, 1, 3, 2, 1, 0],
                                                 [1, -1, -1, -1, 1, 1, 1, -1, 1, -1, 1, 1, 1, 1, -1, 1], strict=True)):
    _RIGHT_MUL[_component, _entry] = _sign
_RIGHT_MUL_OF_CONJUGATE = _RIGHT_MUL * np.tile([1.0, -1.0, -1.0, -1.0], 4)

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
# the reward's error inputs per character: the squared tracked differences (flattened), then the
# squared half-angles between the simulated and the reference local rotations of the 15 bodies
ERROR_INPUTS = 3 * TRACKED_ROWS + 15


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
        # omega_child - omega_parent of every body is this (15, nbody) matrix times all bodies' omega
        self.relative = np.zeros((len(names), model.nbody))
        self.relative[np.arange(len(names)), np.arange(1, model.nbody)] = 1.0
        self.relative[np.arange(len(names)), self.parent] -= 1.0
        self.end_effector = np.array([names.index(n) for n in END_EFFECTORS])  # rows of a per-body result
        self.order = np.array([names.index(n) for n in BODY_NAMES])  # rows in BODY_NAMES order

    def local_angular_velocities(self, xmat: np.ndarray, cvel: np.ndarray, out: np.ndarray) -> None:
        """Writes the angular velocity of every body relative to its parent, in the body's frame
        (the root's: world angular velocity, world frame) to ``out`` ``(..., 15, 3)``."""
        relative = np.matmul(self.relative, cvel[..., :3])
        np.matmul(relative[..., None, :], xmat[..., 1:, :, :], out=out[..., None, :])
        out[..., 0, :] = relative[..., 0, :]


class SimState(NamedTuple):
    """What the reward and observation read of ``N`` simulated characters (MuJoCo's arrays after
    kinematics, stacked): ``xpos (N, nbody, 3)``, ``xmat (N, nbody, 3, 3)``, ``xquat (N, nbody, 4)``,
    ``cvel (N, nbody, 6)``, and the root's ``subtree_com``, ``subtree_linvel`` and ``qvel[:3]``,
    each ``(N, 3)``."""

    xpos: np.ndarray
    xmat: np.ndarray
    xquat: np.ndarray
    cvel: np.ndarray
    com: np.ndarray
    com_velocity: np.ndarray
    root_velocity: np.ndarray


class ReferenceRows(NamedTuple):
    """The reference's reward features at ``N`` times (:meth:`ReferenceTrack.rows`, or one row of
    each of ``N`` tracks stacked), positions shifted by the env's ``sync_root``."""

    pose_forms: np.ndarray  # (N, 15, 4, 4): of each body's local rotation r, the matrix of p -> p r
    tracked: np.ndarray  # (N, TRACKED_ROWS, 3): tracked_features of the reference character


def sim_state(d: mujoco.MjData, root: int) -> SimState:
    """Views of the arrays of the character in ``d`` (read after kinematics), as a batch of one;
    several characters' states are these concatenated."""
    return SimState(d.xpos[None], d.xmat.reshape(1, -1, 3, 3), d.xquat[None], d.cvel[None],
                    d.subtree_com[root:root + 1], d.subtree_linvel[root:root + 1], d.qvel[None, :3])


def observations(order: np.ndarray, state: SimState, phase: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 224)`` float32 observations (table in :class:`~envs.mimic.env.HumanoidMimicEnv`) and
    the heading-frame rows ``(N, 75, 3)`` they hold: each character in its root's heading frame
    (the world turned about the vertical by the root's heading, centred on the root), positions
    relative to the root, forward and up axes, linear velocities of the body origins, angular
    velocities. ``order``: :func:`observation_order`'s; ``phase``: one per character."""
    xpos, xmat, cvel = state.xpos, state.xmat, state.cvel
    n = len(xpos)
    world = np.empty((n, ROWS, 3))
    np.subtract(xpos[:, 1:], xpos[:, 1:2], out=world[:, POSITIONS:AXES])
    # the rotations' first and third columns: the forward and up axes
    rotations = xmat.reshape(n, -1, 9)
    world[:, AXES:LINEAR:2] = rotations[:, 1:, 0::3]
    world[:, AXES + 1:LINEAR:2] = rotations[:, 1:, 2::3]
    spin = world[:, ANGULAR:]
    spin[:] = cvel[:, 1:, :3]
    # cvel's linear part is the velocity at the subtree's centre of mass: move it to each origin
    arm = xpos[:, 1:] - state.com[:, None, :]
    np.matmul((spin[..., :, None] * arm[..., None, :]).reshape(n, -1, 9), _CROSS, out=world[:, LINEAR:ANGULAR])
    world[:, LINEAR:ANGULAR] += cvel[:, 1:, 3:]
    flat = np.empty((n, 2 + 3 * ROWS))  # [phase, root height, heading-frame rows]
    turned = flat[:, 2:].reshape(n, ROWS, 3)
    np.matmul(world, heading_turn(xmat), out=turned)
    flat[:, 0] = phase
    flat[:, 1] = xpos[:, 1, 2]
    return np.take(flat, order, axis=1).astype(np.float32), turned


def heading_turn(xmat: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)``: H^T of each character, H its root's heading (a turn about the vertical):
    ``v @ H^T`` turns world row vectors into the heading frame."""
    forward = xmat[:, 1, :2, 0]  # the root's forward axis, horizontal part
    if len(xmat) > 16:  # a batch of reference times
        fx, fy = forward[:, 0], forward[:, 1]
        unit = forward / np.sqrt(fx * fx + fy * fy)[:, None]  # (as below, to the last bit)
        turns = np.zeros((len(xmat), 3, 3))
        turns[:, 0, 0] = turns[:, 1, 1] = unit[:, 0]
        turns[:, 1, 0] = unit[:, 1]
        turns[:, 0, 1] = -unit[:, 1]
        turns[:, 2, 2] = 1.0
        return turns
    rows = []  # a few characters stepping: built from Python floats, cheaper than numpy's per-call cost
    for fx, fy in forward.tolist():
        norm = math.sqrt(fx * fx + fy * fy)
        fx, fy = fx / norm, fy / norm
        rows.append(((fx, -fy, 0.0), (fy, fx, 0.0), (0.0, 0.0, 1.0)))
    return np.array(rows)


def tracked_features(skeleton: Skeleton, state: SimState, positions: np.ndarray, out: np.ndarray) -> None:
    """Writes each character's :data:`TRACKED` rows to ``out`` ``(N, TRACKED_ROWS, 3)``, the same
    function for the simulated and the reference side. ``positions``: the bodies' positions in the
    heading frame (:func:`observations`' first rows)."""
    skeleton.local_angular_velocities(state.xmat, state.cvel, out=out[:, TRACKED["angular_velocity"]])
    ee = out[:, TRACKED["end_effector"]]
    np.take(positions, skeleton.end_effector, axis=1, out=ee)
    ee[..., 2] += state.xpos[:, 1:2, 2]
    out[:, TRACKED["body_position"]] = state.xpos[:, 1:]
    out[:, TRACKED["root_velocity"]] = state.root_velocity[:, None]
    out[:, TRACKED["com_velocity"]] = state.com_velocity[:, None]


def pose_forms(xquat: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """``(N, 15, 4, 4)``: for each body's local rotation r = conj(q_parent) q_body (from world
    rotations ``xquat`` ``(N, nbody, 4)``), the matrix of p -> p r. With it the alignment of a
    simulated local rotation conj(p) c with r is one bilinear form: <conj(p) c, r> = c^T M p."""
    n = len(xquat)
    # r = conj(p) c: the matrix of x -> conj(x) c applied to p. Matrices of quaternions come from
    # 2-D products (numpy is slow along short axes, BLAS is not)
    times_child = (xquat[:, 1:].reshape(-1, 4) @ _RIGHT_MUL_OF_CONJUGATE).reshape(n, -1, 4, 4)
    local = np.matmul(times_child, xquat[:, parent, :, None])
    return (local.reshape(-1, 4) @ _RIGHT_MUL).reshape(n, -1, 4, 4)


class RewardWeights:
    """DeepMimic's reward as two matrix products. ``matrix`` ``(ERROR_INPUTS, 5 + 15)`` maps the
    error inputs (:data:`ERROR_INPUTS`) to ``-k_i e_i`` of each term (:data:`REWARD_TERMS` order)
    and to each body's squared distance from the reference in (mm / 15)^2; ``summary`` ``(20, 2)``
    maps the terms ``exp(-k_i e_i)`` and the distances to the reward and the MPJPE (mm). From the
    joint weights (per body, MuJoCo's body order, summing to 1)."""

    def __init__(self, joint_weights: np.ndarray) -> None:
        bodies, terms = len(joint_weights), len(REWARD_TERMS)
        squares = np.zeros((TRACKED_ROWS, 3, terms))
        squares[TRACKED["angular_velocity"], :, 1] = joint_weights[:, None]  # velocity
        squares[TRACKED["angular_velocity"].start, :, 3] += 0.001  # root: its angular velocity
        ee = TRACKED["end_effector"]
        squares[ee, :, 2] = 1.0 / (ee.stop - ee.start)  # the mean over end effectors
        squares[TRACKED["body_position"].start, :, 3] = 1.0  # root: its position
        squares[TRACKED["root_velocity"], :, 3] = 0.01
        squares[TRACKED["com_velocity"], :, 4] = 0.1
        # the input is the squared half-angle: the angle squared is 4 times it
        angles = np.zeros((bodies, terms))
        angles[:, 0] = 4.0 * joint_weights  # pose
        angles[0, 3] += 4.0 * 0.1  # root: its rotation
        errors = np.concatenate([squares.reshape(3 * TRACKED_ROWS, terms), angles]) * -REWARD_SCALES
        # per body, its 3 squared position differences summed, in (mm / bodies)^2
        distances = np.zeros((ERROR_INPUTS, bodies))
        first = 3 * TRACKED["body_position"].start
        distances[first:first + 3 * bodies] = np.kron(np.eye(bodies), np.ones((3, 1))) * (1000.0 / bodies) ** 2
        self.matrix = np.concatenate([errors, distances], axis=1)
        self.summary = np.zeros((terms + bodies, 2))
        self.summary[:terms, 0] = REWARD_WEIGHTS
        self.summary[terms:, 1] = 1.0


def imitation_reward(skeleton: Skeleton, weights: RewardWeights, state: SimState, turned: np.ndarray,
                     ref: ReferenceRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DeepMimic's imitation reward of each character against its reference: the rewards
    ``(N,)``, the terms ``exp(-k_i e_i)`` ``(N, 5)`` (order of :data:`REWARD_TERMS`) and the
    MPJPE in mm ``(N,)``. ``turned``: the heading-frame rows of :func:`observations`."""
    n = len(turned)
    inputs = np.empty((n, ERROR_INPUTS))
    diff = inputs[:, :3 * TRACKED_ROWS].reshape(n, TRACKED_ROWS, 3)
    tracked_features(skeleton, state, turned, out=diff)
    diff -= ref.tracked
    diff *= diff
    # the angle between the local rotations is twice the half-angle whose cosine is |<q, r>|
    xquat = state.xquat
    align = np.matmul(np.matmul(xquat[:, 1:, None, :], ref.pose_forms), xquat[:, skeleton.parent, :, None])
    half = np.arccos(np.minimum(np.abs(align[..., 0, 0]), 1.0))
    np.multiply(half, half, out=inputs[:, 3 * TRACKED_ROWS:])
    out = inputs @ weights.matrix
    terms = np.exp(out[:, :len(REWARD_TERMS)], out=out[:, :len(REWARD_TERMS)])
    np.sqrt(out[:, len(REWARD_TERMS):], out=out[:, len(REWARD_TERMS):])
    summary = out @ weights.summary
    return summary[:, 0], terms, summary[:, 1]


def observation_order(body_order: np.ndarray) -> np.ndarray:
    """Where each observation entry sits in ``[phase, height, heading-frame rows flattened]``;
    ``body_order``: the rows of the bodies in the observation's order (root first)."""
    def entries(first_row: int, rows_per_body: int, bodies: np.ndarray) -> list[int]:
        return [2 + 3 * (first_row + rows_per_body * b) + i for b in bodies for i in range(3 * rows_per_body)]
    order = np.array([0, 1, *entries(POSITIONS, 1, body_order[1:]), *entries(AXES, 2, body_order),
                      *entries(LINEAR, 1, body_order), *entries(ANGULAR, 1, body_order)])
    assert len(order) == OBS_DIM
    return order
