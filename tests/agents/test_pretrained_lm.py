"""A pretrained-style language model (a GGUF file with a BPE tokenizer and a ChatML template that
adds a default system prompt, like SmolLM2-Instruct) through every language-model path:
evaluated as it comes, chat messages rendered with its template, generation stopping at its
end of turn, LoRA SFT that saves only the adapter and finds its base again, GRPO from it, and
filtered SFT on the GRPO log. Tiny model, one thread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gguf_files import write_tiny_gguf  # tests/agents is on sys.path

from agents.policies.lm.policy import LMPolicy

ANSWERS = ["crane", "slate", "pious", "ghost", "lemon", "brick", "eagle", "tried"]
GSM8K = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gsm8k" / "test.jsonl"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    write_tiny_gguf(path)
    return path


@pytest.fixture(autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTTRAIN_GYM_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


def run(capsys: pytest.CaptureFixture[str], module: str, *argv: str) -> str:
    from importlib import import_module

    capsys.readouterr()
    code = import_module(f"agents.cli.{module}").main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def prompts(policy: LMPolicy, log: Path) -> list[str]:
    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    return [policy.tokenizer.decode(row["tokens"][0]["prompt_ids"]) for row in rows]


def test_a_model_as_it_comes_is_evaluated_with_its_own_template(model_file: Path, tmp_path: Path, capsys) -> None:
    log = tmp_path / "episodes.jsonl"
    out = run(capsys, "evaluate", "--env", "Wordle-v0", "--env-kwargs", json.dumps({"answers": ANSWERS}),
              "--policy", str(model_file), "--episodes", "3", "--max-new-tokens", "6", "--episodes-out", str(log),
              "--json")
    summary = json.loads(out)
    assert summary["policy"] == str(model_file) and summary["episodes"] == 3 and "wordle" in summary
    policy = LMPolicy.from_pretrained(model_file, device="cpu")
    for prompt in prompts(policy, log):  # a plain-text observation: the template adds its default system turn
        assert prompt.startswith("<|im_start|>system\nYou are a tiny test model.<|im_end|>\n<|im_start|>user\n")
        assert prompt.endswith("<|im_start|>assistant\n")


@pytest.mark.skipif(not GSM8K.is_file(), reason=f"GSM8K data not found at {GSM8K}")
def test_an_envs_chat_messages_reach_the_model(model_file: Path, tmp_path: Path, capsys) -> None:
    log = tmp_path / "episodes.jsonl"
    run(capsys, "evaluate", "--env", "GSM8K-v0", "--env-kwargs",
        json.dumps({"data_path": str(GSM8K), "prompt_style": "chat"}), "--policy", str(model_file),
        "--episodes", "2", "--max-new-tokens", "4", "--episodes-out", str(log), "--json")
    policy = LMPolicy.from_pretrained(model_file, device="cpu")
    for prompt in prompts(policy, log):  # the env's system message replaces the template's default
        assert prompt.startswith("<|im_start|>system\nYou are a careful math tutor.") and "tiny test model" not in prompt
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert rows[0]["observations"][0][0]["role"] == "system"  # the record holds what the model saw


def test_generation_stops_at_the_templates_end_of_turn(model_file: Path) -> None:
    policy = LMPolicy.from_pretrained(model_file, device="cpu")
    end = policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert policy.stop_ids() == [end]
    policy.sampling.max_new_tokens = 40
    for seed in range(3):
        import torch

        torch.manual_seed(seed)
        policy.act(["say a word"] * 4, deterministic=False)
        assert policy.last_tokens is not None
        for turn in policy.last_tokens:
            assert end not in turn.completion_ids[:-1]  # nothing is sampled after the end of turn
            assert len(turn.completion_ids) == 40 or turn.completion_ids[-1] == end


def test_lora_sft_then_grpo_then_filtered_on_the_model(model_file: Path, tmp_path: Path, capsys) -> None:
    wordle = json.dumps({"answers": ANSWERS, "prompt_style": "compact"})
    sft, grpo, filtered = tmp_path / "sft", tmp_path / "grpo", tmp_path / "filtered"
    run(capsys, "train", "--env", "Wordle-v0", "--env-kwargs", wordle, "--model", str(model_file),
        "--set", "lora_r=4", "--set", "max_steps=2", "--set", "batch_size=4", "--set", "max_new_tokens=12",
        "--set", "train_task_fraction=0.75", "--set", "eval_episodes=2", "--run-dir", str(sft))
    manifest = json.loads((sft / "final" / "policy.json").read_text())
    assert manifest["lora"]["r"] == 4 and manifest["base_weights"] == str(model_file.absolute())
    assert not (sft / "final" / "model").exists()  # the adapter only: the base is found again from the file
    reloaded = LMPolicy.load(sft / "final", device="cpu")
    assert reloaded.lora is not None and reloaded.tokenizer.eos_token == "<|im_end|>"

    run(capsys, "train", "--agent", "grpo", "--env", "Wordle-v0", "--env-kwargs", wordle, "--init", str(sft / "final"),
        "--set", "iterations=1", "--set", "prompts_per_step=2", "--set", "group_size=2", "--set", "max_new_tokens=12",
        "--set", "lora_r=4", "--no-eval", "--run-dir", str(grpo))
    assert (grpo / "episodes.jsonl").stat().st_size > 0
    run(capsys, "filtered", "--rl-log", str(grpo / "episodes.jsonl"), "--top-fraction", "1.0", "--epochs", "1",
        "--output-dir", str(filtered), "--no-eval")
    assert json.loads((filtered / "final" / "policy.json").read_text())["lora"]["r"] == 4
