"""Config layering: defaults < YAML < --set, unknown keys and bad types are errors."""

from __future__ import annotations

import dataclasses

import pytest

from agents.core.config import ConfigError, RunConfig, build, field, merge, parse_overrides, read_yaml


@dataclasses.dataclass
class Example:
    rate: float = field(0.1, help="a rate")
    steps: int = field(10, help="steps")
    name: str | None = field(None, help="optional name")
    flag: bool = field(False, help="a flag")
    items: list[str] = field(default_factory=lambda: ["a"], help="items")


def test_build_coerces_yaml_scalars_and_keeps_defaults() -> None:
    config = build(Example, {"rate": "1e-3", "steps": 5.0, "items": "x, y"}, "example")
    assert config == Example(rate=0.001, steps=5, name=None, flag=False, items=["x", "y"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rat": 1.0}, "unknown key(s) rat; valid keys: flag, items, name, rate, steps"),
        ({"steps": 1.5}, "example.steps: expected an integer"),
        ({"flag": "yes"}, "example.flag: expected true/false"),
        ({"rate": "fast"}, "example.rate: expected a number"),
    ],
)
def test_build_rejects_unknown_keys_and_wrong_types(values: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build(Example, values, "example")
    assert message in str(err.value)


def test_overrides_parse_dotted_keys_and_yaml_values() -> None:
    # YAML 1.1 reads 3e-4 (no dot) as text; build() coerces it to the field's float.
    assert parse_overrides(["sft.learning_rate=3e-4", "seed=7", "env_kwargs={reward: shaped}", "name="]) == {
        "sft": {"learning_rate": "3e-4"}, "seed": 7, "env_kwargs": {"reward": "shaped"}, "name": ""}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["seed"])


def test_merge_is_deep_for_sections() -> None:
    base = {"sft": {"a": 1, "b": 2}, "env_kwargs": {"x": 1}}
    assert merge(base, {"sft": {"b": 3}, "env_kwargs": {"y": 2}}) == {
        "sft": {"a": 1, "b": 3}, "env_kwargs": {"x": 1, "y": 2}}


def test_read_yaml_errors_name_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("env: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        read_yaml(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        read_yaml(listing)
    with pytest.raises(ConfigError, match="does not exist"):
        read_yaml(tmp_path / "missing.yaml")


def test_every_run_field_has_help() -> None:
    assert all(f.metadata.get("help") for f in dataclasses.fields(RunConfig))
