"""The real training CLI end to end with a tiny budget, its config rules and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from agents.algos.configs import SFTConfig
from agents.cli.train import ENV_DEFAULTS, build_parser, resolve_args
from agents.core.config import RunConfig
from envs.wordle import parse_guess

ROOT = Path(__file__).resolve().parents[2]
ANSWERS = ["crane", "slate", "pious", "ghost", "lemon", "brick", "eagle", "tried", "abbey", "geese"]
TINY = "{hidden_size: 32, num_hidden_layers: 1, intermediate_size: 64, num_attention_heads: 2, num_key_value_heads: 2}"


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "agents.train", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def test_cli_smoke_trains_evaluates_and_fills_the_run_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli("--env", "Wordle-v0", "--env-kwargs", json.dumps({"answers": ANSWERS}),
                     "--set", "max_steps=6", "--set", "batch_size=4", "--set", f"model_config={TINY}",
                     "--set", "eval_every=3", "--set", "save_every=3", "--set", "train_task_fraction=0.8",
                     "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["sft"]["max_steps"] == 6 and config["env_kwargs"]["answers"] == ANSWERS
    assert (run_dir / "final" / "policy.json").is_file()
    # With a held-out split, "all" answers are reported as their two halves; the split is
    # written as task files that replay through the evaluate CLI.
    report = json.loads((run_dir / "eval.json").read_text())
    assert set(report) == {"train_tasks", "held_out"}
    assert report["train_tasks"]["episodes"] == 8 and report["held_out"]["episodes"] == 2  # 20% of 10
    assert 0.0 <= report["held_out"]["wordle"]["win_rate"] <= 1.0
    assert "evaluation: held_out" in result.stdout and "win_rate" in result.stdout
    assert list(run_dir.glob("events.out.tfevents.*"))
    held = [json.loads(line)["answer"] for line in (run_dir / "tasks_held_out.jsonl").read_text().splitlines()]
    train = [json.loads(line)["answer"] for line in (run_dir / "tasks_train.jsonl").read_text().splitlines()]
    assert sorted(held + train) == sorted(ANSWERS) and len(held) == 2
    played = [json.loads(line)["info"]["answer"]
              for line in (run_dir / "eval_episodes_held_out.jsonl").read_text().splitlines()]
    assert sorted(played) == sorted(held)

    # The trained checkpoint evaluates through the evaluate CLI with the same JSON summary.
    evaluated = subprocess.run(
        [sys.executable, "-m", "agents.evaluate", "--env", "Wordle-v0", "--env-kwargs",
         json.dumps({"answers": ANSWERS, "prompt_style": "compact"}), "--policy", str(run_dir / "final"),
         "--tasks", str(run_dir / "tasks_held_out.jsonl"), "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert evaluated.returncode == 0, evaluated.stderr
    summary = json.loads(evaluated.stdout)
    assert summary["episodes"] == 2 and set(summary["wordle"]) >= {"win_rate", "mean_guesses", "invalid_actions"}
    assert summary["wordle"] == report["held_out"]["wordle"]  # same episodes, greedy policy: same schema and values

    # Resuming a finished run does nothing and says so.
    again = run_cli("--resume", str(run_dir))
    assert again.returncode == 0 and "already finished" in again.stdout


def test_cli_errors_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    cases = [
        (["--set", "max_stepz=3"], "unknown key(s) max_stepz"),
        (["--set", "seed=abc"], "config.seed: expected an integer"),
        (["--env-kwargs", "{bad"], "--env-kwargs is not valid JSON"),
        (["--env", "Nope-v0"], "unknown env 'Nope-v0'"),
        (["--init", str(tmp_path)], "policy.json is missing"),
        (["--set", f"data={tmp_path / 'missing.jsonl'}"], "does not exist"),
        (["--set", "model_config={hidden_sise: 64}"], "unknown LlamaConfig field(s) hidden_sise"),
    ]
    for args, message in cases:
        run_dir = tmp_path / "never"
        result = run_cli(*args, "--env-kwargs", json.dumps({"answers": ANSWERS}), "--run-dir", str(run_dir)) \
            if "--env-kwargs" not in args else run_cli(*args, "--run-dir", str(run_dir))
        assert result.returncode == 2, (args, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], (args, result.stderr)
        assert not run_dir.exists()


def test_malformed_demonstration_file_names_its_line(tmp_path: Path) -> None:
    data = tmp_path / "demos.jsonl"
    data.write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n{oops\n")
    result = run_cli("--set", f"data={data}", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2
    assert f"{data}:2: not valid JSON" in result.stderr


def test_wordle_sft_yaml_spells_out_the_embedded_defaults() -> None:
    args = build_parser().parse_args(["--config", str(ROOT / "configs" / "wordle_sft.yaml")])
    from_yaml = resolve_args(args).as_dict
    embedded = resolve_args(build_parser().parse_args([])).as_dict
    assert from_yaml == embedded
    assert embedded["env_kwargs"] == ENV_DEFAULTS["Wordle-v0"]["env_kwargs"]
    assert embedded["sft"]["max_steps"] == SFTConfig().max_steps and embedded["seed"] == RunConfig().seed


def test_help_lists_envs_agents_and_keys() -> None:
    text = build_parser().format_help()
    for needle in ("Wordle-v0", "sft", "max_steps", "train_task_fraction", "--resume", "--set"):
        assert needle in text


def test_every_shipped_config_resolves() -> None:
    configs = sorted((ROOT / "configs").glob("*.yaml"))
    assert len(configs) >= 4
    for path in configs:
        resolved = resolve_args(build_parser().parse_args(["--config", str(path)]))
        assert resolved.as_dict["agent"] == resolved.run.agent and resolved.run.agent in resolved.as_dict, path


def test_gsm8k_config_trains_on_solutions_and_evaluates_on_test(tmp_path: Path) -> None:
    data = ROOT.parent / "shared" / "data" / "gsm8k"
    if not data.is_dir():
        import pytest

        pytest.skip(f"GSM8K data not found at {data}")
    run_dir = tmp_path / "gsm"
    result = run_cli("--config", str(ROOT / "configs" / "gsm8k_sft.yaml"), "--set", "max_steps=4",
                     "--set", "batch_size=4", "--set", f"model_config={TINY}", "--set", "eval_episodes=3",
                     "--set", "max_new_tokens=8", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    report = json.loads((run_dir / "eval.json").read_text())["all"]
    assert report["env"] == "GSM8K-v0" and report["episodes"] == 3
    assert len((run_dir / "eval_episodes_all.jsonl").read_text().splitlines()) == 3
    assert {"accuracy_strict", "accuracy_flexible", "format_compliance"} <= set(report["gsm8k"])
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["eval_env_kwargs"]["split"] == "test" and config["env_kwargs"]["split"] == "train"


def test_wordle_demonstrations_add_practice_games_and_spelling_after_the_answer_games() -> None:
    from agents.cli.train import conversations, task_split

    answers = ["crane", "slate", "eagle", "tried", "abbey", "geese", "trace", "mound", "pinky", "vivid"]
    extra = ["lolly", "hello", "allee", "gawky", "fjord"]
    run = RunConfig(env="Wordle-v0", env_kwargs={"answers": answers, "allowed": extra, "prompt_style": "compact"})
    config, more_config = SFTConfig(train_task_fraction=0.8), SFTConfig(train_task_fraction=0.8, practice_games=3,
                                                                         spelling=True)
    split, same_split = task_split(run, config), task_split(run, more_config)
    plain, more = conversations(run, config, split), conversations(run, more_config, same_split)
    assert split == same_split and split is not None  # extra data never moves the answer split
    assert more[:len(plain)] == plain
    added = [parse_guess(c[1]["content"]).word for c in more[len(plain):]]
    spelled = added[-(len(answers) + len(extra)):]
    assert sorted(spelled) == sorted(answers + extra)  # every allowed word once, held-out ones included
    games = added[:-len(spelled)]
    assert games  # (their secrets are checked in tests/agents/test_demos.py)
    boards = {c[0]["content"] for c in plain}
    assert not boards & {c[0]["content"] for c in more[len(plain):len(plain) + len(games)]}


QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def save_small_qwen2_checkpoint(directory: Path, texts: list[str]) -> None:
    """A Qwen2-architecture checkpoint with a byte-level BPE tokenizer and a ChatML template:
    the layout of a local Qwen2.5-Instruct directory, at a size a CPU test can train."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    Qwen2ForCausalLM(config).save_pretrained(directory)


