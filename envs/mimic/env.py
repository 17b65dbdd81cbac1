"""HumanoidMimic: a DeepMimic-style humanoid imitating a motion-capture clip in MuJoCo."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from envs.mimic.humanoid import (
    BODY_NAMES,
    CONTROL_HZ,
    END_EFFECTORS,
    FOOT_BODIES,
    JOINTS,
    PHYSICS_HZ,
    ROOT_WEIGHT,
    build_mjcf,
    hinge_names,
    joint_kind,
)
from envs.mimic.mocap import Clip, quat_angle, quat_conj, quat_mul

# DeepMimic's imitation reward (released code): term -> (weight, error scale).
REWARD_TERMS: dict[str, tuple[float, float]] = {
    "pose": (0.5, 2.0),
    "velocity": (0.05, 0.1),
    "end_effector": (0.15, 40.0),
    "root": (0.2, 5.0),
    "com": (0.1, 10.0),
}

_MODEL_CACHE: dict[int, mujoco.MjModel] = {}


def _model(physics_hz: int) -> mujoco.MjModel:
    if physics_hz not in _MODEL_CACHE:
        model = mujoco.MjModel.from_xml_string(build_mjcf())
        model.opt.timestep = 1.0 / physics_hz
        _MODEL_CACHE[physics_hz] = model
    return _MODEL_CACHE[physics_hz]


class HumanoidMimicEnv(gym.Env):
    """
    ## Description
    A humanoid with the proportions of DeepMimic's ``humanoid3d`` character (15 bodies, 45 kg)
    imitates a motion-capture clip, as in Peng et al., *DeepMimic* (SIGGRAPH 2018). The policy
    sets proportional-derivative (PD) targets for the 28 actuated degrees of freedom at 30 Hz;
    MuJoCo integrates the physics at 300 Hz (``implicitfast``, 10 steps per action), which keeps
    DeepMimic's stiff PD gains stable. The clips are DeepMimic's, shipped in the ``pybullet``
    package (``motion="walk"``, ``"run"``, ``"backflip"``, ...) or any file in that format.

    ## Action Space
    ``Box(-1, 1, (28,), float32)``: one PD target per hinge, normalised to its range. The hinges,
    in order: chest (3), neck (3), right hip (3), right knee, right ankle (3), right shoulder (3),
    right elbow, then the same for the left side. A 3-DOF joint is three nested hinges (Euler
    angles, order in ``envs.mimic.mocap.EULER_AXES``); the outer two of each span [-pi, pi], the
    middle one [-pi/2, pi/2], knees [-pi, 0.5], elbows [-0.5, pi]. Actions outside [-1, 1] are
    clipped; an action holding NaN or infinity raises ``ValueError``.

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

    Joint weights (normalised to sum 1): root 1, chest 0.5, neck 0.3, hips 0.5, knees 0.3,
    ankles 0.2, shoulders 0.3, elbows 0.2. Setting the simulator to the reference state gives
    every term exactly 1.

    ## Starting State
    Reference state initialisation: the character starts in the reference pose and velocity at a
    uniformly random phase of the clip (``reset(options={"phase": p})`` pins it; non-looping clips
    draw from [0, 1)).

    ## Episode End
    - Termination: a body other than the feet touches the ground (bodies the reference clip itself
      brings within 2.5 cm of the ground in 3 or more frames, e.g. hands in ``cartwheel``, are
      allowed too), the root falls below
      ``min_root_height``, or the simulation diverges.
    - Truncation: 20 s (600 steps) through the registered time limit; a non-looping clip also
      truncates when it ends.

    ## Info
    ``reward_terms``; ``mpjpe_mm`` (mean distance of the 15 body origins from the reference's, world
    frame, this step); ``episode_mpjpe_mm`` (its mean over the episode so far); ``time_alive``
    (simulated seconds since reset); ``phase``; ``clip_time``.

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
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}

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
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if physics_hz % CONTROL_HZ or physics_hz <= 0:
            raise ValueError(f"physics_hz must be a positive multiple of {CONTROL_HZ}, got {physics_hz}")
        self.clip = Clip(motion)
        self.render_mode = render_mode
        self.width, self.height, self.ghost = width, height, ghost
        self.early_termination = early_termination
        self.model = _model(physics_hz)
        self.data = mujoco.MjData(self.model)
        self.ref_data = mujoco.MjData(self.model)
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

        self._body = np.array([mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, n) for n in BODY_NAMES])
        self._root = self._body[0]
        # Jointed bodies for the pose and velocity terms (the wrists are welded: weight 0).
        jointed = [n for n in BODY_NAMES if not n.endswith("wrist")]
        self._jointed = np.array([BODY_NAMES.index(n) for n in jointed])
        self._jointed_parent = np.array([m.body_parentid[self._body[i]] for i in self._jointed])
        weights = np.array([ROOT_WEIGHT if n == "root" else JOINTS[joint_kind(n)].weight for n in jointed])
        self._joint_w = weights / weights.sum()
        self._ee = np.array([BODY_NAMES.index(n) for n in END_EFFECTORS])

        self._allowed_bodies = set(FOOT_BODIES) | self._bodies_reference_grounds()
        allowed_ids = {mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, n) for n in self._allowed_bodies}
        floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        self._fall_geom = np.array(
            [g != floor and m.geom_bodyid[g] not in allowed_ids for g in range(m.ngeom)], dtype=bool)
        lowest_root = float(self.clip.qpos[:, 2].min())
        self.min_root_height = 0.5 * lowest_root if min_root_height is None else float(min_root_height)

        self.action_space = spaces.Box(-1.0, 1.0, (len(names),), np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (224,), np.float32)

        self._t = 0.0
        self._t0 = 0.0
        self._mpjpe_sum = 0.0
        self._steps = 0
        self._renderer: mujoco.Renderer | None = None

    # ------------------------------------------------------------------ reference

    def _bodies_reference_grounds(self, clearance: float = 0.025, min_frames: int = 3) -> set[str]:
        """Bodies that the clip itself brings to the ground (within ``clearance`` metres in at
        least ``min_frames`` frames): hands in ``cartwheel``, knees in ``crawl``. A single-frame
        graze (mocap noise, e.g. a knee in ``run``) does not count."""
        m, d = self.model, self.ref_data
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

    def _update_reference(self, t: float) -> None:
        d = self.ref_data
        self._set_clip_state(d, self.clip.qpos_at(t), self.clip.qvel_at(t))
        self._kinematics(d)

    def _kinematics(self, d: mujoco.MjData) -> None:
        m = self.model
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        mujoco.mj_comVel(m, d)
        mujoco.mj_subtreeVel(m, d)

    def set_state_to_reference(self, t: float) -> None:
        """Put the simulated character exactly in the reference state at clip time ``t``."""
        self._t = float(t)
        self._set_clip_state(self.data, self.clip.qpos_at(t), self.clip.qvel_at(t))
        mujoco.mj_forward(self.model, self.data)
        mujoco.mj_subtreeVel(self.model, self.data)  # mj_forward leaves it stale unless a sensor needs it
        self._update_reference(t)

    # ------------------------------------------------------------------ features

    def _heading_inverse(self, d: mujoco.MjData) -> np.ndarray:
        r = d.xmat[self._root].reshape(3, 3)
        yaw = np.arctan2(r[1, 0], r[0, 0])
        c, s = np.cos(yaw), np.sin(yaw)
        return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])

    def _features(self, d: mujoco.MjData) -> dict[str, np.ndarray]:
        b = self._body
        xquat = d.xquat[b]
        ang_world = d.cvel[b, :3]
        jb = b[self._jointed]
        parent_quat = d.xquat[self._jointed_parent]
        local_quat = quat_mul(quat_conj(parent_quat), d.xquat[jb])
        local_quat[0] = xquat[0]  # the root: its world rotation
        rel_ang = d.cvel[jb, :3] - d.cvel[self._jointed_parent, :3]
        local_ang = np.einsum("nji,nj->ni", d.xmat[jb].reshape(-1, 3, 3), rel_ang)
        local_ang[0] = ang_world[0]
        return {
            "xpos": d.xpos[b].copy(),
            "local_quat": local_quat,
            "local_ang": local_ang,
            "root_vel": d.qvel[:3].copy(),
            "com_vel": d.subtree_linvel[self._root].copy(),
        }

    def _reward(self) -> tuple[float, dict[str, float], float]:
        sim, ref = self._features(self.data), self._features(self.ref_data)
        w = self._joint_w
        rot_diff = quat_angle(quat_mul(quat_conj(sim["local_quat"]), ref["local_quat"]))
        pose_err = float(np.sum(w * rot_diff**2))
        vel_err = float(np.sum(w * np.sum((sim["local_ang"] - ref["local_ang"]) ** 2, axis=1)))

        def ee_rel(f: dict[str, np.ndarray], d: mujoco.MjData) -> np.ndarray:
            rel = f["xpos"][self._ee] - f["xpos"][0]
            rel[:, 2] = f["xpos"][self._ee, 2]  # height above the (flat) ground
            return rel @ self._heading_inverse(d).T

        ee_err = float(np.mean(np.sum((ee_rel(sim, self.data) - ee_rel(ref, self.ref_data)) ** 2, axis=1)))
        root_err = float(
            np.sum((sim["xpos"][0] - ref["xpos"][0]) ** 2)
            + 0.1 * rot_diff[0] ** 2
            + 0.01 * np.sum((sim["root_vel"] - ref["root_vel"]) ** 2)
            + 0.001 * np.sum((sim["local_ang"][0] - ref["local_ang"][0]) ** 2)
        )
        com_err = float(0.1 * np.sum((sim["com_vel"] - ref["com_vel"]) ** 2))
        errors = {
            "pose": pose_err, "velocity": vel_err, "end_effector": ee_err, "root": root_err, "com": com_err,
        }
        terms = {name: float(np.exp(-REWARD_TERMS[name][1] * err)) for name, err in errors.items()}
        reward = float(sum(REWARD_TERMS[name][0] * value for name, value in terms.items()))
        mpjpe_mm = float(np.mean(np.linalg.norm(sim["xpos"] - ref["xpos"], axis=1)) * 1000.0)
        return reward, terms, mpjpe_mm

    def _obs(self) -> np.ndarray:
        d = self.data
        b = self._body
        h = self._heading_inverse(d)
        root_pos = d.xpos[self._root]
        rel_pos = (d.xpos[b[1:]] - root_pos) @ h.T
        rot = np.einsum("ij,njk->nik", h, d.xmat[b].reshape(-1, 3, 3))[:, :, [0, 2]].transpose(0, 2, 1)
        ang = d.cvel[b, :3]
        com = d.subtree_com[self._root]
        lin = d.cvel[b, 3:] + np.cross(ang, d.xpos[b] - com)
        obs = np.concatenate([
            [self.clip.phase(self._t), root_pos[2]],
            rel_pos.ravel(),
            rot.ravel(),
            (lin @ h.T).ravel(),
            (ang @ h.T).ravel(),
        ])
        return obs.astype(np.float32)

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
        self._t0 = phase * self.clip.duration
        self.set_state_to_reference(self._t0)
        self._mpjpe_sum, self._steps = 0.0, 0
        return self._obs(), {"phase": self.clip.phase(self._t), "clip_time": self._t, "time_alive": 0.0}

    def action_to_targets(self, action: np.ndarray) -> np.ndarray:
        return self._ctrl_mid + np.clip(action, -1.0, 1.0) * self._ctrl_half

    def targets_to_action(self, targets: np.ndarray) -> np.ndarray:
        return np.clip((targets - self._ctrl_mid) / self._ctrl_half, -1.0, 1.0).astype(np.float32)

    def step(self, action):
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {np.shape(action)}")
        if not np.all(np.isfinite(a)):
            bad = np.flatnonzero(~np.isfinite(a)).tolist()
            raise ValueError(f"action holds NaN or infinity at indices {bad}; the policy diverged")
        m, d = self.model, self.data
        d.ctrl[:] = self.action_to_targets(a)
        for _ in range(self.n_substeps):
            mujoco.mj_step(m, d)
        self._t += self.dt
        mujoco.mj_forward(m, d)  # fresh positions, velocities and contacts at the new time
        mujoco.mj_subtreeVel(m, d)
        diverged = not np.all(np.isfinite(d.qpos)) or not np.all(np.isfinite(d.qvel))
        if diverged:
            mujoco.mj_resetData(m, d)
            self._set_clip_state(d, self.clip.qpos_at(self._t), np.zeros(m.nv))
            mujoco.mj_forward(m, d)
        self._update_reference(self._t)
        reward, terms, mpjpe = self._reward()
        self._steps += 1
        self._mpjpe_sum += mpjpe
        terminated = diverged or (self.early_termination and self._fallen())
        truncated = self.clip.ended(self._t)
        info = {
            "reward_terms": terms,
            "mpjpe_mm": mpjpe,
            "episode_mpjpe_mm": self._mpjpe_sum / self._steps,
            "time_alive": self._t - self._t0,
            "phase": self.clip.phase(self._t),
            "clip_time": self._t,
        }
        if diverged:
            info["diverged"] = True
        return self._obs(), reward, terminated, truncated, info

    def _fallen(self) -> bool:
        d = self.data
        if d.xpos[self._root, 2] < self.min_root_height:
            return True
        geoms = d.contact.geom[: d.ncon]
        return bool(np.any(self._fall_geom[geoms]))

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

    # ------------------------------------------------------------------ hooks for agents/

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
            "fall_rate": float(np.mean([e.terminated for e in episodes])),
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
