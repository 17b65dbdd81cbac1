"""HumanoidMimic: a DeepMimic-style humanoid imitating mocap clips in MuJoCo.

Rendering is headless. MuJoCo picks its OpenGL backend when first imported, so unless
``MUJOCO_GL`` is already set, it is chosen here: ``egl`` where libEGL is installed (GPU or
Mesa), else ``osmesa`` (``apt-get install libosmesa6``). Import ``envs.mimic`` before ``mujoco``.
"""

import ctypes.util
import os
import sys

if "mujoco" not in sys.modules and "MUJOCO_GL" not in os.environ:
    has_egl = ctypes.util.find_library("EGL") is not None
    os.environ["MUJOCO_GL"] = "egl" if has_egl or ctypes.util.find_library("OSMesa") is None else "osmesa"

from envs.mimic.mocap import Clip, MotionError, available_clips

__all__ = ["Clip", "MotionError", "available_clips"]
