"""DeepMimic motion clips: parsing, conversion to the MuJoCo humanoid, sampling at any time.

A clip file is JSON ``{"Loop": "wrap"|"none", "Frames": [[duration, root pos(3), root quat(4),
chest quat(4), neck quat(4), r-hip quat(4), r-knee, r-ankle quat(4), r-shoulder quat(4), r-elbow,
l-hip quat(4), l-knee, l-ankle quat(4), l-shoulder quat(4), l-elbow], ...]}``: 44 numbers a frame,
Y-up, quaternions ``w, x, y, z``, joint rotations local to the parent body.

MuJoCo is Z-up. Our model is the DeepMimic character rotated by +90 degrees about x, so a
DeepMimic vector ``(x, y, z)`` is ``(x, -z, y)`` here and a quaternion ``(w, v)`` is ``(w, R v)``.
Each 3-DOF joint is three hinges; :data:`EULER_AXES` gives their order (chosen per joint so
that the middle angle, the one with a singularity at +-90 degrees, stays small over all 15
shipped clips).
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

# (name, number of values in a frame) after duration, root position and root rotation.
FRAME_JOINTS: tuple[tuple[str, int], ...] = (
    ("chest", 4), ("neck", 4),
    ("right_hip", 4), ("right_knee", 1), ("right_ankle", 4), ("right_shoulder", 4), ("right_elbow", 1),
    ("left_hip", 4), ("left_knee", 1), ("left_ankle", 4), ("left_shoulder", 4), ("left_elbow", 1),
)
FRAME_SIZE = 1 + 3 + 4 + sum(n for _, n in FRAME_JOINTS)  # 44

# Hinge order of each 3-DOF joint, as axes of the child body: R = R_a1(q1) R_a2(q2) R_a3(q3).
EULER_AXES: dict[str, str] = {
    "chest": "yzx", "neck": "zxy",
    "right_hip": "yzx", "left_hip": "yzx",
    "right_ankle": "yxz", "left_ankle": "yxz",
    "right_shoulder": "xzy", "left_shoulder": "xzy",
}
# Knees and elbows turn about DeepMimic's z axis, which is -y here.
HINGE_AXIS = np.array([0.0, -1.0, 0.0])

CLIP_PREFIX = "humanoid3d_"


class MotionError(ValueError):
    """A motion clip is missing or malformed."""


# ----------------------------------------------------------------------------- quaternions (w, x, y, z)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = aw * bw - ax * bx - ay * by - az * bz
    out[..., 1] = aw * bx + ax * bw + ay * bz - az * by
    out[..., 2] = aw * by - ax * bz + ay * bw + az * bx
    out[..., 3] = aw * bz + ax * by - ay * bx + az * bw
    return out


def quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_normalize(q: np.ndarray) -> np.ndarray:
    # np.linalg.norm's own arithmetic, without its Python-level dispatch (this runs per sample)
    return q / np.sqrt(np.add.reduce(q * q, axis=-1, keepdims=True))


def quat_angle(q: np.ndarray) -> np.ndarray:
    """Rotation angle in [0, pi] of (unit) quaternions."""
    return 2.0 * np.arctan2(np.linalg.norm(q[..., 1:], axis=-1), np.abs(q[..., 0]))


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Axis * angle, taking the short way round (angle in [0, pi])."""
    q = np.where(q[..., :1] < 0, -q, q)
    vec_norm = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(vec_norm, q[..., :1])
    # angle / sin(angle/2) -> 2 as the angle -> 0
    scale = np.where(vec_norm > 1e-12, angle / np.maximum(vec_norm, 1e-12), 2.0)
    return q[..., 1:] * scale


