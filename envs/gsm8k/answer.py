"""Final-answer extraction and checking for GSM8K, written so it cannot be gamed.

Strict mode reads only the last ``#### <number>`` line marker; flexible mode reads the last
number anywhere in the text. Numbers are normalised (thousands commas, ``$``, a trailing
period, a leading ``+``, ``3.0`` == ``3``, negatives) and compared exactly as decimals, so
listing several candidates never helps: only the one extracted counts.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

MODES = ("strict", "flexible")

# A number: optional sign, optional $, digits with optional thousands commas, optional decimals.
_NUMBER = r"[-+−]?\s?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_STRICT = re.compile(r"####\s*(" + _NUMBER + r")")
_ANY_NUMBER = re.compile(_NUMBER)
_MAX_TEXT = 200_000  # longer completions are cut (at the end: the answer comes last)


def normalize_number(raw: str) -> str | None:
    """Canonical decimal string for a number as written (``"$1,234.50"`` -> ``"1234.5"``)."""
    text = raw.strip().replace("−", "-").replace("$", "").replace(",", "").replace(" ", "")
    text = text.rstrip(".")
    if text.startswith("+"):
        text = text[1:]
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    value = value.normalize()
    if value == 0:
        return "0"
    out = format(value, "f")
    return out.rstrip("0").rstrip(".") if "." in out else out


def extract_answer(text: str, mode: str = "strict") -> str | None:
    """The normalised final answer in ``text``, or None when there is none."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(text, str):
        return None
    text = text[-_MAX_TEXT:]
    pattern = _STRICT if mode == "strict" else _ANY_NUMBER
    last = None
    for last in pattern.finditer(text):  # noqa: B007 (the final match is the answer)
        pass
    if last is None:
        return None
    return normalize_number(last.group(1) if mode == "strict" else last.group(0))


def reference_answer(solution: str) -> str:
    """The reference number of a dataset solution (its ``#### n`` line)."""
    answer = extract_answer(solution, "strict")
    if answer is None:
        raise ValueError(f"solution has no '#### <number>' line: {solution[-80:]!r}")
    return answer


def is_correct(text: str, reference: str, mode: str = "strict") -> bool:
    """Whether the final answer extracted from ``text`` equals ``reference`` (a number or a solution)."""
    expected = normalize_number(reference) if "####" not in reference else reference_answer(reference)
    got = extract_answer(text, mode)
    return got is not None and expected is not None and got == expected
