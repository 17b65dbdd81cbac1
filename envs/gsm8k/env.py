"""GSM8K-v0: grade-school math word problems as a one-step text environment."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.gsm8k.answer import MODES, extract_answer
from envs.gsm8k.data import Problem, load_problems
from envs.protocol import ActionKind

INSTRUCTION = 'Let\'s think step by step and output the final answer after "####".'
PROMPT_STYLES = ("plain", "chat")
SYSTEM_PROMPT = "You are a careful math tutor. Solve the problem and end with '#### <number>'."
TEXT_CHARSET = string.printable + "✓→…‘’“”—–×÷−≤≥°•€£¢½¼¾²³"
MAX_TEXT_LENGTH = 8192
PROMPT_SUFFIX = f"\n\n{INSTRUCTION}"
_CALCULATOR = re.compile(r"<<[^<>]*>>")

# Envs built together share one problems tuple (data.read_jsonl caches it), and scanning 7,473
# problems for their characters costs ~60 ms, so each tuple's (charset, longest prompt) is kept.
_SPACE_CACHE: dict[int, tuple[Sequence[Problem], str, int]] = {}


def _charset_and_longest(problems: Sequence[Problem]) -> tuple[str, int]:
    """The base charset plus every character of the questions and solutions (the data has
    no-break and zero-width spaces, accents, Cyrillic ...), and the longest question's length."""
    hit = _SPACE_CACHE.get(id(problems))
    if hit is not None and hit[0] is problems:
        return hit[1], hit[2]
    seen = set(INSTRUCTION).union(*(p.question for p in problems), *(p.solution for p in problems))
    extra = "".join(sorted(seen - set(TEXT_CHARSET)))  # sorted: the same space in every process
    longest = max((len(p.question) for p in problems), default=0)
    if len(_SPACE_CACHE) >= 16:  # datasets-loaded lists are new objects each time: keep the cache small
        _SPACE_CACHE.pop(next(iter(_SPACE_CACHE)))
    _SPACE_CACHE[id(problems)] = (problems, TEXT_CHARSET + extra, longest)
    return TEXT_CHARSET + extra, longest


