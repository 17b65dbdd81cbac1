"""What agents may ask of an env beyond ``gymnasium.Env``: small typed protocols, one per
capability, each optional. The envs here declare theirs (mypy checks them against these
protocols, see the end of this file); any other Gymnasium env works with the agents too, with
the defaults the accessor functions below give when a capability is missing.

| protocol | members | used for |
|---|---|---|
| :class:`DeclaresActions` | ``action_kind``: ``"text"`` or ``"box"`` (class attribute) | choosing the policy and agents without building the env (else its spaces decide) |
| :class:`HasTasks` | ``all_tasks()``: reset options, one per task | ``--episodes all``, train / held-out task splits |
| :class:`ScoresEpisodes` | ``metrics_key``, ``summarize_episodes(episodes)`` | the env's own metrics in evaluation summaries (under ``metrics_key``) and GRPO's ``rollout/*`` |
| :class:`ReportsProgress` | ``progress_postfix(episodes)`` | the evaluation progress bar |
| :class:`HasScriptedPolicies` | ``scripted_policies``: name -> factory ``(env, seed=) -> policy`` | ``--policy solver``, baselines |
| :class:`PlaysMotionClip` | ``clip`` (with a ``name``) | tying a humanoid policy to the clip it learnt |
| (an ``info`` key) | ``info["messages"]`` from ``reset`` / ``step``: the next observation as chat messages | language-model policies get these instead of the text (``agents.core.rollout``), rendered with the checkpoint's chat template |

Envs import nothing from ``agents``; an episode here is anything with the members of
:class:`EpisodeRecord` (``agents.core.trajectory.Episode`` has them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

ActionKind = Literal["text", "box"]


class EpisodeRecord(Protocol):
    """What ``summarize_episodes`` may read of a finished episode."""

    @property
    def info(self) -> dict[str, Any]: ...  # the final step's info
    @property
    def return_(self) -> float: ...
    @property
    def length(self) -> int: ...
    @property
    def terminated(self) -> bool: ...
    @property
    def tokens(self) -> Sequence[Any] | None: ...  # a language model's sampled ids per turn


class ScriptedPolicyFactory(Protocol):
    def __call__(self, env: Any, seed: int | None = None) -> Any: ...


@runtime_checkable
class DeclaresActions(Protocol):
    action_kind: ClassVar[ActionKind]


@runtime_checkable
class HasTasks(Protocol):
    def all_tasks(self) -> list[dict[str, Any]]: ...


@runtime_checkable
class ScoresEpisodes(Protocol):
    metrics_key: ClassVar[str]

    def summarize_episodes(self, episodes: Sequence[EpisodeRecord]) -> dict[str, Any]: ...


@runtime_checkable
class ReportsProgress(Protocol):
    def progress_postfix(self, episodes: Sequence[EpisodeRecord]) -> dict[str, str]: ...


@runtime_checkable
class HasScriptedPolicies(Protocol):
    @property
    def scripted_policies(self) -> Mapping[str, ScriptedPolicyFactory]: ...


class MotionClip(Protocol):
    @property
    def name(self) -> str: ...


@runtime_checkable
class PlaysMotionClip(Protocol):
    @property
    def clip(self) -> MotionClip: ...


# ------------------------------------------------------------------------------ accessors
def declared_action_kind(env_class: Any) -> ActionKind | None:
    """The ``action_kind`` an env class declares, or None (then its spaces tell)."""
    kind = getattr(env_class, "action_kind", None)
    return kind if kind in ("text", "box") else None


def task_list(env: Any) -> list[dict[str, Any]] | None:
    """``env.unwrapped.all_tasks()``, or None for an env without a task list."""
    inner = env.unwrapped
    return inner.all_tasks() if isinstance(inner, HasTasks) else None


def episode_metrics(env: Any, episodes: Sequence[EpisodeRecord]) -> tuple[str, dict[str, Any]] | None:
    """``(metrics_key, metrics)`` of the env's own summary of ``episodes``, or None."""
    inner = env.unwrapped
    if not isinstance(inner, ScoresEpisodes):
        return None
    return inner.metrics_key, inner.summarize_episodes(episodes)


def progress_postfix(env: Any, episodes: Sequence[EpisodeRecord]) -> dict[str, str]:
    inner = env.unwrapped
    return inner.progress_postfix(episodes) if isinstance(inner, ReportsProgress) else {}


def scripted_policies(env: Any) -> Mapping[str, ScriptedPolicyFactory]:
    inner = env.unwrapped
    return inner.scripted_policies if isinstance(inner, HasScriptedPolicies) else {}


def motion_clip(env: Any) -> MotionClip | None:
    inner = env.unwrapped
    return inner.clip if isinstance(inner, PlaysMotionClip) else None


if TYPE_CHECKING:  # mypy: the envs of this package have the capabilities they claim
    from envs.gsm8k.env import GSM8KEnv
    from envs.mimic.env import HumanoidMimicEnv
    from envs.wordle.env import WordleEnv

    def _wordle(env: WordleEnv) -> tuple[DeclaresActions, HasTasks, ScoresEpisodes, ReportsProgress,
                                          HasScriptedPolicies]:
        return env, env, env, env, env

    def _gsm8k(env: GSM8KEnv) -> tuple[DeclaresActions, HasTasks, ScoresEpisodes, ReportsProgress,
                                        HasScriptedPolicies]:
        return env, env, env, env, env

    def _mimic(env: HumanoidMimicEnv) -> tuple[DeclaresActions, ScoresEpisodes, HasScriptedPolicies,
                                                PlaysMotionClip]:
        return env, env, env, env
