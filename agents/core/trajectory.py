"""Frozen episode records and their JSON-lines (de)serialisation.

Learners never parse logs themselves: rollouts produce :class:`Episode` records, which are
validated on construction, written one per line to ``episodes.jsonl`` and read back here.

Observations or actions given as one float numpy array (steps x dims, e.g. a humanoid's) are
stored packed: ``{"array": "float32", "shape": [n, d], "base64": ...}`` (little-endian bytes),
exact and about 60% of the size of 5-decimal lists, and read back as a tuple of rows.
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.jsonl import read_json_lines


@dataclass(frozen=True)
class TurnTokens:
    """What a language-model policy actually sampled on one turn (and what was trained on)."""

    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    logprobs: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.completion_ids) != len(self.logprobs):
            raise ValueError(
                f"TurnTokens: {len(self.completion_ids)} completion ids but {len(self.logprobs)} log-probs"
            )


@dataclass(frozen=True)
class Episode:
    """One finished (or cut) episode.

    ``observations`` has one entry per action (the observation the action answered), so text
    episodes read as a transcript of (prompt, completion) turns.
    """

    env_id: str
    seed: int | None
    observations: tuple[Any, ...] | np.ndarray
    actions: tuple[Any, ...] | np.ndarray
    rewards: tuple[float, ...]
    terminated: bool
    truncated: bool
    reward_terms: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    tokens: tuple[TurnTokens, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.actions)
        if len(self.observations) != n or len(self.rewards) != n:
            raise ValueError(
                f"Episode: {len(self.observations)} observations, {n} actions and "
                f"{len(self.rewards)} rewards must have equal length"
            )
        if self.tokens is not None and len(self.tokens) != n:
            raise ValueError(f"Episode: {len(self.tokens)} token records for {n} actions")

    @property
    def return_(self) -> float:
        return float(sum(self.rewards))

    @property
    def length(self) -> int:
        return len(self.actions)

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["observations"] = _pack(self.observations)
        row["actions"] = _pack(self.actions)
        row["return"] = self.return_
        row["length"] = self.length
        row["info"] = _jsonable(self.info)
        if self.tokens is None:
            del row["tokens"]
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Episode:
        missing = {"env_id", "seed", "observations", "actions", "rewards", "terminated", "truncated"} - set(row)
        if missing:
            raise ValueError(f"episode record lacks {sorted(missing)}")
        tokens = row.get("tokens")
        return cls(
            env_id=row["env_id"],
            seed=row["seed"],
            observations=_unpack(row["observations"]),
            actions=_unpack(row["actions"]),
            rewards=tuple(float(r) for r in row["rewards"]),
            terminated=bool(row["terminated"]),
            truncated=bool(row["truncated"]),
            reward_terms={k: float(v) for k, v in row.get("reward_terms", {}).items()},
            info=row.get("info", {}),
            tokens=None if tokens is None else tuple(
                TurnTokens(tuple(t["prompt_ids"]), tuple(t["completion_ids"]), tuple(t["logprobs"]))
                for t in tokens
            ),
        )


_PACKED_DTYPES = ("float16", "float32", "float64")


def _pack(values: Any) -> Any:
    if isinstance(values, np.ndarray) and values.ndim >= 2 and values.dtype.name in _PACKED_DTYPES:
        data = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
        return {"array": values.dtype.name, "shape": list(values.shape),
                "base64": base64.b64encode(data.tobytes()).decode("ascii")}
    return [_jsonable(v) for v in values]


def _unpack(value: Any) -> tuple[Any, ...]:
    if not isinstance(value, dict):
        return tuple(value)
    try:
        dtype, shape = value["array"], [int(n) for n in value["shape"]]
        if dtype not in _PACKED_DTYPES:
            raise ValueError(f"array type {dtype!r} is not one of {_PACKED_DTYPES}")
        data = base64.b64decode(value["base64"], validate=True)
        array = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
    except (KeyError, TypeError, ValueError) as err:  # binascii.Error is a ValueError
        raise ValueError(f"packed array is malformed ({err})") from err
    return tuple(array.astype(dtype))  # native byte order, one row per step


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else (1e308 if value > 0 else -1e308)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def write_episodes(path: str | Path, episodes: Iterable[Episode], append: bool = True) -> int:
    """Append episodes to a JSON-lines log (or, ``append=False``, replace it atomically);
    returns how many were written. Each call writes whole lines in one write, so a kill cuts at
    most the last line short, and :func:`read_episodes` passes over such a line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(episode.to_json(), ensure_ascii=False) + "\n" for episode in episodes]
    if append:
        with path.open("a", encoding="utf-8") as handle:
            handle.write("".join(lines))
    else:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(lines), encoding="utf-8")
        os.replace(tmp, path)
    return len(lines)


def read_episodes(paths: str | Path | Sequence[str | Path]) -> Iterator[Episode]:
    """Read episodes back; a malformed line raises an error naming file and line. A last line
    cut short (no newline: the writer was killed mid-write) is skipped with a warning."""
    if isinstance(paths, str | Path):
        paths = [paths]
    for path in map(Path, paths):
        for where, row in read_json_lines(path, unterminated_tail_ok=True):
            try:
                yield Episode.from_json(row)
            except (ValueError, TypeError, KeyError, AttributeError) as err:
                raise ValueError(f"{where}: not a valid episode record ({err})") from err
