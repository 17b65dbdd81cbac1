"""Faults and bad input through the real command lines: a reused run folder, resume after a
kill (the episode log rolled back, a damaged newest checkpoint passed over, a final
evaluation cut short), unusable outputs and devices, and checkpoints on envs they cannot
play. Each case ends in a one-line error or a complete run, and loses nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from agents.core.trajectory import read_episodes

ANSWERS = ["crane", "slate", "pious", "ghost", "lemon", "brick", "eagle", "tried", "abbey", "geese"]
KWARGS = json.dumps({"answers": ANSWERS})
TINY = "{hidden_size: 32, num_hidden_layers: 1, intermediate_size: 64, num_attention_heads: 2, num_key_value_heads: 2}"
SFT = ["--env", "Wordle-v0", "--env-kwargs", KWARGS, "--set", "max_steps=4", "--set", "batch_size=4",
       "--set", f"model_config={TINY}", "--set", "eval_every=2", "--set", "save_every=2",
       "--set", "eval_episodes=2"]
GRPO = ["--agent", "grpo", "--env", "Wordle-v0", "--env-kwargs", KWARGS, "--set", f"model_config={TINY}",
        "--set", "iterations=4", "--set", "save_every=2", "--set", "prompts_per_step=2", "--set", "group_size=2",
        "--set", "max_new_tokens=6", "--set", "beta=0.1", "--no-eval"]


def train(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    from agents.cli.train import main

    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().err


def one_error(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from agents.cli.train import main

    run = tmp_path_factory.mktemp("sft") / "run"
    assert main([*SFT, "--run-dir", str(run)]) == 0
    return run


# ------------------------------------------------------------------------------ run folders
def test_a_folder_holding_a_run_is_refused_untouched_unless_overwrite(
        sft_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(sft_run, run)
    before = snapshot(run)
    code, err = train(capsys, *SFT, "--set", "seed=1", "--run-dir", str(run))
    assert code == 2 and "already holds a run" in one_error(err) and f"--resume {run}" in err
    assert snapshot(run) == before

    code, err = train(capsys, *SFT, "--set", "seed=1", "--run-dir", str(run), "--overwrite")
    assert code == 0, err
    assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == 1
    steps = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert steps == ["step_2"]  # the new run's own checkpoints, nothing left of the old one


def test_unusable_run_folders_devices_and_env_kwargs_fail_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    run = tmp_path / "never"
    nosuch = ["--env-kwargs", json.dumps({"answers": ANSWERS, "nosuch": 1})]
    cases = [
        ([*SFT, "--run-dir", str(a_file / "run")], f"{a_file} is a file"),
        ([*SFT, "--run-dir", "/proc/posttrain-run"], "is not writable"),
        ([*SFT, "--run-dir", str(run), "--device", "banana"], "is not a torch device"),
        ([*SFT, "--run-dir", str(run), "--device", "cuda:7"], "--device cuda:7"),
        ([*SFT, "--run-dir", str(run), *nosuch], "takes no argument(s) 'nosuch'"),
        ([*SFT, "--run-dir", str(run), "--set", "eval_env_kwargs={prompt_style: bogus}"], "prompt_style"),
        ([*GRPO, "--run-dir", str(run), *nosuch], "takes no argument(s) 'nosuch'"),
    ]
    for argv, message in cases:
        code, err = train(capsys, *argv)
        assert code == 2 and message in one_error(err), (argv, err)
        assert not run.exists() and not Path("/proc/posttrain-run").exists()


def test_resume_of_a_folder_with_an_empty_config_is_an_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "config.yaml").write_text("")
    code, err = train(capsys, "--resume", str(tmp_path))
    assert code == 2 and "empty or damaged" in one_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


# ------------------------------------------------------------------------------ resume
def test_grpo_resume_rolls_the_episode_log_back_to_the_checkpoint(tmp_path: Path, capsys) -> None:
    full = tmp_path / "full"
    code, err = train(capsys, *GRPO, "--run-dir", str(full))
    assert code == 0, err
    log = (full / "episodes.jsonl").read_bytes()
    assert [e.info["grpo"]["iteration"] for e in read_episodes(full / "episodes.jsonl")] == [1] * 4 + [2] * 4 + \
        [3] * 4 + [4] * 4

    # Killed during iteration 4: iteration 3 logged after the step_2 checkpoint, then a cut line.
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    shutil.rmtree(cut / "final")
    shutil.rmtree(cut / "checkpoints")
    shutil.copytree(full / "checkpoints", cut / "checkpoints",
                    ignore=lambda d, names: [n for n in names if n == "step_4"])
    with (cut / "episodes.jsonl").open("ab") as handle:
        handle.write(log.splitlines(keepends=True)[-1][:40])
    (cut / "checkpoints" / ".staging-step_4.0123abcd").mkdir()  # a save the kill interrupted
    code, err = train(capsys, "--resume", str(cut))
    assert code == 0 and "resuming from" in err, err
    assert (cut / "episodes.jsonl").read_bytes() == log  # nothing lost, nothing logged twice
    assert not list((cut / "checkpoints").glob(".staging-*"))


def test_resume_without_a_checkpoint_starts_over_without_the_old_log(tmp_path: Path, capsys) -> None:
    full = tmp_path / "full"
    assert train(capsys, *GRPO, "--set", "iterations=2", "--run-dir", str(full))[0] == 0
    early = tmp_path / "early"
    early.mkdir()
    shutil.copy(full / "config.yaml", early / "config.yaml")
    (early / "config.yaml").write_text((full / "config.yaml").read_text().replace(str(full), str(early)))
    (early / "episodes.jsonl").write_bytes((full / "episodes.jsonl").read_bytes()[:500])  # one cut line
    code, err = train(capsys, "--resume", str(early))
    assert code == 0 and "starting it over" in err, err
    assert (early / "episodes.jsonl").read_bytes() == (full / "episodes.jsonl").read_bytes()


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(
        sft_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agents.core.run import resumable_checkpoint

    run = tmp_path / "run"
    shutil.copytree(sft_run, run)
    shutil.rmtree(run / "final")
    (run / "eval.json").unlink()
    shutil.copytree(run / "checkpoints" / "step_2", run / "checkpoints" / "step_3")
    (run / "checkpoints" / "step_3" / "trainer_state.pt").write_bytes(b"\x00garbage")
    assert resumable_checkpoint(run) == run / "checkpoints" / "step_2"
    code, err = train(capsys, "--resume", str(run))
    assert code == 0 and "step_3 is damaged" in err and "resuming from" in err and "step_2" in err, err
    assert (run / "final" / "policy.json").is_file() and (run / "eval.json").is_file()


def test_a_final_evaluation_cut_short_is_finished_by_resume(
        sft_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(sft_run, run)
    report = json.loads((run / "eval.json").read_text())
    (run / "eval.json").unlink()
    code, err = train(capsys, "--resume", str(run))
    assert code == 0 and "no eval.json" in err, err
    assert json.loads((run / "eval.json").read_text()) == report  # greedy: the same evaluation
    code, _ = train(capsys, "--resume", str(run))
    assert code == 0  # finished now: nothing more to do


def test_checkpoints_get_the_run_folders_permissions(sft_run: Path) -> None:
    mode = sft_run.stat().st_mode & 0o777
    for folder in [*sft_run.glob("checkpoints/step_*"), sft_run / "final"]:
        assert folder.stat().st_mode & 0o777 == mode, folder


def test_eval_episodes_caps_the_held_out_evaluation_too(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    code, err = train(capsys, *SFT, "--set", "max_steps=2", "--set", "train_task_fraction=0.6",
                      "--run-dir", str(run))
    assert code == 0, err
    report = json.loads((run / "eval.json").read_text())
    assert report["all"]["episodes"] == 2 and report["held_out"]["episodes"] == 2  # of 4 held out


# ------------------------------------------------------------------------------ evaluate
def evaluate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from agents.cli.evaluate import main

    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_evaluate_refuses_an_unwritable_out_before_playing(tmp_path: Path, capsys) -> None:
    for flag in ("--out", "--episodes-out"):
        code, out, err = evaluate(capsys, "--env-kwargs", KWARGS, "--episodes", "2", flag,
                                  str(tmp_path / "missing" / "x.json"))
        assert code == 2 and "does not exist" in one_error(err) and not out


def test_evaluate_prints_the_result_when_writing_it_fails(tmp_path: Path, capsys, monkeypatch) -> None:
    import agents.cli.evaluate

    def fail(path, payload):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(agents.cli.evaluate, "write_json_atomic", fail)
    code, out, err = evaluate(capsys, "--env-kwargs", KWARGS, "--episodes", "2", "--json",
                              "--out", str(tmp_path / "x.json"))
    assert code == 1 and json.loads(out)["episodes"] == 2 and "No space left" in one_error(err)


def test_sampled_evaluation_is_reproducible_by_seed(sft_run: Path, tmp_path: Path, capsys) -> None:
    def sampled(seed: int, name: str) -> bytes:
        path = tmp_path / name
        code, _, err = evaluate(capsys, "--policy", str(sft_run / "final"), "--episodes", "4", "--sample",
                                "--seed", str(seed), "--episodes-out", str(path), "--json")
        assert code == 0, err
        return path.read_bytes()

    first = sampled(3, "a.jsonl")
    assert sampled(3, "b.jsonl") == first
    assert sampled(4, "c.jsonl") != first


def test_checkpoints_refuse_envs_they_cannot_act_on(sft_run: Path, tmp_path: Path, capsys) -> None:
    code, _, err = evaluate(capsys, "--env", "HumanoidMimic-v1", "--policy", str(sft_run / "final"),
                            "--episodes", "1")
    assert code == 2 and "language-model checkpoint" in one_error(err)

    from demos.render_mocap import main as render

    video = tmp_path / "x.mp4"
    capsys.readouterr()
    assert render(["--policy", str(sft_run / "final"), "--seconds", "0.2", "--out", str(video)]) == 2
    assert "language-model checkpoint" in one_error(capsys.readouterr().err) and not video.exists()

    from agents.policies.mlp import GaussianMLPPolicy

    mlp = tmp_path / "mlp"
    GaussianMLPPolicy(4, 2, hidden=(8,), metadata={"env_id": "HumanoidMimic-v1"}).save(mlp)
    code, _, err = evaluate(capsys, "--env", "Wordle-v0", "--env-kwargs", KWARGS, "--policy", str(mlp),
                            "--episodes", "1")
    assert code == 2 and "float-vector (Box) envs" in one_error(err)
