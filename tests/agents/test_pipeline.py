"""The pipeline runner: pipeline files and their errors, how stages chain (--init, rl_log,
--resume), and a tiny SFT -> GRPO -> filtered pipeline on Wordle that resumes: a second run
skips the finished stages, an interrupted stage resumes, a missing evaluation is redone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from agents.cli.pipeline import (
    Stage,
    main,
    metric_value,
    read_pipeline,
    stage_run,
    started,
)
from agents.core.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
TINY = {"hidden_size": 32, "num_hidden_layers": 1, "intermediate_size": 64,
        "num_attention_heads": 2, "num_key_value_heads": 2}
ANSWERS = ["crane", "slate", "pious", "ghost", "lemon", "brick", "eagle", "tried"]


def write_pipeline(tmp_path: Path, stages: list[dict], **extra) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "stages": stages, **extra}))
    return path


SFT = {"name": "sft", "agent": "sft", "config": str(ROOT / "configs" / "wordle_sft.yaml")}
GRPO = {"name": "grpo", "agent": "grpo", "config": str(ROOT / "configs" / "wordle_grpo.yaml")}
FILTERED = {"name": "filtered", "agent": "filtered", "config": str(ROOT / "configs" / "wordle_filtered.yaml")}


@pytest.mark.parametrize(("stages", "extra", "message"), [
    ([], {}, "'stages' must be a non-empty list"),
    ([{**SFT, "agent": "ppo"}], {}, "unknown agent 'ppo'"),
    ([{**SFT, "config": "nope.yaml"}], {}, "config file 'nope.yaml' does not exist"),
    ([{**SFT, "seed": 1}], {}, "unknown ['seed']"),
    ([SFT, SFT], {}, "stage names must be unique"),
    ([{**SFT, "name": "a/b"}], {}, "names a folder"),
    ([FILTERED], {}, "a filtered stage needs an RL stage before it"),
    ([SFT], {"metric": "x"}, "unknown key(s) metric"),
])
def test_bad_pipeline_files_are_one_clear_error(tmp_path: Path, stages, extra, message) -> None:
    with pytest.raises(ConfigError) as err:
        read_pipeline(write_pipeline(tmp_path, stages, **extra))
    assert message in str(err.value)


def test_a_typo_in_a_later_stage_fails_before_the_first_stage_runs(tmp_path: Path, capsys) -> None:
    path = write_pipeline(tmp_path, [{**SFT, "set": {"max_steps": 2, "model_config": TINY}},
                                     {**GRPO, "set": {"iterationz": 1}}])
    run_dir = tmp_path / "out"
    assert main([str(path), "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "stage 'grpo'" in err and "unknown key(s) iterationz" in err
    assert not run_dir.exists()


def test_overrides_name_a_stage_or_apply_to_every_stage(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, [{**SFT, "set": {"max_steps": 5}}, GRPO])
    pipeline = read_pipeline(path, ["sft.max_steps=7", "grpo.iterations=3", "eval_episodes=4"])
    sft, grpo = pipeline.stages
    assert sft.overrides == {"max_steps": 7, "eval_episodes": 4}
    assert grpo.overrides == {"iterations": 3, "eval_episodes": 4}
    with pytest.raises(ConfigError, match="name a key of stage 'sft'"):
        read_pipeline(path, ["sft=3"])


def test_stages_chain_from_the_previous_final_and_resume_when_started(tmp_path: Path) -> None:
    first = stage_run(Stage("sft", "sft", "a.yaml", {"max_steps": 3}), tmp_path / "sft", None)
    assert (first.config_file, first.flags, first.overrides) == \
        ("a.yaml", {"agent": "sft", "run_dir": str(tmp_path / "sft")}, {"max_steps": 3})
    assert first.command() == f"python -m agents.train --config a.yaml --agent sft --run-dir {tmp_path / 'sft'} " \
                              "--set max_steps=3"
    rl = stage_run(Stage("grpo", "grpo", "b.yaml"), tmp_path / "grpo", tmp_path / "sft")
    assert rl.flags["init"] == str(tmp_path / "sft" / "final")
    filtered = stage_run(Stage("filtered", "filtered", "c.yaml"), tmp_path / "filtered", tmp_path / "grpo")
    assert "init" not in filtered.flags
    assert filtered.overrides == {"rl_log": [str(tmp_path / "grpo" / "episodes.jsonl")],
                                  "rl_model_dir": str(tmp_path / "grpo")}
    assert not started(tmp_path / "grpo")
    (tmp_path / "grpo").mkdir()
    (tmp_path / "grpo" / "config.yaml").write_text("env: Wordle-v0\n")
    assert started(tmp_path / "grpo")  # run_pipeline resumes it instead


def test_metric_paths_read_eval_json() -> None:
    report = {"held_out": {"episodes": 2, "wordle": {"win_rate": 0.5, "mean_guesses": None}}}
    assert metric_value(report, "held_out.wordle.win_rate") == 0.5
    assert metric_value(report, "held_out.wordle.mean_guesses") is None
    assert metric_value(report, "all.wordle.win_rate") is None
    assert metric_value(report, "held_out.wordle") is None


@pytest.mark.parametrize("name", ["wordle", "gsm8k", "mimic_walk"])
def test_shipped_pipelines_parse(name: str) -> None:
    path = ROOT / "configs" / "pipelines" / f"{name}.yaml"
    missing = [s["config"] for s in yaml.safe_load(path.read_text())["stages"] if not (ROOT / s["config"]).is_file()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not written yet")
    import os

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        pipeline = read_pipeline(path)
    finally:
        os.chdir(cwd)
    assert [s.agent for s in pipeline.stages][-1] == "filtered" and pipeline.metrics


def test_tiny_wordle_pipeline_runs_then_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_pipeline(tmp_path, [
        {**SFT, "set": {"max_steps": 4, "batch_size": 8, "model_config": TINY, "eval_every": 4, "save_every": 4,
                        "train_task_fraction": 0.8}},
        {**GRPO, "set": {"iterations": 1, "prompts_per_step": 2, "group_size": 2, "max_new_tokens": 8}},
        {**FILTERED, "set": {"min_reward": None, "top_fraction": 1.0, "epochs": 1}},
    ], metrics=["held_out.wordle.win_rate", "train_tasks.mean_return"])
    run_dir = tmp_path / "out"
    args = [str(path), "--run-dir", str(run_dir), "--set", f"env_kwargs={json.dumps({'answers': ANSWERS})}"]

    assert main(args) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "stage 3/3 filtered (filtered): running" in err and f"--init {run_dir / 'sft' / 'final'}" in err
    for stage in ("sft", "grpo", "filtered"):
        assert (run_dir / stage / "final" / "policy.json").is_file()
        report = json.loads((run_dir / stage / "eval.json").read_text())
        assert set(report) == {"held_out", "train_tasks"}  # every stage on the same answer split
    assert json.loads((run_dir / "filtered" / "filter.json").read_text())["logs"] == \
        [str(run_dir / "grpo" / "episodes.jsonl")]
    summary = (run_dir / "summary.md").read_text()
    assert "| stage | agent | held_out.wordle.win_rate | train_tasks.mean_return | wall | status |" in summary
    assert summary.count("| done |") == 3 and (run_dir / "summary.png").stat().st_size > 0

    # Same command again: every stage is skipped, nothing is rewritten.
    stamps = {s: (run_dir / s / "final" / "policy.json").stat().st_mtime_ns for s in ("sft", "grpo", "filtered")}
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.count("finished earlier, skipped") == 3 and "running" not in err
    assert stamps == {s: (run_dir / s / "final" / "policy.json").stat().st_mtime_ns for s in stamps}

    # An interrupted last stage resumes; a stage that lost its eval.json is evaluated again.
    import shutil

    shutil.rmtree(run_dir / "filtered" / "final")
    (run_dir / "grpo" / "eval.json").unlink()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "stage 3/3 filtered (filtered): resuming" in err and "grpo has final/ but no eval.json" in err
    assert (run_dir / "filtered" / "final").is_dir() and (run_dir / "grpo" / "eval.json").is_file()
    assert stamps["sft"] == (run_dir / "sft" / "final" / "policy.json").stat().st_mtime_ns

    # A finished stage cannot silently change its settings.
    assert main([*args, "--set", "grpo.iterations=5"]) == 2
    assert "stage 'grpo'" in capsys.readouterr().err