class SlerpPairs(NamedTuple):
    """What slerping between fixed pairs of quaternions needs, computed once per pair."""

    start: np.ndarray  # (..., 4)
    end: np.ndarray  # (..., 4): on the start's hemisphere (the short way round)
    angle: np.ndarray  # (..., 1): half the rotation between them
    sin_angle: np.ndarray  # (..., 1): its sine (1 where the pair is nearly equal)
    near: np.ndarray  # (..., 1) bool: nearly equal (lerped instead)

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray) -> SlerpPairs:
        dot = np.sum(a * b, axis=-1, keepdims=True)
        b = np.where(dot < 0, -b, b)
        angle = np.arccos(np.minimum(np.abs(dot), 1.0))
        sin_angle = np.sin(angle)
        near = sin_angle < 1e-8
        return cls(a, b, angle, np.where(near, 1.0, sin_angle), near)

    def take(self, index: np.ndarray) -> SlerpPairs:
        return SlerpPairs(*(x[index] for x in self))

    def at(self, t: float | np.ndarray) -> np.ndarray:
        """Unit quaternions a fraction ``t`` of the way (``t`` broadcasts against ``angle``)."""
        wa = np.where(self.near, 1.0 - t, np.sin((1.0 - t) * self.angle) / self.sin_angle)
        wb = np.where(self.near, t, np.sin(t * self.angle) / self.sin_angle)
        return quat_normalize(wa * self.start + wb * self.end)


def quat_slerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    t = np.asarray(t, dtype=float)[..., None] if np.ndim(t) else float(t)
    return SlerpPairs.of(a, b).at(t)


def axis_quat(axis: str, angle: np.ndarray) -> np.ndarray:
    angle = np.asarray(angle, dtype=float)
    q = np.zeros((*angle.shape, 4))
    q[..., 0] = np.cos(angle / 2)
    q[..., 1 + "xyz".index(axis)] = np.sin(angle / 2)
    return q


