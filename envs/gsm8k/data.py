"""GSM8K problems: from a JSON-lines file or, where available, Hugging Face ``datasets``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from envs.gsm8k.answer import reference_answer
from envs.jsonl import read_json_lines

SPLITS = ("train", "test")
HOW_TO_PROVIDE = (
    "pass data_path= a JSONL file with 'question' and 'answer' fields (one problem per line), "
    "or install Hugging Face `datasets` with network access or a local cache of openai/gsm8k (config 'main')"
)


class DataUnavailable(ValueError):
    """No GSM8K data could be found; the message says how to provide it."""


@dataclass(frozen=True)
class Problem:
    question: str
    solution: str  # the worked solution, ending in "#### <number>"
    answer: str  # the normalised reference number


# Parsed files, shared read-only by every env of a process: GRPO and evaluation build dozens of
# envs at once, and re-parsing 7,473 problems per env cost a third of a GRPO step. Keyed on the
# file's identity so an edited file is read again.
_PARSED: dict[tuple[str, int, int], tuple[Problem, ...]] = {}


def read_jsonl(path: str | Path) -> tuple[Problem, ...]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataUnavailable(f"GSM8K data file {str(path)!r} does not exist; {HOW_TO_PROVIDE}")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _PARSED:
        _PARSED[key] = tuple(_parse(path))
    return _PARSED[key]


def _parse(path: Path) -> list[Problem]:
    problems = []
    for where, row in read_json_lines(path):
        try:
            question, solution = row["question"], row["answer"]
            if not isinstance(question, str) or not isinstance(solution, str):
                raise TypeError("'question' and 'answer' must be strings")
            problems.append(Problem(question, solution, reference_answer(solution)))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{where}: not a GSM8K record ({err})") from err
    if not problems:
        raise ValueError(f"{path}: no problems in the file")
    return problems


def load_problems(split: str | None = None, data_path: str | Path | None = None) -> Sequence[Problem]:
    """Problems from ``data_path``, else the ``split`` (default ``"train"``) of openai/gsm8k (main).

    A file is used as given: ``split`` only labels it, and must not contradict a file named after
    the other split (``split="train"`` with ``test.jsonl`` is an error, not a silent mix-up).
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} (or None), got {split!r}")
    if data_path is not None:
        named = Path(data_path).stem
        if split is not None and named in SPLITS and named != split:
            raise ValueError(f"split={split!r} but data_path {str(data_path)!r} is the {named!r} split; "
                             f"pass split={named!r} or leave split out (a data file is used as given)")
        return read_jsonl(data_path)
    split = split or "train"
    try:
        from datasets import load_dataset  # optional: only without data_path
    except ImportError as err:
        raise DataUnavailable(f"no GSM8K data: `datasets` is not installed; {HOW_TO_PROVIDE}") from err
    try:
        rows = load_dataset("openai/gsm8k", "main", split=split)
    except Exception as err:  # datasets raises many kinds (connection, missing cache, ...)
        raise DataUnavailable(f"no GSM8K data: datasets could not load openai/gsm8k ({type(err).__name__}); "
                              f"{HOW_TO_PROVIDE}") from err
    return [Problem(r["question"], r["answer"], reference_answer(r["answer"])) for r in rows]
