"""Wordle-v0 benchmark: feedback matrix, env steps and solver games, against simple peers. Prints JSON.

    python bench/wordle.py                    # about 2-3 minutes on one free core
    python bench/wordle.py --repeats 1 --floor-guesses 100 --steps 2000

Needs the official lists in ``../shared/data/wordle`` (or ``--data DIR``) and, for the env-step peer,
``pip install textarena`` (in the ``bench`` extra); without it the peer is reported as skipped.

What is measured (best of ``--repeats`` where repeated, because the machine may be shared):

- ``pattern_matrix``: the full 12,972 x 2,315 matrix of ``envs.wordle.feedback.pattern_matrix``,
  uncached. Floor: a plain per-pair Python implementation of the NYT rule (``plain_feedback``
  below), timed on ``--floor-guesses`` guesses x all answers and reported per pattern.
  Goal: full matrix <= 3 s.
- ``env_step``: ``gym.make("envs:Wordle-v0")`` on the official lists, random allowed guesses,
  resetting at episode end; the pattern matrix is built before timing. Peer: TextArena's
  ``ta.make("Wordle-v0")`` with its default wrappers, playing random answers in ``[word]`` format
  (one step = ``get_observation`` + ``step``, which is what a TextArena agent loop does). Its
  ``LLMObservationWrapper`` keeps every message since the env was made (``reset`` does not clear
  it), so one reused env slows down quadratically (about 5,000 steps/s over 500 steps but under 100
  over 20,000 here); the benchmark clears that history at each reset, as a fresh env per game would.
- ``solver``: all 2,315 official answers, each played with ``WordleSolver.choose`` + ``feedback``.
  ``cold``: empty cache dir and a new solver, so it includes the matrix build, the opener search
  and the whole game-tree search; ``warm_disk``: a new solver with the disk cache filled (matrix and
  opener loaded, tree searched again); ``warm``: the same solver again (tree memoised).
  Goal: all games <= 60 s (cold).

TextArena without a network: its Wordle env loads nltk's ``words`` corpus and POS tagger at import
and construction (and calls ``nltk.download``), which cannot be fetched here. Before importing
textarena the benchmark replaces ``nltk.download`` with a no-op, ``nltk.pos_tag`` with a tagger that
calls every word a noun, and ``nltk.corpus.words`` with an object serving the official lists
(``en-basic`` -> answers, ``en`` -> answers + allowed guesses). So TextArena draws secrets from the
official answers and accepts the official guesses (plus its bundled hunspell dictionaries).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym
import numpy as np

from envs.wordle.feedback import feedback, pattern_matrix
from envs.wordle.lexicon import Lexicon, load_lexicon
from envs.wordle.solver import WordleSolver

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wordle"
GOAL_MATRIX_S = 3.0
GOAL_SOLVER_S = 60.0


def plain_feedback(guess: str, answer: str) -> int:
    """The NYT rule, written the obvious way: greens, then yellows from the leftover letters."""
    marks = [0, 0, 0, 0, 0]
    left = Counter()
    for i in range(5):
        if guess[i] == answer[i]:
            marks[i] = 2
        else:
            left[answer[i]] += 1
    for i in range(5):
        if marks[i] == 0 and left[guess[i]] > 0:
            marks[i] = 1
            left[guess[i]] -= 1
    return marks[0] + 3 * marks[1] + 9 * marks[2] + 27 * marks[3] + 81 * marks[4]


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_matrix(lex: Lexicon, repeats: int, floor_guesses: int) -> dict:
    pairs = len(lex.allowed) * len(lex.answers)
    ours_s = best_time(lambda: pattern_matrix(lex.allowed, lex.answers), repeats)
    rng = np.random.default_rng(0)
    sample = [lex.allowed[i] for i in rng.choice(len(lex.allowed), size=floor_guesses, replace=False)]
    plain_s = best_time(lambda: [[plain_feedback(g, a) for a in lex.answers] for g in sample], 1)
    # the floor must agree with the matrix it is compared to
    check = pattern_matrix(sample[:20], lex.answers)
    plain = np.array([[plain_feedback(g, a) for a in lex.answers] for g in sample[:20]])
    assert (check == plain).all(), "pattern_matrix disagrees with the plain rule"
    ours_rate = pairs / ours_s
    plain_rate = floor_guesses * len(lex.answers) / plain_s
    return {
        "shape": [len(lex.allowed), len(lex.answers)],
        "full_matrix_s": round(ours_s, 3),
        "patterns_per_s": round(ours_rate),
        "goal_full_matrix_s": GOAL_MATRIX_S,
        "meets_goal": ours_s <= GOAL_MATRIX_S,
        "plain_python": {"patterns_per_s": round(plain_rate), "full_matrix_s_extrapolated": round(pairs / plain_rate, 1),
                         "sampled_guesses": floor_guesses},
        "ratio_vs_plain_python": round(ours_rate / plain_rate, 1),
    }


def ours_steps_per_s(answers: Path, allowed: Path, steps: int, reward: str) -> float:
    env = gym.make("envs:Wordle-v0", answers=str(answers), allowed=str(allowed), reward=reward)
    words = env.unwrapped.lexicon.allowed
    env.unwrapped.patterns  # noqa: B018  (build / load the matrix outside the timed loop)
    rng = np.random.default_rng(0)
    actions = [f"<think>random</think><guess>{words[i]}</guess>" for i in rng.integers(len(words), size=steps)]
    env.reset(seed=0)
    start = time.perf_counter()
    for k, action in enumerate(actions):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset(seed=k)
    return steps / (time.perf_counter() - start)


def install_offline_nltk(answers: list[str], allowed: list[str]) -> None:
    """Stand-ins for the nltk data TextArena's Wordle loads (see the module docstring)."""
    import nltk
    import nltk.corpus

    class OfficialWords:
        def words(self, fileids: str = "en") -> list[str]:
            return list(answers) if fileids == "en-basic" else list(answers) + list(allowed)

    nltk.download = lambda *args, **kwargs: True
    nltk.pos_tag = lambda tokens, *args, **kwargs: [(t, "NN") for t in tokens]
    nltk.corpus.words = OfficialWords()