def euler_to_quat(angles: np.ndarray, axes: str) -> np.ndarray:
    """Quaternion of R_a1(q1) R_a2(q2) R_a3(q3) (intrinsic rotations, as nested hinges)."""
    q = axis_quat(axes[0], angles[..., 0])
    for k in (1, 2):
        q = quat_mul(q, axis_quat(axes[k], angles[..., k]))
    return q


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices of quaternions (normalised first): each entry a weighted sum of the 10
    component products (:data:`_R_PAIR_FORMS`), so a batch is one gather product and one matrix
    product."""
    q = quat_normalize(q)
    return ((q[..., _PAIR_A] * q[..., _PAIR_B]) @ _R_PAIR_MATRIX).reshape(*q.shape[:-1], 3, 3)


def _euler_indices(axes: Sequence[str]) -> tuple[np.ndarray, ...]:
    ijk = np.array([["xyz".index(a) for a in order] for order in axes])
    if any(len(set(row)) != 3 for row in ijk.tolist()):
        raise ValueError(f"axes must be permutations of 'xyz', got {list(axes)!r}")
    cyclic = np.array([tuple(row) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) for row in ijk.tolist()])
    return ijk[:, 0], ijk[:, 1], ijk[:, 2], np.where(cyclic, 1.0, -1.0)


def quat_to_euler(q: np.ndarray, axes: str | Sequence[str]) -> np.ndarray:
    """Inverse of :func:`euler_to_quat`; the middle angle lies in [-pi/2, pi/2].

    ``axes`` is one order for all quaternions, or one order per quaternion along the
    second-to-last axis of ``q`` (so several joints convert in one call).
    """
    i, j, k, sign = _euler_indices([axes] if isinstance(axes, str) else axes)
    if isinstance(axes, str):
        i, j, k, sign = i[0], j[0], k[0], sign[0]
    flat = quat_to_matrix(q).reshape(*q.shape[:-1], 9)

    def entry(row: np.ndarray, col: np.ndarray) -> np.ndarray:
        index = np.broadcast_to(np.asarray(row * 3 + col)[..., None], (*flat.shape[:-1], 1))
        return np.take_along_axis(flat, index, axis=-1)[..., 0]

    middle = np.arcsin(np.clip(sign * entry(i, k), -1.0, 1.0))
    first = np.arctan2(-sign * entry(j, k), entry(k, k))
    last = np.arctan2(-sign * entry(i, j), entry(i, i))
    # Gimbal lock (middle = +-pi/2): only first +- last is defined; put it all in the first angle.
    locked = np.hypot(entry(i, i), entry(i, j)) < 1e-9
    if np.any(locked):
        first = np.where(locked, np.arctan2(sign * entry(k, j), entry(j, j)), first)
        last = np.where(locked, 0.0, last)
    return np.stack([first, middle, last], axis=-1)


# Rotation-matrix entries as bilinear forms of the quaternion: R[r, c] = q^T B[r, c] q (unit q).
_R_FORMS = np.zeros((3, 3, 4, 4))
for (_r, _c), _terms in {
    (0, 0): [(0, 0, 1), (1, 1, 1), (2, 2, -1), (3, 3, -1)],
    (1, 1): [(0, 0, 1), (1, 1, -1), (2, 2, 1), (3, 3, -1)],
    (2, 2): [(0, 0, 1), (1, 1, -1), (2, 2, -1), (3, 3, 1)],
    (0, 1): [(1, 2, 2), (0, 3, -2)], (0, 2): [(1, 3, 2), (0, 2, 2)],
    (1, 0): [(1, 2, 2), (0, 3, 2)], (1, 2): [(2, 3, 2), (0, 1, -2)],
    (2, 0): [(1, 3, 2), (0, 2, -2)], (2, 1): [(2, 3, 2), (0, 1, 2)],
}.items():
    for _a, _b, _v in _terms:
        _R_FORMS[_r, _c, _a, _b] += _v


# The same over the 10 products q_a q_b (a <= b; _R_FORMS has nothing below the diagonal):
# R[r, c] = sum_p _R_PAIR_FORMS[r, c, p] q_A[p] q_B[p]; row-major R is the products @ _R_PAIR_MATRIX.
_PAIR_A, _PAIR_B = np.triu_indices(4)
assert not np.tril(_R_FORMS, -1).any()
_R_PAIR_FORMS = _R_FORMS[..., _PAIR_A, _PAIR_B]
_R_PAIR_MATRIX = _R_PAIR_FORMS.reshape(9, 10).T.copy()


class EulerDecomposer:
    """:func:`quat_to_euler` for a fixed list of joints, in a few array operations (per step)."""

    def __init__(self, axes: Sequence[str]) -> None:
        i, j, k, sign = _euler_indices(axes)
        n = len(axes)
        # entries needed: (i,k) (j,k) (k,k) (i,j) (i,i) (k,j) (j,j), each a weighted sum of its
        # joint's 10 component products (:data:`_R_PAIR_FORMS`)
        pairs = np.stack([np.stack([i, k]), np.stack([j, k]), np.stack([k, k]), np.stack([i, j]),
                          np.stack([i, i]), np.stack([k, j]), np.stack([j, j])], axis=-1)  # (2, n, 7)
        coefficients = _R_PAIR_FORMS[pairs[0], pairs[1]]  # (n, 7, 10)
        self._first = (4 * np.arange(n)[:, None] + _PAIR_A).ravel()
        self._second = (4 * np.arange(n)[:, None] + _PAIR_B).ravel()
        self._weights = np.zeros((7 * n, 10 * n))  # block-diagonal: one BLAS product for all joints
        for joint in range(n):
            self._weights[7 * joint:7 * joint + 7, 10 * joint:10 * joint + 10] = coefficients[joint]
        self._sign = sign[:, None]
        self._joints = n

    def __call__(self, q: np.ndarray) -> np.ndarray:
        """Euler angles (..., n, 3) of quaternions (..., n, 4), joint n in the order given."""
        n = self._joints
        # components down the rows, quaternions along them: numpy is slow along short axes
        flat = q.reshape(-1, 4 * n).T
        entries = (self._weights @ (flat[self._first] * flat[self._second])).reshape(n, 7, -1)
        ik, jk, kk, ij, ii, kj, jj = (entries[:, e] for e in range(7))
        sign = self._sign
        out = np.empty((3, n, flat.shape[1]))
        out[1] = np.arcsin(np.minimum(np.maximum(sign * ik, -1.0), 1.0))
        out[0] = np.arctan2(-sign * jk, kk)
        out[2] = np.arctan2(-sign * ij, ii)
        locked = np.hypot(ii, ij) < 1e-9
        if locked.any():
            out[0][locked] = np.broadcast_to(np.arctan2(sign * kj, jj), locked.shape)[locked]
            out[2][locked] = 0.0
        return out.T.reshape(*q.shape[:-1], 3)


class EulerRateMap:
    """Euler-angle rates of nested hinges that give a wanted angular velocity (child frame).

    For R = R_a1(q1) R_a2(q2) R_a3(q3), the child-frame angular velocity is
    ``w = (R2 R3)^T a1 q1' + R3^T a2 q2' + a3 q3'``. In the joint's own axis basis
    ``(a1, a2, a3)`` (handedness ``s``: +1 for a cyclic order of x, y, z, else -1), turning by
    R3 gives ``u = R3 w`` with ``u1 = c2 q1'``, ``u2 = q2'`` and ``u3 = s sin(q2) q1' + q3'``,
    solved in closed form (a handful of array operations for any batch). It is singular only
    where the middle angle is +-90 degrees, which :data:`EULER_AXES` keeps away from on every
    shipped clip.
    """

    def __init__(self, axes: Sequence[str]) -> None:
        i, j, k, sign = _euler_indices(axes)
        # omega (..., n, 3) flattened, at these entries: each joint's components along its hinge
        # axes, outer first
        self._gather = (3 * np.arange(len(i))[:, None] + np.stack([i, j, k], axis=-1)).ravel()
        self._sign = sign

    def rates(self, angles: np.ndarray, omega: np.ndarray) -> np.ndarray:
        """``angles`` (..., n, 3) Euler angles, ``omega`` (..., n, 3) child-frame angular velocities."""
        w = omega.reshape(*omega.shape[:-2], -1)[..., self._gather].reshape(omega.shape)  # in the axis basis
        sin, cos = np.sin(angles[..., 1:]), np.cos(angles[..., 1:])
        s3 = self._sign * sin[..., 1]
        out = np.empty_like(w)
        out[..., 0] = (cos[..., 1] * w[..., 0] - s3 * w[..., 1]) / cos[..., 0]
        out[..., 1] = s3 * w[..., 0] + cos[..., 1] * w[..., 1]
        out[..., 2] = w[..., 2] - self._sign * sin[..., 0] * out[..., 0]
        return out


def wrap_angle(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


# ----------------------------------------------------------------------------- frame conversion


def dm_vec_to_mj(v: np.ndarray) -> np.ndarray:
    return np.stack([v[..., 0], -v[..., 2], v[..., 1]], axis=-1)


def dm_quat_to_mj(q: np.ndarray) -> np.ndarray:
    return quat_normalize(np.stack([q[..., 0], q[..., 1], -q[..., 3], q[..., 2]], axis=-1))


@dataclass(frozen=True)
class Pose:
    """Kinematic state in MuJoCo terms: root position, root quaternion, local joint rotations.

    ``joint_quats`` maps every joint in :data:`FRAME_JOINTS` to an array of quaternions
    (knees and elbows too, as rotations about :data:`HINGE_AXIS`).
    """

    root_pos: np.ndarray
    root_quat: np.ndarray
    joint_quats: dict[str, np.ndarray]
    hinge_angles: dict[str, np.ndarray]  # knees and elbows


def frames_to_pose(frames: np.ndarray) -> Pose:
    root_pos = dm_vec_to_mj(frames[:, 1:4])
    root_quat = dm_quat_to_mj(frames[:, 4:8])
    joint_quats: dict[str, np.ndarray] = {}
    hinge_angles: dict[str, np.ndarray] = {}
    col = 8
    for name, size in FRAME_JOINTS:
        if size == 4:
            joint_quats[name] = dm_quat_to_mj(frames[:, col:col + 4])
        else:
            hinge_angles[name] = frames[:, col].copy()
            half = frames[:, col:col + 1] / 2
            joint_quats[name] = np.concatenate([np.cos(half), np.sin(half) * HINGE_AXIS], axis=-1)
        col += size
    return Pose(root_pos, root_quat, joint_quats, hinge_angles)


def pose_to_qpos(pose: Pose) -> np.ndarray:
    """qpos rows (7 + 28): free root, then each joint's hinges in :data:`FRAME_JOINTS` order."""
    parts = [pose.root_pos, pose.root_quat]
    for name, size in FRAME_JOINTS:
        if size == 4:
            parts.append(quat_to_euler(pose.joint_quats[name], EULER_AXES[name]))
        else:
            parts.append(pose.hinge_angles[name][:, None])
    return np.concatenate(parts, axis=-1)