class GSM8KEnv(gym.Env):
    """
    ## Description
    One grade-school math word problem per episode (GSM8K, Cobbe et al. 2021). The agent answers
    with free text; the reward checks the final number only.

    ## Action Space
    ``spaces.Text(max_length=8192)``: the model's completion. Any string (any size or
    encoding) is accepted by ``step``; only the extracted final answer matters. The charset is
    printable ASCII, common math/typography symbols and every character of the loaded
    questions and worked solutions (so the reference policy's answers are members).

    ## Observation Space
    ``spaces.Text`` with the same charset and ``max_length`` 8192 (or the longest prompt, if
    longer), so every prompt of the data is a member. ``prompt_style="plain"`` (default): the
    question, a blank line and ``Let's think step by step and output the final answer after "####".``
    ``prompt_style="chat"``: the same text; agents that take chat messages can use
    ``info["messages"]`` (a system and a user message) instead.

    Text spaces do not fit Stable-Baselines3, which needs ``Box`` / ``Discrete`` spaces: train
    this env with the language-model agents here (``sft``, ``grpo``, ``filtered``, ``dpo``), and use
    ``HumanoidMimic-v1`` to try SB3.

    ## Rewards
    | term | value |
    |---|---|
    | ``correct`` | 1 when the extracted answer equals the reference, else 0 (``answer_mode`` ``"strict"``: the last ``#### n``; ``"flexible"``: the last number) |
    | ``format`` | ``format_weight`` (default 0) when the completion has a ``#### n`` line, else 0 |

    ## Starting State
    ``reset`` draws a problem uniformly with ``self.np_random``; ``options={"index": i}`` picks one.

    ## Episode End
    Every ``step`` terminates the episode.

    ## Info
    | key | in | meaning |
    |---|---|---|
    | ``index`` | reset, step | the problem's index in ``env.problems`` |
    | ``messages`` | reset (``prompt_style="chat"`` only) | ``[{"role": "system", ...}, {"role": "user", "content": prompt}]`` |
    | ``extracted`` | step | the answer read with ``answer_mode`` (canonical decimal string), or None |
    | ``reference`` | step | the dataset's answer (canonical decimal string) |
    | ``correct`` | step | ``extracted == reference`` (what the ``correct`` reward term pays) |
    | ``correct_strict`` | step | the strict (``#### n``) answer equals the reference, whatever ``answer_mode`` |
    | ``correct_flexible`` | step | the flexible (last number) answer equals the reference, whatever ``answer_mode`` |
    | ``has_format`` | step | the completion has a well-formed ``#### n`` answer |
    | ``completion_chars`` | step | length of the completion (0 for a non-string action) |
    | ``reward_terms`` | step | ``{"correct": ..., "format": ...}``, summing to the reward |

    ## Arguments
    | argument | default | meaning |
    |---|---|---|
    | ``split`` | None | without ``data_path``: the openai/gsm8k split to load, ``"train"`` (the default) or ``"test"``. With ``data_path``: only a label, reported as ``env.split`` (None unless given); a file named ``train.jsonl`` / ``test.jsonl`` must not be given the other split |
    | ``data_path`` | None | JSONL with ``question``/``answer`` fields, used as given; else Hugging Face ``datasets`` (openai/gsm8k, main) |
    | ``answer_mode`` | ``"strict"`` | how the reward extracts the answer |
    | ``format_weight`` | 0.0 | reward for a well-formed ``#### n`` line |
    | ``prompt_style`` | ``"plain"`` | ``"plain"`` or ``"chat"`` |
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 1}  # noqa: RUF012  (an instance attribute of gymnasium.Env)
    action_kind: ClassVar[ActionKind] = "text"  # envs.protocol: agents choose the policy by it
    metrics_key: ClassVar[str] = "gsm8k"  # where evaluation summaries put summarize_episodes

    def __init__(self, split: str | None = None, data_path: str | Path | None = None, answer_mode: str = "strict",
                 format_weight: float = 0.0, prompt_style: str = "plain", render_mode: str | None = None):
        if answer_mode not in MODES:
            raise ValueError(f"answer_mode must be one of {MODES}, got {answer_mode!r}")
        if prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style must be one of {PROMPT_STYLES}, got {prompt_style!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.problems: Sequence[Problem] = load_problems(split, data_path)
        # The truth about where the problems came from: a file's split is whatever the caller said.
        self.split: str | None = split if data_path is not None else (split or "train")
        self.data_path: str | None = None if data_path is None else str(data_path)
        self.answer_mode, self.format_weight = answer_mode, float(format_weight)
        self.prompt_style, self.render_mode = prompt_style, render_mode
        charset, longest_question = _charset_and_longest(self.problems)
        prompt_length = longest_question + len(PROMPT_SUFFIX)
        self.observation_space = spaces.Text(max_length=max(MAX_TEXT_LENGTH, prompt_length), min_length=0,
                                             charset=charset)
        self.action_space = spaces.Text(max_length=MAX_TEXT_LENGTH, min_length=0, charset=charset)
        self._index: int | None = None
        self._last: str = ""

    def prompt(self, index: int) -> str:
        return self.problems[index].question + PROMPT_SUFFIX

    def messages(self, index: int) -> list[dict[str, str]]:
        """Problem ``index`` as chat messages (``prompt_style="chat"``): the system prompt, then the prompt."""
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": self.prompt(index)}]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        if set(options) - {"index"}:
            raise ValueError(f"unknown reset options {sorted(set(options) - {'index'})}; supported: 'index'")
        if "index" in options:
            index = int(options["index"])
            if not 0 <= index < len(self.problems):
                raise ValueError(f"options['index']={index} is outside 0..{len(self.problems) - 1}")
        else:
            index = int(self.np_random.integers(len(self.problems)))
        self._index, self._last = index, ""
        info: dict[str, Any] = {"index": index}
        if self.prompt_style == "chat":
            info["messages"] = self.messages(index)
        return self.prompt(index), info

    def step(self, action: Any):
        if self._index is None:
            raise RuntimeError("call reset() before step()")
        text = action if isinstance(action, str) else ""
        problem = self.problems[self._index]
        extracted = extract_answer(text, self.answer_mode)
        strict = extract_answer(text, "strict")
        correct = extracted is not None and extracted == problem.answer
        terms = {"correct": float(correct), "format": self.format_weight * (strict is not None)}
        info = {
            "index": self._index, "extracted": extracted, "reference": problem.answer, "correct": correct,
            "correct_strict": strict == problem.answer,
            "correct_flexible": extract_answer(text, "flexible") == problem.answer,
            "has_format": strict is not None, "completion_chars": len(text), "reward_terms": terms,
        }
        self._last = text
        observation = self.prompt(self._index)
        self._index = None
        return observation, float(sum(terms.values())), True, False, info

    def render(self) -> str | None:
        return self._last if self.render_mode == "ansi" else None

    # -- capabilities agents use (envs.protocol) ------------------------------------------------
    def all_tasks(self) -> list[dict[str, Any]]:
        return [{"index": i} for i in range(len(self.problems))]

    @staticmethod
    def summarize_episodes(episodes: Sequence[Any]) -> dict[str, Any]:
        n = max(len(episodes), 1)

        def rate(key: str) -> float:
            return sum(bool(e.info.get(key)) for e in episodes) / n

        tokens = [sum(len(t.completion_ids) for t in e.tokens) for e in episodes if e.tokens]
        return {
            "accuracy_strict": rate("correct_strict"),
            "accuracy_flexible": rate("correct_flexible"),
            "format_compliance": rate("has_format"),
            "mean_completion_chars": float(np.mean([e.info.get("completion_chars", 0) for e in episodes])) if episodes else 0.0,
            "mean_completion_tokens": float(np.mean(tokens)) if tokens else None,
        }

    @staticmethod
    def progress_postfix(episodes: Sequence[Any]) -> dict[str, str]:
        right = sum(bool(e.info.get("correct")) for e in episodes)
        return {"acc": f"{right / max(len(episodes), 1):.1%}"}

    @property
    def scripted_policies(self) -> dict[str, Any]:
        return {"reference": ReferenceSolutionPolicy.for_env}


def strip_calculator(solution: str) -> str:
    """Remove GSM8K's calculator annotations: ``48/2 = <<48/2=24>>24`` -> ``48/2 = 24``."""
    return _CALCULATOR.sub("", solution)


class ReferenceSolutionPolicy:
    """Answers each question with the dataset's worked solution (an upper bound and the SFT source)."""

    def __init__(self, env: GSM8KEnv, keep_calculator: bool = False):
        self.by_prompt = {env.prompt(i): p.solution for i, p in enumerate(env.problems)}
        self.keep_calculator = keep_calculator

    @classmethod
    def for_env(cls, env: Any, seed: int | None = None) -> ReferenceSolutionPolicy:
        return cls(env)

    def act(self, obs_batch: Sequence[str], deterministic: bool = True) -> tuple[list[str], np.ndarray]:
        out = []
        for obs in obs_batch:
            solution = self.by_prompt.get(obs)
            if solution is None:
                raise ValueError("the reference policy only answers the env's own prompts")
            out.append(solution if self.keep_calculator else strip_calculator(solution))
        return out, np.zeros(len(out))

    def log_prob(self, obs_batch: Sequence[str], actions: Sequence[str]) -> np.ndarray:
        raise NotImplementedError("the reference policy is scripted")

    def save(self, directory: str | Path) -> None:
        raise NotImplementedError("scripted policies are not saved; use --policy reference")
