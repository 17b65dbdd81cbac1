"""GSM8K-v0: one-step grade-school math with answer checking that cannot be gamed."""

from envs.gsm8k.answer import extract_answer, is_correct, normalize_number
from envs.gsm8k.data import DataUnavailable, Problem, load_problems
from envs.gsm8k.env import GSM8KEnv, strip_calculator

__all__ = ["DataUnavailable", "GSM8KEnv", "Problem", "extract_answer", "is_correct", "load_problems",
           "normalize_number", "strip_calculator"]
