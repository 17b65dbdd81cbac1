"""HumanoidMimic benchmark: simulation speed against Gymnasium's Humanoid-v5, and the open-loop
reference baseline on every clip. Prints one JSON object.

    python bench/mimic.py                      # full run (about a minute on one core)
    python bench/mimic.py --rounds 1 --episodes 2 --clips walk run

Speed is compared per *simulated second* (our env steps at 30 Hz, Humanoid-v5 at 66.7 Hz):
``ratio = (our env steps/s x 1/30) / (Humanoid-v5 steps/s x 0.015)``; goals: ratio >= 2 and
``mj_step`` >= 60% of our step time. Both envs take seeded uniform random actions and reset
when an episode ends (ours then last about 13 steps, so resets weigh heavily; the actions are
drawn before the clock starts). Each round times both envs back to back, then MuJoCo's
``mj_step`` alone replaying our run's simulated trajectory (its start states and PD targets):
the physics share of our step time. The median over rounds of the per-round ratio counts, so a
busy shared machine hurts both sides of a pair alike. ``steady_state`` times our env alone the
way a policy that stays up sees it: the open-loop reference actions without early termination,
no resets (its share is the issue's "mj_step's share of step()": no reset in it).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym
import mujoco
import numpy as np

import envs  # noqa: F401  (registers the ids)
from envs.mimic import env as mimic_env
from envs.mimic import features
from envs.mimic.env import HumanoidMimicEnv, ReferencePolicy, ended_in_fall
from envs.mimic.mocap import available_clips
from envs.mimic.reference import ReferenceTrack


def steps_per_second(env: gym.Env, steps: int, seed: int) -> float:
    return timed_steps(env, steps, seed)[0]


def timed_steps(env: gym.Env, steps: int, seed: int) -> tuple[float, list[np.ndarray], dict[int, tuple]]:
    """Steps/s under seeded uniform random actions, resetting when an episode ends; also the
    actions and the states each reset started from (by step index), to replay the physics."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    starts = {0: snapshot(env)}
    start = time.perf_counter()
    for k, action in enumerate(actions):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
            starts[k + 1] = snapshot(env)
    return steps / (time.perf_counter() - start), actions, starts


def snapshot(env: gym.Env) -> tuple | None:
    data = getattr(env, "data", None)
    return (data.qpos.copy(), data.qvel.copy()) if isinstance(data, mujoco.MjData) else None


def steady_state(env: HumanoidMimicEnv, steps: int) -> tuple[float, list[np.ndarray], dict[int, tuple]]:
    """Steps/s of one long episode (no falls end it) on the reference's PD targets, computed
    before the clock starts: the env's time alone. Also what :func:`physics_replay` needs."""
    env.reset(seed=0, options={"phase": 0.0})
    starts = {0: snapshot(env)}
    actions = [env.targets_to_action(env.reference_qpos((k + 1) * env.dt)[7:]) for k in range(steps)]
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    return steps / (time.perf_counter() - start), actions, starts


def physics_replay(env: HumanoidMimicEnv, actions: list[np.ndarray], starts: dict[int, tuple]) -> float:
    """Env steps/s of MuJoCo's ``mj_step`` alone on the same simulated trajectory: the same
    start states and PD targets, as many ``mj_step`` calls per action as the env makes. Our
    step's physics share is (our steps/s) / this."""
    model, data = env.model, env.data
    ctrls = [env.action_to_targets(np.asarray(a, dtype=np.float64)) for a in actions]
    start = time.perf_counter()
    for k, ctrl in enumerate(ctrls):
        if k in starts:
            data.qpos[:], data.qvel[:] = starts[k]
        data.ctrl[:] = ctrl
        mujoco.mj_step(model, data, env.n_substeps)
    return len(actions) / (time.perf_counter() - start)


def timed_vector_steps(venv: gym.vector.VectorEnv, steps: int, seed: int,
                       ) -> tuple[float, np.ndarray, list[dict[int, tuple]]]:
    """Env steps/s (vector steps x copies) of a vector env under seeded uniform random actions
    (autoreset in the same step, as TRPO runs it); also the actions and, per copy, the states its
    episodes started from (by step index), to replay the physics."""
    venv.reset(seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1.0, 1.0, (steps, *venv.action_space.shape)).astype(np.float32)
    copies = [getattr(e, "unwrapped", e) for e in getattr(venv.unwrapped, "envs", ())]
    starts = [{0: snapshot(c)} for c in copies]
    start = time.perf_counter()
    for k in range(steps):
        _, _, terminated, truncated, _ = venv.step(actions[k])
        for i in np.flatnonzero(terminated | truncated):
            if copies:
                starts[i][k + 1] = snapshot(copies[i])
    return steps * venv.num_envs / (time.perf_counter() - start), actions, starts


