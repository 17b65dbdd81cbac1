"""HumanoidMimic: a DeepMimic-style humanoid imitating a motion-capture clip in MuJoCo."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from envs.mimic import features
from envs.mimic.features import REWARD_TERMS
from envs.mimic.humanoid import (
    BODY_NAMES,
    CONTROL_HZ,
    FOOT_BODIES,
    JOINTS,
    PHYSICS_HZ,
    ROOT_WEIGHT,
    build_mjcf,
    hinge_names,
    joint_kind,
)
from envs.mimic.mocap import Clip, ReferenceVelocity, resolve_motion
from envs.mimic.reference import ReferenceTrack, kinematics
from envs.protocol import ActionKind

# MuJoCo resets the simulation (and counts one of these) when it becomes unstable.
_INSTABILITY_WARNINGS = tuple(int(w) for w in (
    mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL, mujoco.mjtWarning.mjWARN_BADQACC))

# DeepMimic's fall-contact bodies (a contact with the ground ends the episode), from the
# --fall_contact_bodies / --enable_char_contact_fall lines of its args/train_humanoid3d_<clip>_args.txt;
# the body indices there are ours (BODY_NAMES has DeepMimic's humanoid3d order).
_ALL_BUT_FEET = tuple(n for n in BODY_NAMES if n not in FOOT_BODIES)
DEEPMIMIC_FALL_BODIES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("backflip", "dance_a", "dance_b", "dance_spin", "jog", "jump", "kick", "punch", "run",
                     "spin", "spinkick", "walk", "zombie_walk"), _ALL_BUT_FEET),
    "cartwheel": tuple(n for n in _ALL_BUT_FEET if not n.endswith("wrist")),
    "crawl": ("root", "chest", "neck"),
    **dict.fromkeys(("roll", "getup_facedown", "getup_faceup"), ()),  # trained with contact falls disabled
}

_MODEL_CACHE: dict[int, mujoco.MjModel] = {}
_CLIP_CACHE: dict[tuple[str, int], Clip] = {}
_GROUNDED_CACHE: dict[tuple[int, int], frozenset[str]] = {}


def _load_clip(motion: str | Path) -> Clip:
    """Clips are read-only once built: envs on the same file (a rollout batch) share one."""
    path = resolve_motion(motion)
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _CLIP_CACHE:
        _CLIP_CACHE[key] = Clip(path)
    return _CLIP_CACHE[key]


def _model(physics_hz: int) -> mujoco.MjModel:
    if physics_hz not in _MODEL_CACHE:
        model = mujoco.MjModel.from_xml_string(build_mjcf())
        model.opt.timestep = 1.0 / physics_hz
        _MODEL_CACHE[physics_hz] = model
    return _MODEL_CACHE[physics_hz]


def _positions_velocities_contacts(m: mujoco.MjModel, d: mujoco.MjData) -> None:
    """What a step's reward, observation and fall test read, at the state ``mj_step`` left: a
    fraction of ``mj_forward``'s cost (no mass matrix, forces or constraint solve; the next
    ``mj_step`` computes those anyway)."""
    kinematics(m, d)
    mujoco.mj_collision(m, d)


def ended_in_fall(terminated: bool, info: dict[str, Any]) -> bool:
    """Whether an episode whose last step gave ``terminated`` and ``info`` ended in a fall (or a
    failed simulation). A terminal end of the clip (``clip_end="terminate"``) is a failure to a
    value function, not a fall to the reader of the metrics; records written before
    ``info["fallen"]`` existed count every termination."""
    return terminated and bool(info.get("fallen") or info.get("diverged") or not info.get("clip_ended"))


def step_features(envs: Sequence[HumanoidMimicEnv]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Observations ``(N, 224)``, rewards, reward terms ``(N, 5)`` and MPJPE (mm) of ``N`` envs of
    one kind at their current times (:func:`envs.mimic.features.observe_and_reward`): one env's
    step passes itself, :class:`envs.mimic.vector.HumanoidMimicVectorEnv` all its stepped copies."""
    first = envs[0]
    if len(envs) == 1:
        state, ref = first._state, first._track.rows(first._track.index(first._t))
    else:
        state = features.SimState(*map(np.concatenate, zip(*(env._state for env in envs), strict=True)))
        rows = [env._track.rows(env._track.index(env._t)) for env in envs]
        ref = features.ReferenceRows(*map(np.concatenate, zip(*rows, strict=True)))
    phase = np.array([env.clip.phase(env._t) for env in envs])
    return features.observe_and_reward(first._skeleton, first._reward_weights, first._obs_order, state, phase, ref)


