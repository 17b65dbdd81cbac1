"""Demonstrations for behaviour cloning on HumanoidMimic: (observation, action) pairs from the clip.

A mocap clip holds poses, not actions. :class:`TrackingExpert` turns it into actions: for the
simulator's *current* state at clip time ``t`` it returns the PD targets (as normalised actions)
that track the reference at ``t + dt``. Two label kinds:

- ``reference``: the next reference pose, ``q_ref(t + dt)`` (pure teacher forcing; the open-loop
  ``reference`` policy uses ``q_ref(t)``).
- ``feedforward`` (default): ``q_ref(t + dt) + tau / kp``, with ``tau`` the joint torques the
  motion needs, by inverse dynamics at the current state: ``M(q) a + c(q, v)`` for the reference
  accelerations ``a``, the unactuated root's share routed through the feet on the ground (the
  least-squares ground wrench that supplies it), plus a root-tilt feedback term (desired root
  angular acceleration ``kp_tilt * error + kd_tilt * rate error``, heading excluded) that the
  stance legs realise. PD tracking of raw mocap sags under gravity and has no balance; these
  labels add both, as functions of the state a policy observes.

States (where the labels are taken) come from three sources, so a cloned policy also learns to
recover rather than only replay:

- :func:`reference_demonstrations`: the simulator put in the reference state at sampled phases;
- :func:`noisy_expert_rollouts`: the expert run with Gaussian action noise from random phases,
  every visited state labelled with the expert's noise-free action (DART, Laskey et al. 2017);
- :func:`policy_rollouts`: a learner policy run from random phases, its states labelled by the
  expert (DAgger, Ross et al. 2011).

:class:`MimicDemoSource` bundles them for ``agents.algos.bc``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
from tqdm import tqdm

from envs.mimic.env import HumanoidMimicEnv
from envs.mimic.humanoid import FOOT_BODIES
from envs.mimic.mocap import quat_conj, quat_mul, quat_to_rotvec

LABELS = ("reference", "feedforward")
# A foot pushes on the floor when its lowest corner is below it (soft contacts penetrate a little).
# A margin above the floor would count the walk's low swing foot (1-2 cm up) as support: worse labels.
_STANCE_HEIGHT = 0.0


@dataclass(frozen=True)
class Demonstrations:
    """Labelled states: ``observations [N, obs_dim]``, ``actions [N, act_dim]`` (float32) and
    ``groups [N]`` (int64; states of one rollout share a group, so a validation split by group
    holds out whole rollouts)."""

    observations: np.ndarray
    actions: np.ndarray
    groups: np.ndarray

    def __post_init__(self) -> None:
        obs, act, groups = self.observations, self.actions, self.groups
        if obs.ndim != 2 or act.ndim != 2 or groups.ndim != 1:
            raise ValueError(f"demonstrations need 2-D observations/actions and 1-D groups, got shapes "
                             f"{obs.shape}, {act.shape}, {groups.shape}")
        if not len(obs) == len(act) == len(groups):
            raise ValueError(f"{len(obs)} observations, {len(act)} actions and {len(groups)} groups differ in number")
        if not (np.all(np.isfinite(obs)) and np.all(np.isfinite(act))):
            raise ValueError("demonstrations hold NaN or infinity")

    def __len__(self) -> int:
        return len(self.observations)

    @classmethod
    def concat(cls, parts: Sequence[Demonstrations]) -> Demonstrations:
        return cls(np.concatenate([p.observations for p in parts]).astype(np.float32),
                   np.concatenate([p.actions for p in parts]).astype(np.float32),
                   np.concatenate([p.groups for p in parts]).astype(np.int64))


class TrackingExpert:
    """PD targets that track the next reference pose from the env's current simulated state.

    Reads the (unwrapped) env's simulator and clip time; call after ``reset``/``step`` or
    ``set_state_to_reference``. Not a scripted policy: it needs the full simulator state, not
    the observation.
    """

    def __init__(self, env: Any, labels: str = "feedforward", kp_tilt: float = 100.0,
                 kd_tilt: float = 20.0) -> None:
        if labels not in LABELS:
            raise ValueError(f"labels must be one of {', '.join(LABELS)}, got {labels!r}")
        env = env.unwrapped
        if not isinstance(env, HumanoidMimicEnv):
            raise TypeError(f"TrackingExpert needs a HumanoidMimicEnv, got {type(env).__name__}")
        self.env, self.labels = env, labels
        self.kp_tilt, self.kd_tilt = float(kp_tilt), float(kd_tilt)
        m = env.model
        self._kp = m.actuator_gainprm[:, 0].copy()
        self._feet = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, n) for n in FOOT_BODIES]
        self._foot_geoms = [int(np.flatnonzero(m.geom_bodyid == b)[0]) for b in self._feet]
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float)
        self._corners = [signs * m.geom_size[g] for g in self._foot_geoms]
        self._jacp, self._jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        self._acc = np.zeros(m.nv)
        self._mass_acc = np.zeros(m.nv)

    def _stance_feet(self) -> list[int]:
        d = self.env.data
        stance = []
        for body, geom, corners in zip(self._feet, self._foot_geoms, self._corners, strict=True):
            rot = d.geom_xmat[geom].reshape(3, 3)
            if (d.geom_xpos[geom][2] + corners @ rot[2]).min() < _STANCE_HEIGHT:
                stance.append(body)
        return stance

    def _reference_acceleration(self, t: float) -> np.ndarray:
        """Clip accelerations in model dof order (the clip's velocities are constant per frame)."""
        env, half = self.env, 0.5 * self.env.dt
        acc_clip = (env.clip.qvel_at(t + half) - env.clip.qvel_at(t - half)) / env.dt
        self._acc[:] = 0.0
        self._acc[:6] = acc_clip[:6]
        self._acc[env._dadr] = acc_clip[6:]
        return self._acc

    def feedforward_torques(self) -> np.ndarray:
        """Joint torques (clip hinge order) of inverse dynamics at the current state."""
        env = self.env
        m, d, ref = env.model, env.data, env.ref_data
        mujoco.mj_forward(m, d)  # the mass matrix and bias forces: a step brings only kinematics up to date
        acc = self._reference_acceleration(env._t)
        rot, ref_rot = d.xmat[env._root].reshape(3, 3), ref.xmat[env._root].reshape(3, 3)
        # root tilt feedback in the world frame, heading (z) excluded: the observation does not show it
        tilt = quat_to_rotvec(quat_mul(ref.qpos[3:7], quat_conj(d.qpos[3:7])))
        rate = ref_rot @ ref.qvel[3:6] - rot @ d.qvel[3:6]
        tilt[2] = rate[2] = 0.0
        acc[3:6] = rot.T @ (rot @ acc[3:6] + self.kp_tilt * tilt + self.kd_tilt * rate)
        mujoco.mj_mulM(m, d, self._mass_acc, acc)
        tau = self._mass_acc + d.qfrc_bias
        stance = self._stance_feet()
        if stance:
            rows = []
            for body in stance:
                mujoco.mj_jacBody(m, d, self._jacp, self._jacr, body)
                rows += [self._jacp.copy(), self._jacr.copy()]
            jac = np.vstack(rows)
            # the ground wrench on the stance feet that supplies the root's (unactuated) share
            wrench = np.linalg.lstsq(jac[:, :6].T, tau[:6], rcond=None)[0]
            tau = tau - jac.T @ wrench
        return tau[env._dadr]

    def targets(self) -> np.ndarray:
        env = self.env
        targets = env.clip.qpos_at(env._t + env.dt)[7:]
        if self.labels == "feedforward":
            targets = targets + self.feedforward_torques() / self._kp
        return targets

    def action(self) -> np.ndarray:
        return self.env.targets_to_action(self.targets())


def reference_demonstrations(env: Any, expert: TrackingExpert, phases: np.ndarray,
                             group_offset: int = 0, groups: int = 16) -> Demonstrations:
    """Teacher forcing: the simulator in the reference state at each phase, labelled by the expert.
    The phases are dealt round-robin into ``groups`` groups: holding one out for validation
    thins the phase grid instead of cutting a gap into the cycle that training never sees."""
    env = env.unwrapped
    obs, actions = [], []
    for phase in phases:
        env.set_state_to_reference(float(phase) * env.clip.duration)
        obs.append(env._obs())
        actions.append(expert.action())
    dealt = np.arange(len(phases), dtype=np.int64) % groups
    return Demonstrations(np.array(obs, dtype=np.float32).reshape(len(phases), -1),
                          np.array(actions, dtype=np.float32).reshape(len(phases), -1), dealt + group_offset)


def _rollouts(env: Any, expert: TrackingExpert, episodes: int, horizon: int, rng: np.random.Generator,
              group_offset: int, act: Any, desc: str | None = None) -> tuple[Demonstrations, dict[str, float]]:
    """Episodes from random phases (seeded by ``rng``), each state labelled with the expert's
    action; ``act(obs, expert_action)`` is what is executed. Also returns rollout statistics
    (``ep_len_mean``, ``ep_rew_mean``, ``fall_rate`` within the horizon)."""
    obs_rows: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    groups: list[int] = []
    lengths: list[int] = []
    returns: list[float] = []
    falls = 0
    for episode in tqdm(range(episodes), desc=desc, unit="ep", file=sys.stderr, disable=True if desc is None else None,
                        leave=False):
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        total = 0.0
        for _ in range(horizon):
            label = expert.action()
            obs_rows.append(obs)
            labels.append(label)
            groups.append(group_offset + episode)
            obs, reward, terminated, truncated, _ = env.step(act(obs, label))
            total += float(reward)
            if terminated or truncated:
                falls += bool(terminated)
                break
        lengths.append(len(labels) - sum(lengths))
        returns.append(total)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    demos = Demonstrations(np.array(obs_rows, dtype=np.float32).reshape(-1, obs_dim),
                           np.array(labels, dtype=np.float32).reshape(-1, act_dim),
                           np.array(groups, dtype=np.int64))
    stats = {"ep_len_mean": float(np.mean(lengths)) if lengths else 0.0,
             "ep_rew_mean": float(np.mean(returns)) if returns else 0.0,
             "fall_rate": falls / max(episodes, 1)}
    return demos, stats


def noisy_expert_rollouts(env: Any, expert: TrackingExpert, episodes: int, horizon: int, noise_std: float,
                          rng: np.random.Generator, group_offset: int = 0,
                          desc: str | None = None) -> tuple[Demonstrations, dict[str, float]]:
    """DART: run the expert with N(0, noise_std) added to its (normalised) actions; label every
    visited state with the noise-free action."""
    def act(obs: np.ndarray, label: np.ndarray) -> np.ndarray:
        return np.clip(label + rng.normal(0.0, noise_std, label.shape), -1.0, 1.0).astype(np.float32)

    return _rollouts(env, expert, episodes, horizon, rng, group_offset, act, desc)


def policy_rollouts(env: Any, expert: TrackingExpert, policy: Any, episodes: int, horizon: int,
                    rng: np.random.Generator, group_offset: int = 0,
                    desc: str | None = None) -> tuple[Demonstrations, dict[str, float]]:
    """DAgger: run ``policy`` (its deterministic action) and label the states it visits with the expert."""
    def act(obs: np.ndarray, label: np.ndarray) -> np.ndarray:
        actions, _ = policy.act([obs], deterministic=True)
        return np.asarray(actions[0], dtype=np.float32)

    return _rollouts(env, expert, episodes, horizon, rng, group_offset, act, desc)


@dataclass
class MimicDemoSource:
    """Demonstrations from a HumanoidMimic clip, and DAgger relabelling, for ``agents.algos.bc``.

    ``demonstrations()`` = ``reference_states`` teacher-forced reference states (phases on a
    regular grid, dealt into 16 groups) + ``noisy_episodes`` DART rollouts of at most ``horizon`` steps
    (one group each). ``dagger(policy, episodes, seed)`` labels the states ``policy`` visits and
    reports how its rollouts went. ``env`` is a HumanoidMimic env (any wrapper; reset and stepped here).
    """

    env: Any
    labels: str = "feedforward"
    reference_states: int = 1000
    noisy_episodes: int = 200
    noise_std: float = 0.05
    horizon: int = 60
    kp_tilt: float = 100.0
    kd_tilt: float = 20.0
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        self.expert = TrackingExpert(self.env, self.labels, self.kp_tilt, self.kd_tilt)

    def demonstrations(self) -> Demonstrations:
        rng = np.random.default_rng(self.seed)
        phases = (np.arange(self.reference_states) + 0.5) / max(self.reference_states, 1)
        parts = [reference_demonstrations(self.env, self.expert, phases)] if self.reference_states else []
        if self.noisy_episodes > 0:
            offset = int(parts[0].groups.max()) + 1 if parts else 0
            noisy, _ = noisy_expert_rollouts(self.env, self.expert, self.noisy_episodes, self.horizon,
                                             self.noise_std, rng, offset,
                                             desc="noisy expert rollouts" if self.progress else None)
            parts.append(noisy)
        if not parts:
            raise ValueError("no demonstrations: reference_states and noisy_episodes are both 0")
        return Demonstrations.concat(parts)

    def dagger(self, policy: Any, episodes: int, seed: int,
               group_offset: int | None = None) -> tuple[Demonstrations, dict[str, float]]:
        return policy_rollouts(self.env, self.expert, policy, episodes, self.horizon, np.random.default_rng(seed),
                               group_offset or 0, desc="DAgger rollouts" if self.progress else None)