def vector_speed(n_envs: int, steps: int, rounds: int) -> dict[str, Any]:
    """HumanoidMimic-v1 as ``gym.make_vec`` builds it (one call for all copies' rewards) and
    as ``SyncVectorEnv`` over the single env, against Humanoid-v5 in ``SyncVectorEnv`` (what
    ``make_vec`` gives for it), ``n_envs`` copies each, autoreset in the same step."""
    same_step = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}
    ours = gym.make_vec("HumanoidMimic-v1", num_envs=n_envs, **same_step)
    ours_sync = gym.make_vec("HumanoidMimic-v1", num_envs=n_envs, vectorization_mode="sync", vector_kwargs=same_step)
    theirs = gym.make_vec("Humanoid-v5", num_envs=n_envs, vectorization_mode="sync", vector_kwargs=same_step)
    copy = ours.unwrapped.envs[0]
    their_dt = theirs.envs[0].unwrapped.dt
    their_steps = round(steps * copy.dt / their_dt)
    for env, n in ((ours, 10), (ours_sync, 10), (theirs, 20)):  # warm up
        timed_vector_steps(env, n, 0)
    rates: dict[str, list[float]] = {"batched": [], "sync": [], "humanoid_v5": [], "physics": []}
    for r in range(rounds):
        rate, actions, starts = timed_vector_steps(ours, steps, seed=r)
        rates["batched"].append(rate)
        rates["sync"].append(timed_vector_steps(ours_sync, steps, seed=r)[0])
        rates["humanoid_v5"].append(timed_vector_steps(theirs, their_steps, seed=r)[0])
        physics_time = sum(len(actions) / physics_replay(c, list(actions[:, i]), starts[i])
                           for i, c in enumerate(ours.unwrapped.envs))
        rates["physics"].append(len(actions) * n_envs / physics_time)
    ratio = [b * copy.dt / (h * their_dt) for b, h in zip(rates["batched"], rates["humanoid_v5"], strict=True)]
    for env in (ours, ours_sync, theirs):
        env.close()
    return {
        "n_envs": n_envs,
        "autoreset_mode": "same_step",
        "env_steps_per_s": {k: round(statistics.median(v), 1) for k, v in rates.items() if k != "physics"},
        "batched_over_sync": round(statistics.median(
            b / s for b, s in zip(rates["batched"], rates["sync"], strict=True)), 3),
        "ratio_per_simulated_second": round(statistics.median(ratio), 3),
        "ratio_per_round": [round(x, 3) for x in ratio],
        "physics_share_of_step_time": round(statistics.median(
            b / p for b, p in zip(rates["batched"], rates["physics"], strict=True)), 3),
    }


