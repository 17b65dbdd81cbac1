"""Task files and train / held-out task splits, for any env with a task list (``all_tasks``).

A task is the reset options of one episode: ``{"answer": "crane"}`` (Wordle), ``{"index": 7}``
(GSM8K), ``{"phase": 0.25}`` (humanoid). A task file holds one JSON object per line; episode i of
a file plays with seed ``seed + i``. Runs with a held-out split write theirs as
``tasks_train.jsonl`` and ``tasks_held_out.jsonl``, which ``python -m agents.evaluate --tasks``
replays.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.core.rollout import EpisodeSpec
from envs.jsonl import read_json_lines

Task = dict[str, Any]
TaskSplit = tuple[list[Task], list[Task]]  # (training tasks, held-out tasks)
SPLIT_FILES = ("tasks_train.jsonl", "tasks_held_out.jsonl")


def read_task_options(path: str | Path) -> list[Task]:
    """The reset options in a task file, checked: a JSON object per line, at least one."""
    if not Path(path).is_file():
        raise ValueError(f"task file {str(path)!r} does not exist (a JSON-lines file of reset options)")
    tasks = []
    for where, row in read_json_lines(path, error=ValueError):
        if not isinstance(row, dict):
            raise ValueError(f"{where}: a task must be a JSON object of reset options, got {type(row).__name__}")
        tasks.append(row)
    if not tasks:
        raise ValueError(f"{path}: no tasks in the file")
    return tasks


def read_tasks(path: str | Path, seed: int = 0) -> list[EpisodeSpec]:
    """Episodes from a task file: task i with seed ``seed + i``."""
    return [EpisodeSpec(seed=seed + i, options=task) for i, task in enumerate(read_task_options(path))]


def write_tasks(path: str | Path, tasks: Sequence[Task]) -> None:
    Path(path).write_text("".join(json.dumps(task) + "\n" for task in tasks), encoding="utf-8")


def split_tasks(tasks: Sequence[Task], train_fraction: float, seed: int) -> TaskSplit:
    """A deterministic train / held-out split (same tasks and seed -> same split), each half in
    the natural order of its tasks' values (Wordle: alphabetical, GSM8K: by index)."""
    if not 0 < train_fraction <= 1:
        raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
    order = np.random.default_rng(seed).permutation(len(tasks))
    cut = round(train_fraction * len(tasks))

    def ordered(indices: Sequence[int]) -> list[Task]:
        return sorted((tasks[i] for i in indices), key=lambda task: [task[k] for k in sorted(task)])

    return ordered(order[:cut].tolist()), ordered(order[cut:].tolist())


def write_split(run_dir: str | Path, split: TaskSplit) -> None:
    for name, tasks in zip(SPLIT_FILES, split, strict=True):
        write_tasks(Path(run_dir) / name, tasks)


def read_split(run_dir: str | Path) -> TaskSplit | None:
    """A run's split from its task files, or None when it has none."""
    paths = [Path(run_dir) / name for name in SPLIT_FILES]
    if not all(p.is_file() for p in paths):
        return None
    train, held_out = (read_task_options(p) for p in paths)
    return train, held_out
