"""SFT past one process on a CPU: the same run (the built-in model on Wordle solver games, one
global batch) as 1 process with 1 thread, 1 process with 2 threads, and 2 processes with 1
thread each under ``torchrun`` (gloo). Prints JSON.

    python bench/distributed_sft.py                  # about 5 minutes on the 2-core machine
    python bench/distributed_sft.py --steps 20       # quick look

Each arm is the real command line, ``python -m agents.train`` (or ``python -m
torch.distributed.run --standalone --nproc_per_node 2 -m agents.train``), in a fresh process; its
wall time counts everything (imports, solver games, training, no evaluation), and its training
speed is the median of the run's own ``train/tokens_per_s`` (tokens of the global batch per second,
logged every 5 steps, the first window left out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "wordle"


def run_arm(name: str, processes: int, threads: int, argv: list[str], folder: Path) -> dict[str, float | str]:
    from agents.cli.plot import read_scalars

    prefix = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] \
        if processes > 1 else [sys.executable]
    run_dir = folder / name
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    done = subprocess.run([*prefix, "-m", "agents.train", *argv, "--run-dir", str(run_dir)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"arm {name} failed with exit status {done.returncode}")
    speeds = [v for _, v in read_scalars(run_dir)["train/tokens_per_s"]][1:]
    losses = [v for _, v in read_scalars(run_dir)["train/loss"]]
    return {"arm": name, "processes": processes, "threads_per_process": threads, "wall_s": wall,
            "tokens_per_s": statistics.median(speeds), "final_loss": losses[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with answers.txt, allowed_guesses.txt")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps of each arm")
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    args = parser.parse_args()
    kwargs = {"answers": str(args.data / "answers.txt"), "allowed": str(args.data / "allowed_guesses.txt"),
              "prompt_style": "compact"}
    argv = ["--env", "Wordle-v0", "--env-kwargs", json.dumps(kwargs), "--set", f"max_steps={args.steps}",
            "--set", f"batch_size={args.batch_size}", "--set", "log_every=5", "--set", "val_ratio=0",
            "--set", "eval_episodes=0", "--set", f"save_every={10**6}", "--no-eval"]
    load = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="distributed_sft_") as scratch:
        arms = [run_arm("1x1", 1, 1, argv, Path(scratch)), run_arm("1x2", 1, 2, argv, Path(scratch)),
                run_arm("2x1", 2, 1, argv, Path(scratch))]
    one = arms[0]
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average_start": load},
        "settings": {"steps": args.steps, "global_batch": args.batch_size, "model": "LMPolicy.default (1.8M)",
                     "data": "Wordle solver games on all 2,315 official answers, compact prompts"},
        "arms": arms,
        "speedup_tokens_per_s": {a["arm"]: a["tokens_per_s"] / one["tokens_per_s"] for a in arms},
        "speedup_wall": {a["arm"]: one["wall_s"] / a["wall_s"] for a in arms},
    }
    report["machine"]["load_average_end"] = list(os.getloadavg())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
