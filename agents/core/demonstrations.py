"""Demonstration data in the formats a user brings: chat conversations for language models,
and observation / action arrays for Gaussian MLP policies.

Conversations are lists of ``{"role", "content"}`` messages, read from JSON lines
(``{"messages": [...]}`` or ``{"prompt": ..., "completion": ...}``) or from Anthropic HH-RLHF
text (``\\n\\nHuman: … \\n\\nAssistant: …``), each record checked with an error that names its
file and line. Preference pairs (a prompt, a chosen and a rejected reply) come from HH rows (two
transcripts that share every turn but the last assistant turn) or from preference JSON lines;
rows that do not fit are counted by reason, not fatal. Arrays come from an ``.npz`` (``observations``, ``actions``, optional ``groups``).
The envs' own demonstrations (Wordle solver games, GSM8K worked solutions, mocap) live beside
the envs, in ``envs/<env>/demos.py``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
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


# ------------------------------------------------------------------------------ preference pairs
@dataclass(frozen=True)
class PreferencePair:
    """A prompt (every turn before the reply) and two replies to it, the chosen one preferred."""

    prompt: Conversation
    chosen: str
    rejected: str


@dataclass
class PreferenceData:
    """The pairs a file held, how many rows were read and why the others were skipped."""

    pairs: list[PreferencePair]
    read: int
    skipped: Counter[str] = field(default_factory=Counter)

    def report(self) -> dict[str, int]:
        return {"rows_read": self.read, "pairs_kept": len(self.pairs), **{f"skipped_{k}": v for k, v in
                                                                          sorted(self.skipped.items())}}


def preference_pair(prompt: Conversation, chosen: str, rejected: str) -> PreferencePair | str:
    """The pair, or why it cannot train (the reason a skipped row is counted under)."""
    if not prompt or prompt[-1]["role"] == "assistant":
        return "no_prompt"
    if not chosen.strip() or not rejected.strip():
        return "empty_completion"
    if chosen == rejected:
        return "identical"
    return PreferencePair(prompt, chosen, rejected)


def hh_pair(chosen_text: str, rejected_text: str) -> PreferencePair | str:
    """An HH row's two transcripts -> prompt messages + the two final assistant replies; or the
    reason they do not have that shape (``not_hh``, ``different_prompts``, ``no_final_reply``, ...)."""
    try:
        chosen, rejected = parse_hh(chosen_text), parse_hh(rejected_text)
    except DataError:
        return "not_hh"
    if chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        return "no_final_reply"
    if chosen[:-1] != rejected[:-1]:
        return "different_prompts"
    return preference_pair(chosen[:-1], chosen[-1]["content"], rejected[-1]["content"])


def hh_preferences(path: str | Path) -> PreferenceData:
    """Preference pairs from an HH-RLHF JSONL file (``chosen`` / ``rejected`` transcripts)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"HH data file {str(path)!r} does not exist")
    data = PreferenceData([], 0)
    for _, row in read_json_lines(path, DataError):
        data.read += 1
        if not isinstance(row, dict) or not isinstance(row.get("chosen"), str) or \
                not isinstance(row.get("rejected"), str):
            data.skipped["not_hh"] += 1
            continue
        _keep(data, hh_pair(row["chosen"], row["rejected"]))
    return data


def _reply(value: Any) -> str | None:
    """A reply given as text, or as a list holding one assistant message (the conversational form)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict) and \
            value[0].get("role") == "assistant" and isinstance(value[0].get("content"), str):
        return str(value[0]["content"])
    return None


def read_preferences_jsonl(path: str | Path) -> PreferenceData:
    """Preference pairs from JSON lines: ``prompt`` (text, or messages) or ``messages``, and
    ``chosen`` / ``rejected`` (text, or one assistant message in a list)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"preference data file {str(path)!r} does not exist")
    data = PreferenceData([], 0)
    for where, row in read_json_lines(path, DataError):
        data.read += 1
        if not isinstance(row, dict) or "chosen" not in row or "rejected" not in row:
            raise DataError(f"{where}: expected an object with 'chosen', 'rejected' and 'prompt' or 'messages'")
        raw_prompt = row.get("prompt", row.get("messages"))
        if isinstance(raw_prompt, str):
            prompt: Conversation = [{"role": "user", "content": raw_prompt}] if raw_prompt.strip() else []
        elif isinstance(raw_prompt, list) and raw_prompt:
            if not all(isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)
                       for m in raw_prompt):
                raise DataError(f"{where}: the prompt messages must be objects with a role in {ROLES} and "
                                "string content")
            prompt = [{"role": m["role"], "content": m["content"]} for m in raw_prompt]
        else:
            prompt = []
        chosen, rejected = _reply(row["chosen"]), _reply(row["rejected"])
        if chosen is None or rejected is None:
            raise DataError(f"{where}: 'chosen' and 'rejected' must be strings or [one assistant message]")
        _keep(data, preference_pair(prompt, chosen, rejected))
    if not data.read:
        raise DataError(f"{path}: no rows (the file is empty)")
    return data


def _keep(data: PreferenceData, pair: PreferencePair | str) -> None:
    if isinstance(pair, str):
        data.skipped[pair] += 1
    else:
        data.pairs.append(pair)


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
