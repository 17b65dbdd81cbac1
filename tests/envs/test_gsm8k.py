"""GSM8K-v0: answer extraction that cannot be gamed, the reward table, prompts, data errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import envs  # noqa: F401
from envs.gsm8k import GSM8KEnv, extract_answer, is_correct, load_problems, normalize_number, strip_calculator
from envs.gsm8k.data import DataUnavailable

ROOT = Path(__file__).resolve().parents[2]
SHARED_GSM8K = ROOT.parent / "shared" / "data" / "gsm8k"
SHARED_TEST = SHARED_GSM8K / "test.jsonl"

PROBLEMS = [
    {"question": "Ann has 3 apples and buys 4 more. How many apples?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"},
    {"question": "A pen costs $1,200.50 less $0.50. Price?", "answer": "1200.50 - 0.50 = <<1200.5-0.5=1200>>1200\n#### 1,200"},
    {"question": "It is 5 degrees and drops 8. Temperature?", "answer": "5 - 8 = <<5-8=-3>>-3\n#### -3"},
]


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("18", "18"), ("$18", "18"), ("1,234", "1234"), ("18.", "18"), ("+18", "18"), ("3.0", "3"), ("-3", "-3"),
     ("−3", "-3"), ("0.50", "0.5"), ("-0", "0"), ("$ 1,000,000.00", "1000000")],
)
def test_normalize_number(raw: str, expected: str) -> None:
    assert normalize_number(raw) == expected


@pytest.mark.parametrize(
    ("text", "strict", "flexible"),
    [
        ("so she makes 9 * 2 = 18 dollars.\n#### 18", "18", "18"),
        ("#### $1,234.50.", "1234.5", "1234.5"),
        ("the answer is 18", None, "18"),
        ("#### 5\nwait, actually\n#### 6", "6", "6"),
        ("#### 7 and then 8 more", "7", "8"),
        ("no numbers at all", None, None),
        ("####", None, None),
    ],
)
def test_extract_answer_strict_and_flexible(text: str, strict: str | None, flexible: str | None) -> None:
    assert extract_answer(text, "strict") == strict
    assert extract_answer(text, "flexible") == flexible


def test_listing_candidates_does_not_game_strict_mode() -> None:
    reference = "#### 18"
    assert not is_correct("#### 17 #### 18 #### 19", reference)  # the last one counts: 19
    assert not is_correct("maybe 18, maybe 20\n#### 20", reference)
    assert not is_correct("18 18 18 18", reference)  # no #### line at all
    assert is_correct("18 18 18 18", reference, mode="flexible")
    assert is_correct("... #### 18.00", reference) and is_correct("#### $18", "18")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_extraction_never_raises_and_returns_canonical_numbers(text: str) -> None:
    for mode in ("strict", "flexible"):
        answer = extract_answer(text, mode)
        assert answer is None or normalize_number(answer) == answer


@settings(max_examples=100, deadline=None)
@given(st.integers(-10**9, 10**9), st.text(alphabet="abc xyz.\n", max_size=40))
def test_a_stated_final_answer_is_always_found(value: int, prose: str) -> None:
    text = f"{prose}\n#### {value:,}"
    assert extract_answer(text) == str(value)
    assert is_correct(text, f"work\n#### {value}")


def test_reward_table_and_info(data_file: Path) -> None:
    env = GSM8KEnv(data_path=data_file, format_weight=0.1)
    env.reset(options={"index": 1})
    _, reward, terminated, truncated, info = env.step("1200.50 - 0.50 = 1200\n#### 1,200")
    assert (reward, terminated, truncated) == (pytest.approx(1.1), True, False)
    assert info["reward_terms"] == {"correct": 1.0, "format": 0.1}
    assert info["extracted"] == info["reference"] == "1200" and info["correct"]
    env.reset(options={"index": 1})
    _, reward, *_ , info = env.step("I think it is 1200")
    assert reward == 0.0 and info["reward_terms"] == {"correct": 0.0, "format": 0.0}
    assert info["correct_flexible"] and not info["correct_strict"]
    env = GSM8KEnv(data_path=data_file, answer_mode="flexible")
    env.reset(options={"index": 2})
    assert env.step("so it is -3 degrees")[1] == 1.0


def test_prompt_rendering_and_seeding(data_file: Path) -> None:
    env = GSM8KEnv(data_path=data_file)
    obs, info = env.reset(options={"index": 0})
    assert obs == PROBLEMS[0]["question"] + "\n\nLet's think step by step and output the final answer after \"####\"."
    chat = GSM8KEnv(data_path=data_file, prompt_style="chat")
    _, info = chat.reset(options={"index": 0})
    assert [m["role"] for m in info["messages"]] == ["system", "user"] and info["messages"][1]["content"] == obs
    draws = [env.reset(seed=s)[1]["index"] for s in range(20)]
    assert draws == [env.reset(seed=s)[1]["index"] for s in range(20)] and len(set(draws)) == 3


@pytest.mark.parametrize("action", ["", "x" * 1_000_000, "\udcff\x00 ünïcödé #### ½", b"bytes", None, 12])
def test_any_action_is_scored_without_crashing(data_file: Path, action: object) -> None:
    env = GSM8KEnv(data_path=data_file)
    env.reset(seed=0)
    _, reward, terminated, _, _ = env.step(action)
    assert reward == 0.0 and terminated


def test_check_env_and_step_before_reset(data_file: Path) -> None:
    check_env(GSM8KEnv(data_path=data_file), skip_render_check=True)
    with pytest.raises(RuntimeError, match="reset"):
        GSM8KEnv(data_path=data_file).step("#### 1")


def test_bad_data_gives_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(PROBLEMS[0]) + "\n" + json.dumps({"question": "q", "answer": "no marker"}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not a GSM8K record"):
        load_problems("train", bad)
    with pytest.raises(DataUnavailable, match="pass data_path="):
        load_problems("train", tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="split must be one of"):
        load_problems("dev", bad)


def test_no_data_at_all_is_one_clear_error() -> None:
    code = ("import envs.gsm8k.data as d\n"
            "try:\n    d.load_problems('test')\nexcept d.DataUnavailable as e:\n    print('DATA-ERROR', e)\n")
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert "DATA-ERROR" in result.stdout and "data_path=" in result.stdout


def test_strip_calculator() -> None:
    assert strip_calculator("48/2 = <<48/2=24>>24 clips\n#### 24") == "48/2 = 24 clips\n#### 24"


@pytest.mark.skipif(not SHARED_TEST.is_file(), reason=f"GSM8K test split not found at {SHARED_TEST}")
def test_evaluate_cli_on_five_test_problems() -> None:
    kwargs = json.dumps({"split": "test", "data_path": str(SHARED_TEST)})
    result = subprocess.run([sys.executable, "-m", "agents.evaluate", "--env", "GSM8K-v0", "--env-kwargs", kwargs,
                             "--policy", "reference", "--episodes", "5", "--json"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["episodes"] == 5
    gsm8k = summary["gsm8k"]
    assert gsm8k["accuracy_strict"] == gsm8k["accuracy_flexible"] == gsm8k["format_compliance"] == 1.0
    assert gym.spec("GSM8K-v0").entry_point == "envs.gsm8k.env:GSM8KEnv"


def test_a_data_file_is_parsed_once_per_process_and_again_when_it_changes(tmp_path) -> None:
    path = tmp_path / "tiny.jsonl"
    path.write_text(json.dumps({"question": "1+1?", "answer": "1+1=2\n#### 2"}) + "\n")
    first, second = load_problems("train", path), load_problems("train", path)
    assert first is second  # envs built together share one read-only list
    path.write_text(json.dumps({"question": "2+2?", "answer": "#### 4"}) + "\n" * 3)
    assert [p.answer for p in load_problems("train", path)] == ["4"]


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_prompt_and_solution_of_the_data_lies_in_the_spaces(split: str) -> None:
    path = SHARED_GSM8K / f"{split}.jsonl"
    if not path.is_file():
        pytest.skip(f"GSM8K {split} split not found at {path}")
    env = GSM8KEnv(data_path=path)
    outside = [i for i in range(len(env.problems)) if not env.observation_space.contains(env.prompt(i))]
    assert outside == []
    assert all(env.action_space.contains(strip_calculator(p.solution)) for p in env.problems)


def test_a_prompt_with_unusual_characters_resets_without_checker_warnings(tmp_path: Path) -> None:
    odd = {"question": "Zoë paid 5\xa0€ for 2 crêpes\u200b and a сок.\u2028How much each?",
           "answer": "5/2 = 2.5\n#### 2.5"}
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps(odd) + "\n", encoding="utf-8")
    env = gym.make("envs:GSM8K-v0", data_path=str(path))  # with Gymnasium's passive checker
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_split_is_reported_truthfully(data_file: Path, tmp_path: Path) -> None:
    env = GSM8KEnv(data_path=data_file)
    assert env.split is None and env.data_path == str(data_file)  # a file is not "train" by default
    assert GSM8KEnv(split="test", data_path=data_file).split == "test"  # the caller's label, kept
    named_test = tmp_path / "test.jsonl"
    named_test.write_text(data_file.read_text())
    assert GSM8KEnv(split="test", data_path=named_test).split == "test"
    with pytest.raises(ValueError, match=r"split='train' but data_path .*test\.jsonl.* is the 'test' split"):
        GSM8KEnv(split="train", data_path=named_test)
    with pytest.raises(ValueError, match="split must be one of"):
        GSM8KEnv(split="dev", data_path=data_file)


def test_reset_draws_are_the_seeded_generator_draws(data_file: Path) -> None:
    env = GSM8KEnv(data_path=data_file)
    draws = [env.reset(seed=s)[1]["index"] for s in range(30)]
    assert draws == [int(np.random.default_rng(s).integers(len(PROBLEMS))) for s in range(30)]


def test_docstring_lists_every_info_key_and_the_sb3_caveat(data_file: Path) -> None:
    doc = GSM8KEnv.__doc__ or ""
    info_section = doc.split("## Info", 1)[1].split("\n    ## ", 1)[0]
    env = GSM8KEnv(data_path=data_file, prompt_style="chat")
    _, reset_info = env.reset(seed=0)
    *_, step_info = env.step("#### 7")
    for key in {*reset_info, *step_info}:
        assert f"``{key}``" in info_section, key
    assert "Stable-Baselines3" in doc and "HumanoidMimic-v1" in doc
