"""A run folder: ``runs/<env>__<agent>__<seed>__<time>/``.

Holds ``config.yaml`` (fully resolved), TensorBoard events, ``checkpoints/step_<N>/``,
``final/``, ``episodes.jsonl`` and ``eval.json``. Agents log through :meth:`Run.log` with the
fixed tag namespaces ``rollout/``, ``train/`` and ``eval/``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from agents.checkpoint import write_json_atomic
from agents.trajectory import Episode, write_episodes

_STEP_DIR = re.compile(r"^step_(\d+)$")
TRAINER_STATE = "trainer_state.pt"


class Run:
    def __init__(self, directory: str | Path, config: dict[str, Any] | None = None, tensorboard: bool = True):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "checkpoints").mkdir(exist_ok=True)
        if config is not None:
            tmp = self.dir / ".config.yaml.tmp"
            tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            tmp.replace(self.dir / "config.yaml")
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.dir))

    @staticmethod
    def default_dir(env_id: str, agent: str, seed: int, root: str | Path = "runs") -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return Path(root) / f"{env_id}__{agent}__{seed}__{stamp}"

    # -- paths --------------------------------------------------------------------------------
    @property
    def final_dir(self) -> Path:
        return self.dir / "final"

    @property
    def episodes_path(self) -> Path:
        return self.dir / "episodes.jsonl"

    def checkpoint_dir(self, step: int) -> Path:
        return self.dir / "checkpoints" / f"step_{step}"

    def latest_checkpoint(self) -> Path | None:
        return latest_checkpoint(self.dir)

    def save_training_checkpoint(self, step: int, policy: Any, optimizer: Any, state: dict[str, Any],
                                 keep: int) -> Path:
        """``checkpoints/step_<step>/``: the policy, then ``trainer_state.pt`` (optimizer, RNG and the
        agent's counters in ``state``). A checkpoint is resumable once that file exists; older
        step checkpoints beyond ``keep`` are deleted."""
        import torch

        target = self.checkpoint_dir(step)
        policy.save(target)
        payload = {**state, "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                   "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
        tmp = target / f".{TRAINER_STATE}.tmp"
        torch.save(payload, tmp)
        os.replace(tmp, target / TRAINER_STATE)
        summary = {k: v for k, v in state.items() if isinstance(v, int | float | str)}
        (target / "trainer_state.json").write_text(json.dumps(summary) + "\n")
        self.prune_checkpoints(keep)
        return target

    def prune_checkpoints(self, keep: int) -> None:
        steps = sorted(_checkpoint_steps(self.dir), reverse=True)
        for step in steps[keep:]:
            shutil.rmtree(self.checkpoint_dir(step), ignore_errors=True)

    # -- logging ------------------------------------------------------------------------------
    def log(self, metrics: dict[str, float], step: int) -> None:
        if self._writer is None:
            return
        for tag, value in metrics.items():
            # NaN / inf (an empty batch's mean, a diverged loss) would break TensorBoard's axes
            if value is not None and math.isfinite(value):
                self._writer.add_scalar(tag, float(value), global_step=step)

    def log_episodes(self, episodes: Iterable[Episode]) -> int:
        return write_episodes(self.episodes_path, episodes)

    def write_eval(self, summary: dict[str, Any], name: str = "eval.json") -> None:
        write_json_atomic(self.dir / name, summary)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()


def _checkpoint_steps(run_dir: Path) -> list[int]:
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return [int(m.group(1)) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The highest ``checkpoints/step_<N>`` of a run (complete ones only: saves are atomic)."""
    steps = _checkpoint_steps(Path(run_dir))
    return Path(run_dir) / "checkpoints" / f"step_{max(steps)}" if steps else None


def load_trainer_state(checkpoint: str | Path, optimizer: Any) -> dict[str, Any]:
    """Restore the optimizer and RNG saved by :meth:`Run.save_training_checkpoint`; returns the
    agent's counters. Loaded with ``weights_only=True``: no code runs."""
    import torch

    state = torch.load(Path(checkpoint) / TRAINER_STATE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state.pop("optimizer"))
    torch.set_rng_state(state.pop("torch_rng"))
    cuda_rng = state.pop("cuda_rng", [])
    if torch.cuda.is_available() and cuda_rng:
        torch.cuda.set_rng_state_all(cuda_rng)
    return state


def resumable_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest ``checkpoints/step_N`` of a run that holds a complete trainer state."""
    done = [s for s in _checkpoint_steps(Path(run_dir))
            if (Path(run_dir) / "checkpoints" / f"step_{s}" / TRAINER_STATE).is_file()]
    return Path(run_dir) / "checkpoints" / f"step_{max(done)}" if done else None
