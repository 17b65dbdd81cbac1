"""Chain training stages: ``python -m agents.pipeline configs/pipelines/wordle.yaml``.

A pipeline file lists stages; each one is an ordinary training run (the functions behind
``python -m agents.train``, in this process) in ``<pipeline dir>/<stage>/``, started from the previous stage's ``final/``
(``--init``); a ``filtered`` stage instead reads the previous stage's ``episodes.jsonl`` and
fine-tunes its checkpoint (``rl_log``, ``rl_model_dir``), and a ``dpo`` stage with no ``data`` of
its own mines its preference pairs from that log (``rl_log``) as it starts from that checkpoint. Running the same command again
resumes: a stage with ``final/`` is skipped, an interrupted one continues from its last
checkpoint (``--resume``). After every stage ``summary.md`` (a table of the metrics per
stage) and ``summary.png`` are rewritten from the stages' ``eval.json``::

    name: wordle
    metrics: [held_out.wordle.win_rate, held_out.wordle.mean_guesses]   # paths into eval.json (dpo.json: dpo.*)
    stages:
      - {name: sft, agent: sft, config: configs/wordle_sft.yaml, set: {train_task_fraction: 0.8}}
      - {name: grpo, agent: grpo, config: configs/wordle_grpo.yaml}
      - {name: filtered, agent: filtered, config: configs/wordle_filtered.yaml}

``--set grpo.iterations=20`` overrides one stage's key, ``--set eval_episodes=50`` every stage's.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.algos.registry import NAMES
from agents.cli.train import ERRORS, finish_run, resolve_config, resume, train
from agents.core.checkpoint import write_json_atomic
from agents.core.config import ConfigError, merge, parse_overrides, read_yaml

PIPELINE_KEYS = {"name", "description", "metrics", "stages"}
STAGE_KEYS = {"name", "agent", "config", "set"}
_STAGE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
RECORD = "pipeline.json"


@dataclass
class Stage:
    name: str
    agent: str
    config: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class Pipeline:
    name: str
    stages: list[Stage]
    metrics: list[str] = field(default_factory=lambda: ["all.mean_return"])
    description: str = ""


# ------------------------------------------------------------------------------ reading
def read_pipeline(path: str | Path, overrides: Sequence[str] = ()) -> Pipeline:
    """Parse and validate a pipeline file; ``overrides`` are ``stage.key=value`` / ``key=value``."""
    path = Path(path)
    data = read_yaml(path)
    unknown = set(data) - PIPELINE_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(PIPELINE_KEYS))}")
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ConfigError(f"{path}: 'stages' must be a non-empty list of stages")
    metrics = data.get("metrics", ["all.mean_return"])
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics) or not metrics:
        raise ConfigError(f"{path}: 'metrics' must be a list of dotted paths into eval.json, e.g. all.mean_return")
    stages = []
    for i, raw in enumerate(raw_stages):
        where = f"{path}: stage {i + 1}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where} must be a mapping with name, agent, config (and optional set)")
        unknown = set(raw) - STAGE_KEYS
        missing = {"name", "agent", "config"} - set(raw)
        if unknown or missing:
            raise ConfigError(f"{where}: unknown {sorted(unknown)} / missing {sorted(missing)} keys; "
                              f"a stage has {', '.join(sorted(STAGE_KEYS))}")
        name, agent = str(raw["name"]), str(raw["agent"])
        if not _STAGE_NAME.match(name):
            raise ConfigError(f"{where}: name {name!r} must be letters, digits, '_' or '-' (it names a folder)")
        if agent not in NAMES:
            raise ConfigError(f"{where}: unknown agent {agent!r}; available: {', '.join(NAMES)}")
        settings = raw.get("set") or {}
        if not isinstance(settings, dict):
            raise ConfigError(f"{where}: 'set' must be a mapping of config keys to values")
        stages.append(Stage(name, agent, _config_path(raw["config"], path, where), dict(settings)))
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: stage names must be unique, got {names}")
    if stages[0].agent == "filtered" and "rl_log" not in stages[0].overrides:
        raise ConfigError(f"{path}: a filtered stage needs an RL stage before it (or rl_log in its 'set')")
    if mines_logs(stages[0]) and "rl_log" not in stages[0].overrides:
        raise ConfigError(f"{path}: a dpo stage without data needs an RL stage before it (or data or rl_log "
                          "in its 'set')")
    pipeline = Pipeline(str(data.get("name") or path.stem), stages, metrics, str(data.get("description", "")))
    apply_overrides(pipeline, overrides)
    return pipeline


def _config_path(value: Any, pipeline_path: Path, where: str) -> str:
    """A stage's config file, relative to the working directory, else to the pipeline file."""
    for candidate in (Path(str(value)), pipeline_path.parent / str(value)):
        if candidate.is_file():
            return str(candidate)
    raise ConfigError(f"{where}: config file {str(value)!r} does not exist")


