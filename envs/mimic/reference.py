"""What the imitation reward reads of a character, and the reference character's share computed
ahead of time.

The reference depends on the clip time alone (plus a horizontal shift, see ``sync_root``), and
an episode visits the times ``t0 + k dt`` in order. :class:`ReferenceTrack` computes the
reference's reward features for a batch of those times at once (the clip sampled in one array
pass, MuJoCo's kinematics per time), so a step reads them instead of recomputing them: the env's
time goes to the simulated character and the physics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import mujoco
import numpy as np

from envs.mimic.humanoid import BODY_NAMES, END_EFFECTORS
from envs.mimic.mocap import Clip, ReferenceVelocity


def kinematics(m: mujoco.MjModel, d: mujoco.MjData) -> None:
    """Every body's position, rotation and velocity (and the subtree's centre-of-mass velocity)
    for ``d``'s qpos and qvel: what the reward reads, without dynamics."""
    mujoco.mj_kinematics(m, d)
    mujoco.mj_comPos(m, d)
    mujoco.mj_comVel(m, d)
    mujoco.mj_subtreeVel(m, d)


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

    @staticmethod
    def heading(xmat: np.ndarray) -> np.ndarray:
        """``H^T`` per state: ``v @ H^T`` turns world vectors ``v`` (rows) into the root's heading
        frame (the world turned about the vertical by the root's heading)."""
        forward = xmat[..., 1, :2, 0]
        forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
        turn = np.zeros((*forward.shape[:-1], 3, 3))
        turn[..., 0, 0] = turn[..., 1, 1] = forward[..., 0]
        turn[..., 1, 0], turn[..., 0, 1] = forward[..., 1], -forward[..., 1]
        turn[..., 2, 2] = 1.0
        return turn

    def end_effectors(self, xpos: np.ndarray, turn: np.ndarray) -> np.ndarray:
        """Feet and hands relative to the root, in its heading frame (``turn``: :meth:`heading`),
        heights from the ground."""
        ee = xpos[..., 1 + self.end_effector, :]
        local = np.matmul(ee - xpos[..., 1:2, :], turn)
        local[..., 2] = ee[..., 2]
        return local


class ReferenceRows(NamedTuple):
    """The reference's reward features at ``N`` times (:meth:`ReferenceTrack.rows`, or one row of
    each of ``N`` tracks stacked), positions unshifted."""

    local_rotations: np.ndarray  # (N, 15, 3, 3)
    local_angular_velocities: np.ndarray  # (N, 15, 3)
    end_effectors: np.ndarray  # (N, 4, 3)
    body_pos: np.ndarray  # (N, 15, 3)
    root_velocity: np.ndarray  # (N, 3)
    com_velocity: np.ndarray  # (N, 3)


class ReferenceTrack:
    """The reference character's reward features at ``t, t + dt, t + 2 dt, ...``, a batch at a time.

    Batches start small after every :meth:`restart` (most episodes of an untrained policy are
    short) and double up to ``most``. Positions are stored unshifted: the env adds its own
    horizontal shift of the reference root.
    """

    def __init__(self, model: mujoco.MjModel, clip: Clip, rule: ReferenceVelocity, dt: float,
                 qpos_columns: np.ndarray, qvel_columns: np.ndarray, first: int = 16, most: int = 64) -> None:
        self.model, self.clip, self.rule, self.dt = model, clip, rule, dt
        self.skeleton = Skeleton(model)
        self._qpos_columns, self._qvel_columns = qpos_columns, qvel_columns
        self._scratch = mujoco.MjData(model)
        self._first, self._most, self._size = first, most, first
        self.times = np.empty(0)
        self._time_list: list[float] = []  # the same, as Python floats: cheap to read one
        self._next = 0

    def restart(self) -> None:
        self._size = self._first

    def model_state(self, times: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reference qpos and qvel in MuJoCo's order (rows: times)."""
        qpos, qvel = self.clip.sample(np.asarray(times, dtype=float), self.rule)
        full_qpos = np.empty((len(qpos), self.model.nq))
        full_qpos[:, :7] = qpos[:, :7]
        full_qpos[:, self._qpos_columns] = qpos[:, 7:]
        full_qvel = np.empty((len(qvel), self.model.nv))
        full_qvel[:, :6] = qvel[:, :6]
        full_qvel[:, self._qvel_columns] = qvel[:, 6:]
        return full_qpos, full_qvel

    def index(self, t: float) -> int:
        """Row of time ``t`` in the current batch, computing a new batch from ``t`` if it has none."""
        j = self._next
        if j < len(self._time_list) and abs(self._time_list[j] - t) < 1e-9:  # the usual case: the next row
            self._next = j + 1
            return j
        hits = np.flatnonzero(np.abs(self.times - t) < 1e-9)
        if hits.size:
            self._next = int(hits[0]) + 1
            return int(hits[0])
        self._compute(t + self.dt * np.arange(self._size))
        self._size = min(2 * self._size, self._most)
        self._next = 1
        return 0

    def rows(self, j: int) -> ReferenceRows:
        """Row ``j`` of the current batch as a batch of one (views)."""
        k = slice(j, j + 1)
        return ReferenceRows(self.local_rotations[k], self.local_angular_velocities[k], self.end_effectors[k],
                             self.body_pos[k], self.root_velocity[k], self.com_velocity[k])

    def _compute(self, times: np.ndarray) -> None:
        m, d, sk = self.model, self._scratch, self.skeleton
        self.qpos, self.qvel = self.model_state(times)
        n = len(times)
        xpos, xmat, cvel = np.empty((n, m.nbody, 3)), np.empty((n, m.nbody, 9)), np.empty((n, m.nbody, 6))
        com_vel = np.empty((n, 3))
        for k in range(n):
            d.qpos[:] = self.qpos[k]
            d.qvel[:] = self.qvel[k]
            kinematics(m, d)
            xpos[k], xmat[k], cvel[k] = d.xpos, d.xmat, d.cvel
            com_vel[k] = d.subtree_linvel[sk.root]
        xmat3 = xmat.reshape(n, m.nbody, 3, 3)
        self.times, self._time_list = times, times.tolist()
        self.body_pos = xpos[:, 1:]
        self.local_rotations = sk.local_rotations(xmat3)
        self.local_angular_velocities = sk.local_angular_velocities(xmat3, cvel)
        self.end_effectors = sk.end_effectors(xpos, sk.heading(xmat3))
        self.root_velocity = self.qvel[:, :3]
        self.com_velocity = com_vel
