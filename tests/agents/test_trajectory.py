"""Episode records in episodes.jsonl: float arrays are stored packed and read back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from agents.core.trajectory import Episode, read_episodes, write_episodes


def box_episode(obs: np.ndarray, actions: np.ndarray) -> Episode:
    n = len(obs)
    return Episode(env_id="HumanoidMimic-v1", seed=3, observations=obs, actions=actions,
                   rewards=(0.5,) * n, terminated=True, truncated=False, reward_terms={"pose": 0.2 * n})


@settings(max_examples=40, deadline=None)
@given(data=st.data(), steps=st.integers(1, 6), dtype=st.sampled_from(["float16", "float32", "float64"]))
def test_packed_arrays_round_trip_exactly(tmp_path_factory, data, steps: int, dtype: str) -> None:
    floats = hnp.from_dtype(np.dtype(dtype), allow_nan=True, allow_infinity=True)
    obs = data.draw(hnp.arrays(dtype, (steps, 7), elements=floats))
    actions = data.draw(hnp.arrays(dtype, (steps, 3), elements=floats))
    path = tmp_path_factory.mktemp("log") / "episodes.jsonl"
    write_episodes(path, [box_episode(obs, actions)])
    (back,) = read_episodes(path)
    assert len(back.observations) == steps and back.length == steps
    # bit-exact, NaN and infinity included
    assert np.asarray(back.observations).dtype == np.dtype(dtype)
    assert np.asarray(back.observations).tobytes() == obs.tobytes()
    assert np.asarray(back.actions).tobytes() == actions.tobytes()
    assert back.rewards == (0.5,) * steps and back.return_ == pytest.approx(0.5 * steps)


def test_packing_is_smaller_than_decimal_lists(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    obs, actions = rng.normal(size=(50, 224)).astype(np.float32), rng.uniform(-1, 1, (50, 28)).astype(np.float32)
    write_episodes(tmp_path / "packed.jsonl", [box_episode(obs, actions)])
    write_episodes(tmp_path / "lists.jsonl", [box_episode(tuple(obs.round(5).tolist()), tuple(actions.round(5).tolist()))])
    packed, lists = (tmp_path / "packed.jsonl").stat().st_size, (tmp_path / "lists.jsonl").stat().st_size
    assert packed < 0.7 * lists
    # lists (text envs, older logs) still read back as they were written
    (back,) = read_episodes(tmp_path / "lists.jsonl")
    assert back.observations[0] == obs[0].round(5).tolist()


@pytest.mark.parametrize("damage", [
    lambda a: a.update(array="int8"),
    lambda a: a.update(base64="not base64!"),
    lambda a: a.update(shape=[3, 5]),
    lambda a: a.pop("shape"),
])
def test_a_damaged_packed_array_names_the_line(tmp_path: Path, damage) -> None:
    path = tmp_path / "episodes.jsonl"
    write_episodes(path, [box_episode(np.zeros((2, 4), np.float32), np.ones((2, 2), np.float32))])
    row = json.loads(path.read_text())
    damage(row["observations"])
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=r"episodes\.jsonl:1: .*packed array is malformed"):
        list(read_episodes(path))


def text_episode(seed: int) -> Episode:
    return Episode(env_id="Wordle-v0", seed=seed, observations=("prompt",), actions=("<guess>crane</guess>",),
                   rewards=(1.0,), terminated=True, truncated=False)


@settings(max_examples=30, deadline=None)
@given(cut=st.integers(1, 200))
def test_a_last_line_cut_short_is_skipped_with_a_warning(tmp_path_factory, cut: int) -> None:
    path = tmp_path_factory.mktemp("log") / "episodes.jsonl"
    write_episodes(path, [text_episode(0), text_episode(1)])
    whole = path.read_bytes()
    last = whole.splitlines(keepends=True)[-1]
    path.write_bytes(whole[: len(whole) - len(last)] + last[: min(cut, len(last) - 2)])  # killed mid-write
    with pytest.warns(UserWarning, match="cut short"):
        assert [e.seed for e in read_episodes(path)] == [0]


def test_a_broken_line_before_the_end_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "episodes.jsonl"
    write_episodes(path, [text_episode(0)])
    with path.open("a") as handle:
        handle.write('{"env_id": "Wordle\n')
    write_episodes(path, [text_episode(1)])
    with pytest.raises(ValueError, match=r"episodes\.jsonl:2: not valid JSON"):
        list(read_episodes(path))