def apply_overrides(pipeline: Pipeline, pairs: Sequence[str]) -> None:
    """``stage.key=value`` sets one stage's key; a key that names no stage applies to every stage."""
    stages = {s.name: s for s in pipeline.stages}
    for key, value in parse_overrides(pairs).items():
        if key in stages:
            if not isinstance(value, dict):
                raise ConfigError(f"--set {key}=...: name a key of stage {key!r}, e.g. --set {key}.seed=1")
            stages[key].overrides = merge(stages[key].overrides, value)
        else:
            for stage in pipeline.stages:
                stage.overrides = merge(stage.overrides, {key: value})


# ------------------------------------------------------------------------------ running
@dataclass
class StageRun:
    """A stage that has not started, as :func:`agents.cli.train.resolve_config` takes it."""

    config_file: str
    flags: dict[str, Any]
    overrides: dict[str, Any]

    def command(self) -> str:
        """The same run as a ``python -m agents.train`` command line (printed for the user)."""
        argv = ["--config", self.config_file]
        for key, value in self.flags.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        for key, value in self.overrides.items():
            argv += ["--set", f"{key}={json.dumps(value)}"]
        return "python -m agents.train " + shlex.join(argv)


def mines_logs(stage: Stage) -> bool:
    """A dpo stage whose config and overrides name no preference ``data``: it learns from pairs
    mined from the previous stage's episode log."""
    if stage.agent != "dpo":
        return False
    given = {**(read_yaml(stage.config).get(stage.agent) or {}), **stage.overrides}
    return not given.get("data") and not given.get("rl_log")


def stage_run(stage: Stage, stage_dir: Path, previous: Path | None) -> StageRun:
    """A fresh stage: its config file and keys, chained to the previous stage's checkpoint
    (``--init``), for a filtered stage to its episode log and run folder, and for a dpo stage
    with no data of its own to its checkpoint and its episode log."""
    flags: dict[str, Any] = {"agent": stage.agent, "run_dir": str(stage_dir)}
    chained: dict[str, Any] = {}
    if previous is not None and stage.agent == "filtered":
        chained = {"rl_log": [str(previous / "episodes.jsonl")], "rl_model_dir": str(previous)}
    elif previous is not None and "init" not in stage.overrides:
        flags["init"] = str(previous / "final")
    if previous is not None and mines_logs(stage):
        chained = {"rl_log": [str(previous / "episodes.jsonl")]}
    return StageRun(stage.config, flags, {**chained, **stage.overrides})


def started(stage_dir: Path) -> bool:
    return (stage_dir / "config.yaml").is_file()


def check_record(run_dir: Path, pipeline: Pipeline) -> dict[str, Any]:
    """The run folder's ``pipeline.json``; a stage that already started must not have changed."""
    path = run_dir / RECORD
    record: dict[str, Any] = {"name": pipeline.name, "stages": {}}
    if path.is_file():
        record = json.loads(path.read_text(encoding="utf-8"))
    for stage in pipeline.stages:
        before = record["stages"].get(stage.name, {}).get("settings")
        now = {k: v for k, v in asdict(stage).items() if k != "name"}
        if before is not None and before != now and started(run_dir / stage.name):
            raise ConfigError(f"stage {stage.name!r} in {run_dir} already ran with other settings ({before} vs "
                              f"{now}); use another --run-dir, or delete {run_dir / stage.name} to redo it")
        record["stages"].setdefault(stage.name, {})["settings"] = now
    return record