def qpos_joint_quats(qpos: np.ndarray) -> dict[str, np.ndarray]:
    """Local joint rotations from qpos rows (the inverse of :func:`pose_to_qpos`)."""
    out: dict[str, np.ndarray] = {}
    col = 7
    for name, size in FRAME_JOINTS:
        if size == 4:
            out[name] = euler_to_quat(qpos[..., col:col + 3], EULER_AXES[name])
            col += 3
        else:
            half = qpos[..., col:col + 1] / 2
            out[name] = np.concatenate([np.cos(half), np.sin(half) * HINGE_AXIS], axis=-1)
            col += 1
    return out


def qpos_velocity(qpos_a: np.ndarray, qpos_b: np.ndarray, dt: np.ndarray | float) -> np.ndarray:
    """qvel (6 + 28) that takes ``qpos_a`` to ``qpos_b`` in ``dt`` seconds.

    MuJoCo's free joint velocity is the world-frame linear velocity followed by the angular
    velocity in the *body* frame: q_b = q_a * exp(omega dt / 2), so omega = log(q_a^-1 q_b) / dt.
    """
    dt = np.asarray(dt, dtype=float)[..., None] if np.ndim(dt) else dt
    lin = (qpos_b[..., :3] - qpos_a[..., :3]) / dt
    ang = quat_to_rotvec(quat_mul(quat_conj(qpos_a[..., 3:7]), qpos_b[..., 3:7])) / dt
    joints = wrap_angle(qpos_b[..., 7:] - qpos_a[..., 7:]) / dt
    return np.concatenate([lin, ang, joints], axis=-1)