def textarena_steps_per_s(answers: list[str], allowed: list[str], steps: int) -> float:
    install_offline_nltk(answers, allowed)
    import textarena as ta

    env = ta.make("Wordle-v0")
    layers, game = [env], env
    while hasattr(game, "env"):
        game = game.env
        layers.append(game)
    assert set(game.word_list) == set(answers), "the official answers did not reach TextArena"
    # LLMObservationWrapper keeps every message since construction (reset does not clear it), so a
    # reused env slows down quadratically; clear it per game, as a fresh env per game would be.
    histories = [layer for layer in layers if hasattr(layer, "full_observations")]

    def new_game(seed: int) -> None:
        for layer in histories:
            layer.full_observations = {}
        env.reset(num_players=1, seed=seed)

    rng = np.random.default_rng(0)
    picks = rng.integers(len(allowed), size=steps)
    new_game(0)
    start = time.perf_counter()
    for k in range(steps):
        env.get_observation()
        done, _ = env.step(action=f"[{allowed[picks[k]]}]")
        if done:
            env.close()
            new_game(k)
    return steps / (time.perf_counter() - start)


def play_all(solver: WordleSolver, answers: tuple[str, ...]) -> np.ndarray:
    counts = np.zeros(len(answers), dtype=np.int64)
    for n, answer in enumerate(answers):
        history: list[tuple[str, tuple[int, ...]]] = []
        while True:
            guess = solver.choose(history)
            history.append((guess, feedback(guess, answer)))
            if guess == answer:
                break
            if len(history) > 20:
                raise RuntimeError(f"solver did not find {answer!r}")
        counts[n] = len(history)
    return counts


def bench_solver(lex: Lexicon) -> dict:
    previous = os.environ.get("POSTTRAIN_GYM_CACHE")
    with tempfile.TemporaryDirectory(prefix="wordle-bench-cache-") as cache:
        os.environ["POSTTRAIN_GYM_CACHE"] = cache
        try:
            start = time.perf_counter()
            solver = WordleSolver(lex)
            counts = play_all(solver, lex.answers)
            cold_s = time.perf_counter() - start

            start = time.perf_counter()
            play_all(WordleSolver(lex), lex.answers)
            warm_disk_s = time.perf_counter() - start

            start = time.perf_counter()
            again = play_all(solver, lex.answers)
            warm_s = time.perf_counter() - start
        finally:
            if previous is None:
                os.environ.pop("POSTTRAIN_GYM_CACHE", None)
            else:
                os.environ["POSTTRAIN_GYM_CACHE"] = previous
    assert (again == counts).all()
    games = len(lex.answers)
    return {
        "games": games,
        "opener": solver.opener,
        "win_rate_within_6": float((counts <= 6).mean()),
        "mean_guesses": round(float(counts.mean()), 4),
        "max_guesses": int(counts.max()),
        "cold_s": round(cold_s, 2),
        "cold_games_per_s": round(games / cold_s, 1),
        "warm_disk_s": round(warm_disk_s, 2),
        "warm_disk_games_per_s": round(games / warm_disk_s, 1),
        "warm_s": round(warm_s, 3),
        "warm_games_per_s": round(games / warm_s, 1),
        "goal_all_games_s": GOAL_SOLVER_S,
        "meets_goal": cold_s <= GOAL_SOLVER_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with answers.txt, allowed_guesses.txt")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats of the matrix build (best counts)")
    parser.add_argument("--floor-guesses", type=int, default=300, help="guesses the plain-Python floor is timed on")
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per env")
    parser.add_argument("--skip-solver", action="store_true", help="leave out the solver games (the slow part)")
    args = parser.parse_args()

    answers_path, allowed_path = args.data / "answers.txt", args.data / "allowed_guesses.txt"
    if not (answers_path.is_file() and allowed_path.is_file()):
        raise SystemExit(f"error: official Wordle lists not found in {args.data} (use --data DIR)")
    lex = load_lexicon(answers_path, allowed_path)
    result: dict = {"machine": {"python": platform.python_version(), "numpy": np.__version__,
                                "cpus": os.cpu_count(), "platform": platform.platform()}}
    result["pattern_matrix"] = bench_matrix(lex, args.repeats, args.floor_guesses)

    ours = ours_steps_per_s(answers_path, allowed_path, args.steps, "win")
    shaped = ours_steps_per_s(answers_path, allowed_path, args.steps, "shaped")
    step: dict = {"steps": args.steps, "ours_win_steps_per_s": round(ours), "ours_shaped_steps_per_s": round(shaped)}
    try:
        official_allowed = [w for w in lex.allowed if w not in lex.answer_index]
        peer = textarena_steps_per_s(list(lex.answers), official_allowed, args.steps)
        step |= {"textarena_steps_per_s": round(peer), "ratio_vs_textarena": round(ours / peer, 1)}
    except ImportError as err:
        step["textarena"] = f"skipped: {err}"
    result["env_step"] = step

    if not args.skip_solver:
        result["solver"] = bench_solver(lex)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
