"""The imitation reward and the observation of simulated characters, compiled.

DeepMimic's reward and observation read 15 bodies' positions, rotations and velocities: a few
hundred multiplications per character. In numpy each of the few dozen array operations they take
costs more in dispatch than in arithmetic (a step spent a third of its time there), so they are
loops over bodies compiled with numba (``cache=True``: compiled on first use, about 3 s, then
loaded in a fraction of a second from the cache beside this file, or from numba's user cache
directory or ``NUMBA_CACHE_DIR`` where that folder is read-only), one character at a time. The
reference side uses the same :func:`tracked_features`, and keeps its local rotations for the
pose term (:func:`local_rotations`). Per-body arrays are in MuJoCo's body order (bodies ``1..15``; the root is body 1, row 0), see
:class:`Skeleton`; every array has a leading axis over ``N`` characters (an env's own state is a
batch of one, made of views of its ``MjData``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import mujoco
import numba
import numpy as np

from envs.mimic.humanoid import BODY_NAMES, END_EFFECTORS
from envs.mimic.mocap import quat_conj, quat_mul

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

BODIES = len(BODY_NAMES)
# Rows of a character's heading-frame rows (:func:`observations`): positions, forward/up axes
# (interleaved), linear and angular velocities of the 15 bodies; the flat row before the
# observation's order is [phase, root height, the rows' 3-vectors].
POSITIONS, AXES, LINEAR, ANGULAR, ROWS = 0, 15, 45, 60, 75
OBS_DIM = 2 + 3 * 14 + 6 * 15 + 3 * 15 + 3 * 15
# Rows of a tracked array (:func:`tracked_features`), 3-vectors: what the reward's squared-error
# terms compare, the same rows for the simulated and the reference character.
_ANGULAR_VELOCITY, _END_EFFECTOR, _BODY_POSITION, _ROOT_VELOCITY, _COM_VELOCITY = 0, 15, 19, 34, 35
TRACKED: dict[str, slice] = {
    "angular_velocity": slice(_ANGULAR_VELOCITY, _END_EFFECTOR),  # each body's relative to its parent, body frame (root: world)
    "end_effector": slice(_END_EFFECTOR, _BODY_POSITION),  # feet and hands, heading frame, heights from the ground
    "body_position": slice(_BODY_POSITION, _ROOT_VELOCITY),  # world
    "root_velocity": slice(_ROOT_VELOCITY, _COM_VELOCITY),
    "com_velocity": slice(_COM_VELOCITY, _COM_VELOCITY + 1),
}
TRACKED_ROWS = 36
# the reward's error inputs per character: the squared tracked differences (flattened), then the
# squared half-angles between the simulated and the reference local rotations of the 15 bodies
ERROR_INPUTS = 3 * TRACKED_ROWS + 15

# compiled on first use and cached beside this file; NaN or inf for a division by zero, as numpy
# gives (a root pointing straight up has no heading), not ZeroDivisionError
_compiled = numba.njit(cache=True, error_model="numpy")


class Skeleton:
    """Where the reward's quantities sit in MuJoCo's arrays, in MuJoCo's body order: the
    character's bodies are ``1..nbody-1`` (the world is body 0), so a state's arrays are read as
    slices, not gathered. The root is body 1 (row 0 of every per-body result)."""

    def __init__(self, model: mujoco.MjModel) -> None:
        names = [model.body(i).name for i in range(1, model.nbody)]
        if sorted(names) != sorted(BODY_NAMES) or names[0] != "root":
            raise RuntimeError(f"the model's bodies after the world must be the character's, root first; got {names}")
        self.names = names
        self.root = 1
        # the root's parent is the world: identity, at rest
        self.parent = model.body_parentid[1:].astype(np.intp)
        self.end_effector = np.array([names.index(n) for n in END_EFFECTORS], dtype=np.intp)  # rows of a per-body result
        self.order = np.array([names.index(n) for n in BODY_NAMES], dtype=np.intp)  # rows in BODY_NAMES order


class SimState(NamedTuple):
    """What the reward and observation read of ``N`` simulated characters (MuJoCo's arrays after
    kinematics, stacked): ``xpos (N, nbody, 3)``, ``xmat (N, nbody, 3, 3)``, ``xquat (N, nbody, 4)``,
    ``cvel (N, nbody, 6)``, and the root's ``subtree_com``, ``subtree_linvel`` and ``qvel[:3]``,
    each ``(N, 3)``; C-contiguous (each layout is compiled once)."""

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

    local_rotations: np.ndarray  # (N, 15, 4): each body's rotation relative to its parent (:func:`local_rotations`)
    tracked: np.ndarray  # (N, TRACKED_ROWS, 3): tracked_features of the reference character


def sim_state(d: mujoco.MjData, root: int) -> SimState:
    """Views of the arrays of the character in ``d`` (read after kinematics), as a batch of one;
    several characters' states are these concatenated."""
    return SimState(d.xpos[None], d.xmat.reshape(1, -1, 3, 3), d.xquat[None], d.cvel[None],
                    d.subtree_com[root:root + 1], d.subtree_linvel[root:root + 1], d.qvel[None, :3])