# ----------------------------------------------------------------------------- clips


def clip_dir() -> Path | None:
    try:
        import pybullet_data  # optional: the DeepMimic clips shipped with pybullet
    except ImportError:
        return None
    path = Path(pybullet_data.getDataPath()) / "data" / "motions"
    return path if path.is_dir() else None


def available_clips() -> list[str]:
    directory = clip_dir()
    if directory is None:
        return []
    return sorted(p.stem[len(CLIP_PREFIX):] for p in directory.glob(f"{CLIP_PREFIX}*.txt"))


def resolve_motion(motion: str | Path) -> Path:
    """A clip name (``walk``) or a path to a file in the DeepMimic format."""
    text = str(motion)
    path = Path(text).expanduser()
    if path.suffix or path.parent != Path(".") or path.exists():
        if not path.is_file():
            raise MotionError(f"motion file {path} does not exist")
        return path
    directory = clip_dir()
    if directory is None:
        raise MotionError(
            f"motion {text!r}: the humanoid clips ship with the pybullet package, which is not "
            "installed (pip install pybullet), or pass a path to a DeepMimic motion file")
    candidate = directory / f"{CLIP_PREFIX}{text}.txt"
    if not candidate.is_file():
        raise MotionError(f"unknown motion {text!r}; available clips: {', '.join(available_clips())}")
    return candidate


