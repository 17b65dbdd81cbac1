"""Past one process: the real command line under ``torchrun`` with 2 gloo processes on the CPU.
The config's batch is the global batch, so SFT on 2 processes takes the same optimisation steps
as on 1 (losses and final weights equal within float32 summation-order noise), rank 0 alone
writes the run folder, and evaluation episodes are split between the ranks and merged once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agents.cli.plot import read_scalars
from agents.policies.lm.policy import LMPolicy

ROOT = Path(__file__).resolve().parents[2]
ANSWERS = ["crane", "slate", "pious", "ghost", "lemon", "brick", "eagle", "tried", "abbey", "geese"]
TINY = "{hidden_size: 32, num_hidden_layers: 1, intermediate_size: 64, num_attention_heads: 2, num_key_value_heads: 2}"
SFT = ["--env", "Wordle-v0", "--env-kwargs", json.dumps({"answers": ANSWERS}), "--set", f"model_config={TINY}",
       "--set", "max_steps=5", "--set", "batch_size=8", "--set", "log_every=1", "--set", "val_ratio=0.2",
       "--set", "eval_every=5", "--set", "save_every=2", "--set", "eval_episodes=6"]


def launch(*argv: str, processes: int = 1, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    prefix = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] \
        if processes > 1 else [sys.executable]
    return subprocess.run([*prefix, "-m", "agents.train", *argv], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=timeout)


def test_sft_on_two_processes_takes_the_same_steps_as_on_one(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    single = launch(*SFT, "--run-dir", str(one))
    assert single.returncode == 0, single.stderr
    double = launch(*SFT, "--run-dir", str(two), processes=2)
    assert double.returncode == 0, double.stderr
    assert "x 2 processes" in double.stderr and double.stdout.count("final checkpoint") == 1  # rank 0 speaks

    a, b = read_scalars(one), read_scalars(two)
    for tag in ("train/loss", "train/grad_norm", "eval/loss", "eval/accuracy"):
        steps = [s for s, _ in a[tag]]
        assert steps == [s for s, _ in b[tag]], tag
        # The same global batches; only the order of float32 sums differs between 1 and 2 processes.
        assert [v for _, v in b[tag]] == pytest.approx([v for _, v in a[tag]], rel=1e-4, abs=1e-6), tag
    first, second = LMPolicy.load(one / "final", device="cpu"), LMPolicy.load(two / "final", device="cpu")
    for (name, p), q in zip(first.model.named_parameters(), second.model.parameters(), strict=True):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=name)

    # One run folder, written once: the checkpoints rank 0 saved, one set of TensorBoard events.
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["step_2", "step_4"]
    assert len(list(two.glob("events.out.tfevents.*"))) == len(list(one.glob("events.out.tfevents.*")))
    report_one = json.loads((one / "eval.json").read_text())
    report_two = json.loads((two / "eval.json").read_text())
    assert set(report_one) == set(report_two)
    for name in report_one:  # every evaluation episode once, in task order, though the ranks split them
        played = [json.loads(line)["info"]["answer"] for line in (two / f"eval_episodes_{name}.jsonl").read_text().splitlines()]
        assert played == [json.loads(line)["info"]["answer"]
                          for line in (one / f"eval_episodes_{name}.jsonl").read_text().splitlines()]
        assert report_two[name]["episodes"] == report_one[name]["episodes"]


def test_an_agent_that_runs_in_one_process_says_so_under_torchrun(tmp_path: Path) -> None:
    result = launch("--agent", "trpo", "--env", "HumanoidMimic-v1", "--run-dir", str(tmp_path / "run"), processes=2)
    assert result.returncode != 0
    assert "agent 'trpo' runs in one process for now" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_run_killed_under_torchrun_resumes_under_torchrun_and_on_one_process(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    assert launch(*SFT, "--set", "eval_episodes=0", "--run-dir", str(whole), processes=2).returncode == 0
    for resumed_on in (2, 1):
        cut = tmp_path / f"cut{resumed_on}"  # as if killed after the step-2 checkpoint
        import shutil

        shutil.copytree(whole, cut)
        shutil.rmtree(cut / "final")
        shutil.rmtree(cut / "checkpoints" / "step_4")
        result = launch("--resume", str(cut), processes=resumed_on)
        assert result.returncode == 0, result.stderr
        assert "resuming from" in result.stderr and "step_2" in result.stderr
        assert ("written by 2 process(es) and resumes on 1" in result.stderr) == (resumed_on == 1)
        first, second = LMPolicy.load(whole / "final", device="cpu"), LMPolicy.load(cut / "final", device="cpu")
        for (name, p), q in zip(first.model.named_parameters(), second.model.parameters(), strict=True):
            torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=name)


def filtered_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted((run_dir / "final").rglob("*.safetensors"))
    assert files, run_dir
    return {f"{f.parent.name}/{k}": v for f in files for k, v in load_file(str(f)).items()}


@pytest.mark.parametrize("kind", ["language model", "gaussian mlp"])
def test_filtered_on_two_processes_matches_one(tmp_path: Path, kind: str) -> None:
    rl = tmp_path / "rl"
    if kind == "language model":
        made = launch("--agent", "grpo", "--env", "Wordle-v0", "--env-kwargs", json.dumps({"answers": ANSWERS}),
                      "--set", f"model_config={TINY}", "--set", "iterations=2", "--set", "prompts_per_step=4",
                      "--set", "group_size=2", "--set", "max_new_tokens=8", "--no-eval", "--run-dir", str(rl))
    else:
        made = launch("--agent", "trpo", "--env", "HumanoidMimic-v1", "--set", "hidden=[16]", "--set", "critic_hidden=[16]",
                      "--set", "total_steps=256", "--set", "n_envs=2", "--set", "n_steps=128", "--no-eval",
                      "--run-dir", str(rl))
    assert made.returncode == 0, made.stderr
    runs = {}
    for processes in (1, 2):
        out = tmp_path / f"filtered{processes}"
        result = launch("--agent", "filtered", "--env", "Wordle-v0" if kind == "language model" else "HumanoidMimic-v1",
                        *(["--env-kwargs", json.dumps({"answers": ANSWERS})] if kind == "language model" else []),
                        "--set", f"rl_log={rl / 'episodes.jsonl'}", "--set", "top_fraction=1.0", "--set", "epochs=2",
                        "--set", "batch_size=5", "--set", "val_fraction=0.2", "--no-eval", "--run-dir", str(out),
                        processes=processes)
        assert result.returncode == 0, result.stderr
        runs[processes] = out
    one, two = filtered_weights(runs[1]), filtered_weights(runs[2])
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5, msg=name)
    a, b = read_scalars(runs[1]), read_scalars(runs[2])
    assert [v for _, v in b["eval/loss"]] == pytest.approx([v for _, v in a["eval/loss"]], rel=1e-4)


def test_grpo_on_two_processes_logs_every_episode_once_in_group_order(tmp_path: Path) -> None:
    from agents.algos.configs import GRPOConfig
    from agents.algos.grpo import GRPOAgent
    from agents.core.trajectory import read_episodes

    run = tmp_path / "grpo"
    result = launch("--agent", "grpo", "--env", "Wordle-v0", "--env-kwargs", json.dumps({"answers": ANSWERS}),
                    "--set", f"model_config={TINY}", "--set", "iterations=3", "--set", "prompts_per_step=3",
                    "--set", "group_size=2", "--set", "max_new_tokens=8", "--set", "save_every=2",
                    "--set", "eval_episodes=4", "--run-dir", str(run), processes=2)
    assert result.returncode == 0, result.stderr
    episodes = list(read_episodes(run / "episodes.jsonl"))
    assert len(episodes) == 3 * 3 * 2  # iterations x prompts x group size: each episode once
    # The groups in the order the prompts were drawn, though the two ranks played them (3 groups: 2 + 1).
    config = GRPOConfig(iterations=3, prompts_per_step=3, group_size=2)
    expected = [spec.options.get("answer", spec.seed) for i in range(3)
                for spec in GRPOAgent.prompt_specs(SimpleAgent(config), i, None)]
    assert [e.seed for e in episodes] == expected
    policy = LMPolicy.load(run / "final", device="cpu")
    for episode in episodes:  # token-exact records: each turn's ids and log-probs, the loss mask over them
        grpo = episode.info["grpo"]
        assert episode.tokens is not None and len(grpo["loss_mask"]) == len(episode.tokens)
        for obs, act, turn, mask in zip(episode.observations, episode.actions, episode.tokens, grpo["loss_mask"],
                                        strict=True):
            assert list(turn.prompt_ids) == policy.encode_prompts([obs])[0]
            assert policy.tokenizer.decode(turn.completion_ids, skip_special_tokens=True) == act
            assert len(mask) == len(turn.prompt_ids) + len(turn.completion_ids)
            assert len(turn.logprobs) == len(turn.completion_ids)
    groups = [(e.info["grpo"]["iteration"], e.seed) for e in episodes]
    assert all(groups[k] == groups[k + 1] for k in range(0, len(groups), 2))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_2"]
    assert json.loads((run / "eval.json").read_text())["all"]["episodes"] == 4


class SimpleAgent:
    """Just what ``GRPOAgent.prompt_specs`` reads: the draw of prompts does not need a model."""

    def __init__(self, config) -> None:
        self.config, self.seed = config, 0


def test_behaviour_cloning_on_two_processes_matches_one(tmp_path: Path) -> None:
    bc = ["--env", "HumanoidMimic-v1", "--set", "hidden=[16]", "--set", "max_steps=30", "--set", "batch_size=64",
          "--set", "reference_states=60", "--set", "noisy_episodes=2", "--set", "horizon=10", "--set", "dagger_rounds=1",
          "--set", "dagger_episodes=2", "--set", "eval_every=10", "--set", "log_every=5", "--no-eval"]
    for processes in (1, 2):
        result = launch(*bc, "--run-dir", str(tmp_path / f"bc{processes}"), processes=processes)
        assert result.returncode == 0, result.stderr
    one, two = filtered_weights(tmp_path / "bc1"), filtered_weights(tmp_path / "bc2")
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5, msg=name)
    a, b = read_scalars(tmp_path / "bc1"), read_scalars(tmp_path / "bc2")
    assert [v for _, v in b["train/loss"]] == pytest.approx([v for _, v in a["train/loss"]], rel=1e-4)


def test_fsdp_takes_the_same_steps_as_ddp_and_its_checkpoints_resume_at_any_process_count(tmp_path: Path) -> None:
    # Two transformer blocks (two FSDP units besides the root) and gradient accumulation (FSDP's
    # own switch for gradient sync): the sharded run must make DDP's steps.
    deeper = ["--set", f"model_config={TINY.replace('num_hidden_layers: 1', 'num_hidden_layers: 2')}",
              "--set", "grad_accum_steps=2"]
    ddp, sharded = tmp_path / "ddp", tmp_path / "fsdp"
    assert launch(*SFT, *deeper, "--run-dir", str(ddp), processes=2).returncode == 0
    result = launch(*SFT, *deeper, "--set", "data_parallel=fsdp", "--run-dir", str(sharded), processes=2)
    assert result.returncode == 0, result.stderr
    a, b = read_scalars(ddp), read_scalars(sharded)
    for tag in ("train/loss", "train/grad_norm", "eval/loss", "eval/accuracy"):
        assert [s for s, _ in b[tag]] == [s for s, _ in a[tag]], tag
        assert [v for _, v in b[tag]] == pytest.approx([v for _, v in a[tag]], rel=1e-4, abs=1e-6), tag

    def assert_same_weights(x: Path, y: Path) -> None:
        first, second = LMPolicy.load(x / "final", device="cpu"), LMPolicy.load(y / "final", device="cpu")
        for (name, p), q in zip(first.model.named_parameters(), second.model.parameters(), strict=True):
            torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=name)

    assert_same_weights(ddp, sharded)  # gathered into the same files a DDP run writes
    assert (sharded / "best").is_dir() and json.loads((sharded / "eval.json").read_text())["all"]["episodes"] == 6

    # The optimizer state is saved whole (by parameter name): a sharded run resumes on 2 or on 1.
    import shutil

    for resumed_on in (2, 1):
        cut = tmp_path / f"cut{resumed_on}"
        shutil.copytree(sharded, cut)
        for done in ("final", "best", "checkpoints/step_4", "eval.json", "eval_episodes_all.jsonl"):
            shutil.rmtree(cut / done) if (cut / done).is_dir() else (cut / done).unlink()
        result = launch("--resume", str(cut), processes=resumed_on)
        assert result.returncode == 0, result.stderr
        assert "step_2" in result.stderr
        assert_same_weights(sharded, cut)


def test_fsdp_with_lora_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = launch(*SFT, "--set", "data_parallel=fsdp", "--set", "lora_r=4", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "data_parallel=fsdp shards full fine-tuning" in result.stderr
    assert not (tmp_path / "run").exists()


def test_leave_on_one_process_exits_through_python_with_the_status() -> None:
    from agents.core import distributed

    with pytest.raises(SystemExit) as exited:
        distributed.leave(3)
    assert exited.value.code == 3
