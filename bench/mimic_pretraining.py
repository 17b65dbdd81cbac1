"""Does behaviour cloning help TRPO on the humanoid? SFT (BC) + TRPO against TRPO from scratch for
the same wall-clock budget on HumanoidMimic-v1 (walk). Prints one JSON object (also written to
``<out>/report.json``) and draws the learning curves to ``<out>/curves.png``.

    python bench/mimic_pretraining.py                         # 60 minutes per arm (about 1 hour in all)
    python bench/mimic_pretraining.py --minutes 2 --bc-set max_steps=300 --bc-set dagger_rounds=0 \\
        --trpo-set n_envs=4 --trpo-set n_steps=128           # a 2-minute look that the pipeline works

Arms, each on one CPU core (``OMP_NUM_THREADS=1``), run **concurrently** (``--sequential``: one
after the other), so both see the same background load of the shared machine:

- **SFT + TRPO**: ``python -m agents.train --config configs/mimic_walk_sft.yaml`` (behaviour
  cloning of the mocap clip), then ``--config configs/mimic_walk_trpo.yaml --init <bc>/final``.
  The BC run's wall time counts against this arm's budget (``--free-bc``: it does not; the TRPO
  part then gets the whole budget). ``--bc-run DIR`` reuses a finished BC run instead of
  training one (its wall time is then unknown and not charged).
- **TRPO from scratch**: ``--config configs/mimic_walk_trpo.yaml`` with a fresh policy.

The TRPO runs stop through ``max_minutes`` (no iteration starts that would end past the budget).
Then BC only, SFT + TRPO, scratch TRPO and the open-loop ``reference`` policy are evaluated
deterministically from the same ``--phases`` start phases (``reset(options={"phase": i / n})``,
i = 0..n-1): mean time alive (s), reward per step, MPJPE, fall rate. Goal: SFT + TRPO reaches
>= 2x the BC-only time alive.

Learning curves come from the TRPO runs' TensorBoard logs: ``rollout/time_alive`` and
``rollout/reward_per_step`` of the training episodes (sampled actions; mean over the episodes
that ended in each iteration) against wall minutes (``train/elapsed_s``, plus the BC time for the
charged arm) and env steps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENV_ID = "HumanoidMimic-v1"
BC_CONFIG = "configs/mimic_walk_sft.yaml"
TRPO_CONFIG = "configs/mimic_walk_trpo.yaml"
CURVE_TAGS = ("rollout/time_alive", "rollout/reward_per_step", "train/elapsed_s")


def train(args: list[str], log: Path) -> float:
    """Run ``python -m agents.train`` on one core; returns its wall time in seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    with log.open("w") as handle:
        done = subprocess.run([sys.executable, "-m", "agents.train", *args], cwd=ROOT, env=env,
                              stdout=handle, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"python -m agents.train {' '.join(args)} failed ({done.returncode}); {log}:\n{tail}")
    return time.perf_counter() - started


def sets(pairs: list[str]) -> list[str]:
    return [arg for pair in pairs for arg in ("--set", pair)]


def trpo_args(run_dir: Path, minutes: float, init: Path | None, extra: list[str]) -> list[str]:
    args = ["--config", TRPO_CONFIG, "--run-dir", str(run_dir), "--no-eval",
            "--set", f"max_minutes={minutes}", "--set", "total_steps=1000000000000", *sets(extra)]
    return args + (["--init", str(init)] if init is not None else [])


def curves(run_dir: Path) -> dict[str, list[float]]:
    """Per iteration (x = env steps): time alive, reward per step and elapsed training seconds."""
    from agents.cli.plot import read_scalars

    scalars = {tag: dict(points) for tag, points in read_scalars(run_dir).items() if tag in CURVE_TAGS}
    elapsed = scalars.get("train/elapsed_s", {})
    steps = sorted(elapsed)
    out: dict[str, list[float]] = {"env_steps": [float(s) for s in steps],
                                   "minutes": [elapsed[s] / 60 for s in steps]}
    for tag, name in (("rollout/time_alive", "time_alive"), ("rollout/reward_per_step", "reward_per_step")):
        values = scalars.get(tag, {})
        out[name] = [values.get(s, float("nan")) for s in steps]
    return out


