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

import mujoco
import numpy as np

from envs.mimic.humanoid import BODY_NAMES, END_EFFECTORS
from envs.mimic.mocap import Clip, ReferenceVelocity


class Skeleton:
    """Where the reward's quantities sit in MuJoCo's arrays. Each method takes the arrays of one
    state (``xmat`` as ``(nbody, 3, 3)``) or of a batch of states (leading axes)."""

    def __init__(self, model: mujoco.MjModel) -> None:
        self.body = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n) for n in BODY_NAMES])
        self.root = int(self.body[0])
        # jointed bodies for the pose and velocity terms (the wrists are welded: weight 0)
        self.jointed_names = [n for n in BODY_NAMES if not n.endswith("wrist")]
        self.jointed_body = self.body[[BODY_NAMES.index(n) for n in self.jointed_names]]
        self.jointed_parent = model.body_parentid[self.jointed_body]  # the root's parent is the world
        self.end_effector = self.body[[BODY_NAMES.index(n) for n in END_EFFECTORS]]

    def local_rotations(self, xmat: np.ndarray) -> np.ndarray:
        """R_parent^T R_child of every jointed body (the root's: its world rotation)."""
        parent = xmat[..., self.jointed_parent, :, :]
        return np.matmul(np.swapaxes(parent, -1, -2), xmat[..., self.jointed_body, :, :])

    def local_angular_velocities(self, xmat: np.ndarray, cvel: np.ndarray) -> np.ndarray:
        """Angular velocity of every jointed body relative to its parent, in the body's frame
        (the root's: world angular velocity, world frame)."""
        omega = cvel[..., :3]
        relative = omega[..., self.jointed_body, :] - omega[..., self.jointed_parent, :]
        local = np.einsum("...nji,...nj->...ni", xmat[..., self.jointed_body, :, :], relative)
        local[..., 0, :] = relative[..., 0, :]
        return local

    def end_effectors(self, xpos: np.ndarray, xmat: np.ndarray) -> np.ndarray:
        """Feet and hands relative to the root, turned into the root's heading frame, heights from
        the ground."""
        forward = xmat[..., self.root, :2, 0]
        forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
        cos, sin = forward[..., :1], forward[..., 1:2]
        ee = xpos[..., self.end_effector, :]
        root = xpos[..., self.root, None, :]
        dx, dy = ee[..., 0] - root[..., 0], ee[..., 1] - root[..., 1]
        return np.stack((cos * dx + sin * dy, cos * dy - sin * dx, ee[..., 2]), axis=-1)


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
        if j < len(self.times) and abs(self.times[j] - t) < 1e-9:
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

    def _compute(self, times: np.ndarray) -> None:
        m, d, sk = self.model, self._scratch, self.skeleton
        self.qpos, self.qvel = self.model_state(times)
        n = len(times)
        xpos, xmat, cvel = np.empty((n, m.nbody, 3)), np.empty((n, m.nbody, 9)), np.empty((n, m.nbody, 6))
        com_vel = np.empty((n, 3))
        for k in range(n):
            d.qpos[:] = self.qpos[k]
            d.qvel[:] = self.qvel[k]
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            mujoco.mj_comVel(m, d)
            mujoco.mj_subtreeVel(m, d)
            xpos[k], xmat[k], cvel[k] = d.xpos, d.xmat, d.cvel
            com_vel[k] = d.subtree_linvel[sk.root]
        xmat3 = xmat.reshape(n, m.nbody, 3, 3)
        self.times = times
        self.body_pos = xpos[:, sk.body]
        self.local_rotations = sk.local_rotations(xmat3)
        self.local_angular_velocities = sk.local_angular_velocities(xmat3, cvel)
        self.end_effectors = sk.end_effectors(xpos, xmat3)
        self.root_velocity = self.qvel[:, :3]
        self.com_velocity = com_vel