def validate_stages(pipeline: Pipeline, run_dir: Path) -> None:
    """Resolve every stage's config now: a misspelt key in the last stage must not surface
    after the first ones have trained. (Checkpoints and logs of later stages do not exist yet.)"""
    previous: Path | None = None
    for stage in pipeline.stages:
        stage_dir = run_dir / stage.name
        if not started(stage_dir):  # a started stage runs on with the config it wrote
            planned = stage_run(stage, stage_dir, previous)
            try:
                resolve_config(planned.config_file, planned.flags, planned.overrides)
            except (ConfigError, ValueError) as err:
                raise ConfigError(f"stage {stage.name!r}: {err}") from err
        previous = stage_dir


def run_stage(stage: Stage, stage_dir: Path, previous: Path | None, title: str) -> int:
    """Resume a started stage, else resolve and train it; its exit status."""
    if started(stage_dir):
        print(f"== {title}: resuming: python -m agents.train --resume {stage_dir}", file=sys.stderr)
        return resume(stage_dir)
    planned = stage_run(stage, stage_dir, previous)
    print(f"== {title}: running: {planned.command()}", file=sys.stderr)
    try:
        resolved = resolve_config(planned.config_file, planned.flags, planned.overrides)
    except ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return train(resolved)


def run_pipeline(pipeline: Pipeline, run_dir: Path) -> int:
    """Run (or resume) every stage; returns the exit status of the first failing stage, else 0."""
    run_dir.mkdir(parents=True, exist_ok=True)
    record = check_record(run_dir, pipeline)
    write_json_atomic(run_dir / RECORD, record)
    previous: Path | None = None
    for number, stage in enumerate(pipeline.stages, start=1):
        stage_dir = run_dir / stage.name
        title = f"stage {number}/{len(pipeline.stages)} {stage.name} ({stage.agent})"
        if (stage_dir / "final").is_dir():
            print(f"== {title}: finished earlier, skipped ({stage_dir / 'final'})", file=sys.stderr)
            finish_run(stage_dir, quiet=True)  # evaluates it if it stopped during its final evaluation
        else:
            began = time.perf_counter()
            try:
                code = run_stage(stage, stage_dir, previous, title)
            except KeyboardInterrupt:
                code = 130
            wall = time.perf_counter() - began
            record["stages"][stage.name]["wall_s"] = record["stages"][stage.name].get("wall_s", 0.0) + wall
            write_json_atomic(run_dir / RECORD, record)
            if code != 0 or not (stage_dir / "final").is_dir():
                print(f"error: stage {stage.name} stopped (exit {code}); fix the cause and rerun the same "
                      f"command: finished stages are skipped, {stage.name} resumes", file=sys.stderr)
                write_summary(run_dir, pipeline, record)
                return code or 1
            print(f"== {title}: done in {_duration(wall)}", file=sys.stderr)
        write_summary(run_dir, pipeline, record)
        previous = stage_dir
    print(f"\npipeline {pipeline.name}: all {len(pipeline.stages)} stages done; summary in "
          f"{run_dir / 'summary.md'} and {run_dir / 'summary.png'}", file=sys.stderr)
    print((run_dir / "summary.md").read_text(encoding="utf-8"))
    return 0


# ------------------------------------------------------------------------------ the summary
def metric_value(report: dict[str, Any], path: str) -> float | None:
    """``held_out.wordle.win_rate`` -> ``report["held_out"]["wordle"]["win_rate"]`` (None if absent)."""
    node: Any = report
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