def test_gsm8k_configs_run_unchanged_on_a_local_qwen2_checkpoint(tmp_path: Path) -> None:
    # The README's GPU recipe (--model a local Qwen2.5-Instruct, chat prompts, LoRA; SFT then
    # GRPO from it) with the shipped configs, on a same-architecture checkpoint built here.
    data = ROOT.parent / "shared" / "data" / "gsm8k"
    if not data.is_dir():
        import pytest

        pytest.skip(f"GSM8K data not found at {data}")
    texts = [json.loads(line)["question"] + " " + json.loads(line)["answer"]
             for line in (data / "train.jsonl").read_text(encoding="utf-8").splitlines()[:200]]
    model_dir = tmp_path / "qwen"
    save_small_qwen2_checkpoint(model_dir, texts)
    chat = json.dumps({"prompt_style": "chat"})
    small = ["--set", "lora_r=4", "--set", "max_new_tokens=8", "--set", "eval_episodes=2"]

    sft = tmp_path / "sft"
    result = run_cli("--config", str(ROOT / "configs" / "gsm8k_sft.yaml"), "--model", str(model_dir),
                     "--env-kwargs", chat, *small, "--set", "max_steps=3", "--set", "batch_size=4",
                     "--run-dir", str(sft))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((sft / "final" / "policy.json").read_text())
    assert manifest["lora"]["r"] == 4 and manifest["base_weights"] == str(model_dir)
    assert not (sft / "final" / "model").exists()  # the adapter only: the base reloads from --model
    assert json.loads((sft / "eval.json").read_text())["all"]["episodes"] == 2

    grpo = tmp_path / "grpo"
    result = run_cli("--config", str(ROOT / "configs" / "gsm8k_grpo.yaml"), "--init", str(sft / "final"),
                     "--env-kwargs", chat, *small, "--set", "iterations=1", "--set", "prompts_per_step=2",
                     "--set", "group_size=2", "--run-dir", str(grpo))
    assert result.returncode == 0, result.stderr
    episode = json.loads((grpo / "episodes.jsonl").read_text(encoding="utf-8").splitlines()[0])
    from transformers import AutoTokenizer

    prompt = AutoTokenizer.from_pretrained(model_dir).decode(episode["tokens"][0]["prompt_ids"])
    # chat style: the env's system message, then the question, rendered by the checkpoint's template
    assert prompt.startswith("<|im_start|>system\nYou are a careful math tutor.") and "<|im_start|>user\n" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert "####" in prompt  # the env's instruction reached the model through the checkpoint's template
