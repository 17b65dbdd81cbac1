"""The reference character's share of the imitation reward, computed ahead of time.

The reference depends on the clip time alone (plus a horizontal shift, see ``sync_root``), and
an episode visits the times ``t0 + k dt`` in order. :class:`ReferenceTrack` computes the
reference's reward features for a batch of those times at once (the clip sampled in one array
pass, MuJoCo's kinematics per time), so a step reads them instead of recomputing them: the env's
time goes to the simulated character and the physics.
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from envs.mimic.features import (
    TRACKED,
    ReferenceRows,
    SimState,
    Skeleton,
    local_rotations,
    tracked_features,
)
from envs.mimic.mocap import Clip, ReferenceVelocity


def kinematics(m: mujoco.MjModel, d: mujoco.MjData) -> None:
    """Every body's position, rotation and velocity (and the subtree's centre-of-mass velocity)
    for ``d``'s qpos and qvel: what the reward reads, without dynamics."""
    mujoco.mj_kinematics(m, d)
    mujoco.mj_comPos(m, d)
    mujoco.mj_comVel(m, d)
    mujoco.mj_subtreeVel(m, d)


class ReferenceTrack:
    """The reference character's reward features at ``t, t + dt, t + 2 dt, ...``, a batch at a time.

    Batches start small after every :meth:`restart` (most episodes of an untrained policy are
    short) and double up to ``most``. The reward's body positions include the horizontal shift of
    the reference root (:meth:`shift_root`); ``qpos`` and ``qvel`` are the clip's own.
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
        self.root_shift = np.zeros(2)

    def restart(self) -> None:
        """A new episode: small batches again (the env's reset also takes the root shift back)."""
        self._size = self._first

    def shift_root(self, shift: np.ndarray) -> None:
        """Move the reference root horizontally by ``shift`` from the clip's (``sync_root``)."""
        if shift[0] == self.root_shift[0] and shift[1] == self.root_shift[1]:
            return  # (every reset asks for no shift; most episodes never had one)
        self.root_shift[:] = shift
        self._apply_shift()

    def _apply_shift(self) -> None:
        if len(self.times):
            self.tracked[:, TRACKED["body_position"], :2] = self._clip_body_xy + self.root_shift

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
        if 0 < j <= len(self._time_list) and abs(self._time_list[j - 1] - t) < 1e-9:  # the same time again
            return j - 1
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
        return ReferenceRows(self.local_rotations[k], self.tracked[k])

    def _compute(self, times: np.ndarray) -> None:
        m, d, sk = self.model, self._scratch, self.skeleton
        self.qpos, self.qvel = self.model_state(times)
        n = len(times)
        xpos, xmat, xquat = np.empty((n, m.nbody, 3)), np.empty((n, m.nbody, 9)), np.empty((n, m.nbody, 4))
        cvel = np.empty((n, m.nbody, 6))
        com, com_vel = np.empty((n, 3)), np.empty((n, 3))
        # views of the scratch data made once (each MjData attribute read makes a new array object)
        qpos_in, qvel_in, xpos_out, xmat_out, xquat_out, cvel_out = d.qpos, d.qvel, d.xpos, d.xmat, d.xquat, d.cvel
        com_out, com_vel_out = d.subtree_com[sk.root], d.subtree_linvel[sk.root]
        for k in range(n):
            qpos_in[:] = self.qpos[k]
            qvel_in[:] = self.qvel[k]
            kinematics(m, d)
            xpos[k], xmat[k], xquat[k], cvel[k] = xpos_out, xmat_out, xquat_out, cvel_out
            com[k], com_vel[k] = com_out, com_vel_out
        xmat = xmat.reshape(n, m.nbody, 3, 3)
        self.times, self._time_list = times, times.tolist()
        self.local_rotations = local_rotations(xquat, sk.parent)
        # (the root velocity contiguous, as the simulated side's: one compiled layout for both)
        state = SimState(xpos, xmat, xquat, cvel, com, com_vel, np.ascontiguousarray(self.qvel[:, :3]))
        self.tracked = tracked_features(sk, state)
        self._clip_body_xy = self.tracked[:, TRACKED["body_position"], :2].copy()
        if self.root_shift.any():
            self._apply_shift()
