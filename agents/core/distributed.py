"""Past one process: torch.distributed as ``torchrun`` starts it (gloo on CPU, NCCL on CUDA).

``torchrun --nproc_per_node N -m agents.train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`start` joins the process group once. One process (no ``WORLD_SIZE``, or
1) is exactly the single-process path: every helper here is then a no-op, and this module loads
no torch (``--help`` stays light). Rank 0 alone writes the run folder; the data every rank needs
(demonstrations, task lists) is built on every rank from the same seed, so nothing large travels
between processes.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")
_joined = False  # this process joined a group of several (see leave)
# A rank that died must not leave the others waiting forever on a collective.
TIMEOUT = datetime.timedelta(minutes=int(os.environ.get("POSTTRAIN_GYM_DIST_TIMEOUT_MIN", "30")))


def _group() -> Any:
    """``torch.distributed`` when this process has joined a group of several, else None."""
    dist = sys.modules.get("torch.distributed")  # never initialised if torch was never imported
    return dist if dist is not None and dist.is_available() and dist.is_initialized() else None


def requested() -> bool:
    """Whether this process was started as one of several (``torchrun`` with N > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device: str | None) -> str | None:
    """Join the process group when started by torchrun with N > 1 (gloo on CPU, NCCL on CUDA);
    returns the device this rank uses (``cuda:<local rank>`` on CUDA)."""
    if not requested() or _group() is not None:
        return device
    import torch  # heavy: only several processes get here
    import torch.distributed as dist  # (likewise)

    cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        if local >= torch.cuda.device_count():
            raise ValueError(f"torchrun started local rank {local} but this machine has {torch.cuda.device_count()} "
                             "CUDA device(s): use --nproc_per_node <= the GPU count")
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
    global _joined
    _joined = True
    return f"cuda:{local}" if cuda else "cpu"


def size() -> int:
    group = _group()
    return group.get_world_size() if group is not None else 1


def rank() -> int:
    group = _group()
    return group.get_rank() if group is not None else 0


def is_main() -> bool:
    return rank() == 0


def shard(items: Sequence[T]) -> list[T]:
    """This rank's share of ``items``: every N-th, starting at its rank (all of them on one process)."""
    return list(items[rank()::size()])


def gather(items: Sequence[T]) -> list[T]:
    """Every rank's ``shard`` put back in the original order (on every rank)."""
    group = _group()
    if group is None:
        return list(items)
    parts: list[Any] = [None] * size()
    group.all_gather_object(parts, list(items))
    merged: list[T] = []
    for i in range(max(len(p) for p in parts)):
        merged.extend(p[i] for p in parts if i < len(p))
    return merged


def total(values: Sequence[float]) -> list[float]:
    """Element-wise sums over ranks (float64), for counts and metrics."""
    group = _group()
    if group is None:
        return [float(v) for v in values]
    import torch  # heavy: (imported already by whoever started the group)

    on = torch.device("cuda", torch.cuda.current_device()) if group.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor(list(values), dtype=torch.float64, device=on)
    group.all_reduce(tensor)
    return [float(v) for v in tensor.cpu().tolist()]


def broadcast(value: T) -> T:
    """Rank 0's ``value`` on every rank."""
    group = _group()
    if group is None:
        return value
    box = [value]
    group.broadcast_object_list(box, src=0)
    return box[0]


def wrap(model: Any, unused_parameters: bool = False) -> Any:
    """The module to run forward passes through while training: ``DistributedDataParallel`` (its
    gradients are averaged over ranks in ``backward``) when there are several, else the model.
    ``unused_parameters``: some trainable parameters get no gradient from the loss. (Sharding
    instead of a copy per rank: :mod:`agents.core.fsdp`.)"""
    if _group() is None:
        return model
    from torch.nn.parallel import DistributedDataParallel  # heavy; only several processes need it

    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=unused_parameters)


@contextlib.contextmanager
def syncing(module: Any, last: bool) -> Iterator[None]:
    """Within gradient accumulation, average gradients over ranks only on the last micro-batch
    (DDP's ``no_sync``; FSDP's ``set_requires_gradient_sync``)."""
    if last:
        yield
    elif hasattr(module, "no_sync"):
        with module.no_sync():
            yield
    elif hasattr(module, "set_requires_gradient_sync"):
        module.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            module.set_requires_gradient_sync(True)
    else:
        yield


def barrier() -> None:
    group = _group()
    if group is not None:
        group.barrier()


def stop() -> None:
    group = _group()
    if group is not None:
        group.barrier()  # no rank tears the group down while another still uses it
        group.destroy_process_group()


def leave(status: int) -> NoReturn:
    """End a command-line process with ``status``, leaving its process group first.

    After several processes, Python's own teardown is skipped (``os._exit``, once every stream
    is flushed): a gloo worker thread may still be dropping the last reference to an earlier
    collective's tensors after ``barrier`` returned, and dropping a tensor Python made needs the
    GIL; a thread that asks for it while the interpreter finalises is ended mid-destructor, which
    aborts the whole process ("terminate called without an active exception", SIGABRT; 2 runs of
    28 with both cores of a 2-core machine busy). Everything a run writes is closed by then."""
    stop()
    if not _joined:
        raise SystemExit(status)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)
