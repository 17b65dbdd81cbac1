"""Wordle text interface: the action parser (fuzzed) and the prompt <-> history round trip."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.wordle.text import PROMPT_STYLES, parse_guess, parse_history, render_prompt

LOWER = "abcdefghijklmnopqrstuvwxyz"


@given(st.text())
@settings(max_examples=500, deadline=None)
def test_parse_guess_never_raises_on_any_text(text):
    parsed = parse_guess(text)
    if parsed.word is None:
        assert isinstance(parsed.error, str) and parsed.error
    else:
        assert parsed.error is None
        assert parsed.word.isascii() and parsed.word.isalpha() and parsed.word == parsed.word.lower()


@given(st.lists(st.sampled_from(["<guess>", "</guess>", "< GUESS >", "</ guess>", "<", ">", "/", "guess",
                                 "crane", "é", " ", "\n", "ß", "\x00"]), max_size=30))
@settings(max_examples=300, deadline=None)
def test_parse_guess_never_raises_on_tag_soup(pieces):
    text = "".join(pieces)
    parsed = parse_guess(text)
    assert (parsed.word is None) != (parsed.error is None)


@pytest.mark.parametrize("value", [None, 12345, b"<guess>crane</guess>", ["<guess>crane</guess>"], 3.5])
def test_parse_guess_non_string(value):
    parsed = parse_guess(value)
    assert parsed.word is None and "string" in parsed.error


@given(prefix=st.text(), word=st.text(alphabet=LOWER + LOWER.upper(), min_size=1, max_size=12),
       suffix=st.text().filter(lambda s: "<" not in s),
       pad_left=st.sampled_from(["", " ", "\n", "\t "]), pad_right=st.sampled_from(["", " ", "\n "]),
       open_tag=st.sampled_from(["<guess>", "<GUESS>", "< Guess >", "<\nguess\n>"]),
       close_tag=st.sampled_from(["</guess>", "</GUESS>", "< / guess >", "</Guess\t>"]))
@settings(max_examples=300, deadline=None)
def test_parse_guess_last_tag_counts(prefix, word, suffix, pad_left, pad_right, open_tag, close_tag):
    text = f"{prefix}{open_tag}{pad_left}{word}{pad_right}{close_tag}{suffix}"
    assert parse_guess(text).word == word.lower()


def test_parse_guess_examples():
    assert parse_guess("<think>maybe <guess>slate</guess>?</think><guess>CRANE</guess>").word == "crane"
    assert parse_guess("<guess>crane</guess> then <guess>slate").word == "crane"  # unclosed last tag
    assert parse_guess("  <Guess>  Crane \n </guess>  ").word == "crane"
    assert parse_guess("<guess>cranes</guess>").word == "cranes"  # length is the env's business
    for bad in ["", "crane", "<guess>crane", "crane</guess>", "</guess>crane<guess>", "<guess></guess>",
                "<guess>cr ne</guess>", "<guess>cr4ne</guess>", "<guess>crâne</guess>", "<guess>ｃｒａｎｅ</guess>"]:
        parsed = parse_guess(bad)
        assert parsed.word is None and parsed.error, bad


def test_parse_guess_non_ascii_reason_is_ascii():
    # the reason is echoed in the next prompt, whose charset is (almost) ASCII
    parsed = parse_guess("<guess>crâne</guess>")
    assert parsed.word is None and "non-ASCII" in parsed.error and parsed.error.isascii()


def test_parse_guess_huge_inputs_are_fast():
    cases = {
        "x" * 1_000_000 + "<guess>crane</guess>": "crane",
        "<guess>" * 200_000 + "slate</guess>": "slate",
        "<guess>crane</guess>" + "</guess>" * 200_000: None,  # the last close tag has "crane</guess>..." inside
        "<guess>" + "a" * 1_000_000 + "</guess>": None,
        "< " * 300_000: None,
        "é" * 500_000 + "<guess>crane</guess>": "crane",
    }
    for text, expected in cases.items():
        start = time.perf_counter()
        parsed = parse_guess(text)
        assert time.perf_counter() - start < 2.0
        assert parsed.word == expected


marks_st = st.tuples(*[st.integers(0, 2)] * 5)
history_st = st.lists(st.tuples(st.text(alphabet=LOWER, min_size=5, max_size=5), marks_st), max_size=6)


@given(history=history_st, style=st.sampled_from(PROMPT_STYLES), hard=st.booleans(),
       invalid=st.sampled_from([None, "no <guess>…</guess> tag", "'zzzzz' is not in the word list",
                                "hard mode: 1st letter must be C"]))
@settings(max_examples=300, deadline=None)
def test_parse_history_round_trip(history, style, hard, invalid):
    prompt = render_prompt(history, style=style, max_guesses=6, hard_mode=hard, invalid=invalid)
    assert parse_history(prompt) == [(g, tuple(m)) for g, m in history]


def test_render_prompt_styles():
    history = [("crane", (0, 1, 2, 0, 0))]
    assert render_prompt(history, style="compact") == "crane x-✓xx"
    assert render_prompt([], style="compact") == ""
    assert render_prompt(history, style="compact", invalid="oops") == "crane x-✓xx\n! oops"
    full = render_prompt(history, style="full", max_guesses=6)
    assert "CRANE → C(x) R(-) A(✓) N(x) E(x)" in full
    assert "Guesses left: 5." in full and "<guess>" in full
    assert "Hard mode" not in full and "Hard mode" in render_prompt(history, hard_mode=True)
    assert "did not use up a guess" in render_prompt(history, invalid="why")
