"""Gymnasium environments of posttrain-gym. Importing this package registers every id.

Other code reaches them with ``gym.make("envs:Wordle-v0")``: Gymnasium imports the module
named before the colon, which runs the registrations below. An id another package registered
first is replaced (with a warning naming it): ``gym.make("envs:Wordle-v0")`` must never hand
out a foreign env. A package registering one of these ids *after* this import wins, and
Gymnasium itself warns ("Overriding environment ...").

Importing this package also repairs ``AsyncVectorEnv`` with shared memory (its default) for
``Text`` observation spaces, see :class:`SharedTextBatch`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.envs.registration import register, registry
from gymnasium.spaces import Text, unflatten
from gymnasium.vector.utils import shared_memory as _shared_memory


def _register(env_id: str, entry_point: str, **kwargs: Any) -> None:
    existing = registry.get(env_id)
    if existing is not None:
        if existing.entry_point == entry_point:
            return  # ours already (importlib.reload, a second import path): nothing to say
        warnings.warn(
            f"{env_id} was already registered by another package (entry point {existing.entry_point!r}); "
            f"posttrain-gym replaces it with {entry_point!r}", stacklevel=2)
        del registry[env_id]  # register() would add Gymnasium's own, vaguer, warning
    register(id=env_id, entry_point=entry_point, **kwargs)


class SharedTextBatch(Sequence[str]):
    """The text observations of an ``AsyncVectorEnv`` that uses shared memory, decoded from the
    shared buffer whenever they are read.

    Gymnasium 1.4 decodes a ``Text`` buffer once, when the vector env is built, into a tuple, and
    then hands that same tuple out after every reset and step: every observation reads as the
    empty buffer, ``"0000…"`` (the same pattern as its issue 1164 for ``Dict`` spaces). With
    ``copy=True`` (the default) each reset and step returns a plain tuple of strings, as the
    ``SyncVectorEnv`` does; with ``copy=False`` it returns this live view, which the next step
    overwrites (as the shared arrays of ``Box`` observations are).
    """

    def __init__(self, space: Text, buffer: Any, n: int = 1) -> None:
        self._space, self._buffer = space, buffer
        self._codes = np.frombuffer(buffer.get_obj(), dtype=np.int32).reshape(n, space.max_length)

    def __len__(self) -> int:
        return len(self._codes)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self)[index]
        # the worker wrote flatten(space, obs): decode with Gymnasium's own inverse
        return unflatten(self._space, self._codes[index])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]  # the contents change with every step

    def __deepcopy__(self, memo: dict) -> tuple[str, ...]:
        return tuple(self)

    def __reduce__(self):
        return tuple, (tuple(self),)  # the shared buffer only lives in this vector env

    def __repr__(self) -> str:
        return repr(tuple(self))


def _read_live_text(space: Text, shared_memory: Any, n: int = 1) -> Any:
    return SharedTextBatch(space, shared_memory, n)


def _repair_async_text_observations() -> None:
    reader = _shared_memory.read_from_shared_memory.dispatch(Text)
    # Only replace Gymnasium's own reader: a later release may fix it (or change the layout).
    if (reader.__module__, reader.__name__) == (_shared_memory.__name__, "_read_text_from_shared_memory"):
        _shared_memory.read_from_shared_memory.register(Text, _read_live_text)


_repair_async_text_observations()

# Text envs have no natural step limit beyond their own rules (Wordle ends after max_guesses
# plus the invalid-action budget), so no TimeLimit wrapper is added.
_register("Wordle-v0", "envs.wordle.env:WordleEnv", disable_env_checker=True)

# HumanoidMimic: 30 Hz control, 20 s episodes. One id per DeepMimic clip shipped with pybullet.
# v1 has DeepMimic's episode rules (the env's defaults); v0 keeps the earlier ones for old results.
# The rules live in envs.mimic.env, which imports MuJoCo: spell v0's here to keep this import light.
_MIMIC_V0_RULES = {"sync_root": False, "reference_velocity": "euler", "zero_fall_reward": False,
                   "fall_bodies": "auto", "clip_end": "truncate"}
_MIMIC_CLIPS = ("backflip", "cartwheel", "crawl", "dance_a", "dance_b", "getup_facedown", "getup_faceup",
                "jump", "kick", "punch", "roll", "run", "spin", "spinkick", "walk")
# gym.make_vec builds the vector env that computes all copies' rewards in one pass (envs.mimic.vector).
_MIMIC, _MIMIC_VECTOR = "envs.mimic.env:HumanoidMimicEnv", "envs.mimic.vector:HumanoidMimicVectorEnv"
for _version, _rules in (("v1", {}), ("v0", _MIMIC_V0_RULES)):
    _register(f"HumanoidMimic-{_version}", _MIMIC, max_episode_steps=600, vector_entry_point=_MIMIC_VECTOR,
              kwargs={"motion": "walk", **_rules})
    for _clip in _MIMIC_CLIPS:
        _id = "HumanoidMimic-" + "".join(part.capitalize() for part in _clip.split("_")) + f"-{_version}"
        _register(_id, _MIMIC, max_episode_steps=600, vector_entry_point=_MIMIC_VECTOR,
                  kwargs={"motion": _clip, **_rules})
del _clip, _id, _version, _rules
_register("GSM8K-v0", "envs.gsm8k.env:GSM8KEnv")
