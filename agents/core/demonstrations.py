"""Demonstration data in the formats a user brings: chat conversations for language models,
and observation / action arrays for Gaussian MLP policies.

Conversations are lists of ``{"role", "content"}`` messages, read from JSON lines
(``{"messages": [...]}`` or ``{"prompt": ..., "completion": ...}``) or from Anthropic HH-RLHF
text (``\\n\\nHuman: … \\n\\nAssistant: …``), each record checked with an error that names its
file and line. Arrays come from an ``.npz`` (``observations``, ``actions``, optional ``groups``).
The envs' own demonstrations (Wordle solver games, GSM8K worked solutions, mocap) live beside
the envs, in ``envs/<env>/demos.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from envs.jsonl import read_json_lines

Conversation = list[dict[str, str]]
ROLES = ("system", "user", "assistant")


class DataError(ValueError):
    """Demonstration data is malformed; the message names the file and line."""


def validate_conversation(messages: Any, where: str) -> Conversation:
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: 'messages' must be a non-empty list")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise DataError(f"{where}: message {i} must be an object with string 'role' and 'content'")
        if message.get("role") not in ROLES:
            raise DataError(f"{where}: message {i} has role {message.get('role')!r}; expected one of {ROLES}")
        out.append({"role": message["role"], "content": message["content"]})
    if not any(m["role"] == "assistant" for m in out):
        raise DataError(f"{where}: the conversation has no assistant turn (nothing to learn from)")
    return out


def read_conversations_jsonl(path: str | Path) -> list[Conversation]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist")
    conversations = []
    for where, row in read_json_lines(path, DataError):
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object")
        if "messages" in row:
            conversations.append(validate_conversation(row["messages"], where))
        elif "prompt" in row and "completion" in row:
            if not isinstance(row["prompt"], str) or not isinstance(row["completion"], str):
                raise DataError(f"{where}: 'prompt' and 'completion' must be strings")
            conversations.append([{"role": "user", "content": row["prompt"]},
                                  {"role": "assistant", "content": row["completion"]}])
        else:
            raise DataError(f"{where}: expected 'messages' or 'prompt'+'completion' keys, got {sorted(row)}")
    if not conversations:
        raise DataError(f"{path}: no conversations (the file is empty)")
    return conversations


_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


def parse_hh(text: str) -> Conversation:
    """``"\\n\\nHuman: hi\\n\\nAssistant: hello"`` -> user/assistant messages (multi-turn)."""
    pieces = _HH_TURN.split(text)
    if len(pieces) < 3 or pieces[0].strip():
        raise DataError("HH text must start with '\\n\\nHuman:' and alternate speakers")
    messages = []
    for speaker, content in zip(pieces[1::2], pieces[2::2], strict=True):
        messages.append({"role": "user" if speaker == "Human" else "assistant", "content": content.strip()})
    return messages


def hh_conversations(path: str | Path, field: str = "chosen") -> list[Conversation]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"HH data file {str(path)!r} does not exist")
    conversations = []
    for where, row in read_json_lines(path, DataError):
        try:
            conversation = parse_hh(row[field])
        except (KeyError, TypeError, DataError) as err:
            raise DataError(f"{where}: not an HH-RLHF record ({err})") from err
        if any(m["role"] == "assistant" and m["content"] for m in conversation):
            conversations.append(conversation)
    if not conversations:
        raise DataError(f"{path}: no conversations")
    return conversations


def demo_arrays(demos: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(observations float32 [N, d], actions float32 [N, k], groups int64 [N])`` from a record
    with those attributes or an ``.npz`` path (groups default to one per sample)."""
    if isinstance(demos, str | Path):
        path = Path(demos)
        if not path.is_file():
            raise ValueError(f"demonstration file {str(path)!r} does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: not a readable .npz file ({err})") from err
        missing = {"observations", "actions"} - set(arrays)
        if missing:
            raise ValueError(f"{path}: lacks array(s) {', '.join(sorted(missing))}")
    else:
        arrays = {k: getattr(demos, k, None) for k in ("observations", "actions", "groups")}
    obs = np.asarray(arrays["observations"], dtype=np.float32)
    act = np.asarray(arrays["actions"], dtype=np.float32)
    groups = arrays.get("groups")
    groups = np.arange(len(obs), dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    if obs.ndim != 2 or act.ndim != 2 or groups.shape != (len(obs),) or len(act) != len(obs):
        raise ValueError(f"demonstrations need observations [N, d], actions [N, k] and groups [N]; got "
                         f"{obs.shape}, {act.shape}, {groups.shape}")
    if len(obs) == 0:
        raise ValueError("no demonstrations")
    if not (np.isfinite(obs).all() and np.isfinite(act).all()):
        raise ValueError("demonstrations hold NaN or infinity")
    return obs, act, groups