def observations(order: np.ndarray, state: SimState, phase: np.ndarray) -> np.ndarray:
    """``(N, 224)`` float32 observations (table in :class:`~envs.mimic.env.HumanoidMimicEnv`) of
    ``N`` characters. ``order``: :func:`observation_order`'s; ``phase`` ``(N,)``."""
    obs = np.empty((len(phase), len(order)), dtype=np.float32)
    _observations(order, state.xpos, state.xmat, state.cvel, state.com, phase, obs)
    return obs


def tracked_features(skeleton: Skeleton, state: SimState) -> np.ndarray:
    """``(N, TRACKED_ROWS, 3)``: each character's :data:`TRACKED` rows."""
    out = np.empty((len(state.xpos), TRACKED_ROWS, 3))
    _tracked_features(skeleton.parent, skeleton.end_effector, state.xpos, state.xmat, state.cvel,
                      state.com_velocity, state.root_velocity, out)
    return out


def observe_and_reward(skeleton: Skeleton, weights: RewardWeights, order: np.ndarray, state: SimState,
                       phase: np.ndarray, ref: ReferenceRows) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The observations ``(N, 224)`` (:func:`observations`) and DeepMimic's imitation reward of
    each character against its reference: the rewards ``(N,)``, the terms ``exp(-k_i e_i)``
    ``(N, 5)`` (order of :data:`REWARD_TERMS`) and the MPJPE in mm ``(N,)``."""
    n = len(phase)
    obs = np.empty((n, len(order)), dtype=np.float32)
    rewards, terms, mpjpe = np.empty(n), np.empty((n, len(REWARD_TERMS))), np.empty(n)
    _observe_and_reward(order, skeleton.parent, skeleton.end_effector, weights.matrix, weights.summary,
                        state.xpos, state.xmat, state.xquat, state.cvel, state.com, state.com_velocity,
                        state.root_velocity, phase, ref.local_rotations, ref.tracked, obs, rewards, terms, mpjpe)
    return obs, rewards, terms, mpjpe


@_compiled
def _heading(xmat: np.ndarray, c: int) -> tuple[float, float]:
    """Cosine and sine of character ``c``'s heading: its root's forward axis, horizontal part."""
    fx, fy = xmat[c, 1, 0, 0], xmat[c, 1, 1, 0]
    norm = math.sqrt(fx * fx + fy * fy)
    return fx / norm, fy / norm


@_compiled
def _turned(x: float, y: float, z: float, cos: float, sin: float, out: np.ndarray, k: int) -> None:
    """Writes the world vector (x, y, z) in the heading frame (turned by minus the heading) to ``out[k:k + 3]``."""
    out[k] = x * cos + y * sin
    out[k + 1] = y * cos - x * sin
    out[k + 2] = z


@_compiled
def _observe(c: int, order: np.ndarray, xpos: np.ndarray, xmat: np.ndarray, cvel: np.ndarray,
             com: np.ndarray, phase: np.ndarray, flat: np.ndarray, obs: np.ndarray) -> None:
    """Character ``c``'s observation into ``obs[c]``: its heading-frame rows (world turned by its
    heading, centred on its root) in ``flat``, then read in the observation's order."""
    cos, sin = _heading(xmat, c)
    flat[0], flat[1] = phase[c], xpos[c, 1, 2]
    for b in range(BODIES):
        body = b + 1
        _turned(xpos[c, body, 0] - xpos[c, 1, 0], xpos[c, body, 1] - xpos[c, 1, 1], xpos[c, body, 2] - xpos[c, 1, 2],
                cos, sin, flat, 2 + 3 * (POSITIONS + b))
        # the rotation's first and third columns: the forward and up axes
        _turned(xmat[c, body, 0, 0], xmat[c, body, 1, 0], xmat[c, body, 2, 0], cos, sin, flat, 2 + 3 * (AXES + 2 * b))
        _turned(xmat[c, body, 0, 2], xmat[c, body, 1, 2], xmat[c, body, 2, 2], cos, sin, flat,
                2 + 3 * (AXES + 2 * b + 1))
        # cvel's linear part is the velocity at the subtree's centre of mass: move it to the body's origin
        sx, sy, sz = cvel[c, body, 0], cvel[c, body, 1], cvel[c, body, 2]
        ax, ay, az = xpos[c, body, 0] - com[c, 0], xpos[c, body, 1] - com[c, 1], xpos[c, body, 2] - com[c, 2]
        _turned(sy * az - sz * ay + cvel[c, body, 3], sz * ax - sx * az + cvel[c, body, 4],
                sx * ay - sy * ax + cvel[c, body, 5], cos, sin, flat, 2 + 3 * (LINEAR + b))
        _turned(sx, sy, sz, cos, sin, flat, 2 + 3 * (ANGULAR + b))
    for i in range(len(order)):
        obs[c, i] = flat[order[i]]


