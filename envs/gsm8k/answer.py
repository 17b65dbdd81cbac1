"""Final-answer extraction and checking for GSM8K, written so it cannot be gamed.

Strict mode reads only the last ``#### <number>`` marker; flexible mode reads the last number
anywhere in the text. Both use one number rule:

- a number is an optional sign (``-``, ``+``, ``−``), an optional ``$``, then digits with an
  optional decimal part (``3.0``, ``.5``); a trailing ``.`` or ``,`` is punctuation (``18.``);
- commas group thousands (``1,234,567``) or follow Indian grouping (``12,34,567``: groups of two,
  then a last group of three); any other comma placement (``1,5``, ``1,2345``) is malformed;
- a space (or no-break / thin space) groups thousands too (``1 000 000``, as some GSM8K solutions
  write them) when every group after the first has three digits; otherwise a space ends the
  number, so ``18 18`` is two numbers in prose, and no answer after ``####`` (which promises one);
- a number ends where its digits and separators end: one glued to a letter, digit, ``/``, ``^``
  or a following signed number (``1e3``, ``3/4``, ``5th``, ``10-15``) is malformed.

A malformed number is no answer at all, never the prefix it starts with: ``#### 1,2345`` is
not 1234. Numbers are compared exactly as canonical decimal strings (``$1,234.50`` ->
``1234.5``, ``3.0`` == ``3``, ``-0`` == ``0``) with no rounding at any length, so listing several
candidates never helps: only the one extracted counts.
"""

from __future__ import annotations

import re

MODES = ("strict", "flexible")

_SPACE = "[ \u00a0\u2009\u202f]"
_INTEGER = rf"\d{{1,3}}(?:,\d{{3}})+|\d{{1,2}}(?:,\d{{2}})+,\d{{3}}|\d{{1,3}}(?:{_SPACE}\d{{3}})+|\d+"
_WELL_FORMED = re.compile(rf"(?P<sign>[-+−])?\s?\$?\s?(?P<body>(?:{_INTEGER})(?:\.\d+)?|\.\d+)\.?")
# A candidate is the maximal run of number characters, judged whole: "1,2345" is one malformed
# run, not 1,234 then 5. Spaces join digits only in the shape of thousands groups ("1 000"), so
# that "18 18" stays two numbers.
_CANDIDATE = (rf"(?P<sign>[-+−]\s?)?(?P<dollar>\$\s?)?"
              rf"(?P<run>(?:\d{{1,3}}(?:{_SPACE}\d{{3}})+(?![\d,])|\.?\d)[\d.,]*)")
_ANY_NUMBER = re.compile(_CANDIDATE)
_STRICT = re.compile(r"####\s*" + _CANDIDATE)
_GLUE_BEFORE = re.compile(r"[\w/^]")
_GLUE_AFTER = re.compile(r"[\w/^]|[-+−]\d")
_MORE_DIGITS = re.compile(_SPACE + r"\d")
_MAX_TEXT = 200_000  # longer completions are cut (at the end: the answer comes last)


def normalize_number(raw: str) -> str | None:
    """Canonical decimal string for a number as written (``"$1,234.50"`` -> ``"1234.5"``), or
    None when ``raw`` is not one well-formed number."""
    if not isinstance(raw, str):
        return None
    match = _WELL_FORMED.fullmatch(raw.strip())
    if match is None:
        return None
    # String arithmetic, not Decimal: Decimal.normalize() rounds to 28 significant digits.
    whole, _, fraction = re.sub(r"[^\d.]", "", match["body"]).partition(".")
    digits = (whole.lstrip("0") or "0") + ("." + fraction.rstrip("0") if fraction.rstrip("0") else "")
    if digits == "0":
        return "0"
    return "-" + digits if match["sign"] in ("-", "−") else digits


def _read(text: str, match: re.Match[str], marked: bool) -> str | None:
    """The canonical number of one candidate (``marked``: the one after ``####``), or None when it
    is malformed or glued to a word."""
    run = match["run"].rstrip(".,")
    end = match.start("run") + len(run)
    if _GLUE_AFTER.match(text, end) or (marked and _MORE_DIGITS.match(text, end)):
        return None  # "#### 1 00", "#### 7 8": which number is meant?
    sign = match["sign"] or ""
    if not marked:
        if match.start("run") > 0 and _GLUE_BEFORE.match(text, match.start("run") - 1):
            return None  # the tail of a word or fraction: "x2", "1e3" -> not 3, "3/4" -> not 4
        if sign and match.start() > 0 and re.match(r"\w", text[match.start() - 1]):
            sign = ""  # "5-3": a minus between numbers is subtraction, not the sign of 3
    return normalize_number(sign + (match["dollar"] or "") + run)


def extract_answer(text: str, mode: str = "strict") -> str | None:
    """The normalised final answer in ``text``, or None when there is none (or it is malformed)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(text, str):
        return None
    text = text[-_MAX_TEXT:]
    if mode == "strict":
        last = None
        for last in _STRICT.finditer(text):  # noqa: B007 (the final marker is the answer)
            pass
        return None if last is None else _read(text, last, marked=True)
    answer = None
    for match in _ANY_NUMBER.finditer(text):
        answer = _read(text, match, marked=False) or answer
    return answer


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
