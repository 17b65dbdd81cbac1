"""FSDP: full fine-tuning with the weights, gradients and optimizer state sharded over the
processes ``torchrun`` started (torch's ``fully_shard``), for models whose training state does
not fit one device beside a full copy per process (DDP).

Each transformer block (the model's ``_no_split_modules``) is one unit, gathered for its
forward and backward and freed after; the root holds the rest (embeddings, a tied head, the
final norm). What leaves the trainer is gathered: checkpoints hold the same files as DDP and one
process write (the optimizer state keyed by parameter name, so a run resumes at any process
count), and evaluation runs on the gathered weights, one full copy per process, because
generation takes a different number of forward passes on every rank.

Every function here is a collective when the model is sharded: all ranks call it. On a model
that is not sharded each one is the plain single-process operation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import FSDPModule, fully_shard


def shard(model: torch.nn.Module) -> torch.nn.Module:
    """Shard ``model`` in place over the process group (one unit per transformer block)."""
    block_names = set(getattr(model, "_no_split_modules", None) or ())
    blocks = [m for m in model.modules() if type(m).__name__ in block_names]
    if not blocks:
        raise ValueError(f"{type(model).__name__} names no transformer blocks (_no_split_modules): FSDP "
                         "has no units to shard; use data_parallel=ddp")
    for block in blocks:
        fully_shard(block)
    fully_shard(model)
    return model


def is_sharded(model: Any) -> bool:
    return isinstance(model, FSDPModule)


def to_float(value: torch.Tensor) -> float:
    """A scalar that may be a DTensor (e.g. the gradient norm over sharded parameters)."""
    full = getattr(value, "full_tensor", None)
    return float(full() if full is not None else value)


def full_weights(model: torch.nn.Module) -> dict[str, Any] | None:
    """The whole state dict on CPU, on rank 0 (others get an empty dict); None when not sharded
    (the model's own ``state_dict`` is whole already)."""
    if not is_sharded(model):
        return None
    weights: dict[str, Any] = get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return weights


def optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """What a checkpoint keeps of ``optimizer``: its own ``state_dict()``, or when sharded the
    whole state keyed by parameter name (on rank 0; others get an empty dict)."""
    if not is_sharded(model):
        return optimizer.state_dict()
    state: dict[str, Any] = get_optimizer_state_dict(
        model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return state


def load_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Restore what :func:`optimizer_state` saved, sharded or not, at any process count."""
    by_name = any(isinstance(key, str) for key in state.get("state", {}))
    if not by_name:
        optimizer.load_state_dict(state)
        return
    # Every rank read the whole file: each keeps its own shard of it.
    set_optimizer_state_dict(model, optimizer, optim_state_dict=state,
                             options=StateDictOptions(full_state_dict=is_sharded(model)))


def gathered(model: torch.nn.Module) -> torch.nn.Module:
    """A plain (unsharded) copy of a sharded model with its current weights, on every rank; the
    model itself when not sharded."""
    if not is_sharded(model):
        return model
    # Not offloaded: every rank receives the whole dict (an all-gather), on the model's device.
    weights: dict[str, Any] = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
    plain_class: Any = next(c for c in type(model).__mro__ if not issubclass(c, FSDPModule))
    parameter: torch.Tensor = next(iter(weights.values()))
    plain = plain_class(model.config).to(dtype=parameter.dtype)
    plain.load_state_dict({name: value.cpu() for name, value in weights.items()})
    plain.tie_weights()
    return plain.to(parameter.device).train(model.training)
