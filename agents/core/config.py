"""Typed configs: dataclass defaults < YAML file < ``--set key=value`` overrides.

Every agent has one config dataclass whose fields carry a one-line ``help``. A training
config (YAML) has the run-level keys of :class:`RunConfig` at the top and the agent's keys
under a section named after the agent::

    env: Wordle-v0
    agent: sft
    env_kwargs: {prompt_style: compact}
    sft:
      learning_rate: 1.0e-3

Unknown keys anywhere are an error that lists the valid ones.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
# Keys that were renamed: a config written before (a run folder being resumed) still loads.
RENAMED = {"train_answer_fraction": "train_task_fraction"}


class ConfigError(ValueError):
    """A config file or override names an unknown key or a value of the wrong type."""


def field(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with a help string (shown by ``--help`` and in errors)."""
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def inherited(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """Another default for a field a base settings class declares: its help stays the base's
    (filled in by :func:`settings`), so each key is documented once."""
    return field(default, default_factory=default_factory, help="")


def settings(cls: type[T]) -> type[T]:
    """``@dataclass`` for settings classes: fields redeclared with :func:`inherited` take the help
    text of the base class that declared them."""
    data_cls = dataclasses.dataclass(cls)
    for f in dataclasses.fields(data_cls):  # type: ignore[arg-type]
        if f.metadata.get("help"):
            continue
        for base in data_cls.__mro__[1:]:
            declared = getattr(base, "__dataclass_fields__", {}).get(f.name)
            if declared is not None and declared.metadata.get("help"):
                f.metadata = types.MappingProxyType({**f.metadata, "help": declared.metadata["help"]})
                break
    return data_cls


EVAL_ALL = "all"


@settings
class RunConfig:
    """Run-level settings shared by every agent."""

    env: str = field("Wordle-v0", help="registered env id")
    agent: str = field("sft", help="the algorithm (the list under 'agents' in --help)")
    env_kwargs: dict[str, Any] = field(default_factory=dict, help="env constructor kwargs")
    seed: int = field(0, help="the one seed: model init, data order, sampling and env episodes")
    device: str | None = field(None, help="torch device (default: cuda when available, else cpu)")
    model: str | None = field(None, help="Hugging Face checkpoint path or hub id (default: the built-in tiny model)")
    init: str | None = field(None, help="start from this checkpoint directory (e.g. runs/<sft>/final)")
    run_dir: str | None = field(None, help="run folder (default: runs/<env>__<agent>__<seed>__<time>)")
    eval_episodes: int | str = field(EVAL_ALL, help="episodes for the final evaluation: a number, 'all' (the env's task list), or 0 to skip it")
    eval_batch_size: int = field(128, help="episodes played in lockstep during evaluation")
    eval_env_kwargs: dict[str, Any] = field(default_factory=dict, help="env kwargs changed for the final evaluation (e.g. {split: test})")

    def __post_init__(self) -> None:
        if isinstance(self.eval_episodes, str) and self.eval_episodes != EVAL_ALL:
            try:
                self.eval_episodes = int(self.eval_episodes)
            except ValueError:
                raise ValueError(f"eval_episodes must be a number or 'all', got {self.eval_episodes!r}") from None
        if isinstance(self.eval_episodes, int) and self.eval_episodes < 0:
            raise ValueError(f"eval_episodes must be >= 0 (0 skips the evaluation), got {self.eval_episodes}")
        if self.eval_batch_size < 1:
            raise ValueError(f"eval_batch_size must be >= 1, got {self.eval_batch_size}")

    @property
    def evaluates(self) -> bool:
        return self.eval_episodes != 0


# ------------------------------------------------------------------------------ shared trainer keys
# Each trainer's config (agents/algos/configs.py) combines the groups it uses; a trainer with
# another default redeclares the field with inherited(default).
DEFAULT_LORA_TARGETS: tuple[str, ...] = (
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
)


@settings
class OptimizerSettings:
    learning_rate: float = field(1e-3, help="peak AdamW learning rate")
    weight_decay: float = field(0.0, help="AdamW weight decay (matrices only; biases and norms are not decayed)")
    max_grad_norm: float = field(1.0, help="gradient clipping norm")


@settings
class CheckpointSettings:
    keep_checkpoints: int = field(2, help="step checkpoints kept on disk (the newest; older ones are deleted)")


@settings
class PeriodicCheckpointSettings(CheckpointSettings):
    save_every: int = field(500, help="write checkpoints/step_N every N steps (the trainer's steps: optimizer steps, iterations)")


@settings
class LoggingSettings:
    log_every: int = field(20, help="log train/* every N optimizer steps")


@settings
class LanguageModelSettings:
    """How a language-model trainer builds or adapts its model."""

    lora_r: int = field(0, help="LoRA rank; 0 trains all weights")
    lora_alpha: float = field(16.0, help="LoRA scaling alpha")
    lora_dropout: float = field(0.05, help="LoRA dropout")
    lora_targets: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS), help="module names LoRA adapts")
    model_config: dict[str, Any] = field(default_factory=dict, help="overrides of the built-in model's LlamaConfig (e.g. hidden_size)")
    max_new_tokens: int = field(64, help="longest completion per turn when the policy acts (saved with it)")


def field_help(cls: type) -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check/convert a YAML value to the field's annotated type (simple types only)."""
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing) | {"Any": Any})  # annotations are our own code
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin in (dict,) or annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if origin in (list, tuple, Sequence) or annotation in (list, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, key) for v in value]
        return tuple(items) if origin is tuple or annotation is tuple else items
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads "1e-3" (no dot) as a string
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def build(cls: type[T], values: dict[str, Any], where: str) -> T:
    """Instantiate ``cls`` from ``values``; unknown keys and bad types raise :class:`ConfigError`."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = dict(values)
    for old, new in RENAMED.items():
        if old in values and new in names and new not in values:
            warnings.warn(f"{where}.{old} is now called {new}; please rename it", stacklevel=2)
            values[new] = values.pop(old)
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from err


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    return data


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["sft.lr=1e-4", "seed=3"]`` -> nested dict, values parsed as YAML scalars."""
    result: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {pair!r} conflicts with another override")
        node[parts[-1]] = value
    return result


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "env_kwargs":
            out[key] = merge(out[key], value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