def parse_motion(text: str, source: str = "<motion>") -> tuple[bool, np.ndarray]:
    """Validate a DeepMimic motion JSON text; returns (loops, frames[n, 44])."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise MotionError(f"{source}: not valid JSON ({err.msg} at line {err.lineno})") from err
    if not isinstance(data, dict) or "Frames" not in data:
        raise MotionError(f"{source}: expected a JSON object with a 'Frames' list")
    loop = data.get("Loop", "none")
    if loop not in ("wrap", "none"):
        raise MotionError(f"{source}: 'Loop' must be 'wrap' or 'none', got {loop!r}")
    raw = data["Frames"]
    if not isinstance(raw, list) or len(raw) < 2:
        raise MotionError(f"{source}: 'Frames' must be a list of at least 2 frames")
    frames = np.empty((len(raw), FRAME_SIZE))
    for i, frame in enumerate(raw):
        if not isinstance(frame, list) or len(frame) != FRAME_SIZE:
            size = len(frame) if isinstance(frame, list) else type(frame).__name__
            raise MotionError(f"{source}: frame {i} must be a list of {FRAME_SIZE} numbers, got {size}")
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in frame):
            raise MotionError(f"{source}: frame {i} holds a value that is not a number")
        row = np.asarray(frame, dtype=float)
        if not np.all(np.isfinite(row)):
            raise MotionError(f"{source}: frame {i} holds a non-finite number")
        if row[0] < 0 or (i < len(raw) - 1 and row[0] <= 0):
            raise MotionError(f"{source}: frame {i} has duration {row[0]} (must be > 0)")
        col = 4
        for name, size in (("root", 4), *FRAME_JOINTS):
            if size == 4 and not 0.5 < np.linalg.norm(row[col:col + 4]) < 1.5:
                quat = row[col:col + 4].tolist()
                raise MotionError(f"{source}: frame {i}: {name} quaternion {quat} is not a rotation")
            col += size
        frames[i] = row
    return loop == "wrap", frames


ReferenceVelocity = Literal["quaternion", "lerped", "euler"]


class Clip:
    """A motion clip converted to the MuJoCo humanoid, sampled at any time.

    Between frames, rotations are slerped and positions and knee/elbow angles lerped. A looping
    clip repeats with the root shifted horizontally by the cycle's displacement; a non-looping
    clip holds its last pose (at rest) after it ends.

    Velocities (:meth:`qvel_at`) come from DeepMimic's frame velocities (``cKinTree::CalcVel``):
    at every frame the forward difference to the next one (root: world-frame angular velocity of
    ``q1 q0^-1``; 3-DOF joints: angular velocity of ``q0^-1 q1`` in the child's frame; positions
    and hinge angles: plain differences), the last frame repeating the one before. They are
    turned into MuJoCo's generalised velocities at the pose of time ``t`` (root angular velocity
    in the body frame, Euler-angle rates of each joint's three hinges). Three rules:

    - ``"quaternion"``: the frame velocity of the interval holding ``t``. That is exactly the
      velocity of the sampled pose (a slerp turns at a constant rate about a fixed axis), so a
      character moving along the reference scores a velocity term of 1 between frames.
    - ``"lerped"``: DeepMimic's ``cMotion::CalcFrameVel``, the frame velocities of the two frames
      around ``t`` lerped. This runs half a frame ahead of the pose: on ``run`` a character
      moving exactly along the reference scores a velocity term of 0.75 on average.
    - ``"euler"`` (``HumanoidMimic-v0``): differences of the qpos rows, Euler angles included,
      constant over each interval. The Euler angles of a slerp do not change linearly, so this
      is not the velocity of the sampled pose either (backflip: 0.96 on average, near 0 at times).
    """

    def __init__(self, motion: str | Path) -> None:
        self.path = resolve_motion(motion)
        stem = self.path.stem
        self.name = stem[len(CLIP_PREFIX):] if stem.startswith(CLIP_PREFIX) else stem
        self.loops, frames = parse_motion(self.path.read_text(encoding="utf-8"), str(self.path))
        self.times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
        self.duration = float(self.times[-1])
        self.pose = frames_to_pose(frames)
        self.qpos = pose_to_qpos(self.pose)
        self.num_frames = len(frames)
        displacement = self.pose.root_pos[-1] - self.pose.root_pos[0]
        self.cycle_offset = np.array([displacement[0], displacement[1], 0.0]) if self.loops else np.zeros(3)
        spans = np.diff(self.times)
        self.interval_qvel = qpos_velocity(self.qpos[:-1], self.qpos[1:], spans)
        # per interval: the change of every qpos entry but the root quaternion, and the root's
        # rotation vector (body frame) over the interval
        self._times_list = self.times.tolist()
        # stacked for sampling in one pass: root + 3-DOF joint rotations, hinge angles, qpos columns
        spherical = [name for name, size in FRAME_JOINTS if size == 4]
        self._quats = np.stack([self.pose.root_quat] + [self.pose.joint_quats[n] for n in spherical], axis=1)
        self._hinges = np.stack([self.pose.hinge_angles[n] for n, size in FRAME_JOINTS if size == 1], axis=1)
        self._decompose = EulerDecomposer([EULER_AXES[n] for n in spherical])
        sph_cols: list[int] = []
        hinge_cols: list[int] = []
        col = 7
        for _, size in FRAME_JOINTS:
            (sph_cols if size == 4 else hinge_cols).append(col)
            col += 3 if size == 4 else 1
        self._sph_cols = np.array(sph_cols)[:, None] + np.arange(3)
        self._hinge_cols = np.array(hinge_cols)
        self._frame_vel = self._deepmimic_frame_velocities(spans)
        self._euler_jacobian = EulerRateMap([EULER_AXES[n] for n in spherical])
        # per interval, all that sample() lerps or reads, so that one gather fetches it: the start
        # values and changes of the root position, hinge angles and frame velocities, and the
        # Euler-rule velocity; and the slerp constants of each rotation
        lerped = np.concatenate([self.qpos[:, :3], self._hinges, self._frame_vel], axis=1)
        width = lerped.shape[1]
        self._interval_rows = np.concatenate([lerped[:-1], lerped[1:] - lerped[:-1], self.interval_qvel], axis=1)
        self._interval_columns = {"start": slice(0, width), "change": slice(width, 2 * width),
                                  "euler": slice(2 * width, None)}
        self._spans = spans
        self._slerp = SlerpPairs.of(self._quats[:-1], self._quats[1:])

    def _deepmimic_frame_velocities(self, spans: np.ndarray) -> np.ndarray:
        """(frames, 3 + 3 + 3 x 8 + 4): root linear and world angular velocity, the 3-DOF joints'
        angular velocities in their child frames, the hinge rates; forward differences, the last
        frame repeating the one before (DeepMimic's ``cKinTree::CalcVel``)."""
        dt = spans[:, None]
        root_q = self._quats[:, 0]
        joint_q = self._quats[:, 1:]
        root_lin = (self.qpos[1:, :3] - self.qpos[:-1, :3]) / dt
        root_ang = quat_to_rotvec(quat_mul(root_q[1:], quat_conj(root_q[:-1]))) / dt
        joint_ang = quat_to_rotvec(quat_mul(quat_conj(joint_q[:-1]), joint_q[1:])) / dt[:, :, None]
        hinge = (self._hinges[1:] - self._hinges[:-1]) / dt
        rows = np.concatenate([root_lin, root_ang, joint_ang.reshape(len(dt), -1), hinge], axis=1)
        return np.concatenate([rows, rows[-1:]], axis=0)

    def _locate(self, t: float) -> tuple[int, int, float]:
        """(cycle, frame index i, fraction in [0, 1]) of clip time ``t``."""
        if self.loops:
            cycle = math.floor(t / self.duration)
            local = t - cycle * self.duration
        else:
            cycle, local = 0, min(max(t, 0.0), self.duration)
        i = min(max(bisect.bisect_right(self._times_list, local) - 1, 0), self.num_frames - 2)
        t0, t1 = self._times_list[i], self._times_list[i + 1]
        return cycle, i, min(max((local - t0) / (t1 - t0), 0.0), 1.0)

    def cycle(self, t: float) -> int:
        """How many full loops of the clip lie before time ``t`` (0 for a non-looping clip)."""
        return math.floor(t / self.duration) if self.loops else 0

    def phase(self, t: float) -> float:
        if self.loops:
            return float((t / self.duration) % 1.0)
        return float(min(max(t / self.duration, 0.0), 1.0))

    def ended(self, t: float) -> bool:
        return not self.loops and t >= self.duration

    def _locate_many(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`_locate` of every time in ``times``: cycles, frame indices, fractions."""
        if self.loops:
            cycle = np.floor(times / self.duration)
            local = times - cycle * self.duration
        else:
            cycle, local = np.zeros_like(times), np.minimum(np.maximum(times, 0.0), self.duration)
        i = np.minimum(np.maximum(np.searchsorted(self.times, local, side="right") - 1, 0), self.num_frames - 2)
        a = np.minimum(np.maximum((local - self.times[i]) / self._spans[i], 0.0), 1.0)
        return cycle, i, a

    def sample(self, times: np.ndarray, rule: ReferenceVelocity = "quaternion") -> tuple[np.ndarray, np.ndarray]:
        """Reference qpos (clip order: root 7, then the 28 hinges) and qvel (root 6, hinges 28) at
        every time in ``times``: positions and hinges lerped, rotations slerped; velocities by
        ``rule`` (see the class docstring), zero after a non-looping clip ends."""
        times = np.asarray(times, dtype=float)
        cycle, i, a = self._locate_many(times)
        n, col = len(times), a[:, None]
        rows = self._interval_rows[i]
        lo, step = self._interval_columns["start"], self._interval_columns["change"]
        lerped = rows[:, lo] + col * rows[:, step]  # root position, hinge angles, frame velocities
        qpos = np.empty((n, self.qpos.shape[1]))
        qpos[:, :3] = lerped[:, :3] + cycle[:, None] * self.cycle_offset
        quats = self._slerp.take(i).at(a[:, None, None])
        qpos[:, 3:7] = quats[:, 0]
        qpos[:, self._sph_cols] = self._decompose(quats[:, 1:])
        qpos[:, self._hinge_cols] = lerped[:, 3:7]
        if rule == "euler":
            qvel = rows[:, self._interval_columns["euler"]]
        elif rule in ("quaternion", "lerped"):
            vel = lerped[:, 7:] if rule == "lerped" else rows[:, lo][:, 7:]
            qvel = np.empty((n, self.interval_qvel.shape[1]))
            qvel[:, :3] = vel[:, :3]
            # MuJoCo's free joint takes its angular velocity in the body frame: R^T w
            qvel[:, 3:6] = np.matmul(vel[:, None, 3:6], quat_to_matrix(quats[:, 0]))[:, 0]
            qvel[:, self._sph_cols - 1] = self._euler_jacobian.rates(
                qpos[:, self._sph_cols], vel[:, 6:30].reshape(n, -1, 3))
            qvel[:, self._hinge_cols - 1] = vel[:, 30:]
        else:
            raise ValueError(f"reference velocity rule must be 'quaternion', 'lerped' or 'euler', got {rule!r}")
        if not self.loops:
            qvel = np.where((times >= self.duration)[:, None], 0.0, qvel)
        return qpos, qvel

    def qpos_at(self, t: float) -> np.ndarray:
        """Reference qpos (clip order) at time ``t`` (see :meth:`sample`)."""
        return self.sample(np.array([t]))[0][0]

    def qvel_at(self, t: float, rule: ReferenceVelocity = "quaternion") -> np.ndarray:
        """Reference qvel (clip order) at time ``t`` (see :meth:`sample`)."""
        return self.sample(np.array([t]), rule)[1][0]

    def joint_quats(self, t: float) -> dict[str, np.ndarray]:
        """Local joint rotations of the pose at time ``t``."""
        return qpos_joint_quats(self.qpos_at(t))
