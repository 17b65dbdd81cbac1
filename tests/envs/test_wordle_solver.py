"""Wordle expert solver and the scripted policies built on it."""

from __future__ import annotations

import numpy as np
import pytest

from agents.core.rollout import EpisodeSpec, play_episodes
from envs.wordle.env import WordleEnv, hard_mode_violation
from envs.wordle.feedback import feedback
from envs.wordle.lexicon import load_lexicon
from envs.wordle.policies import RandomWordPolicy, SolverPolicy, describe_constraints
from envs.wordle.solver import WordleSolver
from envs.wordle.text import parse_guess

SMALL = ["crane", "slate", "eerie", "elder", "speed", "abide", "there", "geese", "those", "hello",
         "lolly", "golly", "jolly", "holly", "allee", "eagle", "abbey", "sassy", "essay", "kebab"]


def play(solver: WordleSolver, answer: str, limit: int = 6) -> list[tuple[str, tuple[int, ...]]]:
    history: list[tuple[str, tuple[int, ...]]] = []
    while len(history) < limit:
        guess = solver.choose(history)
        history.append((guess, feedback(guess, answer)))
        if guess == answer:
            break
    return history


def test_solver_wins_official_subset_normal_mode(official_lexicon):
    solver = WordleSolver(official_lexicon)
    answers = official_lexicon.answers[::25]
    lengths = []
    for answer in answers:
        history = play(solver, answer)
        assert history[-1][0] == answer, (answer, history)
        assert all(g in official_lexicon.allowed_index for g, _ in history)
        lengths.append(len(history))
    assert max(lengths) <= 6
    assert np.mean(lengths) < 3.6  # the full official list averages about 3.42 guesses


def test_solver_wins_every_game_hard_mode_through_env(official_lists):
    answers_file, _ = official_lists
    answers = load_lexicon(answers_file).answers[::40]
    # the env checks every hint is honoured: a violation would show up as an invalid action
    make = lambda: WordleEnv(answers=list(answers), allowed=list(load_lexicon(answers_file).answers),  # noqa: E731
                             hard_mode=True)
    probe = make()
    policy = SolverPolicy.for_env(probe)
    specs = [EpisodeSpec(seed=i, options={"answer": a}) for i, a in enumerate(answers)]
    episodes = play_episodes(make, policy, specs, batch_size=16)
    assert len(episodes) == len(answers)
    for episode, answer in zip(episodes, answers, strict=True):
        assert episode.info["won"] and episode.info["answer"] == answer
        assert episode.info["invalid_count"] == 0 and len(episode.info["guesses"]) <= 6
        guesses, patterns = episode.info["guesses"], episode.info["patterns"]
        for k, guess in enumerate(guesses):
            assert hard_mode_violation(guess, list(zip(guesses[:k], patterns[:k], strict=True))) is None


@pytest.mark.parametrize("hard_mode", [False, True])
def test_solver_small_list_every_answer(hard_mode):
    solver = WordleSolver(load_lexicon(SMALL), hard_mode=hard_mode)
    counts = solver.guess_counts()
    for answer, count in zip(SMALL, counts, strict=True):
        history = play(solver, answer, limit=10)
        assert history[-1][0] == answer and len(history) == count <= 6
        if hard_mode:
            for k, (guess, _) in enumerate(history):
                assert hard_mode_violation(guess, history[:k]) is None


def test_solver_state_and_errors():
    solver = WordleSolver(load_lexicon(SMALL))
    assert solver.choose([]) == solver.choose([])  # deterministic
    history = [("hello", feedback("hello", "jolly"))]  # ? ? L L ? : the -olly family and no H/E
    alive = {SMALL[i] for i in solver.candidates(history)}
    assert alive == {w for w in SMALL if feedback("hello", w) == history[0][1]}
    assert "jolly" in alive and "hello" not in alive
    with pytest.raises(ValueError, match="no answer"):
        solver.choose([("crane", (2, 2, 2, 2, 1))])  # impossible feedback


def test_fixed_opener_replaces_the_search_and_must_be_allowed():
    searched = WordleSolver(load_lexicon(SMALL)).opener
    other = next(w for w in SMALL if w != searched)
    fixed = WordleSolver(load_lexicon(SMALL), opener=other)
    assert fixed.choose([]) == other
    history = play(fixed, "jolly", limit=10)  # the rest of the game is still solved
    assert history[0][0] == other and history[-1][0] == "jolly"
    with pytest.raises(ValueError, match="not an allowed guess"):
        WordleSolver(load_lexicon(SMALL), opener="zzzzz")


def test_solver_policy_acts_on_prompts_and_scores_actions():
    env = WordleEnv(answers=SMALL, prompt_style="compact")
    policy = SolverPolicy.for_env(env)
    obs, _ = env.reset(seed=0, options={"answer": "golly"})
    actions, logp = policy.act([obs], deterministic=True)
    first = parse_guess(actions[0]).word
    assert first == policy.solver.choose([]) and logp.shape == (1,)
    obs, *_ = env.step(actions[0])
    (action,), _ = policy.act([obs])
    assert parse_guess(action).word == policy.solver.choose(env.unwrapped._history)
    scores = policy.log_prob([obs, obs], [action, "<guess>zzzzz</guess>"])
    assert scores[0] == 0.0 and scores[1] == -np.inf
    with pytest.raises(NotImplementedError):
        policy.save("/tmp/nowhere")
    with pytest.raises(ValueError, match="think"):
        SolverPolicy(env.lexicon, think="verbose")


def test_describe_constraints():
    text = describe_constraints([("crane", (0, 1, 2, 0, 0))], 3)
    assert "Known: __a__." in text and "Also in the word: r." in text
    assert "Not in the word: c e n." in text and "3 possible answers left." in text
    assert "1 possible answer left." in describe_constraints([("crane", (2, 2, 2, 2, 0))], 1)


def test_random_word_policy_plays_valid_words():
    env = WordleEnv(answers=SMALL)
    policy = RandomWordPolicy.for_env(env, seed=0)
    obs, _ = env.reset(seed=0)
    actions, logp = policy.act([obs] * 5)
    assert all(parse_guess(a).word in env.lexicon.allowed_index for a in actions)
    np.testing.assert_allclose(logp, -np.log(len(env.lexicon.allowed)))  # uniform over them
    assert actions == RandomWordPolicy.for_env(env, seed=0).act([obs] * 5)[0]
