"""HumanoidMimic benchmark: simulation speed against Gymnasium's Humanoid-v5, and the open-loop
reference baseline on every clip. Prints one JSON object.

    python bench/mimic.py                      # full run (about a minute on one core)
    python bench/mimic.py --rounds 1 --episodes 2 --clips walk run

Speed is compared per *simulated second* (our env steps at 30 Hz, Humanoid-v5 at 66.7 Hz):
``ratio = (our env steps/s x 1/30) / (Humanoid-v5 steps/s x 0.015)``; goals: ratio >= 2 and
``mj_step`` >= 60% of our step time. Both envs take seeded uniform random actions and reset
when an episode ends (ours then last about 6 steps, so resets weigh heavily). Each round times
both envs back to back (and MuJoCo's ``mj_step`` alone, for the physics share of our step
time); the median over rounds of the per-round ratio counts, so a busy shared machine hurts
both sides of a pair alike. ``steady_state`` times our env alone the way a policy that stays
up sees it: the open-loop reference actions without early termination, no resets.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym
import mujoco
import numpy as np

from envs.mimic.env import HumanoidMimicEnv, ReferencePolicy, ended_in_fall
from envs.mimic.mocap import available_clips


def steps_per_second(env: gym.Env, steps: int, seed: int) -> float:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def steady_state_steps_per_second(env: HumanoidMimicEnv, steps: int) -> float:
    """Steps/s of one long episode (no falls end it) on the reference's PD targets, computed
    before the clock starts: the env's time alone."""
    env.reset(seed=0, options={"phase": 0.0})
    actions = [env.targets_to_action(env.reference_qpos((k + 1) * env.dt)[7:]) for k in range(steps)]
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    return steps / (time.perf_counter() - start)


def physics_only_steps_per_second(env: HumanoidMimicEnv, steps: int) -> float:
    """mj_step calls alone, as many per env step as the env makes: the floor for our overhead."""
    env.reset(seed=0)
    model, data = env.model, env.data
    start = time.perf_counter()
    for _ in range(steps * env.n_substeps):
        mujoco.mj_step(model, data)
    return steps / (time.perf_counter() - start)


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
    args = parser.parse_args(argv)

    ours = HumanoidMimicEnv(motion="walk")
    theirs = gym.make("Humanoid-v5").unwrapped  # no wrappers on either side
    their_steps = round(args.steps * ours.dt / theirs.dt)
    steps_per_second(ours, 30, 0)  # warm up
    steps_per_second(theirs, 30, 0)
    steady = HumanoidMimicEnv(motion="walk", early_termination=False)
    our_rates, their_rates, physics_rates, ratios, steady_rates = [], [], [], [], []
    for r in range(args.rounds):  # paired rounds: a busy machine slows both sides of a pair alike
        our_rates.append(steps_per_second(ours, args.steps, seed=r))
        their_rates.append(steps_per_second(theirs, their_steps, seed=r))
        physics_rates.append(physics_only_steps_per_second(ours, args.steps))
        steady_rates.append(steady_state_steps_per_second(steady, args.steps))
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
                    statistics.median(s / p for s, p in zip(steady_rates, physics_rates, strict=True)), 3),
                "ratio_per_simulated_second": round(statistics.median(
                    s * ours.dt / (t * theirs.dt) for s, t in zip(steady_rates, their_rates, strict=True)), 3),
            },
            "rounds": args.rounds,
            "control_hz": round(1 / ours.dt),
            "physics_hz": round(1 / ours.model.opt.timestep),
            "humanoid_v5_dt": theirs.dt,
        },
        "reference_baseline": {clip: reference_baseline(clip, args.episodes) for clip in clips},
        "episodes_per_clip": args.episodes,
        "machine": {"python": platform.python_version(), "mujoco": mujoco.__version__,
                    "gymnasium": gym.__version__, "processor": platform.processor() or platform.machine()},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