def evaluate_phases(policy: str, phases: int) -> dict[str, Any]:
    from agents.core.evaluation import evaluate
    from agents.core.rollout import EpisodeSpec

    specs = [EpisodeSpec(seed=i, options={"phase": i / phases}) for i in range(phases)]
    summary = evaluate(ENV_ID, policy, env_kwargs={"motion": "walk"}, episodes=specs, batch_size=phases,
                       progress=False, device="cpu")
    mimic = summary.get("mimic", summary)  # the env's own metrics (nested under the env family)
    return {"mean_time_alive": mimic["mean_time_alive"], "mean_reward_per_step": mimic["mean_reward_per_step"],
            "mpjpe_mm": mimic["mpjpe_mm"], "fall_rate": mimic["fall_rate"], "mean_return": summary["mean_return"]}


def plot(path: Path, arms: dict[str, dict[str, Any]], bc_eval: dict[str, Any] | None,
         reference: dict[str, Any], budget: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharey="row")
    for name, arm in arms.items():
        c = arm["curves"]
        offset = arm["minutes_before_trpo"]
        minutes = [m + offset for m in c["minutes"]]
        for row, key in enumerate(("time_alive", "reward_per_step")):
            axes[row, 0].plot(minutes, c[key], label=name, lw=1.2)
            axes[row, 1].plot(c["env_steps"], c[key], label=name, lw=1.2)
    for row, key, label in ((0, "mean_time_alive", "time alive (s)"), (1, "mean_reward_per_step", "reward per step")):
        for col in range(2):
            ax = axes[row, col]
            if bc_eval is not None:
                ax.axhline(bc_eval[key], color="grey", ls="--", lw=1, label="BC only (eval)")
            ax.axhline(reference[key], color="black", ls=":", lw=1, label="reference (eval)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[row, 0].set_xlabel("wall minutes (SFT+TRPO: BC time included)")
        axes[row, 1].set_xlabel("env steps (TRPO)")
    axes[0, 0].set_xlim(0, budget)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"{ENV_ID} walk: SFT+TRPO vs TRPO from scratch, {budget:g} min each "
                 "(training episodes, sampled actions)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="wall budget per arm (default: %(default)s)")
    parser.add_argument("--out", default=None, metavar="DIR", help="output folder (default: runs/bench_mimic_pretraining__<time>)")
    parser.add_argument("--bc-run", default=None, metavar="DIR", help="reuse this finished BC run (its final/) instead of training one")
    parser.add_argument("--free-bc", action="store_true", help="do not charge the BC time to the SFT+TRPO arm")
    parser.add_argument("--sequential", action="store_true", help="run the two arms one after the other")
    parser.add_argument("--phases", type=int, default=20, help="evaluation start phases (default: %(default)s)")
    parser.add_argument("--bc-set", action="append", default=[], metavar="KEY=VALUE", help="override a BC config key")
    parser.add_argument("--trpo-set", action="append", default=[], metavar="KEY=VALUE", help="override a TRPO config key (both arms)")
    args = parser.parse_args()
    if args.minutes <= 0 or args.phases < 1:
        print("error: --minutes must be > 0 and --phases >= 1", file=sys.stderr)
        return 2
    if args.bc_run is not None and not (Path(args.bc_run) / "final").is_dir():
        print(f"error: --bc-run {args.bc_run} has no final/ checkpoint", file=sys.stderr)
        return 2
    out = Path(args.out or ROOT / "runs" / f"bench_mimic_pretraining__{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    bc_dir = Path(args.bc_run) if args.bc_run else out / "bc"
    arms: dict[str, dict[str, Any]] = {
        "SFT+TRPO": {"run_dir": out / "sft_trpo", "minutes_before_trpo": 0.0},
        "TRPO scratch": {"run_dir": out / "trpo_scratch", "minutes_before_trpo": 0.0},
    }
    errors: list[BaseException] = []
    load_before = os.getloadavg()

    def bc_then_trpo() -> None:
        try:
            arm = arms["SFT+TRPO"]
            if args.bc_run is None:
                print(f"[SFT+TRPO] behaviour cloning -> {bc_dir}", file=sys.stderr)
                bc_seconds = train(["--config", BC_CONFIG, "--run-dir", str(bc_dir), "--no-eval", *sets(args.bc_set)],
                                   out / "bc.log")
                arm["bc_minutes"] = bc_seconds / 60
                if not args.free_bc:
                    arm["minutes_before_trpo"] = bc_seconds / 60
            budget = args.minutes - arm["minutes_before_trpo"]
            if budget <= 0:
                raise RuntimeError(f"behaviour cloning took {arm['bc_minutes']:.1f} min, the whole budget")
            arm["trpo_budget_minutes"] = budget
            print(f"[SFT+TRPO] TRPO from {bc_dir / 'final'} for {budget:.2f} min", file=sys.stderr)
            train(trpo_args(arm["run_dir"], budget, bc_dir / "final", args.trpo_set), out / "sft_trpo.log")
        except BaseException as err:
            errors.append(err)

    def scratch() -> None:
        try:
            arms["TRPO scratch"]["trpo_budget_minutes"] = args.minutes
            print(f"[TRPO scratch] TRPO for {args.minutes:.2f} min", file=sys.stderr)
            train(trpo_args(arms["TRPO scratch"]["run_dir"], args.minutes, None, args.trpo_set), out / "trpo_scratch.log")
        except BaseException as err:
            errors.append(err)

    started = time.perf_counter()
    if args.sequential:
        bc_then_trpo()
        scratch()
    else:
        threads = [threading.Thread(target=bc_then_trpo), threading.Thread(target=scratch)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        print(f"error: {errors[0]}", file=sys.stderr)
        return 1
    wall_minutes = (time.perf_counter() - started) / 60

    print("evaluating BC only, SFT+TRPO, TRPO scratch and the reference", file=sys.stderr)
    bc_eval = evaluate_phases(str(bc_dir / "final"), args.phases)
    reference = evaluate_phases("reference", args.phases)
    for arm in arms.values():
        arm["eval"] = evaluate_phases(str(arm["run_dir"] / "final"), args.phases)
        arm["curves"] = curves(arm["run_dir"])
        arm["env_steps"] = int(arm["curves"]["env_steps"][-1]) if arm["curves"]["env_steps"] else 0
        arm["iterations"] = len(arm["curves"]["env_steps"])
    plot(out / "curves.png", arms, bc_eval, reference, args.minutes)

    both = arms["SFT+TRPO"]["eval"]["mean_time_alive"]
    report = {
        "env": ENV_ID, "motion": "walk", "minutes_per_arm": args.minutes, "phases": args.phases,
        "concurrent": not args.sequential, "bc_charged": args.bc_run is None and not args.free_bc,
        "bc_run": str(bc_dir), "bc_overrides": args.bc_set, "trpo_overrides": args.trpo_set,
        "eval": {"reference": reference, "BC only": bc_eval,
                 **{name: arm["eval"] for name, arm in arms.items()}},
        "arms": {name: {k: (str(v) if isinstance(v, Path) else v) for k, v in arm.items() if k not in ("eval", "curves")}
                 for name, arm in arms.items()},
        "time_alive_ratio_sft_trpo_over_bc": both / bc_eval["mean_time_alive"] if bc_eval["mean_time_alive"] else None,
        "goal": "SFT+TRPO time alive >= 2x BC only",
        "curves": {name: arm["curves"] for name, arm in arms.items()},
        "plot": str(out / "curves.png"),
        "wall_minutes": wall_minutes,
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "curves"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
