"""Wordle reward terms on worked examples, directly and through the env."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.wordle.env import WordleEnv
from envs.wordle.feedback import encode, feedback
from envs.wordle.rewards import feedback_use, information_gain

# Tiny lexicon whose splits are obvious: ABCDE/ABCDF/ABCDG share their first four letters,
# VWXYZ shares nothing with them.
TINY = ["abcde", "abcdf", "abcdg", "vwxyz"]


def test_feedback_use_first_guess_all_untried():
    assert feedback_use("crane", []) == pytest.approx(5 * 0.05)


def test_feedback_use_worked():
    history = [("crane", (0, 1, 2, 0, 0))]  # C x, R elsewhere, A right, N x, E x
    # B untried +.05, R back in its "-" spot -.2, A kept +.2, V untried +.05, E absent -.5
    assert feedback_use("brave", history) == pytest.approx(-0.4)
    # R known letter in a new spot +.1, O +.05, A kept +.2, S +.05, T +.05
    assert feedback_use("roast", history) == pytest.approx(0.45)
    # C absent -.5, R back in its "-" spot -.2, A kept +.2, N absent -.5, E absent -.5
    assert feedback_use("crane", history) == pytest.approx(-0.5 - 0.2 + 0.2 - 0.5 - 0.5)


def test_feedback_use_duplicate_grey_is_not_absent():
    # SPEED against e.g. BIERS: E@2 green, E@3 grey only caps the count of E
    history = [("speed", (0, 0, 2, 0, 0))]
    # T +.05, H +.05, E kept +.2, R +.05, E present +.1 ; nothing punished as absent
    assert feedback_use("there", history) == pytest.approx(0.45)
    # S absent -.5, P absent -.5, E@2 kept +.2, W untried +.05, S absent -.5
    assert feedback_use("spews", history) == pytest.approx(-0.5 - 0.5 + 0.2 + 0.05 - 0.5)


def test_information_gain_by_hand():
    lex_rows = {g: np.array([encode(feedback(g, a)) for a in TINY], dtype=np.uint8) for g in TINY}
    everyone = np.arange(4)
    # ABCDE splits {ABCDE} {ABCDF, ABCDG} {VWXYZ}: E[H after] = 2/4 * 1 bit; H0 = 2 bits
    assert information_gain(lex_rows["abcde"], everyone) == pytest.approx((2 - 0.5) / 2)
    # VWXYZ splits {VWXYZ} {the other three}: E[H after] = 3/4 * log2 3
    assert information_gain(lex_rows["vwxyz"], everyone) == pytest.approx((2 - 0.75 * math.log2(3)) / 2)
    # among ABCDF/ABCDG, ABCDF separates them completely
    assert information_gain(lex_rows["abcdf"], np.array([1, 2])) == pytest.approx(1.0)
    # ... and VWXYZ tells them nothing
    assert information_gain(lex_rows["vwxyz"], np.array([1, 2])) == pytest.approx(0.0)
    assert information_gain(lex_rows["abcde"], np.array([3])) == 0.0


def test_win_mode_terms():
    env = WordleEnv(answers=TINY)
    env.reset(seed=0, options={"answer": "abcdf"})
    _, reward, terminated, _, info = env.step("<guess>abcde</guess>")
    assert info["reward_terms"] == {"win": 0.0} and reward == 0.0 and not terminated
    _, reward, terminated, _, info = env.step("no tags at all")
    assert info["reward_terms"] == {"win": 0.0} and reward == 0.0
    _, reward, terminated, _, info = env.step("<guess>ABCDF</guess>")
    assert info["reward_terms"] == {"win": 1.0} and reward == 1.0 and terminated and info["won"]


def test_shaped_mode_worked_game():
    env = WordleEnv(answers=TINY, allowed=["zzzzz"], reward="shaped")
    env.reset(seed=0, options={"answer": "abcdg"})

    _, reward, terminated, _, info = env.step("<think>x</think><guess>abcde</guess>")
    t = info["reward_terms"]
    assert t["format"] == 1.0 and t["win"] == 0.0
    assert t["feedback"] == pytest.approx(0.25)  # five untried letters
    assert t["info_gain"] == pytest.approx(0.75)  # worked above
    assert reward == pytest.approx(1.0 + 0.25 + 0.75) and not terminated
    assert info["candidates_remaining"] == 2  # ABCDF, ABCDG

    # invalid actions: format 0.5 (not a word) / 0.1 (wrong length), nothing else, no guess used
    for action, fmt in [("<guess>qqqqq</guess>", 0.5), ("<guess>abcdefg</guess>", 0.1)]:
        _, reward, terminated, _, info = env.step(action)
        assert info["reward_terms"] == {"win": 0.0, "format": fmt, "feedback": 0.0, "info_gain": 0.0}
        assert reward == pytest.approx(fmt) and info["guesses"] == ["abcde"] and not terminated

    # ZZZZZ is allowed (format 1), Z untried +.05 x5, and tells ABCDF from ABCDG not at all
    _, reward, terminated, _, info = env.step("<guess>zzzzz</guess>")
    t = info["reward_terms"]
    assert t == pytest.approx({"win": 0.0, "format": 1.0, "feedback": 0.25, "info_gain": 0.0})

    # ABCDG: A,B,C,D kept +.2 x4, G untried +.05; with 2 left it splits them: gain 1; win 1
    _, reward, terminated, _, info = env.step("<guess>abcdg</guess>")
    t = info["reward_terms"]
    assert t == pytest.approx({"win": 1.0, "format": 1.0, "feedback": 0.85, "info_gain": 1.0})
    assert reward == pytest.approx(3.85) and terminated and info["won"]


def test_shaped_unparsable_and_hard_mode_format():
    env = WordleEnv(answers=TINY, reward="shaped", hard_mode=True)
    env.reset(seed=0, options={"answer": "abcdf"})
    _, reward, _, _, info = env.step("abcdf")  # no tags: format 0
    assert info["reward_terms"] == {"win": 0.0, "format": 0.0, "feedback": 0.0, "info_gain": 0.0}
    assert reward == 0.0
    env.step("<guess>abcde</guess>")  # A,B,C,D green
    _, reward, _, _, info = env.step("<guess>vwxyz</guess>")  # a word, but breaks hard mode: 0.5
    assert "hard mode" in info["invalid_reason"]
    assert info["reward_terms"] == {"win": 0.0, "format": 0.5, "feedback": 0.0, "info_gain": 0.0}


def test_shaped_info_gain_zero_when_one_answer_left():
    env = WordleEnv(answers=TINY, reward="shaped")
    env.reset(seed=0, options={"answer": "vwxyz"})
    _, _, _, _, info = env.step("<guess>abcde</guess>")  # leaves only VWXYZ
    assert info["candidates_remaining"] == 1
    _, _, terminated, _, info = env.step("<guess>vwxyz</guess>")
    assert terminated and info["reward_terms"]["info_gain"] == 0.0 and info["reward_terms"]["win"] == 1.0
    # V,W,X,Y,Z untried +.05 each
    assert info["reward_terms"]["feedback"] == pytest.approx(0.25)