@_compiled
def _track(c: int, parent: np.ndarray, end_effector: np.ndarray, xpos: np.ndarray, xmat: np.ndarray,
           cvel: np.ndarray, com_velocity: np.ndarray, root_velocity: np.ndarray, out: np.ndarray) -> None:
    """Character ``c``'s :data:`TRACKED` rows into ``out`` ``(TRACKED_ROWS, 3)``."""
    for b in range(BODIES):
        body, up = b + 1, parent[b]
        wx, wy, wz = cvel[c, body, 0] - cvel[c, up, 0], cvel[c, body, 1] - cvel[c, up, 1], cvel[c, body, 2] - cvel[c, up, 2]
        row = _ANGULAR_VELOCITY + b
        if b == 0:  # the root's, in the world frame
            out[row, 0], out[row, 1], out[row, 2] = wx, wy, wz
        else:  # relative to the parent, in the body's frame: R^T w
            for j in range(3):
                out[row, j] = wx * xmat[c, body, 0, j] + wy * xmat[c, body, 1, j] + wz * xmat[c, body, 2, j]
        for j in range(3):
            out[_BODY_POSITION + b, j] = xpos[c, body, j]
    cos, sin = _heading(xmat, c)
    for e in range(len(end_effector)):
        body = end_effector[e] + 1
        _turned(xpos[c, body, 0] - xpos[c, 1, 0], xpos[c, body, 1] - xpos[c, 1, 1], xpos[c, body, 2], cos, sin,
                out[_END_EFFECTOR + e], 0)
    for j in range(3):
        out[_ROOT_VELOCITY, j] = root_velocity[c, j]
        out[_COM_VELOCITY, j] = com_velocity[c, j]


@_compiled
def _observations(order: np.ndarray, xpos: np.ndarray, xmat: np.ndarray, cvel: np.ndarray, com: np.ndarray,
                  phase: np.ndarray, obs: np.ndarray) -> None:
    flat = np.empty(2 + 3 * ROWS)
    for c in range(len(phase)):
        _observe(c, order, xpos, xmat, cvel, com, phase, flat, obs)


@_compiled
def _tracked_features(parent: np.ndarray, end_effector: np.ndarray, xpos: np.ndarray, xmat: np.ndarray,
                      cvel: np.ndarray, com_velocity: np.ndarray, root_velocity: np.ndarray, out: np.ndarray) -> None:
    for c in range(len(xpos)):
        _track(c, parent, end_effector, xpos, xmat, cvel, com_velocity, root_velocity, out[c])


