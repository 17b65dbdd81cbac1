"""Minibatches of variable-length samples (token sequences) with little padding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bucketed_batches(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffle, sort by length inside windows of 64 batches, then shuffle the batch order:
    near-equal lengths per batch (little padding) while every epoch stays random."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    window = batch_size * 64
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return [[int(i) for i in b] for b in batches]