def step_profile(steps: int) -> dict[str, float]:
    """Microseconds per step of each part of a steady-state ``step()`` (the walk on the reference's
    PD targets, early termination off), timed where it runs: ``perf_counter`` around each part
    during whole episodes, after one episode of warm-up, so the parts add up to the step (each
    wrapper adds about 0.2 us). Timing a part alone in a loop finds it 2-3x cheaper: right after
    ``mj_step`` the interpreter's and numpy's code and data are out of the CPU caches."""
    clock = time.perf_counter
    totals: dict[str, float] = {}

    def timed(key: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[key] = totals.get(key, 0.0) + clock() - start
        return wrapper

    patches = [(mimic_env, "mujoco", types.SimpleNamespace(**{**vars(mujoco), "mj_step": timed("mj_step", mujoco.mj_step)})),
               (mimic_env, "_positions_velocities_contacts", None), (mimic_env, "step_features", None),
               (features, "observe_and_reward", None),
               (ReferenceTrack, "_compute", None)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    env = HumanoidMimicEnv(motion="walk", early_termination=False)
    actions = [env.targets_to_action(env.reference_qpos((k + 1) * env.dt)[7:]) for k in range(steps)]
    try:
        for owner, name, replacement in patches:
            setattr(owner, name, replacement or timed(name.strip("_"), getattr(owner, name)))
        step = timed("step", env.step)
        for episode in range(2):
            if episode == 1:
                totals.clear()
            env.reset(seed=0, options={"phase": 0.0})
            for action in actions:
                step(action)
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
    parts = {k: v / steps * 1e6 for k, v in totals.items()}
    # step_features holds the observation and the reward (compiled) and the reference rows
    # computed ahead
    inside = ("observe_and_reward", "compute")
    parts["step_features_rest"] = parts.pop("step_features") - sum(parts.get(k, 0.0) for k in inside)
    parts["reference_rows_ahead"] = parts.pop("compute", 0.0)
    parts["other"] = parts["step"] - sum(v for k, v in parts.items() if k != "step")
    step = parts.pop("step")
    ordered = {"step": step, "mj_step_share": parts["mj_step"] / step}
    ordered.update(sorted(parts.items(), key=lambda kv: -kv[1]))
    return {k: round(v, 3 if k == "mj_step_share" else 1) for k, v in ordered.items()}


def reference_baseline(clip: str, episodes: int) -> dict[str, float]:
    env = HumanoidMimicEnv(motion=clip)
    policy = ReferencePolicy(env)
    alive, rewards, mpjpe, falls = [], [], [], 0
    for seed in range(episodes):
        obs, _ = env.reset(seed=seed)
        total, steps, terminated, truncated = 0.0, 0, False, False
        while not (terminated or truncated or steps == 600):  # 600: the registered 20 s limit
            actions, _ = policy.act([obs])
            obs, reward, terminated, truncated, info = env.step(actions[0])
            total += reward
            steps += 1
        falls += int(ended_in_fall(terminated, info))
        alive.append(info["time_alive"])
        rewards.append(total / steps)
        mpjpe.append(info["episode_mpjpe_mm"])
    return {
        "mean_time_alive_s": round(float(np.mean(alive)), 3),
        "mean_reward_per_step": round(float(np.mean(rewards)), 4),
        "mpjpe_mm": round(float(np.mean(mpjpe)), 1),
        "fall_rate": falls / episodes,
        "looping_clip": env.clip.loops,
        "clip_duration_s": round(env.clip.duration, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="HumanoidMimic steps per round (Humanoid-v5 "
                        "runs the same simulated time)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing rounds; the median counts")
    parser.add_argument("--episodes", type=int, default=5, help="reference-baseline episodes per clip")
    parser.add_argument("--clips", nargs="*", default=None, help="clips for the baseline (default: all)")
    parser.add_argument("--vector-envs", type=int, default=8, help="copies in the vector-env comparison "
                        "(TRPO's n_envs); 0 skips it")
    args = parser.parse_args(argv)

    ours = HumanoidMimicEnv(motion="walk")
    theirs = gym.make("Humanoid-v5").unwrapped  # no wrappers on either side
    their_steps = round(args.steps * ours.dt / theirs.dt)
    steps_per_second(ours, 30, 0)  # warm up
    steps_per_second(theirs, 30, 0)
    steady = HumanoidMimicEnv(motion="walk", early_termination=False)
    our_rates, their_rates, physics_rates, ratios, steady_rates, steady_physics = [], [], [], [], [], []
    for r in range(args.rounds):  # paired rounds: a busy machine slows both sides of a pair alike
        rate, actions, starts = timed_steps(ours, args.steps, seed=r)
        our_rates.append(rate)
        their_rates.append(steps_per_second(theirs, their_steps, seed=r))
        physics_rates.append(physics_replay(ours, actions, starts))
        rate, actions, starts = steady_state(steady, args.steps)
        steady_rates.append(rate)
        steady_physics.append(physics_replay(steady, actions, starts))
        ratios.append(our_rates[-1] * ours.dt / (their_rates[-1] * theirs.dt))
    ours_sps, theirs_sps = statistics.median(our_rates), statistics.median(their_rates)
    ratio = statistics.median(ratios)
    physics_share = statistics.median(o / p for o, p in zip(our_rates, physics_rates, strict=True))

    clips = args.clips or available_clips()
    result = {
        "speed": {
            "HumanoidMimic-v1_steps_per_s": round(ours_sps, 1),
            "Humanoid-v5_steps_per_s": round(theirs_sps, 1),
            "HumanoidMimic-v1_sim_seconds_per_s": round(ours_sps * ours.dt, 2),
            "Humanoid-v5_sim_seconds_per_s": round(theirs_sps * theirs.dt, 2),
            "ratio_per_simulated_second": round(ratio, 3),
            "ratio_per_round": [round(x, 3) for x in ratios],
            "goal": 2.0,
            "meets_goal": ratio >= 2.0,
            "physics_share_of_step_time": round(physics_share, 3),
            "physics_share_goal": 0.6,
            "steady_state": {
                "steps_per_s": round(statistics.median(steady_rates), 1),
                "physics_share_of_step_time": round(
                    statistics.median(s / p for s, p in zip(steady_rates, steady_physics, strict=True)), 3),
                "ratio_per_simulated_second": round(statistics.median(
                    s * ours.dt / (t * theirs.dt) for s, t in zip(steady_rates, their_rates, strict=True)), 3),
                "microseconds_per_step": step_profile(args.steps),
            },
            "rounds": args.rounds,
            "control_hz": round(1 / ours.dt),
            "physics_hz": round(1 / ours.model.opt.timestep),
            "humanoid_v5_dt": theirs.dt,
        },
        "vector": vector_speed(args.vector_envs, args.steps // 4, args.rounds) if args.vector_envs else None,
        "reference_baseline": {clip: reference_baseline(clip, args.episodes) for clip in clips},
        "episodes_per_clip": args.episodes,
        "machine": {"python": platform.python_version(), "mujoco": mujoco.__version__,
                    "gymnasium": gym.__version__, "processor": platform.processor() or platform.machine()},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
