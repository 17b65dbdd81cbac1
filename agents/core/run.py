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
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from agents.core import distributed
from agents.core.checkpoint import MANIFEST, read_manifest, remove_staging, write_json_atomic
from agents.core.trajectory import Episode, write_episodes

_STEP_DIR = re.compile(r"^step_(\d+)$")
TRAINER_STATE = "trainer_state.pt"
TRAINER_SUMMARY = "trainer_state.json"
REFERENCE_DIR = "reference"  # the frozen reference of full fine-tuning (GRPO's KL, DPO), in the run folder


class RunFolderError(ValueError):
    """The run folder cannot be used as asked (it holds another run, or cannot be written)."""


def check_run_dir(directory: str | Path, *, resume: bool = False, overwrite: bool = False) -> None:
    """Fail before any work if ``directory`` cannot hold a new run (or, with ``resume``, this one).

    A folder that already holds files is another run: it is refused unless the caller resumes
    it or asked to ``overwrite`` it (the folder is emptied later, by :meth:`Run.start_over`).
    Writability is tested by creating a folder, since permission bits say nothing to root.
    """
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"run folder {path} is a file, not a folder")
    if path.is_dir() and not resume and not overwrite:
        held = sorted(p.name for p in path.iterdir())
        if held:
            shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
            raise RunFolderError(
                f"run folder {path} already holds a run ({shown}); continue it with --resume {path}, "
                f"choose another --run-dir, or add --overwrite to delete it and start over")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise RunFolderError(f"cannot create run folder {path}: {existing} is a file")
    try:
        probe = tempfile.mkdtemp(prefix=".write-test-", dir=existing)
    except OSError as err:
        raise RunFolderError(f"cannot create run folder {path}: {existing} is not writable ({err.strerror})") from err
    os.rmdir(probe)


