"""The ``--device`` argument, checked before any work: a device torch cannot use here is one
clear error instead of a traceback from deep inside the first tensor move."""

from __future__ import annotations


def check_device(spec: str | None) -> None:
    """Raise ``ValueError`` unless ``spec`` (None = automatic) names a device this machine has."""
    if spec is None:
        return
    import torch  # heavy: a run without --device never needs it here

    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"--device {spec!r} is not a torch device: use cpu, cuda, cuda:1, ... or leave it "
                         "out (cuda when available, else cpu)") from err
    if device.type == "cpu":
        return
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {spec}: CUDA is not available on this machine (this torch "
                             f"{torch.__version__} sees no GPU); use --device cpu or leave --device out")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {spec}: this machine has {count} CUDA device(s): cuda:0 .. cuda:{count - 1}")
        return
    if device.type == "mps" and torch.backends.mps.is_available():
        return
    raise ValueError(f"--device {spec}: {device.type} is not available here; use cpu or cuda")
