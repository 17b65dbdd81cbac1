"""Render the humanoid imitating a mocap clip to a video (mp4) or an animated gif.

    python -m demos.render_mocap --kinematic --motion walk --out walk.mp4
    python -m demos.render_mocap --policy reference --ghost --motion run --out run.gif
    python -m demos.render_mocap --policy runs/<run>/final --seconds 10 --ghost --out trained.mp4

``--kinematic`` plays the clip itself (the simulator is set to the reference state every
frame, no physics). ``--policy`` rolls out a policy with physics: a scripted name
(``reference``: PD targets = the reference pose) or a checkpoint directory, loaded through
``agents.core.loading.load_policy``; ``--ghost`` draws the reference pose, translucent, beside it.
With ``--seconds`` the video has that length: after a fall, a new episode starts from the
clip phase the fallen one had reached (the summary line counts the falls).
Rendering is headless (``envs.mimic`` sets ``MUJOCO_GL`` to ``egl``, or ``osmesa`` where EGL is missing).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

import envs.mimic  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m demos.render_mocap", description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--motion", default=None,
                        help="clip name or path to a DeepMimic motion file (default: the clip a --policy "
                             "checkpoint was trained on, else walk)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--kinematic", action="store_true",
                        help="replay the clip itself, without physics (the default)")
    source.add_argument("--policy", default=None, metavar="NAME_OR_DIR",
                        help="roll out a policy with physics: 'reference', 'random' or a checkpoint dir")
    parser.add_argument("--ghost", action="store_true",
                        help="with --policy: also draw the reference pose, translucent")
    parser.add_argument("--seconds", type=float, default=None,
                        help="video length (default: one clip cycle; with --policy: until the episode "
                             "ends, at most 20 s). With --policy and --seconds the video has that length: "
                             "after a fall a new episode starts where the clip had got to")
    parser.add_argument("--phase", type=float, default=0.0,
                        help="clip phase to start at, in [0, 1] (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="reset seed for --policy rollouts (default: %(default)s)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--out", default="mocap.mp4", help="output file; .mp4 or .gif (default: %(default)s)")
    return parser


def kinematic_frames(env, seconds: float, phase: float) -> Iterator[np.ndarray]:
    start = phase * env.clip.duration
    for k in range(round(seconds / env.dt)):
        env.set_state_to_reference(start + k * env.dt)
        yield env.render_frame(ghost=False)


def policy_frames(env, policy, seconds: float, phase: float, seed: int, ghost: bool,
                  keep_going: bool, episodes: list[str]) -> Iterator[np.ndarray]:
    """Roll the policy out for ``seconds``. An episode that ends early stops the video, unless
    ``keep_going``: then a new episode starts from the clip phase where the last one ended (from
    the start after the clip's end), so the video has the requested length. ``episodes`` gets one
    entry per episode: how it ended."""
    obs, _ = env.reset(seed=seed, options={"phase": phase})
    yield env.render_frame(ghost=ghost)
    restart_at: float | None = None  # set when an episode has ended: the phase to start the next at
    for _ in range(round(seconds / env.dt)):
        if restart_at is not None:
            obs, _ = env.reset(options={"phase": restart_at})
            restart_at = None
        actions, _ = policy.act([obs], deterministic=True)
        obs, _, terminated, truncated, info = env.step(actions[0])
        yield env.render_frame(ghost=ghost)
        if terminated or truncated:
            episodes.append("fell" if terminated else "clip ended")
            if not keep_going:
                return
            restart_at = 0.0 if truncated else info["phase"]
    if restart_at is None:
        episodes.append("running")


def checkpoint_motion(policy: str | None) -> str | None:
    """The clip a checkpoint's policy was trained on (``metadata.motion`` in its policy.json)."""
    manifest = Path(policy) / "policy.json" if policy else None
    if manifest is None or not manifest.is_file():
        return None
    try:
        motion = json.loads(manifest.read_text(encoding="utf-8")).get("metadata", {}).get("motion")
    except (OSError, ValueError, AttributeError):
        return None  # loading the checkpoint reports what is wrong with it
    return motion if isinstance(motion, str) else None


def open_writer(path: Path, fps: int):
    import imageio.v2 as imageio

    suffix = path.suffix.lower()
    if suffix == ".gif":
        return imageio.get_writer(path, mode="I", duration=1000.0 / fps, loop=0)
    if suffix in (".mp4", ".mov", ".mkv", ".webm"):
        return imageio.get_writer(path, fps=fps, macro_block_size=8)
    raise ValueError(f"--out must end in .mp4 or .gif, got {path.name!r}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from envs.mimic.env import HumanoidMimicEnv
    from envs.mimic.mocap import MotionError

    if not 0.0 <= args.phase <= 1.0:
        print(f"error: --phase must be in [0, 1], got {args.phase}", file=sys.stderr)
        return 2
    if args.seconds is not None and not args.seconds > 0:
        print(f"error: --seconds must be > 0, got {args.seconds}", file=sys.stderr)
        return 2
    try:
        motion = args.motion or checkpoint_motion(args.policy) or "walk"
        env = HumanoidMimicEnv(motion=motion, render_mode="rgb_array",
                               width=args.width, height=args.height)
    except MotionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        writer = open_writer(out, env.metadata["render_fps"])
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    episodes: list[str] = []
    try:
        if args.policy is None:
            seconds = args.seconds if args.seconds is not None else env.clip.duration
            frames = kinematic_frames(env, seconds, args.phase)
            desc = f"render {env.clip.name} (kinematic)"
        else:
            from agents.core.loading import load_policy

            try:
                policy = load_policy(args.policy, env, seed=args.seed)
            except ValueError as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            seconds = args.seconds if args.seconds is not None else 20.0
            frames = policy_frames(env, policy, seconds, args.phase, args.seed, args.ghost,
                                   keep_going=args.seconds is not None, episodes=episodes)
            desc = f"render {env.clip.name} ({args.policy})"
        total = round(seconds / env.dt) + (args.policy is not None)
        count = 0
        for frame in tqdm(frames, total=total, desc=desc, unit="frame", file=sys.stderr):
            writer.append_data(frame)
            count += 1
    finally:
        writer.close()
        env.close()
    falls = episodes.count("fell")
    ended = f"; {len(episodes)} episode(s), {falls} fall(s)" if episodes else ""
    print(f"wrote {out} ({count} frames, {count * env.dt:.2f} s{ended})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