class Run:
    def __init__(self, directory: str | Path, config: dict[str, Any] | None = None, tensorboard: bool = True):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "checkpoints").mkdir(exist_ok=True)
        for folder in (self.dir, self.dir / "checkpoints"):
            remove_staging(folder)  # what a save that was killed left behind
        if config is not None:
            self.write_config(config)
        self._tensorboard = tensorboard
        self._writer: Any = None
        self._last_log_step: int | None = None
        self._open_writer(purge_step=None)

    @staticmethod
    def default_dir(env_id: str, agent: str, seed: int, root: str | Path = "runs") -> Path:
        """``runs/<env>__<agent>__<seed>__<time>``, with ``_2``, ``_3``... if that folder exists."""
        base = Path(root) / f"{env_id}__{agent}__{seed}__{time.strftime('%Y%m%d-%H%M%S')}"
        candidate, n = base, 1
        while candidate.exists():
            n += 1
            candidate = base.with_name(f"{base.name}_{n}")
        return candidate

    def _open_writer(self, purge_step: int | None) -> None:
        if not self._tensorboard:
            return
        from torch.utils.tensorboard import SummaryWriter  # heavy: run folders are checked before torch loads

        if self._writer is not None:
            self._writer.close()
        # purge_step hides events a killed run logged after its last checkpoint: no doubled curves.
        self._writer = SummaryWriter(log_dir=str(self.dir), purge_step=purge_step)

    def write_config(self, config: dict[str, Any]) -> None:
        tmp = self.dir / ".config.yaml.tmp"
        tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        tmp.replace(self.dir / "config.yaml")

    def start_over(self) -> None:
        """Empty the folder but for ``config.yaml``: a restart must not mix with what ran before."""
        for path in self.dir.iterdir():
            if path.name in ("config.yaml", "checkpoints"):
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        shutil.rmtree(self.dir / "checkpoints")
        (self.dir / "checkpoints").mkdir()
        self._open_writer(purge_step=None)

    # -- paths --------------------------------------------------------------------------------
    @property
    def final_dir(self) -> Path:
        return self.dir / "final"

    @property
    def episodes_path(self) -> Path:
        return self.dir / "episodes.jsonl"

    def checkpoint_dir(self, step: int) -> Path:
        return self.dir / "checkpoints" / f"step_{step}"

    def save_training_checkpoint(self, step: int, policy: Any, optimizer: Any, state: dict[str, Any],
                                 keep: int, *, optimizer_state: dict[str, Any] | None = None,
                                 weights: dict[str, Any] | None = None) -> Path:
        """``checkpoints/step_<step>/``: the policy, then ``trainer_state.pt`` (optimizer, RNG and the
        agent's counters in ``state``, plus where the episode log and the TensorBoard curves stood,
        for :meth:`rollback`). A checkpoint is resumable once that file exists; older step
        checkpoints beyond ``keep`` are deleted. A sharded trainer passes what it gathered from
        every rank: ``optimizer_state`` (instead of ``optimizer.state_dict()``) and the policy's
        ``weights``."""
        import torch  # heavy: run folders are checked before torch loads

        target = self.checkpoint_dir(step)
        if weights is None:
            policy.save(target)
        else:
            policy.save(target, weights=weights)
        state = {**state, "episodes_bytes": self.episodes_path.stat().st_size if self.episodes_path.is_file() else 0,
                 "log_step": -1 if self._last_log_step is None else self._last_log_step,
                 "processes": distributed.size()}
        if optimizer_state is None:
            optimizer_state = optimizer.state_dict()
        payload = {**state, "optimizer": optimizer_state, "torch_rng": torch.get_rng_state(),
                   "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
        summary = {k: v for k, v in state.items() if isinstance(v, int | float | str)}
        write_json_atomic(target / TRAINER_SUMMARY, summary)
        tmp = target / f".{TRAINER_STATE}.tmp"
        torch.save(payload, tmp)
        os.replace(tmp, target / TRAINER_STATE)
        self.prune_checkpoints(keep)
        return target

    def prune_checkpoints(self, keep: int) -> None:
        steps = sorted(_checkpoint_steps(self.dir), reverse=True)
        for step in steps[keep:]:
            shutil.rmtree(self.checkpoint_dir(step), ignore_errors=True)

    def rollback(self, state: dict[str, Any]) -> None:
        """Back to a checkpoint being resumed: episodes logged after it are cut from
        ``episodes.jsonl`` (they are played again, not logged twice) and TensorBoard hides the
        points logged after it. One rule for every agent."""
        size = int(state.get("episodes_bytes", 0))
        if self.episodes_path.is_file() and self.episodes_path.stat().st_size > size:
            with self.episodes_path.open("r+b") as handle:
                handle.truncate(size)
        log_step = int(state.get("log_step", -1))
        self._last_log_step = log_step if log_step >= 0 else None
        self._open_writer(purge_step=log_step + 1)

    # -- logging ------------------------------------------------------------------------------
    def log(self, metrics: dict[str, float], step: int) -> None:
        self._last_log_step = step if self._last_log_step is None else max(step, self._last_log_step)
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
            self._writer = None


def _checkpoint_steps(run_dir: Path) -> list[int]:
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return [int(m.group(1)) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]


def load_trainer_state(checkpoint: str | Path, optimizer: Any, run: Run | None = None,
                       restore_optimizer: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Restore the optimizer and RNG saved by :meth:`Run.save_training_checkpoint`, roll ``run``
    back to the checkpoint (:meth:`Run.rollback`); returns the agent's counters. Loaded with
    ``weights_only=True``: no code runs. ``restore_optimizer``: loads the saved optimizer state in
    place of ``optimizer.load_state_dict`` (a trainer that may shard its model over processes)."""
    import torch  # heavy: run folders are checked before torch loads

    state = torch.load(Path(checkpoint) / TRAINER_STATE, map_location="cpu", weights_only=True)
    saved = state.pop("optimizer")
    if restore_optimizer is None:
        optimizer.load_state_dict(saved)
    else:
        restore_optimizer(saved)
    torch.set_rng_state(state.pop("torch_rng"))
    cuda_rng = state.pop("cuda_rng", [])
    if torch.cuda.is_available() and cuda_rng:
        torch.cuda.set_rng_state_all(cuda_rng)
    if run is not None:
        run.rollback(state)
    saved_by = int(state.get("processes", 1))
    if saved_by != distributed.size() and distributed.is_main():
        # The global batch does not depend on the process count, so the run goes on as it was.
        print(f"note: {checkpoint} was written by {saved_by} process(es) and resumes on {distributed.size()}: "
              "the global batch is the same, so the optimisation continues unchanged (but for float "
              "summation order)", file=sys.stderr)
    return state


def resumable_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest ``checkpoints/step_N`` of a run whose trainer state loads; a damaged newer one
    is reported on stderr and passed over for the one before it."""
    import torch  # heavy: run folders are checked before torch loads

    run_dir = Path(run_dir)
    for step in sorted(_checkpoint_steps(run_dir), reverse=True):
        candidate = run_dir / "checkpoints" / f"step_{step}"
        if not (candidate / TRAINER_STATE).is_file():
            continue  # a save still in progress when the run stopped: never complete
        try:
            torch.load(candidate / TRAINER_STATE, map_location="cpu", weights_only=True)
            json.loads((candidate / "policy.json").read_text(encoding="utf-8"))
        except Exception as err:  # torch and zipfile raise assorted types for damaged files
            print(f"warning: checkpoint {candidate} is damaged ({type(err).__name__}: {err}); "
                  "trying the one before it", file=sys.stderr)
            continue
        return candidate
    return None


# ------------------------------------------------------------------------------ a checkpoint's run
def run_folder_of(checkpoint: str | Path) -> Path:
    """The run folder of a checkpoint: ``<run>/final``, ``<run>/best`` or ``<run>/checkpoints/step_N``."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def checkpoint_run_config(checkpoint: str | Path) -> dict[str, Any]:
    """The resolved ``config.yaml`` of the run a checkpoint belongs to; ``{}`` when there is none."""
    path = run_folder_of(checkpoint) / "config.yaml"
    if not (Path(checkpoint) / MANIFEST).is_file() or not path.is_file():
        return {}
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}


def checkpoint_env(checkpoint: str | Path) -> tuple[str | None, dict[str, Any]]:
    """(env id, env kwargs) a checkpoint is evaluated on by default: its run's env with the final
    evaluation's kwargs, else the ``env_id`` in its ``policy.json`` metadata (MLP policies)."""
    config = checkpoint_run_config(checkpoint)
    if config.get("env"):
        return str(config["env"]), {**(config.get("env_kwargs") or {}), **(config.get("eval_env_kwargs") or {})}
    if (Path(checkpoint) / MANIFEST).is_file():
        metadata = read_manifest(checkpoint).get("metadata") or {}
        if isinstance(metadata, dict) and metadata.get("env_id"):
            return str(metadata["env_id"]), {}
    return None, {}


def reference_of(checkpoint: str | Path) -> Path:
    """The frozen reference saved by the run that wrote ``checkpoint`` (``<run>/checkpoints/step_N``)."""
    saved = Path(checkpoint).parent.parent / REFERENCE_DIR
    if not (saved / "config.json").is_file():
        raise FileNotFoundError(
            f"cannot resume {checkpoint} exactly: its run has no {REFERENCE_DIR}/ (the frozen reference, the "
            "weights before the first update, written by the run's start); start the run again with --init")
    return saved
