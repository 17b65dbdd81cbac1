"""The evaluate CLI on Wordle-v0, run as users run it: ``python -m agents.evaluate ... --json``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def evaluate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agents.evaluate", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def summary_of(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1  # --json prints exactly one object, no table or progress bar
    return json.loads(lines[0])


def check_consistent(summary: dict, episodes: int) -> None:
    # The common keys at the top level, Wordle's own metrics under "wordle".
    assert set(summary) == {"env", "policy", "episodes", "mean_return", "std_return", "mean_length", "wordle"}
    assert summary["env"] == "Wordle-v0" and summary["policy"] == "solver"
    assert summary["episodes"] == episodes
    wordle = summary["wordle"]
    assert sum(wordle["guess_histogram"].values()) == episodes
    wins = episodes - wordle["guess_histogram"]["fail"]
    assert wordle["win_rate"] == pytest.approx(wins / episodes)
    # win reward: the return of an episode is 1 for a win, so the mean return is the win rate
    assert summary["mean_return"] == pytest.approx(wordle["win_rate"])
    if wins:
        by_hist = sum(int(k) * v for k, v in wordle["guess_histogram"].items() if k != "fail") / wins
        assert wordle["mean_guesses"] == pytest.approx(by_hist)


def test_default_lexicon_solver_json():
    summary = summary_of(evaluate("--env", "Wordle-v0", "--policy", "solver", "--episodes", "5", "--json"))
    check_consistent(summary, 5)
    assert summary["wordle"]["win_rate"] == 1.0 and summary["wordle"]["invalid_actions"] == 0
    assert 1 <= summary["wordle"]["mean_guesses"] <= 6


def test_official_lists_through_env_kwargs(official_lists):
    answers, allowed = official_lists
    kwargs = json.dumps({"answers": str(answers), "allowed": str(allowed)})
    summary = summary_of(evaluate("--env", "Wordle-v0", "--env-kwargs", kwargs, "--policy", "solver",
                                  "--episodes", "8", "--seed", "100", "--json"))
    check_consistent(summary, 8)
    assert summary["wordle"]["win_rate"] == 1.0 and summary["wordle"]["guess_histogram"]["fail"] == 0


def test_episodes_all_on_tiny_answers_file(tmp_path):
    words = ["crane", "slate", "eerie", "elder", "lolly", "hello", "abbey"]
    answers = tmp_path / "answers.txt"
    answers.write_text("# tiny\n" + "\n".join(words) + "\n")
    episodes_out = tmp_path / "episodes.jsonl"
    summary = summary_of(evaluate("--env-kwargs", json.dumps({"answers": str(answers)}), "--policy", "solver",
                                  "--episodes", "all", "--episodes-out", str(episodes_out), "--json"))
    check_consistent(summary, len(words))
    assert summary["wordle"]["win_rate"] == 1.0
    played = [json.loads(line)["info"]["answer"] for line in episodes_out.read_text().splitlines()]
    assert played == words  # every answer once, in file order


@pytest.mark.parametrize(("args", "fragment"), [
    (["--env-kwargs", "{bad json"], "--env-kwargs is not valid JSON"),
    (["--env-kwargs", "[1, 2]"], "must be a JSON object"),
    (["--policy", "no-such-policy"], "no-such-policy"),
    (["--env", "Wordle-v9"], "unknown env"),
    (["--episodes", "zero"], "--episodes"),
    (["--no-repeat-ngram", "3"], "language-model policies only"),
])
def test_error_exits_with_one_line(args, fragment):
    result = evaluate("--episodes", "2", *args, "--json")  # a later --episodes overrides the 2
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("error:") and fragment in lines[0]
    assert result.stdout == ""


def test_bad_lexicon_file_error_names_the_line(tmp_path):
    answers = tmp_path / "answers.txt"
    answers.write_text("crane\nslat\n")
    result = evaluate("--env-kwargs", json.dumps({"answers": str(answers)}), "--episodes", "1", "--json")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{answers}:2:" in lines[0]
