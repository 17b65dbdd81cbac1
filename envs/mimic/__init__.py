"""HumanoidMimic: a DeepMimic-style humanoid imitating mocap clips in MuJoCo.

Rendering is headless: unless ``MUJOCO_GL`` is already set, it is set to ``egl`` here (before
MuJoCo is first imported); on a machine without EGL, set ``MUJOCO_GL=osmesa``.
"""

import os
import sys

if "mujoco" not in sys.modules:
    os.environ.setdefault("MUJOCO_GL", "egl")

from envs.mimic.mocap import Clip, MotionError, available_clips

__all__ = ["Clip", "MotionError", "available_clips"]
