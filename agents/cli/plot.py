"""Plot a run's TensorBoard scalars to a PNG: ``python -m agents.plot RUN_DIR --out curve.png``.

Reads the event files TensorBoard reads (no server needed) and draws one panel per tag against
env steps, so a learning curve can go into a report or a README without a screenshot.
Default tags: every ``eval/*`` scalar with a ``win_rate``, ``accuracy`` or ``time_alive`` in its
name, else ``rollout/return_mean``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_KEYS = ("win_rate", "accuracy", "time_alive")


def read_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``tag -> [(step, value), ...]`` from every event file under ``run_dir`` (not recursive)."""
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,  # heavy: --help without it
    )

    run_dir = Path(run_dir)
    if not any(run_dir.glob("events.out.tfevents.*")):
        raise FileNotFoundError(f"{run_dir}: no TensorBoard event files (events.out.tfevents.*)")
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})  # 0 = keep every point
    events.Reload()
    return {tag: [(s.step, s.value) for s in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def default_tags(scalars: dict[str, list[tuple[int, float]]]) -> list[str]:
    tags = sorted(t for t in scalars if t.startswith("eval/") and any(k in t for k in DEFAULT_KEYS))
    return tags or [t for t in ("rollout/return_mean",) if t in scalars]


def plot_scalars(scalars: dict[str, list[tuple[int, float]]], tags: Sequence[str], out: str | Path,
                 title: str | None = None) -> Path:
    import matplotlib  # heavy: --help without it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy; after choosing the headless Agg backend

    missing = [t for t in tags if t not in scalars]
    if missing:
        raise KeyError(f"no scalars named {missing}; the run has: {', '.join(sorted(scalars))}")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for tag in tags:
        steps, values = zip(*scalars[tag], strict=True)
        ax.plot(steps, values, marker="o" if len(steps) < 40 else None, label=tag)
    ax.set_xlabel("env steps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.plot", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run folder (holds events.out.tfevents.*)")
    parser.add_argument("--tags", nargs="+", default=None, help="scalar tags to draw (default: the eval win rate / accuracy / time alive)")
    parser.add_argument("--out", default=None, help="PNG path (default: RUN_DIR/curve.png)")
    parser.add_argument("--title", default=None, help="plot title (default: the run folder's name)")
    args = parser.parse_args(argv)
    try:
        scalars = read_scalars(args.run_dir)
        tags = args.tags or default_tags(scalars)
        if not tags:
            raise KeyError(f"nothing to plot by default; pass --tags (the run has: {', '.join(sorted(scalars))})")
        out = plot_scalars(scalars, tags, args.out or Path(args.run_dir) / "curve.png",
                           args.title or Path(args.run_dir).name)
    except (FileNotFoundError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
