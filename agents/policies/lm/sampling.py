"""How a language-model policy samples: a plain settings record, importable without torch (the
GRPO config validates its sampling keys with it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SamplingConfig:
    """How ``act`` samples (``deterministic=True`` ignores temperature and top_p: greedy)."""

    temperature: float = 1.0  # > 0; log-probs are reported at this temperature
    top_p: float = 1.0  # nucleus sampling mass, (0, 1]
    max_new_tokens: int = 128  # hard cap per completion; generation stops earlier at end-of-turn
    # > 0: no run of this many tokens occurs twice within a completion (the prompt is not
    # counted, so copying from it stays free). Keeps a small model's greedy decoding out of
    # phrase loops; 0 leaves the distribution alone.
    no_repeat_ngram_size: int = 0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(
                f"temperature must be > 0 (use deterministic=True for greedy), got {self.temperature}"
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.no_repeat_ngram_size < 0:
            raise ValueError(f"no_repeat_ngram_size must be >= 0 (0 = off), got {self.no_repeat_ngram_size}")
