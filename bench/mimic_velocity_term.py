"""HumanoidMimic's reference velocities: the velocity term of a character that moves exactly along
the reference pose, per clip and per ``reference_velocity`` rule. Prints one JSON object.

    python bench/mimic_velocity_term.py                 # every clip, 200 times per clip (~20 s)
    python bench/mimic_velocity_term.py --clips walk run --times 50

The character's state is the reference pose at time t and its velocity is that pose's own time
derivative (a central difference of 1e-5 s; times within 1e-5 s of a frame are skipped, where the
derivative of the piecewise slerp jumps). A reference velocity that is the velocity of the pose
scores 1; the table shows how far each rule is from it (mean and minimum over the times).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mujoco
import numpy as np

from envs.mimic.env import HumanoidMimicEnv
from envs.mimic.mocap import available_clips, qpos_velocity

RULES = ("quaternion", "lerped", "euler")


def velocity_terms(motion: str, rule: str, count: int, h: float = 1e-5) -> list[float]:
    env = HumanoidMimicEnv(motion=motion, reference_velocity=rule)
    clip = env.clip
    terms = []
    for t in np.linspace(2 * h, clip.duration - 2 * h, count):
        if np.min(np.abs(clip.times - t)) < 2 * h:
            continue
        env.set_state_to_reference(float(t))
        qpos, _ = env._track.model_state([t])
        qvel_clip = qpos_velocity(clip.qpos_at(t - h), clip.qpos_at(t + h), 2 * h)
        env.data.qpos[:] = qpos[0]
        env.data.qvel[:6] = qvel_clip[:6]
        env.data.qvel[env._dadr] = qvel_clip[6:]
        mujoco.mj_forward(env.model, env.data)
        mujoco.mj_subtreeVel(env.model, env.data)
        terms.append(env._reward()[1]["velocity"])
    return terms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", nargs="*", default=None, help="clips (default: all)")
    parser.add_argument("--times", type=int, default=200, help="times per clip, evenly spread (default: %(default)s)")
    args = parser.parse_args()
    report: dict[str, dict[str, dict[str, float]]] = {}
    for motion in args.clips or available_clips():
        report[motion] = {}
        for rule in RULES:
            terms = velocity_terms(motion, rule, args.times)
            report[motion][rule] = {"mean": round(float(np.mean(terms)), 4), "min": round(float(np.min(terms)), 4)}
    print(json.dumps({"velocity_term_moving_along_the_reference": report, "times_per_clip": args.times}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