@_compiled
def _observe_and_reward(order: np.ndarray, parent: np.ndarray, end_effector: np.ndarray, matrix: np.ndarray,
                        summary: np.ndarray, xpos: np.ndarray, xmat: np.ndarray, xquat: np.ndarray,
                        cvel: np.ndarray, com: np.ndarray, com_velocity: np.ndarray, root_velocity: np.ndarray,
                        phase: np.ndarray, ref_local: np.ndarray, ref_tracked: np.ndarray, obs: np.ndarray,
                        rewards: np.ndarray, terms: np.ndarray, mpjpe: np.ndarray) -> None:
    flat, tracked, inputs = np.empty(2 + 3 * ROWS), np.empty((TRACKED_ROWS, 3)), np.empty(ERROR_INPUTS)
    n_terms = terms.shape[1]
    for c in range(len(phase)):
        _observe(c, order, xpos, xmat, cvel, com, phase, flat, obs)
        _track(c, parent, end_effector, xpos, xmat, cvel, com_velocity, root_velocity, tracked)
        for r in range(TRACKED_ROWS):
            for j in range(3):
                diff = tracked[r, j] - ref_tracked[c, r, j]
                inputs[3 * r + j] = diff * diff
        for b in range(BODIES):
            # |<conj(p) q, r>|: the cosine of half the angle between the simulated local rotation
            # conj(p) q (q the body's world rotation, p its parent's) and the reference's r
            pw, px, py, pz = xquat[c, parent[b], 0], -xquat[c, parent[b], 1], -xquat[c, parent[b], 2], \
                -xquat[c, parent[b], 3]
            qw, qx, qy, qz = xquat[c, b + 1, 0], xquat[c, b + 1, 1], xquat[c, b + 1, 2], xquat[c, b + 1, 3]
            align = ((pw * qw - px * qx - py * qy - pz * qz) * ref_local[c, b, 0]
                     + (pw * qx + px * qw + py * qz - pz * qy) * ref_local[c, b, 1]
                     + (pw * qy - px * qz + py * qw + pz * qx) * ref_local[c, b, 2]
                     + (pw * qz + px * qy - py * qx + pz * qw) * ref_local[c, b, 3])
            half = math.acos(min(abs(align), 1.0))
            inputs[3 * TRACKED_ROWS + b] = half * half
        reward, distance = 0.0, 0.0
        for o in range(matrix.shape[1]):  # (RewardWeights.matrix, then .summary)
            s = 0.0
            for i in range(ERROR_INPUTS):
                s += inputs[i] * matrix[i, o]
            if o < n_terms:
                terms[c, o] = math.exp(s)
                reward += summary[o, 0] * terms[c, o]
            else:
                distance += summary[o, 1] * math.sqrt(s)
        rewards[c], mpjpe[c] = reward, distance


def local_rotations(xquat: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """``(N, 15, 4)``: each body's rotation relative to its parent, conj(q_parent) q_body, from
    the world rotations ``xquat`` ``(N, nbody, 4)`` (the reference side of the pose term)."""
    return quat_mul(quat_conj(xquat[:, parent]), xquat[:, 1:])


class RewardWeights:
    """DeepMimic's reward as two weight matrices. ``matrix`` ``(ERROR_INPUTS, 5 + 15)`` maps the
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


def observation_order(body_order: np.ndarray) -> np.ndarray:
    """Where each observation entry sits in ``[phase, height, heading-frame rows flattened]``;
    ``body_order``: the rows of the bodies in the observation's order (root first)."""
    def entries(first_row: int, rows_per_body: int, bodies: np.ndarray) -> list[int]:
        return [2 + 3 * (first_row + rows_per_body * b) + i for b in bodies for i in range(3 * rows_per_body)]
    order = np.array([0, 1, *entries(POSITIONS, 1, body_order[1:]), *entries(AXES, 2, body_order),
                      *entries(LINEAR, 1, body_order), *entries(ANGULAR, 1, body_order)])
    assert len(order) == OBS_DIM
    return order