class HumanoidMimicEnv(gym.Env):
    """
    ## Description
    A humanoid with the proportions of DeepMimic's ``humanoid3d`` character (15 bodies, 45 kg)
    imitates a motion-capture clip, as in Peng et al., *DeepMimic* (SIGGRAPH 2018). The policy
    sets proportional-derivative (PD) targets for the 28 actuated degrees of freedom at 30 Hz;
    MuJoCo integrates the physics at 300 Hz (``implicitfast``, 10 steps per action). That is
    fine enough for DeepMimic's stiff PD gains: the damping term is integrated implicitly and
    every hinge has a small armature, so uniform random actions run without instability, and
    the open-loop reference baseline stays up as long as at 600 Hz (0.98 s vs 1.03 s on walk,
    8 episodes each). The clips are DeepMimic's, shipped in the ``pybullet`` package
    (``motion="walk"``, ``"run"``, ``"backflip"``, ...), or any file in that format.

    ## Action Space
    ``Box(-1, 1, (28,), float32)``: one PD target per hinge, normalised to its range. The hinges,
    in order: chest (3), neck (3), right hip (3), right knee, right ankle (3), right shoulder (3),
    right elbow, then the same for the left side. A 3-DOF joint is three nested hinges (Euler
    angles, order in ``envs.mimic.mocap.EULER_AXES``); the outer two of each span [-pi, pi], the
    middle one [-pi/2, pi/2], knees [-pi, 0.5], elbows [-0.5, pi]. Actions outside [-1, 1] are
    clipped. Any array-like of 28 real numbers is accepted (a float or integer array, a list of
    floats); ``ValueError`` for another shape (``(2, 14)`` or ``(28, 1)`` are not flattened), for
    bool, complex, string or object values, and for NaN or infinity (a diverged policy).

    ## Observation Space
    ``Box(-inf, inf, (224,), float32)``; "heading frame" = the world frame turned about the vertical
    axis by the root's heading, centred on the root.

    | Index   | Observation                                                           | Unit  |
    |---------|-----------------------------------------------------------------------|-------|
    | 0       | phase of the clip, in [0, 1) (looping) or [0, 1] (non-looping)        | -     |
    | 1       | root height above the ground                                          | m     |
    | 2-43    | positions of the 14 other bodies relative to the root, heading frame  | m     |
    | 44-133  | rotations of the 15 bodies, heading frame: forward and up axes (6)    | -     |
    | 134-178 | linear velocities of the 15 body origins, heading frame               | m/s   |
    | 179-223 | angular velocities of the 15 bodies, heading frame                    | rad/s |

    Bodies in order: root, chest, neck, right hip, knee, ankle, shoulder, elbow, wrist, then the
    left ones. The phase lets a policy (and the ``reference`` scripted policy) know where it is
    in the clip.

    ## Rewards
    The imitation reward of DeepMimic's released code, ``sum_i w_i exp(-k_i e_i)`` (in [0, 1]),
    comparing the simulated character with the reference pose at the same time; each
    ``exp(-k_i e_i)`` is in ``info["reward_terms"]``:

    | Term           | w_i  | k_i | Error e_i                                                           |
    |----------------|------|-----|---------------------------------------------------------------------|
    | `pose`         | 0.5  | 2   | weighted sum of squared angles between local joint rotations (a)    |
    | `velocity`     | 0.05 | 0.1 | weighted sum of squared local angular velocity differences (a)      |
    | `end_effector` | 0.15 | 40  | mean squared distance of feet and hands (b)                         |
    | `root`         | 0.2  | 5   | pos^2 + 0.1 rot angle^2 + 0.01 lin vel^2 + 0.001 ang vel^2 (c)      |
    | `com`          | 0.1  | 10  | 0.1 x squared difference of centre-of-mass velocities               |

    (a) the root's world rotation and angular velocity count as a joint. (b) relative to the root
    in its heading frame, heights measured from the ground. (c) differences of the root's world
    position, rotation, linear and angular velocity.

    The reference velocities are DeepMimic's frame velocities, quaternion forward differences
    (``reference_velocity="quaternion"``, see :class:`envs.mimic.mocap.Clip`), taken for the
    interval at hand rather than lerped between frames as DeepMimic does: that makes them the
    velocity of the reference pose itself, so a character moving exactly along the reference
    scores a velocity term of at least 0.99 at every phase of every clip (with the lerp: 0.75 on
    average on ``run``; ``"lerped"`` gives DeepMimic's exact rule). The reference root follows the
    clip from the start of the episode; with ``sync_root`` (DeepMimic's ``sync_char_root_pos``)
    each new loop of a looping clip starts with the reference root moved horizontally onto the
    character's, so drift from earlier loops is not charged again. The step on which the
    character falls is rewarded 0 (``zero_fall_reward``, as DeepMimic's ``CalcReward``).

    Joint weights (normalised to sum 1): root 1, chest 0.5, neck 0.3, hips 0.5, knees 0.3,
    ankles 0.2, shoulders 0.3, elbows 0.2. Setting the simulator to the reference state gives
    every term exactly 1.

    ## Starting State
    Reference state initialisation: the character starts in the reference pose and velocity at a
    uniformly random phase of the clip (``reset(options={"phase": p})`` pins it; non-looping clips
    draw from [0, 1)).

    ## Episode End
    - Termination (a fall, ``info["fallen"]``, reward 0 on that step): one of the clip's fall-contact
      bodies touches the ground, or the root falls below ``min_root_height``. The fall-contact
      bodies (``fall_bodies="deepmimic"``) are those of DeepMimic's args file for the clip:

      | Clips                                               | Bodies whose ground contact is a fall |
      |-----------------------------------------------------|---------------------------------------|
      | walk, run, backflip, jump, kick, punch, spin, spinkick, dance_a, dance_b | all but the feet |
      | cartwheel                                           | all but the feet and the hands        |
      | crawl                                               | root, chest, neck                     |
      | roll, getup_facedown, getup_faceup                  | none (contact falls disabled)         |

      A clip file of another name, and ``fall_bodies="auto"``: all but the feet and the bodies the
      clip itself brings within 2.5 cm of the ground in 3 or more frames.
    - Termination: the simulation becomes unstable (MuJoCo resets it; that step has reward 0 and
      ``info["diverged"]``).
    - Termination: a non-looping clip ends (``clip_end="terminate"``: DeepMimic counts the end of
      the motion as a failure, so a value function sees nothing after it); ``clip_end="truncate"``
      makes it a truncation instead. Either way that step has ``info["clip_ended"]``, and the
      evaluation's ``fall_rate`` does not count it as a fall.
    - Truncation: 20 s (600 steps) through the registered time limit.
    - ``step`` after the episode has ended (terminated, or truncated at the end of a non-looping
      clip) raises ``RuntimeError``: call ``reset()``. Gymnasium's vector envs and SB3 reset
      finished envs themselves.

    ## Info
    ``reward_terms``; ``fallen`` (present and true on the step of a fall); ``mpjpe_mm`` (mean distance of the 15 body origins from the reference's, world
    frame, this step); ``episode_mpjpe_mm`` (its mean over the episode so far); ``time_alive``
    (simulated seconds since reset); ``phase``; ``clip_time``.

    ## Vector env
    ``gym.make_vec("HumanoidMimic-v1", num_envs=N)`` gives :class:`envs.mimic.vector.HumanoidMimicVectorEnv`:
    the same episodes as ``vectorization_mode="sync"``, with the rewards and observations of all
    ``N`` copies computed in one compiled call (:mod:`envs.mimic.features`) and no wrappers
    around each copy.

    ## Stable-Baselines3
    The spaces are ``Box``es, so SB3 and sb3-contrib algorithms (PPO, SAC, TRPO, ...) train on it
    directly; it passes their ``check_env``.

    ## Scripted policies
    ``reference`` (``python -m agents.evaluate --env HumanoidMimic-v1 --policy reference``): the
    open-loop baseline, PD targets = the reference pose at the clip time it reads from the phase
    in the observation (so one policy object serves any number of envs). It falls after about a
    second: PD tracking without feedback cannot balance.

    ## Arguments
    | Argument            | Default  | Description                                                           |
    |---------------------|----------|-----------------------------------------------------------------------|
    | `motion`            | `"walk"` | clip name (see ``envs.mimic.mocap.available_clips()``) or a path      |
    | `render_mode`       | `None`   | `"rgb_array"`: frames from a camera tracking the character            |
    | `width`, `height`   | 480, 360 | frame size                                                            |
    | `ghost`             | `True`   | also draw the reference pose, translucent                             |
    | `physics_hz`        | 300      | physics steps per second (a multiple of 30)                           |
    | `early_termination` | `True`   | end episodes on falls (contact or low root)                           |
    | `min_root_height`   | `None`   | fall threshold (m); default half the clip's lowest root height        |
    | `sync_root`         | `True`   | each loop of a looping clip starts with the reference root on the character's (horizontally) |
    | `reference_velocity`| `"quaternion"` | DeepMimic's frame velocities of the current interval; `"lerped"`: lerped between frames as DeepMimic's CalcFrameVel; `"euler"`: v0's Euler-angle differences (see ``envs.mimic.mocap.Clip``) |
    | `zero_fall_reward`  | `True`   | reward 0 on the step of a fall                                        |
    | `fall_bodies`       | `"deepmimic"` | fall-contact bodies: DeepMimic's per clip, `"auto"`, or a list of body names (`[]`: none) |
    | `clip_end`          | `"terminate"` | the end of a non-looping clip: `"terminate"` (DeepMimic) or `"truncate"` (v0) |

    ## Version History
    - v1: DeepMimic's episode rules: per-loop root re-sync, quaternion reference velocities, reward 0
      on the fall step, DeepMimic's fall-contact bodies per clip, the end of a non-looping clip is a
      termination.
    - v0: the same reward terms, weights and scales; reference velocities from Euler-angle
      differences, no re-sync, the fall step rewarded, fall contacts from the clip's own ground
      contacts (``fall_bodies="auto"``), a non-looping clip truncated at its end (the v0 ids pass these arguments).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}  # noqa: RUF012  (an instance attribute of gymnasium.Env)
    action_kind: ClassVar[ActionKind] = "box"  # envs.protocol: agents choose the policy by it
    metrics_key: ClassVar[str] = "mimic"  # where evaluation summaries put summarize_episodes

    def __init__(
        self,
        motion: str | Path = "walk",
        render_mode: str | None = None,
        width: int = 480,
        height: int = 360,
        ghost: bool = True,
        physics_hz: int = PHYSICS_HZ,
        early_termination: bool = True,
        min_root_height: float | None = None,
        sync_root: bool = True,
        reference_velocity: ReferenceVelocity = "quaternion",
        zero_fall_reward: bool = True,
        fall_bodies: str | Sequence[str] = "deepmimic",
        clip_end: Literal["terminate", "truncate"] = "terminate",
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if physics_hz % CONTROL_HZ or physics_hz <= 0:
            raise ValueError(f"physics_hz must be a positive multiple of {CONTROL_HZ}, got {physics_hz}")
        if reference_velocity not in ("quaternion", "lerped", "euler"):
            raise ValueError(f"reference_velocity must be 'quaternion', 'lerped' or 'euler', "
                             f"got {reference_velocity!r}")
        if clip_end not in ("terminate", "truncate"):
            raise ValueError(f"clip_end must be 'terminate' or 'truncate', got {clip_end!r}")
        self.clip = _load_clip(motion)
        self.sync_root, self.reference_velocity = bool(sync_root), reference_velocity
        self.zero_fall_reward, self.clip_end = bool(zero_fall_reward), clip_end
        self.render_mode = render_mode
        self.width, self.height, self.ghost = width, height, ghost
        self.early_termination = early_termination
        self.model = _model(physics_hz)
        self.data = mujoco.MjData(self.model)
        self._ref_data = mujoco.MjData(self.model)  # read through ref_data, brought up to date then
        self._ref_data_time: tuple[float, float, float] | None = None
        self.n_substeps = physics_hz // CONTROL_HZ
        self.dt = 1.0 / CONTROL_HZ

        m = self.model
        names = hinge_names()
        joint_ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n) for n in names]
        self._qadr = np.array([m.jnt_qposadr[j] for j in joint_ids])  # clip hinge order -> model qpos
        self._dadr = np.array([m.jnt_dofadr[j] for j in joint_ids])
        act_joint = m.actuator_trnid[:, 0]
        if not np.array_equal(act_joint, joint_ids):
            raise RuntimeError("actuators are not in clip hinge order")
        low, high = m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1]
        self._ctrl_mid, self._ctrl_half = (high + low) / 2, (high - low) / 2

        self._track = ReferenceTrack(m, self.clip, reference_velocity, self.dt, self._qadr, self._dadr)
        self._skeleton = skeleton = self._track.skeleton
        self._root = skeleton.root
        self._bind_data_views()
        # DeepMimic's joint weights in model body order; the welded wrists have no joint: weight 0
        weights = np.array([0.0 if n.endswith("wrist") else ROOT_WEIGHT if n == "root" else JOINTS[joint_kind(n)].weight
                            for n in skeleton.names])
        self._reward_weights = features.RewardWeights(weights / weights.sum())
        self._obs_order = features.observation_order(skeleton.order)

        self.fall_contact_bodies = self._resolve_fall_bodies(fall_bodies, physics_hz)
        fall_ids = {mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, n) for n in self.fall_contact_bodies}
        floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        self._fall_geom_list = [bool(g != floor and m.geom_bodyid[g] in fall_ids) for g in range(m.ngeom)]
        lowest_root = float(self.clip.qpos[:, 2].min())
        self.min_root_height = 0.5 * lowest_root if min_root_height is None else float(min_root_height)

        self.action_space = spaces.Box(-1.0, 1.0, (len(names),), np.float32)
        self._action_shape = self.action_space.shape
        self.observation_space = spaces.Box(-np.inf, np.inf, (224,), np.float32)

        self._t = 0.0
        self._t0 = 0.0
        self._cycle = 0
        self._mpjpe_sum = 0.0
        self._steps = 0
        self._episode: Literal["not started", "running", "ended"] = "not started"
        self._renderer: mujoco.Renderer | None = None

    # Views of this env's MjData arrays, made once: MuJoCo never moves them, and a view made per
    # step costs more than the work on it. A copy or unpickled env gets views of its own data.
    _DATA_VIEWS = ("_state", "_controls", "_warning_counts")

    def _bind_data_views(self) -> None:
        d = self.data
        self._state = features.sim_state(d, self._root)
        self._controls = d.ctrl
        self._warning_counts = d.warning.number

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._DATA_VIEWS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind_data_views()

    # ------------------------------------------------------------------ reference

    def _resolve_fall_bodies(self, fall_bodies: str | Sequence[str], physics_hz: int) -> tuple[str, ...]:
        if isinstance(fall_bodies, str):
            if fall_bodies == "deepmimic" and self.clip.name in DEEPMIMIC_FALL_BODIES:
                return DEEPMIMIC_FALL_BODIES[self.clip.name]
            if fall_bodies not in ("deepmimic", "auto"):
                raise ValueError(f"fall_bodies must be 'deepmimic', 'auto' or a list of body names, "
                                 f"got {fall_bodies!r}")
            # 'auto', and clips DeepMimic has no args file for: every body but the feet and those
            # the clip itself brings to the ground
            key = (id(self.clip), physics_hz)  # cached clips live as long as the process
            if key not in _GROUNDED_CACHE:
                _GROUNDED_CACHE[key] = frozenset(self._bodies_reference_grounds())
            allowed = set(FOOT_BODIES) | _GROUNDED_CACHE[key]
            return tuple(n for n in BODY_NAMES if n not in allowed)
        names = tuple(fall_bodies)
        unknown = sorted(set(names) - set(BODY_NAMES))
        if unknown:
            raise ValueError(f"fall_bodies: unknown bodies {unknown}; bodies: {', '.join(BODY_NAMES)}")
        return tuple(n for n in BODY_NAMES if n in names)

    def _bodies_reference_grounds(self, clearance: float = 0.025, min_frames: int = 3) -> set[str]:
        """Bodies that the clip itself brings to the ground (within ``clearance`` metres in at
        least ``min_frames`` frames): hands in ``cartwheel``, knees in ``crawl``. A single-frame
        graze (mocap noise, e.g. a knee in ``run``) does not count."""
        m, d = self.model, self._ref_data  # scratch: __init__ runs this before any reference time
        floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        geoms = [g for g in range(m.ngeom) if g != floor]
        counts = dict.fromkeys(geoms, 0)
        for qpos in self.clip.qpos:
            self._set_clip_state(d, qpos, np.zeros(m.nv))
            mujoco.mj_kinematics(m, d)
            for g in geoms:
                if mujoco.mj_geomDistance(m, d, g, floor, clearance, None) < clearance:
                    counts[g] += 1
        return {m.body(m.geom_bodyid[g]).name for g, n in counts.items() if n >= min_frames}

    def _set_clip_state(self, d: mujoco.MjData, clip_qpos: np.ndarray, clip_qvel: np.ndarray) -> None:
        d.qpos[:7] = clip_qpos[:7]
        d.qpos[self._qadr] = clip_qpos[7:]
        d.qvel[:6] = clip_qvel[:6]
        d.qvel[self._dadr] = clip_qvel[6:]

    def reference_qpos(self, t: float) -> np.ndarray:
        """Reference qpos at clip time ``t`` in clip order (root 7, then the 28 hinges)."""
        return self.clip.qpos_at(t)

    @property
    def _ref_shift(self) -> np.ndarray:
        """The horizontal move of the reference root since reset (``sync_root``)."""
        return self._track.root_shift

    def _reference_state(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """The reference's qpos and qvel at time ``t`` in MuJoCo's order, root shift included."""
        qpos, qvel = self._track.model_state([t])
        qpos[0, :2] += self._ref_shift
        return qpos[0], qvel[0]

    @property
    def ref_data(self) -> mujoco.MjData:
        """The reference character at the current time (kinematics and velocities; for rendering and
        inspection: the reward reads :class:`~envs.mimic.reference.ReferenceTrack` instead)."""
        key = (self._t, float(self._ref_shift[0]), float(self._ref_shift[1]))
        if key != self._ref_data_time:
            m, d = self.model, self._ref_data
            d.qpos[:], d.qvel[:] = self._reference_state(self._t)
            kinematics(m, d)
            self._ref_data_time = key
        return self._ref_data

    def set_state_to_reference(self, t: float) -> None:
        """Put the simulated character exactly in the reference state at clip time ``t``."""
        self._t = float(t)
        self._cycle = self.clip.cycle(self._t)  # the loop of the clip the reference root was last synced in
        self._track.shift_root(np.zeros(2))
        j = self._track.index(self._t)  # the episode's first batch of reference times starts here
        self.data.qpos[:], self.data.qvel[:] = self._track.qpos[j], self._track.qvel[j]
        mujoco.mj_forward(self.model, self.data)
        mujoco.mj_subtreeVel(self.model, self.data)  # mj_forward leaves it stale unless a sensor needs it

    # ------------------------------------------------------------------ features

    def _reward(self) -> tuple[float, dict[str, float], float]:
        """DeepMimic's imitation reward of the simulated character against the reference at the
        current time, its terms, and the MPJPE (mm) (:func:`step_features` of this env alone)."""
        _, rewards, terms, mpjpe = step_features([self])
        return float(rewards[0]), dict(zip(REWARD_TERMS, terms[0].tolist(), strict=True)), float(mpjpe[0])

    def _obs(self) -> np.ndarray:
        """The observation (table in the class docstring)."""
        return features.observations(self._obs_order, self._state, np.array([self.clip.phase(self._t)]))[0]

    # ------------------------------------------------------------------ gym API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"phase"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; known: phase")
        if options.get("phase") is not None:
            phase = float(options["phase"])
            if not 0.0 <= phase <= 1.0:
                raise ValueError(f"reset option phase must be in [0, 1], got {phase}")
        else:
            phase = float(self.np_random.uniform(0.0, 1.0))
        mujoco.mj_resetData(self.model, self.data)
        self._track.restart()
        self._t0 = phase * self.clip.duration
        self.set_state_to_reference(self._t0)
        self._mpjpe_sum, self._steps = 0.0, 0
        self._episode = "running"
        return self._obs(), {"phase": self.clip.phase(self._t), "clip_time": self._t, "time_alive": 0.0}

    def action_to_targets(self, action: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """PD targets (float64) of actions in [-1, 1] (clipped first), written to ``out`` if given."""
        targets = np.maximum(action, -1.0, out=out, dtype=np.float64)  # (np.clip's dispatch costs more than the work)
        np.minimum(targets, 1.0, out=targets)
        targets *= self._ctrl_half
        targets += self._ctrl_mid
        return targets

    def targets_to_action(self, targets: np.ndarray) -> np.ndarray:
        return np.clip((targets - self._ctrl_mid) / self._ctrl_half, -1.0, 1.0).astype(np.float32)

    def _checked_action(self, action: Any) -> np.ndarray:
        a = np.asarray(action)
        if a.shape != self._action_shape:
            # no silent flattening: a (2, 14) batch or a transposed column is a caller's bug
            raise ValueError(f"action must have shape {self.action_space.shape} (one PD target per hinge), "
                             f"got {a.shape}")
        if a.dtype.kind not in "fiu":
            raise ValueError(f"action must hold real numbers (a float or integer dtype), got dtype {a.dtype}")
        # (cheaper than isfinite().all(): NaN and inf survive a sum; in float64 a float32 action's
        # cannot overflow)
        if not math.isfinite(a.sum(dtype=np.float64)):
            bad = np.flatnonzero(~np.isfinite(a)).tolist()
            if bad:  # else only the sum overflowed: huge but real, clipped like any other
                raise ValueError(f"action holds NaN or infinity at indices {bad}; the policy diverged")
        return a

    def step(self, action):
        if self._episode == "not started":
            raise RuntimeError("call reset() before step()")
        if self._episode == "ended":
            raise RuntimeError("the episode has ended; call reset() to start a new one")
        diverged = self._advance(self._checked_action(action))
        obs, rewards, terms, mpjpe = step_features([self])
        reward, terminated, truncated, info = self._conclude(float(rewards[0]), terms[0], float(mpjpe[0]), diverged)
        return obs[0], reward, terminated, truncated, info

    def _advance(self, a: np.ndarray) -> bool:
        """The first half of a step of a running episode (before the reward), given a checked action
        (:meth:`_checked_action`): run the physics, bring positions, velocities and contacts up to
        date, re-sync the reference root on a new loop. Returns whether the simulation diverged
        (MuJoCo reset it; the reference state replaces it)."""
        m, d = self.model, self.data
        self.action_to_targets(a, out=self._controls)
        warnings = self._warning_counts
        bad_before = sum(int(warnings[w]) for w in _INSTABILITY_WARNINGS)  # (Python ints: cheaper than numpy here)
        mujoco.mj_step(m, d, self.n_substeps)
        # MuJoCo checks the state each substep starts from; the last one's end, checked the same way
        mujoco.mj_checkPos(m, d)
        mujoco.mj_checkVel(m, d)
        self._t += self.dt
        diverged = sum(int(warnings[w]) for w in _INSTABILITY_WARNINGS) > bad_before
        if diverged:
            # MuJoCo has already reset the state; keep the observation meaningful and finite
            d.qpos[:], d.qvel[:] = self._reference_state(self._t)
        _positions_velocities_contacts(m, d)
        if self.sync_root and self.clip.cycle(self._t) > self._cycle:
            # DeepMimic (sync_char_root_pos): a new loop of the clip starts where the character is
            self._cycle = self.clip.cycle(self._t)
            j = self._track.index(self._t)  # (first: it may compute a new batch of rows)
            self._track.shift_root(d.qpos[:2] - self._track.qpos[j, :2])
        return bool(diverged)

    def _conclude(self, reward: float, term_values: np.ndarray, mpjpe: float, diverged: bool,
                  ) -> tuple[float, bool, bool, dict[str, Any]]:
        """The second half of a step, given its reward, reward terms (:data:`REWARD_TERMS` order)
        and MPJPE (:func:`step_features`): the episode's end and the info dict."""
        terms = dict(zip(REWARD_TERMS, term_values.tolist(), strict=True))
        fallen = not diverged and self.early_termination and self._fallen()
        if diverged or (fallen and self.zero_fall_reward):  # no reward for the step that fails
            reward, terms = 0.0, dict.fromkeys(terms, 0.0)
        if diverged:  # the simulation failed: no MPJPE to average
            mpjpe = self._mpjpe_sum / self._steps if self._steps else 0.0
        else:
            self._steps += 1
            self._mpjpe_sum += mpjpe
        clip_over = self.clip.ended(self._t)
        terminated = diverged or fallen or (clip_over and self.clip_end == "terminate")
        truncated = clip_over and self.clip_end == "truncate"
        info: dict[str, Any] = {
            "reward_terms": terms,
            "mpjpe_mm": mpjpe,
            "episode_mpjpe_mm": self._mpjpe_sum / self._steps if self._steps else mpjpe,
            "time_alive": self._t - self._t0,
            "phase": self.clip.phase(self._t),
            "clip_time": self._t,
        }
        if diverged:
            info["diverged"] = True
        if fallen:
            info["fallen"] = True
        if clip_over:
            info["clip_ended"] = True
        if terminated or truncated:
            self._episode = "ended"
        return reward, terminated, truncated, info

    def _fallen(self) -> bool:
        d = self.data
        if self._state.xpos[0, self._root, 2] < self.min_root_height:
            return True
        if d.ncon == 0:
            return False
        falls = self._fall_geom_list  # (a few contacts: Python lists beat numpy's fancy indexing here)
        return any(falls[a] or falls[b] for a, b in d.contact.geom[: d.ncon].tolist())

    # ------------------------------------------------------------------ rendering

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.render_frame(ghost=self.ghost)

    def render_frame(self, ghost: bool = False, camera: str = "track") -> np.ndarray:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.height, self.width)
            flags = self._renderer.scene.flags
            flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
            self._scene_option = mujoco.MjvOption()
        r = self._renderer
        r.update_scene(self.data, camera=camera, scene_option=self._scene_option)
        if ghost:
            scene = r.scene
            first = scene.ngeom
            mujoco.mjv_addGeoms(self.model, self.ref_data, self._scene_option, mujoco.MjvPerturb(),
                                mujoco.mjtCatBit.mjCAT_DYNAMIC, scene)
            for i in range(first, scene.ngeom):
                scene.geoms[i].rgba[:] = (0.3, 0.55, 0.95, 0.35)
        return r.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ------------------------------------------------------------------ capabilities agents use (envs.protocol)

    @staticmethod
    def summarize_episodes(episodes: Sequence[Any]) -> dict[str, Any]:
        """Mean time alive (s), reward per step (pooled over all steps) and MPJPE (mean of episodes)."""
        if not episodes:
            return {"mean_time_alive": 0.0, "mean_reward_per_step": 0.0, "mpjpe_mm": 0.0}
        alive = [float(e.info.get("time_alive", 0.0)) for e in episodes]
        mpjpe = [float(e.info.get("episode_mpjpe_mm", e.info.get("mpjpe_mm", 0.0))) for e in episodes]
        steps = sum(e.length for e in episodes)
        return {
            "mean_time_alive": float(np.mean(alive)),
            "mean_reward_per_step": float(sum(e.return_ for e in episodes) / max(steps, 1)),
            "mpjpe_mm": float(np.mean(mpjpe)),
            "fall_rate": float(np.mean([ended_in_fall(e.terminated, e.info) for e in episodes])),
        }

    scripted_policies: ClassVar[dict[str, Any]] = {}


