"""Building envs from an id and keyword arguments, checked before anything is built, and what
kind of actions an env takes (which picks the policy and the agents that fit it)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

import envs  # noqa: F401  (importing the package registers every id)
from envs.protocol import ActionKind, declared_action_kind

EnvFactory = Callable[[], gym.Env]


def parse_env_kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--env-kwargs is not valid JSON ({err.msg} at char {err.pos}): {text!r}") from err
    if not isinstance(value, dict):
        raise ValueError(f"--env-kwargs must be a JSON object, got {type(value).__name__}")
    return value


def make_env_fn(env_id: str, env_kwargs: dict[str, Any]) -> EnvFactory:
    """A zero-argument function building ``env_id`` with ``env_kwargs``; an unknown id or an
    argument the env does not take is a ``ValueError`` now, before anything is built."""
    if env_id not in gym.registry:
        known = sorted(k for k in gym.registry if not k.startswith(("ALE/", "phys2d/", "tabular/")))
        ours = [k for k in known if gym.registry[k].entry_point.__str__().startswith("envs.")]
        raise ValueError(f"unknown env {env_id!r}; ours: {', '.join(ours)}")
    check_env_kwargs(env_id, env_kwargs)

    def make() -> gym.Env:
        try:
            return gym.make(env_id, **env_kwargs)
        except TypeError as err:  # a value of the wrong kind deep in the constructor
            raise ValueError(f"cannot build {env_id} with env kwargs {env_kwargs}: {err}") from err

    return make


def check_env_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Refuse keyword arguments that neither the env's constructor nor ``gym.make`` takes."""
    spec = gym.registry[env_id]
    creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    if creator is None:
        return
    params = inspect.signature(creator).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    takes = [name for name, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    of_make = set(inspect.signature(gym.make).parameters) - {"id", "kwargs"}
    unknown = sorted(set(env_kwargs) - set(takes) - of_make)
    if unknown:
        raise ValueError(f"{env_id} takes no argument(s) {', '.join(map(repr, unknown))} (env kwargs); "
                         f"it takes: {', '.join(takes)}")


def as_make_env(env: str | EnvFactory) -> EnvFactory:
    """An agent's ``learn(env)`` argument as an env factory: an env id (default kwargs) or a
    zero-argument function such as ``make_env_fn(env_id, kwargs)``."""
    if isinstance(env, str):
        return make_env_fn(env, {})
    if not callable(env):
        raise TypeError("env must be an env id or a function that builds the env (make_env_fn(env_id, kwargs))")
    return env




def action_kind(env_id: str, env_kwargs: dict[str, Any] | None = None) -> ActionKind:
    """``"text"`` (language-model policies) or ``"box"`` (Gaussian MLP policies): what the env
    class declares (``envs.protocol.DeclaresActions``), else what its built action space is."""
    spec = gym.registry.get(env_id)
    if spec is None:
        raise ValueError(f"unknown env {env_id!r}")
    creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    declared = declared_action_kind(creator)
    if declared is not None:
        return declared
    env = make_env_fn(env_id, env_kwargs or {})()
    try:
        if isinstance(env.action_space, gym.spaces.Box):
            return "box"
        if isinstance(env.action_space, gym.spaces.Text):
            return "text"
        raise ValueError(f"{env_id} has {type(env.action_space).__name__} actions; the agents here take "
                         "Text actions (language models) or Box actions (Gaussian MLPs)")
    finally:
        env.close()
