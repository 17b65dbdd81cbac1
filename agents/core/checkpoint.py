"""Atomic checkpoint directories and safe loading.

A checkpoint is a directory. It is written under a temporary sibling name and renamed into
place only when complete, so an interrupted save never leaves a half-written ``final/`` or
``step_N/`` behind. Every checkpoint holds ``policy.json`` naming the policy kind; tensors
are stored with safetensors (no code runs on load).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MANIFEST = "policy.json"
STAGING_PREFIX = ".staging-"  # folders being written (or replaced) by atomic_directory


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete or of the wrong kind."""


@contextlib.contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` once the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # mkdir, not tempfile.mkdtemp: the umask applies, so checkpoints get the run folder's mode
    # (mkdtemp makes 0700 folders). A kill leaves the staging folder: remove_staging clears it.
    staging = target.parent / f"{STAGING_PREFIX}{target.name}.{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        yield staging
        if target.exists():
            trash = target.with_name(f"{STAGING_PREFIX}{target.name}.old")
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(target, trash)
            os.replace(staging, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_staging(folder: str | Path) -> list[Path]:
    """Delete what interrupted :func:`atomic_directory` saves left in ``folder``; returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    leftovers = [p for p in folder.iterdir() if p.name.startswith(STAGING_PREFIX) and p.is_dir()]
    for path in leftovers:
        original = folder / path.name[len(STAGING_PREFIX):].removesuffix(".old")
        if path.name.endswith(".old") and not original.exists():
            os.replace(path, original)  # killed between the two renames: the old copy is the latest
        else:
            shutil.rmtree(path, ignore_errors=True)
    return leftovers


def write_json_atomic(path: str | Path, payload: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Read ``policy.json`` of a checkpoint, with an error that says what is wrong."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint {directory} does not exist or is not a directory")
    manifest = directory / MANIFEST
    if not manifest.is_file():
        raise CheckpointError(
            f"{directory} is not a checkpoint: {MANIFEST} is missing (point at runs/<run>/final "
            "or runs/<run>/checkpoints/step_<N>)"
        )
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{manifest} is corrupt: {err}") from err
    if not isinstance(data, dict) or "kind" not in data:
        raise CheckpointError(f"{manifest} has no 'kind' field")
    return data