class ReferencePolicy:
    """Open-loop baseline: the PD targets are the reference pose at the current clip time.

    The time is decoded from the phase (observation index 0), so one policy object serves any
    number of envs on the same clip; it keeps no reference to an env.
    """

    def __init__(self, env: HumanoidMimicEnv, seed: int | None = None) -> None:
        self.clip = env.clip
        self._mid, self._half = env._ctrl_mid.copy(), env._ctrl_half.copy()

    def targets(self, phase: float) -> np.ndarray:
        return self.clip.qpos_at(float(phase) * self.clip.duration)[7:]

    def act(
        self, obs_batch: Sequence[Any], deterministic: bool = False
    ) -> tuple[list[np.ndarray], np.ndarray]:
        actions = [
            np.clip((self.targets(np.asarray(o)[0]) - self._mid) / self._half, -1.0, 1.0).astype(np.float32)
            for o in obs_batch
        ]
        return actions, np.zeros(len(actions))

    def log_prob(self, obs_batch: Sequence[Any], actions: Sequence[Any]) -> np.ndarray:
        raise NotImplementedError("the reference policy is deterministic; it has no log-probability")

    def save(self, directory: str | Path) -> None:
        raise NotImplementedError("scripted policies are not saved; name them with --policy reference")


HumanoidMimicEnv.scripted_policies = {"reference": ReferencePolicy}
