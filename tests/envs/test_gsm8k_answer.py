"""GSM8K's number rule: a malformed number is no answer, never its prefix; comparison is exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.gsm8k.answer import extract_answer, is_correct, normalize_number, reference_answer

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gsm8k"


@pytest.mark.parametrize(
    ("text", "strict", "flexible"),
    [
        # malformed comma grouping: no answer, never the longest valid prefix
        ("#### 1,2345", None, None),
        ("#### 2,5 liters", None, None),
        ("#### 1,5", None, None),
        ("#### 1,234.5.6", None, None),
        # Indian and space grouping: the whole number
        ("#### 12,34,567", "1234567", "1234567"),
        ("#### 1,00,000", "100000", "100000"),
        ("#### 1 000", "1000", "1000"),
        ("so $80 000 + $20 000 = $100 000.", None, "100000"),
        # glued to a letter, slash, power or another signed number: not a number
        ("#### 1e3", None, None),
        ("#### 3/4", None, None),
        ("#### 1.5e3", None, None),
        ("#### 5th", None, None),
        ("#### 2^3", None, None),
        ("#### 10-15", None, "15"),
        ("it is the 3rd day", None, None),
        ("12 apples on the 3rd day", None, "12"),
        ("x2 and 7/8", None, None),
        # a leading-dot decimal is the decimal, not the digits after the dot
        ("#### .5", "0.5", "0.5"),
        # legitimate forms keep working
        ("#### 1,234", "1234", "1234"),
        ("#### $1,234.50", "1234.5", "1234.5"),
        ("#### -5", "-5", "-5"),
        ("#### 3.0", "3", "3"),
        ("#### 18.", "18", "18"),
        ("#### 18 dollars", "18", "18"),
        ("She has 18 left.\n#### 18.", "18", "18"),
        ("#### 1,234, which is a lot", "1234", "1234"),
        ("#### +7", "7", "7"),
        ("#### −7", "-7", "-7"),
        ("#### 20%", "20", "20"),
        ("#### 18 18", None, "18"),  # after the marker, which one is meant? In prose, two numbers
        ("5-3 = 2", None, "2"),
    ],
)
def test_number_rule(text: str, strict: str | None, flexible: str | None) -> None:
    assert extract_answer(text, "strict") == strict
    assert extract_answer(text, "flexible") == flexible


def test_a_malformed_last_marker_is_no_answer_even_after_a_good_one() -> None:
    assert extract_answer("#### 18\n#### 1,5") is None
    assert extract_answer("#### 18\n#### I am not sure") == "18"  # a marker without a number is skipped


def test_after_the_marker_more_digits_past_a_space_are_no_answer() -> None:
    for text in ("#### 1 00", "#### 7 8", "#### 1 000 0000", "#### 1\u00a0000 00"):
        assert extract_answer(text) is None, text
    assert extract_answer("#### 1\u00a0000 000") == "1000000"


def test_comparison_is_exact_past_28_digits() -> None:
    a, b = "1" * 30, "1" * 29 + "2"
    assert not is_correct(f"#### {a}", b)
    assert is_correct(f"#### {a}", a)
    assert not is_correct("#### 0." + "0" * 40 + "1", "0")
    assert normalize_number("1" * 40 + ".50") == "1" * 40 + ".5"


@pytest.mark.parametrize("raw", ["1,5", "1,2345", "1e3", "3/4", "1 00", "", "-", "NaN", "Infinity", "1.2.3"])
def test_normalize_number_rejects_malformed_numbers(raw: str) -> None:
    assert normalize_number(raw) is None


def _indian(value: int) -> str:
    digits = str(abs(value))
    head, tail = digits[:-3], digits[-3:]
    groups = []
    while len(head) > 2:
        head, groups = head[:-2], [head[-2:], *groups]
    return ("-" if value < 0 else "") + ",".join([g for g in [head, *groups] if g] + [tail])


FORMATS = {
    "plain": str,
    "commas": lambda v: f"{v:,}",
    "spaces": lambda v: f"{v:,}".replace(",", " "),
    "indian": _indian,
    "dollars": lambda v: ("-" if v < 0 else "") + f"${abs(v):,}.00",
}


@settings(max_examples=300, deadline=None)
@given(st.integers(-10**40, 10**40), st.sampled_from(sorted(FORMATS)), st.sampled_from(["", ".", " dollars"]))
def test_any_integer_written_any_accepted_way_round_trips(value: int, style: str, after: str) -> None:
    written = FORMATS[style](value)
    assert extract_answer(f"work\n#### {written}{after}") == str(value)
    assert extract_answer(f"so it is {written}{after}", "flexible") == str(value)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**12), st.sampled_from(["", ".5", ",000"]),
       st.text(alphabet="abcxyzeE/^_é", min_size=1, max_size=5))
def test_garbage_glued_to_a_number_never_yields_a_prefix(value: int, more: str, glue: str) -> None:
    assert extract_answer(f"#### {value:,}{more}{glue}") is None
    assert extract_answer(f"the answer is {value:,}{more}{glue} ok", "flexible") is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789", min_size=1, max_size=5), min_size=1, max_size=5),
       st.sampled_from(["", ".25"]))
def test_comma_runs_read_whole_or_not_at_all(groups: list[str], decimals: str) -> None:
    written = ",".join(groups) + decimals
    whole = normalize_number(written.replace(",", ""))
    assert extract_answer(f"#### {written}") in (None, whole)
    assert extract_answer(f"then {written} left", "flexible") in (None, whole)


@settings(max_examples=300, deadline=None)
@given(st.integers(10**25, 10**60), st.integers(-1000, 1000), st.integers(0, 20))
def test_long_numbers_that_differ_in_any_digit_are_never_equal(a: int, delta: int, shift: int) -> None:
    b = a + delta
    assert is_correct(f"#### {a}", str(b)) == (delta == 0)
    small_a, small_b = f"0.{'0' * shift}{a}7", f"0.{'0' * shift}{b}7"  # no trailing zeros
    assert is_correct(f"#### {small_a}", small_b) == (delta == 0)


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_dataset_reference_parses_to_its_plain_number(split: str) -> None:
    path = DATA / f"{split}.jsonl"
    if not path.is_file():
        pytest.skip(f"GSM8K {split} split not found at {path}")
    for line in path.read_text(encoding="utf-8").splitlines():
        solution = json.loads(line)["answer"]
        marker = solution.rsplit("####", 1)[1].strip()
        # the data writes "#### 1,234" or "#### -5": the answer is that number with commas removed
        assert reference_answer(solution) == str(int(marker.replace(",", "")))