def stage_metrics(run_dir: Path, pipeline: Pipeline) -> list[dict[str, Any]]:
    rows = []
    for stage in pipeline.stages:
        eval_path = run_dir / stage.name / "eval.json"
        report = json.loads(eval_path.read_text(encoding="utf-8")) if eval_path.is_file() else {}
        dpo_path = run_dir / stage.name / "dpo.json"  # a dpo stage's held-out preference metrics
        if dpo_path.is_file():
            report["dpo"] = json.loads(dpo_path.read_text(encoding="utf-8"))
        done = (run_dir / stage.name / "final").is_dir()
        rows.append({"stage": stage.name, "agent": stage.agent, "done": done,
                     "metrics": {m: metric_value(report, m) for m in pipeline.metrics}})
    return rows


def write_summary(run_dir: Path, pipeline: Pipeline, record: dict[str, Any]) -> None:
    """``summary.md`` (one row per stage) and ``summary.png`` (each metric across the stages)."""
    rows = stage_metrics(run_dir, pipeline)
    header = ["stage", "agent", *pipeline.metrics, "wall", "status"]
    lines = [f"# Pipeline `{pipeline.name}`", ""]
    if pipeline.description:
        lines += [pipeline.description, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        wall = record["stages"].get(row["stage"], {}).get("wall_s")
        values = ["n/a" if v is None else f"{v:.4g}" for v in row["metrics"].values()]
        status = "done" if row["done"] else "not finished"
        lines.append("| " + " | ".join([row["stage"], row["agent"], *values,
                                        "" if wall is None else _duration(wall), status]) + " |")
    lines += ["", "Metrics are paths into each stage's `eval.json`; stage folders: "
              + ", ".join(f"`{run_dir / s.name}`" for s in pipeline.stages) + "."]
    tmp = run_dir / ".summary.md.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(run_dir / "summary.md")
    plot_summary(run_dir / "summary.png", pipeline, rows)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def plot_summary(path: Path, pipeline: Pipeline, rows: list[dict[str, Any]]) -> None:
    import matplotlib  # heavy: only the summary plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy; after choosing the headless Agg backend

    names = [r["stage"] for r in rows]
    fig, axes = plt.subplots(1, len(pipeline.metrics), figsize=(4.5 * len(pipeline.metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], pipeline.metrics, strict=True):
        values = [r["metrics"][metric] for r in rows]
        xs = [i for i, v in enumerate(values) if v is not None]
        ys = [v for v in values if v is not None]
        ax.plot(xs, ys, marker="o")
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(f"{y:.3g}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center")
        ax.set_xticks(range(len(names)), names)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_title(metric, fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle(f"pipeline {pipeline.name}: evaluation after each stage")
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


# ------------------------------------------------------------------------------ the CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agents.pipeline",
        description="Run training stages one after another (SFT -> RL -> filtered), each from the previous "
                    "stage's checkpoint; rerunning the same command resumes (finished stages are skipped).",
        epilog="examples:\n"
               "  python -m agents.pipeline configs/pipelines/wordle.yaml\n"
               "  python -m agents.pipeline configs/pipelines/wordle.yaml --run-dir runs/wordle_small "
               "--set sft.max_steps=300 --set grpo.iterations=20 --set eval_episodes=200\n"
               "  python -m agents.pipeline configs/pipelines/mimic_walk.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline", metavar="PIPELINE.yaml", help="pipeline file, e.g. configs/pipelines/wordle.yaml")
    parser.add_argument("--run-dir", default=None, metavar="DIR",
                        help="pipeline folder, one subfolder per stage (default: runs/pipeline__<name>)")
    parser.add_argument("--set", action="append", default=[], metavar="[STAGE.]KEY=VALUE",
                        help="override a stage's config key (stage.key=value) or every stage's (key=value); repeatable")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        pipeline = read_pipeline(args.pipeline, args.set)
        run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"pipeline__{pipeline.name}"
        validate_stages(pipeline, run_dir)
        if (run_dir / RECORD).is_file():
            print(f"pipeline folder {run_dir} exists: resuming (finished stages are skipped)", file=sys.stderr)
        return run_pipeline(pipeline, run_dir)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
