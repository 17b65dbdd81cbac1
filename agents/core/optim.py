"""The optimizer and learning-rate schedule every trainer uses: AdamW, and linear warmup into a
cosine decay."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch


def adamw(params: Sequence[Any], *, lr: float, weight_decay: float = 0.0,
          betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    """AdamW over ``params``. Weight decay applies to matrices only (not to biases, norms or
    ``log_std``); with none it is one parameter group. Fused kernels on GPU; on CPU ``foreach``
    (one op per group) beats per-tensor loops."""
    params = list(params)
    groups: list[dict[str, Any]] = [{"params": params, "weight_decay": 0.0}]
    if weight_decay:
        groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    on_gpu = bool(params) and params[0].device.type == "cuda"
    return torch.optim.AdamW(groups, lr=lr, betas=betas, **({"fused": True} if on_gpu else {"foreach": True}))


def cosine_lr(step: int, total: int, peak: float, warmup: int = 0, min_ratio: float = 0.1) -> float:
    """The learning rate of optimizer step ``step`` (0-based): linear warmup to ``peak`` over
    ``warmup`` steps, then a cosine decay to ``min_ratio * peak`` at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
