"""Rendering a rollout of a trained (Gaussian MLP) policy, headless, in a fresh interpreter."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import torch

import envs  # noqa: F401  (registers the ids)
from agents.policies.mlp import GaussianMLPPolicy
from envs.mimic import mocap

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(mocap.clip_dir() is None, reason="pybullet_data ships the humanoid clips; not installed")


def render(*args: str) -> subprocess.CompletedProcess:
    # A fresh interpreter: MuJoCo picks its GL backend when first imported (envs.mimic chooses a headless one).
    return subprocess.run([sys.executable, "-m", "demos.render_mocap", "--width", "64", "--height", "48", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_one_second_rollout_of_a_checkpoint_policy(tmp_path: Path) -> None:
    imageio = pytest.importorskip("imageio.v2")
    torch.manual_seed(0)
    GaussianMLPPolicy.for_env(gym.make("envs:HumanoidMimic-v1", motion="run"), hidden=(16,)).save(tmp_path / "run")
    out = tmp_path / "rollout.gif"
    result = render("--policy", str(tmp_path / "run"), "--seconds", "1", "--ghost", "--out", str(out))
    if result.returncode != 0 and "gl" in result.stderr.lower() and "Error" in result.stderr:
        pytest.skip(f"no headless OpenGL here: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr
    assert "render run" in result.stderr  # the clip the checkpoint was trained on, with a progress bar
    frames = imageio.mimread(out)
    # the whole second at 30 fps (plus the first frame), even though an untrained policy falls in it
    assert len(frames) == 31 and frames[0].shape == (48, 64, 3)
    falls = int(re.search(r"(\d+) fall\(s\)", result.stdout).group(1))
    assert falls >= 1 and f"wrote {out} (31 frames, 1.03 s; {falls + 1} episode(s)" in result.stdout



def test_checkpoints_it_cannot_play_are_one_clear_error(tmp_path: Path, capsys) -> None:
    from demos import render_mocap  # in-process: these fail before any frame is rendered

    GaussianMLPPolicy(10, 28, hidden=(4,)).save(tmp_path / "small")
    assert render_mocap.main(["--policy", str(tmp_path / "small"), "--out", str(tmp_path / "a.gif")]) == 2
    assert "error: the policy reads observations of size 10" in capsys.readouterr().err
    GaussianMLPPolicy.for_env(gym.make("envs:HumanoidMimic-v1", motion="run"), hidden=(4,)).save(tmp_path / "run")
    assert render_mocap.main(["--policy", str(tmp_path / "run"), "--motion", "walk", "--out", str(tmp_path / "b.gif")]) == 2
    assert "trained on motion 'run'" in capsys.readouterr().err
    assert render_mocap.main(["--policy", "reference", "--seconds", "0", "--out", str(tmp_path / "d.gif")]) == 2
    assert "error: --seconds must be > 0, got 0.0" in capsys.readouterr().err
    assert not (tmp_path / "d.gif").exists()  # no empty video left behind
    (tmp_path / "run" / "model.safetensors").write_bytes(b"junk")
    assert render_mocap.main(["--policy", str(tmp_path / "run"), "--out", str(tmp_path / "c.gif")]) == 2
    assert "corrupt" in capsys.readouterr().err
